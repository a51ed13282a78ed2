"""Speed of auditor.stats resampling against its peers, same data, one process.

Work (issue 2 targets):

- sign-flip randomization, 10,000 resamples, 50,000 queries: ours vs ranx's Fisher
  randomization test (``ranx.statistical_tests.fisher_randomization_test``, what
  ``ranx.compare(stat_test="fisher")`` runs) and ``scipy.stats.permutation_test(...,
  permutation_type="samples")`` -- target >= 50x both;
- BCa bootstrap CI of the mean, 10,000 resamples, 50,000 queries: ours vs
  ``scipy.stats.bootstrap(method="BCa")`` -- target >= 8x;
- memory: ours holds <= ~256 MB (tracemalloc peak, and the process's max-RSS growth).

Run::

    python benchmarks/bench_stats.py                    # full table (~2-4 min on 2 cores)
    python benchmarks/bench_stats.py --quick            # ranx on 1/10 of B, extrapolated

scipy's permutation test takes minutes at full size, so it is timed on a fraction of the
resamples and extrapolated linearly (its cost is linear in B); the table says so. scipy's
bootstrap is run in full (its BCa jackknife is O(n^2), not linear in B). Both scipy calls get
``batch=`` so they fit in memory (without it they allocate 4 GB, and the BCa jackknife 20 GB).
Needs the ``[bench]`` extra (ranx).
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
import tracemalloc

import numpy as np
import scipy
from scipy import stats as st

from auditor import stats as S

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import cpu_model  # noqa: E402


def machine() -> str:
    return f"{cpu_model()}, Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}"


def per_query_metrics(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """nDCG-like per-query values of two systems: bounded, skewed, 30% ties, true gain 0.002."""
    rng = np.random.default_rng(seed)
    difficulty = rng.beta(0.8, 1.6, n)
    x = np.clip(difficulty + rng.normal(0.002, 0.15, n), 0, 1)
    y = np.clip(difficulty + rng.normal(0.0, 0.15, n), 0, 1)
    tie = rng.random(n) < 0.3
    x[tie] = y[tie]
    return np.round(x, 4), np.round(y, 4)


def timed(fn, repeats: int = 1) -> tuple[float, float, object]:
    """(median wall seconds, median process CPU seconds, last result) over ``repeats`` runs.

    CPU time (all threads of this process) is the steadier figure on a shared machine.
    """
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(np.median(cpus)), out


def peak_memory(fn) -> tuple[float, float]:
    """(tracemalloc peak MB, max-RSS growth MB) of one call."""
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20, (rss1 - rss0) / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=50_000)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3, help="runs of ours (median reported)")
    ap.add_argument("--scipy-perm-fraction", type=float, default=0.05,
                    help="share of the resamples scipy.permutation_test is timed on (then extrapolated)")
    ap.add_argument("--quick", action="store_true", help="time ranx on 1/10 of the resamples too")
    args = ap.parse_args()
    n, B = args.queries, args.resamples
    x, y = per_query_metrics(n)
    d = x - y
    load0 = os.getloadavg()
    # rows: work, implementation, wall s, cpu s, note
    rows: list[tuple[str, str, float, float, str]] = []

    # ---- memory first, while this process's RSS peak is still low
    mem_sf = peak_memory(lambda: S.sign_flip_test(d, n_resamples=B, seed=0))
    mem_bs = peak_memory(lambda: S.bootstrap_ci(d, n_resamples=B, seed=0))

    # ---- sign-flip randomization
    w, c, r = timed(lambda: S.sign_flip_test(d, n_resamples=B, seed=0), args.repeats)
    rows.append(("sign-flip", "auditor.stats.sign_flip_test", w, c, f"p={r.p_value:.4f}"))
    w, c, _ = timed(lambda: S.sign_flip_test(d, n_resamples=B, seed=0, n_threads=1), args.repeats)
    rows.append(("sign-flip", "auditor.stats.sign_flip_test (1 thread)", w, c, ""))

    from ranx.statistical_tests import fisher_randomization_test

    fisher_randomization_test(x[:100], y[:100], 10, 0.01, 42)  # numba JIT compile, not timed
    b_ranx = B // 10 if args.quick else B
    w, c, (p_ranx, _) = timed(lambda: fisher_randomization_test(x, y, b_ranx, 0.01, 42))
    f = B / b_ranx
    rows.append(("sign-flip", "ranx fisher_randomization_test (numba, 2 threads)", w * f, c * f,
                 f"p={p_ranx:.4f}" + ("" if b_ranx == B else f"; timed at B={b_ranx}, x{f:g} linear")))

    b_sp = max(1, int(B * args.scipy_perm_fraction))
    w, c, r = timed(lambda: st.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=b_sp,
                                                vectorized=True, batch=200, random_state=np.random.default_rng(1)))
    f = B / b_sp
    rows.append(("sign-flip", "scipy.stats.permutation_test", w * f, c * f,
                 f"p={r.pvalue:.4f} at B={b_sp}; timed at B={b_sp}, x{f:g} linear; batch=200"))

    # ---- BCa bootstrap
    w, c, ci = timed(lambda: S.bootstrap_ci(d, n_resamples=B, seed=0), args.repeats)
    rows.append(("BCa bootstrap", "auditor.stats.bootstrap_ci", w, c, f"[{ci.low:.5f}, {ci.high:.5f}]"))
    w, c, _ = timed(lambda: S.bootstrap_ci(d, n_resamples=B, seed=0, n_threads=1), args.repeats)
    rows.append(("BCa bootstrap", "auditor.stats.bootstrap_ci (1 thread)", w, c, ""))
    # always in full: its cost is O(n^2) (jackknife) + O(nB), so no linear extrapolation
    w, c, ref = timed(lambda: st.bootstrap((d,), np.mean, method="BCa", n_resamples=B, batch=100,
                                           random_state=np.random.default_rng(2)))
    rows.append(("BCa bootstrap", "scipy.stats.bootstrap(method='BCa')", w, c,
                 f"[{ref.confidence_interval.low:.5f}, {ref.confidence_interval.high:.5f}]; batch=100"))

    # ---- GPU (issue 8), only where CUDA is present
    if S._cuda_available():
        import torch

        name = torch.cuda.get_device_name(0)
        S.sign_flip_test(d, n_resamples=1000, device="cuda")  # warm-up
        S.bootstrap_ci(d, n_resamples=1000, device="cuda")
        for b in (100_000, 1_000_000):
            w, c, _ = timed(lambda: S.sign_flip_test(d, n_resamples=b, seed=0, device="cuda"))
            rows.append((f"sign-flip B={b:,}", f"auditor.stats on {name}", w, c, ""))
            w, c, _ = timed(lambda: S.bootstrap_ci(d, n_resamples=b, seed=0, device="cuda"))
            rows.append((f"BCa bootstrap B={b:,}", f"auditor.stats on {name}", w, c, ""))

    load1 = os.getloadavg()
    print(f"machine: {machine()}")
    print(f"load average (1 min) at start / end: {load0[0]:.2f} / {load1[0]:.2f}")
    print(f"command: python benchmarks/bench_stats.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"data: {n:,} queries, B = {B:,} resamples; ours: median of {args.repeats} runs\n")
    ours = {work: (wall, cpu) for work, impl, wall, cpu, _ in rows if impl.startswith("auditor.stats.")
            and "thread" not in impl}
    print("| work | implementation | wall s | CPU s | ours x faster (wall / CPU) | note |")
    print("|---|---|---:|---:|---:|---|")
    for work, impl, wall, cpu, note in rows:
        ratio = ""
        if not impl.startswith("auditor") and work in ours:
            ratio = f"{wall / ours[work][0]:.0f}x / {cpu / ours[work][1]:.0f}x"
        print(f"| {work} | {impl} | {wall:.3f} | {cpu:.3f} | {ratio} | {note} |")
    print(f"\npeak memory, ours: sign-flip {mem_sf[0]:.0f} MB traced (max-RSS growth {mem_sf[1]:.0f} MB); "
          f"BCa bootstrap {mem_bs[0]:.0f} MB traced (max-RSS growth {mem_bs[1]:.0f} MB)")


if __name__ == "__main__":
    main()
