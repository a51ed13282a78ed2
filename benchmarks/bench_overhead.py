"""Benchmark: the auditor's overhead -- everything but the model's own fit and score -- in a
full reference audit.

    python benchmarks/bench_overhead.py [--scenario clean] [--preset quick] [--repeats 1] [--profile 25] [--json out.json]

What it measures (issue 8, "Overhead and the table": auditor overhead <= 5% of a reference
audit, measured):

- The full default audit of ``audit run --model reference`` (all six audits, default
  parameters, ``quick`` model preset on the CPU, reports written to a temporary run
  directory), called through :func:`auditor.run_audit` with the ``serial`` executor so every
  model call happens in this process.
- The model factory is wrapped (:func:`make_timed_model`, delegating to
  ``reference_model.plugin:make_model``; the V1.0 baseline likewise): every ``fit`` and
  ``score`` call is timed (wall and process CPU) and charged to the phase the runner is in
  when it happens. The bundled data generation (the plugin's ``default_data`` hook) is timed
  the same way: it is the plugin's work, not the auditor's, and is reported on its own row.
- Phases (by wrapping the runner's functions in this process only): context build, each
  audit's trials (:func:`auditor.executors.execute_trial`), each audit's ``measure``, the
  decisions (``conclude``), the store's commits and the report rendering. ``other``
  is the rest of ``run_audit``'s wall time (planning, Holm, results.json assembly ...).
- Overhead = total wall - model fit/score - plugin data generation; given absolute and as a
  share of the total, overall and per audit. The same in process CPU time next to it (the
  machine is shared, so wall times are inflated by other jobs; CPU time is steadier).

``--profile N`` reruns the audit under cProfile and prints the N functions with the most own
time, to show where any overhead goes (the cProfile run is slower; its figures are not used
for the table).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import auditor.executors as executors  # noqa: E402
import auditor.runner as runner  # noqa: E402
from auditor.audits import AUDIT_NAMES, get_audit  # noqa: E402
from auditor.store import RunStore  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model  # noqa: E402

# --------------------------------------------------------------------------- accounting
_PHASE: list[str] = ["other"]
MODEL_WALL: dict[str, float] = defaultdict(float)
MODEL_CPU: dict[str, float] = defaultdict(float)
PHASE_WALL: dict[str, float] = defaultdict(float)
PHASE_CPU: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)
TRIALS: dict[str, tuple[float, float, float, float]] = {}  # trial id -> (wall, model wall, cpu, model cpu)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


class _Phase:
    """Charge the wall/CPU time of a block to ``name`` (nested phases are excluded from the outer)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> "_Phase":
        _PHASE.append(self.name)
        self.t = _clock()
        return self

    def __exit__(self, *exc: Any) -> None:
        w, c = _clock()
        PHASE_WALL[self.name] += w - self.t[0]
        PHASE_CPU[self.name] += c - self.t[1]
        _PHASE.pop()


def _model_time(kind: str, fn: Callable[..., Any], *args: Any) -> Any:
    w0, c0 = _clock()
    try:
        return fn(*args)
    finally:
        w, c = _clock()
        MODEL_WALL[_PHASE[-1]] += w - w0
        MODEL_CPU[_PHASE[-1]] += c - c0
        CALLS[kind] += 1


class TimedModel:
    """Delegates to a plugin model, timing ``fit`` and ``score``; other attributes pass through."""

    def __init__(self, inner: Any, role: str) -> None:
        self.inner = inner
        self.role = role

    def fit(self, train: Any) -> "TimedModel":
        out = _model_time(f"{self.role}.fit", self.inner.fit, train)
        if out is not None and out is not self.inner:  # a plugin may return a new fitted object
            self.inner = out
        return self

    def score(self, data: Any) -> Any:
        return _model_time(f"{self.role}.score", self.inner.score, data)

    def __getattr__(self, name: str) -> Any:  # fit_history and any other optional hook
        return getattr(self.inner, name)


def make_timed_model(seed: int = 0, **params: Any) -> TimedModel:
    """The reference model (``reference_model.plugin:make_model``) with timed fit/score."""
    from reference_model.plugin import make_model

    return TimedModel(make_model(seed=seed, **params), "model")


def make_timed_baseline(seed: int = 0, **params: Any) -> TimedModel:
    """The V1.0 baseline (``reference_model.plugin:make_v1_baseline``) with timed fit/score."""
    from reference_model.plugin import make_v1_baseline

    return TimedModel(make_v1_baseline(seed=seed, **params), "baseline")


def _timed_default_data(seed: int = 0, **params: Any) -> Any:
    from reference_model.plugin import make_model

    return _model_time("default_data", lambda: make_model.default_data(seed=seed, **params))


make_timed_model.default_data = _timed_default_data  # type: ignore[attr-defined]


def _install_wrappers() -> None:
    """Wrap the runner's phases in this process (the audit modules themselves are untouched)."""
    real_execute = executors.execute_trial

    def execute_trial(ctx: Any, trial: Any) -> Any:
        ph = f"trial:{trial.audit}"
        before = (PHASE_WALL[ph], MODEL_WALL[ph], PHASE_CPU[ph], MODEL_CPU[ph])
        try:
            with _Phase(ph):
                return real_execute(ctx, trial)
        finally:
            after = (PHASE_WALL[ph], MODEL_WALL[ph], PHASE_CPU[ph], MODEL_CPU[ph])
            TRIALS[trial.id] = tuple(x - y for x, y in zip(after, before))  # type: ignore[assignment]

    executors.execute_trial = execute_trial

    real_build = runner.build_context

    def build_context(*a: Any, **k: Any) -> Any:
        with _Phase("context"):
            return real_build(*a, **k)

    runner.build_context = build_context

    real_conclude = runner.conclude

    def conclude(audit: Any, *a: Any, **k: Any) -> Any:
        with _Phase(f"decide:{audit.name}"):
            return real_conclude(audit, *a, **k)

    runner.conclude = conclude

    real_write = runner.write_outputs

    def write_outputs(*a: Any, **k: Any) -> Any:
        with _Phase("report"):
            return real_write(*a, **k)

    runner.write_outputs = write_outputs

    real_commit = RunStore.commit_trial

    def commit_trial(self: Any, *a: Any, **k: Any) -> Any:
        with _Phase("store"):
            return real_commit(self, *a, **k)

    RunStore.commit_trial = commit_trial  # type: ignore[method-assign]

    for name in AUDIT_NAMES:
        cls = type(get_audit(name))
        for meth in ("plan", "measure"):
            real = cls.__dict__.get(meth)
            if real is None:
                continue

            def wrapped(self: Any, *a: Any, _real: Any = real, _meth: str = meth, **k: Any) -> Any:
                with _Phase(f"{_meth}:{self.name}"):
                    return _real(self, *a, **k)

            setattr(cls, meth, wrapped)


def _reset() -> None:
    for d in (MODEL_WALL, MODEL_CPU, PHASE_WALL, PHASE_CPU, CALLS, TRIALS):
        d.clear()


def audit_once(scenario: str, out: Path, preset: str | None = None) -> dict[str, Any]:
    """One full reference audit; returns the wall/CPU accounting."""
    import reference_model.plugin  # noqa: F401 - imported before the clock, as the CLI's plugin discovery does

    _reset()
    params: dict[str, Any] = {} if scenario == "clean" else {"scenario": scenario}
    if preset:
        params["preset"] = preset
    w0, c0 = _clock()
    run = runner.run_audit(make_timed_model, model_params=params, baseline=make_timed_baseline,
                           baseline_params=params, out=str(out), executor="serial")
    wall, cpu = _clock()[0] - w0, _clock()[1] - c0
    return {"scenario": scenario, "verdict": run.verdict, "wall_s": wall, "cpu_s": cpu,
            "model_wall": dict(MODEL_WALL), "model_cpu": dict(MODEL_CPU), "phase_wall": dict(PHASE_WALL),
            "phase_cpu": dict(PHASE_CPU), "calls": dict(CALLS), "trials": dict(TRIALS),
            "audit_duration_s": {a["name"]: a["duration_s"] for a in run.audits}}


def summarise(r: dict[str, Any]) -> list[tuple[str, float, float, float, float]]:
    """Rows ``(phase, wall, model wall, cpu, model cpu)`` with ``other`` filled in."""
    names = sorted(set(r["phase_wall"]) | set(r["model_wall"]))
    rows = []
    for n in names:
        rows.append((n, r["phase_wall"].get(n, 0.0), r["model_wall"].get(n, 0.0), r["phase_cpu"].get(n, 0.0),
                     r["model_cpu"].get(n, 0.0)))
    # "other": run_audit's time outside every wrapped phase; the wrapped phases never nest (the
    # runner calls them one after another), so their sum is subtracted from the total
    other_w = r["wall_s"] - sum(x[1] for x in rows if x[0] != "other")
    other_c = r["cpu_s"] - sum(x[3] for x in rows if x[0] != "other")
    rows = [x for x in rows if x[0] != "other"]
    rows.append(("other", other_w + 0.0, r["model_wall"].get("other", 0.0), other_c, r["model_cpu"].get("other", 0.0)))
    return rows


def report(r: dict[str, Any]) -> dict[str, float]:
    rows = summarise(r)
    gen_w = r["model_wall"].get("context", 0.0)
    gen_c = r["model_cpu"].get("context", 0.0)
    fit_w = sum(x[2] for x in rows) - gen_w
    fit_c = sum(x[4] for x in rows) - gen_c
    ov_w = r["wall_s"] - fit_w - gen_w
    ov_c = r["cpu_s"] - fit_c - gen_c
    print(f"\nscenario {r['scenario']}: verdict {r['verdict']}, model calls {r['calls']}")
    print("| phase | wall s | model fit+score wall s (context: data generation) | overhead wall s | CPU s "
          "| overhead CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    for n, w, mw, c, mc in rows:
        print(f"| {n} | {w:.2f} | {mw:.2f} | {w - mw:.2f} | {c:.2f} | {c - mc:.2f} |")
    print(f"| **total** | {r['wall_s']:.2f} | {fit_w + gen_w:.2f} | {r['wall_s'] - fit_w - gen_w:.2f} | "
          f"{r['cpu_s']:.2f} | {ov_c:.2f} |")
    print(f"model fit+score: {fit_w:.2f} s wall / {fit_c:.2f} s CPU; plugin data generation: {gen_w:.2f} s wall / "
          f"{gen_c:.2f} s CPU")
    print(f"auditor overhead: {ov_w:.2f} s wall = {ov_w / r['wall_s']:.1%} of the run "
          f"({ov_c:.2f} s CPU = {ov_c / r['cpu_s']:.1%})")
    # by kind of work: the runner's own orchestration vs the audits' statistics vs the report
    def cat(pred: Callable[[str], bool], key: str) -> float:
        return sum(x[1] - x[2] if key == "wall" else x[3] - x[4] for x in rows if pred(x[0]))

    kinds = [("runner orchestration (context build without data generation, planning, store, decisions, rest)",
              lambda n: n in ("context", "store", "other") or n.startswith(("plan:", "decide:"))),
             ("audit computation inside trials (two-sample tests, hashing, metrics, resampling ...)",
              lambda n: n.startswith("trial:")),
             ("audit measure (statistics on the trial results)", lambda n: n.startswith("measure:")),
             ("report rendering (results.json, HTML with SVG plots, JUnit, Markdown)", lambda n: n == "report")]
    print("\n| overhead by kind | wall s | share of run (wall) | CPU s | share of run (CPU) |")
    print("|---|---:|---:|---:|---:|")
    by_kind = {}
    for label, pred in kinds:
        w, c = cat(pred, "wall"), cat(pred, "cpu")
        by_kind[label.split(" (")[0]] = c
        print(f"| {label} | {w:.2f} | {w / r['wall_s']:.1%} | {c:.2f} | {c / r['cpu_s']:.1%} |")
    # per audit: its trials + plan + measure + decide
    print("\n| audit | trials wall s (results.json duration_s) | model s in trials | overhead in trials s "
          "| plan + measure + decide s | audit overhead s | share of run |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    per: dict[str, float] = {}
    for a in AUDIT_NAMES:
        tw = r["phase_wall"].get(f"trial:{a}", 0.0)
        tm = r["model_wall"].get(f"trial:{a}", 0.0)
        rest = sum(r["phase_wall"].get(f"{p}:{a}", 0.0) - r["model_wall"].get(f"{p}:{a}", 0.0)
                   for p in ("plan", "measure", "decide"))
        per[a] = tw - tm + rest
        print(f"| {a} | {tw:.2f} ({r['audit_duration_s'].get(a, float('nan')):.2f}) | {tm:.2f} | {tw - tm:.2f} | "
              f"{rest:.2f} | {per[a]:.2f} | {per[a] / r['wall_s']:.1%} |")
    print("\n| trial | wall s | model s | overhead wall s | overhead CPU s |")
    print("|---|---:|---:|---:|---:|")
    for tid, (w, mw, c, mc) in sorted(r["trials"].items(), key=lambda kv: -(kv[1][0] - kv[1][1]))[:10]:
        print(f"| {tid} | {w:.2f} | {mw:.2f} | {w - mw:.2f} | {c - mc:.2f} |")
    return {"overhead_wall_s": ov_w, "overhead_share": ov_w / r["wall_s"], "overhead_cpu_s": ov_c,
            "overhead_cpu_share": ov_c / r["cpu_s"], "model_wall_s": fit_w, "data_gen_wall_s": gen_w,
            **{f"audit_overhead_s:{a}": v for a, v in per.items()},
            **{f"kind_cpu_s:{k}": v for k, v in by_kind.items()}}


def profile(scenario: str, top: int, preset: str | None = None) -> None:
    """Rerun under cProfile; print the ``top`` functions by own time, then by cumulative time."""
    with tempfile.TemporaryDirectory() as d:
        pr = cProfile.Profile()
        pr.enable()
        audit_once(scenario, Path(d) / "run", preset)
        pr.disable()
    for key in ("tottime", "cumulative"):
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats(key).print_stats(top)
        text = s.getvalue()
        print(f"\n--- cProfile, top {top} by {key} ---")
        print(text[text.find("   ncalls"):])




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="clean")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--profile", type=int, default=0, metavar="N")
    ap.add_argument("--preset", default=None, choices=["auto", "quick", "full"],
                    help="reference model preset (default: the plugin's, i.e. auto = quick on the CPU)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    print(f"machine: {cpu_model()}, Python {platform.python_version()}; load {os.getloadavg()}")
    _install_wrappers()
    out: list[dict[str, Any]] = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as d:
            r = audit_once(args.scenario, Path(d) / "run", args.preset)
        r["summary"] = report(r)
        r["load_after"] = os.getloadavg()
        print(f"load average after run {i}: {r['load_after']}")
        out.append(r)
    if args.profile:
        profile(args.scenario, args.profile, args.preset)
    if args.json:
        args.json.write_text(json.dumps({"machine": cpu_model(), "runs": out}, indent=2, default=str))


if __name__ == "__main__":
    main()
