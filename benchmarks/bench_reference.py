"""CoTRR-Pro training throughput (``full`` preset) and the wall time of a full reference audit.

Rows, all in one process on one device:

- ``fp32 eager``        -- float32, no autocast, AdamW (foreach), no compile;
- ``bf16 + fused``      -- bf16 autocast, fused AdamW (CUDA), eager;
- ``bf16 + fused + compile`` -- the same under ``torch.compile`` (CUDA by default; ``--compile``
  forces it on the CPU, where it costs a minute of compilation);
- ``audit run --model reference`` -- the whole audit suite on the bundled ``clean`` data,
  run as a subprocess (``--audit``), with its verdict.

Each throughput row runs the real training step of :mod:`reference_model.train` (gather the
batch's rows, forward, pad per query, ListMLE + 0.5 focal + 0.2 calibration, backward, clip,
AdamW) on random inputs, ``--queries`` queries of ``--candidates`` candidates per step, after
``--warmup`` untimed steps. Throughput = candidates per second of training. The inputs have
the widths the full preset trains on (64 principal components per modality, computed once
in preprocessing); ``--raw-inputs`` feeds the raw 512 / 512 / 256 / 512 embeddings instead
(the seed's input layer; the projections are ~2% of the FLOPs, so the two differ little).

Run::

    python benchmarks/bench_reference.py                       # CPU: a few steps, 32 queries a batch
    python benchmarks/bench_reference.py --device cuda --audit # GPU: 4,096 queries a batch, + audit
    python benchmarks/bench_reference.py --device cuda --queries 2048 4096 8192 --json out.json

Targets (issue 5, one H100/H200): >= 2,000,000 candidates/s training, full audit <= 60 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reference_model.config import PRESETS
from reference_model.losses import combined_loss
from reference_model.model import CoTRRNet, count_parameters
from reference_model.train import Batchable, _DeviceData, _forward, _mask, pad_scores


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return f"{p.name} ({p.total_memory / 2**30:.0f} GiB), torch {torch.__version__}, CUDA {torch.version.cuda}"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:
        model = platform.processor() or platform.machine()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def full_config(raw_inputs: bool):
    """The full preset's network as the audit trains it: inputs of ``input_rank`` principal
    components (the PCA runs once in preprocessing), or the raw bundled widths."""
    mcfg, tcfg = PRESETS["full"]
    if raw_inputs or mcfg.input_rank == 0:
        return replace(mcfg, image_dim=512, text_dim=512, visual_dim=256, query_dim=512, input_rank=0), tcfg
    k = mcfg.input_rank
    return replace(mcfg, image_dim=k, text_dim=k, visual_dim=k, query_dim=k), tcfg


def throughput(device: torch.device, n_queries: int, n_cand: int, *, amp: bool, fused: bool, compile_: bool,
               steps: int, warmup: int, seed: int = 0, raw_inputs: bool = False) -> dict[str, Any]:
    """Train-step throughput of the full preset on one fixed batch of random inputs."""
    mcfg, tcfg = full_config(raw_inputs)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = n_queries * n_cand
    data = Batchable(image=rng.standard_normal((n, mcfg.image_dim), dtype=np.float32),
                     text=rng.standard_normal((n, mcfg.text_dim), dtype=np.float32),
                     visual=rng.standard_normal((n, mcfg.visual_dim), dtype=np.float32),
                     query=rng.standard_normal((n_queries, mcfg.query_dim), dtype=np.float32),
                     offsets=np.arange(0, n + 1, n_cand, dtype=np.int64),
                     labels=rng.integers(0, 4, n).astype(np.float32))
    d = _DeviceData(data, device)
    net = CoTRRNet(mcfg).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay,
                            **({"fused": True} if fused else {}))
    fwd = torch.compile(net) if compile_ else net
    queries = np.arange(n_queries)
    kw = dict(w_listmle=tcfg.w_listmle, w_focal=tcfg.w_focal, w_calibration=tcfg.w_calibration, max_label=3.0)

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            s, rows, bi, pi, C = _forward(fwd, d, queries)
        tie = torch.rand(rows.shape[0], device=device)
        loss = combined_loss(pad_scores(s.float(), bi, pi, n_queries, C), pad_scores(d.labels[rows], bi, pi, n_queries, C),
                             _mask(bi, pi, n_queries, C), tie_break=pad_scores(tie, bi, pi, n_queries, C), **kw)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), tcfg.grad_clip)
        opt.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(device)
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    dt = time.perf_counter() - t0
    out = {"queries_per_step": n_queries, "candidates_per_step": n, "steps": steps, "seconds": dt,
           "warmup_seconds": t_warm, "candidates_per_s": n * steps / dt, "ms_per_step": 1000 * dt / steps,
           "params": count_parameters(net)}
    if device.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def full_audit(device: str, timeout: float, out_dir: str | None = None) -> dict[str, Any]:
    """``audit run --model reference`` on the bundled clean data, as a subprocess."""
    exe = shutil.which("audit")
    cmd = [exe, "run"] if exe else [sys.executable, "-m", "auditor.cli", "run"]
    try:
        import auditor.cli  # noqa: F401
    except Exception as e:  # the CLI is not importable (missing extras): skip the row
        return {"skipped": f"the audit CLI cannot be imported ({type(e).__name__}: {e})"}
    out_dir = out_dir or tempfile.mkdtemp(prefix="bench_reference_audit_")
    # the entry point needs an installed distribution; the module path works from a checkout too
    cmd += ["--model", "reference_model.plugin:make_model", "--out", out_dir, "--device", device, "-q"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"skipped": f"timed out after {timeout:.0f} s", "command": " ".join(cmd)}
    wall = time.perf_counter() - t0
    res: dict[str, Any] = {"command": " ".join(cmd[1:] if exe else cmd), "wall_s": wall, "exit_code": proc.returncode}
    try:
        r = json.loads(Path(out_dir, "results.json").read_text())
        res.update(verdict=r["verdict"], duration_s=r["duration_s"],
                   statuses={a["name"]: a["status"] for a in r["audits"]})
    except Exception as e:
        res["error"] = f"no results.json ({e}); stderr tail: {proc.stderr[-800:]}"
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    ap.add_argument("--queries", type=int, nargs="+", default=None,
                    help="queries per step (default: 4096 on CUDA, 32 on the CPU)")
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: 30 on CUDA, 3 on the CPU)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 5 on CUDA, 1 on the CPU)")
    ap.add_argument("--compile", dest="compile_", action="store_true", default=None,
                    help="include the torch.compile row (default: on for CUDA, off for the CPU)")
    ap.add_argument("--no-compile", dest="compile_", action="store_false")
    ap.add_argument("--raw-inputs", action="store_true",
                    help="feed the raw 512/512/256/512 embeddings (the seed's input layer, input_rank=0)")
    ap.add_argument("--audit", action="store_true", help="also time a full `audit run --model reference`")
    ap.add_argument("--skip-throughput", action="store_true", help="only the audit row (with --audit)")
    ap.add_argument("--audit-timeout", type=float, default=900.0)
    ap.add_argument("--audit-out", default=None, help="run directory of the audit (default: a temporary one)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)

    dev = torch.device("cuda" if (args.device == "auto" and torch.cuda.is_available()) else
                       ("cpu" if args.device == "auto" else args.device))
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 row is true fp32
    queries = args.queries or ([4096] if cuda else [32])
    steps = args.steps or (30 if cuda else 3)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    do_compile = cuda if args.compile_ is None else args.compile_
    variants = [("fp32 eager", dict(amp=False, fused=False, compile_=False)),
                ("bf16 + fused" if cuda else "bf16 autocast", dict(amp=True, fused=cuda, compile_=False))]
    if do_compile:
        variants.append(("bf16 + fused + compile" if cuda else "bf16 + compile", dict(amp=True, fused=cuda, compile_=True)))

    print(f"# CoTRR-Pro full preset training throughput on {machine(dev)}")
    print(f"# command: python benchmarks/bench_reference.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    rows: list[dict[str, Any]] = []
    if not args.skip_throughput:
        print(f"{'variant':<26} {'queries/step':>12} {'cand/step':>10} {'ms/step':>10} {'cand/s':>14} {'peak GiB':>9}")
    for q in ([] if args.skip_throughput else queries):
        base = None
        for name, kw in variants:
            try:
                r = throughput(dev, q, args.candidates, steps=steps, warmup=warmup, raw_inputs=args.raw_inputs, **kw)
            except Exception as e:  # an OOM or compile failure is a result, not a crash of the benchmark
                r = {"error": f"{type(e).__name__}: {str(e)[:300]}", "queries_per_step": q}
                print(f"{name:<26} {q:>12} {'':>10} {'':>10} {'ERROR':>14}  {r['error'][:80]}")
                rows.append({"variant": name, **r})
                if cuda:
                    torch.cuda.empty_cache()
                continue
            base = base or r["candidates_per_s"]
            r["speedup_vs_fp32"] = r["candidates_per_s"] / base
            rows.append({"variant": name, **r})
            print(f"{name:<26} {q:>12} {r['candidates_per_step']:>10} {r['ms_per_step']:>10.1f} "
                  f"{r['candidates_per_s']:>14,.0f} {r.get('peak_gib', float('nan')):>9.2f}  "
                  f"(x{r['speedup_vs_fp32']:.2f})")
            if cuda:
                torch.cuda.empty_cache()
    mcfg, _ = full_config(args.raw_inputs)
    inputs = "raw 512/512/256/512" if mcfg.image_dim == 512 else f"{mcfg.image_dim} principal components each"
    print(f"# params: {count_parameters(CoTRRNet(mcfg)):,} (full preset, inputs: {inputs})")
    audit = None
    if args.audit:
        audit = full_audit("cuda" if cuda else "cpu", args.audit_timeout, args.audit_out)
        if "skipped" in audit:
            print(f"audit run --model reference: skipped ({audit['skipped']})")
        else:
            print(f"audit run --model reference ({'cuda, full preset' if cuda else 'cpu, quick preset'}): "
                  f"wall {audit['wall_s']:.1f} s, verdict {audit.get('verdict')} "
                  f"(exit {audit['exit_code']}) {audit.get('statuses', audit.get('error', ''))}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(dev), "device": str(dev), "throughput": rows,
                                               "audit": audit}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
