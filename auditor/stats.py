"""Paired statistics for per-query metric arrays.

Every function takes per-query arrays (ranx style) and returns numbers that state their null
hypothesis and method. Conventions:

- ``d = x - y`` are paired per-query differences (candidate minus baseline); pairs where
  either side is NaN (an undefined query) are dropped by :func:`clean_pairs`.
- ``alternative`` is ``"two-sided"``, ``"greater"`` (mean d > 0) or ``"less"``.
- Randomization p-values are ``(b + 1) / (B + 1)`` (never 0; Phipson & Smyth 2010).
- All resampling is seeded (``seed``): the same seed gives the same numbers, whatever the
  chunk size. Work is chunked so memory stays bounded (well under 256 MB at 50,000 queries x
  10,000 resamples).
- Resampling runs on the GPU through torch when CUDA is present and ``n_resamples >=
  100_000`` (or ``device="cuda"``); the GPU stream differs from the CPU one, so the two agree
  within Monte Carlo error, not bit for bit.

How the CPU resampling is made fast (figures in ``docs/PERFORMANCE.md``):

- Sign flips. One random *byte* flips 8 queries at once; for each block of 8 queries a
  256-entry table holds the sum of every subset of their differences, so a resample's null
  sum is one table look-up per 8 queries instead of 8 multiply-adds, and the random signs
  cost one bit each (64 per generator call). Exact: every sign vector has probability 2^-n.
- Bootstrap. Each index is one raw 32-bit word divided by ``2**32 // n`` (words past the
  last full multiple of n are rejected and redrawn, so exactly uniform), gathered and summed
  in cache-sized chunks with preallocated buffers.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats as _st

from auditor.errors import ConfigError, DataError

__all__ = [
    "TestResult", "ConfidenceInterval", "paired_t_test", "sign_flip_test", "bootstrap_ci",
    "wilcoxon_test", "effect_size_dz", "win_tie_loss", "holm", "benjamini_hochberg",
    "power_paired", "mde_paired", "tost_paired", "clean_pairs", "GPU_MIN_RESAMPLES",
]

Alternative = Literal["two-sided", "greater", "less"]
_ALTERNATIVES = ("two-sided", "greater", "less")

#: ``device=None`` moves resampling to CUDA from this many resamples on (issue 8).
GPU_MIN_RESAMPLES = 100_000

# Float sums of the same numbers in another order differ by rounding (at most ~k * eps *
# sum|d| for k additions). Null values within this relative distance of the observed one
# count as ties (as extreme), so exact ties of discrete metrics are never lost to rounding.
_TIE_RTOL = 1e-9

_M64 = (1 << 64) - 1
_SEGMENTS = 8                # sign flips: query blocks are summed in this many fixed segments
_THREAD_MIN_WORK = 2**22     # below this many resampled elements, threads cost more than they save

# Default work per chunk, in elements (random signs or resampled values).
_SIGNFLIP_CHUNK = 2**24      # random sign bits per chunk: 2 MB of packed bits on the CPU
_BOOT_CHUNK_CPU = 2**15      # resampled values per chunk: intermediates stay in cache, no page faults
_TORCH_CHUNK_CUDA = 2**26    # elements per chunk on a GPU (float64/int64: 512 MB per buffer)
_TORCH_CHUNK_CPU = 2**21


# --------------------------------------------------------------------------- result types

@dataclass(frozen=True)
class TestResult:
    """Outcome of a hypothesis test.

    Attributes
    ----------
    statistic : float
    p_value : float
    method : str
        E.g. ``"paired t-test"``, ``"sign-flip randomization (B=10000)"``.
    null : str
        The null hypothesis in words.
    alternative : str
    n : int
        Number of pairs used.
    extra : dict
        Method-specific values (``df``, ``n_resamples`` ...).
    """

    __test__ = False  # not a pytest class

    statistic: float
    p_value: float
    method: str
    null: str
    alternative: str
    n: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConfidenceInterval:
    """``estimate`` with a ``level`` interval ``[low, high]`` from ``method``."""

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- validation

def clean_pairs(x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Paired differences with undefined pairs dropped.

    Parameters
    ----------
    x : array_like, shape (n,)
        Per-query metric of the candidate (or the differences themselves when ``y`` is None).
    y : array_like, shape (n,), optional
        Per-query metric of the baseline, aligned with ``x``.

    Returns
    -------
    numpy.ndarray, shape (m,), float64
        ``x - y`` where both are finite (NaN marks a query whose metric is undefined).

    Raises
    ------
    DataError
        If the arrays are not one-dimensional or their lengths differ.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise DataError(f"expected a 1-d array of per-query values, got shape {x.shape}", path="<array>",
                        field="x", fix="pass one value per query")
    if y is None:
        d = x
    else:
        y = np.asarray(y, dtype=np.float64)
        if y.shape != x.shape:
            raise DataError(f"paired arrays differ in shape: x {x.shape} vs y {y.shape}", path="<array>",
                            field="y", fix="align candidate and baseline on the same queries")
        d = x - y
    return d[np.isfinite(d)]


def _check_alternative(alternative: str) -> str:
    if alternative not in _ALTERNATIVES:
        raise ConfigError(f"alternative must be one of {', '.join(_ALTERNATIVES)}; got {alternative!r}.")
    return alternative


def _check_resamples(n_resamples: int) -> int:
    B = int(n_resamples)
    if B < 1 or B != n_resamples:
        raise ConfigError(f"n_resamples must be a positive integer; got {n_resamples!r}.")
    return B


def _check_level(level: float) -> float:
    if not 0.0 < float(level) < 1.0:
        raise ConfigError(f"confidence level must lie strictly between 0 and 1; got {level!r}.")
    return float(level)


def _check_seed(seed: int) -> int:
    if isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    return int(seed)


def _check_chunk(chunk: int | None) -> int | None:
    if chunk is not None and int(chunk) < 1:
        raise ConfigError(f"chunk must be a positive integer or None; got {chunk!r}.")
    return None if chunk is None else int(chunk)


def _count_extreme(null_sums: np.ndarray, obs_sum: float, tol: float, alternative: str) -> int:
    """Null statistics at least as extreme as the observed one (ties count as extreme)."""
    if alternative == "two-sided":
        return int(np.count_nonzero(np.abs(null_sums) >= abs(obs_sum) - tol))
    if alternative == "greater":
        return int(np.count_nonzero(null_sums >= obs_sum - tol))
    return int(np.count_nonzero(null_sums <= obs_sum + tol))


# --------------------------------------------------------------------------- backends

def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _resolve_backend(device: str | None, n_resamples: int, backend: str | None) -> tuple[str, str]:
    """Pick ``(backend, device)``: ``("numpy", "cpu")`` or ``("torch", "cpu" | "cuda[:k]")``.

    ``device=None`` (or ``"auto"``) uses CUDA when torch sees one and ``n_resamples >=
    GPU_MIN_RESAMPLES``; ``backend`` (internal, for tests) forces the implementation.
    """
    if device is not None and not isinstance(device, str):
        raise ConfigError(f"device must be 'cpu', 'cuda', 'cuda:<k>', 'auto' or None; got {device!r}.")
    dev = None if device in (None, "auto") else device
    if dev is not None and dev != "cpu" and not dev.startswith("cuda"):
        raise ConfigError(f"device must be 'cpu', 'cuda', 'cuda:<k>', 'auto' or None; got {device!r}.")
    if backend not in (None, "numpy", "torch"):
        raise ConfigError(f"_backend must be 'numpy' or 'torch'; got {backend!r}.")
    if dev is not None and dev.startswith("cuda"):
        if backend == "numpy":
            raise ConfigError("the numpy backend runs on the CPU only; use device='cpu'.")
        if not _cuda_available():
            raise ConfigError(f"device={device!r} was requested but torch finds no CUDA device. "
                              "Fix: pass device='cpu' (or leave it unset), or install a CUDA build of torch.")
        return "torch", dev
    if dev is None and backend != "numpy" and n_resamples >= GPU_MIN_RESAMPLES and _cuda_available():
        return "torch", "cuda"
    if backend == "torch":
        if dev is None:
            dev = "cuda" if _cuda_available() else "cpu"
        return "torch", dev
    return "numpy", "cpu"


def _n_threads(n_threads: int | None) -> int:
    """Worker threads for CPU resampling: ``n_threads``, else ``OMP_NUM_THREADS``, else the usable cores (max 8)."""
    if n_threads is not None:
        if int(n_threads) < 1:
            raise ConfigError(f"n_threads must be a positive integer or None; got {n_threads!r}.")
        return int(n_threads)
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:  # the local executor pins this so workers do not fight
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 8))


def _map(fn, items, threads: int):
    """``map(fn, items)`` in order, on ``threads`` threads (numpy releases the GIL in the kernels)."""
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as ex:
        return list(ex.map(fn, items))


def _torch_generator(device: str, seed: int):
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(int(seed) % 2**63)
    return g


# --------------------------------------------------------------------------- t-test

def _p_from_t(t: float, df: float, alternative: str) -> float:
    if alternative == "two-sided":
        return float(2 * _st.t.sf(abs(t), df))
    if alternative == "greater":
        return float(_st.t.sf(t, df))
    return float(_st.t.cdf(t, df))


def paired_t_test(x: np.ndarray, y: np.ndarray | None = None, *, alternative: Alternative = "two-sided",
                  mu: float = 0.0) -> TestResult:
    """Paired t-test of the mean per-query difference (the primary test).

    H0: mean(x - y) = ``mu``. Student (1908); recommended for IR evaluation by Smucker,
    Allan & Carterette (2007). Same numbers as ``scipy.stats.ttest_rel(x, y)`` (or
    ``ttest_1samp(d, mu)``).

    Parameters
    ----------
    x : array_like, shape (n,)
        Candidate per-query metric, or the differences when ``y`` is None.
    y : array_like, shape (n,), optional
        Baseline per-query metric.
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
    mu : float, default 0.0
        Mean difference under H0.

    Returns
    -------
    TestResult
        ``statistic`` is t, ``extra["df"] = n - 1``. Fewer than 2 pairs: t is NaN and p 1.0
        (no evidence). Constant differences (sd 0): t = +-inf and p 0 when the constant
        differs from ``mu`` in the tested direction, else t = 0 (or -+inf) and p 1.0.
    """
    _check_alternative(alternative)
    d = clean_pairs(x, y) - mu
    n = d.size
    null = f"mean difference = {mu}"
    if n < 2:
        return TestResult(float("nan"), 1.0, "paired t-test", null, alternative, n, {"df": max(n - 1, 0)})
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0:
        t = 0.0 if mean == 0 else float(np.sign(mean) * np.inf)
        hit = t != 0 and (alternative == "two-sided" or (alternative == "greater") == (t > 0))
        p = 0.0 if hit else 1.0
    else:
        t = mean / (sd / np.sqrt(n))
        p = _p_from_t(t, n - 1, alternative)
    return TestResult(float(t), float(p), "paired t-test", null, alternative, n,
                      {"df": n - 1, "mean": mean, "sd": sd})


# --------------------------------------------------------------------------- sign flips

def _subset_sum_table(d: np.ndarray) -> np.ndarray:
    """``T[j, v]`` = sum of ``d[8j + b]`` over the set bits ``b`` of byte ``v``; shape (ceil(n/8), 256)."""
    nb = -(-d.size // 8)
    padded = np.zeros(nb * 8)
    padded[:d.size] = d
    padded = padded.reshape(nb, 8)
    table = np.empty((nb, 256))
    table[:, 0] = 0.0
    for b in range(8):  # subsets with highest bit b = subsets of lower bits, plus d[8j + b]
        np.add(table[:, :1 << b], padded[:, b:b + 1], out=table[:, 1 << b:2 << b])
    return table


def _sign_flip_sums_numpy(d: np.ndarray, B: int, seed: int, chunk: int, threads: int = 1) -> np.ndarray:
    """Null sums ``sum_i s_i d_i`` for B uniform random sign vectors, shape (B,).

    Random stream (PCG64 from ``SeedSequence(seed)``): one row of ``ceil(B/8)`` raw 64-bit
    words per block of 8 queries, in query order; byte k of row j holds the signs of
    resample k for queries 8j..8j+7 (bit set = kept, clear = flipped). Rows sit at fixed
    stream positions (reached with ``PCG64.advance``) and are summed in fixed segments, in
    a fixed order, so neither ``chunk`` nor ``threads`` changes a single bit of the result.
    """
    table = _subset_sum_table(d)
    nb = table.shape[0]
    words = -(-B // 8)
    rows_per_chunk = max(1, chunk // (64 * words))
    seed_seq = np.random.SeedSequence(seed)
    seg_rows = -(-nb // _SEGMENTS)

    def segment(j_start: int) -> np.ndarray:
        bitgen = np.random.PCG64(seed_seq)
        bitgen.advance(j_start * words)
        kept = np.zeros(B)  # sum of d over the kept (+1) queries, per resample
        j_end = min(nb, j_start + seg_rows)
        for j0 in range(j_start, j_end, rows_per_chunk):
            rows = min(rows_per_chunk, j_end - j0)
            raw = bitgen.random_raw(rows * words).astype("<u8", copy=False)  # same bytes on any platform
            rbytes = raw.view(np.uint8).reshape(rows, 8 * words)
            for r in range(rows):
                kept += table[j0 + r].take(rbytes[r, :B], mode="wrap")  # bytes are < 256: no bounds check
        return kept

    starts = range(0, nb, seg_rows)
    kept = np.zeros(B)
    for part in _map(segment, starts, threads if nb * B >= _THREAD_MIN_WORK else 1):
        kept += part  # in segment order: deterministic
    # s_i = +1 kept, -1 flipped: sum s_i d_i = kept - (total - kept)
    return 2.0 * kept - d.sum()


def _sign_flip_sums_torch(d: np.ndarray, B: int, seed: int, chunk: int, device: str) -> np.ndarray:
    """Torch twin of :func:`_sign_flip_sums_numpy`: one float64 matrix product per chunk."""
    import torch

    n = d.size
    dt = torch.as_tensor(d, dtype=torch.float64, device=device)
    g = _torch_generator(device, seed)
    m = max(1, chunk // n)
    out = np.empty(B)
    for s in range(0, B, m):
        k = min(m, B - s)
        bits = torch.randint(0, 2, (k, n), generator=g, device=device, dtype=torch.float64)
        out[s:s + k] = (bits @ dt).cpu().numpy()
    return 2.0 * out - d.sum()


def _sign_flip_exact_sums(d: np.ndarray) -> np.ndarray:
    """All ``2**n`` null sums ``sum_i s_i d_i`` (every sign vector once), shape (2**n,)."""
    kept = np.zeros(1)
    for v in d:  # subsets without d_i, then with it
        kept = np.concatenate([kept, kept + v])
    return 2.0 * kept - d.sum()


def sign_flip_test(d: np.ndarray, *, n_resamples: int = 10_000, alternative: Alternative = "two-sided",
                   seed: int = 0, chunk: int | None = None, return_null: bool = False,
                   exact: bool | None = None, device: str | None = None,
                   n_threads: int | None = None, _backend: str | None = None) -> TestResult:
    """Sign-flip randomization test of the mean difference (Fisher's paired randomization test).

    H0: each query's difference is symmetric about 0 (candidate and baseline scores are
    exchangeable within a query), so flipping signs at random gives the null distribution of
    the mean. Fisher (1935); Smucker, Allan & Carterette (2007). Monte Carlo p-value
    ``(b + 1) / (B + 1)`` with b the resamples at least as extreme (Phipson & Smyth 2010);
    two-sided compares ``|mean|``. Agrees with ``scipy.stats.permutation_test(...,
    permutation_type="samples")`` within Monte Carlo error.

    Parameters
    ----------
    d : array_like, shape (n,)
        Paired differences (NaN dropped).
    n_resamples : int, default 10_000
        B, the number of random sign vectors.
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
    seed : int, default 0
        Same seed, same p-value (per backend), whatever ``chunk``.
    chunk : int, optional
        Random signs generated per chunk (queries x resamples); bounds memory. Default
        2**24 on the CPU (2 MB of packed bits), 2**26 on a GPU. Does not change the result
        on the CPU.
    return_null : bool, default False
        Put the null distribution of the mean, shape (B,) (or (2**n,) when exact), in
        ``extra["null"]``.
    exact : bool, optional
        Enumerate all ``2**n`` sign vectors (p = share at least as extreme, identity
        included, so never 0). Default: exact when ``2**n <= n_resamples``.
    device : {"cpu", "cuda", "cuda:<k>", "auto"}, optional
        None/"auto": CUDA through torch when available and ``n_resamples >= 100_000``.
    n_threads : int, optional
        CPU threads (numpy path). Default ``OMP_NUM_THREADS`` if set, else the usable cores
        (at most 8). Does not change the result.

    Returns
    -------
    TestResult
        ``statistic`` is the observed mean difference; ``extra`` holds ``n_resamples``,
        ``seed``, ``exact``, ``backend``, ``device``.
    """
    _check_alternative(alternative)
    B = _check_resamples(n_resamples)
    chunk = _check_chunk(chunk)
    seed = _check_seed(seed)
    d = clean_pairs(d)
    n = d.size
    obs = float(d.mean()) if n else 0.0
    null_text = "per-query differences are symmetric about 0"
    use_exact = (n <= 62 and 2**n <= B) if exact is None else bool(exact)
    if use_exact and n > 24:
        raise ConfigError(f"exact sign-flip enumeration needs 2^n sums; n={n} is too large (limit 24). "
                          "Fix: pass exact=False (Monte Carlo).")
    backend, dev = ("numpy", "cpu") if use_exact else _resolve_backend(device, B, _backend)
    extra: dict[str, Any] = {"n_resamples": B, "seed": seed, "exact": use_exact, "backend": backend, "device": dev}
    if n == 0:
        if return_null:
            extra["null"] = np.zeros(1 if use_exact else B)
        return TestResult(obs, 1.0, "sign-flip randomization" + (" (exact)" if use_exact else f" (B={B})"),
                          null_text, alternative, 0, extra)
    obs_sum = float(d.sum())
    tol = _TIE_RTOL * float(np.abs(d).sum())
    if use_exact:
        null_sums = _sign_flip_exact_sums(d)
        p = _count_extreme(null_sums, obs_sum, tol, alternative) / null_sums.size
        method = f"sign-flip randomization (exact, 2^{n} sign vectors)"
    else:
        if backend == "torch":
            default = _TORCH_CHUNK_CPU if dev == "cpu" else _TORCH_CHUNK_CUDA
            null_sums = _sign_flip_sums_torch(d, B, seed, chunk or default, dev)
        else:
            null_sums = _sign_flip_sums_numpy(d, B, seed, chunk or _SIGNFLIP_CHUNK, _n_threads(n_threads))
        p = (_count_extreme(null_sums, obs_sum, tol, alternative) + 1) / (B + 1)
        method = f"sign-flip randomization (B={B})"
    if return_null:
        extra["null"] = null_sums / n
    return TestResult(obs, float(p), method, null_text, alternative, n, extra)


# --------------------------------------------------------------------------- bootstrap

def _splitmix64(z: int) -> int:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014): a well-mixed 64-bit hash of ``z``."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _redraw_index(n: int, k: int, key: int, pos: int) -> int:
    """Replacement for a rejected draw at global position ``pos``: SplitMix64 chain keyed by (key, pos)."""
    limit = n * k
    z = _splitmix64((key + pos) & _M64)
    while (z & 0xFFFFFFFF) >= limit:
        z = _splitmix64(z)
    return (z & 0xFFFFFFFF) // k


def _uniform_indices(words32: np.ndarray, n: int, key: int, first_pos: int, out: np.ndarray,
                     rejected: np.ndarray) -> np.ndarray:
    """Exactly uniform indices in [0, n) from uniform 32-bit words, written to ``out`` (int64).

    With ``k = 2**32 // n``, a word r < n*k maps to ``r // k`` (each index from exactly k
    words); words r >= n*k (probability ``(2**32 mod n) / 2**32``, about once per 85,000
    draws at n = 50,000) are rejected and redrawn from a SplitMix64 chain keyed by their
    global position, so the result depends on the position only, not on chunking or threads.
    ``rejected`` is a bool work buffer of the same size.
    """
    k = (1 << 32) // n
    limit = n * k
    if limit < (1 << 32):
        np.greater_equal(words32, limit, out=rejected)
        if rejected.any():
            bad = np.flatnonzero(rejected.reshape(-1))
            fixed = [_redraw_index(n, k, key, first_pos + int(p)) for p in bad]
        else:
            bad = None
    else:
        bad = None  # n is a power of 2: no word is rejected
    np.floor_divide(words32, np.uint32(k), out=out, casting="unsafe")  # uint32 -> int64 indices
    if bad is not None:
        out.reshape(-1)[bad] = fixed
    return out


def _bootstrap_means_numpy(x: np.ndarray, B: int, seed: int, chunk: int, threads: int = 1) -> np.ndarray:
    """Means of B bootstrap resamples of ``x`` (queries drawn with replacement), shape (B,).

    Random stream: resample k reads the ``ceil(n/2)`` raw 64-bit words at position
    ``k * ceil(n/2)`` of PCG64 (first child of ``SeedSequence(seed)``), as 32-bit words, the
    first n used. Each resample is computed on its own from its own words, so neither
    ``chunk`` nor ``threads`` changes the result. Work buffers are allocated once per task:
    fresh large arrays per chunk would cost page faults (more system time than compute).
    """
    n = x.size
    if n >= 2**32:
        raise ConfigError(f"bootstrap of {n} values exceeds the 2^32 index range.")
    main_ss, aux_ss = np.random.SeedSequence(seed).spawn(2)
    key = int(aux_ss.generate_state(1, np.uint64)[0])
    words = -(-n // 2)
    m = max(1, chunk // n)  # resamples per chunk
    out = np.empty(B)
    per_task = m * max(1, -(-B // (m * 4 * max(threads, 1))))  # ~4 tasks per thread

    def task(start: int) -> None:
        bitgen = np.random.PCG64(main_ss)
        bitgen.advance(start * words)
        idx, vals, rejected = np.empty((m, n), np.int64), np.empty((m, n)), np.empty((m, n), bool)
        stop = min(B, start + per_task)
        for s in range(start, stop, m):
            k = min(m, stop - s)
            raw = bitgen.random_raw(k * words).astype("<u8", copy=False)
            r32 = raw.view("<u4").reshape(k, 2 * words)[:, :n]
            _uniform_indices(r32, n, key, s * n, idx[:k], rejected[:k])
            x.take(idx[:k], out=vals[:k], mode="wrap")  # indices are in range; 'wrap' skips the bounds check
            out[s:s + k] = vals[:k].sum(axis=1)

    for _ in _map(task, range(0, B, per_task), threads if n * B >= _THREAD_MIN_WORK else 1):
        pass
    out /= n
    return out


def _bootstrap_means_torch(x: np.ndarray, B: int, seed: int, chunk: int, device: str) -> np.ndarray:
    """Torch twin of :func:`_bootstrap_means_numpy` (torch's generator; chunked gathers)."""
    import torch

    n = x.size
    xt = torch.as_tensor(x, dtype=torch.float64, device=device)
    g = _torch_generator(device, seed)
    m = max(1, chunk // n)
    out = np.empty(B)
    for s in range(0, B, m):
        k = min(m, B - s)
        idx = torch.randint(0, n, (k, n), generator=g, device=device)
        out[s:s + k] = xt[idx].sum(dim=1).cpu().numpy()
    out /= n
    return out


def _bca_acceleration(x: np.ndarray) -> float:
    """BCa acceleration from the closed-form jackknife of the mean (O(n), Efron 1987).

    Leave-one-out means are ``theta_(i) = (sum(x) - x_i) / (n - 1)``, so ``mean(theta_(.)) -
    theta_(i) = (x_i - mean(x)) / (n - 1)``; with ``u_i = x_i - mean(x)`` (the positive factor
    cancels) ``a = sum(u^3) / (6 sum(u^2)^1.5)``: positive for right-skewed data.
    """
    u = x - x.mean()
    den = 6.0 * float(np.sum(u * u)) ** 1.5
    return float(np.sum(u ** 3) / den) if den > 0 else 0.0


def bootstrap_ci(x: np.ndarray, *, n_resamples: int = 10_000, level: float = 0.95,
                 method: Literal["bca", "percentile"] = "bca", seed: int = 0,
                 return_distribution: bool = False, chunk: int | None = None,
                 device: str | None = None, n_threads: int | None = None,
                 _backend: str | None = None) -> ConfidenceInterval:
    """Bootstrap confidence interval of the mean of ``x`` (queries resampled with replacement).

    Efron & Tibshirani (1993). ``"percentile"``: the ``(1-level)/2`` and ``(1+level)/2``
    quantiles of the bootstrap means. ``"bca"`` (bias-corrected and accelerated, Efron 1987):
    bias ``z0`` from the share of bootstrap means below the estimate (ties count half) and
    acceleration from the closed-form jackknife of the mean. Quantiles interpolate linearly,
    as ``scipy.stats.bootstrap(method="percentile" | "BCa")`` does, with which it agrees
    within Monte Carlo error.

    Parameters
    ----------
    x : array_like, shape (n,)
        Per-query values, typically paired differences (NaN dropped).
    n_resamples : int, default 10_000
    level : float, default 0.95
    method : {"bca", "percentile"}, default "bca"
    seed : int, default 0
        Same seed, same interval (per backend), whatever ``chunk``.
    return_distribution : bool, default False
        Put the bootstrap means, shape (B,), in ``extra["distribution"]``.
    chunk : int, optional
        Resampled values per chunk (queries x resamples); bounds memory. Default 2**15 on
        the CPU (cache-sized), 2**26 on a GPU. Does not change the result on the CPU.
    device : {"cpu", "cuda", "cuda:<k>", "auto"}, optional
        None/"auto": CUDA through torch when available and ``n_resamples >= 100_000``.
    n_threads : int, optional
        CPU threads (numpy path). Default ``OMP_NUM_THREADS`` if set, else the usable cores
        (at most 8). Does not change the result.

    Returns
    -------
    ConfidenceInterval
        Fewer than 2 values: a degenerate interval ``[mean, mean]`` (NaN when empty).
        ``extra`` holds ``n_resamples``, ``seed``, ``backend``, ``device`` and, for BCa,
        ``z0``, ``acceleration`` and ``percentile`` (the percentile interval from the same
        resamples, ``[low, high]``).
    """
    B = _check_resamples(n_resamples)
    level = _check_level(level)
    chunk = _check_chunk(chunk)
    seed = _check_seed(seed)
    if method not in ("bca", "percentile"):
        raise ConfigError(f"bootstrap method must be 'bca' or 'percentile'; got {method!r}.")
    x = clean_pairs(x)
    n = x.size
    est = float(x.mean()) if n else float("nan")
    backend, dev = _resolve_backend(device, B, _backend)
    extra: dict[str, Any] = {"n_resamples": B, "seed": seed, "backend": backend, "device": dev}
    label = f"{method} bootstrap (B={B})"
    if n < 2:
        return ConfidenceInterval(est, est, est, level, label, n, extra)
    if backend == "torch":
        default = _TORCH_CHUNK_CPU if dev == "cpu" else _TORCH_CHUNK_CUDA
        boots = _bootstrap_means_torch(x, B, seed, chunk or default, dev)
    else:
        boots = _bootstrap_means_numpy(x, B, seed, chunk or _BOOT_CHUNK_CPU, _n_threads(n_threads))
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boots, [alpha, 1.0 - alpha])
    if method == "bca":
        extra["percentile"] = [float(lo), float(hi)]  # same resamples, for comparison in reports
        # share below the estimate, ties half; clipped so z0 stays finite
        prop = (np.count_nonzero(boots < est) + 0.5 * np.count_nonzero(boots == est)) / B
        prop = min(max(prop, 1.0 / (B + 1)), B / (B + 1))
        z0 = float(_st.norm.ppf(prop))
        acc = _bca_acceleration(x)
        za = _st.norm.ppf([alpha, 1.0 - alpha])
        adj = _st.norm.cdf(z0 + (z0 + za) / (1.0 - acc * (z0 + za)))
        adj = np.nan_to_num(adj, nan=0.5)  # 1 - a(z0+za) <= 0 only for absurd skew: fall back to the median
        lo, hi = np.quantile(boots, adj)
        extra.update(z0=z0, acceleration=acc)
    if return_distribution:
        extra["distribution"] = boots
    return ConfidenceInterval(est, float(lo), float(hi), level, label, n, extra)


# --------------------------------------------------------------------------- secondary tests, effect sizes

def wilcoxon_test(d: np.ndarray, *, alternative: Alternative = "two-sided",
                  zero_method: Literal["wilcox", "pratt", "zsplit"] = "wilcox") -> TestResult:
    """Wilcoxon signed-rank test (secondary only: it tests a location shift, not the mean).

    H0: the differences are symmetric about 0. Wilcoxon (1945), computed by
    ``scipy.stats.wilcoxon(d, alternative=..., zero_method=...)`` (exact for small n
    without ties, normal approximation otherwise). All-zero or empty input: p 1.0.

    Parameters
    ----------
    d : array_like, shape (n,)
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
    zero_method : {"wilcox", "pratt", "zsplit"}, default "wilcox" (zero differences dropped)
    """
    _check_alternative(alternative)
    d = clean_pairs(d)
    null = "differences are symmetric about 0"
    if d.size < 1 or np.all(d == 0):
        return TestResult(float("nan"), 1.0, "Wilcoxon signed-rank", null, alternative, int(d.size))
    r = _st.wilcoxon(d, alternative=alternative, zero_method=zero_method)
    return TestResult(float(r.statistic), float(r.pvalue), "Wilcoxon signed-rank", null, alternative,
                      int(d.size), {"zero_method": zero_method})


def effect_size_dz(d: np.ndarray) -> float:
    """Cohen's d_z = mean(d) / sd(d) (ddof 1) for paired differences, shape (n,) in.

    Cohen (1988); Lakens (2013). NaN for fewer than 2 pairs or sd 0.
    """
    d = clean_pairs(d)
    if d.size < 2:
        return float("nan")
    sd = d.std(ddof=1)
    return float(d.mean() / sd) if sd > 0 else float("nan")


def win_tie_loss(d: np.ndarray, *, tol: float = 1e-12) -> tuple[int, int, int]:
    """Counts of queries where the candidate wins (d > tol), ties (|d| <= tol), loses (d < -tol)."""
    d = clean_pairs(d)
    return int(np.sum(d > tol)), int(np.sum(np.abs(d) <= tol)), int(np.sum(d < -tol))


# --------------------------------------------------------------------------- multiple testing

def _adjust(p_values: np.ndarray, method: str) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise DataError(f"expected a 1-d array of p-values, got shape {p.shape}", path="<array>", field="p_values")
    ok = np.isfinite(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise DataError("p-values must lie in [0, 1]", path="<array>", field="p_values")
    out = np.full(p.shape, np.nan)
    if ok.sum() == 1:  # a family of one is its own adjustment (and multipletests costs a gc.collect)
        out[ok] = p[ok]
    elif ok.any():  # NaN (a test that could not run) is left out of the family and stays NaN
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values; controls the family-wise error rate.

    ``statsmodels.stats.multitest.multipletests(p, method="holm")``. Input and output shape
    (m,); NaN entries are excluded from the family and returned as NaN.
    """
    return _adjust(p_values, "holm")


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini & Hochberg (1995) adjusted p-values; controls the false discovery rate.

    ``multipletests(p, method="fdr_bh")``. Input and output shape (m,); NaN entries are
    excluded from the family and returned as NaN.
    """
    return _adjust(p_values, "fdr_bh")


# --------------------------------------------------------------------------- power

_SM_ALT = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


def power_paired(effect: float, sd: float, n: int, *, alpha: float = 0.05,
                 alternative: Alternative = "greater") -> float:
    """Power of the paired t-test to detect a true mean difference ``effect``.

    ``statsmodels.stats.power.TTestPower().power(effect / sd, nobs=n, alpha=alpha)`` (the
    noncentral t with n - 1 df). NaN when n < 2 or sd is not positive.

    Parameters
    ----------
    effect : float
        True mean difference, metric units.
    sd : float
        Standard deviation of the per-query differences.
    n : int
        Number of pairs.
    alpha : float, default 0.05
    alternative : {"two-sided", "greater", "less"}, default "greater"
    """
    from statsmodels.stats.power import TTestPower

    _check_alternative(alternative)
    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    return float(TTestPower().power(effect_size=effect / sd, nobs=n, alpha=alpha, alternative=_SM_ALT[alternative]))


def mde_paired(sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8,
               alternative: Alternative = "greater") -> float:
    """Minimum detectable mean difference (metric units) at ``power`` for the paired t-test.

    Solves ``power_paired(mde, sd, n) == power`` with ``TTestPower().solve_power``. Signed in
    the direction of the alternative (negative for ``"less"``). NaN when n < 2 or sd is not
    positive.
    """
    from statsmodels.stats.power import TTestPower

    _check_alternative(alternative)
    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    if not alpha < power < 1:
        raise ConfigError(f"power must lie between alpha ({alpha}) and 1; got {power!r}.")
    from scipy.optimize import brentq

    # TTestPower().solve_power stops at ~1e-6 in power; a bracketed root of its power
    # function makes power_paired(mde) equal the requested power to ~1e-12.
    tp, alt = TTestPower(), _SM_ALT[alternative]
    sign = -1.0 if alternative == "less" else 1.0

    def gap(es: float) -> float:
        return float(tp.power(effect_size=sign * es, nobs=n, alpha=alpha, alternative=alt)) - power

    # bracket statsmodels' own solution narrowly: far out in the tail its power is NaN
    es0 = abs(float(np.asarray(tp.solve_power(effect_size=None, nobs=n, alpha=alpha, power=power,
                                              alternative=alt)).item()))
    lo, hi, step = es0, es0, 1e-4
    while gap(lo) > 0 and lo > 0:
        lo = max(0.0, es0 * (1 - step))
        step *= 4
    step = 1e-4
    while gap(hi) < 0:
        hi = es0 * (1 + step)
        step *= 4
    es = brentq(gap, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps) if lo < hi else es0
    return float(sign * es * sd)


# --------------------------------------------------------------------------- equivalence

def tost_paired(d: np.ndarray, margin: float, *, alpha: float = 0.05,
                bounds: tuple[float, float] | None = None) -> TestResult:
    """Two one-sided paired t-tests for equivalence (Schuirmann 1987).

    H0: mean(d) <= low or mean(d) >= high (not equivalent), with ``(low, high) = (-margin,
    margin)`` unless ``bounds`` is given. p = max of the two one-sided p-values; small p means
    the difference lies inside the margin. Same numbers as
    ``statsmodels.stats.weightstats.ttost_paired(x, y, low, high)``.

    Parameters
    ----------
    d : array_like, shape (n,)
        Paired differences (NaN dropped).
    margin : float
        Equivalence margin, > 0 (metric units).
    alpha : float, default 0.05
        Recorded in ``extra``; the decision is ``p < alpha``.
    bounds : (float, float), optional
        Asymmetric interval ``(low, high)`` with low < high, overriding ``margin``.

    Returns
    -------
    TestResult
        ``statistic`` is the t of the binding (larger-p) one-sided test; ``extra`` holds
        both t's and p's. Fewer than 2 pairs: p 1.0 (equivalence not shown).
    """
    low, high = (-float(margin), float(margin)) if bounds is None else (float(bounds[0]), float(bounds[1]))
    if not low < high:
        raise ConfigError(f"TOST needs low < high (a positive margin); got ({low}, {high}).")
    d = clean_pairs(d)
    n = d.size
    null = f"mean difference <= {low} or >= {high}"
    extra: dict[str, Any] = {"margin": margin, "low": low, "high": high, "alpha": alpha}
    if n < 2:
        return TestResult(float("nan"), 1.0, "TOST (paired t)", null, "equivalence", n, extra)
    m = float(d.mean())
    se = float(d.std(ddof=1) / np.sqrt(n))
    if se == 0:
        p = 0.0 if low < m < high else 1.0
        return TestResult(float("nan"), p, "TOST (paired t)", null, "equivalence", n, extra)
    t_lo, t_hi = (m - low) / se, (m - high) / se
    p_lo, p_hi = float(_st.t.sf(t_lo, n - 1)), float(_st.t.cdf(t_hi, n - 1))
    extra.update(t_lower=t_lo, p_lower=p_lo, t_upper=t_hi, p_upper=p_hi, df=n - 1)
    t = t_lo if p_lo >= p_hi else t_hi
    return TestResult(float(t), max(p_lo, p_hi), "TOST (paired t)", null, "equivalence", n, extra)
