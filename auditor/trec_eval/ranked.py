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

from auditor._arrow import binary_array, compute, from_numpy, set_lookup, sort_options, to_numpy
from auditor.errors import DataError
from auditor.loaders._trec_join import _hash_strings, _HashCollision, _pair_candidates, _same_strings
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
    rels: np.ndarray  # signed integers (the qrels labels' type, int8 and up), ranked judgments of all queries, query after query
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

    def chunks(self, cells: int = CHUNK_CELLS) -> Iterator[tuple[np.ndarray, "Chunk"]]:
        """(query indices, Chunk) pieces covering all queries, each of bounded padded size."""
        for idx in self.chunk_indices(cells):
            yield idx, self.chunk(idx)

    def chunk_indices(self, cells: int = CHUNK_CELLS) -> list[np.ndarray]:
        """Query indices of each chunk: queries of similar length, at most ``cells`` padded cells each."""
        nret = np.diff(self.starts)
        order = np.argsort(nret, kind="stable")
        out = []
        i, q = 0, order.size
        while i < q:
            # grow while the padded block (rows x longest row) stays small: nret is sorted, so the
            # block's width is its last row's length and the end is found by one search
            width = np.maximum(nret[order[i + 1:]], 1)
            fits = (np.arange(2, q - i + 1) * width) <= cells
            j = i + 1 + (int(np.argmin(fits)) if not fits.all() else fits.size)
            out.append(order[i:j])
            i = j
        return out

    def chunk(self, idx: np.ndarray) -> "Chunk":
        nret = (self.starts[idx + 1] - self.starts[idx]).astype(np.int64)
        depth = int(nret.max()) if idx.size else 0
        if depth and int(nret.min()) == depth:  # every query as long as the longest: no padding
            R = self.rels[self.starts[idx][:, None] + np.arange(depth)[None, :]].astype(np.int64, copy=False)
        else:
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
        col = binary_array(col.tolist())
    if isinstance(col, pa.DictionaryArray):
        col = col.dictionary_decode()
    if isinstance(col, pa.ChunkedArray):
        return col
    return pa.chunked_array([col])


def _codes(col: Any) -> tuple[np.ndarray, Any]:
    """(code per row, the distinct values) of a qid column: the reader's dictionary, or one made here."""
    import pyarrow as pa
    if not isinstance(col, pa.DictionaryArray):
        col = compute("dictionary_encode", _pa_binary(col)).combine_chunks()
    codes, values = to_numpy(col.indices), col.dictionary
    used = np.zeros(len(values), dtype=bool)
    # one code per run of equal codes (qids come grouped): a small scatter, no int64 copy of the
    # codes (bincount makes one)
    if codes.size:
        used[codes[np.flatnonzero(codes[1:] != codes[:-1]) + 1]] = True
        used[codes[0]] = True
    if not used.all():  # a filtered column (-D 0.QID) keeps its whole dictionary
        codes = (np.cumsum(used) - 1)[codes]
        values = compute("filter", values, from_numpy(used))
    return codes, values


def _fixed_width(col: Any) -> int | None:
    """The common length of every string of a binary array (one chunk, no nulls), or None."""
    import pyarrow as pa

    if isinstance(col, pa.ChunkedArray):
        if col.num_chunks != 1:
            return None
        col = col.chunk(0)
    if col.null_count or not pa.types.is_binary(col.type) or len(col) == 0:
        return None
    off = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset:col.offset + len(col) + 1]
    w = int(off[1] - off[0])
    if w == 0 or int(off[-1] - off[0]) != w * len(col) or not (np.diff(off) == w).all():
        return None
    return w


def _same_docnos(a: Any, ia: np.ndarray, b: Any, ib: np.ndarray, wa: int | None, wb: int | None) -> np.ndarray:
    """Elementwise ``a[ia] == b[ib]`` on the bytes (exact); fixed-width strings compared as opaque values.

    ``wa``, ``wb``: :func:`_fixed_width` of ``a`` and ``b``, found once by the caller (a pass over
    every offset: a few ms per million rows, and the join compares up to three times).
    """
    import pyarrow as pa

    if wa is None or wa != wb:
        return _same_strings(a, ia, b, ib)
    views = []
    for col in (a, b):
        col = col.chunk(0) if isinstance(col, pa.ChunkedArray) else col
        off = int(np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset])
        data = np.frombuffer(col.buffers()[2], dtype=np.uint8)[off:off + wa * len(col)]
        # opaque values compare every byte (a bytes dtype would drop trailing NULs); measured
        # faster than gathering 8-byte words read at a stride of wa (unaligned gathers)
        views.append(data.view(f"V{wa}"))
    same = np.empty(len(ia), dtype=bool)
    for c in range(0, len(ia), _CONFIRM_CHUNK):  # chunked: the gathered strings stay small
        same[c:c + _CONFIRM_CHUNK] = views[0][ia[c:c + _CONFIRM_CHUNK]] == views[1][ib[c:c + _CONFIRM_CHUNK]]
    return same


_CONFIRM_CHUNK = 1 << 18


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


def _rank_order(q: np.ndarray, sim: np.ndarray, docno: Any) -> np.ndarray | None:
    """Row order: query, then score descending, then docno descending in byte order (comp_sim_docno).

    None when the rows are in that order already (runs are usually written so). Sorted on
    (query, score) first; only rows whose (query, score) is tied are then ordered by their
    docno strings, so untied runs never pay for string comparisons.
    """
    import pyarrow as pa

    n = q.size
    same_q = q[1:] == q[:-1]
    in_order = bool(((q[1:] > q[:-1]) | (same_q & (sim[1:] <= sim[:-1]))).all()) if n > 1 else True
    order = None
    if not in_order:
        order = to_numpy(compute("sort_indices", pa.table({"q": from_numpy(q), "s": from_numpy(sim)}),
                                 options=sort_options([("q", "ascending"), ("s", "descending")]))).copy()
        qs, ss = q[order], sim[order]
        same = (qs[1:] == qs[:-1]) & (ss[1:] == ss[:-1])
    else:
        same = same_q & (sim[1:] == sim[:-1])
    del same_q
    if not same.any():
        return order
    if order is None:
        order = np.arange(n)
    tied = np.zeros(n, dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    pos = np.flatnonzero(tied)
    rows = order[pos]
    sub = pa.table({"q": from_numpy(q[rows]), "s": from_numpy(sim[rows]), "d": compute("take", docno, from_numpy(rows))})
    inner = compute("sort_indices", sub, options=sort_options([("q", "ascending"), ("s", "descending"),
                                                               ("d", "descending")]))
    order[pos] = rows[to_numpy(inner)]
    return order


class _Collision(Exception):
    """A duplicate (an error) or two pairs sharing a hashed key: the exact codes decide instead."""


#: docno-hash bits kept in the pair keys (the tests weaken the hash to reach the rare paths:
#: failed candidates, groups of three, the exact fallback); None keeps all. Query bits are never cut.
_HASH_MASK: int | None = None


def build(qrels: Judgments, run: Run, opts: Options) -> Ranked:
    """Join a run to its qrels the way trec_eval does. Raises DataError where trec_eval stops or crashes.

    Each (query, docno) pair becomes a 64-bit key: the query number in the high bits, a hash of
    the docno's bytes below it (vectorized, a few ms for millions of rows). One sort of both
    files' keys finds the candidate judgments and duplicates (:func:`_pair_candidates`), and
    every candidate is confirmed on the docno bytes. A confirmed duplicate (an error), or a key
    shared by three pairs, sends the join to exact dictionary codes, which decide (and word
    the error).
    """
    try:
        return _build(qrels, run, opts, exact=False)
    except _Collision:
        return _build(qrels, run, opts, exact=True)


def _hashed_keys(docno: Any, q: np.ndarray, hb: int, out: np.ndarray | None = None,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """uint64 pair keys ``q << hb | top bits of the docno hash`` (into ``out``; or of ``rows`` only)."""
    if rows is not None:
        k = _hash_strings(compute("take", docno, from_numpy(rows)))
        q = q[rows]
    else:
        # hashed straight into ``out`` (the caller's sort buffer): a separate 16 MB array per
        # million rows would be fresh memory, page-faulted in and then copied
        k = _hash_strings(docno, out=out)
    k >>= np.uint64(64 - hb)
    if _HASH_MASK is not None:
        k &= np.uint64(_HASH_MASK)
    for c in range(0, k.size, 1 << 18):  # chunked: no full-size temporary
        k[c:c + (1 << 18)] |= q[c:c + (1 << 18)].astype(np.uint64) << np.uint64(hb)
    return k


def _build(qrels: Judgments, run: Run, opts: Options, exact: bool) -> Ranked:
    import pyarrow as pa

    qd = _pa_binary(qrels.docno)
    rel = np.asarray(qrels.rel)
    if rel.dtype.kind != "i":  # the reader keeps narrow integers (every use below widens as needed)
        rel = rel.astype(np.int64)
    qcodes, qvals = _codes(qrels.qid)
    srt = to_numpy(compute("array_sort_indices", qvals))
    uq = compute("take", qvals, from_numpy(srt))
    qids = [b.decode("utf-8", "surrogateescape") for b in uq.to_pylist()]
    nq = len(qids)
    # query numbers as int32 when they fit (half the memory of two 2M-row columns); arithmetic
    # on them that may pass 2**31 is done in int64
    qdt = np.int32 if nq < 1 << 31 else np.int64
    ident = np.arange(nq, dtype=qdt)
    if bool((srt == ident).all()):
        # the file lists its queries in qid order (the usual qrels): the reader's codes are the
        # query numbers; no gather, no second per-row array held through the join
        qi = qcodes.astype(qdt, copy=False)
    else:
        rank = np.empty(len(qvals), dtype=qdt)
        rank[srt] = ident
        qi = rank[qcodes]
        del rank
    del qcodes

    maxrel = np.full(nq, np.iinfo(np.int64).min, dtype=np.int64)
    if qi.size and bool((qi[1:] >= qi[:-1]).all()):  # grouped by query, in qid order (the usual file)
        first = np.flatnonzero(np.concatenate([[True], qi[1:] != qi[:-1]]))
        maxrel[qi[first]] = np.maximum.reduceat(rel, first)
    else:
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
    if bool(judged.all()):  # the usual qrels: no copies
        rj, qj = rel, qi
    else:
        rj, qj = rel[judged], qi[judged]
    del judged
    top = int(rj.max()) if rj.size else -1
    if 0 <= top and (top + 1) * nq <= rj.size + (1 << 20):
        # few values (the usual graded labels): one count per (query, value), then the values present
        key = qj.astype(np.int64)
        key *= top + 1
        key += rj
        full = np.bincount(key, minlength=nq * (top + 1)).reshape(nq, top + 1)
        del key
        present = full.any(axis=0)
        levels = np.flatnonzero(present)
        level_counts = full if levels.size == top + 1 else full[:, levels]
    else:
        if rj.size and top < 1 << 16:  # small relevance values: counted, not sorted
            present = np.bincount(rj) > 0
            levels = np.flatnonzero(present)
            lev_idx = (np.cumsum(present) - 1)[rj]
        else:
            levels, lev_idx = np.unique(rj, return_inverse=True)
            levels = levels.astype(np.int64)
        key = qj.astype(np.int64)
        key *= levels.size
        key += lev_idx
        level_counts = np.bincount(key, minlength=nq * levels.size).reshape(nq, levels.size)
        del key, lev_idx
    del rj, qj
    # A query judged only -1 leaves trec_eval's level table as the previous query left it (it
    # clears max_rel + 1 = 0 entries): its gains and ideal rankings are the last judged query's.
    stale = maxrel == NONPOOL
    if stale.any():
        last = np.maximum.accumulate(np.where(~stale, np.arange(nq), -1))
        level_counts[stale] = level_counts[last[stale]]

    # run rows of judged queries
    rcodes, rvals = _codes(run.qid)
    to_q = to_numpy(compute("index_in", rvals, options=set_lookup(uq)), null=-1).astype(qdt)  # -1: unjudged
    # the run's queries, in its order, those of the qrels in qid order (the usual pair): codes are query numbers
    rq = rcodes.astype(qdt, copy=False) if to_q.size == nq and bool((to_q == ident).all()) else to_q[rcodes]
    del rcodes
    rd = _pa_binary(run.docno)
    sim = np.asarray(run.sim, dtype=np.float64)
    if (to_q < 0).any():
        keep = rq >= 0
        rq, sim = rq[keep], sim[keep]
        rd = compute("filter", rd, from_numpy(keep))
        del keep
    if opts.float32_scores:
        sim = sim.astype(np.float32).astype(np.float64)
    if np.isnan(sim).any():
        raise DataError(f"run file {run.path!r}: a score is NaN; trec_eval's sort is undefined with NaN scores. "
                        "Replace it with a number.")
    present = np.zeros(nq, dtype=bool)
    present[to_q[to_q >= 0]] = True  # every run qid occurs in some row (_codes drops unused ones): no pass over the rows
    missing = np.flatnonzero(~present)
    if missing.size and not opts.complete:
        raise DataError(f"query {qids[missing[0]]!r} has judgments in {qrels.path!r} but no results in "
                        f"{run.path!r} ({missing.size} such queries); trec_eval 10.0-rc3 stops there without -c "
                        "(its message: \"result qid ... not found in qrels\"). Pass -c to score them 0, or drop "
                        "their judgments.")
    if missing.size:
        rq = np.concatenate([rq, missing])
        rd = pa.chunked_array(rd.chunks + [binary_array([BOGUS_DOCNO] * missing.size)])
        sim = np.concatenate([sim, np.ones(missing.size)])
    bogus = ~present

    # -0.0 ties 0.0 as in C (adding 0.0 makes it 0.0); a copy only when some score is zero
    order = _rank_order(rq, sim + 0.0 if bool((sim == 0.0).any()) else sim, rd)
    del sim
    if exact:
        r, rq = _judge_exact(qrels, run, qi, qd, rel, rq, rd, order, opts, qids)
    else:
        r, rq = _judge_hashed(qi, qd, rel, rq, rd, order, opts)
    # rows are in ranked order, grouped by query in qid order: each query's rows start where a
    # search of its number in rq lands, and counts per query are differences of such searches
    starts = np.searchsorted(rq, np.arange(nq + 1, dtype=rq.dtype)).astype(np.int64)
    n_nonpool = np.diff(np.searchsorted(np.flatnonzero(r == NONPOOL), starts))
    n_unjudged = np.diff(np.searchsorted(np.flatnonzero(r == UNJUDGED), starts))
    if opts.judged_only:
        sel = r >= 0
        r, rq = r[sel], rq[sel]
        n_nonpool = np.zeros(nq, dtype=np.int64)
        n_unjudged = np.zeros(nq, dtype=np.int64)
        starts = np.searchsorted(rq, np.arange(nq + 1, dtype=rq.dtype)).astype(np.int64)
    return Ranked(qids=qids, rels=r, starts=starts, n_nonpool=n_nonpool, n_unjudged=n_unjudged, levels=levels,
                  level_counts=level_counts, stale=stale, bogus=bogus, n_qrels_positive=int((rel > 0).sum()),
                  runid=run.runid, opts=opts)


def _cut(rq: np.ndarray, nq: int, opts: Options) -> np.ndarray | None:
    """Rows (in ranked order) within each query's first ``-M`` documents, or None when all are."""
    if opts.max_docs >= rq.size:  # no query has more rows than that (the usual: no -M)
        return None
    counts = np.bincount(rq, minlength=nq)
    if opts.max_docs >= counts.max(initial=0):
        return None
    starts = np.concatenate([[0], np.cumsum(counts)])
    return (np.arange(rq.size) - starts[rq]) < max(opts.max_docs, 0)


def _judge_hashed(qi: np.ndarray, qd: Any, rel: np.ndarray, rq: np.ndarray, rd: Any, order: np.ndarray | None,
                  opts: Options) -> tuple[np.ndarray, np.ndarray]:
    """(judgment, query) of each ranked run row, -M applied; hashed keys, candidates confirmed on the bytes.

    Raises _Collision on a duplicate in either file or a key shared by three pairs.
    """
    nq = int(qi.max(initial=-1)) + 1 if qi.size else 0
    nq = max(nq, int(rq.max(initial=-1)) + 1)
    hb = 63 - max(nq.bit_length(), 1)
    n_run, n_qrels = rq.size, qi.size
    if hb - max(n_run, n_qrels, 2).bit_length() < 24:
        raise _Collision  # too few hash bits left beside the query and row numbers
    try:
        rr, qq, qdup, rdup = _pair_candidates(
            lambda out=None, rows=None: _hashed_keys(rd, rq, hb, out=out, rows=rows),
            lambda out=None, rows=None: _hashed_keys(qd, qi, hb, out=out, rows=rows), n_run, n_qrels)
    except _HashCollision:
        raise _Collision from None
    # a candidate shares the query (its bits are in the key) and the docno hash: confirm the bytes
    wq, wr = _fixed_width(qd), _fixed_width(rd)
    if qdup[0].size and _same_docnos(qd, qdup[0], qd, qdup[1], wq, wq).any():
        raise _Collision  # a duplicate judgment: the exact join words the error
    if rr.size:
        ok = _same_docnos(rd, rr, qd, qq, wr, wq)
        if not ok.all():
            rr, qq = rr[ok], qq[ok]
    # in the labels' type (signed: NONPOOL and UNJUDGED fit): a byte per row for the usual labels
    jr = np.full(n_run, NONPOOL, dtype=rel.dtype)
    jv = rel[qq]
    jv[jv < 0] = UNJUDGED
    jr[rr] = jv
    del jv, rr, qq
    if order is not None:
        rq, jr = rq[order], jr[order]
        inv = None
    sel = _cut(rq, nq, opts)
    if rdup[0].size:
        dup = _same_docnos(rd, rdup[0], rd, rdup[1], wr, wr)
        if dup.any():
            if sel is None:
                raise _Collision  # a duplicate result: the exact join words the error
            # only duplicates within each query's first -M documents count
            pos = np.empty(n_run, dtype=np.int64)
            pos[order if order is not None else np.arange(n_run)] = np.arange(n_run)
            a, b = rdup[0][dup], rdup[1][dup]
            if (sel[pos[a]] & sel[pos[b]]).any():
                raise _Collision
    if sel is not None:
        rq, jr = rq[sel], jr[sel]
    return jr, rq


def _judge_exact(qrels: Judgments, run: Run, qi: np.ndarray, qd: Any, rel: np.ndarray, rq: np.ndarray, rd: Any,
                 order: np.ndarray | None, opts: Options, qids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(judgment, query) of each ranked run row, -M applied, on exact dictionary codes of the docnos.

    Raises the DataError trec_eval's duplicate check calls for.
    """
    import pyarrow as pa

    nq = len(qids)
    both = compute("dictionary_encode", pa.chunked_array(rd.chunks + qd.chunks))
    nd = max(len(both.chunk(0).dictionary) if both.num_chunks else 0, 1)  # one dictionary for all chunks
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in both.chunks]).astype(np.int64)
    del both
    dr, dq = codes[: len(rd)], codes[len(rd):]
    qkey = qi.astype(np.int64) * nd + dq
    dup = _first_duplicate(qkey)
    if dup is not None:
        raise DataError(f"qrels file {qrels.path!r}: document {qd[dup].as_py().decode('utf-8', 'replace')!r} is "
                        f"judged twice for query {qids[qi[dup]]!r}; trec_eval stops there ('duplicate docs'). "
                        "Keep one judgment.")
    if order is None:
        order = np.arange(rq.size)
    rq, dr = rq[order], dr[order]
    sel = _cut(rq, nq, opts)
    if sel is not None:
        rq, dr, order = rq[sel], dr[sel], order[sel]
    rkey = rq.astype(np.int64) * nd + dr
    dup = _first_duplicate(rkey)
    if dup is not None:
        raise DataError(f"run file {run.path!r}: document {rd[int(order[dup])].as_py().decode('utf-8', 'replace')!r} "
                        f"is retrieved twice for query {qids[rq[dup]]!r}; trec_eval stops there ('duplicate docs'). "
                        "Keep one line.")
    qorder = np.argsort(qkey)
    skey, srel = qkey[qorder], rel[qorder]
    pos = np.minimum(np.searchsorted(skey, rkey), max(skey.size - 1, 0))
    found = skey[pos] == rkey if skey.size else np.zeros(rkey.size, dtype=bool)
    jr = srel[pos]
    return np.where(found, np.where(jr < 0, UNJUDGED, jr), NONPOOL).astype(np.int64), rq
