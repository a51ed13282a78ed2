"""Benchmark: a full default audit of MSLR-shaped data at growing size (issue 17).

    python benchmarks/bench_scale.py --sizes 100k 300k [1M 3M] [--format letor|npz]
                                     [--data-dir /tmp/mslr-scale] [--timeout 7200] [--json out.json]
                                     [--executor local --workers 2 | --executor ray --ray-address ADDR]

For each size, ``benchmarks/mslr_gen.py`` writes train (that many rows) and test (a third) once
into ``--data-dir/<rows>/``, then the real command line runs in a fresh child process::

    audit run --model examples/plugins/lightgbm_ranker.py:make_model \\
        --train DIR/train.txt --test DIR/test.txt --format letor --out DIR/out

(all six audits at their default parameters, not ``--quick``; serial unless ``--executor``;
its stderr, one progress line per finished trial, goes to ``DIR/out.log``).
Recorded per size: wall time, the child's CPU time (user + system, all threads, with the
``local`` workers it waited for; not a Ray cluster's workers), its peak RSS (``os.wait4``'s
``ru_maxrss``: the largest of the child and the workers it waited for), peak RSS over the
float64 size of the loaded features (train + test rows x 136 x 8 bytes), and from the run's
``results.json`` the seconds inside the model's fit and score (``timing.model_s``) against
the auditor's own (wall minus that), per audit too, plus the verdict. The 1-minute load
average before and after says how far a wall time is inflated on a shared machine.

Targets (issue 17, 2 cores / 24 GB): the auditor's own time <= 25% of the run at 1M rows and
growing no faster than n^1.2 from 100k to 3M; peak RSS <= 2.5x the float64 feature size; the
3M audit completes.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model  # noqa: E402
import mslr_gen  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "examples/plugins/lightgbm_ranker.py:make_model"


def parse_size(s: str) -> int:
    s = s.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1:], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def ensure_data(root: Path, rows: int, fmt: str, seed: int) -> tuple[Path, Path, float]:
    d = root / str(rows)
    suf = ".txt" if fmt == "letor" else ".npz"
    tr, te = d / f"train{suf}", d / f"test{suf}"
    if tr.exists() and te.exists():
        return tr, te, 0.0
    t = time.perf_counter()
    mslr_gen.generate(d, rows, seed=seed, formats=(fmt,))
    return tr, te, time.perf_counter() - t


def run_one(rows: int, tr: Path, te: Path, fmt: str, out: Path, timeout: float, extra: list[str]) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "auditor.cli", "run", "--model", PLUGIN, "--train", str(tr), "--test", str(te),
           "--format", fmt, "--out", str(out), *extra]  # not -q: the log shows a line per finished trial
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    load0 = os.getloadavg()[0]
    log = open(out.parent / f"{out.name}.log", "w")
    t = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    timed_out = False
    deadline = t + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            p.terminate()                      # SIGTERM: the run keeps its trials (--resume)
            timed_out = True
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.5)
    wall = time.perf_counter() - t
    log.close()
    code = os.waitstatus_to_exitcode(status)
    row: dict[str, Any] = {
        "rows": rows, "test_rows": int(round(rows / 3)), "command": " ".join(cmd[1:]), "exit_code": code,
        "timed_out": timed_out, "wall_s": round(wall, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
        "peak_rss_gb": round(ru.ru_maxrss * 1024 / 1e9, 2),
        "features_f64_gb": round((rows + round(rows / 3)) * mslr_gen.N_FEATURES * 8 / 1e9, 3),
        "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
    }
    row["rss_ratio"] = round(row["peak_rss_gb"] / row["features_f64_gb"], 2)
    res_path = out / "results.json"
    if res_path.exists():
        r = json.loads(res_path.read_text())
        timing = r.get("timing") or {}
        model_s = timing.get("model_s")
        row.update(verdict=r["verdict"], run_s=r["duration_s"], timing=timing, model_s=model_s)
        if model_s is not None and r["config"].get("executor", "serial") == "serial":
            # wall minus the model's time is the auditor's own only when trials run one at a time
            row["auditor_s"] = round(wall - model_s, 1)
            row["auditor_share"] = round((wall - model_s) / wall, 3)
        row["audits"] = {a["name"]: {"status": a["status"], "trials_s": a.get("duration_s"),
                                     "model_s": a.get("model_s"), "measure_s": a.get("measure_s")}
                         for a in r["audits"]}
    return row


def exponent(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
    if a.get(key) and b.get(key):
        return math.log(b[key] / a[key]) / math.log(b["rows"] / a["rows"])
    return None


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| train rows | wall | CPU | peak RSS | RSS / float64 features | model fit+score | auditor's own "
            "| auditor share | verdict | load (1-min, before/after) |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        done = "" if r["exit_code"] in (0, 1, 3) else f" (exit {r['exit_code']}{', timed out' if r['timed_out'] else ''})"
        lines.append(
            f"| {label(r['rows'])} | {r['wall_s']:.0f} s{done} | {r['cpu_s']:.0f} s | {r['peak_rss_gb']:.2f} GB | "
            f"{r['rss_ratio']:.2f}x of {r['features_f64_gb']:.2f} GB | "
            f"{r.get('model_s', float('nan')):.0f} s | {r.get('auditor_s', float('nan')):.0f} s | "
            f"{100 * r.get('auditor_share', float('nan')):.0f}% | {r.get('verdict', '-')} | "
            f"{r['load_before']:.1f} / {r['load_after']:.1f} |")
    return "\n".join(lines)


def audit_table(rows: list[dict[str, Any]]) -> str:
    names = list(next((r["audits"] for r in rows if "audits" in r), {}))
    lines = ["| audit | " + " | ".join(f"{label(r['rows'])}: trials / model / own" for r in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for n in names:
        cells = []
        for r in rows:
            a = r.get("audits", {}).get(n)
            if not a or a["trials_s"] is None:
                cells.append("-")
                continue
            m = a["model_s"] if a["model_s"] is not None else float("nan")
            own = a["trials_s"] - m + (a["measure_s"] or 0.0)
            cells.append(f"{a['trials_s']:.0f} / {m:.0f} / {own:.0f} s")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["100k", "300k"], help="train rows, e.g. 100k 300k 1M 3M")
    ap.add_argument("--format", choices=["letor", "npz"], default="letor")
    ap.add_argument("--data-dir", default="/tmp/mslr-scale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per audit run")
    ap.add_argument("--executor", choices=["serial", "local", "ray"], default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--ray-address", default=None)
    ap.add_argument("--checks", default=None, help="a subset of the audits (default: all six)")
    ap.add_argument("--json", default=None, help="write the rows here (updated after each size)")
    a = ap.parse_args(argv)
    extra: list[str] = []
    if a.executor:
        extra += ["--executor", a.executor]
    if a.workers:
        extra += ["--workers", str(a.workers)]
    if a.ray_address:
        extra += ["--ray-address", a.ray_address]
    if a.checks:
        extra += ["--checks", a.checks]
    root = Path(a.data_dir)
    print(f"machine: {cpu_model()}, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; "
          f"python {sys.version.split()[0]}", flush=True)
    rows = []
    for s in a.sizes:
        n = parse_size(s)
        tr, te, gen_s = ensure_data(root, n, a.format, a.seed)
        if gen_s:
            print(f"{label(n)}: generated in {gen_s:.0f} s", flush=True)
        suffix = (f"-{a.executor}{a.workers or ''}" if a.executor else "") + ("-subset" if a.checks else "")
        r = run_one(n, tr, te, a.format, root / str(n) / f"out{suffix}", a.timeout, extra)
        r["generate_s"] = round(gen_s, 1)
        rows.append(r)
        print(json.dumps({k: v for k, v in r.items() if k not in ("audits", "command")}), flush=True)
        if a.json:
            Path(a.json).write_text(json.dumps({"machine": cpu_model(), "rows": rows}, indent=2) + "\n")
    print()
    print(table(rows))
    print()
    print(audit_table(rows))
    for x, y in zip(rows, rows[1:]):
        e = exponent({"rows": x["rows"], "v": x.get("auditor_s")}, {"rows": y["rows"], "v": y.get("auditor_s")}, "v")
        if e is not None:
            print(f"auditor's own time {label(x['rows'])} -> {label(y['rows'])}: grows as n^{e:.2f}")
    if len(rows) > 2:
        e = exponent({"rows": rows[0]["rows"], "v": rows[0].get("auditor_s")},
                     {"rows": rows[-1]["rows"], "v": rows[-1].get("auditor_s")}, "v")
        if e is not None:
            print(f"auditor's own time {label(rows[0]['rows'])} -> {label(rows[-1]['rows'])}: grows as n^{e:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
