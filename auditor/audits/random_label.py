"""Random-label audit: does the model rank held-out rows it should know nothing about?

Variant B (the V2.0 pattern; Ojala & Garriga 2010, test 1, made a held-out test) decides. A
shuffle of labels over the unique (query, item) keys of train *and* test together, applied to
both splits, then the whole pipeline is rerun and scored against the shuffled test labels
(``b_repeats`` = 2 independent shuffles, averaged per query).
A test row that is not in training now carries a label drawn at random from its query's
labels, independent of its features, so *any* function of the features -- learned,
fixed, however strong its prior -- is at chance in expectation on every query, exactly. A row
that also sits in training carries the same random label there; only a model that saw the
test rows during training can rank them above chance. Queries are independent replicates
(per-query one-sided paired t-test against the exact chance level). FAIL is a minimum-effect
test: the Holm-adjusted one-sided p of "excess > floor" must be below alpha, so a FAIL
demonstrates a leak of at least the floor, not merely some excess. The floor is the larger of
``min_excess`` (0.01) and ``min_excess_share`` (0.05) of the headroom from chance to a perfect
ranking: about one memorised test query in twenty (see :func:`_min_effect` for why the
absolute floor alone let a calibrated test FAIL clean runs at its tail rate).

Variant A (Zhang et al. 2017's randomisation test, held out) is *reported, not gating*:
models trained on labels permuted across the whole training set, evaluated on the true test
labels. Its excess over chance is the pipeline's **label-free ranking strength**, and it
cannot be told apart from a leak, for two measured reasons:

- the features rank by themselves and models carry that prior: on the LETOR sample the plain
  sum of the features gives nDCG@10 0.759 against 0.653 for a random order; a model with a
  fixed rule inside it (a BM25 term, a feature-sum prior) keeps it whatever its labels;
- a label proxy column, target encoding computed on all data, or a plugin that reads a label
  file act through the same features and the same model: no label-free reference built from
  the same pipeline keeps the prior but drops the leak. Copied rows are B's; label proxies
  are the feature-ablation audit's.

Earlier versions shuffled A's labels *within* each query and gated on it. That keeps every
query's label multiset, so a pointwise model still learns which queries hold many relevant
candidates from query-level features, and on data with per-query base rates (LETOR) that
ranks held-out candidates too: ridge and a two-layer MLP scored seed excesses +0.06 to +0.11
(a false FAIL for the MLP). Permuted across all queries, the same models sit at chance
(-0.02 to +0.01). A's CI is over the K seed means (df = K - 1; each random-label model is one
random function whose alignment with the true relevance moves every query at once). A WARNs
-- never FAILs -- on the one signature no learner shows: held-out scores identical on every
query whether the model was trained on the true or on permuted labels, while ranking above
chance (a fixed rule, or labels that reach the model from elsewhere).

A PASS is earned: the one-sided 95% upper confidence bound of B's excess must lie below a
named size, ``margin_share`` (default 0.2) of the headroom from chance to a perfect ranking
(mean ideal - chance over informative queries). A model that memorised a share ``s`` of the
test queries perfectly scores an excess of about ``s`` x headroom under B, so the PASS rules
out that the model ranks shared rows as if it had memorised more than a fifth of the test
queries. When the bound does not fit (too few informative test queries, or an excess that is
neither significant nor small), the audit is INCONCLUSIVE and names the number of test
queries that would decide at the measured per-query spread. ``--quick`` changes only A's seeds
and reported resample counts, never what B decides.

Chance is exact: each query's expected metric under a uniformly random ordering of its
candidates (:func:`auditor.metrics.expected_random`). Training-loss curves under true and
random labels are shown (memorisation capacity), but a model that *fits* random labels is
never called leaky (Zhang et al. 2017).

The evidence names its two tests: ``variant_b`` (gating; the runner Holm-adjusts it with the
suite's other gating tests) and ``variant_a`` (reported only). ``decide`` composes the two
conditions listed on the class, :func:`shared_rows_not_memorised` (B) and
:func:`ranking_depends_on_labels` (A), and reads B's adjusted p from its sub-test.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping, NamedTuple

import warnings

import numpy as np

from auditor.audits.base import (Audit, Condition, Decision, Evidence, SubTest, Trial, jsonable, plot_hist,
                                 plot_intervals, plot_lines)
from auditor.config import ParamText, declare, param
from auditor.data import RankingDataset
from auditor.informative import informative_queries
from auditor.metrics import evaluate, expected_random
from auditor.protocol import has_fit_history
from auditor.stats import bootstrap_ci, paired_t_test, sign_flip_test

__all__ = ["RandomLabelAudit", "shared_key_labels", "shared_rows_not_memorised",
           "ranking_depends_on_labels", "B_TEST", "A_TEST"]

#: sub-test names in the evidence: B gates (Holm across the suite), A is reported only
B_TEST, A_TEST = "variant_b", "variant_a"


def shared_key_labels(train: RankingDataset, test: RankingDataset, rng: np.random.Generator, *,
                      min_share: float = 0.5, decimals: int = 9) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Variant B labels: one within-query shuffle over unique (query, item) keys of both splits.

    Keys: query identity (same id, same normalised text, or copied content -- see
    :func:`auditor.audits.isolation.query_identity`) and item key (``item_id``, else a hash of
    the feature row). Each unique key takes the label of its first occurrence (train first);
    key labels are then permuted among the keys of the same query identity, and every row
    receives its key's new label. A row present in both splits therefore gets the same
    random label on both sides.

    Returns
    -------
    train_labels : ndarray, shape (n_train,)
    test_labels : ndarray, shape (n_test,)
    info : dict
        ``n_keys``, ``n_shared_keys`` (keys present in both splits), ``shared_test_rows``.
    """
    from auditor.rowid import item_keys, query_identity, row_hashes

    h_tr = row_hashes(train, decimals=decimals)
    h_te = row_hashes(test, decimals=decimals)
    tr_q, te_q, _ = query_identity(train, test, min_share=min_share, train_hash=h_tr, test_hash=h_te)
    labels = np.concatenate([train.labels, test.labels])
    keyed = _numeric_keys(train, test, tr_q, te_q, h_tr, h_te)
    if keyed is None:
        q_rows = np.concatenate([tr_q[train.query_index], te_q[test.query_index]])
        i_rows = np.concatenate([item_keys(train, h_tr), item_keys(test, h_te)])
        keys = np.char.add(np.char.add(q_rows, "\x1f"), i_rows)
        uniq, first, inv = np.unique(keys, return_index=True, return_inverse=True)
        n_keys = uniq.size
        key_query = q_rows[first]
    else:
        n_keys, first, inv, q_code = keyed
        key_query = q_code[first]
    key_label = labels[first]
    # permute key labels within each query identity (keeps each query's label multiset)
    _, kq = np.unique(key_query, return_inverse=True)
    order = np.lexsort((rng.random(n_keys), kq))
    by_q = np.argsort(kq, kind="stable")  # key positions grouped by query, in key order
    new = np.empty_like(key_label)
    new[by_q] = key_label[order]
    out = new[inv]
    n_tr = train.n_rows
    in_tr = np.zeros(n_keys, dtype=bool)
    in_tr[inv[:n_tr]] = True
    in_te = np.zeros(n_keys, dtype=bool)
    in_te[inv[n_tr:]] = True
    shared = in_tr & in_te
    info = {"n_keys": int(n_keys), "n_shared_keys": int(shared.sum()),
            "shared_test_rows": int(shared[inv[n_tr:]].sum())}
    return out[:n_tr], out[n_tr:], info


_POW10 = 10 ** np.arange(20, dtype=np.uint64)  # 10**19 < 2**64


def _decimal_order_keys(h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort keys ``(hi, lo, digits)`` under which uint64 values order as their decimal strings do.

    ``str(h)`` left-aligned to 20 digits (zero-padded on the right) and split into two 10-digit
    halves; equal padded values differ only by trailing zeros, where the shorter string sorts first.
    """
    digits = np.searchsorted(_POW10[1:], h, side="right").astype(np.int64) + 1
    big = digits >= 10
    shift = np.where(big, digits - 10, 10 - digits)
    hi = np.where(big, h // _POW10[shift], h * _POW10[shift])
    lo = np.where(big, (h % _POW10[shift]) * _POW10[np.maximum(20 - digits, 0)], np.uint64(0))
    return hi, lo, digits


def _numeric_keys(train: RankingDataset, test: RankingDataset, tr_q: np.ndarray, te_q: np.ndarray,
                  h_tr: np.ndarray, h_te: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray] | None:
    """The (query, item) keys of both splits as ``np.unique(keys, return_index, return_inverse)``
    of the key strings ``query + "\x1f" + "r:<row hash>"`` would give them, without the strings.

    The strings cost about 100 bytes a row several times over (2.8 GB at 4M rows, the largest
    transient of a 3M-row audit); integer codes in the same order cost 8 bytes a row each, and the
    shuffle that follows draws the same random numbers for the same keys. Returns ``(n_keys,
    first, inverse, query_code)``, or None where the string order could differ from the codes'
    (item ids given, or a query key holding a character at or below ``"\x1f"``): the caller
    then builds the strings.
    """
    if train.item_id is not None or test.item_id is not None:
        return None
    qkeys = np.concatenate([tr_q, te_q])
    if qkeys.size and min(min(map(ord, k), default=0x20) for k in qkeys.tolist()) <= 0x1F:
        return None
    _, q_inv = np.unique(qkeys, return_inverse=True)
    q_code = np.concatenate([q_inv[:tr_q.size][train.query_index], q_inv[tr_q.size:][test.query_index]])
    h = np.concatenate([h_tr, h_te])
    hi, lo, digits = _decimal_order_keys(h)
    order = np.lexsort((digits, lo, hi, q_code))  # stable: equal keys keep their row order
    del hi, lo, digits
    hs, qs = h[order], q_code[order]
    new_key = np.empty(order.size, dtype=bool)
    new_key[:1] = True
    new_key[1:] = (hs[1:] != hs[:-1]) | (qs[1:] != qs[:-1])
    del hs, qs
    first = order[new_key]
    inv = np.empty(order.size, dtype=np.int64)
    inv[order] = np.cumsum(new_key) - 1
    return int(first.size), first, inv, q_code


def _arr(x: Any) -> np.ndarray:
    return np.array(x, dtype=np.float64)


# --------------------------------------------------------------------------- conditions
class Found(NamedTuple):
    """What one condition found: its rows in the report, its sentences of the summary, its next steps."""

    conditions: list[Condition]
    summary: list[str]
    next_steps: list[str]
    inconclusive: bool = False


def shared_rows_not_memorised(ctx: Any, evidence: Evidence, *, alpha: float, min_excess: float) -> Found:
    """Variant B (gating): FAIL when the adjusted p of "excess > min_excess" is below alpha; PASS only
    when the one-sided upper bound of the excess lies below the margin; otherwise inconclusive."""
    b = evidence.measurements.get("variant_b")
    if b is None:
        return Found([], ["Variant B did not run (variant_b = false): nothing bounds a leak through rows shared by "
                          "train and test, so the audit cannot pass."],
                     ["Enable variant B ([audits.random_label] variant_b = true): it is the gating test."], True)
    if b.get("p_value") is None or b.get("n", 0) < 2:
        return Found([], [f"Variant B has {b.get('n', 0)} informative test queries: too few to test or bound."],
                     [_more_queries_step(b)], True)
    test = evidence.test(B_TEST)
    # adjusted by the runner across the suite; a direct call on unadjusted evidence judges the raw p
    p_adj = float(test.p_adjusted if test.p_adjusted is not None else test.p_value)
    status = _b_status(b, p_adj, alpha)
    b_floor = float(b.get("min_effect", min_excess))  # max(min_excess, min_excess_share x headroom)
    share = ctx.params(RandomLabelAudit)["min_excess_share"]
    cond = Condition(
        f"held-out {ctx.metric} under label shuffles shared by train and test is not above chance by "
        f"min_excess, and its excess is bounded below {b['margin_share']:g} of the headroom (variant B)",
        status, _b_observed(b, p_adj, b_floor),
        f"FAIL when the Holm-adjusted one-sided p of excess > {b_floor:.4g} (the larger of min_excess "
        f"{min_excess:g} and min_excess_share {float(share):g} x headroom) is < {alpha:g}; PASS "
        f"only when the one-sided {b['bound_level']:.0%} upper bound < margin = margin_share "
        f"{b['margin_share']:g} x headroom {b['headroom']:.3f} (mean ideal - chance) = {b['margin']:.4f}; "
        "otherwise inconclusive")
    if status == "FAIL":
        return Found([cond], [f"Above chance under random labels shared by train and test (variant B): "
                              f"{ctx.metric} {b['mean_metric']:.3f} vs chance {b['mean_chance']:.3f} (excess "
                              f"{b['excess']:+.3f}, 95% CI {b['ci_low']:+.3f} to {b['ci_high']:+.3f}; adjusted p of "
                              f"an excess above {b_floor:.4g} = {p_adj:.2g}) -- the model ranks test rows it saw in "
                              f"training ({b['shared_test_rows']} test rows share a key with training)."],
                     ["Rows shared across the split survive random labels: run the isolation audit, deduplicate "
                      "(query, item) pairs and re-split by query before reporting any gain."])
    if status == "PASS":
        where = _position(b["ci_low"], b["ci_high"], b["excess"])
        if where == "above chance":  # a CI above zero, not shown to exceed the floor after Holm
            where += (f", by less than the Holm-adjusted test can tell from the floor {b_floor:.4g} "
                      f"(adjusted p = {p_adj:.2g})")
        # a CI above chance that the test cannot place above the floor is a small excess, not "no sign"
        small = where.startswith("above chance")
        lead = "A small excess, below the FAIL floor" if small else "No sign of memorised shared rows"
        steps = (["Variant B's excess is above chance, though not shown above the floor: check the isolation "
                  "audit for rows shared by train and test."] if small else [])
        return Found([cond], [f"{lead}: under label shuffles shared by train and test "
                              f"(variant B) {ctx.metric} is {where} ({b['mean_metric']:.3f} vs chance "
                              f"{b['mean_chance']:.3f}, excess {b['excess']:+.3f}, 95% CI {b['ci_low']:+.3f} to "
                              f"{b['ci_high']:+.3f}); the upper bound {b['upper_bound']:+.3f} rules out an excess "
                              f"of {b['margin']:.3f} ({b['margin_share']:.0%} of the way from chance to a perfect "
                              "ranking)."], steps)
    return Found([cond], [f"Variant B cannot bound the excess: {ctx.metric} {b['mean_metric']:.3f} vs chance "
                          f"{b['mean_chance']:.3f} (excess {b['excess']:+.3f}, 95% CI {b['ci_low']:+.3f} to "
                          f"{b['ci_high']:+.3f}; not shown above the floor {b_floor:.4g} after Holm: adjusted p = {p_adj:.2g}), "
                          f"but its upper bound {b['upper_bound']:+.3f} is not below the margin {b['margin']:.3f} "
                          f"with {b['n']} informative test queries."],
                 [_more_queries_step(b)], True)


def _b_status(b: Mapping[str, Any], p_adj: float, alpha: float) -> str:
    if p_adj < alpha:
        return "FAIL"
    if np.isfinite(b["upper_bound"]) and b["upper_bound"] < b["margin"]:
        return "PASS"
    return "WARN"


def _b_observed(b: Mapping[str, Any], p_adj: float, floor: float) -> str:
    reps = int(b.get("repeats", 1))
    return (f"{b['mean_metric']:.4f} vs chance {b['mean_chance']:.4f}: excess {b['excess']:+.4f} "
            f"(95% CI {b['ci_low']:+.4f} to {b['ci_high']:+.4f}) over {b['n']} queries"
            f"{f' (mean of {reps} shuffles)' if reps > 1 else ''}; one-sided paired t-test of excess > "
            f"{floor:.4g}: p = {b['p_min_effect']:.3g} (adjusted {p_adj:.3g}); of excess > 0: p = "
            f"{b['p_value']:.3g}, sign-flip p = {b['p_sign_flip']:.3g}; one-sided {b['bound_level']:.0%} "
            f"upper bound {b['upper_bound']:+.4f} vs margin {b['margin']:.4f}; {b['shared_test_rows']} test "
            "rows share a (query, item) key with training")


def ranking_depends_on_labels(ctx: Any, evidence: Evidence, *, alpha: float, min_excess: float) -> Found:
    """Variant A (reported, never FAIL): WARN when the seed-0 model's held-out metric is identical with
    true and permuted training labels while the true-label model ranks above chance; the label-free
    ranking strength is stated either way."""
    m = evidence.measurements
    a = m.get("variant_a")
    if a is None:
        return Found([], [], [])
    t = m.get("true_labels")
    ignored = a.get("labels_ignored")
    # the one label-free signature a learner never shows: held-out scores that do not move when its
    # training labels are replaced (a fixed rule, or labels that reach it from elsewhere)
    warn = bool(ignored and t is not None and t["p_value"] < alpha and t["excess"] >= min_excess)
    conds = []
    if ignored is not None:
        conds.append(Condition(
            "the model's held-out ranking depends on the labels it is trained on (variant A; its label-free "
            "ranking strength is reported, never judged)", "WARN" if warn else "PASS", _a_observed(a, t),
            "WARN when the held-out metric of the seed-0 model is identical on every query with true and "
            "with permuted training labels while the true-label model is above chance (one-sided per-query "
            f"t-test p < {alpha:g}, excess >= {min_excess:g}); never FAIL: a label-free prior (features and "
            "architecture that rank by themselves) cannot be told from a label proxy or a label side channel"))
    steps = []
    if warn:
        steps.append("The model's held-out scores are the same whether it is trained on the true or on "
                     "permuted labels, and they rank above chance: it does not learn from the labels it is "
                     "given. Expected for a fixed rule (a BM25 score, a feature sum); otherwise look for label "
                     "information in the features (the feature-ablation audit's label-proxy scan) or a label "
                     "file the plugin reads.")
    return Found(conds, [_a_summary(a)], steps)


def _a_observed(a: Mapping[str, Any], t: Mapping[str, Any] | None) -> str:
    seeds_txt = ", ".join(f"{x:+.3f}" for x in a.get("seed_excess", []))
    obs = (f"{a['mean_metric']:.4f} vs chance {a['mean_chance']:.4f}: excess {a['excess']:+.4f} (95% CI over "
           f"seeds {a['ci_low']:+.4f} to {a['ci_high']:+.4f}) over {len(a.get('seed_excess', []))} seeds x "
           f"{a['n']} queries; seed excesses {seeds_txt}")
    if a.get("p_value") is not None:
        obs += f"; one-sided t-test over seeds p = {a['p_value']:.3g}"
    if t is not None:
        obs += f"; the model trained on the true labels reaches {t['mean_metric']:.4f}"
    return obs + ("; held-out scores identical with true and permuted training labels" if a["labels_ignored"] else
                  "; held-out scores change when the training labels are permuted")


def _a_summary(a: Mapping[str, Any]) -> str:
    if not all(np.isfinite(float(a[k])) for k in ("mean_metric", "mean_chance", "excess")):
        # no test query where the order of items can change the metric: nothing was measured
        return ("Label-free ranking strength (variant A) could not be measured: no test query has items whose "
                "order changes the metric.")
    where = _position(a["ci_low"], a["ci_high"], a["excess"])
    return (f"Label-free ranking strength (variant A, reported, not a leak test): trained on permuted labels the "
            f"model is {where} ({a['mean_metric']:.3f} vs chance {a['mean_chance']:.3f}, excess "
            f"{a['excess']:+.3f}, 95% CI over {len(a.get('seed_excess', []))} seeds {a['ci_low']:+.3f} to "
            f"{a['ci_high']:+.3f}).")


class RandomLabelAudit(Audit):
    """Random-label retraining: variant B gates, variant A is reported (see the module docstring)."""

    name = "random_label"
    title = "Random-label test"
    question = ("Does the model rank held-out rows above chance when their labels are random -- i.e. did it see "
                "the test rows in training? And how well does it rank with no usable labels at all?")
    method = ParamText("Variant B (gating; Ojala & Garriga 2010, test 1): a shuffle of labels over unique (query, item) "
              "keys (item key = item_id, else a hash of the feature row) applied to train and test alike, whole "
              "pipeline rerun and scored against the shuffled test labels; b_repeats ({b_repeats}) shuffles averaged per "
              "query. A test row absent from training then "
              "has a label independent of its features, so any model -- however strong its label-free prior -- "
              "is at chance in expectation on every query; only rows seen in training can lift it. One-sided "
              "paired t-test over queries against each query's exact chance level (sign-flip test and BCa CI "
              "alongside). FAIL when the Holm-adjusted one-sided p of excess > the floor is < alpha, the floor being "
              "the larger of min_excess ({min_excess}) and min_excess_share ({min_excess_share}) of the headroom "
              "(a minimum-effect test). PASS only when the one-sided 95% upper bound of the excess is below margin_share ({margin_share}) of "
              "the headroom from chance to a perfect ranking (about the excess of a model that memorised a fifth "
              "of the test queries); otherwise INCONCLUSIVE with the number of test queries that would decide. "
              "Variant A (reported, never FAIL): n_seeds ({n_seeds}) models trained on labels permuted across the whole "
              "training set, evaluated on the true test labels; its excess over chance is the label-free ranking "
              "strength (features and architecture rank by themselves, and a within-query shuffle would leave "
              "query base rates learnable), which no test can separate from a label proxy or a label side "
              "channel: CI over seed means (df = K - 1); WARN only when the seed-0 model's held-out metric is "
              "identical with true and permuted training labels while above chance. Training-loss curves under true and random labels show capacity, never a "
              "leak.")
    citations = [
        "Ojala & Garriga (2010), Permutation tests for studying classifier performance, JMLR 11 -- test 1: "
        "permute the labels to test whether the classifier uses any label-feature dependence.",
        "Zhang, Bengio, Hardt, Recht & Vinyals (2017), Understanding deep learning requires rethinking "
        "generalization, ICLR 2017 -- randomisation test; fitting random labels is capacity, not leakage.",
        "Kapoor & Narayanan (2023), Leakage and the reproducibility crisis in machine-learning-based science, "
        "Patterns 4(9).",
        "Smucker, Allan & Carterette (2007), A comparison of statistical significance tests for information "
        "retrieval evaluation, CIKM 2007 -- per-query paired t-test and randomisation test.",
        "Holm (1979), A simple sequentially rejective multiple test procedure, Scand. J. Statist. 6.",
        "Schuirmann (1987), A comparison of the two one-sided tests procedure and the power approach for "
        "assessing the equivalence of average bioavailability, J. Pharmacokinet. Biopharm. 15 -- a PASS as "
        "an upper confidence bound inside a margin.",
    ]
    blind_spots = [
        "Label information that reaches the model through the features (a label-proxy column, target encoding "
        "computed on all data) or from outside the data the auditor passes (a plugin that reads a label file) "
        "looks exactly like a label-free prior: variant A reports it as label-free ranking strength (and WARNs "
        "when the model ignores its training labels), it cannot FAIL it. The feature-ablation audit's label-proxy scan covers proxy columns.",
        "Variant B only sees rows shared across the split that have the same query identity and item key, and "
        "only through a model that memorises them; re-encoded or perturbed copies need the isolation audit's "
        "near-duplicate search, which finds copies whatever the model does.",
        "A PASS bounds B's excess below margin_share of the headroom; a smaller leak (a few memorised queries) "
        "can pass. The report gives the bound and its size in metric units.",
        "Models whose fit is not seeded make A's K seeds less independent; A decides nothing.",
    ]
    critical = True
    gating = True
    defaults = declare(
        n_seeds=param(int, 3, min=1, quick=2, help="variant-A models (each one fit); reported only"),
        variant_b=param(bool, True, help="run variant B (the gating test); off: INCONCLUSIVE"),
        min_excess=param(float, 0.01, min=0, help="absolute floor of the minimum-effect test: FAIL demonstrates an "
                                                  "excess above the floor"),
        min_excess_share=param(float, 0.05, min=0, max=1, help="the floor is at least this share of the headroom "
                                                               "(about 1 memorised test query in 20)"),
        margin_share=param(float, 0.2, min=0, max=1, help="PASS needs B's 95% upper bound below this share of "
                                                          "the headroom"),
        b_repeats=param(int, 2, min=1, help="variant-B shuffles averaged per query (each one fit)"),
        null_samples=param(int, 1000, min=1, quick=200, help="random orderings simulated for the chance-"
                                                              "distribution plot (capped at ~2e6 row evaluations)"),
        sign_flip_resamples=param(int, 10000, min=1, quick=2000, help="B's sign-flip test (reported)"),
        bootstrap=param(int, 5000, min=1, quick=1000, help="BCa CI resamples (queries; reported)"),
        query_match_share=param(float, 0.5, min=0, max=1, help="content match for query identity (see isolation)"),
    )
    #: what decide composes, in report order; thresholds: the suite's alpha and min_excess (both conditions),
    #: margin_share (through variant B's measured bound)
    conditions: ClassVar[tuple[Callable[..., Found], ...]] = (shared_rows_not_memorised, ranking_depends_on_labels)

    # ------------------------------------------------------------------ plan / trials
    def plan(self, ctx) -> list[Trial]:
        p = ctx.params(self)
        k = int(p["n_seeds"])
        if k < 1:
            from auditor.errors import ConfigError

            raise ConfigError(f"[audits.random_label] n_seeds must be >= 1, got {k}.")
        trials = [Trial(self.name, "true", {"seed": 0})]
        trials += [Trial(self.name, f"A{s}", {"seed": s, "variant": "A"}) for s in range(k)]
        r = int(p["b_repeats"])
        if p["variant_b"] and r < 1:
            from auditor.errors import ConfigError

            raise ConfigError(f"[audits.random_label] b_repeats must be >= 1, got {r}.")
        if p["variant_b"]:
            trials += [Trial(self.name, _b_key(i), {"seed": i, "variant": "B", "min_share": float(p["query_match_share"])})
                       for i in range(r)]
        return trials

    def run_trial(self, ctx, trial: Trial) -> dict[str, Any]:
        seed = int(trial.params.get("seed", 0))
        test = ctx.test
        if trial.key == "true":
            model = ctx.fit(0)  # cached: the model trained normally, shared with other audits
            s = ctx.score(model, test)
            return jsonable({"metric": ctx.metric_values(test, s), "history": _history(model)})
        variant = trial.params["variant"]
        if variant == "A":
            # permuted across all training rows, not within queries: a within-query shuffle keeps each
            # query's label multiset, which a pointwise model learns from query-level features
            rng = ctx.rng("random_label", "A", seed)
            y = rng.permutation(np.asarray(ctx.train.labels, dtype=np.float64))
            model = ctx.fit(seed, train=ctx.train.with_labels(y))
            s = ctx.score(model, test)
            return jsonable({"metric": ctx.metric_values(test, s), "history": _history(model)})
        if variant == "B":
            rng = ctx.rng("random_label", "B", seed)
            y_tr, y_te, info = shared_key_labels(ctx.train, test, rng, min_share=float(trial.params["min_share"]))
            model = ctx.fit(seed, train=ctx.train.with_labels(y_tr))
            s = ctx.score(model, test)
            m = ctx.per_query(test, s, labels=y_te)[ctx.metric]
            chance = expected_random(ctx.metric, y_te, test.query_offsets, gain=ctx.config.gain,
                                     no_relevant=ctx.config.no_relevant)
            info_q = informative_queries(ctx.metric, y_te, test.query_offsets, gain=ctx.config.gain,
                                         no_relevant=ctx.config.no_relevant)
            return jsonable({"metric": m, "chance": chance, "informative": info_q, "labels": y_te,
                             "history": _history(model), **info})
        raise KeyError(trial.key)

    # ------------------------------------------------------------------ measure
    def measure(self, ctx, results: Mapping[str, dict[str, Any]]) -> Evidence:
        p = ctx.params(self)
        test = ctx.test
        kw = dict(gain=ctx.config.gain, no_relevant=ctx.config.no_relevant)
        chance = expected_random(ctx.metric, test.labels, test.query_offsets, **kw)
        informative = informative_queries(ctx.metric, test.labels, test.query_offsets, **kw)
        n_undef = int(np.sum(~np.isfinite(chance)))
        n_uninf = int(np.sum(np.isfinite(chance) & ~informative))
        seeds = sorted((k for k in results if k.startswith("A")), key=lambda k: int(k[1:]))
        notes: list[str] = []
        meas: dict[str, Any] = {"metric": ctx.metric, "n_test_queries": test.n_queries,
                                "excluded_no_relevant": n_undef, "excluded_uninformative": n_uninf,
                                "n_seeds": len(seeds)}
        if n_undef:
            notes.append(f"{n_undef} test queries have no relevant item: the metric is undefined there and they "
                         f"are excluded (no_relevant = {ctx.config.no_relevant!r}).")
        if n_uninf:
            notes.append(f"{n_uninf} test queries score the same under every ordering (one candidate or equal "
                         "labels) and are excluded from the tests.")
        seed_b = int(ctx.rng("random_label", "tests").integers(2**31))
        # true-label model, for context
        true_m = _arr(results["true"]["metric"]) if "true" in results else None
        if true_m is not None:
            d_true = np.where(informative, true_m - chance, np.nan)
            meas["true_labels"] = _summary(d_true, true_m, chance, informative, p, seed_b)
        # variant A: label-free ranking strength (reported; WARN at most)
        A = np.vstack([_arr(results[k]["metric"]) for k in seeds]) if seeds else np.zeros((0, test.n_queries))
        if seeds:
            d_seed = np.where(informative[None, :], A - chance[None, :], np.nan)
            # a query undefined for one seed is undefined for all (it depends on the labels only)
            d_a = d_seed.mean(axis=0)
            # descriptive per-query summary, conditional on these K fitted models ...
            ra = _summary(d_a, A.mean(axis=0), chance, informative, p, seed_b)
            ra["p_per_query_conditional"] = ra.pop("p_value")
            ra["ci_per_query_low"], ra["ci_per_query_high"] = ra.pop("ci_low"), ra.pop("ci_high")
            # ... but the test treats the *seeds* as replicates: each random-label model is one
            # random function, and its chance alignment with the true relevance is shared by every
            # test query, so queries are not independent replicates under H0 (see _seed_test)
            ra.update(_seed_test(d_seed))
            ra["per_seed"] = [{"seed": int(k[1:]), "mean_metric": _mean_defined(np.where(informative, A[i], np.nan)),
                               "excess": _mean_defined(d_seed[i])} for i, k in enumerate(seeds)]
            if true_m is not None and "A0" in results:
                # same seed, only the labels differ: identical held-out metrics on every query mean
                # that the model's ranking does not depend on the labels it is trained on
                ok = informative & np.isfinite(true_m)
                ra["labels_ignored"] = bool(ok.any() and np.allclose(A[seeds.index("A0")][ok], true_m[ok],
                                                                     rtol=0.0, atol=1e-12))
            if true_m is not None and "true_labels" in meas:
                t_ex = meas["true_labels"]["excess"]
                ra["share_of_true_excess"] = (float(ra["excess"] / t_ex) if np.isfinite(t_ex) and t_ex > 1e-9
                                              else None)
            meas["variant_a"] = ra
            if ra["p_value"] is None:
                notes.append("variant A needs at least 2 seeds for its test over seed means: reported, not judged.")
        # variant B: the gating test. Its R shuffles are averaged per query: under H0 each is a draw with
        # mean 0 per query, so the average is too (less noise), while memorised rows lift every shuffle.
        p_gate = None
        bkeys = sorted((k for k in results if _is_b_key(k)), key=lambda k: int(k[1:] or 0))
        if bkeys:
            d_reps, c_reps, m_reps, h_reps = [], [], [], []
            for k in bkeys:
                rr = results[k]
                cb, mb = _arr(rr["chance"]), _arr(rr["metric"])
                infb = np.array(rr["informative"], dtype=bool)
                y_b = _arr(rr["labels"])
                ideal = evaluate(ctx.metric, y_b, y_b, test.query_offsets, **kw)
                d_reps.append(np.where(infb & np.isfinite(mb), mb - cb, np.nan))
                c_reps.append(np.where(infb, cb, np.nan))
                m_reps.append(np.where(infb, mb, np.nan))
                h_reps.append(np.where(infb, ideal - cb, np.nan))
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN queries stay NaN (excluded)
                d_b = np.nanmean(np.vstack(d_reps), axis=0)
                cb, mb = np.nanmean(np.vstack(c_reps), axis=0), np.nanmean(np.vstack(m_reps), axis=0)
                head = np.nanmean(np.vstack(h_reps), axis=0)
            infb = np.isfinite(d_b)
            rb = _summary(d_b, mb, cb, infb, p, seed_b)
            first = results[bkeys[0]]
            rb.update({"n_keys": first["n_keys"], "n_shared_keys": first["n_shared_keys"],
                       "shared_test_rows": first["shared_test_rows"], "repeats": len(bkeys)})
            rb.update(_equivalence_bound(d_b[infb], head[infb], float(p["margin_share"]),
                                         alpha=float(ctx.config.alpha)))
            rb["min_effect"] = _min_effect(float(p["min_excess"]), float(p["min_excess_share"]), rb["headroom"])
            # the gating p: H0 "excess <= min_effect" (a minimum-effect test), so a FAIL demonstrates a leak
            # of at least the floor rather than any excess at all
            rb["p_min_effect"] = float(paired_t_test(d_b[infb], alternative="greater", mu=rb["min_effect"]).p_value)
            meas["variant_b"] = rb
            p_gate = rb["p_min_effect"]
        meas["p_gate"] = p_gate
        # the chance distribution of the mean metric (random orderings of the test queries)
        plots: list[dict[str, Any]] = []
        null = self._chance_distribution(ctx, informative, int(p["null_samples"]))
        markers = [{"label": "chance (exact)", "x": float(np.mean(chance[informative]))}] if informative.any() else []
        if "variant_a" in meas:
            markers.append({"label": f"random labels A (mean of {len(seeds)} seeds)", "x": meas["variant_a"]["mean_metric"]})
        if "true_labels" in meas:
            markers.append({"label": "true labels", "x": meas["true_labels"]["mean_metric"]})
        if null.size:
            plots.append(plot_hist(f"Held-out {ctx.metric} vs its distribution under random orderings", null,
                                   xlabel=f"mean {ctx.metric} over informative test queries", markers=markers))
            meas["chance_distribution"] = {"samples": int(null.size), "q95": float(np.quantile(null, 0.95)),
                                           "q99": float(np.quantile(null, 0.99))}
        rows = []
        for i, k in enumerate(seeds):
            rows.append(_interval_row(f"A seed {k[1:]}", d_seed[i], p, seed_b + i))
        for label, key in (("A pooled", "variant_a"), ("B (shared keys)", "variant_b"), ("true labels", "true_labels")):
            if key in meas:
                r = meas[key]
                rows.append({"label": label, "estimate": r["excess"], "low": r["ci_low"], "high": r["ci_high"]})
        if rows:
            plots.append(plot_intervals(f"{ctx.metric} minus chance (95% CI over queries)", rows,
                                        xlabel=f"{ctx.metric} - chance", ref=0.0))
        series = []
        if "true" in results and results["true"].get("history"):
            series += _series("true labels", results["true"]["history"])
        for k in seeds:
            series += _series(f"random labels A{k[1:]}", results[k].get("history"))
        for k in sorted(k for k in results if _is_b_key(k)):
            series += _series(f"random labels {k}", results[k].get("history"))
        if series:
            plots.insert(0, plot_lines("Training curves: true vs random labels (capacity, not leakage)", series,
                                       xlabel="epoch / iteration", ylabel="training loss"))
            conv = _convergence_note(results, seeds)
            if conv:
                notes.append(conv)
        else:
            notes.append("the model exposes no fit_history(): training curves are not shown.")
        if true_m is not None and "true_labels" in meas and meas["true_labels"]["p_value"] > 0.05:
            notes.append("the model trained on the true labels is not significantly above chance either: "
                         "this test cannot tell a leak-free model from one that learns nothing.")
        null_b = ("under label shuffles shared by train and test (variant B), the held-out metric exceeds chance "
                  "by at most the floor (max of min_excess and min_excess_share x headroom; mean over queries of "
                  "metric - chance <= floor): the model gains no more than that from test rows seen in training")
        tests = []
        if p_gate is not None:
            tests.append(SubTest(B_TEST, p_gate, gates=True, null_hypothesis=null_b))
        if "variant_a" in meas:
            tests.append(SubTest(A_TEST, meas["variant_a"]["p_value"], gates=False,
                                 null_hypothesis="models trained on labels permuted across the training set are at "
                                                 "chance on the true test labels (mean seed excess <= 0)"))
        return Evidence(measurements=meas, null_hypothesis=null_b, plots=plots, notes=notes, tests=tests)

    def _chance_distribution(self, ctx, informative: np.ndarray, samples: int) -> np.ndarray:
        test = ctx.test
        if not informative.any() or samples <= 0:
            return np.zeros(0)
        # cap the work on big test sets: ~2e6 row-evaluations at most
        samples = int(max(50, min(samples, 2_000_000 // max(test.n_rows, 1))))
        rng = ctx.rng("random_label", "chance_distribution")
        out = np.empty(samples)
        for b in range(samples):
            v = ctx.per_query(test, rng.random(test.n_rows))[ctx.metric]
            out[b] = float(np.mean(v[informative]))
        return out

    # ------------------------------------------------------------------ decide
    def decide(self, ctx, evidence: Evidence, p_adjusted: float | None) -> Decision:
        """Compose :attr:`conditions`; variant B's adjusted p comes from its sub-test, as the runner set it."""
        p = ctx.params(self)
        found = [cond(ctx, evidence, alpha=float(ctx.config.alpha), min_excess=float(p["min_excess"]))
                 for cond in self.conditions]
        inconclusive = any(f.inconclusive for f in found)
        return Decision(conditions=[c for f in found for c in f.conditions],
                        summary=" ".join(part for f in found for part in f.summary),
                        next_steps=[step for f in found for step in f.next_steps],
                        status="WARN" if inconclusive else None, inconclusive=inconclusive)


# --------------------------------------------------------------------------- helpers
def _summary(d: np.ndarray, metric: np.ndarray, chance: np.ndarray, informative: np.ndarray,
             p: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Mean excess over chance with its tests and CI (informative queries only)."""
    ok = informative & np.isfinite(d)
    dd = d[ok]
    t = paired_t_test(dd, alternative="greater")
    sf = sign_flip_test(dd, n_resamples=int(p["sign_flip_resamples"]), alternative="greater", seed=seed)
    ci = bootstrap_ci(dd, n_resamples=int(p["bootstrap"]), method="bca", seed=seed + 1) if dd.size >= 2 else None
    ex = float(dd.mean()) if dd.size else float("nan")
    return {"n": int(dd.size), "mean_metric": float(np.mean(metric[ok])) if dd.size else float("nan"),
            "mean_chance": float(np.mean(chance[ok])) if dd.size else float("nan"), "excess": ex,
            "ci_low": ci.low if ci else ex, "ci_high": ci.high if ci else ex,
            "p_value": float(t.p_value), "t": float(t.statistic), "p_sign_flip": float(sf.p_value),
            "win": int(np.sum(dd > 1e-12)), "tie": int(np.sum(np.abs(dd) <= 1e-12)), "loss": int(np.sum(dd < -1e-12))}


def _b_key(i: int) -> str:
    """Trial key of variant B's ``i``-th shuffle ("B", "B1", "B2", ...: the first keeps its old key)."""
    return "B" if i == 0 else f"B{i}"


def _is_b_key(k: str) -> bool:
    return k == "B" or (k.startswith("B") and k[1:].isdigit())


def _position(lo: float, hi: float, est: float) -> str:
    """Where an excess sits relative to chance, as its CI allows saying it."""
    if np.isfinite(lo) and lo > 0:
        return "above chance"
    if np.isfinite(hi) and hi < 0:
        return "below chance"
    return "at chance"


def _min_effect(min_excess: float, share: float, headroom: float) -> float:
    """B's FAIL floor: the larger of ``min_excess`` and ``share`` x the headroom (ideal - chance).

    A model that memorised a share ``s`` of the test queries scores about ``s`` x headroom under B,
    so a floor of 0.05 x headroom declares the smallest leak worth a NO_GO: about one memorised test
    query in twenty. With the absolute floor alone (0.01, ~3% of LETOR's headroom of 0.33) a
    calibrated test still FAILs a clean run at its tail rate: measured 1 of 120 clean
    label-free-prior runs (B excess +0.034, p 0.025 against 0.01) and 2 of 300 clean generator runs.
    """
    h = float(headroom)
    return float(max(min_excess, share * h)) if np.isfinite(h) else float(min_excess)


def _equivalence_bound(d: np.ndarray, headroom: np.ndarray, share: float, *, alpha: float = 0.05,
                       power: float = 0.8) -> dict[str, Any]:
    """One-sided upper confidence bound of the mean excess ``d`` against a margin.

    The margin is ``share`` x the mean headroom (ideal metric - chance) of the same queries: a
    model that ranks a share ``s`` of the queries perfectly and the rest at chance has an
    excess of about ``s`` x headroom. The excess is bounded when the one-sided ``1 - alpha``
    t upper bound lies below the margin (the upper half of Schuirmann's two one-sided tests).
    ``queries_needed`` is the number of informative queries at which, with the measured
    per-query SD and a true excess of 0, the bound falls below the margin with probability
    ``power``.
    """
    from scipy import stats as st

    d = np.asarray(d, dtype=np.float64)
    n = int(d.size)
    h = float(np.mean(headroom)) if n else float("nan")
    margin = share * h if n else float("nan")
    out: dict[str, Any] = {"margin_share": float(share), "headroom": h, "margin": margin, "bound_level": 1 - alpha,
                           "upper_bound": float("nan"), "sd": float("nan"), "queries_needed": None}
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    out["sd"] = sd
    out["upper_bound"] = float(d.mean() + st.t.ppf(1 - alpha, n - 1) * sd / np.sqrt(n))
    if margin > 0:
        if sd == 0:
            out["queries_needed"] = 2
        else:
            k = 2
            while k < 10**7 and (st.t.ppf(1 - alpha, k - 1) + st.norm.ppf(power)) * sd / np.sqrt(k) > margin:
                k = max(k + 1, int(k * 1.05))
            out["queries_needed"] = int(k)
    return out


def _more_queries_step(b: Mapping[str, Any]) -> str:
    need = b.get("queries_needed")
    if need:
        return (f"Add test queries: with the measured per-query SD ({b['sd']:.3f}) about {need} informative test "
                f"queries bound variant B's excess below the margin ({b['margin']:.3f}) at 80% power; the test set "
                f"has {b.get('n', 0)}.")
    return "Add informative test queries (queries with at least two distinct labels): variant B needs at least 2."


def _seed_test(d_seed: np.ndarray) -> dict[str, Any]:
    """One-sided t-test of the mean excess with the K seed means as replicates (df = K - 1).

    Under H0 a model trained on shuffled labels is a *random* function of the shuffle and seed.
    Any one such function may line up with the true relevance by chance, and then it does so on
    every test query at once: its per-query excesses share that offset, so a per-query test
    (queries as replicates) answers "is this particular model above chance?", not "does
    training on random labels put models above chance?". Measured: a ridge ranker on a clean
    12-feature synthetic split gave seed excesses +0.055, +0.105 and -0.014, and the per-query
    pooled t-test p = 4e-7. The seed means carry both sources of variation (balanced one-way
    random-effects model: the t-test on group means is the standard test of the grand mean).
    """
    from scipy import stats as st

    e = np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in d_seed])
    e = e[np.isfinite(e)]
    K = e.size
    out: dict[str, Any] = {"seed_excess": e.tolist(), "test": "one-sided t-test over seed means (df = K - 1)"}
    if K < 2:
        m = float(e.mean()) if K else float("nan")
        out.update({"p_value": None, "excess": m, "ci_low": m, "ci_high": m, "seed_sd": float("nan")})
        return out
    t = paired_t_test(e, alternative="greater")
    sd = float(e.std(ddof=1))
    half = float(st.t.ppf(0.975, K - 1) * sd / np.sqrt(K))
    out.update({"p_value": float(t.p_value), "t": float(t.statistic), "excess": float(e.mean()),
                "ci_low": float(e.mean() - half), "ci_high": float(e.mean() + half), "seed_sd": sd})
    return out


def _interval_row(label: str, d: np.ndarray, p: Mapping[str, Any], seed: int) -> dict[str, Any]:
    dd = d[np.isfinite(d)]
    if dd.size < 2:
        v = float(dd.mean()) if dd.size else float("nan")
        return {"label": label, "estimate": v, "low": v, "high": v}
    ci = bootstrap_ci(dd, n_resamples=min(2000, int(p["bootstrap"])), method="percentile", seed=seed)
    return {"label": label, "estimate": ci.estimate, "low": ci.low, "high": ci.high}


def _history(model: Any) -> dict[str, list[float]] | None:
    if not has_fit_history(model):
        return None
    try:
        h = model.fit_history()
    except Exception:  # optional hook: a broken one must not fail the audit
        return None
    if not isinstance(h, Mapping):
        return None
    out = {}
    for k, v in h.items():
        try:
            out[str(k)] = [float(x) for x in v]
        except (TypeError, ValueError):
            continue
    return out


def _series(label: str, hist: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not hist:
        return []
    key = "train_loss" if "train_loss" in hist else next(iter(hist), None)
    if key is None:
        return []
    y = [v for v in hist[key] if v is not None]
    return [{"label": f"{label} ({key})", "x": list(range(1, len(y) + 1)), "y": y}] if y else []


def _convergence_note(results: Mapping[str, Any], seeds: list[str]) -> str | None:
    def last(h):
        if not h:
            return None
        key = "train_loss" if "train_loss" in h else next(iter(h), None)
        v = [x for x in (h.get(key) or []) if x is not None]
        return (v[0], v[-1]) if v else None

    tl = last((results.get("true") or {}).get("history"))
    rl = [last(results[k].get("history")) for k in seeds]
    rl = [x for x in rl if x]
    if not rl:
        return None
    first = np.mean([x[0] for x in rl])
    end = np.mean([x[1] for x in rl])
    txt = f"training loss under random labels went from {first:.3g} to {end:.3g}"
    if tl:
        txt += f" (true labels: {tl[0]:.3g} to {tl[1]:.3g})"
    return txt + ": fitting random labels shows capacity to memorise, not a leak (Zhang et al. 2017)."


def _mean_defined(x: np.ndarray) -> float | None:
    """Mean over the defined (non-NaN) entries; None when there is none (no informative query)."""
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else None
