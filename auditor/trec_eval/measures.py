"""The measure registry: every trec_eval 10.0-rc3 measure (all 57 of ``measures.c``).

One :class:`Measure` per trec_eval measure family (``m_<name>.c``), in trec_eval's own order
(``measures.c``: the order lines are printed in). Each entry carries

- ``name``: trec_eval's name; the printed names add the parameters (``P_10``,
  ``iprec_at_recall_0.20``, ``ndcg_1=3,2=9``, ...);
- ``params``: how ``-m name.params`` is read — ``"cut_long"`` (sorted, unique, positive
  integer cutoffs), ``"cut_double"`` (sorted, unique), ``"p_double"`` (a list of numbers),
  ``"p_pair"`` (``name=value`` pairs, e.g. gains per relevance level) or ``"none"``;
- ``kernel(chunk, params) -> (queries, values)`` float64: the per-query values, vectorised over
  a :class:`~auditor.trec_eval.ranked.Chunk`, computing what the C loop computes in the same
  floating-point order (sequential sums, the same libm ``log2``/``log``);
- ``summary``: ``"mean"``, ``"gm"`` (exp of the mean of the per-query logs), ``"sum"``
  (``num_*``), ``"count"`` (``num_q``) or ``"none"``;
- ``rank_based``: whether the order of the documents matters (the set measures do not);
- ``reset_missing``: measures trec_eval zeroes for a query the run lacks (``-c``);
- ``rel_format``: the ``-R`` judgments it reads: ``"qrels"`` (kernel above), ``"prefs"``
  (prefs / qrels_prefs: computed by :mod:`auditor.trec_eval.prefs`), ``"qrels_jg"``
  (:mod:`auditor.trec_eval.judgment_groups`) or ``"any"`` (runid, num_q).

Every kernel was checked line by line against the C source and is fuzzed against the real
binary (tests/test_trec_eval_fuzz.py). The metrics of ``audit eval`` and the audits have their
own registry (:mod:`auditor.metric_registry`, tie-aware kernels and chance levels added); each
of its families names its trec_eval measure here, and tests/test_metric_registry.py checks the
two agree query by query.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from auditor.trec_eval.ranked import NONPOOL, PAD, UNJUDGED, Chunk

MIN_GEO_MEAN = 0.00001
INFAP_EPSILON = 0.00001


@dataclass(frozen=True)
class Measure:
    name: str
    params: str
    default: tuple
    kernel: Callable[[Chunk, tuple], np.ndarray] | None
    summary: str = "mean"
    per_query: bool = True
    long: bool = False
    rank_based: bool = True
    reset_missing: bool = False
    explanation: str = ""
    rel_format: str = "qrels"  # the -R format it needs: "qrels", "prefs" (prefs or qrels_prefs), "qrels_jg", "any"


# ---------------------------------------------------------------- shared pieces (cached per chunk)

_LOG2_CACHE: list[float] = []


def log2_table(n: int) -> np.ndarray:
    """``log2(k)`` for k = 0..n-1 from the C library (``math.log2``), as trec_eval computes it."""
    if len(_LOG2_CACHE) < n:
        _LOG2_CACHE.extend(math.log2(k) if k > 0 else -math.inf for k in range(len(_LOG2_CACHE), n))
    return np.array(_LOG2_CACHE[:n])


def c_log2(x: np.ndarray) -> np.ndarray:
    """libm ``log2`` elementwise (table lookup for small whole numbers, ``math.log2`` otherwise)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    whole = (x == np.floor(x)) & (x >= 1) & (x < 1 << 20)
    if whole.all():  # the usual case: a table lookup, no masks
        return log2_table(int(x.max(initial=0)) + 1)[x.astype(np.int64)] if x.size else out
    if whole.any():
        xi = x[whole].astype(np.int64)
        out[whole] = log2_table(int(xi.max()) + 1)[xi]
    rest = ~whole
    if rest.any():
        out[rest] = [math.log2(v) if v > 0 else (-math.inf if v == 0 else math.nan) for v in x[rest].tolist()]
    return out


def _c_log(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.fromiter(map(math.log, x.tolist()), dtype=np.float64, count=x.size)


def seqsum(x: np.ndarray) -> np.ndarray:
    """Row sums added left to right, as a C loop adds (numpy's sum along a row is pairwise).

    Summed down the columns of the transposed matrix instead: numpy adds row after row into
    one accumulator per query, in order (4x faster than a cumulative sum). A single row would
    be one contiguous reduction, which numpy sums pairwise: that case takes the cumulative sum.
    """
    if x.shape[1] == 0:
        return np.zeros(x.shape[0])
    if x.shape[0] < 2:
        return np.cumsum(x, axis=1)[:, -1]
    return np.ascontiguousarray(x.T).sum(axis=0)


def _valid(c: Chunk) -> np.ndarray:
    return c.get("valid", lambda: np.arange(c.R.shape[1])[None, :] < c.nret[:, None])


def _rel(c: Chunk) -> np.ndarray:
    return c.get("rel", lambda: (c.R >= c.opts.relevance_level) & _valid(c))


def _csum(c: Chunk) -> np.ndarray:
    return c.get("csum", lambda: np.cumsum(_rel(c), axis=1, dtype=np.int32))


def _nrr(c: Chunk) -> np.ndarray:
    return c.get("nrr", lambda: _rel(c).sum(axis=1).astype(np.int64))


def _num_rel(c: Chunk) -> np.ndarray:
    return c.get("num_rel", lambda: np.where(c.stale, 0,
                                             c.level_counts[:, c.levels >= c.opts.relevance_level].sum(axis=1)))


def _num_nonrel(c: Chunk) -> np.ndarray:
    return c.get("num_nonrel", lambda: c.level_counts[:, c.levels < c.opts.relevance_level].sum(axis=1))


def _rel_cells(c: Chunk) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The relevant retrieved documents, row-major: (flat index, row, column, relevant ones above it)."""
    def make() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        q, depth = c.R.shape
        flat = np.flatnonzero(_rel(c))
        rows = flat // depth if depth else flat
        cols = flat - rows * depth
        start = np.zeros(q, dtype=np.int64)
        np.cumsum(_nrr(c)[:-1], out=start[1:])
        return flat, rows, cols, np.arange(flat.size) - start[rows]
    return c.get("rel_cells", make)


def _prec_at_rel(c: Chunk) -> np.ndarray:
    """rel_so_far / rank at each relevant document (the AP summands), in :func:`_rel_cells` order."""
    def make() -> np.ndarray:
        _, _, cols, above = _rel_cells(c)
        return (above + 1).astype(np.float64) / (cols + 1).astype(np.float64)
    return c.get("prec_at_rel", make)


def _seqsum_t(xt: np.ndarray) -> np.ndarray:
    """:func:`seqsum` of ``xt.T`` for a matrix already laid out transposed, (depth, queries): no copy."""
    if xt.shape[1] < 2:
        return seqsum(xt.T)
    return xt.sum(axis=0)


def _scatter_t(c: Chunk, rows: np.ndarray, cols: np.ndarray, terms: np.ndarray, width: int | None = None) -> np.ndarray:
    """The transposed (width, queries) matrix holding ``terms`` at (``rows``, ``cols``), 0.0 elsewhere
    (width: the chunk's depth unless given)."""
    q, depth = c.R.shape
    full_t = np.zeros((depth if width is None else width, q))
    _put(full_t, cols, rows, terms)
    return full_t


def _prec_terms_t(c: Chunk) -> np.ndarray:
    """rel_so_far / rank at each relevant position, 0 elsewhere, transposed: (depth, queries)."""
    def make() -> np.ndarray:
        _, rows, cols, _ = _rel_cells(c)
        return _scatter_t(c, rows, cols, _prec_at_rel(c))
    return c.get("prec_terms_t", make)


def _ap_sum(c: Chunk) -> np.ndarray:
    return c.get("ap_sum", lambda: _seqsum_t(_prec_terms_t(c)))


def _put(m: np.ndarray, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
    """``m[rows, cols] = values`` for a freshly made (C-contiguous) matrix, through one flat index.

    numpy's 1-d scatter is 2-3x faster than its 2-d one (measured 0.09 against 0.23 ms for
    80,000 terms into 2,600 x 100).
    """
    m.ravel()[rows * m.shape[1] + cols] = values


def _at(m: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``m[rows, cols]`` for indices within the matrix (none negative), through one flat index.

    numpy's 2-d fancy gather is about 3x slower than a 1-d take (measured 0.34 against 0.11 ms
    for 80,000 cells of a 2,600 x 100 matrix), and the kernels gather a few dozen times a chunk.
    """
    if not m.flags.c_contiguous:
        return m[rows, cols]
    return np.take(m.ravel(), rows * m.shape[1] + cols)


def _csum_at(c: Chunk, k: np.ndarray | int) -> np.ndarray:
    """Relevant documents among the first min(k, num_ret), per query (k per query or scalar)."""
    n = np.minimum(np.broadcast_to(k, c.nret.shape), c.nret)
    cs = _csum(c)
    out = np.zeros(c.nret.shape, dtype=np.int64)
    pos = n > 0
    if cs.shape[1]:
        out[pos] = _at(cs, np.flatnonzero(pos), n[pos] - 1)
    return out


def _csum_at_cuts(c: Chunk, ks: tuple) -> np.ndarray:
    """:func:`_csum_at` for every cutoff of ``ks`` at once, shape (queries, len(ks))."""
    def make() -> np.ndarray:
        n = np.minimum(np.asarray(ks, dtype=np.int64)[None, :], c.nret[:, None])
        cs = _csum(c)
        out = np.zeros(n.shape, dtype=np.int64)
        pos = n > 0
        if cs.shape[1]:
            out[pos] = _at(cs, np.nonzero(pos)[0], n[pos] - 1)
        return out
    return c.get(("csum_at", ks), make)


def _div(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(a, b).shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.asarray(a, dtype=np.float64) / np.asarray(b, dtype=np.float64)
    where = np.broadcast_to(where, out.shape)
    out[where] = np.broadcast_to(q, out.shape)[where]
    return out


def _col(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(-1, 1)


# ---------------------------------------------------------------- gains (gain_init.c)

def _msort(items: list, cmp: Callable) -> list:
    """glibc's ``qsort`` for small arrays: a stable top-down merge sort (``msort_with_tmp``)."""
    n = len(items)
    if n <= 1:
        return list(items)
    n1 = n // 2
    a, b = _msort(items[:n1], cmp), _msort(items[n1:], cmp)
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if cmp(a[i], b[j]) <= 0:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out + a[i:] + b[j:]


def _c_int(x: float) -> int:
    """C's conversion of a double to int (truncation toward zero)."""
    return int(x) if math.isfinite(x) else 0


def _sorted_gains(pairs: tuple, num_rel_levels: int) -> list[tuple[int, float, bool]]:
    """(level, gain, counted) in trec_eval's ascending-gain order for a query with ``num_rel_levels``.

    ``counted``: whether the entry carries the level's document count (only the first entry
    given for a level does, as in setup_gains).
    """
    gains: list[tuple[int, float, bool]] = []
    for name, value in pairs:
        if _valid_int(name):
            lv = int(name)
            first = not any(e[0] == lv for e in gains)
            gains.append((lv, float(value), first and 0 <= lv < num_rel_levels))
    for i in range(num_rel_levels):
        if not any(e[0] == i for e in gains):
            gains.append((i, float(i), True))
    # comp_rel_gain returns the gain difference cast to int: differences below 1 compare equal
    return _msort(gains, lambda x, y: _c_int(x[1] - y[1]))


def _valid_int(s: str) -> bool:
    t = s[1:] if s[:1] in "+-" else s
    return bool(t) and all("0" <= ch <= "9" for ch in t)


def _num_rel_levels(c: Chunk) -> np.ndarray:
    def make() -> np.ndarray:
        present = c.level_counts > 0
        top = np.where(present.any(axis=1), c.levels[::-1][np.argmax(present[:, ::-1], axis=1)] if c.levels.size
                       else 0, -1)
        return (top + 1).astype(np.int64)
    return c.get("nrl", make)


def _distinct(x: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-d integer array (``np.unique`` imports numpy.ma: 20 ms of start-up)."""
    s = np.sort(x)
    return s[np.concatenate(([True], s[1:] != s[:-1]))] if s.size else s


def _level_count(c: Chunk, level: int) -> np.ndarray:
    k = np.searchsorted(c.levels, level)
    if k < c.levels.size and c.levels[k] == level:
        return c.level_counts[:, k]
    return np.zeros(c.nret.shape, dtype=np.int64)


@dataclass
class Gains:
    """Per-query gain structure: result gains, the ideal gain list and the values Rndcg needs."""

    result: np.ndarray  # (q, depth) gain of each ranked document
    ideal: np.ndarray  # (q, K) ideal gains, 0 padded
    n_ideal: np.ndarray  # (q,)
    top: np.ndarray  # (q,) gain of the highest-sorted level (trec_eval's starting ideal gain)
    terminal: np.ndarray  # (q,) ideal gain once the ideal list is exhausted


def gains(c: Chunk, pairs: tuple) -> Gains:
    """setup_gains + the ideal-list walk shared by ndcg, G, ndcg_rel, Rndcg and rbp."""
    return c.get(("gains", pairs), lambda: _make_gains(c, pairs))


#: widest relevance range looked up through a table (wider parameter levels: one mask per level)
_TABLE_LEVELS = 1 << 16


def _level_lookup(R: np.ndarray, lookup: dict[int, float], top_level: int) -> np.ndarray:
    """``lookup[R]`` elementwise, 0.0 for levels not in ``lookup`` and for the padding (float64).

    ``top_level``: the largest value in ``R`` (bounds ``R - lo`` away from overflow).
    """
    levels = [lv for lv, g in lookup.items() if g != 0]
    if not levels:
        return np.zeros(R.shape)
    lo, hi = min(levels), max(levels)
    if hi - lo < _TABLE_LEVELS and -(1 << 40) < lo and top_level < (1 << 62):
        # one table take: slot 0 and the last slot are 0.0 and every level outside [lo, hi],
        # the padding included, is clipped onto one of them
        tab = np.zeros(hi - lo + 3)
        for lv in levels:
            tab[lv - lo + 1] = lookup[lv]
        return np.take(tab, R - (lo - 1), mode="clip")
    out = np.zeros(R.shape)
    for lv in levels:
        out[R == lv] = lookup[lv]
    return np.where(R == PAD, 0.0, out)


def _make_gains(c: Chunk, pairs: tuple) -> Gains:
    q, depth = c.R.shape
    nrl = _num_rel_levels(c)
    top = np.zeros(q)
    terminal = np.zeros(q)
    n_ideal = np.zeros(q, dtype=np.int64)
    distinct = _distinct(nrl)
    groups = [(int(v), np.flatnonzero(nrl == v) if distinct.size > 1 else None) for v in distinct]
    # default gains (no parameters): each level's gain is the level itself, and a ranked judged
    # document's level is at most its query's top level, so the result gain is max(R, 0)
    default = pairs == ()
    result = np.maximum(c.R, 0).astype(np.float64) if default else np.zeros((q, depth)) if len(groups) != 1 else None
    top_level = int(c.levels.max()) if c.levels.size else 0  # ranked values are judged levels, -1, -2 or PAD
    plan = []
    for v, rows in groups:  # rows None: every query of the chunk
        order = _sorted_gains(pairs, max(v, 0))
        # result gains: get_gain looks the level up (first match); unlisted levels give 0
        lookup: dict[int, float] = {}
        for lv, g, _ in order:
            lookup.setdefault(lv, g)
        if default:
            pass
        elif rows is None:
            result = _level_lookup(c.R, lookup, top_level)
        else:
            result[rows] = _level_lookup(c.R[rows], lookup, top_level)
        if not order:
            continue
        sel = slice(None) if rows is None else rows
        top[sel] = order[-1][1]
        n = q if rows is None else rows.size
        counts = [(g, _level_count(c, lv)[sel] if counted else np.zeros(n, dtype=np.int64))
                  for lv, g, counted in reversed(order)]
        plan.append((sel, n, order[-1][1], counts))
    K = 0
    built = []
    for sel, n, gtop, counts in plan:
        # walk levels from the top: skip empty levels, stop at the first non-positive gain with documents
        alive = np.full(n, gtop > 0)
        reps = []
        term = np.zeros(n)
        for g, cnt in counts:
            has = cnt > 0
            if g > 0:
                reps.append((g, np.where(alive, cnt, 0)))
            else:
                stop = alive & has
                term[stop] = g
                alive &= ~has
        terminal[sel] = term
        tot = np.zeros(n, dtype=np.int64)
        for _, r in reps:
            tot += r
        n_ideal[sel] = tot
        K = max(K, int(tot.max(initial=0)))
        built.append((sel, n, tot, reps))
    ideal = np.zeros((q, K))
    if K:
        pos = np.arange(K)[None, :]
        for sel, n, tot, reps in built:
            if not reps:
                continue
            # each query's ideal list, query after query: every gain repeated by its count, then
            # laid into the first tot cells of the query's row
            cnt = np.stack([r for _, r in reps], axis=1)
            gv = np.broadcast_to(np.array([g for g, _ in reps]), cnt.shape)
            vals = np.repeat(gv.ravel(), cnt.ravel())
            blk = np.zeros((n, K))
            blk[pos < tot[:, None]] = vals
            ideal[sel] = blk
    return Gains(result=result, ideal=ideal, n_ideal=n_ideal, top=top, terminal=terminal)


def _discount(n: int) -> np.ndarray:
    """log2(i + 2) for positions i = 0..n-1."""
    return log2_table(n + 2)[2:]


def _dcg_terms(g: np.ndarray) -> np.ndarray:
    return g / _discount(g.shape[1])[None, :] if g.shape[1] else g


# ---------------------------------------------------------------- kernels

def k_num_q(c: Chunk, p: tuple) -> np.ndarray:
    return np.ones((c.nret.size, 1))


def k_num_ret(c: Chunk, p: tuple) -> np.ndarray:
    return _col(c.nret)


def k_num_rel(c: Chunk, p: tuple) -> np.ndarray:
    return _col(_num_rel(c))


def k_num_rel_ret(c: Chunk, p: tuple) -> np.ndarray:
    return _col(_nrr(c))


def k_map(c: Chunk, p: tuple) -> np.ndarray:
    return _col(_div(_ap_sum(c), _num_rel(c), _nrr(c) > 0))


def k_gm_map(c: Chunk, p: tuple) -> np.ndarray:
    ap = _div(_ap_sum(c), _num_rel(c), _nrr(c) > 0)
    return _col(_c_log(np.maximum(ap, MIN_GEO_MEAN)))


def k_Rprec(c: Chunk, p: tuple) -> np.ndarray:
    n = np.minimum(c.nret, _num_rel(c))
    return _col(_div(_csum_at(c, n), _num_rel(c), n > 0))


def _judged_rel(c: Chunk) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Judged relevant documents (bpref's and infAP's "relevant": judged and >= the level), as
    (flat index of each cell, row-major; its row; its column; judged non-relevant documents
    ranked above it)."""
    def make() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        R, L = c.R, c.opts.relevance_level
        depth = R.shape[1]
        flat = np.flatnonzero(R >= max(L, 0))  # judged (>= 0) and relevant (>= L); never the padding
        rows = flat // depth if depth else flat
        cols = flat - rows * depth
        nonrel = R >= 0
        nonrel &= R < L
        # judged non-relevant documents before each relevant one (the cell itself is not one)
        nonrel_before = np.cumsum(nonrel, axis=1, dtype=np.int32).ravel()[flat] if flat.size else flat
        return flat, rows, cols, nonrel_before
    return c.get("judged_rel", make)


def _scatter_seqsum(c: Chunk, rows: np.ndarray, cols: np.ndarray, terms: np.ndarray,
                    width: int | None = None) -> np.ndarray:
    """Left-to-right row sums of a matrix holding ``terms`` at (``rows``, ``cols``) and 0.0 elsewhere.

    Cheaper than ``seqsum(np.where(mask, x, 0.0))``: ``np.where`` on an irregular mask costs
    about 4 ns a cell (a mispredicted branch), ten times an arithmetic pass.
    """
    return _seqsum_t(_scatter_t(c, rows, cols, terms, width))


def _bpref(c: Chunk) -> np.ndarray:
    _, rows, cols, nonrel_before = _judged_rel(c)
    nr = _num_rel(c)
    denom = np.minimum(_num_nonrel(c), nr).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = 1.0 - np.minimum(nonrel_before, nr[rows]) / denom[rows]
    s = _scatter_seqsum(c, rows, cols, np.where(nonrel_before > 0, frac, 1.0))
    return np.where(nr > 0, s / np.maximum(nr, 1), s)


def k_bpref(c: Chunk, p: tuple) -> np.ndarray:
    return _col(c.get("bpref", lambda: _bpref(c)))


def k_gm_bpref(c: Chunk, p: tuple) -> np.ndarray:
    return _col(_c_log(np.maximum(c.get("bpref", lambda: _bpref(c)), MIN_GEO_MEAN)))


def k_recip_rank(c: Chunk, p: tuple) -> np.ndarray:
    rel = _rel(c)
    has = rel.any(axis=1)
    first = np.argmax(rel, axis=1) if rel.shape[1] else np.zeros(rel.shape[0], dtype=np.int64)
    return _col(_div(1.0, first + 1.0, has))


def _lround(x: np.ndarray) -> np.ndarray:
    t = np.trunc(x)
    frac = x - t
    return (t + np.where(np.abs(frac) >= 0.5, np.sign(x), 0.0)).astype(np.int64)


def _interp_prec(c: Chunk, cut_percents: tuple) -> np.ndarray:
    """iprec_at_recall's values per cutoff (also 11pt_avg's summands)."""
    q = c.nret.size
    nrr, nr = _nrr(c), _num_rel(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        init = nrr / c.nret.astype(np.float64)  # NaN when nothing is retrieved, as in C
    # interpolated precision at the j-th relevant document: the largest precision at or below it
    # in the ranking. Precision falls at every non-relevant document, so the largest is at a
    # relevant one: the running maximum, from the last relevant document up, of the precisions
    # at the relevant documents (one row per query, relevant documents in rank order)
    _, rows_all, _, above = _rel_cells(c)
    width = int(nrr.max(initial=0))
    smax = np.full((q, width), -np.inf)
    _put(smax, rows_all, above, _prec_at_rel(c))
    if width:
        smax = np.maximum.accumulate(smax[:, ::-1], axis=1)[:, ::-1]
    out = np.zeros((q, len(cut_percents)))
    for k, pct in enumerate(cut_percents):
        cut = _lround(pct * nr.astype(np.float64))
        matched = (cut >= 1) & (cut <= nrr)
        if matched.any():
            rows = np.flatnonzero(matched)
            out[rows, k] = smax[rows, cut[rows] - 1]
        low = cut <= 0
        some = low & (nrr > 0)
        if some.any():
            out[some, k] = smax[np.flatnonzero(some), 0]  # at the first relevant document
        none = low & (nrr == 0)
        out[none, k] = init[none]
    return out


def k_iprec_at_recall(c: Chunk, p: tuple) -> np.ndarray:
    return c.get(("interp_prec", p), lambda: _interp_prec(c, p))


def _11pt_c_loop(c: Chunk, pcts: tuple) -> np.ndarray:
    """m_11pt_avg.c's loop, literally, per query: its cutoff walk assumes sorted parameters and
    gives other values when they are not (11pt_avg's parameters are not sorted by trec_eval)."""
    rel, nrr_all, nr_all = _rel(c), _nrr(c), _num_rel(c)
    out = np.zeros(c.nret.size)
    for q in range(c.nret.size):
        nret, nrr = int(c.nret[q]), int(nrr_all[q])
        cuts = _lround(np.array(pcts) * float(nr_all[q])).tolist()
        cc = len(cuts) - 1
        while cc >= 0 and cuts[cc] > nrr:
            cc -= 1
        ip = nrr / nret if nret else math.nan
        total, rsf, i = 0.0, nrr, nret
        while i > 0 and rsf > 0:
            pr = rsf / i
            if ip < pr:
                ip = pr
            if rel[q, i - 1]:
                while cc >= 0 and rsf == cuts[cc]:
                    total += ip
                    cc -= 1
                rsf -= 1
            i -= 1
        while cc >= 0:
            total += ip
            cc -= 1
        out[q] = total / len(pcts)
    return out


def k_11pt_avg(c: Chunk, p: tuple) -> np.ndarray:
    if list(p) != sorted(p):
        return _col(_11pt_c_loop(c, p))
    v = c.get(("interp_prec", p), lambda: _interp_prec(c, p))
    s = np.cumsum(v[:, ::-1], axis=1)[:, -1]  # C adds from the highest cutoff down
    return _col(s / len(p))


def k_P(c: Chunk, p: tuple) -> np.ndarray:
    return _csum_at_cuts(c, p) / np.array([float(k) for k in p])[None, :]


def k_recall(c: Chunk, p: tuple) -> np.ndarray:
    nr = _num_rel(c)[:, None]
    return _div(_csum_at_cuts(c, p), nr, nr > 0)


def k_relative_P(c: Chunk, p: tuple) -> np.ndarray:
    nr = _num_rel(c)[:, None]
    return _div(_csum_at_cuts(c, p), np.minimum(np.asarray(p, dtype=np.int64)[None, :], nr), nr > 0)


def k_success(c: Chunk, p: tuple) -> np.ndarray:
    return (_csum_at_cuts(c, p) > 0).astype(np.float64)


def k_map_cut(c: Chunk, p: tuple) -> np.ndarray:
    nr = _num_rel(c)
    terms_t = _prec_terms_t(c)
    depth = terms_t.shape[0]
    # the AP summands added left to right up to each cutoff (cutoffs come sorted), one position at
    # a time: the C loop's additions. Past a query's last document the summands are +0.0, so the
    # sum at min(k, depth) is the sum at min(k, num_ret).
    running = np.zeros(nr.shape)
    j = 0
    out = []
    for k in p:
        while j < min(k, depth):
            running += terms_t[j]
            j += 1
        out.append(_div(running, nr, nr > 0))
    return np.stack(out, axis=1)


def k_unj(c: Chunk, p: tuple) -> np.ndarray:
    unj = ((c.R == NONPOOL) | (c.R == UNJUDGED)) & _valid(c)
    cs = np.cumsum(unj, axis=1, dtype=np.int32)
    out = []
    for k in p:
        n = np.minimum(k, c.nret)
        s = np.zeros(c.nret.shape)
        pos = n > 0
        if cs.shape[1]:
            s[pos] = _at(cs, np.flatnonzero(pos), n[pos] - 1)
        out.append(s / float(k))
    return np.stack(out, axis=1)


def k_infAP(c: Chunk, p: tuple) -> np.ndarray:
    flat, rows, cols, non_before = _judged_rel(c)
    q, depth = c.R.shape
    # per relevant document: relevant ones above it (rel_so_far - 1), judged non-relevant and
    # unjudged (-2) ones above it, as m_infAP.c counts them; the same doubles as the C code divides
    rel_start = np.zeros(q + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=q), out=rel_start[1:])
    rel_before = np.arange(flat.size) - rel_start[rows]
    unj = c.R == UNJUDGED
    unj_before = np.cumsum(unj, axis=1, dtype=np.int32).ravel()[flat] if flat.size else flat
    rel_b, non_b, unj_b = (x.astype(np.float64) for x in (rel_before, non_before, unj_before))
    fj = cols.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (rel_b + non_b + unj_b) / fj
        b = (rel_b + INFAP_EPSILON) / ((rel_b + non_b) + 2 * INFAP_EPSILON)
        term = 1.0 / (fj + 1.0) + ((fj / (fj + 1.0)) * a) * b
    s = _scatter_seqsum(c, rows, cols, np.where(fj == 0, 1.0, term))
    nr = _num_rel(c)
    return _col(np.where(nr > 0, s / np.maximum(nr, 1), s))


def k_Rprec_mult(c: Chunk, p: tuple) -> np.ndarray:
    nr, nrr = _num_rel(c).astype(np.float64), _nrr(c)
    out = []
    for pct in p:
        cut = np.trunc(pct * nr + 0.9).astype(np.int64)
        v = np.zeros(nr.shape)
        above = cut > c.nret
        v[above] = nrr[above] / cut[above]
        inside = (cut >= 1) & ~above
        v[inside] = _csum_at(c, cut)[inside] / cut[inside]
        out.append(v)
    return np.stack(out, axis=1)


def k_utility(c: Chunk, p: tuple) -> np.ndarray:
    if len(p) != 4:
        raise _Refuse("utility needs exactly 4 coefficients (trec_eval: 'improper number of coefficients'), "
                      "e.g. -m utility.1,-1,0,0")
    nrr, nret, nr = _nrr(c), c.nret, _num_rel(c)
    n = c.opts.num_docs_in_coll
    v = (p[0] * nrr + p[1] * (nret - nrr)) + p[2] * (nr - nrr) + p[3] * (n + nrr - nret - nr)
    return _col(v)


def k_binG(c: Chunk, p: tuple) -> np.ndarray:
    _, rows, cols, above = _rel_cells(c)
    depth = c.R.shape[1]
    # 1 / log2(3 + i - rel_so_far) at a relevant document at position i (an argument from 2 to
    # depth + 1), by table
    inv = 1.0 / log2_table(depth + 2)[2:]
    terms = inv[cols - above]  # 3 + i - rel_so_far = 2 + (cols - above), less the table's offset 2
    return _col(_div(_scatter_seqsum(c, rows, cols, terms), _num_rel(c), _nrr(c) > 0))


def _positive_cells(c: Chunk) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the ranked documents with a positive level, row-major."""
    def make() -> tuple[np.ndarray, np.ndarray]:
        if c.opts.relevance_level == 1:  # _rel's cells: level >= 1
            _, rows, cols, _ = _rel_cells(c)
            return rows, cols
        depth = c.R.shape[1]
        flat = np.flatnonzero(c.R > 0)
        rows = flat // depth if depth else flat
        return rows, flat - rows * depth
    return c.get("positive_cells", make)


def _g_default(c: Chunk, g: Gains) -> np.ndarray | None:
    """G's sum of result terms with the default gains (gain = relevance level), computed at the
    documents with a positive level only; None where the general path must decide.

    Every gain is then a whole number, so the running sums of costs and of result gains are whole
    numbers too, exact in doubles whichever way they are added: the cost sum at position i is the
    ideal list's running cost sum (its last value plus 1 per position past the list), the result
    sum a running total less the row's start. The terms and their left-to-right row sums are the
    general path's.
    """
    q, depth = c.R.shape
    K = g.ideal.shape[1]
    top = int(c.levels.max()) if c.levels.size else 0
    if q < 2 or depth == 0 or top >= 1 << 20 or (K + depth) * (top + 1) >= 1 << 40:
        return None
    rows, cols = _positive_cells(c)
    if rows.size == 0:
        return np.zeros(q)
    gain = _at(c.R, rows, cols)
    total = np.cumsum(gain)
    count = np.bincount(rows, minlength=q)
    start = np.zeros(q, dtype=np.int64)
    np.cumsum(count[:-1], out=start[1:])
    has = count > 0
    base = np.zeros(q, dtype=np.int64)
    base[has] = (total - gain)[start[has]]
    sum_res = total - base[rows]
    if K:
        cost_sum = np.cumsum(np.maximum(g.ideal, 1.0), axis=1)
        sum_cost = _at(cost_sum, rows, np.minimum(cols, K - 1)) + np.maximum(cols - (K - 1), 0)
    else:
        sum_cost = (cols + 1).astype(np.float64)
    arg = (2 + sum_cost) - sum_res
    lo, hi = float(arg.min()), float(arg.max())
    if not (1.0 <= lo and hi < 1 << 20):
        return None
    terms = gain / log2_table(int(hi) + 1)[arg.astype(np.int64)]
    return _scatter_seqsum(c, rows, cols, terms)


def k_G(c: Chunk, p: tuple) -> np.ndarray:
    g = gains(c, p)
    if p == ():
        results_g = _g_default(c, g)
        if results_g is not None:
            sum_ideal = seqsum(g.ideal)
            return _col(_div(results_g, sum_ideal, sum_ideal > 0.0))
    q, depth = c.R.shape
    rg = _result_gains(c, p)
    K = g.ideal.shape[1]
    w = min(K, depth)
    cost = np.ones((q, depth))  # the ideal gain where it is at least 1, else 1 (past the ideal list: 1)
    np.maximum(g.ideal[:, :w], 1.0, out=cost[:, :w])  # ideal gains are positive or 0, never NaN
    sum_cost = np.cumsum(cost, axis=1) if depth else cost
    sum_res = np.cumsum(rg, axis=1) if depth else rg
    arg = (2 + sum_cost) - sum_res
    nz = rg != 0  # result gains are 0 in the padding
    terms = np.zeros((q, depth))
    lo, hi = (float(arg.min()), float(arg.max())) if depth else (0.0, 0.0)
    ai = arg.astype(np.int64) if 1.0 <= lo and hi < 1 << 20 else None
    if ai is not None and bool((ai == arg).all()):
        # whole numbers (integer gains, the usual case): libm's log2 from the table, every cell
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(nz, rg / log2_table(int(hi) + 1)[ai], 0.0)
    elif nz.any():
        terms[nz] = rg[nz] / c_log2(arg[nz])
    results_g = seqsum(terms)
    sum_ideal = seqsum(g.ideal)
    return _col(_div(results_g, sum_ideal, sum_ideal > 0.0))


def _result_gains(c: Chunk, p: tuple) -> np.ndarray:
    """Gain of each ranked document, 0 in the padding (shared by G, ndcg, ndcg_rel, Rndcg)."""
    return gains(c, p).result


def _dcg_cums(c: Chunk, p: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative DCG of the results and of the ideal list, per position (ndcg_rel, Rndcg)."""
    def make() -> tuple[np.ndarray, np.ndarray]:
        rg, ideal = _result_gains(c, p), gains(c, p).ideal
        return (np.cumsum(_dcg_terms(rg), axis=1) if rg.shape[1] else rg,
                np.cumsum(_dcg_terms(ideal), axis=1) if ideal.shape[1] else ideal)
    return c.get(("dcg_cums", p), make)


def _dcgs(c: Chunk, p: tuple) -> tuple[np.ndarray, np.ndarray]:
    def make() -> tuple[np.ndarray, np.ndarray]:
        # the last cumulative value: the same additions in the same order as a left-to-right sum
        rcum, icum = _dcg_cums(c, p)
        q = c.R.shape[0]
        return (rcum[:, -1] if rcum.shape[1] else np.zeros(q)), (icum[:, -1] if icum.shape[1] else np.zeros(q))
    return c.get(("dcgs", p), make)


def k_ndcg(c: Chunk, p: tuple) -> np.ndarray:
    dcg, idcg = _dcgs(c, p)
    return _col(_div(dcg, idcg, idcg > 0.0))


def k_dcg(c: Chunk, p: tuple) -> np.ndarray:
    return _col(_dcgs(c, p)[0])


def k_ideal_dcg(c: Chunk, p: tuple) -> np.ndarray:
    return _col(_dcgs(c, p)[1])


def k_ndcg_rel(c: Chunk, p: tuple) -> np.ndarray:
    g = gains(c, p)
    q, depth = c.R.shape
    rg = _result_gains(c, p)
    rcum, icum = _dcg_cums(c, p)
    K = g.n_ideal
    # ideal DCG reached at position i: cumulative up to min(i, K-1), 0 when the list is empty.
    # A query's cumulative ideal DCG stays constant after its K ideal gains (its row is padded
    # with gain 0, and x + 0.0 == x), so that is column min(i, W-1) of every row.
    W = icum.shape[1]
    # the documents with a positive result gain (result gains are 0 in the padding)
    if p == ():
        rows, cols = _positive_cells(c)
    else:
        flat = np.flatnonzero(rg > 0)
        rows = flat // depth if depth else flat
        cols = flat - rows * depth
    ideal_at = _at(icum, rows, np.minimum(cols, W - 1)) if W else np.zeros(rows.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = _scatter_seqsum(c, rows, cols, _at(rcum, rows, cols) / ideal_at)
        dcg = rcum[:, -1] if depth else np.zeros(q)
        idcg = icum[:, -1] if icum.shape[1] else np.zeros(q)
        s = s + (K - np.bincount(rows, minlength=q)).astype(np.float64) * dcg / idcg
        v = s / K
    return _col(np.where(s > 0.0, v, 0.0))


def k_Rndcg(c: Chunk, p: tuple) -> np.ndarray:
    g = gains(c, p)
    q, depth = c.R.shape
    nr = _num_rel(c)
    rcum, icum = _dcg_cums(c, p)
    rcum = np.concatenate([np.zeros((q, 1)), rcum], axis=1)  # before position k
    K = g.n_ideal
    W = g.ideal.shape[1]
    icum = np.concatenate([np.zeros((q, 1)), icum], axis=1)
    # cumulative DCGs stay constant past a query's K ideal gains and past its nret results
    # (both rows are padded with gain 0, and x + 0.0 == x): column min(i, ...) of every row
    # ideal gain at positions 0..W (the terminal gain once the list is exhausted)
    seq = np.zeros((q, W + 1))
    seq[:, :W] = g.ideal
    cols = np.arange(W + 1)[None, :]
    seq = np.where(cols < K[:, None], seq, g.terminal[:, None])
    prev = np.concatenate([g.top[:, None], seq[:, :-1]], axis=1)
    started = g.top > 0
    change = (seq != prev) & (cols <= K[:, None]) & started[:, None]
    ideal_before = icum  # ideal DCG before position min(i, K)
    res_before = rcum[:, :W + 1] if W <= depth else rcum[:, np.minimum(np.arange(W + 1), depth)]
    ev = change & (ideal_before > 0.0)
    flat = np.flatnonzero(ev)
    rows = flat // (W + 1)
    cols = flat - rows * (W + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = _scatter_seqsum(c, rows, cols, _at(res_before, rows, cols) / _at(ideal_before, rows, cols), W + 1)
    cnt = np.bincount(rows, minlength=q).astype(np.float64)
    # the extra term after the results outlast the ideal list
    i_after = np.where(started, np.where(K < c.nret, K + 1, c.nret), 0)
    final = (i_after < c.nret)
    dcg_all = rcum[:, -1]
    idcg_all = icum[:, -1]
    add = final & (idcg_all > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(add, s + dcg_all / idcg_all, s)
        cnt = cnt + add
        v = s / cnt
    return _col(np.where(nr > 0, v, 0.0))


def k_ndcg_cut(c: Chunk, p: tuple) -> np.ndarray:
    q, depth = c.R.shape
    if ("dcg_cums", ()) in c.cache:
        # ndcg's default gains are ndcg_cut's (the relevance value from 1 up, 0 below; the ideal
        # list: levels >= 1, highest first), so its cumulative DCGs are these, computed already
        rcum, icum = _dcg_cums(c, ())
        tot = gains(c, ()).n_ideal
        W = icum.shape[1]
    else:
        gain = np.where(_valid(c) & (c.R > 0), c.R, 0).astype(np.float64)
        rcum = np.cumsum(_dcg_terms(gain), axis=1) if depth else gain
        # ideal: levels >= 1, highest first, each repeated by its count
        pos_lv = c.levels > 0
        lv = c.levels[pos_lv][::-1].astype(np.float64)
        cnt = c.level_counts[:, pos_lv][:, ::-1]
        tot = cnt.sum(axis=1)
        kmax = max(p)
        W = int(min(tot.max(initial=0), kmax))
        ideal = np.zeros((q, W))
        if W:
            posn = np.arange(W)[None, :]
            lo = np.zeros(q, dtype=np.int64)
            for j in range(lv.size):
                hi = lo + cnt[:, j]
                ideal[(posn >= lo[:, None]) & (posn < hi[:, None])] = lv[j]
                lo = hi
        icum = np.cumsum(_dcg_terms(ideal), axis=1) if W else ideal
    out = []
    for k in p:
        n = np.minimum(k, c.nret)
        dcg = np.zeros(q)
        ok = n > 0
        if depth:
            dcg[ok] = _at(rcum, np.flatnonzero(ok), n[ok] - 1)
        m = np.minimum(k, tot)
        idcg = np.zeros(q)
        ok2 = m > 0
        if W:
            idcg[ok2] = _at(icum, np.flatnonzero(ok2), np.minimum(m[ok2], W) - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.where(idcg > 0.0, dcg / idcg, dcg))
    return np.stack(out, axis=1)


def k_set_P(c: Chunk, p: tuple) -> np.ndarray:
    return _col(_div(_nrr(c), c.nret, c.nret > 0))


def k_set_relative_P(c: Chunk, p: tuple) -> np.ndarray:
    nr = _num_rel(c)
    return _col(_div(_nrr(c), np.minimum(c.nret, nr), (c.nret > 0) & (nr > 0)))


def k_set_recall(c: Chunk, p: tuple) -> np.ndarray:
    nr = _num_rel(c)
    return _col(_div(_nrr(c), nr, nr > 0))


def k_set_map(c: Chunk, p: tuple) -> np.ndarray:
    nr, nrr = _num_rel(c).astype(np.float64), _nrr(c).astype(np.float64)
    return _col(_div(nrr * nrr, c.nret.astype(np.float64) * nr, (c.nret > 0) & (nr > 0)))


def k_set_F(c: Chunk, p: tuple) -> np.ndarray:
    nrr = _nrr(c)
    x = p[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        P = nrr / c.nret.astype(np.float64)
        R = nrr / _num_rel(c).astype(np.float64)
        v = ((x + 1.0) * P) * R / (x * P + R)
    return _col(np.where(nrr > 0, v, 0.0))


def k_num_nonrel_judged_ret(c: Chunk, p: tuple) -> np.ndarray:
    return _col(c.nret - c.n_nonpool - c.n_unjudged - _nrr(c))


def _rbp_p(p: tuple) -> float:
    val = 0.9
    for name, value in p:
        if name == "p":
            val = float(value)
    return val


def _powers(p: float, n: int) -> np.ndarray:
    """p**i by repeated multiplication (as the C loop does), i = 0..n."""
    out = np.empty(n + 1)
    out[0] = 1.0
    if n:
        out[1:] = p
        out = np.cumprod(out)
    return out


def k_rbp(c: Chunk, p: tuple) -> np.ndarray:
    if any(_valid_int(name) for name, _ in p):
        raise _Refuse("rbp with per-level gains (e.g. -m rbp.2=5): trec_eval 10.0-rc3 normalises the gains "
                      "with two uninitialised variables (m_rbp.c), so its output is undefined; use "
                      "-m rbp or -m rbp.p=VALUE.")
    pp = _rbp_p(p)
    q, depth = c.R.shape
    nrl = _num_rel_levels(c)
    if q >= 2 and depth:
        # the gains are the levels 0..top (no per-level gains here), divided by the top level when
        # it is above 1 (m_rbp.c: (g - 0) / (hi - 0)): nonzero at the positive levels only
        rows, cols = _positive_cells(c)
        lv = _at(c.R, rows, cols).astype(np.float64)
        hi = np.maximum(nrl - 1, 0).astype(np.float64)[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(hi > 1, lv / hi, lv)
        s = _scatter_seqsum(c, rows, cols, g * _powers(pp, depth)[cols])
        return _col((1.0 - pp) * s)
    distinct = _distinct(nrl)
    rg = np.zeros((q, depth)) if distinct.size != 1 else None
    top_level = int(c.levels.max()) if c.levels.size else 0
    for v in distinct:
        order = _sorted_gains(p, max(int(v), 0))
        # min/max start at 0 in the C code as compiled (uninitialised stack doubles read as 0)
        lo = min([0.0] + [e[1] for e in order])
        hi = max([0.0] + [e[1] for e in order])
        if lo < 0 or hi > 1:
            order = [(lv, (g - lo) / (hi - lo), k) for lv, g, k in order]
        lookup: dict[int, float] = {}
        for lv, g, _ in order:
            lookup.setdefault(lv, g)
        if rg is None:  # one group: every query of the chunk
            rg = _level_lookup(c.R, lookup, top_level)
        else:
            rows = np.flatnonzero(nrl == v)
            rg[rows] = _level_lookup(c.R[rows], lookup, top_level)
    if rg is None:
        rg = np.zeros((q, depth))
    cur = _powers(pp, depth)[:depth]
    s = seqsum(rg * cur[None, :])
    return _col((1.0 - pp) * s)


def k_rbp_resid(c: Chunk, p: tuple) -> np.ndarray:
    pp = _rbp_p(p)
    q, depth = c.R.shape
    pw = _powers(pp, depth)
    final = pw[c.nret]
    if q >= 2 and depth:
        # at the unjudged documents (-1, -2) only
        flat = np.flatnonzero((c.R < 0) & (c.R > PAD))
        rows = flat // depth
        cols = flat - rows * depth
        s = _scatter_seqsum(c, rows, cols, pw[cols])
        return _col(np.where(np.bincount(rows, minlength=q) > 0, final + (1 - pp) * s, 0.0))
    unj = (c.R < 0) & _valid(c)
    s = seqsum(np.where(unj, pw[None, :depth], 0.0))
    return _col(np.where(unj.any(axis=1), final + (1 - pp) * s, 0.0))


def k_yaap(c: Chunk, p: tuple) -> np.ndarray:
    s = _ap_sum(c)
    nr = _num_rel(c).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (1.0 + s) / (1.0 + nr - s)
    return _col([math.log(v) if v > 0 else (-math.inf if v == 0 else math.nan) for v in x.tolist()])


class _Refuse(Exception):
    """A measure trec_eval cannot compute with these parameters (it exits with an error)."""


LONG_CUTS = (5, 10, 15, 20, 30, 100, 200, 500, 1000)
RECALL_POINTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

_PREFS_HELP = {
    "prefs_num_prefs_poss": "Preferences possible (summary: sum).",
    "prefs_num_prefs_ful": "Preferences fulfilled, implied ones included (summary: sum).",
    "prefs_num_prefs_ful_ret": "Preferences fulfilled among retrieved pairs (summary: sum).",
    "prefs_simp": "Preferences fulfilled / possible (a pair with neither retrieved fails).",
    "prefs_pair": "Mean over document pairs of the fraction of their preferences fulfilled.",
    "prefs_avgjg": "prefs_simp per judgment group, averaged over the groups.",
    "prefs_avgjg_Rnonrel": "prefs_avgjg with the non-relevant documents of a group set to R.",
    "prefs_simp_ret": "prefs_simp over pairs with both documents retrieved.",
    "prefs_pair_ret": "prefs_pair over pairs with both documents retrieved.",
    "prefs_avgjg_ret": "prefs_avgjg over pairs with both documents retrieved.",
    "prefs_avgjg_Rnonrel_ret": "prefs_avgjg_Rnonrel over retrieved documents.",
    "prefs_simp_imp": "prefs_simp ignoring pairs with neither document retrieved.",
    "prefs_pair_imp": "prefs_pair ignoring pairs with neither document retrieved.",
    "prefs_avgjg_imp": "prefs_avgjg ignoring pairs with neither document retrieved.",
}

def _prefs_help(text: str) -> str:
    if text.endswith(")."):
        return f"{text[:-2]}; -R prefs, qrels_prefs)."
    return f"{text[:-1]} (-R prefs, qrels_prefs)."


_PREFS_MEASURES = tuple(
    Measure(name, "none", (), None, summary="sum" if "num_prefs" in name else "mean", long="num_prefs" in name,
            rel_format="prefs", explanation=_prefs_help(text))
    for name, text in _PREFS_HELP.items())

#: trec_eval's measures in its own order (measures.c)
MEASURES: tuple[Measure, ...] = (
    Measure("runid", "none", (), None, summary="runid", per_query=False, rank_based=False,
            explanation="Runid given by results input file.", rel_format="any"),
    Measure("num_q", "none", (), k_num_q, summary="count", per_query=False, long=True, rank_based=False,
            explanation="Number of topics results averaged over.", rel_format="any"),
    Measure("num_ret", "none", (), k_num_ret, summary="sum", long=True, rank_based=False, reset_missing=True,
            explanation="Number of documents retrieved for topic (summary: sum)."),
    Measure("num_rel", "none", (), k_num_rel, summary="num_rel", long=True, rank_based=False,
            explanation="Number of relevant documents for topic (summary: sum)."),
    Measure("num_rel_ret", "none", (), k_num_rel_ret, summary="sum", long=True, rank_based=False,
            explanation="Number of relevant documents retrieved for topic (summary: sum)."),
    Measure("map", "none", (), k_map, explanation="Mean Average Precision."),
    Measure("gm_map", "none", (), k_gm_map, summary="gm", per_query=False,
            explanation="Geometric mean of average precision (summary only)."),
    Measure("Rprec", "none", (), k_Rprec, explanation="Precision after R documents, R = number relevant."),
    Measure("bpref", "none", (), k_bpref, explanation="Binary preference (judged documents only)."),
    Measure("recip_rank", "none", (), k_recip_rank, explanation="Reciprocal rank of the first relevant document."),
    Measure("iprec_at_recall", "cut_double", RECALL_POINTS, k_iprec_at_recall,
            explanation="Interpolated precision at recall levels."),
    Measure("P", "cut_long", LONG_CUTS, k_P, explanation="Precision at cutoffs."),
    Measure("relstring", "p_double", (10.0,), None, summary="none",
            explanation="The relevance of the first N documents as a string (per query only)."),
    Measure("recall", "cut_long", LONG_CUTS, k_recall, explanation="Recall at cutoffs."),
    Measure("infAP", "none", (), k_infAP, explanation="Inferred AP (Yilmaz & Aslam); -2 judgments = sampled out."),
    Measure("gm_bpref", "none", (), k_gm_bpref, summary="gm", per_query=False,
            explanation="Geometric mean of bpref (summary only)."),
    Measure("Rprec_mult", "cut_double", (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0), k_Rprec_mult,
            explanation="Precision at multiples of R."),
    Measure("utility", "p_double", (1.0, -1.0, 0.0, 0.0), k_utility, rank_based=False, reset_missing=True,
            explanation="Set utility a*rel_ret + b*nonrel_ret + c*rel_not_ret + d*nonrel_not_ret."),
    Measure("11pt_avg", "p_double", RECALL_POINTS, k_11pt_avg,
            explanation="Mean interpolated precision over recall levels."),
    Measure("binG", "none", (), k_binG, explanation="Binary G (Sakai's G with binary gains)."),
    Measure("G", "p_pair", (), k_G, explanation="Normalized cumulative gain with cost (gains per level: -m G.1=1,2=3)."),
    Measure("dcg", "p_pair", (), k_dcg, explanation="Discounted cumulative gain (not in all_trec)."),
    Measure("ideal_dcg", "p_pair", (), k_ideal_dcg, explanation="Ideal DCG (not in all_trec)."),
    Measure("ndcg", "p_pair", (), k_ndcg, explanation="Normalized DCG over the whole ranking (gains: -m ndcg.1=1,2=3)."),
    Measure("ndcg_rel", "p_pair", (), k_ndcg_rel, explanation="nDCG averaged over relevant documents."),
    Measure("Rndcg", "p_pair", (), k_Rndcg, explanation="nDCG averaged at the points the ideal gain changes."),
    Measure("ndcg_cut", "cut_long", LONG_CUTS, k_ndcg_cut, explanation="nDCG at cutoffs (gain = relevance value)."),
    Measure("map_cut", "cut_long", LONG_CUTS, k_map_cut, explanation="Average precision cut at cutoffs."),
    Measure("relative_P", "cut_long", LONG_CUTS, k_relative_P, explanation="Precision at k relative to min(k, R)."),
    Measure("success", "cut_long", (1, 5, 10), k_success, explanation="1 if a relevant document is in the top k."),
    Measure("set_P", "none", (), k_set_P, rank_based=False, explanation="Precision of the retrieved set."),
    Measure("set_relative_P", "none", (), k_set_relative_P, rank_based=False,
            explanation="Set precision relative to min(num_ret, R)."),
    Measure("set_recall", "none", (), k_set_recall, rank_based=False, explanation="Recall of the retrieved set."),
    Measure("set_map", "none", (), k_set_map, rank_based=False, explanation="set_P * set_recall."),
    Measure("set_F", "p_double", (1.0,), k_set_F, rank_based=False, explanation="F measure of the set (beta param)."),
    Measure("num_nonrel_judged_ret", "none", (), k_num_nonrel_judged_ret, summary="sum", long=True, rank_based=False,
            explanation="Judged non-relevant documents retrieved (summary: sum)."),
    *_PREFS_MEASURES,
    Measure("map_avgjg", "none", (), None, rel_format="qrels_jg",
            explanation="map per judgment group, averaged over the groups (-R qrels_jg)."),
    Measure("P_avgjg", "cut_long", LONG_CUTS, None, rel_format="qrels_jg",
            explanation="P at cutoffs per judgment group, averaged over the groups (-R qrels_jg)."),
    Measure("Rprec_mult_avgjg", "cut_double", (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0), None,
            rel_format="qrels_jg",
            explanation="Rprec_mult per judgment group, averaged over the groups (-R qrels_jg)."),
    Measure("yaap", "none", (), k_yaap, explanation="Yet Another Average Precision (Robertson), not in all_trec."),
    Measure("rbp", "p_pair", (), k_rbp, explanation="Rank-biased precision (-m rbp.p=0.95)."),
    Measure("rbp_resid", "p_pair", (), k_rbp_resid, reset_missing=True,
            explanation="RBP residual from unjudged documents."),
    Measure("unj", "cut_long", (5, 10, 20), k_unj, reset_missing=True,
            explanation="Fraction of unjudged documents in the top k."),
)
BY_NAME = {m.name: m for m in MEASURES}

NICKNAMES: dict[str, tuple[str, ...]] = {
    "official": ("runid", "num_q", "num_ret", "num_rel", "num_rel_ret", "map", "gm_map", "Rprec", "bpref",
                 "recip_rank", "iprec_at_recall", "P"),
    "set": ("runid", "num_q", "num_ret", "num_rel", "num_rel_ret", "utility", "set_P", "set_recall",
            "set_relative_P", "set_map", "set_F"),
    "all_trec": ("runid", "num_q", "num_ret", "num_rel", "num_rel_ret", "map", "gm_map", "Rprec", "bpref",
                 "recip_rank", "iprec_at_recall", "P", "relstring", "recall", "unj", "rbp", "rbp_resid", "infAP",
                 "gm_bpref", "utility", "11pt_avg", "ndcg", "relative_P", "Rprec_mult", "success", "map_cut",
                 "ndcg_cut", "ndcg_rel", "Rndcg", "binG", "G", "set_P", "set_recall", "set_relative_P", "set_map",
                 "set_F", "num_nonrel_judged_ret"),
}
NICKNAMES["all_prefs"] = ("runid", "num_q", *_PREFS_HELP)
NICKNAMES["prefs"] = ("runid", "num_q", "prefs_num_prefs_poss", "prefs_num_prefs_ful", "prefs_num_prefs_ful_ret",
                      "prefs_simp", "prefs_pair", "prefs_avgjg")
NICKNAMES["qrels_jg"] = ("runid", "num_q", "map_avgjg", "P_avgjg", "Rprec_mult_avgjg")
