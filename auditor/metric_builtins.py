"""The built-in metric families: nDCG, MAP, MRR, P@k, recall and compliance@1.

Each family is one :class:`~auditor.metric_registry.MetricFamily` entry below: its kernel on
ranked queries, its tie-aware kernel and its exact chance level. The conventions (gains,
discount, relevance threshold, undefined queries) are in :mod:`auditor.metrics`; the views the
kernels read are :class:`~auditor.metrics.RankedView`, :class:`~auditor.metrics.TiedView` and
:class:`~auditor.metrics.ChanceView`.

Every expression here is the one ``auditor.metrics`` evaluated before the registry existed,
in the same floating-point order: values are bit-identical (tests/test_metrics.py and the
golden files check them). numpy is imported on first use (``audit --help`` reads this
registry and stays light).
"""
from __future__ import annotations

from typing import Any, Callable

from auditor.lazy import LazyModule
from auditor.metric_registry import MetricFamily

np: Any = LazyModule("numpy")

__all__ = ["FAMILIES", "gains", "discounts"]


def gains(labels: Any, gain: str) -> Any:
    """Gain of each label: ``max(label, 0)`` (``"linear"``) or ``2**label - 1`` (``"exp"``), float64."""
    lab = np.maximum(np.asarray(labels, dtype=np.float64), 0.0)
    if gain == "linear":
        return lab
    if gain == "exp":
        return np.exp2(lab) - 1.0
    raise ValueError(f"gain must be 'linear' or 'exp', got {gain!r}")


def discounts(depth: int) -> Any:
    """``1 / log2(rank + 1)`` for ranks 1..depth."""
    return 1.0 / np.log2(np.arange(depth, dtype=np.float64) + 2.0)


# ------------------------------------------------------------------------------- nDCG
def _ndcg_parts(v: Any) -> tuple[Any, Any, Any]:
    Di = v.family_depth
    ideal = v.ideal_labels(Di)
    g = gains(v.labels[:, :Di], v.gain)
    if v.valid is not None:
        g *= v.valid[:, :Di]
    return g, gains(ideal, v.gain), discounts(Di)


def ndcg(v: Any, k: int | None) -> Any:
    g, ideal_g, disc = v.cached("ndcg", lambda: _ndcg_parts(v))
    kk = v.cut(k)
    # row-wise sums, not BLAS: a query's value must not depend on chunking or threads
    dcg = (g[:, :kk] * disc[:kk]).sum(axis=1)
    idcg = (ideal_g[:, :kk] * disc[:kk]).sum(axis=1)
    pos = idcg > 0
    return np.where(pos, dcg / np.where(pos, idcg, 1.0), v.undefined)


def ndcg_tied(v: Any, k: int | None) -> Any:
    kk = v.cut(k)
    gbar = v.expected(gains(v.labels, v.gain) * v.valid)  # the group's mean gain at each of its ranks
    disc = discounts(kk)
    dcg = (gbar[:, :kk] * disc).sum(axis=1)
    ideal = gains(np.sort(v.all_labels, axis=1)[:, ::-1][:, :kk], v.gain)
    idcg = (ideal * disc).sum(axis=1)
    pos = idcg > 0
    return np.where(pos, dcg / np.where(pos, idcg, 1.0), v.undefined)


def ndcg_chance(v: Any, k: int | None) -> Any:
    """``E[DCG@k] = mean(gain) * sum_{r<min(k,n)} 1/log2(r+2)`` over the fixed IDCG@k."""
    kk = v.kk(k)
    n, off = v.n, v.offsets
    g = gains(v.labels, v.gain)
    qidx = np.repeat(np.arange(off.size - 1), np.diff(off))
    gs = g[np.lexsort((-g, qidx))]
    rank = v.ranks
    within = rank < kk[qidx]
    disc = 1.0 / np.log2(rank + 2.0)
    idcg = v.segsum(gs * disc * within)
    cum = np.concatenate([[0.0], np.cumsum(discounts(int(n.max())))])
    edcg = v.segsum(g) / n * cum[kk.astype(np.int64)]
    pos = idcg > 0
    return np.where(pos, edcg / np.where(pos, idcg, 1.0), v.undefined)


# ------------------------------------------------------------------------------- MAP
def average_precision(v: Any, k: int | None) -> Any:
    kk = v.cut(k)
    rk = v.rel[:, :kk]
    hits = np.cumsum(rk, axis=1, dtype=np.int32)
    hits *= rk  # precision counted at relevant ranks only
    num = (hits / np.arange(1.0, kk + 1.0)).sum(axis=1)
    has_rel = v.has_rel
    return np.where(has_rel, num / np.where(has_rel, v.n_relevant, 1.0), v.undefined)


def average_precision_tied(v: Any, k: int | None) -> Any:
    """``E[rel_p * hits_p] = r/m * (H + 1 + j (r-1)/(m-1))`` (pairs of places in a group are exchangeable)."""
    kk = v.cut(k)
    r, m, j = v.rel_in_group, v.m, v.j
    e = r / m * (v.rel_above + 1.0 + j * (r - 1.0) / np.maximum(m - 1.0, 1.0)) / v.rank
    has_rel = v.has_rel
    return np.where(has_rel, e[:, :kk].sum(axis=1) / np.where(has_rel, v.n_relevant, 1.0), v.undefined)


def _by_shape(v: Any, k: int | None, one: Callable[[int, int, int], float]) -> Any:
    """``one(n, R, k)`` once per distinct (query size, relevant count, cutoff), spread to the queries."""
    n, R, kk = v.n, v.R, v.kk(k)
    key = np.stack([n, R, kk], axis=1)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    vals_u = np.zeros(uniq.shape[0])
    for u, (nn, RR, kc) in enumerate(uniq):
        nn, RR, kc = int(nn), int(RR), int(kc)
        if RR == 0:
            continue
        vals_u[u] = one(nn, RR, kc)
    return np.where(R > 0, vals_u[inv], v.undefined)


def _ap_chance_one(nn: int, RR: int, kc: int) -> float:
    r = np.arange(1, kc + 1, dtype=np.float64)
    e = (RR / nn) * (1 + (r - 1) * (RR - 1) / max(nn - 1, 1)) / r
    return float(e.sum()) / RR


def average_precision_chance(v: Any, k: int | None) -> Any:
    """``(1/R) sum_r E[rel_r * hits_r] / r`` with ``E[rel_r * hits_r] = R/n (1 + (r-1)(R-1)/(n-1))``."""
    return _by_shape(v, k, _ap_chance_one)


# ------------------------------------------------------------------------------- MRR
def reciprocal_rank(v: Any, k: int | None) -> Any:
    kk = v.cut(k)
    rk = v.rel[:, :kk]
    first = np.argmax(rk, axis=1)
    rr = np.where(rk[np.arange(v.n_queries), first], 1.0 / (first + 1.0), 0.0)
    return np.where(v.has_rel, rr, v.undefined)


def reciprocal_rank_tied(v: Any, k: int | None) -> Any:
    """Only the first group holding a relevant item counts: P(first relevant at its place j)
    = ``prod_{i<j} (m-r-i)/(m-i) * r/(m-j)``."""
    kk = v.cut(k)
    r, m, j = v.rel_in_group, v.m, v.j
    first = (v.rel_above == 0) & (r > 0)
    f = np.where(first, (m - r - j) / (m - j), 1.0)  # P(this place is not relevant | none before it was)
    none_before = np.ones(f.shape)
    np.cumprod(f[:, :-1], axis=1, out=none_before[:, 1:])
    e = np.where(first, none_before * r / (m - j) / v.rank, 0.0)
    return np.where(v.has_rel, e[:, :kk].sum(axis=1), v.undefined)


def _rr_chance_one(nn: int, RR: int, kc: int) -> float:
    # P(first r-1 non-relevant) = prod_{j<r-1} (n-R-j)/(n-j); then relevant w.p. R/(n-r+1)
    r = np.arange(1, kc + 1, dtype=np.float64)
    fr = (nn - RR - np.arange(kc, dtype=np.float64)) / (nn - np.arange(kc, dtype=np.float64))
    none_before = np.concatenate([[1.0], np.cumprod(np.clip(fr, 0.0, None))[:-1]])
    return float(np.sum(none_before * RR / (nn - r + 1.0) / r))


def reciprocal_rank_chance(v: Any, k: int | None) -> Any:
    """``sum_r 1/r * P(first relevant at r)``."""
    return _by_shape(v, k, _rr_chance_one)


# ------------------------------------------------------------------------------- P@k, recall
def precision(v: Any, k: int | None) -> Any:
    # divides by k even when fewer than k items were retrieved (trec_eval)
    return np.where(v.has_rel, np.count_nonzero(v.rel[:, :v.cut(k)], axis=1) / float(k), v.undefined)


def precision_tied(v: Any, k: int | None) -> Any:
    return np.where(v.has_rel, (v.rel_in_group / v.m)[:, :v.cut(k)].sum(axis=1) / float(k), v.undefined)


def precision_chance(v: Any, k: int | None) -> Any:
    """``R/n * min(k, n) / k``."""
    R = v.R
    return np.where(R > 0, R / v.n * v.kk(k) / float(k or 1), v.undefined)


def recall(v: Any, k: int | None) -> Any:
    hits = np.count_nonzero(v.rel[:, :v.cut(k)], axis=1)
    has_rel = v.has_rel
    return np.where(has_rel, hits / np.where(has_rel, v.n_relevant, 1.0), v.undefined)


def recall_tied(v: Any, k: int | None) -> Any:
    has_rel = v.has_rel
    return np.where(has_rel, (v.rel_in_group / v.m)[:, :v.cut(k)].sum(axis=1) / np.where(has_rel, v.n_relevant, 1.0),
                    v.undefined)


def recall_chance(v: Any, k: int | None) -> Any:
    """``min(k, n) / n``."""
    return np.where(v.R > 0, v.kk(k) / v.n, v.undefined)


# ------------------------------------------------------------------------------- compliance@1
def compliance(v: Any, k: int | None) -> Any:
    c = v.column("compliance", depth=1)[:, 0]
    ok0 = np.ones(v.n_queries, dtype=bool) if v.valid is None else v.valid[:, 0]
    return np.where(ok0, (c > 0).astype(np.float64), np.nan)


def compliance_tied(v: Any, k: int | None) -> Any:
    """The share of compliant items in the top group."""
    share = v.expected((v.column("compliance") > 0).astype(np.float64))
    return np.where(v.valid[:, 0], share[:, 0], np.nan)


def compliance_chance(v: Any, k: int | None) -> Any:
    """The share of compliant candidates (NaN without the column)."""
    if v.compliance is None:
        return None
    c = (np.asarray(v.compliance, dtype=np.float64) > 0).astype(np.float64)
    return v.segsum(c) / v.n


FAMILIES: tuple[MetricFamily, ...] = (
    MetricFamily("ndcg", ndcg, ndcg_tied, ndcg_chance, trec_eval="ndcg", trec_eval_cut="ndcg_cut",
                 description="normalised discounted cumulative gain (linear gain, or --gain exp)"),
    MetricFamily("map", average_precision, average_precision_tied, average_precision_chance, aliases=("ap",),
                 trec_eval="map", trec_eval_cut="map_cut", description="mean average precision"),
    MetricFamily("mrr", reciprocal_rank, reciprocal_rank_tied, reciprocal_rank_chance,
                 aliases=("recip_rank", "rr"), trec_eval="recip_rank",
                 description="mean reciprocal rank of the first relevant item"),
    MetricFamily("p", precision, precision_tied, precision_chance, cutoff="required", prefixes=("precision",),
                 trec_eval_cut="P", description="precision at k (divides by k)"),
    MetricFamily("recall", recall, recall_tied, recall_chance, aliases=("set_recall",), trec_eval="set_recall",
                 trec_eval_cut="recall", description="recall at k (without k: of everything retrieved)"),
    MetricFamily("compliance", compliance, compliance_tied, compliance_chance, cutoff="one", column="compliance",
                 description="1 when the top candidate satisfies the 'compliance' column"),
)
