"""Shared data, plants, tasks and tables for ``detection.py`` and ``calibration.py``.

Nothing here is used by an audit at run time. The planted defects themselves come from
tests/rankers.py (copied queries, label proxies) and the test suite's own plants,
``tests/planting.py`` (near-copies) and ``tests/planting_shift.py`` (naive synthetic sets, subtle
shifts, noisy / unstable rankers); this module puts them on the benchmark data, runs the audits and turns results
into small JSON-able records:

- :func:`letor_split` -- the LETOR sample (``tests/data/ltr``) as shipped (201 train / 50 test
  queries, loader-generated query ids);
- :func:`letor_resplit` -- the LETOR queries pooled (less two duplicated ones) and re-split at
  random by query with fresh, genuinely disjoint ids, optionally with a third part of *real*
  queries as a perfectly faithful "synthetic" set: the clean null on real data;
- :func:`generator_split` -- :func:`auditor.synthetic.make_synthetic_split` with a synthetic set
  drawn from the same generator (another seed): the clean null on simulated data;
- :func:`prior_split` and :func:`task_prior` -- clean splits whose models rank without labels
  (a label-free prior): the LETOR sample as shipped (no qid column) or re-split with explicit
  disjoint query ids, and :func:`auditor.prior_models.make_prior_split` (a fixed feature
  direction ranks well), audited by random_label alone with a two-layer MLP or ridge;
- :func:`clean_suite_run` -- one clean full-suite run (all six audits through
  :func:`auditor.runner.run_audit`, Holm across audits as in production), plus the
  significance audit on a no-gain twin pair for its null calibration;
- ``task_*`` and :func:`run_tasks` -- each planted-defect run as a deterministic function of
  ``(seed, params)``, run serially or in worker processes, with an optional on-disk cache
  keyed by the source code's hash (so ``calibration.py`` reuses ``detection.py``'s clean runs);
- :func:`wilson`, :class:`Rate`, :func:`markdown_table` -- rates with Wilson 95% CIs.

Seeds: every run is a deterministic function of its task, parameters and seed; the data
seeds of the different parts never coincide (offsets below).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from auditor.audits.base import AuditResult, run_inline  # noqa: E402
from auditor.context import AuditConfig, AuditContext  # noqa: E402
from auditor.data import RankingDataset, Split  # noqa: E402
from auditor.registry import ModelSpec  # noqa: E402

# the planted defects the test suite uses (tests/planting*.py; not part of the installed package)
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
from planting import concat_datasets  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model  # noqa: E402

__all__ = ["ROOT", "LTR", "LGBM", "LINEAR", "MLP", "prior_split", "PRIOR_DATA", "RANDOM", "NOISY", "MEMO", "UNSTABLE", "GATING", "CRITICAL",
           "N_GATING", "BENCH_PARAMS", "bench_config", "lgbm_spec", "letor_split", "letor_resplit",
           "generator_split", "summarize", "run_one", "demonstrated", "clean_suite_run", "run_tasks", "task_key",
           "TASKS", "median",
           "wilson", "Rate", "markdown_table", "machine", "code_version", "NULL_KINDS"]

LTR = ROOT / "tests" / "data" / "ltr"
LGBM = str(ROOT / "examples" / "plugins" / "lightgbm_ranker.py") + ":make_model"
LINEAR = "rankers:make_linear"
MLP = "auditor.prior_models:make_mlp"
RANDOM = "rankers:make_random"
MEMO = "rankers:make_memorizer"
NOISY = "planting_shift:make_noisy_linear"
UNSTABLE = "planting_shift:make_unstable_linear"

#: audits whose p-values join the suite's Holm correction (with a baseline and all checks)
GATING = ("random_label", "isolation", "synthetic_shift", "significance")
N_GATING = len(GATING)
#: audits whose FAIL makes the verdict NO_GO
CRITICAL = ("random_label", "feature_ablation", "isolation", "synthetic_shift", "significance")

#: Resample counts lowered in every benchmark run. Each one only feeds a number that is
#: *reported* and never decides a status, so the decisions are those of the defaults:
#: random_label's chance-distribution plot, its sign-flip p and bootstrap CI (the decision is the
#: t-test p and the mean excess); feature_ablation's random-half measurement (summary text
#: only); isolation's contamination-rate CI; synthetic_shift's exploratory per-feature KS. The
#: synthetic_shift AUC CI keeps its default 1,000 resamples: whether the whole CI lies above
#: the WARN floor decides "inconclusive".
BENCH_PARAMS: dict[str, dict[str, Any]] = {
    "random_label": {"null_samples": 100, "sign_flip_resamples": 2000, "bootstrap": 1000},
    "feature_ablation": {"half_mask": False},
    "isolation": {"bootstrap": 300},
    "synthetic_shift": {"ks_permutations": 100},
}

#: the clean-run designs of :func:`clean_suite_run`
NULL_KINDS = ("generator", "letor")

#: pool positions of the second query of each duplicated pair in the LETOR sample (see _letor_pool)
_LETOR_DUPLICATE_QUERIES = np.array([112, 174])

# data-seed offsets: no two parts of the benchmark draw the same data
_TWIN_OFFSET = 1_000_000
_RESPLIT_OFFSET = 2_000_000
_PRIOR_OFFSET = 3_000_000


def bench_config(overrides: Mapping[str, Mapping[str, Any]] | None = None, **suite: Any) -> AuditConfig:
    """An :class:`AuditConfig` with :data:`BENCH_PARAMS` and the given per-audit ``overrides``."""
    audits = {k: dict(v) for k, v in BENCH_PARAMS.items()}
    for k, v in (overrides or {}).items():
        audits.setdefault(k, {}).update(v)
    return AuditConfig(audits=audits, **suite)


def lgbm_spec(n_estimators: int = 30) -> ModelSpec:
    """The LightGBM example plugin, ``n_estimators`` trees, one thread (the benchmark's real model)."""
    return ModelSpec(LGBM, {"n_estimators": int(n_estimators), "n_jobs": 1})


# --------------------------------------------------------------------------- data
@lru_cache(maxsize=1)
def letor_split() -> Split:
    """The LETOR sample as shipped: ``rank.train`` (201 queries) / ``rank.test`` (50), 300 features.

    Query ids are the loader's positions in each file (``meta["qid_generated"]``), so the
    isolation audit matches queries across the split by content only.
    """
    from auditor.loaders import load

    tr = load(LTR / "rank.train", "letor", n_features=300)
    te = load(LTR / "rank.test", "letor", n_features=300)
    return Split(train=tr, test=te, name="letor")


@lru_cache(maxsize=1)
def _letor_pool() -> RankingDataset:
    sp = letor_split()
    # fresh ids 0..250 (the files number their queries from 0 each): the pooled queries are
    # distinct queries, so re-split ids are genuinely disjoint and the isolation audit compares them
    tr = sp.train._replace(qid=sp.train.query_index.astype(np.int64), meta={})
    te = sp.test._replace(qid=sp.test.query_index.astype(np.int64) + tr.n_queries, meta={})
    pool = concat_datasets(tr, te, name="letor-pool")
    # The sample holds two pairs of training queries with identical feature rows (positions 29 and
    # 112: 12 of 13 rows; 35 and 174: all 13 rows; labels differ). A re-split that puts one of a
    # pair on each side *is* contaminated (the isolation audit rightly FAILs it), so a clean pool
    # keeps only the first of each pair: 249 queries.
    keep = np.setdiff1d(np.arange(pool.n_queries), _LETOR_DUPLICATE_QUERIES)
    return pool.subset(keep, name="letor-pool")


def letor_resplit(seed: int, n_train: int = 150, n_test: int = 50, n_synthetic: int = 49) -> Split:
    """A random query-level re-split of the LETOR queries (a clean split of real data).

    The pool is the 251 queries of both files less the second query of each of the two
    duplicated pairs the sample holds (249 queries, see ``_letor_pool``).

    Parameters
    ----------
    seed : int
    n_train, n_test : int, default 150, 50
    n_synthetic : int, default 49
        Real queries held out as the "synthetic" training set: a generator that reproduces the
        real distribution exactly (0 for none).

    Returns
    -------
    Split
        Train, test and (optionally) synthetic parts with disjoint query ids.
    """
    pool = _letor_pool()
    need = n_train + n_test + n_synthetic
    if need > pool.n_queries:
        raise ValueError(f"letor_resplit: {need} queries requested, the pool has {pool.n_queries}")
    perm = np.random.default_rng(_RESPLIT_OFFSET + int(seed)).permutation(pool.n_queries)
    tr = pool.subset(np.sort(perm[:n_train]), name="letor-train")
    te = pool.subset(np.sort(perm[n_train:n_train + n_test]), name="letor-test")
    syn = pool.subset(np.sort(perm[n_train + n_test:need]), name="letor-real-as-synthetic") if n_synthetic else None
    return Split(train=tr, test=te, synthetic=syn, name=f"letor-resplit(seed={seed})")


def generator_split(seed: int, n_train: int = 150, n_test: int = 60, n_items: int = 10,
                    n_synthetic: int = 150) -> Split:
    """:func:`auditor.synthetic.make_synthetic_split` plus a synthetic set from the same generator.

    The synthetic set is the training part of another draw (seed offset by 1,000,000): the
    same feature and label distributions, i.e. a faithful generator (0 queries for none).
    """
    from auditor.synthetic import make_synthetic_split

    sp = make_synthetic_split(n_train_queries=n_train, n_test_queries=n_test, n_items=n_items, seed=int(seed))
    syn = None
    if n_synthetic:
        syn = make_synthetic_split(n_train_queries=n_synthetic, n_test_queries=2, n_items=n_items,
                                   seed=_TWIN_OFFSET + int(seed)).train._replace(name="generator-twin")
    return Split(train=sp.train, test=sp.test, synthetic=syn, name=f"generator(seed={seed})")


# --------------------------------------------------------------------------- records
def _get(d: Mapping[str, Any] | None, *path: str) -> Any:
    for k in path:
        if not isinstance(d, Mapping) or k not in d:
            return None
        d = d[k]
    return d


def summarize(res: AuditResult | Mapping[str, Any]) -> dict[str, Any]:
    """A small JSON-able record of one audit result: status, p-values and the deciding numbers."""
    r = res.to_dict() if isinstance(res, AuditResult) else dict(res)
    m = r.get("measurements") or {}
    out: dict[str, Any] = {"status": r["status"], "critical": bool(r.get("critical")),
                           "inconclusive": bool(r.get("inconclusive")), "p": r.get("p_value"),
                           "p_adj": r.get("p_adjusted")}
    name = r["name"]
    if r["status"] == "ERROR":
        out["error"] = (r.get("error") or r.get("summary") or "")[:300]
    if name == "random_label":
        out.update(p_a=_get(m, "variant_a", "p_value"), p_b=_get(m, "variant_b", "p_value"),
                   excess_a=_get(m, "variant_a", "excess"), excess_b=_get(m, "variant_b", "excess"),
                   seed_excess_a=_get(m, "variant_a", "seed_excess"),
                   labels_ignored=_get(m, "variant_a", "labels_ignored"),
                   upper_b=_get(m, "variant_b", "upper_bound"), margin_b=_get(m, "variant_b", "margin"),
                   floor_b=_get(m, "variant_b", "min_effect"), n_b=_get(m, "variant_b", "n"),
                   true_excess=_get(m, "true_labels", "excess"))
    elif name == "isolation":
        out.update(contaminated_rows=_get(m, "contamination", "rows"),
                   near_dup_excess=_get(m, "near_duplicates", "excess_rate"))
    elif name == "synthetic_shift":
        out.update(mode=m.get("mode"), auc=m.get("auc"), auc_upper=m.get("auc_upper_one_sided"),
                   p_clf=m.get("classifier_p_value"),
                   p_mmd=m.get("mmd_p_value"), p_labels=_get(m, "label_shift", "p_value"))
    elif name == "significance":
        out.update(delta=m.get("mean_delta"), ci_low=m.get("ci_low"), d_z=m.get("d_z"),
                   p_t=m.get("t_p_value"), p_signflip=m.get("signflip_p_value"), mde=m.get("mde"))
    elif name == "feature_ablation":
        out.update(suspects=_get(m, "proxy", "suspects"), best_solo_share=_get(m, "proxy", "best_solo_share"),
                   unused=[g for g, v in (m.get("groups") or {}).items() if v.get("unused")])
    elif name == "stability":
        out.update(fold_sd=m.get("sd"), claimed_gain=m.get("claimed_gain"))
    return out


def demonstrated(rec: Mapping[str, Any]) -> bool:
    """Significance record: is a gain demonstrated (CI above the floor and adjusted t-test p < alpha)?

    The audit's status is the worst of its conditions, so a demonstrated gain can show as WARN
    when the sign-flip test disagrees; it is never inconclusive and never FAIL.
    """
    return rec["status"] in ("PASS", "WARN") and not rec["inconclusive"]


def run_one(audit_name: str, split: Split, model: ModelSpec, *, seed: int, holm_factor: float = 1.0,
            baseline: ModelSpec | None = None, config: AuditConfig | None = None,
            ctx: AuditContext | None = None) -> dict[str, Any]:
    """Run one audit in this process and summarise it.

    ``holm_factor`` multiplies the raw gating p-value before the audit decides. In a full run
    Holm multiplies an audit's p-value by at most the number of gating audits
    (:data:`N_GATING`), so ``holm_factor=N_GATING`` gives a lower bound on the power the full
    suite has, and ``holm_factor=1`` an upper bound on its false-alarm (or false-PASS) rate.
    Pass ``ctx`` to share cached fits between audits on the same split.
    """
    from auditor.audits import get_audit

    audit = get_audit(audit_name)
    ctx = ctx or AuditContext(split, model, config or bench_config(), seed=seed, baseline=baseline)
    reason = audit.skip_reason(ctx)
    if reason:
        res = run_inline(audit, ctx)
    else:
        trials = audit.plan(ctx)
        results = {t.key: audit.run_trial(ctx, t) for t in trials}
        ev = audit.measure(ctx, results)
        from auditor.audits.base import conclude

        for t in ev.gating_tests:  # Bonferroni across the suite's gating audits: a bound on Holm's p
            t.p_adjusted = min(1.0, float(t.p_value) * float(holm_factor))
        res = conclude(audit, ctx, ev, n_trials=len(trials), duration_s=0.0)
    return summarize(res)


# --------------------------------------------------------------------------- clean runs
def _null_design(kind: str, seed: int) -> tuple[Split, ModelSpec, str]:
    if kind == "generator":
        return generator_split(seed), ModelSpec(LINEAR), "generator 150/60 queries x 10 + twin synthetic set; ridge"
    if kind == "letor":
        return letor_resplit(seed), lgbm_spec(), "LETOR re-split 150/50 + 49 real queries as synthetic; LightGBM-30"
    raise ValueError(f"unknown clean-run kind {kind!r}; use one of {NULL_KINDS}")


def clean_suite_run(kind: str, seed: int) -> dict[str, Any]:
    """One clean run of the whole suite, and the significance audit on a no-gain twin pair.

    The suite run is :func:`auditor.runner.run_audit` with all six checks (Holm across the
    gating audits, exactly as ``audit run``). The candidate has a real gain over its baseline
    (``make_random``) so that a clean run should be GO. The no-gain twin pair -- ridge rankers
    with independent seeded score noise (``make_noisy_linear`` in ``tests/planting_shift.py``,
    ``salt`` 0 and 1) -- is what the significance audit's null calibration needs; it is run
    separately (raw p, no Holm) and is not part of the suite verdict.

    Returns
    -------
    dict
        ``kind, seed, verdict, audits {name: record}, significance_nogain record, seconds``.
    """
    from auditor.runner import run_audit

    t0 = time.perf_counter()
    split, model, _ = _null_design(kind, seed)
    run = run_audit(model, train=split.train, test=split.test, synthetic=split.synthetic, baseline=RANDOM,
                    config=bench_config(), seed=int(seed))
    audits = {a["name"]: summarize(a) for a in run.audits}
    nog = run_one("significance", split, ModelSpec(NOISY, {"salt": 0}), seed=seed,
                  baseline=ModelSpec(NOISY, {"salt": 1}))
    return {"kind": kind, "seed": int(seed), "verdict": run.verdict, "audits": audits,
            "significance_nogain": nog, "seconds": round(time.perf_counter() - t0, 3)}


def code_version() -> str:
    """Hash of the auditor, reference-model, plugin, plant and benchmark sources (cache key)."""
    h = hashlib.sha256()
    files = sorted((ROOT / "auditor").rglob("*.py")) + sorted((ROOT / "reference_model").rglob("*.py")) + \
        [ROOT / "examples" / "plugins" / "lightgbm_ranker.py", ROOT / "tests" / "planting.py",
         ROOT / "tests" / "planting_shift.py", Path(__file__)]
    for f in files:
        h.update(f.relative_to(ROOT).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- rates and tables
def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials (statsmodels' ``proportion_confint``)."""
    if n <= 0:
        return float("nan"), float("nan")
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(int(k), int(n), alpha=1 - level, method="wilson")
    return float(lo), float(hi)


@dataclass
class Rate:
    """One table row: ``k`` of ``n`` runs went a given way, against a target.

    Parameters
    ----------
    audit, defect, size, data : str
        What was planted where (``defect = "clean control"`` for false-alarm rows).
    k, n : int
        Runs counted (detections, or false alarms) and runs.
    kind : {"power", "false_alarm", "info"}
        ``power``: target ``rate >= target``; ``false_alarm``: ``rate <= target``; ``info``:
        reported without a target (e.g. sizes beyond the documented ones, or too few runs).
    target : float
    counted : str
        What counts (e.g. ``"FAIL"``, ``"WARN or FAIL"``).
    extra : dict
        Median figures shown in the notes (AUC, excess, p ...).
    """

    audit: str
    defect: str
    size: str
    data: str
    k: int
    n: int
    kind: str = "power"
    target: float = 0.95
    counted: str = "FAIL"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """``k / n`` (NaN without runs)."""
        return self.k / self.n if self.n else float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        """Wilson 95% interval of :attr:`rate`."""
        return wilson(self.k, self.n)

    @property
    def met(self) -> bool | None:
        """Whether the point estimate meets the target (None for ``info`` rows)."""
        if self.kind == "power":
            return bool(self.rate >= self.target)
        if self.kind == "false_alarm":
            return bool(self.rate <= self.target)
        return None

    def target_text(self) -> str:
        """The target as shown in the table (``>= 95%``, ``<= 5%`` or ``--``)."""
        if self.kind == "power":
            return f">= {self.target:.0%}"
        if self.kind == "false_alarm":
            return f"<= {self.target:.0%}"
        return "--"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able row (with the rate, its CI and whether the target is met)."""
        lo, hi = self.ci
        return {"audit": self.audit, "defect": self.defect, "size": self.size, "data": self.data, "k": self.k,
                "n": self.n, "rate": self.rate, "ci_low": lo, "ci_high": hi, "kind": self.kind,
                "target": self.target, "counted": self.counted, "met": self.met, "extra": self.extra}


def markdown_table(rows: Sequence[Rate]) -> str:
    """The rows as a Markdown table (audit, defect, size, data / model, runs, counted, rate [CI], target, met)."""
    head = ("| audit | defect | size | data / model | runs | counted | rate [95% Wilson CI] | target | met? |\n"
            "|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        lo, hi = r.ci
        met = {True: "yes", False: "**no**", None: "--"}[r.met]
        lines.append(f"| {r.audit} | {r.defect} | {r.size} | {r.data} | {r.n} | {r.counted} | "
                     f"{r.k}/{r.n} = {r.rate:.1%} [{lo:.1%}, {hi:.1%}] | {r.target_text()} | {met} |")
    return "\n".join(lines)


def machine() -> str:
    """CPU model, cores, load average, Python / numpy versions (for the record beside each table)."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return f"{cpu_model()} (load average at start {load}), Python {platform.python_version()}, numpy {np.__version__}"


def median(xs: Iterable[Any]) -> float | None:
    """Median of the finite values, None when there are none."""
    v = np.array([x for x in xs if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else None


# --------------------------------------------------------------------------- planted-defect runs
# Each task is a deterministic function of (seed, params) returning {audit name: record}; they
# live here (a plain module) so worker processes can import them by name.
def _base_split(data: str, seed: int, *, n_synthetic: int = 0) -> Split:
    if data == "letor":
        return letor_split()
    if data == "letor-resplit":
        return letor_resplit(seed, n_synthetic=n_synthetic)
    if data == "generator":
        return generator_split(seed, n_synthetic=n_synthetic)
    raise ValueError(f"unknown data {data!r}")


def _model(data: str, kind: str, trees: int) -> ModelSpec:
    if data.startswith("letor"):
        return lgbm_spec(trees)
    return ModelSpec(MEMO if kind == "memorise" else LINEAR)


def task_copies(seed: int, data: str, frac: float, trees: int = 30) -> dict[str, Any]:
    """Test queries copied into train under new ids (``plant_copied_queries``): random_label + isolation.

    On the generator the model is the memorising ranker (the V2.0 model); on LETOR, LightGBM.
    Both audits share one context (one cached fit of the model trained normally).
    """
    from rankers import plant_copied_queries

    split = plant_copied_queries(_base_split(data, seed), frac=frac, seed=seed)
    ctx = AuditContext(split, _model(data, "memorise", trees), bench_config(), seed=seed)
    return {a: run_one(a, split, ctx.model, seed=seed, holm_factor=N_GATING, ctx=ctx)
            for a in ("random_label", "isolation")}


def task_copies_suite(seed: int, frac: float, trees: int = 30) -> dict[str, Any]:
    """Copied test queries in a *full* run: the power a user gets, not its lower bound.

    The power rows judge random_label alone with its p x 4 (the largest Holm factor); here the
    whole suite runs through :func:`auditor.runner.run_audit` as ``audit run`` would, on a LETOR
    re-split (150 / 50 queries, 49 real queries as the synthetic set, a random-ranker baseline)
    with ``frac`` of the test queries copied into train under new ids, so Holm applies the factor
    the other audits' p-values leave. The record adds ``suite: {status: verdict}``.
    """
    from auditor.runner import run_audit
    from rankers import plant_copied_queries

    split = plant_copied_queries(letor_resplit(seed), frac=frac, seed=seed)
    run = run_audit(lgbm_spec(trees), train=split.train, test=split.test, synthetic=split.synthetic,
                    baseline=RANDOM, config=bench_config(), seed=int(seed))
    out: dict[str, Any] = {a["name"]: summarize(a) for a in run.audits}
    out["suite"] = {"status": run.verdict}
    return out


def task_near_copies(seed: int, data: str, frac: float, noise: float, trees: int = 30) -> dict[str, Any]:
    """Test queries copied into train with new query and item ids and Gaussian noise (isolation)."""
    from planting import plant_near_duplicates

    split = plant_near_duplicates(_base_split(data, seed), frac=frac, noise=noise, seed=seed)
    return {"isolation": run_one("isolation", split, _model(data, "", trees), seed=seed, holm_factor=N_GATING)}


def task_proxy(seed: int, data: str, strength: float, trees: int = 30) -> dict[str, Any]:
    """A label-proxy column ``label + N(0, 1/strength^2)`` in train and test (feature_ablation)."""
    from rankers import plant_label_proxy

    split = plant_label_proxy(_base_split(data, seed), strength=strength, seed=seed)
    return {"feature_ablation": run_one("feature_ablation", split, _model(data, "", trees), seed=seed)}


def task_naive(seed: int, data: str, n_queries: int) -> dict[str, Any]:
    """A naive synthetic training set: independent Gaussians per feature matching the real
    marginals (``naive_synthetic`` of the real training set), ``n_queries`` queries (synthetic_shift)."""
    from planting_shift import naive_synthetic, with_synthetic

    base = _base_split(data, seed)
    split = with_synthetic(base, naive_synthetic(base.train, n_queries=n_queries, seed=seed))
    return {"synthetic_shift": run_one("synthetic_shift", split, ModelSpec(LINEAR), seed=seed,
                                       holm_factor=N_GATING)}


def continuous_columns(data: RankingDataset, max_mode_share: float = 0.05) -> np.ndarray:
    """Non-constant columns whose most frequent value holds < ``max_mode_share`` of the rows.

    On LETOR 200 of 218 non-constant columns have a point mass (often exact zeros) above 5%:
    adding a constant to such a column moves the point mass to a value real data never takes,
    which a tree classifier separates perfectly -- not a subtle shift.
    """
    X = data.feature_matrix()
    keep = []
    for j in range(X.shape[1]):
        _, c = np.unique(X[:, j], return_counts=True)
        if c.size > 1 and c.max() < max_mode_share * X.shape[0]:
            keep.append(j)
    return np.array(keep, dtype=int)


def task_shift(seed: int, data: str, shift: float, n_columns: int, n_queries: int = 300,
               columns: str = "any") -> dict[str, Any]:
    """A synthetic set that is a faithful draw *plus* ``shift`` SD on ``n_columns`` random columns.

    Generator: real training set of ``n_queries`` queries against another draw of ``n_queries``
    queries, shifted. LETOR: 150 real training queries against the other 99 real queries
    (test and held-out parts of a re-split), shifted. ``columns="continuous"`` draws the shifted
    columns among :func:`continuous_columns` only.
    """
    from planting_shift import shift_features, with_synthetic

    if data == "generator":
        base = generator_split(seed, n_train=n_queries, n_synthetic=n_queries)
        twin = base.synthetic
    else:
        base = letor_resplit(seed)
        twin = concat_datasets(base.test, base.synthetic, name="letor-other-queries")
    cols = None
    if columns == "continuous":
        cand = continuous_columns(_letor_pool() if data != "generator" else twin)
        cols = sorted(np.random.default_rng(seed).choice(cand, size=min(n_columns, cand.size), replace=False).tolist())
    syn = shift_features(twin, shift=shift, n_columns=n_columns, columns=cols, seed=seed, name="shifted-synthetic")
    split = with_synthetic(Split(base.train, base.test, name=base.name), syn)
    return {"synthetic_shift": run_one("synthetic_shift", split, ModelSpec(LINEAR), seed=seed,
                                       holm_factor=N_GATING)}


def task_gain(seed: int, data: str, noise: float, trees: int = 30) -> dict[str, Any]:
    """A candidate with a modest real gain: the ridge ranker against the same ranker with score
    noise of ``noise`` x its score SD (``make_noisy_linear``) (significance)."""
    split = _base_split(data, seed)
    return {"significance": run_one("significance", split, ModelSpec(LINEAR), seed=seed, holm_factor=N_GATING,
                                    baseline=ModelSpec(NOISY, {"noise": noise, "salt": 1}))}


def task_unstable(seed: int, jitter: float, min_gain: float = 0.05) -> dict[str, Any]:
    """A ranker whose coefficients are perturbed per training set (``make_unstable_linear``) on a
    generator split with 200 training queries, claimed gain ``min_gain`` (stability)."""
    split = generator_split(seed, n_train=200, n_synthetic=0)
    cfg = bench_config(min_gain=min_gain)
    return {"stability": run_one("stability", split, ModelSpec(UNSTABLE, {"jitter": jitter}), seed=seed,
                                 config=cfg)}


def task_stable(seed: int, min_gain: float = 0.05) -> dict[str, Any]:
    """The clean twin of :func:`task_unstable`: the plain ridge ranker, same split and claim."""
    split = generator_split(seed, n_train=200, n_synthetic=0)
    return {"stability": run_one("stability", split, ModelSpec(LINEAR), seed=seed,
                                 config=bench_config(min_gain=min_gain))}


#: clean designs with a label-free prior (:func:`prior_split`)
PRIOR_DATA = ("letor", "letor-resplit", "fixed-direction")


def prior_split(data: str, seed: int) -> Split:
    """A clean split for the label-free-prior family.

    ``letor``: the sample as shipped (no qid column: the loader numbers each file's queries from
    0, so ids coincide across the split and queries are matched by content); ``letor-resplit``:
    re-split at random by query with explicit, disjoint ids (150 / 50); ``fixed-direction``:
    :func:`auditor.prior_models.make_prior_split` (150 / 50 queries, the feature sum ranks well).
    """
    if data == "letor":
        return letor_split()
    if data == "letor-resplit":
        return letor_resplit(seed, n_synthetic=0)
    if data == "fixed-direction":
        from auditor.prior_models import make_prior_split

        return make_prior_split(seed=_PRIOR_OFFSET + int(seed))
    raise ValueError(f"unknown prior data {data!r}; use one of {PRIOR_DATA}")


def task_prior(seed: int, data: str, model: str, n_seeds: int = 3) -> dict[str, Any]:
    """random_label alone on a clean split whose model ranks without labels (raw p, no Holm:
    an upper bound on the false-alarm rate). ``model``: ``"mlp"`` (two layers, MSE, 15 epochs),
    ``"ridge"`` (the ``audit init-plugin`` scaffold's model) or ``"lgbm"`` (LightGBM, 30 trees: the
    clean-suite design's model); ``n_seeds``: variant A's seeds."""
    spec = {"mlp": ModelSpec(MLP), "ridge": ModelSpec(LINEAR), "lgbm": lgbm_spec()}[model]
    cfg = bench_config({"random_label": {"n_seeds": int(n_seeds)}})
    return {"random_label": run_one("random_label", prior_split(data, seed), spec, seed=seed, config=cfg)}


def task_reference(seed: int, scenario: str, checks: str) -> dict[str, Any]:
    """The reference model (CoTRR-Pro, quick preset on the CPU) on one of its bundled scenarios,
    ``checks`` run together through :func:`auditor.runner.run_audit` (Holm across them)."""
    from auditor.runner import run_audit

    run = run_audit("reference", model_params={"scenario": scenario, "preset": "quick"}, checks=checks,
                    config=bench_config(), seed=int(seed))
    out: dict[str, Any] = {a["name"]: summarize(a) for a in run.audits}
    out["verdict"] = run.verdict
    return out


def task_clean(seed: int, kind: str) -> dict[str, Any]:
    """:func:`clean_suite_run` as a task."""
    return clean_suite_run(kind, seed)


def task_null_audit(seed: int, audit: str) -> dict[str, Any]:
    """One gating audit alone on a clean generator split (raw p, no Holm): cheap null runs at scale.

    ``random_label`` and ``isolation``: the ridge ranker on a clean split (150 / 60 queries);
    ``synthetic_shift``: the same split with a faithful synthetic set; ``significance``: the
    no-gain twin pair (ridge rankers with independent score noise, ``salt`` 0 and 1).
    """
    if audit == "significance":
        split = generator_split(seed, n_synthetic=0)
        return {audit: run_one(audit, split, ModelSpec(NOISY, {"salt": 0}), seed=seed,
                               baseline=ModelSpec(NOISY, {"salt": 1}))}
    split = generator_split(seed, n_synthetic=150 if audit == "synthetic_shift" else 0)
    return {audit: run_one(audit, split, ModelSpec(LINEAR), seed=seed)}


TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "null_audit": task_null_audit,
    "copies": task_copies, "copies_suite": task_copies_suite, "near_copies": task_near_copies,
    "proxy": task_proxy, "naive": task_naive,
    "shift": task_shift, "gain": task_gain, "unstable": task_unstable, "stable": task_stable,
    "reference": task_reference, "clean": task_clean, "prior": task_prior,
}


def _run_task(name: str, seed: int, params: Mapping[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    rec = TASKS[name](seed, **params)
    rec.setdefault("seed", int(seed))
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    return rec


def task_key(name: str, params: Mapping[str, Any]) -> str:
    """File-name-safe key of a task and its parameters (one cache file per key)."""
    p = ",".join(f"{k}={params[k]}" for k in sorted(params))
    return f"{name}[{p}]".replace("/", "_").replace(" ", "")


def run_tasks(jobs: Sequence[tuple[str, Mapping[str, Any], Sequence[int]]], *, workers: int = 1,
              cache: str | os.PathLike | None = None,
              log: Callable[[str], None] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Run every ``(task name, params, seeds)``; returns ``{task_key: [record per seed, in order]}``.

    Parameters
    ----------
    jobs : list of (str, dict, list of int)
    workers : int, default 1
        Processes (``spawn``: no state crosses from the parent). Records do not depend on it.
    cache : path, optional
        Directory of JSON-lines files, one per task key and :func:`code_version`; records found
        there are reused, new ones appended as they finish (an interrupted benchmark resumes).
    log : callable, optional
        Progress lines.
    """
    version = code_version()
    done: dict[str, dict[int, dict[str, Any]]] = {}
    todo: list[tuple[str, str, Mapping[str, Any], int]] = []
    for name, params, seeds in jobs:
        key = task_key(name, params)
        have = done.setdefault(key, {})
        if cache is not None:
            f = Path(cache) / f"{key}-{version}.jsonl"
            if f.exists():
                for line in f.read_text().splitlines():
                    if line.strip():
                        r = json.loads(line)
                        have[int(r["seed"])] = r
        todo += [(key, name, params, int(s)) for s in seeds if int(s) not in have]
    if cache is not None:
        Path(cache).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n_total = len(todo)

    def finish(i: int, key: str, rec: dict[str, Any]) -> None:
        done[key][int(rec["seed"])] = rec
        if cache is not None:
            with (Path(cache) / f"{key}-{version}.jsonl").open("a") as f:
                f.write(json.dumps(rec, allow_nan=False) + "\n")
        if log and (i % 10 == 0 or i == n_total):
            log(f"  {i}/{n_total} runs done ({time.perf_counter() - t0:.0f} s)")

    if workers <= 1 or n_total <= 1:
        for i, (key, name, params, s) in enumerate(todo, 1):
            finish(i, key, _run_task(name, s, params))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            futs = {ex.submit(_run_task, name, s, dict(params)): key for key, name, params, s in todo}
            for i, fut in enumerate(as_completed(futs), 1):
                finish(i, futs[fut], fut.result())
    out: dict[str, list[dict[str, Any]]] = {}
    for name, params, seeds in jobs:
        key = task_key(name, params)
        out[key] = [done[key][int(s)] for s in seeds]
    return out
