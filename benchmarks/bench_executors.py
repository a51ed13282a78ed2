"""Benchmark: the ``local`` and ``ray`` executors against ``serial`` on 36 LightGBM trials.

    python benchmarks/bench_executors.py [--repeats 3] [--executors serial local ray local-pool]
                                         [--workers 2] [--n-estimators 100]
                                         [--wait-load 1.2 --max-wait 1200] [--json out.json]

What it measures (issue 8, "Local fan-out": the ``local`` executor on 2 cores is >= 1.6x faster
than ``serial`` for 36 LightGBM trials, with BLAS/OpenMP threads pinned so workers do not
fight):

- **Work**: 36 real audit trials planned by the audits themselves on the LETOR sample
  (``tests/data/ltr/rank.{train,test}``, 201 / 50 queries, 300 features) with the LightGBM
  LambdaMART example plugin (``examples/plugins/lightgbm_ranker.py``, 100 trees by default,
  ``n_jobs=1`` inside the model because the executor parallelises): ``random_label`` with
  ``n_seeds=16`` (1 true-label fit + 16 shuffled-label refits + variant B = 18 trials) and
  ``stability`` with ``k=6, n_seeds=3`` (18 fold refits).
- **Each executor run is a fresh interpreter** (as ``audit run`` is: imports are paid, nothing
  is warm) that builds the context before the clock starts, then runs the trial list through
  :func:`auditor.executors.run_trials`. Wall time covers everything the executor does (pool or
  Ray start-up, pickling the context, the trials, shut-down as far as the caller waits for it).
  ``busy`` is the sum of the trials' own durations; CPU is the process's plus its reaped
  children's (the local pool's workers; Ray's workers belong to its raylet and are not counted).
- **Same results**: every trial's JSON result, and each audit's measurements
  (:meth:`Audit.measure` on the outcomes), must be identical between executors, string for
  string after ``json.dumps`` -- checked before the table is printed.
- **Start-up diagnostics**: seconds to spawn ``--workers`` spawn-context workers, hand them the context
  (a no-op task per worker) and shut them down, and the pickled size of the context.
- ``local-pool`` (measurement only, not an executor): the ``local`` executor's previous design,
  ``--workers`` spawned processes running every trial while this process only collects, to
  show what running trials in the calling process too gains (``local`` now spawns
  ``workers - 1`` processes and works itself).

The machine is shared (2 cores, other engineers' jobs): the load average is printed before and
after each run, ``--wait-load`` holds each run until the 1-minute load average is below a
threshold, and the executors are interleaved per repeat so they see similar load.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auditor.audits import get_audit  # noqa: E402
from auditor.context import AuditConfig  # noqa: E402
from auditor.executors import execute_trial, pin_threads, run_trials  # noqa: E402
from auditor.runner import build_context  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model  # noqa: E402

PLUGIN = str(ROOT / "examples" / "plugins" / "lightgbm_ranker.py") + ":make_model"
TRAIN = ROOT / "tests" / "data" / "ltr" / "rank.train"
TEST = ROOT / "tests" / "data" / "ltr" / "rank.test"
AUDITS = {"random_label": {"n_seeds": 16}, "stability": {"k": 6, "n_seeds": 3}}




def wait_for_load(limit: float | None, max_wait: float) -> float:
    """Sleep until the 1-minute load average is below ``limit`` (or ``max_wait`` passes); seconds waited."""
    if limit is None:
        return 0.0
    t0 = time.monotonic()
    while os.getloadavg()[0] >= limit and time.monotonic() - t0 < max_wait:
        time.sleep(10)
    return time.monotonic() - t0


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_context(n_estimators: int = 100) -> tuple[Any, list]:
    """The benchmark's context and its 36 planned trials."""
    ctx, _ = build_context(PLUGIN, train=str(TRAIN), test=str(TEST), fmt="letor",
                           model_params={"n_jobs": 1, "n_estimators": n_estimators},
                           config=AuditConfig(audits={k: dict(v) for k, v in AUDITS.items()}))
    trials = [t for name in AUDITS for t in get_audit(name).plan(ctx)]
    return ctx, trials


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def run_one(executor: str, workers: int, n_estimators: int = 100) -> dict[str, Any]:
    """In this (fresh) process: build the context untimed, then time every trial on ``executor``.

    Returns wall time, CPU time of this process and of its reaped children (the ``local``
    pool's workers; Ray's workers belong to its raylet and are not counted), the trials' own
    durations, the canonical JSON of each trial result and each audit's measurements.
    """
    ctx, trials = make_context(n_estimators)
    assert len(trials) == 36, len(trials)
    run = lambda: run_trials(ctx, trials, executor, workers=None if executor == "serial" else workers)  # noqa: E731
    if executor == "local-pool":
        # measurement only: the local executor's previous design (``workers`` spawned processes,
        # this process only waiting), to show what running trials in the caller too gains
        run = lambda: _pool_only(ctx, trials, workers)  # noqa: E731
    la0 = load()
    c0, k0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    outcomes = {}
    first = None
    for t, oc in run():
        if first is None:
            first = time.perf_counter() - t0
        if oc.error is not None:
            raise RuntimeError(f"{executor}: trial {t.id} failed: {oc.error}")
        outcomes[t.id] = oc
    wall = time.perf_counter() - t0
    import multiprocessing as mp

    for p in mp.active_children():  # the local pool's workers exit in the background: reap them for
        p.join()                    # their CPU time (after the clock stopped)
    row = {"executor": executor, "wall_s": wall, "cpu_self_s": _cpu(resource.RUSAGE_SELF) - c0,
           "cpu_children_s": _cpu(resource.RUSAGE_CHILDREN) - k0,
           "busy_s": sum(o.duration_s for o in outcomes.values()), "first_result_s": first,
           "load_before": la0, "load_after": load()}
    row["trials"] = {tid: json.dumps(oc.result, sort_keys=True, default=str) for tid, oc in outcomes.items()}
    row["measurements"] = measurements(ctx, {tid: oc.result for tid, oc in outcomes.items()})
    return row


_WORKER_CTX: Any = None


def _init_worker(ctx: Any, threads: int) -> None:
    """Pool initializer (measurement only): the context once per worker, threads pinned."""
    global _WORKER_CTX
    pin_threads(threads)
    _WORKER_CTX = ctx


def _run_in_worker(trial: Any) -> Any:
    return execute_trial(_WORKER_CTX, trial)


def _pool_only(ctx: Any, trials: list, workers: int):
    """``workers`` spawned processes run every trial; this process only collects (the old ``local``)."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, wait

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_init_worker, initargs=(ctx, 1))
    pending = {pool.submit(_run_in_worker, t): t for t in trials}
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for f in done:
            yield pending.pop(f), f.result()
    pool.shutdown(wait=False)


def measurements(ctx: Any, results: dict[str, Any]) -> dict[str, str]:
    """Each audit's measurements from these trial results, as canonical JSON."""
    out = {}
    for name in AUDITS:
        res = {tid.split("/", 1)[1]: r for tid, r in results.items() if tid.startswith(name + "/")}
        ev = get_audit(name).measure(ctx, res)
        out[name] = json.dumps(ev.measurements, sort_keys=True, default=str)
    return out


def _noop(_: int = 0) -> int:
    time.sleep(0.05)  # long enough that both workers take a share
    return os.getpid()


def startup_cost(workers: int) -> dict[str, Any]:
    """In this (fresh) process: seconds to spawn ``workers`` processes that unpickle the context
    (via the pool's initializer, as the ``local`` executor does) and each answer a no-op."""
    import multiprocessing as mp

    ctx, _ = make_context()
    size = len(pickle.dumps(ctx))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(ctx, 1)) as pool:
        pids = set(pool.map(_noop, range(8 * workers)))
        up = time.perf_counter() - t0
    return {"context_pickle_mb": size / 1e6, "spawn_and_init_s": up, "with_shutdown_s": time.perf_counter() - t0,
            "workers_seen": len(pids), "cpu_children_s": _cpu(resource.RUSAGE_CHILDREN)}


def child(mode: str, workers: int, n_estimators: int = 100) -> dict[str, Any]:
    """Run ``mode`` (an executor, or ``startup``) in a fresh interpreter; return its JSON."""
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--workers", str(workers),
                          "--n-estimators", str(n_estimators)],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"child {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--executors", nargs="+", default=["serial", "local", "ray"],
                    help="serial, local, ray, and local-pool (measurement only: the previous local design, N spawned workers with the caller idle)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n-estimators", type=int, default=100, help="trees per LightGBM fit (plugin default 100)")
    ap.add_argument("--wait-load", type=float, default=None, metavar="L",
                    help="before each run, wait (up to --max-wait s) until the 1-minute load average is below L")
    ap.add_argument("--max-wait", type=float, default=900.0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        res = startup_cost(args.workers) if args.child == "startup" else run_one(args.child, args.workers, args.n_estimators)
        print(json.dumps(res))
        return

    import lightgbm

    print(f"machine: {cpu_model()}, Python {platform.python_version()}, lightgbm {lightgbm.__version__}")
    print(f"work: 36 trials ({', '.join(f'{k} {v}' for k, v in AUDITS.items())}) on the LETOR sample "
          f"(201 train / 50 test queries), LightGBM lambdarank, {args.n_estimators} trees, n_jobs=1")
    print("each executor runs in a fresh process (imports paid as in `audit run`); the context is built "
          "before the clock starts")
    if "local" in args.executors:
        st = child("startup", args.workers)
        print(f"local start-up (spawn {args.workers} workers, unpickle a {st['context_pickle_mb']:.1f} MB context, "
              f"no-op): {st['spawn_and_init_s']:.2f} s, {st['with_shutdown_s']:.2f} s with shut-down, "
              f"workers' CPU {st['cpu_children_s']:.2f} s")

    rows: list[dict[str, Any]] = []
    ref: dict[str, Any] | None = None
    for r in range(args.repeats):
        for ex in args.executors:
            waited = wait_for_load(args.wait_load, args.max_wait)
            row = child(ex, args.workers, args.n_estimators)
            row["waited_s"] = waited
            if ref is None:
                ref = {k: row[k] for k in ("executor", "trials", "measurements")}
            else:
                diff = [k for k in ref["trials"] if ref["trials"][k] != row["trials"].get(k)]
                assert not diff and set(ref["trials"]) == set(row["trials"]), \
                    f"{ex}: {len(diff)} trial results differ from {ref['executor']}, e.g. {diff[:3]}"
                assert row["measurements"] == ref["measurements"], \
                    f"{ex}: per-audit measurements differ from {ref['executor']}"
            del row["trials"], row["measurements"]
            row["repeat"] = r
            rows.append(row)
            print(f"  repeat {r} {ex:<6} wall {row['wall_s']:6.2f} s  busy {row['busy_s']:6.2f} s  "
                  f"first result {row['first_result_s']:5.2f} s  CPU self {row['cpu_self_s']:5.2f} s "
                  f"+ children {row['cpu_children_s']:5.2f} s  load {row['load_before']} -> {row['load_after']}",
                  flush=True)
    print("same results: every trial's result and both audits' measurements identical across executors")

    best = {ex: min(r["wall_s"] for r in rows if r["executor"] == ex) for ex in args.executors}
    print("\n| executor | best wall s | median wall s | busy s (sum of trials) | CPU s (process + pool) "
          "| speed-up vs serial (best / best) | speed-up per repeat (serial / this, same repeat) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for ex in args.executors:
        rs = sorted((r for r in rows if r["executor"] == ex), key=lambda r: r["wall_s"])
        b = rs[0]
        sp = best["serial"] / best[ex] if "serial" in best else float("nan")
        cpu = "n/a (Ray workers)" if ex == "ray" else f"{b['cpu_self_s'] + b['cpu_children_s']:.2f}"
        ser = {r["repeat"]: r["wall_s"] for r in rows if r["executor"] == "serial"}
        paired = ", ".join(f"{ser[r['repeat']] / r['wall_s']:.2f}x" for r in rows
                           if r["executor"] == ex and r["repeat"] in ser)
        print(f"| {ex} | {b['wall_s']:.2f} | {rs[len(rs) // 2]['wall_s']:.2f} | {b['busy_s']:.2f} | {cpu} | {sp:.2f}x "
              f"| {paired} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": cpu_model(), "n_estimators": args.n_estimators, "rows": rows},
                                        indent=2))


if __name__ == "__main__":
    main()
