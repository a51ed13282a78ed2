"""Per-query ranking metrics with trec_eval semantics, vectorized over all queries at once.

Conventions (trec_eval's, verified against its own test files in ``tests/data/trec_eval``):

- **Gain**: linear (``gain = rel``) by default, ``gain="exp"`` for ``2**rel - 1``; negative
  labels give gain 0.
- **Discount**: ``log2(rank + 1)`` with rank starting at 1.
- **Ideal DCG**: from *all* judged items of the query (including judged items the run did not
  retrieve, passed as rows with ``retrieved=False``), cut at the same depth.
- **Relevant** (MAP, MRR, P@k, recall@k): ``label >= rel_threshold`` (1 by default).
- **Ties**: score descending, then item id descending (trec_eval compares docnos as strings);
  without item ids, the earlier row wins (stable).
- **P@k** divides by ``k`` even when fewer than ``k`` items were retrieved.
- **Queries with no relevant item**: the metric is undefined (trec_eval drops such queries
  from qrels); we return NaN for them and :func:`mean_metric` excludes them, returning the
  count so every report can state it (policy ``"exclude"``). Policy ``"zero"`` scores them 0.
  ``compliance@1`` does not depend on labels and is defined for every query.

Every function returns a per-query array of shape ``(n_queries,)`` (ranx style): means,
confidence intervals and paired tests are built from these arrays.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["MetricSpec", "parse_metric", "evaluate", "evaluate_many", "mean_metric",
           "ndcg", "average_precision", "reciprocal_rank", "precision", "recall",
           "compliance_at_1", "rank_order", "expected_random", "METRIC_NAMES"]

METRIC_NAMES = ("ndcg", "ndcg@k", "map", "mrr", "p@k", "recall@k", "compliance@1")

Gain = Literal["linear", "exp"]


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric name: ``kind`` in {ndcg, map, mrr, p, recall, compliance}, cutoff ``k``."""

    kind: str
    k: int | None = None

    @property
    def name(self) -> str:
        base = {"p": "p", "ndcg": "ndcg", "map": "map", "mrr": "mrr", "recall": "recall",
                "compliance": "compliance"}[self.kind]
        return base if self.k is None else f"{base}@{self.k}"


_ALIASES = {
    "ndcg": ("ndcg", None), "map": ("map", None), "ap": ("map", None), "mrr": ("mrr", None),
    "recip_rank": ("mrr", None), "rr": ("mrr", None),
}


def parse_metric(name: str) -> MetricSpec:
    """Parse ``ndcg@10``, ``ndcg_cut_10``, ``map``, ``mrr``, ``p@5``, ``P_5``, ``recall@100``, ``compliance@1``.

    Raises
    ------
    ValueError
        Unknown names, with the list of valid ones.
    """
    s = name.strip()
    low = s.lower()
    if low in _ALIASES:
        kind, k = _ALIASES[low]
        return MetricSpec(kind, k)
    m = re.fullmatch(r"(ndcg|p|precision|recall|compliance|mrr|map)(?:@|_cut_|_)(\d+)", low)
    if m:
        kind = {"precision": "p"}.get(m.group(1), m.group(1))
        k = int(m.group(2))
        if k < 1:
            raise ValueError(f"metric {name!r}: cutoff must be >= 1")
        if kind == "compliance" and k != 1:
            raise ValueError(f"metric {name!r}: only compliance@1 is defined")
        return MetricSpec(kind, k)
    raise ValueError(f"unknown metric {name!r}; valid: ndcg, ndcg@k, map, mrr, p@k, recall@k, compliance@1 "
                     "(trec_eval spellings ndcg_cut_k, P_k, recip_rank also accepted)")


# --------------------------------------------------------------------------- ordering
def _tie_key(item_id: np.ndarray | None, n: int) -> np.ndarray:
    """An array whose *descending* order is the tie-break order."""
    if item_id is None:
        return -np.arange(n)  # earlier row first
    ids = np.asarray(item_id)
    if ids.dtype.kind in "iuf":
        return ids
    # strings: descending strcmp order, as trec_eval; rank codes keep lexsort numeric
    _, codes = np.unique(ids.astype(str), return_inverse=True)
    return codes


def rank_order(scores: np.ndarray, offsets: np.ndarray, item_id: np.ndarray | None = None,
               retrieved: np.ndarray | None = None) -> np.ndarray:
    """Row permutation that sorts each query by score desc, then item id desc.

    Parameters
    ----------
    scores : ndarray, shape (n,)
    offsets : ndarray, shape (n_queries + 1,)
    item_id : ndarray, shape (n,), optional
    retrieved : ndarray of bool, shape (n,), optional
        Rows with ``False`` (judged but not retrieved) go after all retrieved rows.

    Returns
    -------
    ndarray of int, shape (n,)
        Queries stay in place (rows of query i remain in ``offsets[i]:offsets[i+1]``).
    """
    n = scores.shape[0]
    qidx = np.repeat(np.arange(offsets.shape[0] - 1), np.diff(offsets))
    keys = [-_tie_key(item_id, n), -np.asarray(scores, dtype=np.float64)]
    if retrieved is not None:
        keys.append(~np.asarray(retrieved, dtype=bool))
    keys.append(qidx)
    return np.lexsort(keys)


# --------------------------------------------------------------------------- helpers
def _gains(labels: np.ndarray, gain: Gain) -> np.ndarray:
    lab = np.clip(np.asarray(labels, dtype=np.float64), 0.0, None)
    if gain == "linear":
        return lab
    if gain == "exp":
        return np.exp2(lab) - 1.0
    raise ValueError(f"gain must be 'linear' or 'exp', got {gain!r}")


def _segsum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of values within each query (queries are non-empty)."""
    return np.add.reduceat(values, offsets[:-1]) if values.size else np.zeros(offsets.size - 1)


def _ranks(offsets: np.ndarray) -> np.ndarray:
    """0-based position of each row inside its query, shape (n,)."""
    n = int(offsets[-1])
    return np.arange(n) - np.repeat(offsets[:-1], np.diff(offsets))


class _Prepared:
    """Sorted views shared by several metrics of one (labels, scores) pair."""

    def __init__(self, labels, scores, offsets, item_id=None, retrieved=None, rel_threshold=1.0):
        labels = np.asarray(labels, dtype=np.float64)
        scores = np.asarray(scores, dtype=np.float64)
        offsets = np.asarray(offsets, dtype=np.int64)
        if labels.shape != scores.shape:
            raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
        self.offsets = offsets
        order = rank_order(scores, offsets, item_id, retrieved)
        self.labels_sorted = labels[order]
        self.retr_sorted = (np.ones_like(labels, dtype=bool) if retrieved is None
                            else np.asarray(retrieved, dtype=bool)[order])
        self.rank = _ranks(offsets)  # 0-based
        self.rel_threshold = rel_threshold
        self.rel_sorted = (self.labels_sorted >= rel_threshold) & self.retr_sorted
        self.n_rel = _segsum((labels >= rel_threshold).astype(np.float64), offsets)
        self._ideal = None

    @property
    def ideal_labels(self) -> np.ndarray:
        if self._ideal is None:
            qidx = np.repeat(np.arange(self.offsets.size - 1), np.diff(self.offsets))
            o = np.lexsort((-self.labels_sorted, qidx))
            self._ideal = self.labels_sorted[o]
        return self._ideal


def _undefined(values: np.ndarray, n_rel: np.ndarray, policy: str) -> np.ndarray:
    if policy == "exclude":
        return np.where(n_rel > 0, values, np.nan)
    if policy == "zero":
        return np.where(n_rel > 0, values, 0.0)
    raise ValueError(f"no-relevant policy must be 'exclude' or 'zero', got {policy!r}")


def _ndcg(p: _Prepared, k: int | None, gain: Gain, policy: str) -> np.ndarray:
    disc = 1.0 / np.log2(p.rank + 2.0)
    cut = np.ones_like(disc, dtype=bool) if k is None else p.rank < k
    g = _gains(p.labels_sorted, gain) * p.retr_sorted
    dcg = _segsum(g * disc * cut, p.offsets)
    idcg = _segsum(_gains(p.ideal_labels, gain) * disc * cut, p.offsets)
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)
    # graded-but-no-positive-gain queries have idcg 0: undefined like no-relevant
    has_gain = idcg > 0
    if policy == "exclude":
        return np.where(has_gain, val, np.nan)
    return _undefined(val, has_gain.astype(float), policy)


def _ap(p: _Prepared, k: int | None, policy: str) -> np.ndarray:
    rel = p.rel_sorted.astype(np.float64)
    if k is not None:
        rel = rel * (p.rank < k)
    cum = np.cumsum(rel)
    start = np.repeat(cum[p.offsets[:-1]] - rel[p.offsets[:-1]], np.diff(p.offsets))
    hits = cum - start
    prec = hits / (p.rank + 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = _segsum(prec * rel, p.offsets) / np.where(p.n_rel > 0, p.n_rel, 1.0)
    return _undefined(ap, p.n_rel, policy)


def _rr(p: _Prepared, k: int | None, policy: str) -> np.ndarray:
    rel = p.rel_sorted if k is None else p.rel_sorted & (p.rank < k)
    first = np.where(rel, 1.0 / (p.rank + 1.0), 0.0)
    rr = np.maximum.reduceat(first, p.offsets[:-1]) if first.size else np.zeros(p.offsets.size - 1)
    return _undefined(rr, p.n_rel, policy)


def _precision(p: _Prepared, k: int, policy: str) -> np.ndarray:
    hits = _segsum((p.rel_sorted & (p.rank < k)).astype(np.float64), p.offsets)
    return _undefined(hits / float(k), p.n_rel, policy)


def _recall(p: _Prepared, k: int | None, policy: str) -> np.ndarray:
    cut = p.rel_sorted if k is None else p.rel_sorted & (p.rank < k)
    hits = _segsum(cut.astype(np.float64), p.offsets)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = hits / np.where(p.n_rel > 0, p.n_rel, 1.0)
    return _undefined(r, p.n_rel, policy)


# --------------------------------------------------------------------------- public API
def evaluate_many(metrics: list[str | MetricSpec], labels: np.ndarray, scores: np.ndarray,
                  offsets: np.ndarray, *, item_id: np.ndarray | None = None,
                  retrieved: np.ndarray | None = None, gain: Gain = "linear",
                  rel_threshold: float = 1.0, no_relevant: str = "exclude",
                  compliance: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Several metrics over one sort. Returns ``{name: per-query array (n_queries,)}``.

    Parameters
    ----------
    metrics : list of str or MetricSpec
    labels, scores : ndarray, shape (n,)
    offsets : ndarray, shape (n_queries + 1,)
        Query boundaries (``RankingDataset.query_offsets``).
    item_id : ndarray, shape (n,), optional
        Tie-break key (descending).
    retrieved : ndarray of bool, shape (n,), optional
        False for judged items absent from the run (count in ideal DCG and in R only).
    gain : {"linear", "exp"}, default "linear"
    rel_threshold : float, default 1.0
        Minimum label counted as relevant for MAP, MRR, P@k, recall@k.
    no_relevant : {"exclude", "zero"}, default "exclude"
        Value for queries with no relevant item: NaN (excluded from means) or 0.
    compliance : ndarray, shape (n,), optional
        Binary column for ``compliance@1``.
    """
    specs = [m if isinstance(m, MetricSpec) else parse_metric(m) for m in metrics]
    p = _Prepared(labels, scores, offsets, item_id, retrieved, rel_threshold)
    out: dict[str, np.ndarray] = {}
    for s in specs:
        if s.kind == "ndcg":
            v = _ndcg(p, s.k, gain, no_relevant)
        elif s.kind == "map":
            v = _ap(p, s.k, no_relevant)
        elif s.kind == "mrr":
            v = _rr(p, s.k, no_relevant)
        elif s.kind == "p":
            v = _precision(p, s.k or 1, no_relevant)
        elif s.kind == "recall":
            v = _recall(p, s.k, no_relevant)
        elif s.kind == "compliance":
            if compliance is None:
                raise ValueError("compliance@1 needs a 'compliance' column (RankingDataset.extra['compliance'])")
            order = rank_order(np.asarray(scores, dtype=np.float64), p.offsets, item_id, retrieved)
            top = np.asarray(compliance, dtype=np.float64)[order][p.offsets[:-1]]
            v = (top > 0).astype(np.float64)
        else:  # pragma: no cover - parse_metric guards
            raise ValueError(s)
        out[s.name] = v
    return out


def evaluate(metric: str | MetricSpec, labels: np.ndarray, scores: np.ndarray, offsets: np.ndarray,
             **kw) -> np.ndarray:
    """One metric, per query: shape (n_queries,). Keywords as in :func:`evaluate_many`."""
    spec = metric if isinstance(metric, MetricSpec) else parse_metric(metric)
    return evaluate_many([spec], labels, scores, offsets, **kw)[spec.name]


def evaluate_dataset(metric: str, data, scores: np.ndarray, **kw) -> np.ndarray:
    """:func:`evaluate` on a :class:`~auditor.data.RankingDataset` (uses its item ids and compliance)."""
    kw.setdefault("item_id", data.item_id)
    if "compliance" in data.extra:
        kw.setdefault("compliance", data.extra["compliance"])
    return evaluate(metric, data.labels, scores, data.query_offsets, **kw)


def mean_metric(per_query: np.ndarray) -> tuple[float, int]:
    """Mean over defined queries and the number excluded (NaN). Returns ``(mean, n_excluded)``."""
    v = np.asarray(per_query, dtype=np.float64)
    ok = np.isfinite(v)
    return (float(v[ok].mean()) if ok.any() else float("nan")), int((~ok).sum())


def ndcg(labels, scores, offsets, k: int | None = None, **kw) -> np.ndarray:
    """nDCG (``k=None``) or nDCG@k per query."""
    return evaluate(MetricSpec("ndcg", k), labels, scores, offsets, **kw)


def average_precision(labels, scores, offsets, **kw) -> np.ndarray:
    """Average precision per query (MAP is its mean)."""
    return evaluate(MetricSpec("map"), labels, scores, offsets, **kw)


def reciprocal_rank(labels, scores, offsets, **kw) -> np.ndarray:
    """Reciprocal rank of the first relevant item per query (MRR is its mean)."""
    return evaluate(MetricSpec("mrr"), labels, scores, offsets, **kw)


def precision(labels, scores, offsets, k: int, **kw) -> np.ndarray:
    """P@k per query."""
    return evaluate(MetricSpec("p", k), labels, scores, offsets, **kw)


def recall(labels, scores, offsets, k: int, **kw) -> np.ndarray:
    """Recall@k per query."""
    return evaluate(MetricSpec("recall", k), labels, scores, offsets, **kw)


def compliance_at_1(compliance, scores, offsets, item_id=None) -> np.ndarray:
    """1 where the top-ranked candidate satisfies the binary ``compliance`` column, per query."""
    lab = np.ones_like(np.asarray(scores, dtype=np.float64))
    return evaluate(MetricSpec("compliance", 1), lab, scores, offsets, item_id=item_id, compliance=compliance)


# --------------------------------------------------------------------------- chance level
def expected_random(metric: str | MetricSpec, labels: np.ndarray, offsets: np.ndarray, *,
                    gain: Gain = "linear", rel_threshold: float = 1.0,
                    no_relevant: str = "exclude") -> np.ndarray:
    """Exact expected metric per query under a uniformly random ordering of its candidates.

    The chance level of the random-label audit. Closed forms (linear in the labels, so exact):

    - DCG@k: each item lands at each rank with probability 1/n, so
      ``E[DCG@k] = mean(gain) * sum_{r<min(k,n)} 1/log2(r+2)``; divided by the (fixed) IDCG@k.
    - P@k: ``R/n * min(k, n) / k``; recall@k: ``min(k, n) / n``.
    - RR: ``E[1/rank of first relevant]`` = ``sum_r 1/r * P(first relevant at r)`` with the
      hypergeometric-style probability ``C(n-r, R-1) / C(n, R)``.
    - AP: ``(1/R) * sum_r E[rel_r * hits_r] / r`` with
      ``E[rel_r * hits_r] = R/n * (1 + (r-1)(R-1)/(n-1))`` (exchangeability of positions).
    - compliance@1: share of compliant candidates.

    Returns
    -------
    ndarray, shape (n_queries,)
        NaN for queries the metric excludes (no relevant item).
    """
    from math import comb

    spec = metric if isinstance(metric, MetricSpec) else parse_metric(metric)
    labels = np.asarray(labels, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    sizes = np.diff(offsets)
    nq = sizes.size
    out = np.empty(nq)
    for i in range(nq):
        lab = labels[offsets[i]:offsets[i + 1]]
        n = lab.size
        R = int((lab >= rel_threshold).sum())
        if spec.kind == "ndcg":
            g = _gains(lab, gain)
            kk = n if spec.k is None else min(spec.k, n)
            disc = 1.0 / np.log2(np.arange(kk) + 2.0)
            idcg = float((np.sort(g)[::-1][:kk] * disc).sum())
            if idcg <= 0:
                out[i] = np.nan if no_relevant == "exclude" else 0.0
                continue
            out[i] = g.mean() * disc.sum() / idcg
            continue
        if spec.kind == "compliance":
            out[i] = np.nan
            continue
        if R == 0:
            out[i] = np.nan if no_relevant == "exclude" else 0.0
            continue
        if spec.kind == "p":
            k = spec.k or 1
            out[i] = R / n * min(k, n) / k
        elif spec.kind == "recall":
            kk = n if spec.k is None else min(spec.k, n)
            out[i] = kk / n
        elif spec.kind == "mrr":
            kk = n if spec.k is None else min(spec.k, n)
            tot = comb(n, R)
            out[i] = sum(comb(n - r, R - 1) / tot / r for r in range(1, kk + 1))
        elif spec.kind == "map":
            kk = n if spec.k is None else min(spec.k, n)
            r = np.arange(1, kk + 1, dtype=np.float64)
            # E[rel_r * hits_r] = P(rel_r) * (1 + (r-1)(R-1)/(n-1))
            e = (R / n) * (1 + (r - 1) * (R - 1) / max(n - 1, 1)) / r
            out[i] = float(e.sum()) / R
        else:  # pragma: no cover
            raise ValueError(spec)
    return out
