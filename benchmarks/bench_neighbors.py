"""Benchmark: exact cosine nearest neighbour, 200,000 train x 50,000 test x 512-d, ours vs scikit-learn.

    python benchmarks/bench_neighbors.py [--n-train 200000] [--n-test 50000] [--dim 512]
                                         [--compare-rows 5000] [--budget-mb 2048] [--skip-sklearn]
                                         [--skip-scale] [--dtypes float32,float64] [--precisions auto,float32]

What it measures (issue 8: "200,000 train x 50,000 test x 512-d within 2 GB, >= 3x faster than
scikit-learn NearestNeighbors(algorithm="brute", metric="cosine") in the same run"):

1. **Scale and memory** -- ours (:func:`auditor.neighbors.cosine_neighbors`, k = 1) on the full
   problem in a fresh child process, with ``precision="auto"`` (bfloat16 screening + exact
   float64 rescoring on CPUs with native bfloat16, else float32) and with ``"float32"``: wall
   and CPU time, tracemalloc peak during the search (numpy's buffers; torch's bfloat16 copy is
   not traced) and the child's peak RSS (everything, inputs included) against ``--budget-mb``.
2. **Speed against the peer** -- on the same first ``--compare-rows`` test rows against the full
   200,000-row base (time is linear in the number of test rows for both), each in its own fresh
   child process: ours (both precisions) and ``NearestNeighbors(n_neighbors=1, algorithm="brute",
   metric="cosine").fit(base).kneighbors(test)``, with float32 inputs and with float64 inputs
   (numpy's default dtype, and what a RankingDataset holds). The neighbours are checked to
   agree (same index, or a cosine within 1e-5 of the peer's: a float32 near-tie) before any
   ratio is printed.

Data: a seeded Gaussian mixture (2,000 centres, unit noise), so nearest neighbours are
meaningful and near-ties rare. BLAS threads are whatever the machine gives both (printed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model  # noqa: E402


def make_data(n_train: int, n_test: int, dim: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded mixture data, generated block-wise so the float64 intermediate stays small."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, dim)).astype(np.float32) * 2.0

    def draw(n: int) -> np.ndarray:
        out = np.empty((n, dim), dtype=dtype)
        for s in range(0, n, 20000):
            m = min(20000, n - s)
            blk = centres[rng.integers(0, centres.shape[0], m)] + rng.standard_normal((m, dim), dtype=np.float32)
            out[s:s + m] = blk
        return out

    return draw(n_train), draw(n_test)


def child(args: argparse.Namespace) -> None:
    """Run one method in this (fresh) process and print a JSON line."""
    import tracemalloc

    base, test = make_data(args.n_train, args.n_test, args.dim, args.dtype)
    if args.rows:
        test = np.ascontiguousarray(test[: args.rows])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out: dict = {"method": args.method, "dtype": args.dtype, "rows": int(test.shape[0]),
                 "input_bytes": int(base.nbytes + test.nbytes), "rss_after_data": int(rss0)}
    if args.method == "ours":
        sys.path.insert(0, str(ROOT))
        from auditor.neighbors import cosine_neighbors

        tracemalloc.start()
        t, c = time.perf_counter(), time.process_time()
        res = cosine_neighbors(test, base, k=1, precision=args.precision)
        out["backend"] = res.backend
        out["seconds"], out["cpu_seconds"] = time.perf_counter() - t, time.process_time() - c
        out["tracemalloc_peak"] = int(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        idx, sim = res.index[:, 0], res.similarity[:, 0]
    else:
        from sklearn.neighbors import NearestNeighbors

        t, c = time.perf_counter(), time.process_time()
        dist, ind = NearestNeighbors(n_neighbors=1, algorithm="brute", metric="cosine").fit(base).kneighbors(test)
        out["seconds"], out["cpu_seconds"] = time.perf_counter() - t, time.process_time() - c
        idx, sim = ind[:, 0], 1.0 - dist[:, 0]
    out["rss_peak"] = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    if args.save:
        np.savez(args.save, idx=idx, sim=sim)
    print("RESULT " + json.dumps(out), flush=True)


def spawn(args: argparse.Namespace, method: str, dtype: str, rows: int, save: str | None,
          precision: str = "auto") -> dict:
    cmd = [sys.executable, __file__, "--child", "--method", method, "--dtype", dtype, "--rows", str(rows),
           "--n-train", str(args.n_train), "--n-test", str(args.n_test), "--dim", str(args.dim),
           "--precision", precision]
    if save:
        cmd += ["--save", save]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if p.returncode != 0 or not line:
        raise SystemExit(f"child {method}/{dtype} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return json.loads(line[0][7:])


def agreement(a: str, b: str) -> tuple[float, float]:
    x, y = np.load(a), np.load(b)
    same = x["idx"] == y["idx"]
    # a different index is acceptable only as a near-tie: both cosines equal within 1e-5
    near = np.abs(x["sim"] - y["sim"]) <= 1e-5
    return float(same.mean()), float((same | near).mean())


def machine() -> str:
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i['internal_api']} x{i['num_threads']}" for i in threadpool_info())
    except Exception:  # threadpoolctl is optional
        blas = "?"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu_model()}, load average {load:.1f} at start, Python "
            f"{platform.python_version()}, numpy {np.__version__}, threads: {blas}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-train", type=int, default=200_000)
    ap.add_argument("--n-test", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--compare-rows", type=int, default=5_000)
    ap.add_argument("--budget-mb", type=float, default=2048)
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--skip-scale", action="store_true", help="skip part 1 (the full-size runs of ours alone)")
    ap.add_argument("--dtypes", default="float32,float64", help="input dtypes compared in part 2")
    ap.add_argument("--precisions", default="auto,float32", help="our precisions (part 1 and 2)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--method", default="ours", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--save", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    import tempfile

    print("command:", "python benchmarks/bench_neighbors.py " + " ".join(sys.argv[1:]))
    print("machine:", machine())
    mb = 2 ** 20
    print(f"\n1. scale: {args.n_train:,} x {args.n_test:,} x {args.dim}, float32 inputs, k = 1, budget "
          f"{args.budget_mb:.0f} MB (peak RSS of the whole process, inputs included)")
    for prec in ([] if args.skip_scale else args.precisions.split(",")):
        full = spawn(args, "ours", "float32", 0, None, prec)
        within = full["rss_peak"] <= args.budget_mb * mb
        print(f"   ours [{full['backend']}]: {full['seconds']:.1f} s wall, {full['cpu_seconds']:.1f} s CPU, inputs "
              f"{full['input_bytes'] / mb:.0f} MB, numpy working memory (tracemalloc peak) "
              f"{full['tracemalloc_peak'] / mb:.0f} MB, process peak RSS {full['rss_peak'] / mb:.0f} MB: "
              f"{'within' if within else 'OVER'} budget")
    if args.skip_sklearn:
        return
    rows = min(args.compare_rows, args.n_test)
    print(f"\n2. speed: first {rows:,} test rows x {args.n_train:,} train rows x {args.dim}, k = 1, each in a fresh process")
    print(f"   {'method':<40}{'dtype':<9}{'wall s':>9}{'CPU s':>9}{'sklearn / ours':>22}{'peak RSS MB':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in args.dtypes.split(","):
            s = spawn(args, "sklearn", dtype, rows, f"{tmp}/sk_{dtype}.npz")
            for prec in args.precisions.split(","):
                o = spawn(args, "ours", dtype, rows, f"{tmp}/ours_{dtype}_{prec}.npz", prec)
                same, ok = agreement(f"{tmp}/ours_{dtype}_{prec}.npz", f"{tmp}/sk_{dtype}.npz")
                if ok < 1.0:
                    raise SystemExit(f"results disagree beyond near-ties for {dtype}/{prec}: {ok:.6f}")
                ratio = f"{s['seconds'] / o['seconds']:.1f}x / {s['cpu_seconds'] / o['cpu_seconds']:.1f}x"
                print(f"   {'ours [' + o['backend'] + ']':<40}{dtype:<9}{o['seconds']:>9.2f}{o['cpu_seconds']:>9.2f}"
                      f"{ratio:>22}{o['rss_peak'] / mb:>13.0f}   same neighbour as sklearn: {same:.4%}")
            print(f"   {'sklearn NearestNeighbors(brute, cosine)':<40}{dtype:<9}{s['seconds']:>9.2f}{s['cpu_seconds']:>9.2f}"
                  f"{'':>22}{s['rss_peak'] / mb:>13.0f}")
    print("\nsklearn / ours = wall-time ratio / CPU-time ratio (CPU = all threads of the process), identical inputs; "
          "'same neighbour' = identical index (any other must be a near-tie within 1e-5 cosine, checked).")


if __name__ == "__main__":
    main()
