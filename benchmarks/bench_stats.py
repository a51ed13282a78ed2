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

    python benchmarks/bench_stats.py                    # full table (~5-10 min on 2 cores)
    python benchmarks/bench_stats.py --repeats 1 --quick

Every contender, ours and the peers, runs ``--repeats`` times, taking turns, so load hits all
alike; the best wall and CPU times are compared. scipy's permutation test runs at the full B
when a short probe says one call fits ``--peer-budget`` seconds; otherwise it is timed on a
fraction of B and extrapolated linearly (its cost is linear in B), and the table says so.
scipy's bootstrap always runs in full (its BCa jackknife is O(n^2), not linear in B). Both
scipy calls get ``batch=`` so they fit in memory (without it they allocate 4 GB, and the BCa
jackknife 20 GB). Needs the ``[bench]`` extra (ranx).
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
from _common import cpu_model, interleaved  # noqa: E402


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
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of every contender, ours and the peers alike, taking turns (best and median reported)")
    ap.add_argument("--peer-budget", type=float, default=240.0,
                    help="seconds one scipy.permutation_test call may take: run at the full B when a probe "
                         "says it fits, else timed on a fraction of B and extrapolated (the table says which)")
    ap.add_argument("--quick", action="store_true", help="time ranx on 1/10 of the resamples, extrapolated")
    args = ap.parse_args()
    n, B = args.queries, args.resamples
    x, y = per_query_metrics(n)
    d = x - y
    load0 = os.getloadavg()

    # ---- memory first, while this process's RSS peak is still low
    mem_sf = peak_memory(lambda: S.sign_flip_test(d, n_resamples=B, seed=0))
    mem_bs = peak_memory(lambda: S.bootstrap_ci(d, n_resamples=B, seed=0))

    from ranx.statistical_tests import fisher_randomization_test

    fisher_randomization_test(x[:100], y[:100], 10, 0.01, 42)  # numba JIT compile, not timed
    b_ranx = B // 10 if args.quick else B

    def scipy_perm(b: int):
        return st.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=b, vectorized=True,
                                   batch=200, random_state=np.random.default_rng(1))

    # a probe (not reported) says whether scipy's permutation test fits the budget at the full B
    probe_b = max(1, B // 50)
    t0 = time.perf_counter()
    scipy_perm(probe_b)
    est = (time.perf_counter() - t0) * B / probe_b
    b_sp = B if est <= args.peer_budget else max(1, int(B * args.peer_budget / est))
    fns = {
        "sf": lambda: S.sign_flip_test(d, n_resamples=B, seed=0),
        "sf1": lambda: S.sign_flip_test(d, n_resamples=B, seed=0, n_threads=1),
        "ranx": lambda: fisher_randomization_test(x, y, b_ranx, 0.01, 42),
        "scipy_perm": lambda: scipy_perm(b_sp),
        "bs": lambda: S.bootstrap_ci(d, n_resamples=B, seed=0),
        "bs1": lambda: S.bootstrap_ci(d, n_resamples=B, seed=0, n_threads=1),
        # always in full: its cost is O(n^2) (jackknife) + O(nB), so no linear extrapolation
        "scipy_bs": lambda: st.bootstrap((d,), np.mean, method="BCa", n_resamples=B, batch=100,
                                         random_state=np.random.default_rng(2)),
    }
    t = interleaved(fns, args.repeats)
    f_r, f_s = B / b_ranx, B / b_sp
    rows = [
        ("sign-flip", "auditor.stats.sign_flip_test", t["sf"], 1.0, f"p={t['sf'][2].p_value:.4f}"),
        ("sign-flip", "auditor.stats.sign_flip_test (1 thread)", t["sf1"], 1.0, ""),
        ("sign-flip", "ranx fisher_randomization_test (numba, 2 threads)", t["ranx"], f_r,
         f"p={t['ranx'][2][0]:.4f}" + ("" if b_ranx == B else f"; timed at B={b_ranx}, x{f_r:g} linear")),
        ("sign-flip", "scipy.stats.permutation_test", t["scipy_perm"], f_s,
         f"p={t['scipy_perm'][2].pvalue:.4f} at B={b_sp:,}" + ("; full B" if b_sp == B else
                                                              f"; timed at B={b_sp:,}, x{f_s:.3g} linear")
         + "; batch=200"),
        ("BCa bootstrap", "auditor.stats.bootstrap_ci", t["bs"], 1.0,
         f"[{t['bs'][2].low:.5f}, {t['bs'][2].high:.5f}]"),
        ("BCa bootstrap", "auditor.stats.bootstrap_ci (1 thread)", t["bs1"], 1.0, ""),
        ("BCa bootstrap", "scipy.stats.bootstrap(method='BCa')", t["scipy_bs"], 1.0,
         f"[{t['scipy_bs'][2].confidence_interval.low:.5f}, {t['scipy_bs'][2].confidence_interval.high:.5f}]; "
         "batch=100"),
    ]

    # ---- GPU (issue 8), only where CUDA is present
    gpu_rows = []
    if S._cuda_available():
        import torch

        name = torch.cuda.get_device_name(0)
        S.sign_flip_test(d, n_resamples=1000, device="cuda")  # warm-up
        S.bootstrap_ci(d, n_resamples=1000, device="cuda")
        for b in (100_000, 1_000_000):
            w, c, _ = timed(lambda: S.sign_flip_test(d, n_resamples=b, seed=0, device="cuda"))
            gpu_rows.append((f"sign-flip B={b:,}", f"auditor.stats on {name}", w, c))
            w, c, _ = timed(lambda: S.bootstrap_ci(d, n_resamples=b, seed=0, device="cuda"))
            gpu_rows.append((f"BCa bootstrap B={b:,}", f"auditor.stats on {name}", w, c))

    load1 = os.getloadavg()
    print(f"machine: {machine()}")
    print(f"load average (1 min) at start / end: {load0[0]:.2f} / {load1[0]:.2f}")
    print(f"command: python benchmarks/bench_stats.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"data: {n:,} queries, B = {B:,} resamples; every contender run {args.repeats} times, taking turns; "
          "best wall and best CPU (this process, all threads) reported, median wall in brackets\n")
    ours = {work: tt for work, impl, tt, _, _ in rows if impl.startswith("auditor.stats.") and "thread" not in impl}
    print("| work | implementation | best (median) wall s | best CPU s | ours x faster (wall / CPU) | note |")
    print("|---|---|---:|---:|---:|---|")
    for work, impl, tt, f, note in rows:
        wall, med, cpu = tt[0] * f, tt[1] * f, tt[3] * f
        ratio = ""
        if not impl.startswith("auditor") and work in ours:
            ratio = f"{wall / ours[work][0]:.0f}x / {cpu / ours[work][3]:.0f}x"
        print(f"| {work} | {impl} | {wall:.3f} ({med:.3f}) | {cpu:.3f} | {ratio} | {note} |")
    for work, impl, wall, cpu in gpu_rows:
        print(f"| {work} | {impl} | {wall:.3f} | {cpu:.3f} | | |")
    print(f"\npeak memory, ours: sign-flip {mem_sf[0]:.0f} MB traced (max-RSS growth {mem_sf[1]:.0f} MB); "
          f"BCa bootstrap {mem_bs[0]:.0f} MB traced (max-RSS growth {mem_bs[1]:.0f} MB)")


if __name__ == "__main__":
    main()
