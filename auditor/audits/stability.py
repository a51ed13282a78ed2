"""Stability audit: how much does the metric move from one data subset to another?

Grouped K-fold cross-validation on the training set, folds made of whole queries (K = 5 by
default, 3 with ``--quick``): fit on K - 1 folds, evaluate the held-out fold. With
``n_seeds > 1`` the whole K-fold is repeated with a new partition and a new model seed
(repeated K-fold). The spread of the fold means -- sd, min, max, range -- is the size of
the variation that a single train/test split hides.

The spread is compared with the claimed gain: the candidate's mean gain over the baseline
on the test set (the significance audit's observed Δ, recomputed here from the same fits)
when a baseline is given and the gain is positive, else the declared ``min_gain``. WARN when
the fold-to-fold **sd** exceeds it: a gain smaller than the sd of the metric across folds is
smaller than what one more or one fewer reshuffle of queries does to the number. (The sd,
not the range, because the range grows with K.) Without a claimed gain the spread is only
reported. Non-critical: a WARN tells the reader how to quote the result, it does not block.
A PASS needs the sd's one-sided 95% upper bound (chi-square, :func:`sd_upper_bound`; approximate,
since folds share training data) below the claimed gain; a point estimate below it with a bound
above it keeps the PASS status of the point condition but its summary says "stability not
established", with the number of fold estimates (repeats of K-fold, ``n_seeds``) that would
decide it; WARN stays reserved for a sd larger than the claimed gain. Fewer than 2 usable folds, or a metric that is the same
on every held-out query, is a WARN saying why. The audit is advisory: it is never inconclusive,
so it never holds the verdict back.

Reported beside it: the fold-to-fold sd expected from query sampling alone
(``sd_query / sqrt(queries per fold)``) and a one-way ANOVA of per-query values across folds
-- a spread well above sampling noise points at an unstable training procedure rather than
a small test set. The t-interval of the cross-validated mean is shown with the caveat that
fold estimates are correlated (Bengio & Grandvalet 2004), so it is too narrow.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from scipy import stats as _st

from auditor.audits.base import (Audit, Condition, Decision, Evidence, Facts, Trial, condition, judge, jsonable,
                                 plot_intervals)
from auditor.baseline import baseline_metric_values
from auditor.config import ParamText, declare, param
from auditor.errors import ConfigError

__all__ = ["StabilityAudit", "query_folds"]


def query_folds(n_queries: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold index 0..k-1 per query, shape (n_queries,): a random partition into near-equal folds."""
    fold = np.empty(n_queries, dtype=np.int64)
    fold[rng.permutation(n_queries)] = np.arange(n_queries) % k
    return fold


def sd_upper_bound(sd: float, n: int, level: float = 0.95) -> float:
    """One-sided ``level`` upper confidence bound of a standard deviation from ``n`` values.

    Chi-square interval for normal values, ``sd * sqrt((n - 1) / chi2.ppf(1 - level, n - 1))``;
    NaN for n < 2. Fold means share training data, so read it as approximate.
    """
    if n < 2 or not np.isfinite(sd):
        return float("nan")
    return float(sd * np.sqrt((n - 1) / _st.chi2.ppf(1 - level, n - 1)))


def folds_needed(sd: float, claimed: float, level: float = 0.95, n_max: int = 10_000) -> int | None:
    """Fewest fold estimates whose sd upper bound (:func:`sd_upper_bound`) falls below ``claimed``
    if the observed ``sd`` stayed as it is; None when sd >= claimed or past ``n_max``."""
    if not (np.isfinite(sd) and np.isfinite(claimed) and 0 <= sd < claimed):
        return None
    for n in range(2, n_max + 1):
        if sd_upper_bound(sd, n, level) < claimed:
            return n
    return None


def _t_ci(x: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if x.size < 2:
        m = float(x.mean()) if x.size else float("nan")
        return m, m
    se = x.std(ddof=1) / np.sqrt(x.size)
    h = float(_st.t.ppf(0.5 + level / 2, x.size - 1) * se)
    return float(x.mean() - h), float(x.mean() + h)


# --------------------------------------------------------------------------- conditions
# Functions of the measurements (:class:`Facts`), listed on StabilityAudit.conditions; the first two
# are preconditions (a Condition only when the spread cannot be measured), the last two exclusive.
def _spread(m: Mapping[str, Any]) -> str:
    return (f"mean {m['mean']:.4f}, sd {m['sd']:.4f}, range {m['min']:.4f}-{m['max']:.4f} over {m['n_folds']} "
            f"held-out folds" if np.isfinite(m["sd"]) else f"{m['n_folds']} usable fold(s)")


def _sampling_noise(m: Mapping[str, Any]) -> str:
    if np.isfinite(m["sd_expected_from_queries"]):
        return f"; query sampling alone explains sd ≈ {m['sd_expected_from_queries']:.4f}"
    return ""


def _measurable(m: Mapping[str, Any]) -> bool:
    return bool(np.isfinite(m["sd"])) and not (m["sd"] == 0 and m.get("sd_query") == 0)


@condition()
def folds_defined(f: Facts) -> Condition | None:
    """WARN when fewer than two folds have a defined metric (no sd)."""
    if np.isfinite(f.measurements["sd"]):
        return None
    return Condition("at least two folds have a defined metric", "WARN", _spread(f.measurements), "k >= 2 usable folds")


@condition()
def metric_varies(f: Facts) -> Condition | None:
    """WARN when the metric is the same on every held-out query (no ordering changes it)."""
    m = f.measurements
    if not (m["sd"] == 0 and m.get("sd_query") == 0):
        return None
    return Condition(f"{m['metric']} varies across held-out queries", "WARN", _spread(m),
                     "a spread needs per-query values that differ")


@condition()
def spread_reported(f: Facts) -> Condition | None:
    """Report only (PASS) when no gain was claimed to compare the spread with."""
    m = f.measurements
    if not _measurable(m) or m["claimed_gain"] is not None:
        return None
    return Condition(f"the fold-to-fold spread of {m['metric']} is reported (no claimed gain to compare)", "PASS",
                     _spread(m) + _sampling_noise(m), "report only: no baseline gain and no min_gain declared")


@condition()
def sd_within_claimed_gain(f: Facts) -> Condition | None:
    """WARN when the fold-to-fold sd exceeds the claimed gain; advisory, so a sd below the gain whose
    upper bound is not stays PASS (the summary says stability is not established)."""
    m = f.measurements
    claimed = m["claimed_gain"]
    if not _measurable(m) or claimed is None:
        return None
    sd, up = m["sd"], m.get("sd_upper", float("nan"))
    return Condition(f"the fold-to-fold sd of {m['metric']} is no larger than the claimed gain",
                     "PASS" if sd <= claimed else "WARN",
                     f"sd {sd:.4f} (95% upper bound {up:.4f}, {m['n_folds']} folds) vs gain {claimed:.4f}"
                     f"{_sampling_noise(m)}",
                     f"sd <= claimed gain ({m['claimed_gain_source']}); established when also its upper bound is "
                     "(chi-square, approximate: folds share training data); sd rather than range because the range "
                     "grows with k")


class StabilityAudit(Audit):
    """Query-grouped K-fold spread of the metric (see the module docstring)."""

    name = "stability"
    title = "Cross-validation stability"
    question = ("How much does the metric change when the model is trained and evaluated on different subsets of "
                "queries -- and is the claimed gain larger than that variation?")
    method = ParamText("Grouped K-fold on the training set with whole queries per fold (K = {k}; --quick {quick_k}), optionally "
              "repeated over n_seeds partitions and model seeds: fit on K - 1 folds, evaluate the held-out fold. "
              "Reports each fold's mean with a t-interval over its queries, and the mean, sd, min, max and range "
              "of the fold means. WARN when the fold-to-fold sd exceeds the claimed gain; when only its one-sided "
              "95% upper bound does, the summary says stability is not established. Claimed gain: the observed "
              "test-set gain over the baseline when positive, else the declared min_gain; report only when neither "
              "exists. Context: the sd expected from query sampling alone and a one-way ANOVA across folds.")
    citations = [
        "Kohavi (1995). A study of cross-validation and bootstrap for accuracy estimation and model selection. "
        "IJCAI.",
        "Bengio & Grandvalet (2004). No unbiased estimator of the variance of K-fold cross-validation. JMLR 5.",
        "Nadeau & Bengio (2003). Inference for the generalization error. Machine Learning 52(3).",
        "Bouthillier et al. (2021). Accounting for variance in machine learning benchmarks. MLSys.",
    ]
    blind_spots = [
        "Folds are drawn from the training set: a shift between training and test data (see synthetic-shift) "
        "is not part of the spread.",
        "The fold-to-fold sd mixes query-sampling noise with training instability; the ANOVA and the expected "
        "sampling sd help tell them apart, but with few folds neither is precise.",
        "K-fold estimates are correlated (training sets overlap), so the CI of the cross-validated mean is too "
        "narrow; it is descriptive, not a test.",
        "Leakage inside the training set (duplicate queries across folds) makes every fold look good and stable.",
    ]
    critical = False
    gating = False
    defaults = declare(
        k=param(int, 5, min=2, quick=3, help="folds (reduced to the number of training queries)"),
        n_seeds=param(int, 1, min=1, help="partitions and model seeds (K fits each)"),
        ci_level=param(float, 0.95, min=0, max=1, min_open=True, max_open=True,
                       help="level of each fold's t-interval"),
    )

    # ------------------------------------------------------------------ plan / run
    def _params(self, ctx: Any) -> dict[str, Any]:
        p = ctx.params(self)
        if int(p["k"]) < 2:
            raise ConfigError(f"[audits.stability] k must be >= 2, got {p['k']}.")
        if int(p["n_seeds"]) < 1:
            raise ConfigError(f"[audits.stability] n_seeds must be >= 1, got {p['n_seeds']}.")
        return p

    def skip_reason(self, ctx: Any) -> str | None:
        if ctx.train.n_queries < 2:
            return f"The training set has {ctx.train.n_queries} query; query-grouped folds need at least 2."
        return None

    def plan(self, ctx: Any) -> list[Trial]:
        p = self._params(ctx)
        k = min(int(p["k"]), ctx.train.n_queries)
        trials = [Trial(self.name, f"seed{s}_fold{f}", {"seed": s, "fold": f, "k": k})
                  for s in range(int(p["n_seeds"])) for f in range(k)]
        if ctx.baseline is not None or ctx.baseline_scores is not None:
            trials.append(Trial(self.name, "claimed_gain", {"seed": 0}))
        return trials

    def run_trial(self, ctx: Any, trial: Trial) -> dict[str, Any]:
        if trial.key == "claimed_gain":
            c = ctx.metric_values(ctx.test, ctx.score(ctx.fit(0), ctx.test))
            b, src = baseline_metric_values(ctx, 0)
            d = c - b
            d = d[np.isfinite(d)]
            return jsonable({"delta": float(d.mean()) if d.size else float("nan"), "n_queries": int(d.size),
                             "source": src})
        seed, f, k = int(trial.params["seed"]), int(trial.params["fold"]), int(trial.params["k"])
        train = ctx.train
        fold = query_folds(train.n_queries, k, ctx.rng(self.name, "folds", seed))
        fit_on = train.subset(fold != f, name=f"{train.name}[folds != {f}]")
        model = ctx.fit(seed, train=fit_on)
        # the held-out fold's copy is made after the fit and the fit's copy dropped first: both
        # alive during the fit set the peak memory of a 1M-row audit (issue 17)
        del fit_on
        held = train.subset(fold == f, name=f"{train.name}[fold {f}]")
        vals = ctx.metric_values(held, ctx.score(model, held))
        ok = np.isfinite(vals)
        return jsonable({"seed": seed, "fold": f, "k": k, "n_queries": int(held.n_queries),
                         "n_defined": int(ok.sum()), "mean": float(vals[ok].mean()) if ok.any() else float("nan"),
                         "values": vals})

    # ------------------------------------------------------------------ measure
    def measure(self, ctx: Any, results: Mapping[str, dict[str, Any]]) -> Evidence:
        p = self._params(ctx)
        level = float(p["ci_level"])
        metric = ctx.metric
        folds = sorted((r for k, r in results.items() if k != "claimed_gain"), key=lambda r: (r["seed"], r["fold"]))
        means = np.array([np.nan if r["mean"] is None else r["mean"] for r in folds], dtype=float)
        vals = [np.array([np.nan if v is None else v for v in r["values"]], dtype=float) for r in folds]
        ok = np.isfinite(means)
        fm = means[ok]
        n_cells = int(fm.size)
        mean = float(fm.mean()) if n_cells else float("nan")
        sd = float(fm.std(ddof=1)) if n_cells >= 2 else float("nan")
        lo, hi = _t_ci(fm, level)
        pooled = np.concatenate([v[np.isfinite(v)] for v in vals]) if vals else np.zeros(0)
        q_per_fold = float(np.mean([r["n_defined"] for r in folds])) if folds else float("nan")
        # spread expected if folds differed only by which queries they hold (pooled within-fold sd)
        within = [v[np.isfinite(v)] for v in vals]
        ss = sum(float(((w - w.mean()) ** 2).sum()) for w in within if w.size > 1)
        dfw = sum(w.size - 1 for w in within if w.size > 1)
        sd_query = float(np.sqrt(ss / dfw)) if dfw > 0 else float("nan")
        sd_expected = sd_query / np.sqrt(q_per_fold) if q_per_fold > 0 else float("nan")
        seeds = sorted({r["seed"] for r in folds})
        anova_p = float("nan")
        first = [w for r, w in zip(folds, within) if r["seed"] == seeds[0] and w.size >= 2] if seeds else []
        if len(first) >= 2 and np.ptp(np.concatenate(first)) > 0:
            anova_p = float(_st.f_oneway(*first).pvalue)
        seed_sd = float("nan")
        if len(seeds) > 1:
            by_seed = [means[[i for i, r in enumerate(folds) if r["seed"] == s]] for s in seeds]
            seed_means = np.array([np.nanmean(b) for b in by_seed])
            seed_sd = float(np.std(seed_means, ddof=1))
        claimed, claim_src = None, None
        cg = results.get("claimed_gain")
        if cg is not None and cg.get("delta") is not None and np.isfinite(cg["delta"]) and cg["delta"] > 0:
            claimed, claim_src = float(cg["delta"]), "observed test-set gain over the baseline"
        elif float(ctx.config.min_gain) > 0:
            claimed, claim_src = float(ctx.config.min_gain), "declared min_gain"
        m = {
            "metric": metric, "k": int(folds[0]["k"]) if folds else 0, "n_seeds": len(seeds), "n_folds": n_cells,
            "fold_means": means, "mean": mean, "sd": sd,
            "min": float(fm.min()) if n_cells else float("nan"), "max": float(fm.max()) if n_cells else float("nan"),
            "range": float(np.ptp(fm)) if n_cells else float("nan"), "ci_low": lo, "ci_high": hi, "ci_level": level,
            "queries_per_fold": q_per_fold, "sd_query": sd_query, "sd_expected_from_queries": sd_expected,
            "anova_p": anova_p, "seed_to_seed_sd": seed_sd, "pooled_mean": float(pooled.mean()) if pooled.size else None,
            "sd_upper": sd_upper_bound(sd, n_cells), "sd_upper_level": 0.95,
            "folds_needed": folds_needed(sd, claimed) if claimed is not None else None,
            "claimed_gain": claimed, "claimed_gain_source": claim_src,
            "observed_test_gain": None if cg is None else cg.get("delta"),
        }
        rows = []
        for r, w in zip(folds, within):
            a, b = _t_ci(w, level)
            lab = f"fold {r['fold'] + 1}" + (f" (seed {r['seed']})" if len(seeds) > 1 else "")
            rows.append({"label": f"{lab}, {r['n_defined']} q", "estimate": r["mean"], "low": a, "high": b})
        rows.append({"label": "cross-validated mean", "estimate": mean, "low": lo, "high": hi})
        plots = [plot_intervals(f"{metric} per held-out fold (query-grouped {m['k']}-fold, {level:.0%} t-intervals)",
                                rows, xlabel=metric, ref=mean)]
        notes = []
        n_undef = sum(r["n_queries"] - r["n_defined"] for r in folds)
        if n_undef:
            notes.append(f"{n_undef} held-out queries have an undefined {metric} (no relevant item) and are excluded.")
        if n_cells < len(folds):
            notes.append(f"{len(folds) - n_cells} fold(s) had no query with a defined {metric}.")
        notes.append("Fold estimates share training data, so the CI of the cross-validated mean is too narrow "
                     "(Bengio & Grandvalet 2004); read it as descriptive.")
        return Evidence(measurements=m, p_value=None, plots=plots, notes=notes)

    # ------------------------------------------------------------------ decide
    conditions = (folds_defined, metric_varies, spread_reported, sd_within_claimed_gain)

    def decide(self, ctx: Any, evidence: Evidence, p_adjusted: float | None) -> Decision:
        f = Facts.of(ctx, evidence, p_adjusted, ctx.params(self))
        m = f.measurements
        metric = m["metric"]
        found = judge(self.conditions, f)
        cond = list(found.values())
        spread = _spread(m)
        # advisory audit: an undecidable spread is a WARN with the reason, never inconclusive (it must not
        # hold back the verdict)
        if "folds_defined" in found:
            return Decision(cond, f"Cannot measure the spread of {metric}: {spread} (n < 2; folds need queries with a "
                                  f"relevant item).",
                            ["Use more training queries (at least 2 usable folds) or a smaller k."], status="WARN")
        if "metric_varies" in found:
            return Decision(cond, (f"Cannot measure the spread of {metric}: it has the same value on every held-out "
                                   "query (for example all labels equal, or one candidate per query), so no ordering "
                                   "changes it."), ["Check the training labels: graded labels and several candidates "
                                                    "per query are needed."], status="WARN")
        if "spread_reported" in found:
            return Decision(cond, f"{metric} across query-grouped folds: {spread}; no gain was claimed to compare it "
                                  f"with.",
                            ["Quote cross-validated results as mean ± sd over folds.",
                             "Declare min_gain (audit.toml) or give a baseline to have the spread judged."])
        sd, claimed, src = m["sd"], m["claimed_gain"], m["claimed_gain_source"]
        up = m.get("sd_upper", float("nan"))
        if np.isfinite(up) and sd <= claimed and up < claimed:
            summary = (f"{metric} is stable across query-grouped folds ({spread}): the fold-to-fold sd is at most "
                       f"{up:.4f} (one-sided 95% bound), below the claimed gain {claimed:.4f} ({src}).")
            return Decision(cond, summary, [])
        if sd <= claimed:
            need = m.get("folds_needed")
            k = max(int(m.get("k") or 1), 1)
            more = (f"; about {need} fold estimates (n_seeds = {int(np.ceil(need / k))} repeats of {k}-fold) would "
                    "bound it below the gain if the sd stays the same" if need else "")
            summary = (f"Stability not established (advisory): the fold-to-fold sd of {metric} ({spread}) is below the "
                       f"claimed gain {claimed:.4f} ({src}), but with {m['n_folds']} folds its one-sided 95% upper "
                       f"bound {up:.4f} is not{more}.")
            return Decision(cond, summary, ["Repeat the K-fold over seeds (n_seeds in audit.toml) to bound the "
                                            "spread, or quote the gain as mean ± sd over folds."], status="PASS")
        cause = ""
        if np.isfinite(m["sd_expected_from_queries"]) and sd > 2 * m["sd_expected_from_queries"]:
            cause = " (more than twice what query sampling explains: training looks unstable)"
        summary = (f"The claimed gain {claimed:.4f} ({src}) is smaller than the fold-to-fold sd of {metric} "
                   f"({spread}){cause}.")
        steps = ["Do not quote the gain from a single split: report mean ± sd over folds and seeds.",
                 "Evaluate on more queries, or repeat training over seeds (n_seeds) to separate model variance from "
                 "query sampling."]
        return Decision(cond, summary, steps)
