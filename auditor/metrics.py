"""Per-query ranking metrics with trec_eval semantics, vectorized over all queries at once.

Conventions (trec_eval's, verified against its own test files in ``tests/data/trec_eval``):

- **Gain**: linear (``gain = rel``) by default, ``gain="exp"`` for ``2**rel - 1``; negative
  labels give gain 0 (trec_eval: judged non-relevant / "in pool but unjudged").
- **Discount**: ``log2(rank + 1)`` with rank starting at 1.
- **Ideal DCG**: from *all* judged items of the query (including judged items the run did not
  retrieve, passed as rows with ``retrieved=False``), cut at the same depth.
- **Relevant** (MAP, MRR, P@k, recall@k): ``label >= rel_threshold`` (1 by default, trec_eval
  ``-l``). ``R`` (the MAP / recall denominator) counts relevant rows, retrieved or not.
- **Ties** (``ties=``): ``"average"`` (the default, what every audit uses) gives a query with
  tied scores the expected value of the measure over every order of its tied items
  (McSherry & Najork, ECIR 2008), so a value never depends on how the file was written (LETOR
  exports are often sorted by label; MSLR-WEB30K has no docids). ``"trec_eval"`` (``audit
  eval``) breaks ties by item id descending (trec_eval compares docnos with ``strcmp``: string
  ids compare by code point, numeric ids numerically); without item ids, the earlier row wins.
  Both give the same value on a query without ties.
- **P@k** divides by ``k`` even when fewer than ``k`` items were retrieved.
- **Queries with no relevant item**: the metric is undefined. trec_eval scores such queries 0
  and averages them in; we return NaN and :func:`mean_metric` excludes them, returning the
  count so every report can state it (policy ``"exclude"``, the project default). Policy
  ``"zero"`` scores them 0, which reproduces trec_eval's means exactly. For nDCG "no relevant"
  means "no item with positive gain". ``compliance@1`` does not depend on labels and is defined
  for every non-empty query.
- Scores must not be NaN (``ValueError``). A score of ``-inf`` is ranked as the lowest finite
  float: it still counts as retrieved, ahead of ``retrieved=False`` rows.

Every function returns a per-query array of shape ``(n_queries,)`` (ranx style): means,
confidence intervals and paired tests are built from these arrays.

The measures themselves are entries of :mod:`auditor.metric_registry` (built-ins in
:mod:`auditor.metric_builtins`, plugins through ``auditor.metrics`` entry points): this module
orders the items and hands each family's kernel a :class:`RankedView`, its tie-aware kernel a
:class:`TiedView` and its chance level a :class:`ChanceView` (docs/METRICS.md).

Implementation: queries are laid out as rows of 2-D blocks (all queries of one size share a
block; ragged sizes are bucketed and padded with ``-inf``), each block is processed in
cache-sized chunks with one row-wise sort. For cut-off metrics only the top ``k`` of each query
is ordered (a row-wise ``np.sort`` gives the k-th score, a mask picks the top ``k``). Ties are
detected from the sorted scores within the top ``k + 1`` (a tie beyond the cut-off changes
nothing), and only the queries that have them take the slower path: :func:`_tie_aware`
(closed forms per group of equal scores) or, for ``"trec_eval"``, a re-sort with the item-id
key, so item ids cost nothing unless they are needed.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Literal

import numpy as np

from auditor.metric_registry import MetricFamily, MetricSpec, metric_names, parse_metric

__all__ = ["MetricSpec", "MetricFamily", "parse_metric", "evaluate", "evaluate_many", "evaluate_dataset",
           "mean_metric", "ndcg", "average_precision", "reciprocal_rank", "precision", "recall",
           "compliance_at_1", "rank_order", "expected_random", "METRIC_NAMES", "RankedView", "TiedView",
           "ChanceView"]

#: the built-in metrics as a user writes them (plugins: :func:`auditor.metric_registry.metric_names`)
METRIC_NAMES = tuple(metric_names(plugins=False))

Gain = Literal["linear", "exp"]
Ties = Literal["average", "trec_eval"]
# "average": expected value over every order of tied items (what the audits use);
# "trec_eval": ties broken by item id descending, else file order (``audit eval``)
TIES = ("average", "trec_eval")

# Cells per processing chunk: ~64k float64 cells (512 KiB per array) keeps a chunk's sort,
# gathers and reductions in L2 cache; measured 2-3x faster than whole-array passes.
_CHUNK_CELLS = 1 << 16
# Split the work over threads (numpy releases the GIL in sort/partition) from this many rows.
_THREAD_MIN_ROWS = 1 << 20


# --------------------------------------------------------------------------- ordering
class LazyItemIds:
    """Item ids fetched on demand (only rows in score ties ever need them).

    Parameters
    ----------
    n : int
        Number of rows.
    fetch : callable
        ``fetch(rows: ndarray of int) -> ndarray`` of the ids of those rows (any shape of
        ``rows``; the result has the same shape).
    """

    def __init__(self, n: int, fetch: Callable[[np.ndarray], np.ndarray]) -> None:
        self.shape = (int(n),)
        self._fetch = fetch

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        return np.asarray(self._fetch(rows.reshape(-1))).reshape(rows.shape)


def _tie_key(item_id: np.ndarray | None, n: int) -> np.ndarray:
    """An array whose *descending* order is the tie-break order (all rows)."""
    return _tie_key_rows(item_id, np.arange(n))


def _tie_key_rows(item_id: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    """Tie-break keys for the given rows: larger key = ranked earlier among equal scores.

    Keys are only comparable within one call (string ids are replaced by their rank among
    the ids asked for, which keeps the comparison exact and cheap).
    """
    rows = np.asarray(rows, dtype=np.int64)
    if item_id is None:
        return -rows  # earlier row first
    # padding cells map to row n: clamp (their order among -inf cells never matters)
    if isinstance(item_id, LazyItemIds):
        ids = item_id.take(np.minimum(rows, item_id.shape[0] - 1))
    else:
        item_id = np.asarray(item_id)
        ids = item_id[np.minimum(rows, item_id.shape[0] - 1)]
    if ids.dtype.kind in "iub":
        _, codes = np.unique(ids, return_inverse=True)  # ranks: avoids negating unsigned ints
        return codes.reshape(rows.shape)
    if ids.dtype.kind == "f":
        _, codes = np.unique(ids, return_inverse=True)
        return codes.reshape(rows.shape)
    # strings: descending strcmp order, as trec_eval (code point order == UTF-8 byte order)
    _, codes = np.unique(ids.astype(str), return_inverse=True)
    return codes.reshape(rows.shape)


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
    offsets = np.asarray(offsets, dtype=np.int64)
    n = int(np.asarray(scores).shape[0])
    qidx = np.repeat(np.arange(offsets.shape[0] - 1), np.diff(offsets))
    keys = [-_tie_key(item_id, n), -np.asarray(scores, dtype=np.float64)]
    if retrieved is not None:
        keys.append(~np.asarray(retrieved, dtype=bool))
    keys.append(qidx)
    return np.lexsort(keys)


# --------------------------------------------------------------------------- helpers
def _segsum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of values within each query (queries are non-empty)."""
    return np.add.reduceat(values, offsets[:-1]) if values.size else np.zeros(offsets.size - 1)


def _ranks(offsets: np.ndarray) -> np.ndarray:
    """0-based position of each row inside its query, shape (n,)."""
    n = int(offsets[-1])
    return np.arange(n) - np.repeat(offsets[:-1], np.diff(offsets))


class _Plan:
    """What to compute: parsed specs, their families, the ranking depth they need, options and outputs."""

    def __init__(self, specs: list[MetricSpec], families: dict[str, MetricFamily], gain: Gain,
                 rel_threshold: float, policy: str, compliance: np.ndarray | None, item_id: np.ndarray | None,
                 n_queries: int, ties: str = "average") -> None:
        self.ties = ties
        if policy not in ("exclude", "zero"):
            raise ValueError(f"no-relevant policy must be 'exclude' or 'zero', got {policy!r}")
        if gain not in ("linear", "exp"):
            raise ValueError(f"gain must be 'linear' or 'exp', got {gain!r}")
        self.specs = specs
        self.families = families
        if ties == "average":
            blind = [s.name for s in specs if families[s.kind].tie_kernel is None]
            if blind:
                raise ValueError(f"metric {blind[0]} has no tie-aware kernel (tie_kernel), so it cannot score tied "
                                 "items by their expected value; evaluate it with ties='trec_eval'.")
        self.gain = gain
        self.rel_threshold = float(rel_threshold)
        self.policy = policy
        self.columns = {} if compliance is None else {"compliance": compliance}
        self.item_id = item_id
        cut = [s.k for s in specs]
        # None = the whole ranking is needed (uncut nDCG, MAP, MRR, recall)
        self.depth = None if any(k is None for k in cut) else max(cut)
        self.out = {s.name: np.full(n_queries, np.nan) for s in specs}

    def undefined(self) -> float:
        return np.nan if self.policy == "exclude" else 0.0

    def column(self, name: str) -> np.ndarray:
        if name not in self.columns:
            raise ValueError(f"{name}@1 needs a {name!r} column (RankingDataset.extra[{name!r}])")
        return self.columns[name]


def _store(plan: _Plan, spec: MetricSpec, v: Any, where: np.ndarray, n: int) -> None:
    """Write one kernel's per-query values, refusing a result of the wrong shape (plugins)."""
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"metric {spec.name}: its kernel returned shape {v.shape}, expected ({n},) "
                         "(one value per query of the block)")
    plan.out[spec.name][where] = v


class RankedView:
    """A block of queries in rank order, as a metric kernel sees it (``MetricFamily.kernel(view, k)``).

    Attributes
    ----------
    labels : ndarray, shape (q, depth)
        Labels in rank order, best first. Cells where ``valid`` is False (past the query's
        end, or judged but not retrieved) must not count.
    valid : ndarray of bool, shape (q, depth), or None
        None when every cell is a retrieved item.
    all_labels : ndarray, shape (q, w)
        Every judged item of each query, retrieved or not, unordered (ideal orderings, R);
        padding cells hold ``-inf``.
    depth, n_queries : int
    gain : {"linear", "exp"}
    rel_threshold : float
        ``label >= rel_threshold`` is relevant.
    undefined : float
        The value of a query the measure is undefined on (no relevant item): NaN or 0 by policy.
    family_depth : int
        The deepest cut-off this kernel's family is asked for in this call (share work across k).
    """

    def __init__(self, L: np.ndarray, Ls: np.ndarray, valid: np.ndarray | None, cols: np.ndarray,
                 rowmap: Callable[[np.ndarray, np.ndarray], np.ndarray], plan: _Plan) -> None:
        self.all_labels, self.labels, self.valid = L, Ls, valid
        self._cols, self._rowmap, self._plan = cols, rowmap, plan
        self.n_queries, self.depth = Ls.shape
        self.gain, self.rel_threshold, self.undefined = plan.gain, plan.rel_threshold, plan.undefined()
        self.family_depth = self.depth
        self._cache: dict[Any, Any] = {}

    def cut(self, k: int | None) -> int:
        """Ranks a cut-off ``k`` covers here: ``min(k, depth)``, all of them for None."""
        return self.depth if k is None else min(k, self.depth)

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` once per block and key (intermediates shared by a family's cut-offs)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def rel(self) -> np.ndarray:
        """bool (q, depth): relevant and retrieved, in rank order."""
        def make() -> np.ndarray:
            rel = self.labels >= self.rel_threshold
            if self.valid is not None:
                rel &= self.valid
            return rel
        return self.cached("rel", make)

    @property
    def n_relevant(self) -> np.ndarray:
        """float (q,): R, relevant items of each query, retrieved or not."""
        def make() -> np.ndarray:
            if np.isnan(self.all_labels).any():
                raise ValueError("labels contain NaN (hidden labels cannot be evaluated)")
            return np.count_nonzero(self.all_labels >= self.rel_threshold, axis=1).astype(np.float64)
        return self.cached("n_relevant", make)

    @property
    def has_rel(self) -> np.ndarray:
        """bool (q,): the query has a relevant item (else the measure is undefined)."""
        return self.cached("has_rel", lambda: self.n_relevant > 0)

    def ideal_labels(self, depth: int) -> np.ndarray:
        """(q, depth): each query's largest labels, descending (the ideal ranking's labels)."""
        def make() -> np.ndarray:
            L, w = self.all_labels, self.all_labels.shape[1]
            if 2 * depth > w or w <= 512:  # vectorized full sort beats partition on short rows
                ideal = np.sort(L, axis=1)[:, ::-1][:, :depth]
            else:
                ideal = np.sort(np.partition(L, w - depth, axis=1)[:, w - depth:], axis=1)[:, ::-1]
            if np.isnan(ideal[:, 0]).any():  # NaN sorts last: it would be the maximum
                raise ValueError("labels contain NaN (hidden labels cannot be evaluated)")
            return ideal
        return self.cached(("ideal", depth), make)

    def column(self, name: str, depth: int | None = None) -> np.ndarray:
        """(q, depth) values of a per-row column (``compliance``) in rank order."""
        c = self._plan.column(name)
        d = self.depth if depth is None else depth
        rows = self._rowmap(np.arange(self.n_queries)[:, None], self._cols[:, :d])
        return np.asarray(c)[np.minimum(rows, c.shape[0] - 1)]


class TiedView:
    """Queries with tied scores, as a tie-aware kernel sees them (``MetricFamily.tie_kernel(view, k)``).

    After an exact sort each group of equal scores occupies a fixed block of ranks and every
    order of its members is equally likely (McSherry & Najork, ECIR 2008): a member of a group
    of size ``m`` holding ``r`` relevant items is relevant at any of the group's ranks with
    probability ``r/m``. The kernel returns the measure's expected value over those orders.

    Attributes
    ----------
    labels : ndarray, shape (t, w)
        Labels sorted by score (order inside a group is arbitrary: only group sums may be used).
    valid : ndarray of bool, shape (t, w)
        False for padding / unretrieved cells (ranked last, never counted).
    all_labels : ndarray, shape (t, w)
        Unsorted labels (ideal orderings).
    m, j, rank : ndarray, shape (t, w)
        Size of the cell's group, its place in the group (0-based), its rank (1-based, float).
    width, n_queries : int
    gain, rel_threshold, undefined
        As in :class:`RankedView`.
    """

    def __init__(self, S: np.ndarray, L: np.ndarray, columns: Callable[[str], np.ndarray], plan: _Plan) -> None:
        t, w = S.shape
        o = np.argsort(-S, axis=1)  # order inside a group of equal scores is irrelevant: groups are averaged
        Ss = np.take_along_axis(S, o, axis=1)
        self.labels = np.take_along_axis(L, o, axis=1)
        self.all_labels = L
        self.valid = Ss > -np.inf
        new = np.ones((t, w), dtype=bool)
        np.not_equal(Ss[:, 1:], Ss[:, :-1], out=new[:, 1:])
        flat = new.reshape(-1)
        self._starts = np.flatnonzero(flat)
        self._gid = (np.cumsum(flat) - 1).reshape(t, w)  # group of each cell
        gsize = np.diff(np.append(self._starts, t * w)).astype(np.float64)
        self.m = gsize[self._gid]
        self._col = np.arange(w)
        self.j = self._col - (self._starts % w)[self._gid]  # place inside its group
        self.rank = self._col + 1.0
        self.n_queries, self.width = t, w
        self.gain, self.rel_threshold, self.undefined = plan.gain, plan.rel_threshold, plan.undefined()
        self._order, self._columns = o, columns
        self._cache: dict[Any, Any] = {}

    def cut(self, k: int | None) -> int:
        return self.width if k is None else min(k, self.width)

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def group_sum(self, x: np.ndarray) -> np.ndarray:
        """(t, w): the sum of ``x`` (sorted like ``labels``) over each cell's group."""
        return np.add.reduceat(x.reshape(-1), self._starts)[self._gid]

    def expected(self, x: np.ndarray) -> np.ndarray:
        """(t, w): the expected value of a per-item quantity at each rank (its group's mean)."""
        return self.group_sum(x) / self.m

    @property
    def n_relevant(self) -> np.ndarray:
        return self.cached("n_relevant", lambda: np.count_nonzero(self.all_labels >= self.rel_threshold,
                                                                  axis=1).astype(np.float64))

    @property
    def has_rel(self) -> np.ndarray:
        return self.cached("has_rel", lambda: self.n_relevant > 0)

    def _rel_groups(self) -> tuple[np.ndarray, np.ndarray]:
        def make() -> tuple[np.ndarray, np.ndarray]:
            relc = ((self.labels >= self.rel_threshold) & self.valid).astype(np.float64)
            r = self.group_sum(relc)
            # relevant items ranked above the cell's group (group start = col - j)
            H = np.take_along_axis(np.cumsum(relc, axis=1) - relc, self._col - self.j, axis=1)
            return r, H
        return self.cached("rel_groups", make)

    @property
    def rel_in_group(self) -> np.ndarray:
        """(t, w): relevant items in the cell's group."""
        return self._rel_groups()[0]

    @property
    def rel_above(self) -> np.ndarray:
        """(t, w): relevant items ranked above the cell's group."""
        return self._rel_groups()[1]

    def column(self, name: str) -> np.ndarray:
        """(t, w) values of a per-row column, sorted like ``labels``."""
        return np.take_along_axis(self._columns(name), self._order, axis=1)


class ChanceView:
    """The non-empty queries as a ``MetricFamily.chance(view, k)`` closed form sees them.

    Attributes
    ----------
    labels : ndarray, shape (n_rows,)
        Every row's label, query by query.
    offsets : ndarray, shape (n_queries + 1,)
    n : ndarray of float, shape (n_queries,)
        Query sizes.
    gain, rel_threshold, undefined, compliance
        As in :func:`expected_random`.
    """

    def __init__(self, labels: np.ndarray, offsets: np.ndarray, n: np.ndarray, gain: str, rel_threshold: float,
                 undefined: float, compliance: np.ndarray | None) -> None:
        self.labels, self.offsets, self.n = labels, offsets, n
        self.gain, self.rel_threshold, self.undefined, self.compliance = gain, rel_threshold, undefined, compliance
        self._R: np.ndarray | None = None

    @property
    def R(self) -> np.ndarray:
        """Relevant items per query (float)."""
        if self._R is None:
            self._R = self.segsum((self.labels >= self.rel_threshold).astype(np.float64))
        return self._R

    @property
    def ranks(self) -> np.ndarray:
        """0-based position of each row inside its query."""
        return _ranks(self.offsets)

    def kk(self, k: int | None) -> np.ndarray:
        """Ranks a cut-off covers per query: ``min(k, n)`` (float), ``n`` for None."""
        return self.n if k is None else np.minimum(float(k), self.n)

    def segsum(self, values: np.ndarray) -> np.ndarray:
        """Per-query sums of a per-row array."""
        return _segsum(values, self.offsets)


_SIGN = np.uint64(1 << 63)
# widest row the packed sort handles: 16 index bits leave 48 bits of each score (relative
# resolution 2**-36); closer scores collide and go to the exact path, so results stay exact
_PACK_MAX_BITS = 16


def _packed_keys(S: np.ndarray, bits: int) -> np.ndarray:
    """uint64 keys whose order is the order of ``S`` (IEEE bits made monotone), low ``bits`` = column.

    Sorting these with numpy's vectorized integer sort orders each row by score and carries the
    column along, several times faster than ``argsort``. Truncating ``bits`` low bits of the score
    can only merge nearly-equal scores, never swap two; merged keys are re-sorted exactly.
    """
    u = np.ascontiguousarray(S).view(np.int64)
    clear = np.uint64(~((1 << bits) - 1) & ((1 << 64) - 1))
    col = np.arange(S.shape[1], dtype=np.uint64)
    if u.min() >= 0:
        # no sign bit anywhere (scores >= +0.0, the common case): the transform below reduces
        # to setting the sign bit, done together with the column bits (2 passes instead of 5)
        k = np.bitwise_and(u.view(np.uint64), clear)
        np.bitwise_or(k, col | _SIGN, out=k)
        return k
    u = (S + 0.0).view(np.int64)  # -0.0 + 0.0 = +0.0: equal scores must get equal keys
    k = np.right_shift(u, 63).view(np.uint64)  # all ones for negative floats, else 0
    np.bitwise_or(k, _SIGN, out=k)
    np.bitwise_xor(k, u.view(np.uint64), out=k)  # negatives: flip all bits; positives: the sign bit
    np.bitwise_and(k, clear, out=k)
    np.bitwise_or(k, col, out=k)
    return k


def _transformed_hi(x: float, bits: int) -> np.uint64:
    u = np.array([x]).view(np.int64)
    k = (np.right_shift(u, 63).view(np.uint64) | _SIGN) ^ u.view(np.uint64)
    return (k >> np.uint64(bits))[0]


# truncated keys of -inf and +inf per index width (NaN keys lie outside this range)
_NINF_PINF_HI = {b: (_transformed_hi(-np.inf, b), _transformed_hi(np.inf, b)) for b in range(1, _PACK_MAX_BITS + 1)}


def _order_block(S: np.ndarray, D: int, rowmap: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 item_id: np.ndarray | None, ties: str = "trec_eval"
                 ) -> tuple[np.ndarray, np.ndarray | None, bool, np.ndarray | None]:
    """Columns of the top ``D`` cells of each row, best first.

    Parameters
    ----------
    S : ndarray, shape (q, w)
        Ranking keys; ``-inf`` marks padding / unretrieved cells (ranked last, never tied).
    D : int
        Depth, ``1 <= D <= w``.
    rowmap : callable
        ``rowmap(block_rows, cols) -> original row indices`` (for the item-id tie-break).

    Returns
    -------
    cols : ndarray of int, shape (q, D)
    valid : ndarray of bool, shape (q, D), or None
        False where the cell holds ``-inf`` (padding / not retrieved); None when all are valid.
    has_neg_inf : bool
        Whether any row holds a ``-inf`` (so the caller can re-key raw ``-inf`` scores).
    tied_rows : ndarray of int, or None
        With ``ties="average"``: the rows whose top ``D + 1`` cells hold (possibly) equal
        scores, left for the caller's tie-aware path (their ``cols`` are in arbitrary tie
        order). None with ``ties="trec_eval"`` (ties already broken by item id) or no ties.

    Raises
    ------
    ValueError
        NaN scores.
    """
    q, w = S.shape
    r = np.arange(q)[:, None]
    top_n = min(D + 1, w)
    bits = max(1, int(w - 1).bit_length())
    if bits <= _PACK_MAX_BITS:
        k = _packed_keys(S, bits)
        k.sort(axis=1)
        low = np.uint64((1 << bits) - 1)
        sh = np.uint64(bits)
        kt = k[:, ::-1][:, :top_n]
        top = (kt & low).astype(np.intp)
        hi = kt >> sh
        ninf, pinf = _NINF_PINF_HI[bits]
        lo_hi = k[:, 0] >> sh
        # NaN keys lie above +inf (positive NaN bit patterns) or below -inf (negative ones)
        if (hi[:, 0] > pinf).any() or (lo_hi < ninf).any():
            raise ValueError("scores contain NaN; every ranked row needs a score (use -inf for 'last')")
        has_neg_inf = bool((lo_hi == ninf).any())
        fin = hi > ninf if has_neg_inf else None
        # nearly-equal (or equal) scores share a truncated key: those rows take the exact path
        merged = hi[:, 1:] == hi[:, :-1]
    else:
        asc = np.argsort(S, axis=1)
        top = asc[:, ::-1][:, :top_n]
        tv = S[r, top]
        lowest = S[r[:, 0], asc[:, 0]]
        if np.isnan(tv[:, 0]).any() or np.isnan(lowest).any():
            raise ValueError("scores contain NaN; every ranked row needs a score (use -inf for 'last')")
        has_neg_inf = bool((lowest == -np.inf).any())
        fin = tv > -np.inf if has_neg_inf else None
        merged = tv[:, 1:] == tv[:, :-1]
    if fin is not None:
        merged &= fin[:, 1:]  # ties among -inf cells (padding) never matter
    cols = top[:, :D]
    valid = None if fin is None else fin[:, :D]
    tied = merged.any(axis=1)
    if ties == "average":
        return cols, valid, has_neg_inf, (np.flatnonzero(tied) if tied.any() else None)
    if tied.any():
        rt = np.flatnonzero(tied)
        St = S[rt]
        allcols = np.broadcast_to(np.arange(w), St.shape)
        keys = _tie_key_rows(item_id, rowmap(rt[:, None], allcols))
        o = np.lexsort((-keys, -St), axis=1)[:, :D]
        cols = cols.copy()
        cols[rt] = o
        if valid is not None:
            valid = valid.copy()
            valid[rt] = np.take_along_axis(St, o, axis=1) > -np.inf
    return cols, valid, has_neg_inf, None


def _tie_aware(S: np.ndarray, L: np.ndarray, columns: Callable[[str], np.ndarray], plan: _Plan, qpos: np.ndarray) -> None:
    """Every metric of ``plan`` for rows with tied scores: its expected value over all orders of the ties.

    Each family's ``tie_kernel`` (closed forms per group of equal scores, McSherry & Najork,
    ECIR 2008; see :class:`TiedView`): exact, no sampling, and equal to the plain metric on
    rows without ties.

    Parameters
    ----------
    S, L : ndarray, shape (t, w)
        Scores (``-inf`` = padding / not retrieved, ranked last, never counted) and labels.
    columns : callable
        ``columns(name) -> (t, w)`` per-row column aligned with ``S`` (``compliance``).
    """
    view = TiedView(S, L, columns, plan)
    for s in plan.specs:
        _store(plan, s, plan.families[s.kind].tie_kernel(view, s.k), qpos, S.shape[0])


def _block(S: np.ndarray, L: np.ndarray, qpos: np.ndarray,
           rowmap: Callable[[np.ndarray, np.ndarray], np.ndarray], plan: _Plan, raw_scores: bool) -> None:
    """Compute every metric of ``plan`` for the queries of one block (rows of S, L).

    ``raw_scores`` is True when S is the caller's score array itself (no padding, all rows
    retrieved): a ``-inf`` score there is a real row and must be re-keyed before ranking.
    """
    q, w = S.shape
    D = w if plan.depth is None else min(plan.depth, w)
    cols, valid, neg_inf, tied = _order_block(S, D, rowmap, plan.item_id, plan.ties)
    if raw_scores and neg_inf:
        S = np.where(S == -np.inf, np.finfo(np.float64).min, S)
        cols, valid, neg_inf, tied = _order_block(S, D, rowmap, plan.item_id, plan.ties)
    # flat gathers: cheaper than 2-D fancy indexing on small blocks
    Lf = L.reshape(-1)
    Ls = Lf[(np.arange(0, q * w, w)[:, None] + cols).reshape(-1)].reshape(q, D)
    view = RankedView(L, Ls, valid, cols, rowmap, plan)
    for s in plan.specs:
        view.family_depth = max(D if t.k is None else min(t.k, D) for t in plan.specs if t.kind == s.kind)
        _store(plan, s, plan.families[s.kind].kernel(view, s.k), qpos, q)
    if tied is not None:
        def columns(name: str) -> np.ndarray:
            c = plan.column(name)
            cr = rowmap(tied[:, None], np.broadcast_to(np.arange(w), (tied.size, w)))
            return c[np.minimum(cr, c.shape[0] - 1)]

        _tie_aware(S[tied], L[tied], columns, plan, qpos[tied])


def _size_buckets(sizes: np.ndarray) -> list[np.ndarray]:
    """Group query positions into buckets of similar size (padding waste <= 25%)."""
    pos = np.flatnonzero(sizes > 0)
    if pos.size == 0:
        return []
    s = sizes[pos]
    # grid 2^e * {1, 1.25, 1.5, 1.75}: the smallest grid value >= size
    e = np.floor(np.log2(np.maximum(s, 1))).astype(np.int64)
    base = 2.0 ** e
    step = np.ceil((s - base) / (base / 4.0)).astype(np.int64)
    grid = base * (1.0 + step / 4.0)
    key = np.where(s <= 4, s, np.ceil(grid)).astype(np.int64)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    cuts = np.flatnonzero(np.diff(ks)) + 1
    return [pos[g] for g in np.split(order, cuts)]


def _run_jobs(jobs: list[Callable[[], None]], n_rows: int) -> None:
    threads = min(2, os.cpu_count() or 1)
    if threads > 1 and n_rows >= _THREAD_MIN_ROWS and len(jobs) > 1:
        with ThreadPoolExecutor(threads) as ex:
            for f in [ex.submit(j) for j in jobs]:
                f.result()
    else:
        for j in jobs:
            j()


# --------------------------------------------------------------------------- public API
def evaluate_many(metrics: list[str | MetricSpec], labels: np.ndarray, scores: np.ndarray,
                  offsets: np.ndarray, *, item_id: np.ndarray | None = None,
                  retrieved: np.ndarray | None = None, gain: Gain = "linear",
                  rel_threshold: float = 1.0, no_relevant: str = "exclude",
                  compliance: np.ndarray | None = None, ties: Ties = "average") -> dict[str, np.ndarray]:
    """Several metrics over one sort. Returns ``{name: per-query array (n_queries,)}``.

    Parameters
    ----------
    metrics : list of str or MetricSpec
    labels, scores : ndarray, shape (n,)
    offsets : ndarray, shape (n_queries + 1,)
        Query boundaries (``RankingDataset.query_offsets``); ``offsets[0] == 0``,
        ``offsets[-1] == n``. Empty queries get NaN.
    item_id : ndarray, shape (n,), optional
        Tie-break key (descending) for ``ties="trec_eval"``; ignored with ``"average"``.
    retrieved : ndarray of bool, shape (n,), optional
        False for judged items absent from the run (count in ideal DCG and in R only).
    gain : {"linear", "exp"}, default "linear"
    rel_threshold : float, default 1.0
        Minimum label counted as relevant for MAP, MRR, P@k, recall@k.
    no_relevant : {"exclude", "zero"}, default "exclude"
        Value for queries with no relevant item: NaN (excluded from means) or 0 (trec_eval).
    compliance : ndarray, shape (n,), optional
        Binary column for ``compliance@1``.
    ties : {"average", "trec_eval"}, default "average"
        ``"average"``: a query with tied scores gets the expected metric over every order of
        its tied items (McSherry & Najork 2008), so the value never depends on how the file
        was written; every audit uses it. ``"trec_eval"``: ties broken by ``item_id``
        descending, else by row order (trec_eval's convention, used by ``audit eval``).
        Identical on queries without ties.

    Raises
    ------
    ValueError
        Unknown metric, mismatched shapes, NaN scores or labels.
    PluginError
        A metric plugin that cannot be loaded or breaks the contract.
    """
    specs = [m if isinstance(m, MetricSpec) else parse_metric(m) for m in metrics]
    return _evaluate_many(specs, {s.kind: s.family for s in specs}, labels, scores, offsets, item_id=item_id,
                          retrieved=retrieved, gain=gain, rel_threshold=rel_threshold, no_relevant=no_relevant,
                          compliance=compliance, ties=ties)


def _evaluate_many(specs: list[MetricSpec], families: dict[str, MetricFamily], labels: np.ndarray,
                   scores: np.ndarray, offsets: np.ndarray, *, item_id: np.ndarray | None, retrieved: np.ndarray | None,
                   gain: Gain, rel_threshold: float, no_relevant: str, compliance: np.ndarray | None,
                   ties: Ties) -> dict[str, np.ndarray]:
    """:func:`evaluate_many` with the families resolved (plugin validation runs families not yet registered)."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    if labels.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be 1-D of equal shape")
    n = labels.shape[0]
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != n or np.any(np.diff(offsets) < 0):
        raise ValueError(f"offsets must rise from 0 to n={n} (got {offsets[:3]}...{offsets[-1:]})")
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    if item_id is not None and not isinstance(item_id, LazyItemIds):
        item_id = np.asarray(item_id)
    if item_id is not None and item_id.shape != (n,):
        raise ValueError(f"item_id has shape {item_id.shape}, expected ({n},)")
    if ties == "average":
        item_id = None  # ties are averaged over, never broken: ids are not needed
    if compliance is not None:
        compliance = np.asarray(compliance, dtype=np.float64)
        if compliance.shape != (n,):
            raise ValueError(f"compliance has shape {compliance.shape}, expected ({n},)")
    if retrieved is not None:
        retrieved = np.asarray(retrieved, dtype=bool)
        if retrieved.shape != (n,):
            raise ValueError(f"retrieved has shape {retrieved.shape}, expected ({n},)")
        if retrieved.all():
            retrieved = None
    nq = offsets.size - 1
    plan = _Plan(specs, families, gain, rel_threshold, no_relevant, compliance, item_id, nq, ties)
    if nq == 0:
        return plan.out
    sizes = np.diff(offsets)
    jobs: list[Callable[[], None]] = []
    w0 = int(sizes[0])
    uniform = w0 > 0 and bool(np.all(sizes == w0))
    raw = retrieved is None and uniform
    if raw:
        key = scores  # the caller's array itself, reshaped below: no copy
    else:
        fmin = np.finfo(np.float64).min
        # ranking keys: -inf marks padding and unretrieved rows, so a real -inf score is
        # re-keyed to the lowest finite float (still retrieved, still ranked last)
        key = np.empty(n + 1)
        np.copyto(key[:n], scores)
        key[:n][key[:n] == -np.inf] = fmin
        if retrieved is not None:
            key[:n][~retrieved] = -np.inf
        key[n] = -np.inf
    if uniform:
        # every query has the same size: reshape into one block, no gathers
        S2, L2 = key[:n].reshape(nq, w0), labels.reshape(nq, w0)
        ch = max(1, _CHUNK_CELLS // w0)
        for s in range(0, nq, ch):
            e = min(nq, s + ch)
            qpos = np.arange(s, e)

            def rowmap(r, c, _s=s, _w=w0):
                return (_s + r) * _w + c

            jobs.append(lambda S=S2[s:e], L=L2[s:e], qp=qpos, rm=rowmap: _block(S, L, qp, rm, plan, raw))
    else:
        # sentinel row n: padding (-inf score, -inf label = never relevant, gain 0)
        lab = np.empty(n + 1)
        lab[:n] = labels
        lab[n] = -np.inf
        for qs in _size_buckets(sizes):
            w = int(sizes[qs].max())
            ch = max(1, _CHUNK_CELLS // w)
            for s in range(0, qs.size, ch):
                qp = qs[s:s + ch]
                ar = np.arange(w)
                idx = offsets[qp][:, None] + ar
                idx = np.where(ar < sizes[qp][:, None], idx, n)

                def rowmap(r, c, _idx=idx):
                    return _idx[r, c]

                jobs.append(lambda idx=idx, qp=qp, rm=rowmap: _block(key[idx], lab[idx], qp, rm, plan, False))
    _run_jobs(jobs, n)
    empty = sizes == 0
    if empty.any():  # no rows, so no relevant item: the no-relevant policy decides
        for s in specs:
            if families[s.kind].column is None:  # a column measure (compliance@1) stays NaN
                plan.out[s.name][empty] = plan.undefined()
    return plan.out


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


def compliance_at_1(compliance, scores, offsets, item_id=None, ties: Ties = "average") -> np.ndarray:
    """1 where the top-ranked candidate satisfies the binary ``compliance`` column, per query
    (with tied top scores and ``ties="average"``: the share of compliant candidates among them)."""
    lab = np.ones_like(np.asarray(scores, dtype=np.float64))
    return evaluate(MetricSpec("compliance", 1), lab, scores, offsets, item_id=item_id, compliance=compliance,
                    ties=ties)


# --------------------------------------------------------------------------- chance level
def expected_random(metric: str | MetricSpec, labels: np.ndarray, offsets: np.ndarray, *,
                    gain: Gain = "linear", rel_threshold: float = 1.0,
                    no_relevant: str = "exclude", compliance: np.ndarray | None = None) -> np.ndarray:
    """Exact expected metric per query under a uniformly random ordering of its candidates.

    The chance level of the random-label audit, and exactly what :func:`evaluate` gives a
    constant score (every candidate tied; tested). Closed forms (linear in the labels, so exact):

    - DCG@k: each item lands at each rank with probability 1/n, so
      ``E[DCG@k] = mean(gain) * sum_{r<min(k,n)} 1/log2(r+2)``; divided by the (fixed) IDCG@k.
    - P@k: ``R/n * min(k, n) / k``; recall@k: ``min(k, n) / n``.
    - RR: ``sum_r 1/r * P(first relevant at r)`` with
      ``P(first relevant at r) = R/(n-r+1) * prod_{j<r-1} (n-R-j)/(n-j)``.
    - AP: ``(1/R) * sum_r E[rel_r * hits_r] / r`` with
      ``E[rel_r * hits_r] = R/n * (1 + (r-1)(R-1)/(n-1))`` (exchangeability of positions).
    - compliance@1: share of compliant candidates (needs ``compliance``; NaN without it).

    Parameters
    ----------
    metric : str or MetricSpec
    labels : ndarray, shape (n,)
    offsets : ndarray, shape (n_queries + 1,)
    gain, rel_threshold, no_relevant
        As in :func:`evaluate_many`.
    compliance : ndarray, shape (n,), optional
        Binary column for ``compliance@1``.

    Returns
    -------
    ndarray, shape (n_queries,)
        NaN for queries the metric excludes (no relevant item).
    """
    spec = metric if isinstance(metric, MetricSpec) else parse_metric(metric)
    return _expected_random(spec, spec.family, labels, offsets, gain=gain, rel_threshold=rel_threshold,
                            no_relevant=no_relevant, compliance=compliance)


def _expected_random(spec: MetricSpec, fam: MetricFamily, labels: np.ndarray, offsets: np.ndarray, *,
                     gain: Gain, rel_threshold: float, no_relevant: str,
                     compliance: np.ndarray | None) -> np.ndarray:
    if no_relevant not in ("exclude", "zero"):
        raise ValueError(f"no-relevant policy must be 'exclude' or 'zero', got {no_relevant!r}")
    labels = np.asarray(labels, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    sizes = np.diff(offsets)
    nq = sizes.size
    undef = np.nan if no_relevant == "exclude" else 0.0
    out = np.full(nq, np.nan)
    ne = sizes > 0
    if not ne.any():
        return out
    if fam.chance is None:
        # every candidate tied: the tie-aware value is the expectation over all orders
        out = _evaluate_many([spec], {fam.name: fam}, labels, np.zeros(labels.shape), offsets, item_id=None,
                             retrieved=None, gain=gain, rel_threshold=rel_threshold, no_relevant=no_relevant,
                             compliance=compliance, ties="average")[spec.name]
        out[~ne] = np.nan
        return out
    # drop empty queries so the segment sums see non-empty segments only (rows of empty
    # queries do not exist, so labels need no filtering)
    off = np.concatenate([[0], np.cumsum(sizes[ne])])
    view = ChanceView(labels, off, sizes[ne].astype(np.float64), gain, rel_threshold, undef, compliance)
    vals = fam.chance(view, spec.k)
    if vals is not None:
        out[ne] = vals
    return out


def check_family(fam: MetricFamily) -> tuple[str, str] | None:
    """Run a plugin family on a small fixture; ``(rule broken, fix)`` or None when it keeps the contract.

    The fixture has a query without ties, one without a relevant item, one with tied scores,
    and a one-item query. Checked: the kernel returns one number per query; the tie-aware
    kernel equals the kernel on the queries without ties; the chance level equals the
    tie-aware value under constant scores (all tied), which is the same expectation.
    """
    labels = np.array([2, 0, 1, 0, 3, 0, 0, 0, 1, 0, 2, 1, 1], dtype=np.float64)
    scores = np.array([.9, .8, .7, .6, .5, .3, .2, .1, .5, .5, .4, .4, .7])
    offsets = np.array([0, 5, 8, 12, 13])
    untied = np.array([True, True, False, True])
    k = {"none": None, "optional": None, "required": 3, "one": 1}[fam.cutoff]
    specs = [MetricSpec(fam.name, k)] + ([MetricSpec(fam.name, 2)] if fam.cutoff == "optional" else [])
    fams = {fam.name: fam}

    def run(what: str, fn: Callable[[], Any]) -> Any:
        from auditor.guard import exit_message, no_exit

        try:
            with no_exit():
                return fn()
        except SystemExit as e:
            raise _Broken(f"its {what} {exit_message(e)}.", "return values; never exit.") from None
        except Exception as e:
            raise _Broken(f"its {what} raised {type(e).__name__}: {e}", f"fix the {what} (see docs/METRICS.md).")

    def evaluate_with(ties: str) -> dict[str, np.ndarray]:
        return _evaluate_many(specs, fams, labels, scores, offsets, item_id=None, retrieved=None, gain="linear",
                              rel_threshold=1.0, no_relevant="exclude", compliance=None, ties=ties)  # type: ignore

    try:
        plain = run("kernel", lambda: evaluate_with("trec_eval"))
        if fam.tie_kernel is not None:
            run("tie_kernel", lambda: evaluate_with("average"))
            # the tie-aware kernel on the untied queries themselves (evaluate_many sends it tied ones only)
            rows = np.flatnonzero(untied)
            w = int(np.diff(offsets).max())
            S = np.full((rows.size, w), -np.inf)
            L = np.full((rows.size, w), -np.inf)
            for i, q in enumerate(rows):
                S[i, :offsets[q + 1] - offsets[q]] = scores[offsets[q]:offsets[q + 1]]
                L[i, :offsets[q + 1] - offsets[q]] = labels[offsets[q]:offsets[q + 1]]
            plan = _Plan(specs, fams, "linear", 1.0, "exclude", None, None, rows.size)
            view = TiedView(S, L, plan.column, plan)
            for s in specs:
                a = plain[s.name][untied]
                b = run("tie_kernel", lambda: np.asarray(fam.tie_kernel(view, s.k), dtype=np.float64))
                if b.shape != a.shape:
                    return (f"its tie_kernel returned shape {b.shape}, expected {a.shape} (one value per query).",
                            "return one value per query of the view.")
                if not np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
                    return (f"tie_kernel differs from kernel on queries without tied scores ({s.name}: {b.tolist()} "
                            f"vs {a.tolist()}).", "make tie_kernel the expected value over orders of tied items only.")
        if fam.chance is not None:
            for s in specs:
                ch = run("chance", lambda: _expected_random(s, fam, labels, offsets, gain="linear", rel_threshold=1.0,
                                                            no_relevant="exclude", compliance=None))
                if fam.tie_kernel is not None:
                    const = _evaluate_many([s], fams, labels, np.zeros(labels.size), offsets, item_id=None,
                                           retrieved=None, gain="linear", rel_threshold=1.0, no_relevant="exclude",
                                           compliance=None, ties="average")[s.name]
                    if not np.allclose(ch, const, rtol=1e-9, atol=1e-12, equal_nan=True):
                        return (f"chance ({s.name}: {ch.tolist()}) differs from tie_kernel under constant scores "
                                f"({const.tolist()}), which is the same expectation.",
                                "fix one of them, or leave chance out (the tie-aware value is then used).")
    except _Broken as e:
        return e.args[0], e.args[1]
    return None


class _Broken(Exception):
    """A plugin kernel that failed on the validation fixture: (rule, fix)."""
