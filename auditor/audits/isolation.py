"""Train/test isolation: does any test query, row or entity also sit in the training data?

A model evaluated on rows it was trained on reports memory, not generalisation (the V2.0
failure: test queries copied into training). This audit looks for every form of overlap a
ranking split can have:

- **query overlap** -- the same query id, the same normalised query text, or the same query
  under a new id (its candidate rows reappear together in one training query);
- **exact duplicates** -- a test row whose feature row (hash of all feature groups, rounded
  to ``hash_decimals``) occurs in training under the same query: the same (query, item) pair
  on both sides of the split;
- **shared items** -- the same item (``item_id``, else an identical feature row) under a
  *different* query: normal in ranking data (one document judged for several queries), so it
  is reported and at most a WARN;
- **group / entity overlap** (``group_id``) and **temporal order** (``timestamp``);
- **near-duplicates** -- cosine similarity of L2-normalised feature groups, by exact blocked
  search (:mod:`auditor.neighbors`) up to ``near_dup_exact_max_rows`` training rows; above it,
  each test and reference row is compared exactly with the training rows that share a leaf with
  it in a random-projection forest (one forest over both splits, so test and reference rows meet
  their candidates under the same rules): every similarity reported is the exact cosine of a real
  pair, a missed neighbour can only lower a row's similarity, and the recall of planted
  near-copies is measured (benchmarks/bench_near_dup.py), not assumed. Judged against the data's
  own neighbourhood structure
  rather than a fixed threshold: each test row's nearest (non-identical) training row is
  compared with the nearest training row *of another query* for training rows themselves
  (the same pool, so the same "max over n rows" effect). A test row is flagged when it is
  closer to training than all but ``1 - near_dup_quantile`` of training rows are to other
  training queries, and the flagged share is tested against whole-query random re-labelling
  of test vs reference queries (a permutation test: queries, not rows, are exchangeable).
  A single copied query cannot be significant in a whole-query test, so a second rule catches
  gross copies: a test row whose cosine distance to training is ``near_copy_factor`` (10) times
  smaller than the smallest distance between rows of two different training queries is a copy
  within noise, like an exact duplicate.

The identity checks are deterministic: any overlap they find is a finding, none is an answer.
The near-duplicate test is statistical, so its PASS must be earned: it states the excess it
rules out -- the test's power, at alpha before Holm, to detect an excess of
``min_contamination_rate`` (1%) of the test rows (binomial approximation: under the null each
test row is flagged with the null's expected share, under the alternative with that share plus
the floor). Power below 80%, an excess at or above the floor that is not significant, or a
training set too small to judge near-duplicates at all makes the audit INCONCLUSIVE, with the
test rows (and queries of this size) that would give 80% power.

On the shared LETOR sample a fixed cosine threshold of 0.95 flags 12% of a clean test set;
this rule flags none of it.

Row and query identity (:func:`row_hashes`, :func:`query_identity`, ...) live in
:mod:`auditor.rowid`, shared with the random-label audit's variant B so that both audits agree on
what "the same row" and "the same query" mean; they are re-exported here for existing callers.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from auditor.audits.base import (Audit, Condition, Decision, Evidence, Facts, ModelFailure, Trial, condition, judge,
                                 jsonable, plot_bars, plot_hist, plot_intervals, plot_table)
from auditor.config import ParamText, declare, param
from auditor.errors import ConfigError
from auditor.rowid import ids_are_generated, item_keys, matched_rows, normalise_text, query_identity, row_hashes

__all__ = ["IsolationAudit", "row_hashes", "item_keys", "normalise_text", "query_identity", "ids_are_generated",
           "wilson_interval", "cluster_bootstrap_rate"]

_DISJOINT_KEYS = ("qid", "group_id", "item_id")
_TEMPORAL = ("warn", "fail", "ignore")


# --------------------------------------------------------------------------- small statistics
def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k/n`` (statsmodels ``proportion_confint``)."""
    if n <= 0:
        return (float("nan"), float("nan"))
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(int(k), int(n), alpha=1 - level, method="wilson")
    return float(lo), float(hi)


def cluster_bootstrap_rate(flags: np.ndarray, query_index: np.ndarray, *, n_resamples: int = 2000,
                           level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Row share of ``flags`` with a percentile CI from resampling whole queries.

    Rows of one query are not independent (a copied query contaminates all its rows), so the
    bootstrap resamples queries and recomputes ``sum(flags) / sum(rows)``.

    Returns
    -------
    (estimate, low, high)
    """
    f = np.asarray(flags, dtype=np.float64)
    qi = np.asarray(query_index)
    nq = int(qi.max()) + 1 if qi.size else 0
    if nq == 0:
        return (float("nan"),) * 3
    k = np.bincount(qi, weights=f, minlength=nq)
    n = np.bincount(qi, minlength=nq).astype(np.float64)
    est = float(k.sum() / n.sum())
    rng = np.random.default_rng(seed)
    B = int(n_resamples)
    out = np.empty(B)
    chunk = max(1, (8 * 2**20) // max(nq, 1))
    for s in range(0, B, chunk):
        m = min(chunk, B - s)
        idx = rng.integers(0, nq, size=(m, nq))
        out[s:s + m] = k[idx].sum(1) / n[idx].sum(1)
    a = (1 - level) / 2
    lo, hi = np.quantile(out, [a, 1 - a])
    return est, float(lo), float(hi)


def near_dup_power(n_rows: int, p0: float, excess: float, *, alpha: float = 0.05) -> float:
    """Power of the near-duplicate test to detect an excess share ``excess`` over the null's ``p0``.

    Binomial approximation of the whole-query permutation test: under the null each of the
    ``n_rows`` test rows is flagged with probability ``p0`` (the null's expected share), so the
    test rejects from the smallest count ``k`` with ``P(Bin(n, p0) >= k) < alpha``; under the
    alternative rows are flagged with ``p0 + excess``.
    """
    from scipy.stats import binom

    n = int(n_rows)
    if n < 1 or not np.isfinite(p0):
        return 0.0
    p0 = min(max(float(p0), 1e-12), 1.0)
    k = int(binom.isf(alpha, n, p0)) + 1  # smallest k with P(X >= k) <= alpha (up to the discrete step)
    while k > 0 and binom.sf(k - 2, n, p0) < alpha:
        k -= 1
    while binom.sf(k - 1, n, p0) >= alpha and k <= n:
        k += 1
    if k > n:
        return 0.0
    return float(binom.sf(k - 1, n, min(1.0, p0 + float(excess))))


def near_dup_rows_needed(p0: float, excess: float, *, alpha: float = 0.05, power: float = 0.8,
                         n_max: int = 10_000_000) -> int | None:
    """Smallest number of test rows at which :func:`near_dup_power` reaches ``power`` (None past ``n_max``)."""
    if not (np.isfinite(p0) and excess > 0):
        return None
    lo, hi = 1, 16
    while near_dup_power(hi, p0, excess, alpha=alpha) < power:
        lo, hi = hi, hi * 2
        if hi > n_max:
            return None
    while lo < hi:  # power is not monotone in n step by step (discreteness): the first n of the bracket
        mid = (lo + hi) // 2
        if near_dup_power(mid, p0, excess, alpha=alpha) >= power:
            hi = mid
        else:
            lo = mid + 1
    return int(hi)


#: the candidate search's measured recall (benchmarks/bench_near_dup.py recall; docs/PERFORMANCE.md)
FOREST_RECALL = ("recall against the exact search measured on MSLR-shaped data with planted near-copies: 99.6% "
                 "(noise 0.1 SD) and 100% (0.01 SD) of planted rows' nearest training row found, every planted row "
                 "the exact search flagged also flagged (16 trees, leaves <= 1024 rows; docs/PERFORMANCE.md)")


def _search_guarantee(search: Mapping[str, Any] | None) -> str:
    """What the near-duplicate search guarantees, in words, from the trial's ``search`` record."""
    if not search:
        return ""
    n, cap = search["train_rows"], search["exact_max_rows"]
    if search["mode"] == "exact":
        return (f"exact: every test and reference row compared with all {n} training rows "
                f"(exact up to near_dup_exact_max_rows = {cap})")
    return (f"verified candidates: {n} training rows > near_dup_exact_max_rows = {cap}, so each test and reference "
            f"row is compared exactly with the training rows sharing a leaf with it in {search['trees']} "
            f"random-projection trees (leaves <= {search['leaf_rows']} rows); every similarity reported is the exact "
            f"cosine of a real pair, a missed neighbour can only lower a row's similarity; {FOREST_RECALL}")


def _fmt_rate(k: int, n: int) -> str:
    return f"{k}/{n} ({(k / n if n else 0):.1%})"


# --------------------------------------------------------------------------- conditions
# Each is a function of the measurements and thresholds (:class:`Facts`); IsolationAudit.conditions
# lists them in report order and decide composes the verdict from what they found.
_NEAR_DUP = "test rows are no closer to training than training rows are to other training queries (near-duplicates)"


@condition("disjoint")
def query_ids_disjoint(f: Facts) -> Condition | None:
    """Declared-disjoint query ids (or normalised query texts) shared by the two splits: FAIL."""
    if "qid" not in f.params["disjoint"]:
        return None
    m = f.measurements
    qo = m["query_overlap"]
    n_id = qo["by_qid"] + qo["by_text"]
    return Condition(
        "no test query id or normalised query text also occurs in training (declared disjoint)",
        "FAIL" if n_id else "PASS",
        f"{_fmt_rate(n_id, m['n_test_queries'])} test queries ({qo['by_qid']} by id, {qo['by_text']} by text)"
        + (f", e.g. {', '.join(qo['examples'][:3])}" if n_id else ""),
        "any overlap of ids declared disjoint (disjoint = %s)" % f.params["disjoint"])


@condition("disjoint", "query_match_share")
def queries_not_copied(f: Facts) -> Condition | None:
    """A test query whose rows reappear together in one training query (a copy under a new id): FAIL."""
    if "qid" not in f.params["disjoint"]:
        return None
    m = f.measurements
    n_copied = m["query_overlap"]["by_content"]
    return Condition(
        "no test query reappears in training under another id (its rows copied into one training query)",
        "FAIL" if n_copied else "PASS",
        f"{_fmt_rate(n_copied, m['n_test_queries'])} test queries",
        f">= {f.params['query_match_share']:.0%} of the rows of the larger query (and >= 2) identical between a test "
        f"and a training query")


@condition()
def no_exact_duplicates(f: Facts) -> Condition:
    """A (query, item) pair in both splits: FAIL."""
    m = f.measurements
    ed = m["exact_duplicates"]
    return Condition(
        "no test row is an exact duplicate of a training row of the same query (the same (query, item) pair)",
        "FAIL" if ed["same_query_rows"] else "PASS",
        f"{_fmt_rate(ed['same_query_rows'], m['n_test_rows'])} test rows",
        "any: a (query, item) pair in both splits is contamination (row hash of all feature groups)")


@condition("disjoint")
def shared_items(f: Facts) -> Condition:
    """Items in both splits: FAIL when item_id is declared disjoint, else at most WARN (identical rows
    under another query), since one item judged for several queries is normal."""
    m = f.measurements
    si, n_rows = m["shared_items"], m["n_test_rows"]
    if "item_id" in f.params["disjoint"]:
        n_sh = si["rows"] + si["identical_rows_other_query"]
        return Condition("no item occurs in both splits (item_id declared disjoint)",
                         "FAIL" if n_sh else "PASS", f"{_fmt_rate(n_sh, n_rows)} test rows",
                         "any overlap of ids declared disjoint")
    return Condition(
        "items shared with training appear only under other queries with different features "
        "(normal in ranking data; reported)", "WARN" if si["identical_rows_other_query"] else "PASS",
        f"{si['identical_rows_other_query']} test rows identical to a training row of another query; "
        f"{si['rows']} test rows whose item_id occurs in training under another query",
        "WARN at most: the same item judged for several queries is normal; identical feature rows "
        "under another query may be a copied row")


@condition("disjoint")
def groups_disjoint(f: Facts) -> Condition | None:
    """A group/entity (group_id) in both splits: FAIL when declared disjoint, else WARN."""
    m = f.measurements
    if "group_overlap" not in m:
        return None
    g = m["group_overlap"]
    declared = "group_id" in f.params["disjoint"]
    st = ("FAIL" if declared else "WARN") if g["n_common_groups"] else "PASS"
    return Condition(
        "no group/entity (group_id) occurs in both splits" + (" (declared disjoint)" if declared else ""),
        st, f"{g['n_common_groups']} of {g['n_test_groups']} test groups; {_fmt_rate(g['rows'], m['n_test_rows'])} "
            "test rows",
        "any overlap of ids declared disjoint" if declared else
        "WARN: shared entities let a model learn the entity (declare disjoint = [\"qid\", \"group_id\"] to FAIL)")


@condition("temporal")
def temporal_order(f: Facts) -> Condition | None:
    """Test rows older than the newest training row: WARN or FAIL as ``temporal`` says."""
    m, mode = f.measurements, f.params["temporal"]
    if "temporal" not in m or mode == "ignore":
        return None
    t = m["temporal"]
    bad = t["test_rows_before_newest_train"]
    return Condition(
        "every test row is newer than the newest training row (temporal order)",
        ("FAIL" if mode == "fail" else "WARN") if bad else "PASS",
        f"max train timestamp {t['max_train']:g}, min test timestamp {t['min_test']:g}; "
        f"{_fmt_rate(bad, m['n_test_rows'])} test rows are older than the newest training row",
        f"temporal = {mode!r}")


@condition()
def near_duplicates_judged(f: Facts) -> Condition | None:
    """The training set is too small to build the near-duplicate reference: WARN (None when it is not)."""
    nd = f.measurements.get("near_duplicates")
    if nd is None or nd.get("threshold") is not None:
        return None
    return Condition(_NEAR_DUP, "WARN", "not judged: too few training queries", ">= 20 training rows in >= 2 queries")


@condition("near_copy_factor")
def no_near_copies(f: Facts) -> Condition | None:
    """A test row far closer to training than any two training queries' rows: a copy within noise, FAIL."""
    m = f.measurements
    nd = m.get("near_duplicates")
    if nd is None or nd.get("threshold") is None:
        return None
    nc = nd.get("copy_rows", 0)
    return Condition(
        "no test row is a near-copy of a training row (far closer than any two training queries' rows)",
        "FAIL" if nc else "PASS",
        f"{_fmt_rate(nc, m['n_test_rows'])} test rows in {nd.get('copy_queries', 0)} queries above cosine "
        + (f"{nd['copy_threshold']:.6f}" if nd.get("copy_threshold") is not None else "n/a")
        + f" (closest pair of different training queries: cosine distance {nd['reference_min_distance']:.3g})",
        f"any: cosine distance below 1/{f.params['near_copy_factor']:g} of the smallest distance between rows of "
        "different training queries is a copy within noise")


def _near_dup_status(f: Facts) -> str:
    """FAIL: significant and an excess of at least the floor; WARN: significant but smaller, or neither
    shown nor excluded (an excess at the floor that is not significant, or power < 80% at the floor)."""
    nd = f.measurements["near_duplicates"]
    padj = nd["p_value"] if f.p_adjusted is None else f.p_adjusted
    excess, floor, power = nd["excess_rate"], float(f.params["min_contamination_rate"]), nd.get("power_at_floor")
    if padj < f.alpha:
        return "FAIL" if excess >= floor else "WARN"
    if excess >= floor or (power is not None and power < 0.8):
        return "WARN"
    return "PASS"


@condition("alpha", "min_contamination_rate", "near_dup_quantile")
def near_duplicates(f: Facts) -> Condition | None:
    """The share of test rows closer to training than the training set's own reference quantile,
    tested by whole-query permutation against min_contamination_rate (see the module docstring)."""
    m = f.measurements
    nd = m.get("near_duplicates")
    if nd is None or nd.get("threshold") is None:
        return None
    padj = nd["p_value"] if f.p_adjusted is None else f.p_adjusted
    floor, power = float(f.params["min_contamination_rate"]), nd.get("power_at_floor")
    return Condition(
        _NEAR_DUP, _near_dup_status(f),
        f"{_fmt_rate(nd['flagged_rows'], m['n_test_rows'])} test rows above cosine {nd['threshold']:.4f} "
        f"(95% Wilson CI {nd['rate_wilson_low']:.1%}-{nd['rate_wilson_high']:.1%}; expected "
        f"{nd['expected_rate']:.2%} under the null); permutation p = {nd['p_value']:.3g}"
        + (f", Holm-adjusted {padj:.3g}" if f.p_adjusted is not None else "")
        + (f"; power at an excess of {floor:.0%}: {power:.0%}" if power is not None else ""),
        f"FAIL when Holm-adjusted p < {f.alpha:g} and the excess share >= {floor:.0%} (WARN when significant "
        f"but smaller; inconclusive when the power at {floor:.0%} is < 80%); threshold = the "
        f"{f.params['near_dup_quantile']:g}-quantile of the training set's own nearest-other-query similarity")


def _near_dup_undecided(f: Facts) -> str:
    """Why the near-duplicate evidence can neither show nor exclude contamination ("" when it can)."""
    m = f.measurements
    nd = m.get("near_duplicates")
    if nd is None:
        return ""
    if nd.get("threshold") is None:
        return (f"near-duplicates could not be judged: the training set has {m['n_train_rows']} rows in "
                f"{m['n_train_queries']} queries, and the reference needs at least 20 rows in 2 queries")
    padj = nd["p_value"] if f.p_adjusted is None else f.p_adjusted
    if padj < f.alpha:
        return ""
    excess, floor, power = nd["excess_rate"], float(f.params["min_contamination_rate"]), nd.get("power_at_floor")
    why = []
    if excess >= floor:
        why.append(f"the near-duplicate share exceeds the null's by {excess:.2%} (>= {floor:.0%}) without "
                   f"being significant (permutation p = {nd['p_value']:.3g}, Holm-adjusted {padj:.3g})")
    if power is not None and power < 0.8:
        need = nd.get("rows_needed")
        why.append(f"with {m['n_test_rows']} test rows the near-duplicate test would detect an excess of {floor:.0%} "
                   f"of test rows with only {power:.0%} power"
                   + (f"; about {need} test rows (~{nd['queries_needed']} queries of this size) would "
                      f"give 80%" if need else ""))
    return ", and ".join(why)


def _near_dup_rules_out(f: Facts) -> str:
    """What a near-duplicate PASS rules out, in words ("" when it did not pass or power is unknown)."""
    nd = f.measurements.get("near_duplicates")
    if nd is None or nd.get("threshold") is None or nd.get("power_at_floor") is None or _near_dup_status(f) != "PASS":
        return ""
    floor = float(f.params["min_contamination_rate"])
    return (f"an excess of {floor:.0%} of test rows would have been detected with {nd['power_at_floor']:.0%} power "
            f"(flagged share {nd['rate']:.2%}, 95% upper bound {nd['rate_wilson_high']:.2%}, "
            f"{nd['expected_rate']:.2%} expected under the null)")


# --------------------------------------------------------------------------- the audit
class IsolationAudit(Audit):
    """Train/test isolation (see the module docstring for the method)."""

    name = "isolation"
    title = "Train/test isolation"
    question = ("Does the test set share queries, (query, item) rows, entities or near-copies with the "
                "training set, so that the score measures memory instead of generalisation?")
    method = ParamText("Query overlap by id, normalised text and content (a test query whose rows reappear together "
              "in one training query); exact duplicate rows by a hash of all feature groups (rounded to "
              "1e-{hash_decimals}); the same item under different queries (reported, WARN at most); group_id overlap; "
              "temporal order. Near-duplicates: cosine search on L2-normalised feature groups, exact up to "
              "{near_dup_exact_max_rows:,} training rows; above, each row is compared exactly with the candidates sharing "
              "a leaf with it in {near_dup_trees} random-projection trees (verified pairs; recall of planted near-copies "
              ">= 99.5% measured on MSLR-shaped data, benchmarks/bench_near_dup.py); a "
              "test row is flagged when its nearest non-identical training row is closer than the "
              "{near_dup_quantile}-quantile of the nearest other-query training row of training rows themselves; the "
              "flagged share is tested by a whole-query permutation test ({near_dup_permutations} re-labellings, "
              "p = (b+1)/(B+1)); a test row {near_copy_factor:g}x closer (cosine distance) than the closest rows of two different "
              "training queries is a near-copy, counted like an exact duplicate. Contamination rate with a query-bootstrap CI (and Wilson CI on rows); "
              "the model's metric on contaminated vs clean test queries. A near-duplicate PASS needs >= 80% power "
              "to detect an excess of {min_contamination_rate:.0%} of test rows (binomial approximation, alpha before Holm); else "
              "INCONCLUSIVE with the test rows that would give it.")
    citations = [
        "Kapoor & Narayanan (2023), Leakage and the reproducibility crisis in machine-learning-based science, "
        "Patterns 4(9) -- leakage taxonomy (no train/test separation, duplicates, temporal leakage).",
        "Allamanis (2019), The adverse effects of code duplication in machine learning models of code, "
        "Onward! 2019 -- near-duplicates across splits inflate reported scores.",
        "Lee et al. (2022), Deduplicating training data makes language models better, ACL 2022 -- exact and "
        "near-duplicate detection across train/test splits.",
        "Wilson (1927), Probable inference, the law of succession, and statistical inference, JASA 22 -- "
        "interval for the contamination rate.",
        "Phipson & Smyth (2010), Permutation p-values should never be zero, SAGMB 9(1).",
    ]
    blind_spots = [
        "Leakage through features computed from the whole data set (target encoding, normalisation fitted "
        "on train+test) leaves no duplicate: the random-label and feature-ablation audits look for it.",
        "Paraphrased or re-encoded copies whose feature vectors are not close in cosine (different "
        "preprocessing, another embedding model) are not found.",
        "Near-duplicates are judged relative to the training set's own structure: if training already "
        "contains many near-copies across its queries, near-copies across the split look normal.",
        "Without query_text, group_id or timestamp columns the corresponding checks cannot run.",
    ]
    critical = True
    gating = True
    defaults = declare(
        disjoint=param(list, ["qid"], choices=_DISJOINT_KEYS, help="ids whose overlap is a FAIL"),
        near_duplicates=param(bool, True, help="run the near-duplicate search"),
        near_dup_quantile=param(float, 0.999, min=0.5, max=1, max_open=True,
                                help="reference quantile a test row must exceed"),
        near_dup_reference_rows=param(int, 20000, min=1, quick=5000, help="training rows (whole queries) in the "
                                                                          "reference"),
        near_dup_permutations=param(int, 999, min=1, quick=199, help="whole-query permutations"),
        min_contamination_rate=param(float, 0.01, min=0, max=1, help="effect floor for a near-duplicate FAIL"),
        near_copy_factor=param(float, 10.0, min=1, help="a test row this many times closer than any two training "
                                                        "queries' rows is a copy"),
        query_match_share=param(float, 0.5, min=0, max=1, help="content match share for \"the same query under "
                                                               "another id\""),
        temporal=param(str, "warn", choices=_TEMPORAL,
                       help="test rows older than the newest training row (timestamps): WARN, FAIL or not checked"),
        hash_decimals=param(int, 9, min=0, help="rounding before hashing"),
        bootstrap=param(int, 2000, min=1, quick=500, help="query-bootstrap resamples for the contamination rate"),
        max_examples=param(int, 10, min=0, help="example duplicate rows listed in the report"),
        memory_limit_mb=param(int, 1024, min=1, help="near-duplicate search budget"),
        # above this many training rows the near-duplicate search compares each row with the
        # candidates of a random-projection forest (exactly) instead of with every training row
        near_dup_exact_max_rows=param(int, 100_000, min=0, help="exact near-duplicate search up to this many "
                                                                "training rows; verified forest candidates above"),
        near_dup_trees=param(int, 16, min=1, help="random-projection trees of the candidate search"),
        near_dup_leaf_rows=param(int, 1024, min=2, help="rows per leaf at most (a row's candidates: the training "
                                                        "rows of its leaves)"),
    )

    # ------------------------------------------------------------------ plan
    def _checked(self, ctx) -> dict[str, Any]:
        p = ctx.params(self)
        dis = p["disjoint"]
        if isinstance(dis, str):
            dis = [s.strip() for s in dis.split(",") if s.strip()]
        bad = [d for d in dis if d not in _DISJOINT_KEYS]
        if bad:
            raise ConfigError(f"[audits.isolation] disjoint: unknown id column(s) {bad}; valid: {list(_DISJOINT_KEYS)}.")
        p["disjoint"] = list(dis)
        if p["temporal"] not in _TEMPORAL:
            raise ConfigError(f"[audits.isolation] temporal must be one of {list(_TEMPORAL)}, got {p['temporal']!r}.")
        q = float(p["near_dup_quantile"])
        if not 0.5 <= q < 1:
            raise ConfigError(f"[audits.isolation] near_dup_quantile must be in [0.5, 1), got {q}.")
        return p

    def plan(self, ctx) -> list[Trial]:
        p = self._checked(ctx)
        trials = [Trial(self.name, "ids", {"decimals": int(p["hash_decimals"]),
                                           "min_share": float(p["query_match_share"])}),
                  Trial(self.name, "model", {})]
        if p["near_duplicates"]:
            trials.append(Trial(self.name, "near_dup", {
                "decimals": int(p["hash_decimals"]), "reference_rows": int(p["near_dup_reference_rows"]),
                "memory_limit_mb": float(p["memory_limit_mb"]), "exact_max_rows": int(p["near_dup_exact_max_rows"]),
                "trees": int(p["near_dup_trees"]), "leaf_rows": int(p["near_dup_leaf_rows"])},
                resources={"num_gpus": 1} if str(ctx.device).startswith("cuda") else {}))
        return trials

    # ------------------------------------------------------------------ trials
    def run_trial(self, ctx, trial: Trial) -> dict[str, Any]:
        if trial.key == "ids":
            return jsonable(self._ids(ctx, **trial.params))
        if trial.key == "near_dup":
            return jsonable(self._near_dup(ctx, **trial.params))
        if trial.key == "model":
            # the model only adds the "metric on contaminated vs clean queries" evidence; a model
            # that fails must not hide a data problem, so the failure becomes a note
            try:
                model = ctx.fit(0)
                s = ctx.score(model, ctx.test)
            except ModelFailure as e:
                return {"error": str(e)}
            return jsonable({"metric": ctx.metric_values(ctx.test, s)})
        raise KeyError(trial.key)

    @staticmethod
    def _ids(ctx, decimals: int, min_share: float) -> dict[str, Any]:
        tr, te = ctx.train, ctx.test
        h_tr = row_hashes(tr, decimals=decimals)
        h_te = row_hashes(te, decimals=decimals)
        tr_keys, te_keys, info = query_identity(tr, te, min_share=min_share, train_hash=h_tr, test_hash=h_te,
                                                decimals=decimals)
        te_qi = te.query_index
        tr_qi = tr.query_index
        via = info["via"]
        # exact duplicate rows (equal hashes, confirmed value by value), split into "same query" (a
        # (query, item) pair on both sides) and "another query" (the same item/feature row judged
        # for a different query); only the rows whose hash occurs on both sides are looked at
        match = matched_rows(tr, te, decimals=decimals, train_hash=h_tr, test_hash=h_te)
        in_train = match >= 0
        same_pair = np.zeros(te.n_rows, dtype=bool)
        if in_train.any():
            te_rows = np.flatnonzero(in_train)
            tr_rows = np.flatnonzero(np.isin(h_tr, h_te[te_rows]))
            pair_tr = set(zip(h_tr[tr_rows].tolist(), tr_keys[tr_qi[tr_rows]].tolist()))
            same_pair[te_rows] = [(h, k) in pair_tr
                                  for h, k in zip(h_te[te_rows].tolist(), te_keys[te_qi[te_rows]].tolist())]
        # (query, item-id) pairs when item ids exist: same item in the same query, features may differ
        pair_item = np.zeros(te.n_rows, dtype=bool)
        shared_item = np.zeros(te.n_rows, dtype=bool)
        if tr.item_id is not None and te.item_id is not None:
            it_tr, it_te = tr.item_id.astype(str), te.item_id.astype(str)
            both = np.flatnonzero(np.isin(it_tr, it_te))
            pairs = set(zip(it_tr[both].tolist(), tr_keys[tr_qi[both]].tolist()))
            pair_item = np.array([(i, k) in pairs for i, k in zip(it_te.tolist(), te_keys[te_qi].tolist())],
                                 dtype=bool)
            shared_item = np.isin(it_te, it_tr) & ~pair_item
        dup_same = same_pair | pair_item
        dup_other = in_train & ~same_pair & ~pair_item
        out: dict[str, Any] = {
            "n_train_rows": tr.n_rows, "n_test_rows": te.n_rows,
            "n_train_queries": tr.n_queries, "n_test_queries": te.n_queries,
            "query_via": via.tolist(), "query_match": info["match"], "query_share": info["share"],
            "dup_same_rows": np.flatnonzero(dup_same), "dup_other_rows": np.flatnonzero(dup_other),
            "shared_item_rows": np.flatnonzero(shared_item),
            "dup_train_row": {int(r): int(match[r]) for r in np.flatnonzero(in_train)[:200].tolist()},
            "has_item_id": tr.item_id is not None and te.item_id is not None,
            "has_query_text": tr.query_text is not None and te.query_text is not None,
            "train_qids": tr.query_ids.astype(str), "test_qids": te.query_ids.astype(str),
            "ids_generated": ids_are_generated(tr) or ids_are_generated(te),
        }
        # group / entity overlap
        if tr.group_id is not None and te.group_id is not None:
            g_tr, g_te = tr.group_id.astype(str), te.group_id.astype(str)
            common = np.intersect1d(g_tr, g_te)
            out["group"] = {"n_common": int(common.size), "examples": common[:10].tolist(),
                            "rows": np.flatnonzero(np.isin(g_te, common)),
                            "n_test_groups": int(np.unique(g_te).size)}
        if tr.timestamp is not None and te.timestamp is not None:
            t_tr = np.asarray(tr.timestamp, dtype=np.float64)
            t_te = np.asarray(te.timestamp, dtype=np.float64)
            mx = float(np.nanmax(t_tr))
            out["temporal"] = {"max_train": mx, "min_test": float(np.nanmin(t_te)),
                               "rows": np.flatnonzero(t_te < mx)}
        return out

    @staticmethod
    def _near_dup(ctx, decimals: int, reference_rows: int, memory_limit_mb: float, exact_max_rows: int,
                  trees: int, leaf_rows: int) -> dict[str, Any]:
        from auditor.neighbors import (build_forest, cosine_neighbors, forest_neighbors, group_normalized,
                                       pick_backend)

        tr, te = ctx.train, ctx.test
        groups = sorted(tr.features)
        rep_tr = group_normalized(tr.features, groups)
        rep_te = group_normalized(te.features, groups)
        h_tr = row_hashes(tr, decimals=decimals)
        h_te = row_hashes(te, decimals=decimals)
        # reference: training rows against training rows of other queries (the same pool size),
        # on a random sample of whole training queries when training is large
        rng = ctx.rng("isolation", "near_dup_reference")
        sizes = tr.query_sizes
        order = rng.permutation(tr.n_queries)
        cum = np.cumsum(sizes[order])
        take = order[: int(np.searchsorted(cum, reference_rows) + 1)]
        ref_q = np.sort(take)
        o = tr.query_offsets
        rows = np.concatenate([np.arange(o[i], o[i + 1]) for i in ref_q]) if ref_q.size else np.zeros(0, int)
        tr_qi = tr.query_index
        with_ref = bool(rows.size) and tr.n_queries >= 2
        # identical rows are the exact-duplicate check's business; here: the nearest *other* row
        excl_te = [(h_te, h_tr)]
        excl_ref = [(tr_qi[rows], tr_qi), (h_tr[rows], h_tr)] if with_ref else []
        search = {"exact_max_rows": int(exact_max_rows), "train_rows": int(tr.n_rows)}
        if tr.n_rows <= exact_max_rows:
            dev = str(getattr(ctx, "device", "cpu") or "cpu")
            backend, dev = pick_backend("auto", dev)
            kw = dict(normalized=True, memory_limit_mb=memory_limit_mb, backend=backend, device=dev)
            res = cosine_neighbors(rep_te, rep_tr, k=1, exclude=excl_te, **kw)
            ref = cosine_neighbors(rep_tr[rows], rep_tr, k=1, exclude=excl_ref, **kw) if with_ref else None
            search["mode"] = "exact"
        else:
            # one forest over training and test rows serves both searches: a test row and a reference
            # row then meet their candidates under the same rules (both compete for leaf room with
            # rows they may not match: their own query's rows), which keeps the permutation test fair
            seed = int(ctx.rng("isolation", "near_dup_forest").integers(2**31))
            forest = build_forest([rep_tr, rep_te], n_trees=trees, leaf_size=leaf_rows, seed=seed)
            base = np.arange(tr.n_rows)
            res = forest_neighbors(forest, [rep_tr, rep_te], tr.n_rows + np.arange(te.n_rows), base, exclude=excl_te)
            ref = forest_neighbors(forest, [rep_tr, rep_te], rows, base, exclude=excl_ref) if with_ref else None
            search.update(mode="candidates", trees=int(trees), leaf_rows=int(leaf_rows))
        return {"s_test": res.similarity[:, 0], "nn_train_row": res.index[:, 0],
                "s_ref": ref.similarity[:, 0] if ref is not None else np.zeros(0),
                "ref_query": tr_qi[rows] if rows.size else [],
                "backend": res.backend, "groups": groups, "search": search}

    # ------------------------------------------------------------------ measure
    def measure(self, ctx, results: Mapping[str, dict[str, Any]]) -> Evidence:
        p = self._checked(ctx)
        ids = results["ids"]
        te = ctx.test
        n_rows, nq = te.n_rows, te.n_queries
        te_qi = te.query_index
        via = np.array(ids["query_via"], dtype=object)
        meas: dict[str, Any] = {"n_test_rows": n_rows, "n_test_queries": nq,
                                "n_train_rows": ids["n_train_rows"], "n_train_queries": ids["n_train_queries"]}
        notes: list[str] = []
        if ids.get("ids_generated"):
            notes.append("query ids were generated by the loader (positions, e.g. from a .query file): they are "
                         "not compared across splits; queries are matched by text and content instead.")
        plots: list[dict[str, Any]] = []
        contaminated = np.zeros(n_rows, dtype=bool)
        examples: list[list[Any]] = []

        # query overlap
        q_id = via == "qid"
        q_text = via == "text"
        q_content = via == "content"
        meas["query_overlap"] = {"by_qid": int(q_id.sum()), "by_text": int(q_text.sum()),
                                 "by_content": int(q_content.sum()),
                                 "examples": [str(x) for x in np.array(ids["test_qids"])[q_id | q_text | q_content][:10]]}
        overlapping_q = q_id | q_text | q_content
        if "qid" in p["disjoint"]:
            contaminated |= overlapping_q[te_qi]
        dup_same = np.zeros(n_rows, dtype=bool)
        dup_same[np.asarray(ids["dup_same_rows"], dtype=int)] = True
        dup_other = np.zeros(n_rows, dtype=bool)
        dup_other[np.asarray(ids["dup_other_rows"], dtype=int)] = True
        shared = np.zeros(n_rows, dtype=bool)
        shared[np.asarray(ids["shared_item_rows"], dtype=int)] = True
        contaminated |= dup_same
        meas["exact_duplicates"] = {"same_query_rows": int(dup_same.sum()), "other_query_rows": int(dup_other.sum()),
                                    "rate": float(dup_same.mean())}
        meas["shared_items"] = {"rows": int(shared.sum()), "identical_rows_other_query": int(dup_other.sum()),
                                "has_item_id": bool(ids["has_item_id"])}
        dtr = {int(k): int(v) for k, v in (ids.get("dup_train_row") or {}).items()}
        tr_q = ctx.train.qid
        for r in np.flatnonzero(dup_same | dup_other)[: int(p["max_examples"])]:
            j = dtr.get(int(r), -1)
            examples.append([str(te.qid[r]), int(r), str(tr_q[j]) if j >= 0 else "", j, 1.0,
                             "same (query, item)" if dup_same[r] else "same row, other query"])
        if "item_id" in p["disjoint"]:
            contaminated |= shared | dup_other
        grp = ids.get("group")
        if grp is not None:
            g_rows = np.zeros(n_rows, dtype=bool)
            g_rows[np.asarray(grp["rows"], dtype=int)] = True
            meas["group_overlap"] = {"n_common_groups": grp["n_common"], "n_test_groups": grp["n_test_groups"],
                                     "rows": int(g_rows.sum()), "examples": grp["examples"]}
            if "group_id" in p["disjoint"]:
                contaminated |= g_rows
        elif "group_id" in p["disjoint"]:
            notes.append("group_id is declared disjoint but the data has no group_id column: not checked.")
        tmp = ids.get("temporal")
        if tmp is not None:
            t_rows = np.zeros(n_rows, dtype=bool)
            t_rows[np.asarray(tmp["rows"], dtype=int)] = True
            meas["temporal"] = {"max_train": tmp["max_train"], "min_test": tmp["min_test"],
                                "test_rows_before_newest_train": int(t_rows.sum()),
                                "share": float(t_rows.mean())}

        # near-duplicates
        p_value = None
        nd = results.get("near_dup")
        if nd is not None:
            ndm = self._near_dup_stats(ctx, p, nd)
            meas["near_duplicates"] = ndm["measurements"]
            p_value = ndm["p_value"]
            contaminated |= ndm["flags"]
            plots.extend(ndm["plots"])
            notes.extend(ndm["notes"])
            for r in np.flatnonzero(ndm["flags"])[: max(0, int(p["max_examples"]) - len(examples))]:
                j = int(nd["nn_train_row"][r]) if nd["nn_train_row"][r] is not None else -1
                examples.append([str(te.qid[r]), int(r), str(tr_q[j]) if j >= 0 else "", j,
                                 round(float(ndm["s_test"][r]), 6), "near-duplicate"])
        else:
            notes.append("near-duplicate search disabled (near_duplicates = false).")

        # contamination rate
        k = int(contaminated.sum())
        est, lo, hi = cluster_bootstrap_rate(contaminated, te_qi, n_resamples=int(p["bootstrap"]),
                                             seed=int(ctx.rng("isolation", "rate").integers(2**31)))
        wlo, whi = wilson_interval(k, n_rows)
        q_cont = np.bincount(te_qi, weights=contaminated.astype(float), minlength=nq) > 0
        meas["contamination"] = {"rows": k, "rate": est, "ci_low": lo, "ci_high": hi, "method": "query bootstrap",
                                 "wilson_low": wlo, "wilson_high": whi, "queries": int(q_cont.sum())}
        # the model's metric on contaminated vs clean queries
        mres = results.get("model") or {}
        if "error" in mres:
            notes.append(f"model failed, metric by subset not computed: {mres['error'].splitlines()[0]}")
        elif "metric" in mres:
            mv = np.array(mres["metric"], dtype=np.float64)
            meas["metric_by_subset"] = self._metric_subsets(ctx, mv, q_cont, int(p["bootstrap"]))
            rows = []
            for name in ("contaminated", "clean"):
                d = meas["metric_by_subset"].get(name)
                if d and d["n"]:
                    rows.append({"label": f"{name} ({d['n']} queries)", "estimate": d["mean"],
                                 "low": d["ci_low"], "high": d["ci_high"]})
            if rows:
                plots.append(plot_intervals(f"{ctx.metric} on contaminated vs clean test queries (95% CI)", rows,
                                            xlabel=ctx.metric, ref=None))
        counts = {"query overlap": int(overlapping_q.sum()), "same (query, item) rows": int(dup_same.sum()),
                  "same row, other query": int(dup_other.sum()), "shared items": int(shared.sum())}
        if "near_duplicates" in meas:
            counts["near-duplicate rows"] = int(meas["near_duplicates"]["flagged_rows"])
            counts["near-copy rows"] = int(meas["near_duplicates"].get("copy_rows", 0))
        plots.insert(0, plot_bars("Overlap found between test and train", list(counts), list(counts.values()),
                                  ylabel="count"))
        if examples:
            plots.append(plot_table("Example test rows with a training counterpart",
                                    ["test qid", "test row", "train qid", "train row", "cosine", "kind"], examples))
        return Evidence(measurements=meas, p_value=p_value,
                        null_hypothesis=("test queries are exchangeable with training queries in how close their "
                                         "rows come to (other) training rows: no near-duplicate contamination"),
                        plots=plots, notes=notes)

    def _near_dup_stats(self, ctx, p: dict[str, Any], nd: dict[str, Any]) -> dict[str, Any]:
        te = ctx.test
        s_test = np.array(nd["s_test"], dtype=np.float64)
        s_ref = np.array(nd["s_ref"], dtype=np.float64)
        ref_q = np.array(nd["ref_query"], dtype=np.int64)
        q = float(p["near_dup_quantile"])
        notes: list[str] = []
        flags = np.zeros(te.n_rows, dtype=bool)
        ok_t = np.isfinite(s_test)
        ok_r = np.isfinite(s_ref)
        meas: dict[str, Any] = {"quantile": q, "reference_rows": int(ok_r.sum()),
                                "backend": nd.get("backend", ""), "search": _search_guarantee(nd.get("search"))}
        if (nd.get("search") or {}).get("mode") == "candidates":
            notes.append(f"near-duplicate search: {meas['search']}.")
        if ok_r.sum() < 20 or np.unique(ref_q).size < 2:
            notes.append("too few training queries to learn the data's neighbourhood structure: "
                         "near-duplicates not judged.")
            meas.update({"flagged_rows": 0, "threshold": None})
            return {"measurements": meas, "p_value": None, "flags": flags, "plots": [], "notes": notes,
                    "s_test": s_test}
        tau = float(np.quantile(s_ref[ok_r], q))
        flags = ok_t & (s_test > tau)
        obs = float(flags.mean())
        # gross near-copies: a test row far closer to training (in cosine distance 1 - cos) than
        # any two rows of *different* training queries are to each other is a copy within noise,
        # whatever the permutation test says about one query's worth of rows
        d_min = float(np.min(1.0 - s_ref[ok_r]))
        factor = float(p["near_copy_factor"])
        copy_thr = 1.0 - d_min / factor if d_min > 0 and factor > 0 else np.inf
        copies = ok_t & (s_test > copy_thr)
        # whole-query permutation test: queries (not rows) are exchangeable under H0
        vals = np.concatenate([np.where(ok_t, s_test, -np.inf), s_ref[ok_r]])
        te_qi = te.query_index
        qlab = np.concatenate([te_qi, te.n_queries + np.unique(ref_q[ok_r], return_inverse=True)[1]])
        n_q = int(qlab.max()) + 1
        n_te_q = te.n_queries
        B = int(p["near_dup_permutations"])
        rng = ctx.rng("isolation", "near_dup_permutation")
        null = np.empty(B)
        for b in range(B):
            is_te = np.zeros(n_q, dtype=bool)
            is_te[rng.choice(n_q, size=n_te_q, replace=False)] = True
            m = is_te[qlab]
            ref_v = vals[~m]
            ref_v = ref_v[np.isfinite(ref_v)]
            t = np.quantile(ref_v, q) if ref_v.size else np.inf
            null[b] = float(np.mean(vals[m] > t))
        pv = (int(np.sum(null >= obs - 1e-12)) + 1) / (B + 1)
        expected = float(np.mean(null))
        k = int(flags.sum())
        lo, hi = wilson_interval(k, te.n_rows)
        meas.update({
            "copy_threshold": copy_thr if np.isfinite(copy_thr) else None, "copy_rows": int(copies.sum()),
            "copy_queries": int(np.unique(te_qi[copies]).size), "reference_min_distance": d_min,
            "threshold": tau, "flagged_rows": k, "rate": obs, "rate_wilson_low": lo, "rate_wilson_high": hi,
            "expected_rate": expected, "excess_rate": obs - expected, "p_value": pv, "permutations": B,
            "test_similarity_quantiles": {str(a): float(np.quantile(s_test[ok_t], a)) for a in (0.5, 0.9, 0.99)}
            if ok_t.any() else {},
            "share_at_or_above_0.95": float(np.mean(s_test[ok_t] >= 0.95)) if ok_t.any() else 0.0,
            "flagged_queries": int(np.unique(te_qi[flags]).size),
        })
        # what a PASS rules out: the power of this test, at alpha before Holm, to detect an excess
        # of min_contamination_rate of the test rows, and the rows that would give it 80%
        floor = float(p["min_contamination_rate"])
        alpha = float(ctx.config.alpha)
        meas["power_at_floor"] = near_dup_power(te.n_rows, expected, floor, alpha=alpha)
        meas["power_floor"] = floor
        need = near_dup_rows_needed(expected, floor, alpha=alpha)
        meas["rows_needed"] = need
        meas["queries_needed"] = (int(np.ceil(need / (te.n_rows / max(te.n_queries, 1)))) if need else None)
        meas["excess_upper"] = max(0.0, hi - expected)
        if (~ok_t).any():
            notes.append(f"{int((~ok_t).sum())} test rows have no non-identical training row to compare with.")
        plots = [
            plot_hist("Nearest training row of each test row (cosine)", s_test[ok_t], xlabel="cosine similarity",
                      markers=[{"label": f"reference {q:g}-quantile", "x": tau}]),
            plot_hist("Reference: nearest other-query training row of training rows", s_ref[ok_r],
                      xlabel="cosine similarity", markers=[{"label": f"{q:g}-quantile", "x": tau}]),
            plot_hist("Flagged share under whole-query re-labelling (null)", null, xlabel="share of test rows flagged",
                      markers=[{"label": "observed", "x": obs}]),
        ]
        return {"measurements": meas, "p_value": pv, "flags": flags | copies, "plots": plots, "notes": notes,
                "s_test": s_test}

    @staticmethod
    def _metric_subsets(ctx, mv: np.ndarray, q_cont: np.ndarray, B: int) -> dict[str, Any]:
        from auditor.stats import bootstrap_ci

        out: dict[str, Any] = {}
        for name, mask in (("contaminated", q_cont), ("clean", ~q_cont)):
            v = mv[mask]
            v = v[np.isfinite(v)]
            if v.size == 0:
                out[name] = {"n": 0}
                continue
            ci = bootstrap_ci(v, n_resamples=B, method="percentile", seed=int(ctx.rng("isolation", name).integers(2**31)))
            out[name] = {"n": int(v.size), "mean": ci.estimate, "ci_low": ci.low, "ci_high": ci.high}
        if out["contaminated"].get("n") and out["clean"].get("n"):
            out["difference"] = out["contaminated"]["mean"] - out["clean"]["mean"]
        return out

    # ------------------------------------------------------------------ decide
    conditions = (query_ids_disjoint, queries_not_copied, no_exact_duplicates, shared_items, groups_disjoint,
                  temporal_order, near_duplicates_judged, no_near_copies, near_duplicates)

    def decide(self, ctx, evidence: Evidence, p_adjusted: float | None) -> Decision:
        f = Facts.of(ctx, evidence, p_adjusted, self._checked(ctx))
        m = f.measurements
        found = judge(self.conditions, f)
        conds = list(found.values())
        near_weak = _near_dup_undecided(f)
        c = m["contamination"]
        # a query bootstrap of a share with no (or all) flagged rows has zero width: quote Wilson then
        ci_lo, ci_hi = ((c["ci_low"], c["ci_high"]) if c["ci_high"] > c["ci_low"] else (c["wilson_low"], c["wilson_high"]))
        rate_txt = (f"{c['rows']} of {m['n_test_rows']} test rows ({c['rate']:.1%}, 95% CI {ci_lo:.1%}-{ci_hi:.1%}) "
                    f"in {c['queries']} of {m['n_test_queries']} queries")
        sub = m.get("metric_by_subset") or {}
        sub_txt = ""
        if sub.get("contaminated", {}).get("n") and sub.get("clean", {}).get("n"):
            sub_txt = (f"; {f.metric} {sub['contaminated']['mean']:.3f} on contaminated vs "
                       f"{sub['clean']['mean']:.3f} on clean queries")
        failed = [x.name for x in conds if x.status == "FAIL"]
        if failed:
            summary = f"Train/test overlap found: {rate_txt} are contaminated{sub_txt} ({failed[0]} failed)."
            steps = ["Re-split by query (and by group_id where entities repeat) after deduplicating (query, item) "
                     "pairs; then re-run the audit.",
                     "Report the metric on the clean subset only until the split is rebuilt."]
            if any(found[k].status == "FAIL" for k in ("no_near_copies", "near_duplicates") if k in found):
                steps.append("Inspect the near-duplicate example pairs: find the preprocessing step that copied or "
                             "lightly altered test rows into training.")
            return Decision(conditions=conds, summary=summary, next_steps=steps)
        if near_weak:
            summary = (f"Inconclusive: no shared query ids, copied queries or duplicate (query, item) rows ({rate_txt} "
                       f"flagged), but {near_weak}.")
            steps = ["Audit with a larger test (or training) set before trusting the split's isolation from "
                     "near-copies."]
            return Decision(conditions=conds, summary=summary, next_steps=steps, status="WARN", inconclusive=True)
        if any(x.status == "WARN" for x in conds):
            summary = (f"No contamination found that fails the audit ({rate_txt} flagged); see the warnings.")
            steps = ["Review the WARN conditions: shared entities, temporal order or identical rows under other "
                     "queries may be intended, but say so in the report."]
            return Decision(conditions=conds, summary=summary, next_steps=steps)
        near_txt = _near_dup_rules_out(f)
        if near_txt:
            near = f"no excess near-duplicates: {near_txt}"
        elif m.get("near_duplicates") is None:
            near = "near-duplicates not checked (near_duplicates = false)"
        else:
            near = "no near-duplicates"
        summary = (f"No train/test overlap found: no shared query ids, no copied queries, no duplicate "
                   f"(query, item) rows; {near} ({rate_txt} flagged).")
        return Decision(conditions=conds, summary=summary, next_steps=[])
