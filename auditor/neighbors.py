"""Exact cosine nearest-neighbour search by blocked matrix products, memory-bounded.

The isolation audit asks, for every test row, "how close is the closest training row?" on
data sets of 10^5-10^6 rows. The answer must be *exact* (every pair is compared; no
approximate index that could miss the one copied row) and fit in a fixed memory budget.

Method: rows are L2-normalised once (so a dot product is the cosine), then the
``queries x base`` similarity matrix is produced one block at a time with a float32 matrix
product (BLAS on the CPU, cuBLAS through torch on a GPU) and reduced to a running top-``k``
per query row before the next block is computed. Only one ``block_queries x block_base``
block exists at any time, so memory is ``O(n_base * d)`` for the normalised base plus one
block, whatever the number of query rows. Blocks are sized to stay in the last-level cache
(defaults 1024 x 4096 floats = 16 MB), which is what makes the row-wise max as cheap as the
product itself.

Exclusions: pairs can be barred from being neighbours by key equality (``exclude``), e.g.
"not a row of the same query" or "not an identical row" (identical rows are found by hash
elsewhere); barred pairs are masked inside each block, never materialised.

Accuracy: the float32 search's returned similarities are recomputed in float64 for the chosen
pairs (``refine=True``), so values are exact to ~1e-15, while the identity of the neighbour can
differ from a float64 search only between candidates whose cosines agree to ~1e-6 (float32
rounding of a 512-term dot product).

On CPUs that multiply bfloat16 natively (AVX512-BF16, AMX), ``precision="auto"`` screens
instead: every pair is scored by a bfloat16 product (a third of the float32 product's cost),
whose error is provably below :data:`BF16_ERROR` for unit rows; each row keeps the candidates
within ``2 * BF16_ERROR`` of its running k-th best screened score (per block: the 8 best, or a
full scan of the block when all 8 clear the bar), and the candidates are rescored exactly in
float64. No true top-k pair can fall below the bar, so the result is the exact float64 answer
(ties: lower index), not an approximation.

Above a size threshold (the isolation audit's ``near_dup_exact_max_rows``) the all-pairs product
is replaced by :func:`build_forest` / :func:`forest_neighbors`: random-projection trees over both
row sets give each query row the base rows sharing a leaf with it (O((n + m) log n) candidates
instead of n x m pairs), every candidate is scored exactly and the chosen pair rescored in
float64. Reported similarities stay exact for the pairs found; a missed neighbour only lowers a
row's similarity. Recall against this module's exact search is measured in
``benchmarks/bench_near_dup.py``.

Compared with scikit-learn's ``NearestNeighbors(algorithm="brute", metric="cosine")`` (which
re-normalises the base for every chunk of queries, converts similarities to distances and
runs an ``argpartition`` over the whole chunk) this is several times faster; see
``benchmarks/bench_neighbors.py`` and ``docs/PERFORMANCE.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = ["NeighborResult", "cosine_neighbors", "normalize_rows", "group_normalized", "pick_backend",
           "CandidateForest", "build_forest", "forest_neighbors"]

_F32 = np.float32
_VERIFY_ROWS = 32_768  # rows per block of the forest search's float64 verification (2 x 35 MB at d = 136)


@dataclass(frozen=True)
class NeighborResult:
    """Top-``k`` neighbours of each query row, best first.

    Attributes
    ----------
    similarity : ndarray, shape (n_queries, k), float64
        Cosine similarity; NaN where fewer than ``k`` admissible base rows exist.
    index : ndarray, shape (n_queries, k), int64
        Row of ``base``; -1 where ``similarity`` is NaN.
    backend : str
        ``"numpy"`` or ``"torch:<device>"``.
    peak_block_bytes : int
        Bytes of the largest similarity block held at once (the memory bound's variable part).
    """

    similarity: np.ndarray
    index: np.ndarray
    backend: str
    peak_block_bytes: int


def normalize_rows(X: np.ndarray, *, dtype: type = np.float32) -> np.ndarray:
    """Rows scaled to unit L2 norm, shape (n, d), in ``dtype``. All-zero rows stay zero."""
    X = np.asarray(X)
    out = np.array(X, dtype=dtype, copy=True)
    nrm = np.sqrt(np.einsum("ij,ij->i", out, out, dtype=np.float64))
    # scale in place (a boolean-indexed division would copy the whole matrix twice)
    inv = np.divide(1.0, nrm, out=np.zeros_like(nrm), where=nrm > 0).astype(dtype)
    out *= inv[:, None]
    return out


def group_normalized(features: Mapping[str, np.ndarray], groups: Sequence[str] | None = None,
                     *, dtype: type = np.float32) -> np.ndarray:
    """Concatenate feature groups after L2-normalising each row within each group.

    Each group is divided by ``sqrt(G)`` as well, so the concatenated row has unit norm (when
    no group is all-zero) and its cosine with another row is the *mean of the per-group
    cosines*: a 512-d image embedding does not drown a 10-d price group.

    Parameters
    ----------
    features : dict[str, ndarray of shape (n, d_g)]
    groups : list of str, optional
        Groups to use (all, in dict order, by default).

    Returns
    -------
    ndarray, shape (n, sum d_g)
    """
    gs = list(features) if groups is None else list(groups)
    if not gs:
        raise ValueError("group_normalized needs at least one feature group")
    scale = dtype(1.0 / np.sqrt(len(gs)))
    widths = [int(np.shape(features[g])[1]) for g in gs]
    n = int(np.shape(features[gs[0]])[0])
    # one output, each group cast into its columns and scaled there (no per-group copies to concatenate)
    out = np.empty((n, sum(widths)), dtype=dtype)
    c = 0
    for g, w in zip(gs, widths):
        sl = out[:, c:c + w]
        sl[...] = features[g]
        nrm = np.sqrt(np.einsum("ij,ij->i", sl, sl, dtype=np.float64))
        inv = np.divide(1.0, nrm, out=np.zeros_like(nrm), where=nrm > 0).astype(dtype)
        sl *= inv[:, None]
        if len(gs) > 1:
            sl *= scale
        c += w
    return out


def pick_backend(backend: str = "auto", device: str = "cpu") -> tuple[str, str]:
    """Resolve ``(backend, device)``: torch only when asked for or when a CUDA device is requested.

    ``device="auto"`` means CUDA when torch sees one, else the CPU. On the CPU, numpy (BLAS)
    is the default: it is as fast as torch there and needs no tensor copies.
    """
    dev = device or "cpu"
    if dev == "auto":
        try:
            import torch

            dev = "cuda" if torch.cuda.is_available() else "cpu"
        except Exception:  # torch missing or broken: the CPU path needs none of it
            dev = "cpu"
    if backend == "auto":
        backend = "torch" if dev.startswith("cuda") else "numpy"
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    if backend == "numpy" and dev != "cpu":
        raise ValueError(f"the numpy backend runs on the CPU only (device {dev!r} requested)")
    return backend, dev


def _prepare_exclusions(exclude, n_q: int, n_b: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for pair in exclude or ():
        qk, bk = (np.asarray(pair[0]), np.asarray(pair[1]))
        if qk.shape != (n_q,) or bk.shape != (n_b,):
            raise ValueError(f"exclude keys must have shapes ({n_q},) and ({n_b},), got {qk.shape} and {bk.shape}")
        if qk.dtype.kind in "OUS" or bk.dtype.kind in "OUS":
            # compare strings through shared integer codes: masks are then cheap integer compares
            _, codes = np.unique(np.concatenate([qk.astype(str), bk.astype(str)]), return_inverse=True)
            qk, bk = codes[:n_q], codes[n_q:]
        # a key set that never meets cannot mask anything: skip its per-block compare
        if np.intersect1d(qk, bk).size:
            out.append((qk, bk))
    return out


def _merge_topk(best_v: np.ndarray, best_i: np.ndarray, v: np.ndarray, i: np.ndarray, k: int):
    cv = np.concatenate([best_v, v], axis=1)
    ci = np.concatenate([best_i, i], axis=1)
    if cv.shape[1] > k:
        part = np.argpartition(-cv, k - 1, axis=1)[:, :k]
        cv = np.take_along_axis(cv, part, axis=1)
        ci = np.take_along_axis(ci, part, axis=1)
    return cv, ci


def cosine_neighbors(queries: np.ndarray, base: np.ndarray, k: int = 1, *,
                     exclude: Sequence[tuple[np.ndarray, np.ndarray]] = (),
                     normalized: bool = False, block_queries: int = 1024, block_base: int = 4096,
                     memory_limit_mb: float = 1024.0, backend: str = "auto", device: str = "cpu",
                     precision: str = "auto", refine: bool = True) -> NeighborResult:
    """Exact top-``k`` cosine neighbours in ``base`` of every row of ``queries``.

    Parameters
    ----------
    queries : ndarray, shape (m, d)
    base : ndarray, shape (n, d)
    k : int, default 1
    exclude : sequence of (query_keys (m,), base_keys (n,)), optional
        A pair (i, j) is never returned when ``query_keys[i] == base_keys[j]`` for any of the
        given key pairs (e.g. query ids, to find the nearest row of *another* query).
    normalized : bool, default False
        Rows are already unit-norm float32 (skip the normalising copy).
    block_queries, block_base : int, default 1024 and 4096
        Block shape of the similarity matrix (float32; 16 MB by default).
    memory_limit_mb : float, default 1024
        Budget for the working copies (normalised base and query block, one similarity block).
        When the normalised float32 copy of ``base`` would exceed half of it, base blocks are
        normalised on the fly instead (slower for float64 input, same result).
    backend : {"auto", "numpy", "torch"}, default "auto"
        "auto" = numpy on the CPU, torch on a CUDA device.
    device : str, default "cpu"
        "cpu", "cuda", "cuda:1" or "auto".
    precision : {"auto", "float32", "bf16"}, default "auto"
        "bf16": screen every pair with a bfloat16 matrix product (float32 accumulation), keep
        every candidate within ``2 * BF16_ERROR`` of the running k-th best screened value, and
        rescore the candidates exactly in float64 -- the same neighbours as an exact search
        (the screened value of any pair is within ``BF16_ERROR`` of its cosine, so no true
        top-k pair can fall below the cut), at a third of the float32 product's cost on CPUs
        with native bfloat16 (AVX512-BF16 / AMX). "auto" uses it on such CPUs (torch needed)
        for searches of at least ``BF16_MIN_WORK`` (1e10) multiply-adds, float32 elsewhere and
        on GPUs.
    refine : bool, default True
        Recompute the returned similarities in float64 (always done by the bf16 path).

    Returns
    -------
    NeighborResult
        ``similarity`` and ``index`` of shape (m, k), sorted by similarity descending (ties:
        lower base index first).

    Raises
    ------
    ValueError
        Mismatched widths, ``k < 1``, or a budget too small for one block.
    """
    q = np.asarray(queries)
    b = np.asarray(base)
    if q.ndim != 2 or b.ndim != 2:
        raise ValueError(f"queries and base must be 2-D, got shapes {q.shape} and {b.shape}")
    if q.shape[1] != b.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} columns but base has {b.shape[1]}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    m, n = q.shape[0], b.shape[0]
    d = q.shape[1]
    backend, dev = pick_backend(backend, device)
    excl = _prepare_exclusions(exclude, m, n)
    budget = float(memory_limit_mb) * 2**20
    bq = max(1, min(int(block_queries), m))
    bb = max(1, min(int(block_base), n))
    # the similarity block (+ one boolean mask per exclusion) and a query block must fit
    per_block = bq * bb * (4 + len(excl)) + bq * d * 4
    while per_block > budget / 2 and (bq > 64 or bb > 256):
        if bb > 256:
            bb //= 2
        else:
            bq //= 2
        per_block = bq * bb * (4 + len(excl)) + bq * d * 4
    if per_block > budget:
        raise ValueError(f"memory_limit_mb={memory_limit_mb} cannot hold one {bq}x{bb} block of width {d}")
    if precision not in ("auto", "float32", "bf16"):
        raise ValueError(f"precision must be 'auto', 'float32' or 'bf16', got {precision!r}")
    kk = min(k, n)
    # "auto" screens only where it pays: native bf16 and enough work to amortise importing torch
    # and its kernel set-up (~2 s), i.e. >= 1e10 multiply-adds (1,000 x 20,000 x 512)
    auto_bf16 = precision == "auto" and cpu_has_native_bf16() and float(m) * n * d >= BF16_MIN_WORK
    use_bf16 = (backend == "numpy" and (precision == "bf16" or auto_bf16)
                and n * d * 2 <= budget - per_block and _torch_available())
    if use_bf16:
        sim, idx, abandoned = _search_bf16_screen(q, b, normalized, kk, excl, bq, bb)
        label = "numpy+torch-bf16-screen"
        if abandoned.size:
            rest = cosine_neighbors(q[abandoned], b, kk, exclude=[(qk[abandoned], bk) for qk, bk in excl],
                                    normalized=normalized, block_queries=block_queries, block_base=block_base,
                                    memory_limit_mb=memory_limit_mb, backend="numpy", precision="float32",
                                    refine=True)
            ok = np.isfinite(rest.similarity)
            sim[abandoned] = np.where(ok, rest.similarity, -np.inf)
            idx[abandoned] = rest.index
            label += f" ({abandoned.size} of {m} rows by float32: too alike to screen)"
        if kk < k:
            sim = np.concatenate([sim, np.full((m, k - kk), -np.inf)], axis=1)
            idx = np.concatenate([idx, np.full((m, k - kk), -1, dtype=np.int64)], axis=1)
        bad = ~np.isfinite(sim)
        idx[bad] = -1
        sim[bad] = np.nan
        return NeighborResult(similarity=sim, index=idx, backend=label,
                              peak_block_bytes=int(per_block))
    materialise = normalized or (n * d * 4 <= budget - per_block)
    if normalized:
        bn = b if b.dtype == _F32 else b.astype(_F32)
        inv_b = None
    elif materialise:
        bn = normalize_rows(b)
        inv_b = None
    else:
        bn = b  # normalised block by block
        nrm = np.sqrt(np.einsum("ij,ij->i", b, b, dtype=np.float64))
        inv_b = np.where(nrm > 0, 1.0 / np.where(nrm > 0, nrm, 1.0), 0.0).astype(_F32)
    if backend == "torch":
        sim, idx = _search_torch(q, bn, inv_b, normalized, kk, excl, bq, bb, dev)
    else:
        sim, idx = _search_numpy(q, bn, inv_b, normalized, kk, excl, bq, bb)
    if kk < k:  # fewer base rows than k
        sim = np.concatenate([sim, np.full((m, k - kk), -np.inf)], axis=1)
        idx = np.concatenate([idx, np.full((m, k - kk), -1, dtype=np.int64)], axis=1)
    bad = ~np.isfinite(sim)
    idx[bad] = -1
    sim = sim.astype(np.float64)
    if refine and m and (~bad).any():
        sim = _refine(q, b, idx, normalized)
    sim[bad] = np.nan
    label = "numpy" if backend == "numpy" else f"torch:{dev}"
    return NeighborResult(similarity=sim, index=idx, backend=label, peak_block_bytes=int(per_block))


def _query_block(q: np.ndarray, s: slice, normalized: bool) -> np.ndarray:
    blk = q[s]
    if normalized:
        return np.ascontiguousarray(blk, dtype=_F32)
    return normalize_rows(blk)


def _search_numpy(q, bn, inv_b, normalized, k, excl, bq, bb):
    m, n = q.shape[0], bn.shape[0]
    out_v = np.empty((m, k), dtype=_F32)
    out_i = np.empty((m, k), dtype=np.int64)
    for qs in range(0, m, bq):
        sl = slice(qs, min(qs + bq, m))
        a = _query_block(q, sl, normalized)
        rows = a.shape[0]
        best_v = np.full((rows, k), -np.inf, dtype=_F32)
        best_i = np.full((rows, k), -1, dtype=np.int64)
        for bs in range(0, n, bb):
            be = min(bs + bb, n)
            blk = bn[bs:be]
            if inv_b is not None:
                blk = blk.astype(_F32, copy=False)
            S = a @ blk.T  # (rows, be - bs) float32
            if inv_b is not None:
                S *= inv_b[bs:be]
            for qk, bk in excl:
                S[qk[sl, None] == bk[None, bs:be]] = -np.inf
            if k == 1:
                j = S.argmax(axis=1)
                v = S[np.arange(rows), j]
                # strictly greater: the earliest (lowest index) of equal maxima wins
                upd = v > best_v[:, 0]
                best_v[upd, 0] = v[upd]
                best_i[upd, 0] = j[upd] + bs
            else:
                w = be - bs
                if w > k:
                    part = np.argpartition(-S, k - 1, axis=1)[:, :k]
                    v = np.take_along_axis(S, part, axis=1)
                    j = part + bs
                else:
                    v = S
                    j = np.broadcast_to(np.arange(bs, be), S.shape)
                best_v, best_i = _merge_topk(best_v, best_i, v, j, k)
        if k > 1:
            # descending similarity, ties by ascending index
            order = _row_lexsort(best_v, best_i)
            best_v = np.take_along_axis(best_v, order, axis=1)
            best_i = np.take_along_axis(best_i, order, axis=1)
        out_v[sl] = best_v
        out_i[sl] = best_i
    return out_v, out_i


def _row_lexsort(v: np.ndarray, i: np.ndarray) -> np.ndarray:
    """Per row: order by v descending, then i ascending (-inf entries last)."""
    o1 = np.argsort(i, axis=1, kind="stable")
    v1 = np.take_along_axis(v, o1, axis=1).astype(np.float64)
    o2 = np.argsort(-v1, axis=1, kind="stable")
    return np.take_along_axis(o1, o2, axis=1)


def _search_torch(q, bn, inv_b, normalized, k, excl, bq, bb, dev):
    import torch

    m, n = q.shape[0], bn.shape[0]
    out_v = np.empty((m, k), dtype=_F32)
    out_i = np.empty((m, k), dtype=np.int64)
    tdev = torch.device(dev)
    # keep the whole normalised base on the device when it was materialised (GPU memory is
    # the budget's concern on a GPU: one copy of the base plus one block)
    base_t = torch.from_numpy(np.ascontiguousarray(bn, dtype=_F32)).to(tdev) if inv_b is None else None
    inv_t = None if inv_b is None else torch.from_numpy(inv_b).to(tdev)
    excl_t = [(torch.from_numpy(np.asarray(qk)).to(tdev), torch.from_numpy(np.asarray(bk)).to(tdev)) for qk, bk in excl]
    with torch.inference_mode():
        if dev.startswith("cuda"):
            # exact float32 products: TF32 would round inputs to 10 mantissa bits
            prev = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = False
        try:
            for qs in range(0, m, bq):
                qe = min(qs + bq, m)
                a = torch.from_numpy(_query_block(q, slice(qs, qe), normalized)).to(tdev)
                rows = qe - qs
                best_v = torch.full((rows, k), -float("inf"), device=tdev)
                best_i = torch.full((rows, k), -1, dtype=torch.int64, device=tdev)
                for bs in range(0, n, bb):
                    be = min(bs + bb, n)
                    if base_t is not None:
                        blk = base_t[bs:be]
                    else:
                        blk = torch.from_numpy(np.ascontiguousarray(bn[bs:be], dtype=_F32)).to(tdev)
                    S = a @ blk.T
                    if inv_t is not None:
                        S *= inv_t[bs:be]
                    for qk, bk in excl_t:
                        S.masked_fill_(qk[qs:qe, None] == bk[None, bs:be], -float("inf"))
                    kk = min(k, be - bs)
                    v, j = torch.topk(S, kk, dim=1, sorted=False)
                    cv = torch.cat([best_v, v], dim=1)
                    ci = torch.cat([best_i, j + bs], dim=1)
                    # ties: prefer the lower index (stable order of a descending sort by value
                    # after an ascending sort by index)
                    o = torch.argsort(ci, dim=1)
                    cv, ci = torch.gather(cv, 1, o), torch.gather(ci, 1, o)
                    o = torch.argsort(cv, dim=1, descending=True, stable=True)[:, :k]
                    best_v, best_i = torch.gather(cv, 1, o), torch.gather(ci, 1, o)
                out_v[qs:qe] = best_v.cpu().numpy()
                out_i[qs:qe] = best_i.cpu().numpy()
        finally:
            if dev.startswith("cuda"):
                torch.backends.cuda.matmul.allow_tf32 = prev
    return out_v, out_i


def _refine(q: np.ndarray, b: np.ndarray, idx: np.ndarray, normalized: bool) -> np.ndarray:
    """float64 cosine of the chosen pairs, shape like ``idx`` (-inf where idx is -1)."""
    m, k = idx.shape
    out = np.full((m, k), -np.inf)
    ok = idx >= 0
    rows, cols = np.nonzero(ok)
    if rows.size == 0:
        return out
    # chunk so the gathered float64 rows stay small
    step = max(1, (64 * 2**20) // max(1, q.shape[1] * 16))
    for s in range(0, rows.size, step):
        r = rows[s:s + step]
        c = cols[s:s + step]
        x = np.asarray(q[r], dtype=np.float64)
        y = np.asarray(b[idx[r, c]], dtype=np.float64)
        num = np.einsum("ij,ij->i", x, y)
        if normalized:
            out[r, c] = num
        else:
            den = np.sqrt(np.einsum("ij,ij->i", x, x) * np.einsum("ij,ij->i", y, y))
            out[r, c] = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return out


# --------------------------------------------------------------------------- bf16 screening
#: Bound on |bf16-screened cosine - cosine| for unit-norm rows: inputs rounded to bfloat16
#: (unit roundoff u = 2**-8) give a product error <= (2u + u**2) * sum|a_i b_i| <= 2u + u**2
#: (Cauchy-Schwarz, unit rows); float32 accumulation adds <= d * 2**-24 (3e-5 at d = 512); the
#: bfloat16 output adds u. Total 0.01176 at d = 512; 0.0125 leaves room up to d ~ 10,000.
#: Measured maxima: 0.0047 (d = 16), 0.0023 (d = 512, positive features).
BF16_ERROR = 0.0125

_BF16_FLAGS: bool | None = None

#: ``precision="auto"`` screens in bfloat16 only from this many multiply-adds (m * n * d) on.
BF16_MIN_WORK = 1e10


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bfloat16 natively (``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo).

    Elsewhere bfloat16 products are emulated and slower than float32, so "auto" keeps float32.
    """
    global _BF16_FLAGS
    if _BF16_FLAGS is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                flags = next((ln for ln in f if ln.startswith("flags")), "")
            _BF16_FLAGS = (" avx512_bf16" in flags) or (" amx_bf16" in flags)
        except OSError:
            _BF16_FLAGS = False
    return _BF16_FLAGS


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except Exception:  # not installed or broken: the float32 path needs none of it
        return False
    return True


def _exact_cos(b: np.ndarray, r: np.ndarray, c: np.ndarray, q_hat: np.ndarray, normalized: bool) -> np.ndarray:
    """float64 cosine of pairs (query row r, base row c), chunked; ``q_hat`` = normalised query rows."""
    out = np.empty(r.size)
    step = max(1, (32 * 2**20) // max(1, b.shape[1] * 8))
    for s in range(0, r.size, step):
        rr, cc = r[s:s + step], c[s:s + step]
        y = np.asarray(b[cc], dtype=np.float64)
        if not normalized:
            ny = np.sqrt(np.einsum("ij,ij->i", y, y))
            y = y / np.where(ny > 0, ny, 1.0)[:, None]
        out[s:s + step] = np.einsum("ij,ij->i", q_hat[rr], y)
    return out


def _search_bf16_screen(q, b, normalized, k, excl, bq, bb):
    """Exact top-k: bfloat16 screening of all pairs, float64 rescoring of the candidates.

    Returns ``(similarity, index, abandoned)``: ``abandoned`` lists the query rows of blocks
    where screening could not discriminate (most rows within ``2 * BF16_ERROR`` of their
    best, as on uncentred non-negative features whose cosines all lie in 0.90-0.97); the
    caller searches those rows with the float32 product instead, whose cost does not depend
    on how alike the rows are.
    """
    import torch

    m, n = q.shape[0], b.shape[0]
    two_delta = 2.0 * BF16_ERROR
    # the base as unit rows in bfloat16, built in chunks (n x d x 2 bytes; no float32 copy)
    base_bf = torch.empty((n, b.shape[1]), dtype=torch.bfloat16)
    for s0 in range(0, n, 16384):
        blk = b[s0:s0 + 16384]
        blk = np.ascontiguousarray(blk, dtype=_F32) if normalized else normalize_rows(blk)
        base_bf[s0:s0 + blk.shape[0]] = torch.from_numpy(blk).to(torch.bfloat16)
    out_v = np.full((m, k), -np.inf)
    out_i = np.full((m, k), -1, dtype=np.int64)
    abandoned: list[np.ndarray] = []
    with torch.inference_mode():
        for qs in range(0, m, bq):
            qe = min(qs + bq, m)
            sl = slice(qs, qe)
            a32 = _query_block(q, sl, normalized)
            a_hat = a32.astype(np.float64)
            if not normalized:  # float64 unit rows for the rescoring
                a_hat = np.asarray(q[sl], dtype=np.float64)
                na = np.sqrt(np.einsum("ij,ij->i", a_hat, a_hat))
                a_hat = a_hat / np.where(na > 0, na, 1.0)[:, None]
            a_bf = torch.from_numpy(a32).to(torch.bfloat16)
            rows = qe - qs
            top = np.full((rows, k), -np.inf, dtype=_F32)   # running top-k screened values
            cr: list[np.ndarray] = []
            cc: list[np.ndarray] = []
            cv: list[np.ndarray] = []
            stored = 0
            give_up = False
            for bs in range(0, n, bb):
                be = min(bs + bb, n)
                S = a_bf @ base_bf[bs:be].T  # bfloat16 (rows, w); float32 accumulation inside
                for qk, bk in excl:
                    S.masked_fill_(torch.from_numpy(qk[sl, None] == bk[None, bs:be]), -float("inf"))
                w = be - bs
                # one reduction per block: the T best screened values of each row (as cheap as a
                # max); a row needs a full scan of the block only when all T clear the bar
                T = min(w, max(8, 2 * k))
                tv, tj = torch.topk(S, T, dim=1, sorted=False)
                tv = tv.float().numpy()
                tj = tj.numpy()
                vs = -np.sort(-tv, axis=1)
                top = -np.sort(-np.concatenate([top, vs[:, :k]], axis=1), axis=1)[:, :k]
                thr = top[:, k - 1] - two_delta
                over = (vs[:, T - 1] >= thr) & np.isfinite(vs[:, T - 1]) if w > T else np.zeros(rows, dtype=bool)
                ok = (tv >= thr[:, None]) & np.isfinite(tv) & ~over[:, None]
                r, c = np.nonzero(ok)
                if r.size:
                    cr.append(r)
                    cc.append(tj[r, c] + bs)
                    cv.append(tv[r, c])
                    stored += r.size
                hot = np.flatnonzero(over)
                if hot.size > rows // 2 and w > T:  # the screen admits most of the block: no gain
                    give_up = True
                    break
                if hot.size:
                    sub = S[torch.from_numpy(hot)].float().numpy()
                    r, c = np.nonzero((sub >= thr[hot, None]) & np.isfinite(sub))
                    cr.append(hot[r])
                    cc.append(c + bs)
                    cv.append(sub[r, c])
                    stored += r.size
                if stored > 64 * rows * k:
                    # earlier blocks were admitted under a lower bar: drop what the current bar rejects
                    r_all, c_all, v_all = np.concatenate(cr), np.concatenate(cc), np.concatenate(cv)
                    keep = v_all >= (top[r_all, k - 1] - two_delta)
                    cr, cc, cv = [r_all[keep]], [c_all[keep]], [v_all[keep]]
                    stored = int(keep.sum())
                    if stored > 64 * rows * k:  # still too many: the rows are too alike to screen
                        give_up = True
                        break
            if give_up:
                abandoned.append(np.arange(qs, qe))
                continue
            if not cr:
                continue
            r_all, c_all, v_all = np.concatenate(cr), np.concatenate(cc), np.concatenate(cv)
            keep = np.isfinite(v_all) & (v_all >= (top[r_all, k - 1] - two_delta))
            r_all, c_all = r_all[keep], c_all[keep]
            exact = _exact_cos(b, r_all, c_all, a_hat, normalized)
            # per row: exact similarity descending, then base index ascending
            order = np.lexsort((c_all, -exact, r_all))
            r_s, c_s, e_s = r_all[order], c_all[order], exact[order]
            first = np.r_[0, np.flatnonzero(np.diff(r_s)) + 1]
            rank = np.arange(r_s.size) - np.repeat(first, np.diff(np.r_[first, r_s.size]))
            sel = rank < k
            out_v[qs + r_s[sel], rank[sel]] = e_s[sel]
            out_i[qs + r_s[sel], rank[sel]] = c_s[sel]
    return out_v, out_i, (np.concatenate(abandoned) if abandoned else np.empty(0, dtype=np.int64))


# --------------------------------------------------------------------------- candidate forest
# Above a size threshold the exact search's m x n products dominate an audit (quadratic: 586 s of
# a 1M-row run). The forest below finds *candidates* in O((n + m) log n) -- rows that fall in the
# same leaf of a random-projection tree -- and every candidate pair is then scored exactly (a
# float32 product, the chosen pair rescored in float64), so every similarity it reports is the
# true cosine of a real pair. What it can do is miss a pair: a row's reported neighbour is then a
# lower bound on its nearest one. Recall is measured, not assumed (benchmarks/bench_neighbors.py
# --near-copies, tests/test_neighbors.py).

@dataclass(frozen=True)
class CandidateForest:
    """Leaves of ``n_trees`` random-projection trees over the rows of several matrices ("parts").

    Rows are numbered across the parts in order (part 0's rows first). ``leaves[t]`` is
    ``(order, bounds)``: tree ``t``'s permutation of all rows and the start of each leaf in it.
    """

    n_rows: int
    part_offsets: tuple[int, ...]
    leaves: tuple[tuple[np.ndarray, np.ndarray], ...]
    leaf_size: int


def _principal_axes(parts: Sequence[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes (d, d) and their standard deviations (d,) of a sample of up to 4,096 rows."""
    total = sum(p.shape[0] for p in parts)
    pick = np.sort(rng.choice(total, size=min(total, 4096), replace=False))
    sample = _gather(parts, np.cumsum([0] + [p.shape[0] for p in parts])[:-1], pick).astype(np.float64)
    sample -= sample.mean(0)
    lam, vec = np.linalg.eigh(sample.T @ sample / max(1, sample.shape[0]))
    return vec, np.sqrt(np.maximum(lam, 0.0))


def _split_directions(axes: tuple[np.ndarray, np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit directions drawn as ``C^(1/2) g`` (C: the rows' covariance, g Gaussian), shape (d, n).

    Isotropic directions waste cuts on directions the (often low-dimensional, one-sided) feature
    cloud barely spans; drawing along its principal axes, weighted by their spread, puts the cuts
    where rows differ.
    """
    vec, sd = axes
    dirs = vec @ (sd[:, None] * rng.standard_normal((sd.size, n)))
    dirs /= np.maximum(np.linalg.norm(dirs, axis=0), 1e-300)
    return dirs.astype(_F32)


def _gather(parts: Sequence[np.ndarray], offsets: Sequence[int], idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` (numbered across the parts) as one float32 matrix."""
    if len(parts) == 1:
        return np.asarray(parts[0][idx], dtype=_F32)
    out = np.empty((idx.size, parts[0].shape[1]), dtype=_F32)
    for p, off in zip(parts, offsets):
        sel = (idx >= off) & (idx < off + p.shape[0])
        if sel.any():
            out[sel] = p[idx[sel] - off]
    return out


def build_forest(parts: Sequence[np.ndarray], *, n_trees: int = 16, leaf_size: int = 1024,
                 seed: int = 0) -> CandidateForest:
    """Random-projection trees over the rows of ``parts`` (unit rows, e.g. from :func:`group_normalized`).

    Each tree splits every node at the median of its rows' projections on one direction per
    level (so leaves hold ``leaf_size / 2`` to ``leaf_size`` rows whatever the density), until
    no node exceeds ``leaf_size``. Cost per tree: one (n x d) @ (d x depth) product and one sort
    of n keys per level, ``depth = ceil(log2(n / leaf_size))``.
    """
    if n_trees < 1 or leaf_size < 2:
        raise ValueError(f"n_trees must be >= 1 and leaf_size >= 2, got {n_trees} and {leaf_size}")
    sizes = [int(p.shape[0]) for p in parts]
    offsets = tuple(int(x) for x in np.cumsum([0] + sizes)[:-1])
    n = int(sum(sizes))
    depth = max(0, int(np.ceil(np.log2(max(n, 1) / leaf_size))))
    rng = np.random.default_rng(seed)
    axes = _principal_axes(parts, rng) if depth else None
    trees = []
    for _ in range(n_trees):
        if depth == 0:
            trees.append((np.arange(n, dtype=np.int64), np.zeros(1, dtype=np.int64)))
            continue
        dirs = _split_directions(axes, depth, rng)
        proj = np.concatenate([np.asarray(p, dtype=_F32) @ dirs for p in parts])
        order = np.arange(n, dtype=np.int64)
        node = np.zeros(n, dtype=np.int64)       # node id of each position of ``order``
        for lev in range(depth):
            starts = np.r_[0, np.flatnonzero(np.diff(node)) + 1]
            size = np.diff(np.r_[starts, n])
            v = proj[order, lev].astype(np.float64)
            lo = np.minimum.reduceat(v, starts)
            hi = np.maximum.reduceat(v, starts)
            seg = np.repeat(np.arange(starts.size), size)
            # sort within nodes by projection: node index plus the projection squashed into [0, 0.5]
            key = seg + 0.5 * (v - lo[seg]) / np.maximum(hi[seg] - lo[seg], 1e-300)
            perm = np.argsort(key, kind="quicksort")
            order = order[perm]
            pos = np.arange(n) - starts[seg]      # seg is unchanged by the within-node sort
            split = size[seg] > leaf_size
            node = 2 * seg + (split & (pos >= size[seg] // 2))
        bounds = np.r_[0, np.flatnonzero(np.diff(node)) + 1].astype(np.int64)
        # int32 row numbers halve what the forest holds (16 trees x n rows)
        trees.append((order.astype(np.int32) if n < 2**31 else order, bounds))
        del proj
    return CandidateForest(n_rows=n, part_offsets=offsets, leaves=tuple(trees), leaf_size=int(leaf_size))


def forest_neighbors(forest: CandidateForest, parts: Sequence[np.ndarray], queries: np.ndarray,
                     base: np.ndarray, *, exclude: Sequence[tuple[np.ndarray, np.ndarray]] = (),
                     normalized: bool = True) -> NeighborResult:
    """Nearest base row of each query row among the rows sharing a leaf with it in any tree.

    Parameters
    ----------
    forest : CandidateForest
        From :func:`build_forest` over the same ``parts``.
    parts : sequence of ndarray (n_p, d)
        Unit rows (float32 preferred), numbered across parts as in the forest.
    queries, base : ndarray of int
        Row numbers (across parts) of the query rows and of the candidate base rows; a row may
        be in both (it is then excluded only through ``exclude``).
    exclude : sequence of (query_keys (len(queries),), base_keys (len(base),))
        As in :func:`cosine_neighbors`: a pair with equal keys is never returned.
    normalized : bool, default True
        The rows are unit-norm: the rescored cosine is their float64 dot product (as
        :func:`cosine_neighbors` with ``normalized=True``); else it is divided by the norms.

    Returns
    -------
    NeighborResult
        k = 1; ``index`` is a position in ``base`` (-1 and NaN when no admissible base row
        shared a leaf with the query). Similarities are exact cosines of the returned pairs.
    """
    queries = np.asarray(queries, dtype=np.int64)
    base = np.asarray(base, dtype=np.int64)
    n, m = forest.n_rows, queries.size
    excl = _prepare_exclusions(exclude, m, base.size)
    qpos = np.full(n, -1, dtype=np.int64)
    qpos[queries] = np.arange(m)
    bpos = np.full(n, -1, dtype=np.int64)
    bpos[base] = np.arange(base.size)
    best_v = np.full(m, -np.inf, dtype=_F32)
    best_i = np.full(m, -1, dtype=np.int64)
    offs = forest.part_offsets
    with _one_thread():  # a leaf's product is small: BLAS threads would cost more than they save
        _search_leaves(forest, parts, offs, qpos, bpos, excl, best_v, best_i)
    bad = ~np.isfinite(best_v)
    best_i[bad] = -1
    idx = best_i[:, None].copy()
    # exact verification: the float64 cosine of every returned pair
    sim = np.full((m, 1), np.nan)
    ok = np.flatnonzero(~bad)
    # a block of rows at a time: two float64 copies of every query row and its neighbour were
    # 2.2 GB at 1M test rows, the peak of a 3M-row audit; each row's dot product is its own
    for s in range(0, ok.size, _VERIFY_ROWS):
        blk = ok[s:s + _VERIFY_ROWS]
        qx = _gather_f64(parts, offs, queries[blk])
        bx = _gather_f64(parts, offs, base[best_i[blk]])
        num = np.einsum("ij,ij->i", qx, bx)
        if normalized:
            sim[blk, 0] = num
        else:
            den = np.sqrt(np.einsum("ij,ij->i", qx, qx) * np.einsum("ij,ij->i", bx, bx))
            sim[blk, 0] = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return NeighborResult(similarity=sim, index=idx, backend=f"forest({len(forest.leaves)} trees, "
                          f"leaves <= {forest.leaf_size} rows)+exact", peak_block_bytes=0)


def _one_thread():
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1, user_api="blas")
    except Exception:  # threadpoolctl missing: run with the BLAS threads as they are
        import contextlib

        return contextlib.nullcontext()


def _search_leaves(forest, parts, offs, qpos, bpos, excl, best_v, best_i) -> None:
    """Running best (float32 cosine, base position) of each query over the base rows of its leaves."""
    n = forest.n_rows
    for order, bounds in forest.leaves:
        q_at = qpos[order]
        b_at = bpos[order]
        has_q = np.add.reduceat((q_at >= 0).astype(np.int64), bounds) > 0
        has_b = np.add.reduceat((b_at >= 0).astype(np.int64), bounds) > 0
        ends = np.r_[bounds[1:], n]
        for li in np.flatnonzero(has_q & has_b):
            s, e = bounds[li], ends[li]
            qa, ba = q_at[s:e], b_at[s:e]
            qsel, bsel = qa >= 0, ba >= 0
            qrows, brows = order[s:e][qsel], order[s:e][bsel]
            qi, bi = qa[qsel], ba[bsel]
            S = _gather(parts, offs, qrows) @ _gather(parts, offs, brows).T
            for qk, bk in excl:
                S[qk[qi][:, None] == bk[bi][None, :]] = -np.inf
            j = S.argmax(axis=1)
            v = S[np.arange(qi.size), j]
            cand = bi[j]
            # a better value wins; an equal one wins only with a lower base position (as the exact search)
            upd = (v > best_v[qi]) | ((v == best_v[qi]) & np.isfinite(v) & (cand < best_i[qi]))
            best_v[qi[upd]] = v[upd]
            best_i[qi[upd]] = cand[upd]


def _gather_f64(parts: Sequence[np.ndarray], offsets: Sequence[int], idx: np.ndarray) -> np.ndarray:
    out = np.empty((idx.size, parts[0].shape[1]), dtype=np.float64)
    for p, off in zip(parts, offsets):
        sel = (idx >= off) & (idx < off + p.shape[0])
        if sel.any():
            out[sel] = p[idx[sel] - off]
    return out
