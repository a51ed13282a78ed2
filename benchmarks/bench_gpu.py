"""GPU statistics and GPU near-duplicate search (issue 8), against the CPU path in the same run.

    python benchmarks/bench_gpu.py                      # on a CUDA machine: the full check
    python benchmarks/bench_gpu.py --device cpu --small # dry run here: torch on the CPU, small sizes

Two parts, each compared with the numpy CPU path on the same data in this process:

1. **Resampling statistics** (``auditor.stats``): the sign-flip randomization test and the BCa
   bootstrap CI of the mean on 50,000 nDCG-like per-query differences (the data of
   ``bench_stats.py``: bounded, skewed, 30% ties, a small true gain so the p-value is mid-range,
   where Monte Carlo error is largest), at B = 100,000 (CPU and device) and B = 1,000,000 (device
   only; the CPU figure is extrapolated linearly from B = 100,000 and marked so). The torch
   stream differs from numpy's, so the two agree *within Monte Carlo error*, not bit for bit:

   - sign-flip p-values: |p_dev - p_cpu| <= 4 x sqrt(p(1-p)/B_cpu + p(1-p)/B_dev) + 2/B;
   - BCa endpoints: |q_dev - q_cpu| <= 4 x (SE_cpu + SE_dev), SE of a bootstrap quantile
     ~ sqrt(a(1-a)/B) / f(q), with f the normal density fitted to the bootstrap means.

   A row that fails its check prints ``DISAGREE`` and the script exits 1.
2. **Exact cosine nearest neighbour** (``auditor.neighbors.cosine_neighbors``, k = 1) on
   200,000 train x 50,000 test x 512-d float32 (the seeded mixture of ``bench_neighbors.py``):
   device time and peak device memory (``torch.cuda.max_memory_allocated``; the target is the
   same 2 GB bound as on the CPU), and agreement with the numpy CPU search on the first
   ``--nn-check-rows`` test rows (same index, or a cosine within 1e-5: a float32 near-tie).

``--json FILE`` writes every row. The machine line names the card (``torch.cuda.get_device_name``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model  # noqa: E402
from bench_neighbors import make_data  # noqa: E402
from bench_stats import per_query_metrics  # noqa: E402

from auditor import stats as S  # noqa: E402
from auditor.neighbors import cosine_neighbors  # noqa: E402


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str = "cpu") -> tuple[float, float, Any]:
    """(wall s, process CPU s, result) of one call, the device synchronised before and after."""
    _sync(device)
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0, out


def quantile_se(boots_sd: float, a: float, B: int) -> float:
    """Monte Carlo SE of the ``a`` quantile of B bootstrap means, normal density fitted."""
    from scipy.stats import norm

    z = norm.ppf(a)
    dens = norm.pdf(z) / boots_sd if boots_sd > 0 else float("inf")
    return math.sqrt(a * (1 - a) / B) / dens


def stats_part(device: str, n: int, b_cpu: int, b_dev: list[int]) -> tuple[list[dict[str, Any]], bool]:
    x, y = per_query_metrics(n)
    d = x - y
    rows: list[dict[str, Any]] = []
    ok = True
    dev_kw: dict[str, Any] = {"device": device}
    if device == "cpu":  # dry run: the torch backend on CPU tensors stands in for the GPU
        dev_kw["_backend"] = "torch"
    # warm-up (CUDA context, kernels), not timed
    S.sign_flip_test(d, n_resamples=1000, seed=1, **dev_kw)
    S.bootstrap_ci(d, n_resamples=1000, seed=1, **dev_kw)

    w, c, ref_sf = timed(lambda: S.sign_flip_test(d, n_resamples=b_cpu, seed=0, device="cpu", _backend="numpy"))
    rows.append({"work": "sign-flip", "B": b_cpu, "impl": "numpy (CPU)", "wall_s": w, "cpu_s": c,
                 "result": f"p={ref_sf.p_value:.5f}", "check": "reference"})
    w, c, ref_ci = timed(lambda: S.bootstrap_ci(d, n_resamples=b_cpu, seed=0, device="cpu", _backend="numpy",
                                                return_distribution=True))
    rows.append({"work": "BCa bootstrap", "B": b_cpu, "impl": "numpy (CPU)", "wall_s": w, "cpu_s": c,
                 "result": f"[{ref_ci.low:.6f}, {ref_ci.high:.6f}]", "check": "reference"})
    cpu_rate = {"sign-flip": rows[0]["wall_s"] / b_cpu, "BCa bootstrap": rows[1]["wall_s"] / b_cpu}
    sd = float(np.std(ref_ci.extra.pop("distribution")))
    p0 = ref_sf.p_value
    # the BCa endpoints sit at adjusted quantile levels; the levels are close to 0.025 / 0.975 here
    a_lo, a_hi = 0.025, 0.975
    for B in b_dev:
        w, c, r = timed(lambda: S.sign_flip_test(d, n_resamples=B, seed=0, **dev_kw), device)
        tol = 4 * math.sqrt(p0 * (1 - p0) / b_cpu + p0 * (1 - p0) / B) + 2 / min(B, b_cpu)
        good = abs(r.p_value - p0) <= tol
        ok &= good
        rows.append({"work": "sign-flip", "B": B, "impl": f"torch ({r.extra['device']})", "wall_s": w, "cpu_s": c,
                     "result": f"p={r.p_value:.5f}", "cpu_wall_s_same_B": cpu_rate["sign-flip"] * B,
                     "check": f"{'agrees' if good else 'DISAGREE'}: |dp|={abs(r.p_value - p0):.5f} <= {tol:.5f}"})
        w, c, ci = timed(lambda: S.bootstrap_ci(d, n_resamples=B, seed=0, **dev_kw), device)
        tl = 4 * (quantile_se(sd, a_lo, b_cpu) + quantile_se(sd, a_lo, B))
        th = 4 * (quantile_se(sd, a_hi, b_cpu) + quantile_se(sd, a_hi, B))
        dl, dh = abs(ci.low - ref_ci.low), abs(ci.high - ref_ci.high)
        good = dl <= tl and dh <= th
        ok &= good
        rows.append({"work": "BCa bootstrap", "B": B, "impl": f"torch ({ci.extra['device']})", "wall_s": w,
                     "cpu_s": c, "result": f"[{ci.low:.6f}, {ci.high:.6f}]",
                     "cpu_wall_s_same_B": cpu_rate["BCa bootstrap"] * B,
                     "check": (f"{'agrees' if good else 'DISAGREE'}: |dlow|={dl:.2e} <= {tl:.2e}, "
                               f"|dhigh|={dh:.2e} <= {th:.2e}")})
    return rows, ok


def nn_part(device: str, n_train: int, n_test: int, dim: int, check_rows: int,
            budget_mb: float) -> tuple[list[dict[str, Any]], bool]:
    import torch

    base, queries = make_data(n_train, n_test, dim, "float32")
    backend = "torch"
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    cosine_neighbors(queries[:256], base[:4096], k=1, backend=backend, device=device)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    w, c, res = timed(lambda: cosine_neighbors(queries, base, k=1, backend=backend, device=device,
                                               memory_limit_mb=budget_mb / 2), device)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else float("nan")
    m = min(check_rows, n_test)
    w_np, c_np, ref = timed(lambda: cosine_neighbors(queries[:m], base, k=1, backend="numpy", device="cpu"))
    same = res.index[:m, 0] == ref.index[:, 0]
    near = np.abs(res.similarity[:m, 0] - ref.similarity[:, 0]) <= 1e-5
    good = bool(np.all(same | near))
    mem_ok = not (peak > budget_mb)
    rows = [{"work": f"cosine NN {n_train:,} x {n_test:,} x {dim}", "impl": res.backend, "wall_s": w, "cpu_s": c,
             "peak_device_mb": peak, "budget_mb": budget_mb,
             "numpy_wall_s_extrapolated": w_np * n_test / m,
             "check": (f"{'agrees' if good else 'DISAGREE'} with numpy on {m:,} rows "
                       f"({int(same.sum()):,} same index, {int((~same & near).sum()):,} near-ties); "
                       f"peak {peak:,.0f} MB {'<=' if mem_ok else '>'} {budget_mb:,.0f} MB")}]
    return rows, good and mem_ok


def machine(device: str) -> str:
    s = f"{cpu_model()}, Python {platform.python_version()}"
    try:
        import torch

        s += f", torch {torch.__version__}"
        if device.startswith("cuda") and torch.cuda.is_available():
            s += f", {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    except ImportError:
        s += ", no torch"
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda[:k] (default), or cpu for a dry run of the torch path")
    ap.add_argument("--small", action="store_true", help="small sizes (seconds): for the dry run and the smoke test")
    ap.add_argument("--skip-stats", action="store_true")
    ap.add_argument("--skip-nn", action="store_true")
    ap.add_argument("--nn-check-rows", type=int, default=2000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.device.startswith("cuda") and not S._cuda_available():
        print(f"--device {args.device}: torch finds no CUDA device here; use --device cpu for a dry run.",
              file=sys.stderr)
        sys.exit(2)
    n, b_cpu, b_dev = (2000, 2000, [2000, 20000]) if args.small else (50_000, 100_000, [100_000, 1_000_000])
    nn = (5000, 1000, 64) if args.small else (200_000, 50_000, 512)
    print(f"machine: {machine(args.device)}")
    print(f"command: python benchmarks/bench_gpu.py {' '.join(sys.argv[1:])}".rstrip())
    ok = True
    out: dict[str, Any] = {"machine": machine(args.device), "device": args.device}
    if not args.skip_stats:
        rows, good = stats_part(args.device, n, b_cpu, b_dev)
        ok &= good
        out["stats"] = rows
        print(f"\n{n:,} per-query differences; CPU reference at B = {b_cpu:,}\n")
        print("| work | B | implementation | wall s | CPU s | CPU path wall s at this B | result | check |")
        print("|---|---:|---|---:|---:|---:|---|---|")
        for r in rows:
            cw = r.get("cpu_wall_s_same_B")
            cw_s = "" if cw is None else (f"{cw:.2f}" + (" (extrapolated)" if r["B"] != b_cpu else ""))
            print(f"| {r['work']} | {r['B']:,} | {r['impl']} | {r['wall_s']:.3f} | {r['cpu_s']:.3f} | {cw_s} | "
                  f"{r['result']} | {r['check']} |")
    if not args.skip_nn:
        rows, good = nn_part(args.device, *nn, check_rows=min(args.nn_check_rows, nn[1]), budget_mb=2048.0)
        ok &= good
        out["neighbors"] = rows
        print("\n| work | backend | wall s | CPU s | numpy wall s (extrapolated from the checked rows) | check |")
        print("|---|---|---:|---:|---:|---|")
        for r in rows:
            print(f"| {r['work']} | {r['impl']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | "
                  f"{r['numpy_wall_s_extrapolated']:.1f} | {r['check']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
    print("\nall checks pass" if ok else "\nSOME CHECKS FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
