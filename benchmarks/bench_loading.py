"""Benchmark: peak memory and time of loading MSLR-shaped LETOR files.

Writes (once, cached in ``--dir``) a LETOR file shaped like MSLR-WEB30K: 136 dense features
(the first 40 integer counts, the rest decimals with 6 significant digits), labels 0-4 in
MSLR's proportions, ~120 rows per query, ``qid:`` tokens; deterministic by seed. Then, for each
size, loads it with :func:`auditor.loaders.load` in a fresh child process and reports the
wall and CPU time and the growth of the peak RSS during the load (``ru_maxrss`` after the load
minus the RSS after the imports) against the float64 size of the features (rows x 136 x 8).

The target (issue 17): peak RSS growth at most 2.5x the features' float64 size.

Usage: ``python benchmarks/bench_loading.py --rows 300000 1000000 [--dir /tmp/letor-bench]``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

N_FEATURES = 136
N_COUNTS = 40
LABEL_P = (0.52, 0.32, 0.13, 0.02, 0.01)  # MSLR-WEB30K's label shares (0..4), rounded


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Write an MSLR-shaped LETOR file of ``rows`` rows (~120 per query) to ``path``."""
    rng = np.random.default_rng(seed)
    # a small vocabulary of pre-formatted tokens per feature keeps writing fast (one join per row)
    vocab_n = 997
    vocab = []
    for j in range(N_FEATURES):
        if j < N_COUNTS:
            vals = [str(v) for v in np.sort(rng.poisson(3 + j, vocab_n))]
        else:
            vals = [f"{v:.6g}" for v in np.sort(rng.normal(0, 1 + j / 50, vocab_n))]
        vocab.append(np.array([f"{j + 1}:{v}" for v in vals], dtype=object))
    tmp = path.with_suffix(".part")
    qid, left = 0, 0
    with open(tmp, "w") as f:
        for c in range(0, rows, 20_000):
            k = min(20_000, rows - c)
            codes = rng.integers(0, vocab_n, size=(k, N_FEATURES))
            labels = rng.choice(5, size=k, p=LABEL_P)
            toks = np.empty((k, N_FEATURES), dtype=object)
            for j in range(N_FEATURES):
                toks[:, j] = vocab[j][codes[:, j]]
            out = []
            for i in range(k):
                if left == 0:
                    qid += 1
                    left = int(rng.integers(60, 181))
                left -= 1
                out.append(f"{labels[i]} qid:{qid} {' '.join(toks[i])}\n")
            f.write("".join(out))
    tmp.rename(path)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(path: str) -> None:
    """In a fresh process: load ``path``; print wall, CPU and peak RSS growth as JSON."""
    import resource

    import auditor.loaders as L  # noqa: F401 - imports before the baseline RSS
    from auditor.loaders import load
    import pyarrow  # noqa: F401

    base = _rss_mb()
    # ru_maxrss is the peak so far: the imports' peak is below `base` plus a few MB
    t, c = time.perf_counter(), time.process_time()
    d = load(path, "letor")
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    X = d.features["all"]
    print(json.dumps({"rows": int(X.shape[0]), "cols": int(X.shape[1]), "wall": wall, "cpu": cpu,
                      "peak_growth_mb": peak - base, "features_mb": X.nbytes / 2**20,
                      "checksum": float(X[:, :5].sum() + d.labels.sum())}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[300_000, 1_000_000])
    ap.add_argument("--dir", default="/tmp/letor-bench")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child(a.child)
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import cpu_model

    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    print(f"# {cpu_model()}; load average {os.getloadavg()[0]:.1f} (1 min)")
    print("| rows | file MB | load wall s | load CPU s | features float64 MB | peak RSS growth MB | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for rows in a.rows:
        p = d / f"mslr_{rows}.txt"
        if not p.exists():
            t = time.perf_counter()
            generate(p, rows)
            print(f"# generated {p} in {time.perf_counter() - t:.0f} s", flush=True)
        out = subprocess.run([sys.executable, __file__, "--child", str(p)], capture_output=True, text=True)
        if out.returncode:
            print(out.stderr, file=sys.stderr)
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['rows']:,} | {p.stat().st_size / 2**20:,.0f} | {r['wall']:.1f} | {r['cpu']:.1f} | "
              f"{r['features_mb']:,.0f} | {r['peak_growth_mb']:,.0f} | {r['peak_growth_mb'] / r['features_mb']:.2f}x |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
