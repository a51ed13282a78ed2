"""The fast (qid, docno) join of a TREC run with its qrels, on 64-bit hashes.

Narrow on purpose: :func:`join` (what :func:`auditor.loaders.join_run_qrels` calls),
:func:`has_duplicate_pairs` (the fast reader's duplicate check) and :func:`pair_keys` are all
the rest of the package uses, and the tests compare :func:`join` with the plain dictionary join
(:func:`auditor.loaders.trec.reference_join`) on random inputs, so everything here may be
rewritten freely.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from auditor._arrow import compute, from_numpy, to_numpy
from auditor.errors import DataError

if TYPE_CHECKING:  # imported where used: audit trec-eval hashes with this module without the loaders
    from auditor.loaders.trec import TrecJoin, TrecTable

# Joining a run with its qrels by (qid, docno) strings is the slow part of evaluation when done
# with hash tables of Python or Arrow strings. Instead every string is hashed to 64 bits with
# vectorized numpy over Arrow's buffers (8 bytes per step), and joins, grouping and duplicate
# checks work on integers. Hashes are only a fast path: every match is then confirmed by
# comparing the strings themselves, and any collision falls back to exact dictionary encoding.
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xBF58476D1CE4E5B9)
_K3 = np.uint64(0x94D049BB133111EB)
_K4 = np.uint64(0xD6E8FEB86659FD93)
_HASH_CHUNK = 1 << 16
_MERGE_CHUNK = 1 << 18
_BYTE_MASKS = np.array([0] + [(1 << (8 * i)) - 1 for i in range(1, 8)] + [(1 << 64) - 1], dtype=np.uint64)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer (in place on a fresh array)."""
    h ^= h >> np.uint64(30)
    h *= _K3
    h ^= h >> np.uint64(27)
    h *= _K2
    h ^= h >> np.uint64(31)
    return h


def _run_values(vals: np.ndarray, firsts: np.ndarray, a: int, b: int) -> np.ndarray:
    """Per-row values for rows ``a:b`` from one value per run (runs start at ``firsts``, sorted)."""
    r0 = max(int(np.searchsorted(firsts, a, side="right")) - 1, 0)
    r1 = int(np.searchsorted(firsts, b, side="left"))
    starts = np.maximum(firsts[r0:r1], a)
    ends = np.append(firsts[r0 + 1:r1], b) if r1 > r0 else np.zeros(0, np.int64)
    ends = np.minimum(ends, b)
    return np.repeat(vals[r0:r1], ends - starts)


def _hash_strings(arr: Any, seed: np.ndarray | None = None, *, run_seed: tuple[np.ndarray, np.ndarray] | None = None,
                  out: np.ndarray | None = None) -> np.ndarray:
    """uint64 hash per string of an Arrow string (Chunked)Array, shape (n,).

    ``seed`` (n,) is mixed into each hash; ``run_seed = (values, first_rows)`` does the same with
    one seed per run of rows (row ``i`` takes the value of the last run starting at or before
    it) without materializing the per-row array. Processed in cache-sized chunks of strings,
    8 bytes per step, reading Arrow's buffers in place (no copy of the string data). ``out``
    (uint64, shape (n,)) receives the hashes when given.
    """
    import pyarrow as pa

    if out is None:
        out = np.empty(len(arr), dtype=np.uint64)
    if isinstance(arr, pa.ChunkedArray):
        o = 0
        for ch in arr.chunks:
            k = len(ch)
            rs = None if run_seed is None else (run_seed[0], run_seed[1] - o)
            _hash_strings(ch, None if seed is None else seed[o:o + k], run_seed=rs, out=out[o:o + k])
            o += k
        return out
    n = len(arr)
    if n == 0:
        return out
    bufs = arr.buffers()
    odt = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    off = np.frombuffer(bufs[1], dtype=odt)[arr.offset:arr.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    base = int(off[0])
    end = int(off[-1])
    # words[i] = the 8 bytes from byte i (unaligned view of the buffer, no copy); the last few
    # strings, whose 8-byte reads would run past the buffer, are read from a small padded copy
    safe_end = max(base, end - 8 + 1)
    tail = np.zeros(end - safe_end + 16, dtype=np.uint8)
    tail[:end - safe_end] = data[safe_end:end]
    tail_words = np.ndarray((tail.size - 7,), dtype="<u8", buffer=tail, strides=(1,))
    if safe_end > base:
        words = np.ndarray((safe_end,), dtype="<u8", buffer=data, offset=0, strides=(1,))
    else:
        words = np.zeros(1, dtype=np.uint64)
    for c in range(0, n, _HASH_CHUNK):
        oc = off[c:c + _HASH_CHUNK + 1].astype(np.int64)
        st, ln = oc[:-1], np.diff(oc)
        h = ln.astype(np.uint64) * _K1
        if seed is not None:
            h ^= seed[c:c + _HASH_CHUNK] * _K4
        if run_seed is not None:
            h ^= _run_values(run_seed[0], run_seed[1], c, c + st.size) * _K4
        shortest, longest = int(ln.min()), int(ln.max())
        fixed = shortest == longest
        rem = None if fixed else ln.copy()
        st0, st_last = int(st[0]), int(st[-1])
        for j in range(0, longest, 8):
            if st_last + j < safe_end:  # every 8-byte read of this step lies inside the buffer
                if fixed:  # equal lengths: the words sit at a fixed stride, no index array
                    w = np.ndarray((st.size,), dtype="<u8", buffer=data, offset=st0 + j, strides=(longest,))
                else:
                    w = words[st + j]
            else:
                p = st + j
                inside = p < safe_end
                w = np.where(inside, words[np.minimum(p, words.size - 1)],
                             tail_words[np.clip(p - safe_end, 0, tail_words.size - 1)])
            if j + 8 > shortest:  # a new array (w may be a read-only view of Arrow's buffer)
                w = w & (_BYTE_MASKS[min(longest - j, 8)] if fixed else _BYTE_MASKS[np.minimum(rem, 8)])
            # polynomial step (the finalizer mixes); strings already consumed keep their hash,
            # which must not depend on the longest neighbour
            if j < shortest:
                h *= _K2
                h += w
            else:
                h = np.where(rem > 0, h * _K2 + w, h)
            if rem is not None:
                rem -= 8
                np.maximum(rem, 0, out=rem)
        out[c:c + _HASH_CHUNK] = _mix(h)
    return out


def pair_keys(t: TrecTable, out: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
    """64-bit hash of each (qid, docno) pair of ``t``, uint64 (n,) (into ``out`` when given), or of ``rows`` only."""
    first, lens, strings = t.qid_runs
    if rows is not None:  # a string's hash does not depend on its neighbours
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = np.asarray(rows, dtype=np.int64)
        seeds = _hash_strings(strings)[np.searchsorted(first, rows, side="right") - 1]
        return _hash_strings(pc.take(t.docno, from_numpy(rows)), seed=seeds)
    k = _hash_strings(t.docno, run_seed=(_hash_strings(strings), first), out=out)
    if out is not None and k is not out:
        out[:] = k
    return k


def _same_strings(a: Any, ia: np.ndarray, b: Any, ib: np.ndarray) -> np.ndarray:
    """Elementwise ``a[ia] == b[ib]`` for Arrow string arrays, shape (len(ia),) bool (exact)."""
    if len(ia) == 0:
        return np.zeros(0, dtype=bool)
    # Arrow's take + equal measured faster than comparing 8-byte words gathered with numpy;
    # chunks keep the gathered strings small
    out = np.empty(len(ia), dtype=bool)
    for c in range(0, len(ia), _MERGE_CHUNK):
        x = compute("take", a, from_numpy(ia[c:c + _MERGE_CHUNK]))
        y = compute("take", b, from_numpy(ib[c:c + _MERGE_CHUNK]))
        out[c:c + _MERGE_CHUNK] = to_numpy(compute("equal", x, y))
    return out


def has_duplicate_pairs(t: "TrecTable") -> bool:
    """Whether some (qid, docno) repeats (hash candidates confirmed on the strings)."""
    k = t.pair_key
    ks = np.sort(k)  # vectorized sort; the row order is only needed if something repeats
    if not (ks[1:] == ks[:-1]).any():
        return False
    order = np.argsort(k, kind="stable")
    ks = k[order]
    cand = np.flatnonzero(ks[1:] == ks[:-1])
    i, j = order[cand], order[cand + 1]
    same = _same_strings(t.qid, i, t.qid, j) & _same_strings(t.docno, i, t.docno, j)
    return bool(same.any())


def _codes(*arrays: Any) -> tuple[list[np.ndarray], Any]:
    """Dictionary-encode string arrays over their union: (int64 codes per array, dictionary)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(pa.chunked_array([a for a in arrays], type=pa.string()))
    dictionary = enc.chunk(0).dictionary if enc.num_chunks else pa.array([], pa.string())
    out = [c.indices.to_numpy().astype(np.int64) for c in enc.chunks]
    return out, dictionary


def _chunks(a: Any) -> list:
    import pyarrow as pa

    return list(a.chunks) if isinstance(a, pa.ChunkedArray) else [a]


class _HashCollision(Exception):
    pass


def _nondecreasing(key: np.ndarray) -> bool:
    return key.size < 2 or bool(np.all(key[1:] >= key[:-1]))


def _group_stable(rows: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``rows`` stably sorted by ``key`` (free when already sorted, as in grouped files)."""
    if _nondecreasing(key):
        return rows
    return rows[np.argsort(key, kind="stable")]


def _pair_candidates(get_kr: Callable[[], np.ndarray], get_kq: Callable[[], np.ndarray], nr: int, nq: int,
                     exact: bool = False) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray],
                                                   tuple[np.ndarray, np.ndarray]]:
    """Candidate matches and candidate duplicates of both files, from one sort of all pair keys.

    Every row of both files becomes one 64-bit word: the high bits of its pair key, then a side
    bit (qrels 0, run 1), then its row number; the words are sorted once (numpy's vectorized
    integer sort, no argsort). Rows whose high bits occur exactly twice are candidate pairs: a
    qrels row then a run row is a candidate match, two rows of one file a candidate duplicate.
    The caller confirms each on the strings; a failed candidate is simply nothing, because any
    true partner has the same full key, hence the same high bits, hence is in the same group.
    High-bit groups of three rows or more (rare: true duplicates, or chance) are resolved on the
    full keys; a full-key group of three or more is a hash collision (``_HashCollision``)
    unless ``exact`` (keys are then exact codes and such a group holds duplicates).

    ``get_kr(out=None, rows=None)`` / ``get_kq(...)`` give the run / qrels keys (uint64, shape
    (nr,) / (nq,)), written into ``out`` when given (so no full-size key array is held besides
    the sorted words), or the keys of just ``rows`` (for the rare groups).

    Returns
    -------
    run_rows, qrels_rows : ndarray of int, candidate matches
    qrels_dups, run_dups : (rows_a, rows_b) candidate duplicate pairs within each file
    """
    idt = np.int32 if max(nr, nq) < 2**31 else np.int64  # row ids: half the memory
    n = nr + nq
    none = np.zeros(0, dtype=idt)
    if nr == 0 or nq == 0 or n < 2:
        return none, none, (none, none), (none, none)
    bits = max(1, int(max(nr, nq) - 1).bit_length())
    low = np.uint64((1 << bits) - 1)
    sbit = np.uint64(1 << bits)
    lowside = np.uint64((1 << (bits + 1)) - 1)
    hi_mask = np.uint64(((1 << 64) - 1) ^ ((1 << (bits + 1)) - 1))
    s = np.empty(n, dtype=np.uint64)
    for part, get, run_side in ((s[:nq], get_kq, False), (s[nq:], get_kr, True)):
        get(part)  # the keys, written in place
        for c in range(0, part.size, _MERGE_CHUNK):  # chunked: no full-size temporaries
            o = part[c:c + _MERGE_CHUNK]
            o &= hi_mask
            o |= np.arange(c, c + o.size, dtype=np.uint64)
            if run_side:
                o |= sbit
    s.sort()
    # e[i]: row s[i] has the same high bits as s[i - 1] (e[0] = e[n] = False)
    e = np.zeros(n + 1, dtype=bool)
    for c in range(1, n, _MERGE_CHUNK):
        d = min(c + _MERGE_CHUNK, n)
        np.less_equal(np.bitwise_xor(s[c:d], s[c - 1:d - 1]), lowside, out=e[c:d])
    # matches pair distinct rows of both files: at most min(nr, nq) of them (untouched
    # capacity is never resident)
    run_rows, qrels_rows = np.empty(min(nr, nq), dtype=idt), np.empty(min(nr, nq), dtype=idt)
    n_match = 0
    qd_l: list[tuple[np.ndarray, np.ndarray]] = []
    rd_l: list[tuple[np.ndarray, np.ndarray]] = []

    def classify(a: np.ndarray, b: np.ndarray) -> None:
        nonlocal n_match
        sa, sb = (a & sbit) != 0, (b & sbit) != 0
        m = sb & ~sa  # sorted: a qrels row comes before a run row with the same high bits
        k = int(np.count_nonzero(m))
        np.bitwise_and(b[m], low, out=run_rows[n_match:n_match + k], casting="unsafe")
        np.bitwise_and(a[m], low, out=qrels_rows[n_match:n_match + k], casting="unsafe")
        n_match += k
        dq = ~sb
        if dq.any():
            qd_l.append(((a[dq] & low).astype(idt), (b[dq] & low).astype(idt)))
        if sa.any():
            rd_l.append(((a[sa] & low).astype(idt), (b[sa] & low).astype(idt)))

    big_starts: list[np.ndarray] = []
    for c0 in range(0, n - 1, _MERGE_CHUNK):  # pairs starting at rows c0 .. c1 - 1, chunk by chunk
        c1 = min(c0 + _MERGE_CHUNK, n - 1)
        head = e[c0 + 1:c1 + 1] & ~e[c0:c1]  # i opens a group of two or more
        more = e[c0 + 2:c1 + 2]  # ... of three or more
        three = head & more
        if three.any():
            big_starts.append(np.flatnonzero(three) + c0)
        head &= ~more
        ps = np.flatnonzero(head) + c0
        classify(s[ps], s[ps + 1])
    if big_starts:
        # groups of three rows or more: a matched pair plus a row whose high bits collide by
        # chance (about one such group per run at 2M + 2M rows), or duplicates. Resolved on
        # the full keys of just those rows.
        gs = np.concatenate(big_starts)
        ends = np.empty_like(gs)
        for i, g in enumerate(gs.tolist()):  # a group ends at the next row that opens one
            w = e[g + 1:g + 65]
            ends[i] = g + 1 + (int(np.argmin(w)) if not w.all() else int(np.flatnonzero(~e[g + 1:])[0]))
        gz = ends - gs
        idx = np.repeat(gs, gz) + (np.arange(int(gz.sum())) - np.repeat(np.cumsum(gz) - gz, gz))
        el = s[idx]
        del s, e
        side = (el & sbit) != 0
        row = (el & low).astype(np.int64)
        full = np.empty(el.size, dtype=np.uint64)
        full[side] = get_kr(rows=row[side])
        full[~side] = get_kq(rows=row[~side])
        o = np.lexsort((row, side, full))
        el, full = el[o], full[o]
        same = full[1:] == full[:-1]
        sub = np.flatnonzero(np.concatenate([[True], ~same]))
        ssz = np.diff(np.append(sub, el.size))
        if (ssz >= 3).any():
            if not exact:
                raise _HashCollision
            # exact keys: consecutive rows of one file with the same key are duplicates
            sd = (el & sbit) != 0
            p = np.flatnonzero(same & (sd[1:] == sd[:-1]))
            classify(el[p], el[p + 1])
        p2 = sub[ssz == 2]
        classify(el[p2], el[p2 + 1])

    def cat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        if not parts:
            return none, none
        return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])

    return run_rows[:n_match], qrels_rows[:n_match], cat(qd_l), cat(rd_l)


def _raise_duplicate(t: TrecTable, i: int, j: int) -> None:
    """Raise the DataError for rows ``i`` and ``j`` of ``t`` holding the same (qid, docno)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if os.path.isfile(t.path):
        from auditor.loaders.trec import read_trec_lines

        read_trec_lines(t.path, t.kind)  # names both lines
    first = t.qid_runs[0]
    q = t.qid_runs[2][int(np.searchsorted(first, i, side="right")) - 1].as_py()
    d = pc.take(t.docno, pa.array([i])).to_pylist()[0]
    raise DataError(f"document {d!r} appears twice for query {q!r} (rows {i + 1} and {j + 1}); "
                    "trec_eval refuses duplicates too.", path=t.path, field="docno",
                    fix="keep one line per (qid, docno).")


def join(qrels: TrecTable, run: TrecTable, *, key_mask: int | None = None) -> TrecJoin:
    """:func:`auditor.loaders.join_run_qrels`: hashed keys, or exact dictionary codes after a hash collision.

    ``key_mask`` keeps only those bits of every pair key: weakened keys collide often, which is
    how the tests reach the rare paths (high-bit groups of three, failed candidates, the exact
    fallback) and check that the result does not depend on the hash.
    """
    try:
        return _join(qrels, run, exact=False, key_mask=key_mask)
    except _HashCollision:  # astronomically rare; exact dictionary codes instead
        return _join(qrels, run, exact=True)


def _masked(get: Callable[..., np.ndarray], mask: int | None) -> Callable[..., np.ndarray]:
    if mask is None:
        return get
    m = np.uint64(mask)

    def masked(out: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        k = get(out=out, rows=rows)
        if out is not None and rows is None:
            out &= m
            return out
        return k & m  # a new array: ``k`` may be the table's cached keys
    return masked


def _join(qrels: TrecTable, run: TrecTable, exact: bool, key_mask: int | None = None) -> TrecJoin:
    import pyarrow as pa
    import pyarrow.compute as pc

    nr, nq = len(run), len(qrels)
    fr, lr, sr = run.qid_runs
    fq, lq, sq = qrels.qid_runs
    # ---- exact query codes: dictionary over the qid runs of both files (about 2 x n_queries strings)
    firsts = pa.chunked_array(_chunks(sr) + _chunks(sq), type=pa.string()).combine_chunks()
    enc = pc.dictionary_encode(firsts)
    inv = enc.indices.to_numpy().astype(np.int64)
    nu = len(enc.dictionary)
    code_r_run, code_q_run = inv[:fr.size], inv[fr.size:]
    # ---- documents: candidate (run row, qrels row) pairs and duplicates, from one sort
    if exact:
        (dq, dr), dd = _codes(qrels.docno, run.docno)  # exact ints: every candidate is a match
        nd = np.uint64(max(len(dd), 1))
        def exact_key(codes: np.ndarray, lens: np.ndarray, docs: np.ndarray) -> Callable[..., np.ndarray]:
            first = np.cumsum(lens) - lens

            def get(out: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
                if rows is not None:
                    run_of = np.searchsorted(first, rows, side="right") - 1
                    return codes[run_of].astype(np.uint64) * nd + docs[rows].astype(np.uint64)
                k = np.repeat(codes.astype(np.uint64), lens) * nd + docs.astype(np.uint64)
                if out is not None:
                    out[:] = k
                return k
            return get

        rr, qq, qdup, rdup = _pair_candidates(exact_key(code_r_run, lr, dr), exact_key(code_q_run, lq, dq),
                                              nr, nq, exact=True)
        del dq, dr, dd
    else:
        rr, qq, qdup, rdup = _pair_candidates(_masked(run.compute_pair_key, key_mask),
                                              _masked(qrels.compute_pair_key, key_mask), nr, nq)
        run.drop_caches()
        qrels.drop_caches()
    # duplicates are errors (trec_eval refuses them); the qrels first, as they are read first
    for t, codes, (i, j) in ((qrels, code_q_run, qdup), (run, code_r_run, rdup)):
        if i.size:
            dup = (t.row_qid_codes(i, codes) == t.row_qid_codes(j, codes)) & _same_strings(t.docno, i, t.docno, j)
            if dup.any():
                k = int(np.flatnonzero(dup)[0])
                _raise_duplicate(t, int(min(i[k], j[k])), int(max(i[k], j[k])))
    in_run = np.zeros(nu, dtype=bool)
    in_run[code_r_run] = True
    in_qrels = np.zeros(nu, dtype=bool)
    in_qrels[code_q_run] = True
    both = in_run & in_qrels
    if not both.any():
        raise DataError("no query of the run appears in the qrels (trec_eval evaluates only queries in both files).",
                        path=run.path, field="qid",
                        fix=f"check that {qrels.path} holds the judgments for this run (query ids must match exactly).")
    # number evaluated queries by first appearance in the run
    first_run_pos = np.full(nu, np.iinfo(np.int64).max)
    np.minimum.at(first_run_pos, code_r_run, np.arange(code_r_run.size))
    ev_codes = np.flatnonzero(both)
    ev_codes = ev_codes[np.argsort(first_run_pos[ev_codes], kind="stable")]
    idt = np.int32 if max(nr, nq) < 2**31 else np.int64  # row and query numbers: half the memory
    qnum = np.full(nu, -1, dtype=idt)
    qnum[ev_codes] = np.arange(ev_codes.size)
    row_q_run = np.repeat(qnum[code_r_run], lr)
    row_q_qrels = np.repeat(qnum[code_q_run], lq)
    keep = row_q_run >= 0
    # back to run-row order: sequential string access below, and sorted outputs
    match = np.full(nr, -1, dtype=idt)
    match[rr] = qq
    del rr, qq
    match[~keep] = -1
    hits = np.flatnonzero(match >= 0).astype(idt)
    qrow_hits = match[hits]
    del match
    if not exact and hits.size:
        # candidates: confirm on the exact query codes and the docno strings; a failed candidate
        # is no match (a true partner would have been in its group)
        ok = (row_q_run[hits] == row_q_qrels[qrow_hits]) & _same_strings(run.docno, hits, qrels.docno, qrow_hits)
        if not ok.all():
            hits, qrow_hits = hits[ok], qrow_hits[ok]
    retrieved_q = np.zeros(nq, dtype=bool)
    retrieved_q[qrow_hits] = True
    unret = np.flatnonzero((row_q_qrels >= 0) & ~retrieved_q).astype(idt)
    del retrieved_q
    unret = _group_stable(unret, row_q_qrels[unret])
    unret_qidx = row_q_qrels[unret]
    del row_q_qrels
    labels = np.zeros(nr)
    for c in range(0, hits.size, _MERGE_CHUNK):  # chunked: no full-size temporary
        labels[hits[c:c + _MERGE_CHUNK]] = qrels.value[qrow_hits[c:c + _MERGE_CHUNK]]
    del hits, qrow_hits
    if keep.all() and _nondecreasing(row_q_run):  # every run row kept, already grouped: no copies
        run_rows, run_qidx, run_labels = np.arange(nr, dtype=idt), row_q_run, labels
    else:
        run_rows = np.flatnonzero(keep).astype(idt)
        run_rows = _group_stable(run_rows, row_q_run[run_rows])
        run_qidx, run_labels = row_q_run[run_rows], labels[run_rows]
    del keep, labels, row_q_run
    first_idx = np.zeros(nu, dtype=np.int64)
    u_, f_ = np.unique(inv, return_index=True)  # first run (of either file) holding each code
    first_idx[u_] = f_
    qids = np.asarray(pc.take(firsts, pa.array(first_idx[ev_codes])).to_numpy(zero_copy_only=False)).astype(str)
    from auditor.loaders.trec import TrecJoin

    return TrecJoin(qids=qids, run_rows=run_rows, run_qidx=run_qidx, run_labels=run_labels,
                    unret_rows=unret, unret_qidx=unret_qidx,
                    n_run_queries_without_qrels=int((in_run & ~in_qrels).sum()))
