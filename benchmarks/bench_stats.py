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
    python benchmarks/bench_stats.py --quick            # smaller peer runs, extrapolated

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
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import scipy
from scipy import stats as st

from auditor import stats as S


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:  # lscpu missing: fall back to platform
        model = platform.processor() or platform.machine()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores, Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}"


def per_query_metrics(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """nDCG-like per-query values of two systems: bounded, skewed, 30% ties, true gain 0.002."""
    rng = np.random.default_rng(seed)
    difficulty = rng.beta(0.8, 1.6, n)
    x = np.clip(difficulty + rng.normal(0.002, 0.15, n), 0, 1)
    y = np.clip(difficulty + rng.normal(0.0, 0.15, n), 0, 1)
    tie = rng.random(n) < 0.3
    x[tie] = y[tie]
    return np.round(x, 4), np.round(y, 4)


def best_of(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


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
    ap.add_argument("--quick", action="store_true", help="time ranx and scipy bootstrap on 1/10 too")
    args = ap.parse_args()
    n, B = args.queries, args.resamples
    x, y = per_query_metrics(n)
    d = x - y
    load0 = os.getloadavg()
    rows: list[tuple[str, str, float, str]] = []  # work, implementation, seconds, note

    # ---- memory first, while this process's RSS peak is still low
    mem_sf = peak_memory(lambda: S.sign_flip_test(d, n_resamples=B, seed=0))
    mem_bs = peak_memory(lambda: S.bootstrap_ci(d, n_resamples=B, seed=0))

    # ---- sign-flip randomization
    t_ours, r_ours = best_of(lambda: S.sign_flip_test(d, n_resamples=B, seed=0), args.repeats)
    t_ours1, _ = best_of(lambda: S.sign_flip_test(d, n_resamples=B, seed=0, n_threads=1), args.repeats)
    rows.append(("sign-flip", "auditor.stats.sign_flip_test", t_ours, f"p={r_ours.p_value:.4f}"))
    rows.append(("sign-flip", "auditor.stats.sign_flip_test (1 thread)", t_ours1, ""))

    from ranx.statistical_tests import fisher_randomization_test

    fisher_randomization_test(x[:100], y[:100], 10, 0.01, 42)  # numba JIT compile, not timed
    b_ranx = B // 10 if args.quick else B
    t0 = time.perf_counter()
    p_ranx, _ = fisher_randomization_test(x, y, b_ranx, 0.01, 42)
    t_ranx = (time.perf_counter() - t0) * B / b_ranx
    rows.append(("sign-flip", "ranx fisher_randomization_test (numba, parallel)", t_ranx,
                 f"p={p_ranx:.4f}" + ("" if b_ranx == B else f"; timed at B={b_ranx}, x{B // b_ranx} linear")))

    b_sp = max(1, int(B * args.scipy_perm_fraction))
    t0 = time.perf_counter()
    r_sp = st.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=b_sp, vectorized=True,
                               batch=200, random_state=np.random.default_rng(1))
    t_sp = (time.perf_counter() - t0) * B / b_sp
    rows.append(("sign-flip", "scipy.stats.permutation_test", t_sp,
                 f"p={r_sp.pvalue:.4f} at B={b_sp}; timed at B={b_sp}, x{B / b_sp:g} linear; batch=200"))

    # ---- BCa bootstrap
    t_bs, ci = best_of(lambda: S.bootstrap_ci(d, n_resamples=B, seed=0), args.repeats)
    t_bs1, _ = best_of(lambda: S.bootstrap_ci(d, n_resamples=B, seed=0, n_threads=1), args.repeats)
    rows.append(("BCa bootstrap", "auditor.stats.bootstrap_ci", t_bs, f"[{ci.low:.5f}, {ci.high:.5f}]"))
    rows.append(("BCa bootstrap", "auditor.stats.bootstrap_ci (1 thread)", t_bs1, ""))
    if args.quick:
        # affine in B (O(n^2) jackknife + O(nB) resampling): fit from two small runs
        ts = []
        for b in (B // 20, B // 10):
            t0 = time.perf_counter()
            st.bootstrap((d,), np.mean, method="BCa", n_resamples=b, batch=100, random_state=np.random.default_rng(2))
            ts.append(time.perf_counter() - t0)
        slope = (ts[1] - ts[0]) / (B // 10 - B // 20)
        t_sci = ts[1] + slope * (B - B // 10)
        note = f"timed at B={B // 20} and {B // 10}, affine extrapolation; batch=100"
    else:
        t0 = time.perf_counter()
        ref = st.bootstrap((d,), np.mean, method="BCa", n_resamples=B, batch=100,
                           random_state=np.random.default_rng(2))
        t_sci = time.perf_counter() - t0
        note = f"[{ref.confidence_interval.low:.5f}, {ref.confidence_interval.high:.5f}]; batch=100"
    rows.append(("BCa bootstrap", "scipy.stats.bootstrap(method='BCa')", t_sci, note))

    # ---- GPU (issue 8), only where CUDA is present
    if S._cuda_available():
        import torch

        name = torch.cuda.get_device_name(0)
        for b in (100_000, 1_000_000):
            S.sign_flip_test(d, n_resamples=1000, device="cuda")  # warm-up
            torch.cuda.synchronize()
            t, _ = best_of(lambda: S.sign_flip_test(d, n_resamples=b, seed=0, device="cuda"), 1)
            rows.append((f"sign-flip B={b}", f"auditor.stats on {name}", t, ""))
            t, _ = best_of(lambda: S.bootstrap_ci(d, n_resamples=b, seed=0, device="cuda"), 1)
            rows.append((f"BCa bootstrap B={b}", f"auditor.stats on {name}", t, ""))

    load1 = os.getloadavg()
    print(f"machine: {machine()}")
    print(f"load average (1 min) at start / end: {load0[0]:.2f} / {load1[0]:.2f}")
    print(f"command: python benchmarks/bench_stats.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"data: {n:,} queries, B = {B:,} resamples\n")
    ours = {"sign-flip": t_ours, "BCa bootstrap": t_bs}
    print("| work | implementation | seconds | ours is x faster | note |")
    print("|---|---|---:|---:|---|")
    for work, impl, secs, note in rows:
        ratio = "" if impl.startswith("auditor") or work not in ours else f"{secs / ours[work]:.0f}x"
        print(f"| {work} | {impl} | {secs:.3f} | {ratio} | {note} |")
    print(f"\npeak memory, ours: sign-flip {mem_sf[0]:.0f} MB traced (max-RSS growth {mem_sf[1]:.0f} MB); "
          f"BCa bootstrap {mem_bs[0]:.0f} MB traced (max-RSS growth {mem_bs[1]:.0f} MB)")


if __name__ == "__main__":
    main()
