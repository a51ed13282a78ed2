"""Per-query ranked relevance lists, built as trec_eval's ``form_res_rels.c`` builds them.

For every qrels query (sorted by qid, byte order, as trec_eval loops over them):

- the run's documents sorted by score descending, ties by docno descending (byte order) —
  ``comp_sim_docno`` in ``form_res_rels.c``;
- cut to ``-M`` documents, then each given its judgment: the qrels relevance when judged
  (``>= 0``), :data:`UNJUDGED` (-2) when the qrels line has a negative relevance (in the pool,
  not judged), :data:`NONPOOL` (-1) when the qrels do not list it;
- with ``-J`` only judged documents stay, in the same order;
- ``-c``: a judged query the run lacks gets trec_eval's stand-in ranking (one document,
  ``ceci_nest_pas_un_docno``, score 1.0) and the measures trec_eval resets afterwards are
  reset by the caller.

The lists are handed to the measure kernels in chunks of queries of similar length, padded
with :data:`PAD` (a value no kernel counts), so every kernel is a vectorised pass over a
``(queries, depth)`` matrix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from auditor.errors import DataError
from auditor.loaders._trec_join import _hash_strings, _same_strings
from auditor.trec_eval.reader import Judgments, Run

NONPOOL, UNJUDGED, PAD = -1, -2, np.iinfo(np.int64).min // 2
BOGUS_DOCNO = b"ceci_nest_pas_un_docno"
#: padded cells per chunk: bounds the kernels' temporaries (a few dozen float64 matrices)
CHUNK_CELLS = 1 << 18


@dataclass
class Options:
    """trec_eval's evaluation switches (``EPI`` in trec_eval.h)."""

    relevance_level: int = 1
    complete: bool = False  # -c
    judged_only: bool = False  # -J
    max_docs: int = (1 << 63) - 1  # -M
    num_docs_in_coll: int = 0  # -N
    float32_scores: bool = False


@dataclass
class Ranked:
    """All evaluated queries' ranked judgments, flattened in query order."""

    qids: list[str]
    rels: np.ndarray  # int64, ranked judgments of all queries, query after query
    starts: np.ndarray  # int64 (Q+1,), offsets into rels
    n_nonpool: np.ndarray
    n_unjudged: np.ndarray
    levels: np.ndarray  # int64 (L,), the judged relevance values >= 0 present anywhere
    level_counts: np.ndarray  # int64 (Q, L), judged documents per value, per query
    stale: np.ndarray  # bool (Q,), judged only -1: level_counts inherited (see build), no relevant document
    bogus: np.ndarray  # bool (Q,), stand-in ranking of a query the run lacks (-c)
    n_qrels_positive: int  # qrels lines with rel > 0 (trec_eval's -c num_rel summary)
    runid: str
    opts: Options = field(default_factory=Options)

    def chunks(self) -> Iterator[tuple[np.ndarray, "Chunk"]]:
        """(query indices, Chunk) pieces covering all queries, each of bounded padded size."""
        nret = np.diff(self.starts)
        order = np.argsort(nret, kind="stable")
        i, q = 0, order.size
        while i < q:
            j = i + 1
            # grow while the padded block (rows x longest row) stays small
            while j < q and (j + 1 - i) * max(int(nret[order[j]]), 1) <= CHUNK_CELLS:
                j += 1
            idx = order[i:j]
            yield idx, self._chunk(idx)
            i = j

    def _chunk(self, idx: np.ndarray) -> "Chunk":
        nret = (self.starts[idx + 1] - self.starts[idx]).astype(np.int64)
        depth = int(nret.max()) if idx.size else 0
        R = np.full((idx.size, depth), PAD, dtype=np.int64)
        if depth:
            col = np.arange(depth)
            mask = col[None, :] < nret[:, None]
            src = (self.starts[idx][:, None] + col[None, :])[mask]
            R[mask] = self.rels[src]
        return Chunk(R=R, nret=nret, n_nonpool=self.n_nonpool[idx], n_unjudged=self.n_unjudged[idx],
                     levels=self.levels, level_counts=self.level_counts[idx], stale=self.stale[idx],
                     opts=self.opts)


@dataclass
class Chunk:
    """The kernels' input: ranked judgments padded to a matrix, plus the per-query counts."""

    R: np.ndarray  # (q, depth) int64
    nret: np.ndarray
    n_nonpool: np.ndarray
    n_unjudged: np.ndarray
    levels: np.ndarray
    level_counts: np.ndarray
    stale: np.ndarray
    opts: Options
    cache: dict = field(default_factory=dict)

    def get(self, key: str, make: Any) -> Any:
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


def _pa_binary(col: Any) -> Any:
    """The column as a pyarrow ChunkedArray of binary (no copy of the reader's chunks)."""
    import pyarrow as pa

    if isinstance(col, np.ndarray):
        col = pa.array(col.tolist(), type=pa.binary())
    if isinstance(col, pa.ChunkedArray):
        return col
    return pa.chunked_array([col])


def _first_duplicate(key: np.ndarray) -> int | None:
    """Index (into ``key``) of a key that occurs twice, or None."""
    if key.size < 2:
        return None
    srt = np.sort(key)
    if not (srt[1:] == srt[:-1]).any():
        return None
    order = np.argsort(key, kind="stable")
    same = np.flatnonzero(key[order[1:]] == key[order[:-1]])
    return int(order[same[0] + 1]) if same.size else None


def _rank_order(q: np.ndarray, sim: np.ndarray, docno: Any) -> np.ndarray:
    """Row order: query, then score descending, then docno descending in byte order (comp_sim_docno).

    Sorted on (query, score) first; only rows whose (query, score) is tied are then ordered by
    their docno strings, so untied runs never pay for string comparisons.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    order = pc.sort_indices(pa.table({"q": q, "s": sim}),
                            sort_keys=[("q", "ascending"), ("s", "descending")]).to_numpy().copy()
    qs, ss = q[order], sim[order]
    same = (qs[1:] == qs[:-1]) & (ss[1:] == ss[:-1])
    if not same.any():
        return order
    tied = np.zeros(order.size, dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    pos = np.flatnonzero(tied)
    rows = order[pos]
    sub = pa.table({"q": q[rows], "s": sim[rows], "d": pc.take(docno, pa.array(rows))})
    inner = pc.sort_indices(sub, sort_keys=[("q", "ascending"), ("s", "descending"), ("d", "descending")])
    order[pos] = rows[inner.to_numpy()]
    return order


class _Collision(Exception):
    """Two different (query, docno) pairs share a hashed key: the exact codes decide instead."""


def build(qrels: Judgments, run: Run, opts: Options) -> Ranked:
    """Join a run to its qrels the way trec_eval does. Raises DataError where trec_eval stops or crashes.

    Docnos are compared through 64-bit hashes of their bytes (vectorized, a few ms for millions
    of rows; Arrow's dictionary encoding of the same strings takes about a second), and every
    judgment found that way is confirmed on the strings. A key shared by two different pairs,
    or any duplicate (an error anyway), sends the join to exact dictionary codes, which decide.
    """
    try:
        return _build(qrels, run, opts, exact=False)
    except _Collision:
        return _build(qrels, run, opts, exact=True)


def _build(qrels: Judgments, run: Run, opts: Options, exact: bool) -> Ranked:
    import pyarrow as pa
    import pyarrow.compute as pc

    qq, qd = _pa_binary(qrels.qid), _pa_binary(qrels.docno)
    rel = np.asarray(qrels.rel, dtype=np.int64)
    uq = pc.unique(qq)
    uq = uq.take(pc.sort_indices(uq))
    qids = [b.decode("utf-8", "surrogateescape") for b in uq.to_pylist()]
    nq = len(qids)
    qi = pc.index_in(qq, value_set=uq).to_numpy(zero_copy_only=False).astype(np.int64)

    maxrel = np.full(nq, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(maxrel, qi, rel)
    bad = np.flatnonzero(maxrel < NONPOOL)
    if bad.size:
        raise DataError(f"qrels file {qrels.path!r}: every judgment of query {qids[bad[0]]!r} is below -1; "
                        "trec_eval 10.0-rc3 cannot evaluate such a query (it sizes an array from the largest "
                        "relevance value). Give the query a judgment >= -1 or drop it.")
    first_judged = int(np.argmax(maxrel >= 0)) if (maxrel >= 0).any() else nq
    early = np.flatnonzero(maxrel[:first_judged] == NONPOOL)
    if early.size:
        raise DataError(f"qrels file {qrels.path!r}: query {qids[early[0]]!r} has only -1 judgments and comes "
                        "(in qid order) before any query with a judgment >= 0; trec_eval 10.0-rc3 cannot "
                        "evaluate it there (it stops with \"Can't calculate measure\"). Drop its judgments or "
                        "give it a judgment >= 0.")
    judged = rel >= 0
    levels, lev_idx = np.unique(rel[judged], return_inverse=True)
    level_counts = np.zeros((nq, levels.size), dtype=np.int64)
    np.add.at(level_counts, (qi[judged], lev_idx), 1)
    # A query judged only -1 leaves trec_eval's level table as the previous query left it (it
    # clears max_rel + 1 = 0 entries): its gains and ideal rankings are the last judged query's.
    stale = maxrel == NONPOOL
    if stale.any():
        last = np.maximum.accumulate(np.where(~stale, np.arange(nq), -1))
        level_counts[stale] = level_counts[last[stale]]

    # run rows of judged queries
    rq = pc.index_in(_pa_binary(run.qid), value_set=uq)
    keep = pc.is_valid(rq)
    if pc.all(keep).as_py():  # the usual case: every run query is judged, no copies
        rq = rq.to_numpy(zero_copy_only=False).astype(np.int64)
        rd = _pa_binary(run.docno)
        sim = np.asarray(run.sim, dtype=np.float64)
    else:
        rq = pc.filter(rq, keep).to_numpy(zero_copy_only=False).astype(np.int64)
        rd = pc.filter(_pa_binary(run.docno), keep)
        sim = np.asarray(run.sim, dtype=np.float64)[keep.to_numpy(zero_copy_only=False)]
    del keep
    if opts.float32_scores:
        sim = sim.astype(np.float32).astype(np.float64)
    if np.isnan(sim).any():
        raise DataError(f"run file {run.path!r}: a score is NaN; trec_eval's sort is undefined with NaN scores. "
                        "Replace it with a number.")
    present = np.zeros(nq, dtype=bool)
    present[rq] = True
    missing = np.flatnonzero(~present)
    if missing.size and not opts.complete:
        raise DataError(f"query {qids[missing[0]]!r} has judgments in {qrels.path!r} but no results in "
                        f"{run.path!r} ({missing.size} such queries); trec_eval 10.0-rc3 stops there without -c "
                        "(its message: \"result qid ... not found in qrels\"). Pass -c to score them 0, or drop "
                        "their judgments.")
    if missing.size:
        rq = np.concatenate([rq, missing])
        rd = pa.chunked_array(rd.chunks + [pa.array([BOGUS_DOCNO] * missing.size, type=pa.binary())])
        sim = np.concatenate([sim, np.ones(missing.size)])
    bogus = ~present

    # (query, docno) pairs as int64 keys (equality only: joins and duplicate checks)
    if exact:  # docnos of both files as dictionary codes
        both = pc.dictionary_encode(pa.chunked_array(rd.chunks + qd.chunks))
        nd = max(len(both.chunk(0).dictionary) if both.num_chunks else 0, 1)  # one dictionary for all chunks
        codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in both.chunks]).astype(np.int64)
        del both
        dr, dq = codes[: len(rd)], codes[len(rd):]

        def pair_key(q: np.ndarray, d: np.ndarray) -> np.ndarray:
            return q * nd + d
    else:  # the query number in the high bits, a hash of the docno's bytes below it
        hb = 63 - max(nq.bit_length(), 1)
        cut = np.uint64(64 - hb)
        dr, dq = _hash_strings(rd) >> cut, _hash_strings(qd) >> cut

        def pair_key(q: np.ndarray, d: np.ndarray) -> np.ndarray:
            # query-major keys keep the lookups below in query order (cache-friendly)
            return (q.astype(np.int64) << hb) | d.view(np.int64)

    qkey = pair_key(qi, dq)
    dup = _first_duplicate(qkey)
    if dup is not None and not exact:
        raise _Collision  # a duplicate (an error) or a collision: the exact codes tell which
    if dup is not None:
        raise DataError(f"qrels file {qrels.path!r}: document {qd[dup].as_py().decode('utf-8', 'replace')!r} is "
                        f"judged twice for query {qids[qi[dup]]!r}; trec_eval stops there ('duplicate docs'). "
                        "Keep one judgment.")

    order = _rank_order(rq, sim + 0.0, rd)  # -0.0 ties 0.0 as in C
    rq, dr = rq[order], dr[order]
    counts = np.bincount(rq, minlength=nq)
    starts = np.concatenate([[0], np.cumsum(counts)])
    if opts.max_docs < counts.max(initial=0):
        sel = (np.arange(rq.size) - starts[rq]) < max(opts.max_docs, 0)
        rq, dr, order = rq[sel], dr[sel], order[sel]
    rkey = pair_key(rq, dr)
    dup = _first_duplicate(rkey)
    if dup is not None and not exact:
        raise _Collision
    if dup is not None:
        raise DataError(f"run file {run.path!r}: document {rd[int(order[dup])].as_py().decode('utf-8', 'replace')!r} "
                        f"is retrieved twice for query {qids[rq[dup]]!r}; trec_eval stops there ('duplicate docs'). "
                        "Keep one line.")

    # judgment of each ranked document
    qorder = np.argsort(qkey)
    skey, srel = qkey[qorder], rel[qorder]
    pos = np.minimum(np.searchsorted(skey, rkey), max(skey.size - 1, 0))
    found = skey[pos] == rkey if skey.size else np.zeros(rkey.size, dtype=bool)
    if not exact and found.any():  # confirm every hashed match on the query and the docno bytes
        hit = np.flatnonzero(found)
        qrow = qorder[pos[hit]]
        if not (np.array_equal(qi[qrow], rq[hit]) and _same_strings(rd, order[hit], qd, qrow).all()):
            raise _Collision
    jr = srel[pos]
    r = np.where(found, np.where(jr < 0, UNJUDGED, jr), NONPOOL).astype(np.int64)
    n_nonpool = np.bincount(rq[r == NONPOOL], minlength=nq)
    n_unjudged = np.bincount(rq[r == UNJUDGED], minlength=nq)
    if opts.judged_only:
        sel = r >= 0
        r, rq = r[sel], rq[sel]
        n_nonpool = np.zeros(nq, dtype=np.int64)
        n_unjudged = np.zeros(nq, dtype=np.int64)
    counts = np.bincount(rq, minlength=nq)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Ranked(qids=qids, rels=r, starts=starts, n_nonpool=n_nonpool, n_unjudged=n_unjudged, levels=levels,
                  level_counts=level_counts, stale=stale, bogus=bogus, n_qrels_positive=int((rel > 0).sum()),
                  runid=run.runid, opts=opts)
