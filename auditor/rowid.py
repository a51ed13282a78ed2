"""Row and query identity across a train/test split: what "the same row" and "the same query" mean.

Shared by the isolation audit (exact duplicates, copied queries, the near-duplicate search's
"not an identical row" exclusion) and the random-label audit's variant B (one label shuffle over
the (query, item) keys of both splits), so that both agree; neither audit imports the other.

Row hashes are computed vectorised, a block of rows at a time (no Python loop over rows and no
copy of the whole matrix): each feature value, rounded to ``decimals`` places with ``-0.0``
folded into ``0.0``, is read as its 64 IEEE-754 bits, mixed with its column's key by the
SplitMix64 finaliser, and the row's mixed words are summed modulo 2**64 and mixed once more. Two
rows that differ anywhere get equal 64-bit hashes only by accident (about n_train x n_test / 2**64
pairs: 2e-8 for a million rows against a third of a million); where equality decides a finding
(a test row counted as a copy of a training row), :func:`matched_rows` confirms it by comparing
the rounded rows themselves.
"""
from __future__ import annotations

import math
import re
import unicodedata
import weakref
from typing import Any

import numpy as np

from auditor.data import RankingDataset

__all__ = ["row_hashes", "matched_rows", "item_keys", "normalise_text", "ids_are_generated", "query_identity"]

# row hashes per dataset object (frozen, read-only arrays), shared by the trials that need them
# (isolation's ids and near_dup trials and random_label's shared-key shuffle hash the same sets)
_ROW_HASHES: "weakref.WeakKeyDictionary[RankingDataset, dict[int, np.ndarray]]" = weakref.WeakKeyDictionary()

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = 0x9E3779B97F4A7C15
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_BLOCK_ROWS = 8192


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, in place on a uint64 array (wraps modulo 2**64 by design)."""
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def _rounded_block(data: RankingDataset, groups: list[str], start: int, stop: int, decimals: int) -> np.ndarray:
    """Rows ``start:stop`` of all groups (sorted by name), rounded, ``-0.0`` folded: (rows, d) float64."""
    width = sum(int(np.shape(data.features[g])[1]) for g in groups)
    out = np.empty((stop - start, width))
    c = 0
    for g in groups:
        x = data.features[g]
        out[:, c:c + x.shape[1]] = x[start:stop]
        c += x.shape[1]
    np.round(out, decimals, out=out)
    out += 0.0
    return out


def row_hashes(data: RankingDataset, *, decimals: int = 9) -> np.ndarray:
    """A 64-bit content hash per row over all feature groups (sorted by name), shape (n,), read-only.

    Values are rounded to ``decimals`` places (and ``-0.0`` folded into ``0.0``) so that the
    same number parsed twice hashes the same. Deterministic across processes, runs and machines
    (integer arithmetic on the values' bits), so trials computed in different workers agree.
    Computed once per dataset object and ``decimals`` in a process (datasets are frozen).
    """
    try:
        per = _ROW_HASHES.setdefault(data, {})
    except TypeError:  # not weak-referenceable: no cache
        per = {}
    if int(decimals) not in per:
        h = _row_hashes(data, int(decimals))
        h.flags.writeable = False
        per[int(decimals)] = h
    return per[int(decimals)]


def _row_hashes(data: RankingDataset, decimals: int) -> np.ndarray:
    groups = sorted(data.features)
    n = data.n_rows
    width = sum(int(np.shape(data.features[g])[1]) for g in groups)
    keys = (np.arange(1, width + 1, dtype=np.uint64) * np.uint64(_GOLDEN))[None, :]
    out = np.empty(n, dtype=np.uint64)
    for s in range(0, n, _BLOCK_ROWS):
        e = min(s + _BLOCK_ROWS, n)
        z = _rounded_block(data, groups, s, e, decimals).view(np.uint64)
        z += keys  # the column's key: the same value in another column hashes differently
        h = _mix(z).sum(axis=1, dtype=np.uint64)
        h ^= np.uint64(width)
        out[s:e] = _mix(h)
    return out


def _hash_decimals(data: RankingDataset, h: np.ndarray | None) -> int | None:
    """The ``decimals`` a cached hash array of ``data`` was computed with (None when not cached)."""
    for dec, arr in (_ROW_HASHES.get(data) or {}).items():
        if arr is h:
            return dec
    return None


def matched_rows(train: RankingDataset, test: RankingDataset, *, decimals: int = 9,
                 train_hash: np.ndarray | None = None, test_hash: np.ndarray | None = None) -> np.ndarray:
    """For each test row, a training row with the same rounded features (the first one), else -1.

    Shape (n_test,) int64. Candidates come from equal hashes; each is confirmed by comparing the
    rounded rows value by value, so a hash collision never counts as a match.
    """
    h_tr = row_hashes(train, decimals=decimals) if train_hash is None else np.asarray(train_hash)
    h_te = row_hashes(test, decimals=decimals) if test_hash is None else np.asarray(test_hash)
    out = np.full(h_te.size, -1, dtype=np.int64)
    if h_tr.size == 0 or h_te.size == 0:
        return out
    uniq, first = np.unique(h_tr, return_index=True)
    pos = np.minimum(np.searchsorted(uniq, h_te), uniq.size - 1)
    cand = np.flatnonzero(uniq[pos] == h_te)
    if cand.size == 0:
        return out
    j = first[pos[cand]]
    groups = sorted(test.features)
    same = np.ones(cand.size, dtype=bool)
    for s in range(0, cand.size, _BLOCK_ROWS):
        e = min(s + _BLOCK_ROWS, cand.size)
        a = _rounded_rows(test, groups, cand[s:e], decimals)
        b = _rounded_rows(train, groups, j[s:e], decimals)
        # equal values, or NaN in the same place (NaN != NaN, yet the rows hash alike)
        same[s:e] = np.all((a == b) | (np.isnan(a) & np.isnan(b)), axis=1)
    out[cand[same]] = j[same]
    return out


def _rounded_rows(data: RankingDataset, groups: list[str], rows: np.ndarray, decimals: int) -> np.ndarray:
    out = np.concatenate([np.asarray(data.features[g][rows], dtype=np.float64) for g in groups], axis=1)
    np.round(out, decimals, out=out)
    return out


def item_keys(data: RankingDataset, hashes: np.ndarray | None = None) -> np.ndarray:
    """Item key per row, shape (n,) str: ``"i:<item_id>"``, else ``"r:<row hash>"``."""
    if data.item_id is not None:
        return np.char.add("i:", data.item_id.astype(str))
    h = row_hashes(data) if hashes is None else hashes
    return np.char.add("r:", h.astype(str))


def normalise_text(s: Any) -> str:
    """Query text as compared across splits: NFKC, case-folded, whitespace collapsed."""
    t = unicodedata.normalize("NFKC", str(s)).casefold()
    return re.sub(r"\s+", " ", t).strip()


def ids_are_generated(data: RankingDataset) -> bool:
    """True when the loader made the query ids up (e.g. positions from a LightGBM ``.query`` file).

    Such ids carry no identity: query 0 of the training file and query 0 of the test file are
    unrelated, so they must not be compared across splits. Loaders flag this with
    ``meta["qid_generated"] = True``.
    """
    return bool(data.meta.get("qid_generated", False))


def query_identity(train: RankingDataset, test: RankingDataset, *, min_share: float = 0.5,
                   train_hash: np.ndarray | None = None, test_hash: np.ndarray | None = None,
                   compare_ids: bool | None = None,
                   decimals: int | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Identity key per query so that the same query gets the same key on both sides.

    Two queries are the same when they share the query id, the normalised ``query_text``
    (when both splits have it), or their *content*: a test query and one training query share
    identical feature rows for at least ``min_share`` of the larger of the two (and at least
    two rows, or the only row): a query copied under a new id. Identical rows are found by hash
    and confirmed value by value (:func:`matched_rows`).

    Returns
    -------
    train_keys : ndarray of str, shape (n_train_queries,)
    test_keys : ndarray of str, shape (n_test_queries,)
    info : dict
        ``via`` (n_test_queries,) str in {"", "qid", "text", "content"}: how each test query
        matched training; ``match`` (n_test_queries,) int: the matched train query position
        (-1 when unmatched or matched by id only); ``share``: matched row share (content).

    Ids are compared unless ``compare_ids`` is False (default: compared unless either split's
    ids are generated, see :func:`ids_are_generated`); uncompared ids are kept apart by a
    split prefix. ``decimals``: the rounding of the given hashes (default: the one they were
    computed with by :func:`row_hashes`, else 9).
    """
    if compare_ids is None:
        compare_ids = not (ids_are_generated(train) or ids_are_generated(test))
    tr_ids = train.query_ids.astype(str)
    te_ids = test.query_ids.astype(str)
    tr_keys = np.char.add("q:" if compare_ids else "q:train:", tr_ids)
    te_keys = np.char.add("q:" if compare_ids else "q:test:", te_ids).astype(object)
    nq = test.n_queries
    via = np.array([""] * nq, dtype=object)
    match = np.full(nq, -1, dtype=np.int64)
    share = np.zeros(nq)
    tr_pos = {k: i for i, k in enumerate(tr_ids.tolist())}
    for j, k in enumerate(te_ids.tolist()):
        if compare_ids and k in tr_pos:
            via[j] = "qid"
            match[j] = tr_pos[k]
    if train.query_text is not None and test.query_text is not None:
        tr_text = [normalise_text(t) for t in train.query_text[train.query_offsets[:-1]].tolist()]
        te_text = [normalise_text(t) for t in test.query_text[test.query_offsets[:-1]].tolist()]
        text_pos: dict[str, int] = {}
        for i, t in enumerate(tr_text):
            if t:
                text_pos.setdefault(t, i)
        for j, t in enumerate(te_text):
            if not via[j] and t and t in text_pos:
                via[j] = "text"
                match[j] = text_pos[t]
                te_keys[j] = tr_keys[text_pos[t]]
    # content: rows of a test query found together in one training query
    if decimals is None:
        found = [d for d in (_hash_decimals(train, train_hash), _hash_decimals(test, test_hash)) if d is not None]
        decimals = found[0] if found else 9
    h_tr = row_hashes(train, decimals=decimals) if train_hash is None else np.asarray(train_hash)
    h_te = row_hashes(test, decimals=decimals) if test_hash is None else np.asarray(test_hash)
    # test rows identical to some training row (confirmed, not just hash-equal)
    te_rows = np.flatnonzero(matched_rows(train, test, decimals=decimals, train_hash=h_tr, test_hash=h_te) >= 0)
    if te_rows.size:
        common = np.unique(h_te[te_rows])
        tr_rows = np.flatnonzero(np.isin(h_tr, common))
        by_hash: dict[int, set[int]] = {}
        for h, q in zip(h_tr[tr_rows].tolist(), train.query_index[tr_rows].tolist()):
            by_hash.setdefault(h, set()).add(q)
        sizes = test.query_sizes
        counts: dict[tuple[int, int], int] = {}
        for h, q in zip(h_te[te_rows].tolist(), test.query_index[te_rows].tolist()):
            for tq in by_hash.get(h, ()):
                counts[(q, tq)] = counts.get((q, tq), 0) + 1
        best: dict[int, tuple[int, int]] = {}
        for (q, tq), c in counts.items():
            if q not in best or c > best[q][0] or (c == best[q][0] and tq < best[q][1]):
                best[q] = (c, tq)
        tr_sizes = train.query_sizes
        for q, (c, tq) in best.items():
            # the two queries must mostly coincide in both directions: one shared row between a
            # one-candidate test query and a 20-candidate training query is a shared item, not a copy
            need = max(min(2, int(sizes[q])), int(math.ceil(min_share * max(sizes[q], tr_sizes[tq]))))
            share[q] = c / max(sizes[q], tr_sizes[tq])
            if c >= need and not via[q]:
                via[q] = "content"
                match[q] = tq
                te_keys[q] = tr_keys[tq]
    return tr_keys, te_keys.astype(str), {"via": via.astype(str), "match": match, "share": share}
