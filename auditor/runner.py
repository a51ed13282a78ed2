"""Build trials, run them on an executor, commit each to the store, conclude, decide the verdict.

``run_audit`` is the Python API behind ``audit run``::

    from auditor import run_audit
    run = run_audit(model="reference", model_params={"scenario": "leaky"}, out="audit-out")
    run.verdict        # "NO_GO"
    run.audits         # by name or position: run.audits["isolation"].status (auditor.results)
    run.to_dict()      # the whole results.json
    run.write_report("elsewhere")

Verdict rules (docs/RESULTS_SCHEMA.md, :mod:`auditor.verdict`): NO_GO when a critical audit
FAILs; else INCONCLUSIVE when an audit is ERROR or inconclusive (e.g. underpowered) or a critical
audit was skipped for a missing input (no baseline) or data it cannot use; else GO -- a plain GO
only when every audit of the suite ran, otherwise a GO that names its scope (audits left out by
``--checks``, or skipped because the model cannot be retrained). Gating p-values are
Holm-adjusted across audits at the suite alpha before the audits decide.
"""
from __future__ import annotations

import hashlib
import json
import platform
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from auditor import __version__
from auditor.audits import AUDIT_NAMES, audit_names, get_audit
from auditor.audits.base import (Audit, AuditResult, Evidence, Trial, adjust_p_values, conclude, errored, jsonable,
                                 skipped)
from auditor.config import AuditConfig, check_seed, resolve_checks
from auditor.context import AuditContext
from auditor.data import RankingDataset, Split, load_dataset
from auditor.errors import AuditorError, ConfigError, DataError, PluginError, StoreError
from auditor.executors import EXECUTORS, TrialWatch, run_trials
from auditor.guard import exit_message, no_exit
from auditor.registry import ModelSpec
from auditor.results import AuditRun  # the result objects live there; re-exported here
from auditor.store import RunStore, atomic_write_text
from auditor.verdict import NOT_REFITTABLE, build_claim, build_scope, headline, verdict_label
from auditor.verdict import decide_verdict as _decide

__all__ = ["run_audit", "AuditRun", "RunInterrupted", "RunTerminated", "decide_verdict", "EXIT_CODES", "resolve_checks",
           "build_context", "config_hash"]

EXIT_CODES = {"GO": 0, "NO_GO": 1, "INCONCLUSIVE": 3}


class RunInterrupted(AuditorError):
    """Ctrl-C during a run: committed trials are kept; ``--resume`` continues."""

    exit_code = 130


def write_outputs(results: dict[str, Any], out_dir: str | Path, *, strict: bool = True) -> dict[str, Path]:
    """results.json first (the source of truth), then the rendered reports.

    With ``strict=False`` a rendering failure is reported on stderr instead of raised, so a
    finished audit is never lost to a report bug (``audit report DIR`` re-renders later).
    """
    out = Path(out_dir)
    paths = {"results.json": atomic_write_text(out / "results.json",
                                               json.dumps(results, indent=2, allow_nan=False) + "\n")}
    try:
        from reports.render import render_all

        paths.update({k: Path(v) for k, v in render_all(results, out).items()})
    except Exception as e:
        if strict:
            raise
        print(f"warning: rendering the reports failed ({type(e).__name__}: {e}); results.json is complete. "
              f"Re-render with `audit report {out}`.", file=sys.stderr)
    return paths


# --------------------------------------------------------------------------- set-up
def _as_spec(model: Any, params: Mapping[str, Any] | None, device: str) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, str):
        return ModelSpec(model, dict(params or {}), device)
    if callable(model):
        spec = ModelSpec(f"{model.__module__}:{model.__qualname__}", dict(params or {}), device)
        spec._factory = model
        return spec
    raise PluginError(str(model), "model must be a name, 'module:attr', 'file.py:attr' or a factory callable.")


def _load(data: Any, role: str, fmt: str | None, feature_groups: str | None,
          n_features: int | None = None) -> RankingDataset | None:
    if data is None or isinstance(data, RankingDataset):
        return data
    if isinstance(data, (str, Path)):
        return load_dataset(str(data), fmt, feature_groups=feature_groups, n_features=n_features)
    raise DataError(f"{role} must be a path or a RankingDataset, got {type(data).__name__}.", field=role)


def resolve_device(device: str) -> str:
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"--device {device!r}: valid values are auto, cpu, cuda.")
    if device == "cpu":
        return "cpu"
    try:
        import torch

        has_cuda = bool(torch.cuda.is_available())
    except Exception:
        has_cuda = False
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if not has_cuda:
        raise ConfigError(f"--device {device}: no CUDA device is available here. Fix: use --device auto or cpu.")
    return device


def _probe_factory(spec: ModelSpec, option: str) -> None:
    """Load the factory and construct one model now, so a bad parameter fails before any work (exit 2), not as an
    ERROR in every audit minutes later. The contract asks factories to be cheap (constructors
    store parameters; the auditor calls them once per trial), so this costs nothing."""
    try:
        spec.make(seed=0)
    except AuditorError:
        raise
    except Exception as e:  # noqa: BLE001 -- any failure to construct is the user's parameters or the plugin
        raise PluginError(spec.spec, f"factory(seed=0, **{spec.params}) raised {type(e).__name__}: {e}",
                          f"check the {option} values (`audit list` shows the reference model's), "
                          "or run `audit check-plugin` on the plugin.") from e


def build_context(model: Any, *, train: Any = None, test: Any = None, synthetic: Any = None,
                  model_params: Mapping[str, Any] | None = None, baseline: Any = None,
                  baseline_params: Mapping[str, Any] | None = None, baseline_run: str | None = None,
                  config: AuditConfig | None = None, seed: int = 0, device: str = "cpu",
                  fmt: str | None = None, feature_groups: str | None = None) -> tuple[AuditContext, dict[str, Any]]:
    """Resolve the model, data and baseline into an :class:`AuditContext` plus provenance facts."""
    device = resolve_device(device)
    spec = _as_spec(model, model_params, device)
    _probe_factory(spec, "--model-param")  # loads the factory: a broken plugin fails before any work
    facts: dict[str, Any] = {}
    if train is None and test is None:
        split = _default_split(spec, seed, synthetic, fmt, feature_groups)
        facts["source"] = f"generated by {spec.spec} ({', '.join(f'{k}={v}' for k, v in spec.params.items()) or 'defaults'})"
    else:
        split = _file_split(train, test, synthetic, fmt, feature_groups)
        facts["source"] = "files"
    base_spec, base_scores, base_source = _baseline(spec, split, baseline, baseline_params, baseline_run, device)
    if base_source is not None:
        facts["baseline_source"] = base_source
    config = config or AuditConfig()  # validated when it was built
    ctx = AuditContext(split, spec, config, seed=seed, baseline=base_spec, baseline_scores=base_scores, device=device)
    return ctx, facts


def _default_split(spec: ModelSpec, seed: int, synthetic: Any, fmt: str | None, feature_groups: str | None) -> Split:
    """The data the model's ``default_data`` hook generates (plus a synthetic file, when given)."""
    default_data = getattr(spec.factory, "default_data", None)
    if default_data is None:
        raise ConfigError(f"model {spec.spec!r} ships no default data: pass --train and --test "
                          "(e.g. --train train.txt --test test.txt --format letor).")
    try:
        with no_exit():
            split = default_data(seed=seed, **spec.params)
    except SystemExit as e:
        raise PluginError(spec.spec, f"default_data(seed={seed}) {exit_message(e)}.") from None
    except AuditorError:
        raise
    except Exception as e:  # noqa: BLE001 -- plugin code: its failure is the plugin's, exit 2
        raise PluginError(spec.spec, f"default_data(seed={seed}, **{spec.params}) raised {type(e).__name__}: {e}") from e
    if not isinstance(split, Split):
        raise PluginError(spec.spec, f"default_data returned {type(split).__name__}, expected auditor.data.Split.")
    if synthetic is not None:
        split = Split(split.train, split.test, _load(synthetic, "synthetic", fmt, feature_groups), split.name)
    return split


def _file_split(train: Any, test: Any, synthetic: Any, fmt: str | None, feature_groups: str | None) -> Split:
    if train is None or test is None:
        raise ConfigError("pass both --train and --test (or neither, for a model that ships default data).")
    tr = _load(train, "train", fmt, feature_groups)
    te = _load(test, "test", fmt, feature_groups)
    # svmlight files only list non-zero columns: align widths of single-group files
    if (isinstance(train, (str, Path)) and isinstance(test, (str, Path)) and list(tr.features) == ["all"]
            and list(te.features) == ["all"] and tr.n_features != te.n_features):
        width = max(tr.n_features, te.n_features)
        tr = _load(train, "train", fmt, feature_groups, width)
        te = _load(test, "test", fmt, feature_groups, width)
    syn = _load(synthetic, "synthetic", fmt, feature_groups,
                tr.n_features if list(tr.features) == ["all"] else None)
    return Split(tr, te, syn, name="files")


def _baseline(spec: ModelSpec, split: Split, baseline: Any, baseline_params: Mapping[str, Any] | None,
              baseline_run: str | None, device: str) -> tuple[ModelSpec | None, np.ndarray | None, str | None]:
    """``(baseline model, baseline scores, where it came from)``: --baseline, --baseline-run, the
    model's ``default_baseline``, or none."""
    if baseline is not None and baseline_run is not None:
        raise ConfigError("pass --baseline or --baseline-run, not both.")
    if baseline is not None:
        base_spec = _as_spec(baseline, baseline_params, device)
        _probe_factory(base_spec, "--baseline-param")
        return base_spec, None, "--baseline"
    if baseline_run is not None:
        from auditor.loaders import align_run_to_dataset

        return None, align_run_to_dataset(str(baseline_run), split.test), f"--baseline-run {baseline_run}"
    default_baseline = getattr(spec.factory, "default_baseline", None)
    if default_baseline:
        base_spec = ModelSpec(str(default_baseline), dict(spec.params), device)
        _probe_factory(base_spec, "--model-param (passed to the default baseline)")
        return base_spec, None, f"default baseline of {spec.spec}"
    return None, None, None


def config_hash(ctx: AuditContext, checks: list[str]) -> tuple[str, dict[str, Any]]:
    """Hash of everything that determines trial results (not the executor)."""
    cfg = {
        "model": ctx.model.describe(),
        "baseline": ctx.baseline.describe() if ctx.baseline else None,
        # the plugin's code, so --resume refuses trials made by code that has since changed
        "model_code": ctx.model.code_fingerprint(),
        "baseline_code": ctx.baseline.code_fingerprint() if ctx.baseline else None,
        "baseline_scores": None if ctx.baseline_scores is None else hashlib.sha256(ctx.baseline_scores.tobytes()).hexdigest(),
        "train_sha256": ctx.train.sha256(), "test_sha256": ctx.test.sha256(),
        "synthetic_sha256": ctx.synthetic.sha256() if ctx.synthetic is not None else None,
        "config": ctx.config.to_dict(), "checks": checks, "seed": ctx.seed,
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest(), cfg


def _installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist`` without importing it (None when absent)."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except Exception:  # not installed, or broken metadata: reported as absent
        return None


def _environment(device: str) -> dict[str, Any]:
    env: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                           "rank_auditor": __version__, "numpy": np.__version__, "device": device}
    # a library the run did not load is looked up in its installed metadata, not imported:
    # importing torch only to print its version cost 2.5 s and 188 MB of resident memory on a
    # LightGBM run that never touches it (issue 17)
    for mod, dist in (("scipy", "scipy"), ("statsmodels", "statsmodels"), ("sklearn", "scikit-learn"),
                      ("torch", "torch")):
        m = sys.modules.get(mod)
        env[mod] = getattr(m, "__version__", None) if m is not None else _installed_version(dist)
    if device.startswith("cuda"):
        try:
            import torch

            env["gpu"] = torch.cuda.get_device_name(0)
        except Exception:
            pass
    return env


# --------------------------------------------------------------------------- verdict
def decide_verdict(audits: Sequence[Mapping[str, Any]], scope: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """``(verdict, one-sentence reason)`` from per-audit dicts and the run's scope (see
    :func:`auditor.verdict.decide_verdict`)."""
    return _decide(audits, scope)


def _skip_cause(name: str, ctx: AuditContext) -> tuple[str, str | None]:
    """Why a requested audit skipped itself: ``(cause, fix)`` (causes in auditor.verdict.SKIP_CAUSES)."""
    if name == "significance" and ctx.baseline is None and ctx.baseline_scores is None:
        return "missing_input", "no baseline was given; add --baseline MODEL or --baseline-run FILE to test the claimed gain"
    return "not_applicable", None


# --------------------------------------------------------------------------- run
def run_audit(model: Any = "reference", *, train: Any = None, test: Any = None, synthetic: Any = None,
              checks: Sequence[str] | str | None = None, config: AuditConfig | Mapping[str, Any] | None = None,
              model_params: Mapping[str, Any] | None = None, baseline: Any = None,
              baseline_params: Mapping[str, Any] | None = None, baseline_run: str | None = None,
              seed: int = 0, device: str = "cpu", out: str | Path | None = None, executor: str = "serial",
              workers: int | None = None, ray_address: str | None = None, resume: bool = False,
              quick: bool | None = None, fmt: str | None = None, feature_groups: str | None = None,
              progress: bool = False, command: str | None = None,
              on_event: Callable[[str, Any], None] | None = None, trial_timeout: float | None = None,
              heartbeat_s: float | None = None) -> AuditRun:
    """Run the audit suite and return an :class:`AuditRun` (writing ``out`` when given).

    The phases, in order: validate the options, build the context (model, data, baseline),
    plan every audit's trials, execute them (committing each to the store), conclude (measure,
    Holm across the suite, decide), write results.json and the reports. Everything that can be
    the user's mistake is found before the run directory is touched.

    Parameters
    ----------
    model : str, ModelSpec or callable
        ``"reference"``, ``"pkg.mod:factory"``, ``"path/file.py:factory"`` or a factory.
    train, test, synthetic : path or RankingDataset, optional
        Without train/test, the model's ``default_data`` hook generates the data.
    checks : list of str or comma-separated str, optional
        Audits to run (all by default).
    config : AuditConfig or dict, optional
    model_params, baseline_params : dict, optional
        ``--model-param`` / ``--baseline-param`` values.
    baseline : str or callable, optional
    baseline_run : str, optional
        TREC run file with baseline scores for the test rows.
    seed : int, default 0
    device : {"cpu", "cuda", "auto"}, default "cpu"
    out : path, optional
        Run directory: the SQLite store (every trial committed as it finishes) and reports.
    executor : {"serial", "local", "ray"}, default "serial"
    resume : bool, default False
        Continue the run in ``out``, skipping committed trials (same configuration only).
    quick : bool, optional
        Fewer repeats; overrides ``config.quick`` when given.
    progress : bool, default False
        Show rich progress bars on stderr.
    trial_timeout : float, optional
        Seconds a trial may run before it fails (ERROR) and, in a worker, its process is
        replaced; see :mod:`auditor.guard` for what a timeout can interrupt in this process
        (only when ``run_audit`` runs in the main thread: signals reach no other).
    heartbeat_s : float, optional
        Without progress bars (a log file, CI), print ``still running: ...`` on stderr for
        trials running longer than this, every ``heartbeat_s`` seconds, and one line per
        finished trial saying where the run is (``[12/41] stability seed:2 done in 54 s;
        elapsed 0:12:03``, with an estimate of the rest from the finished trials' mean).
    """
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    config, seed, names = _validate(config, seed=seed, checks=checks, quick=quick, executor=executor, out=out,
                                    resume=resume, trial_timeout=trial_timeout)
    ctx, facts = build_context(model, train=train, test=test, synthetic=synthetic, model_params=model_params,
                               baseline=baseline, baseline_params=baseline_params, baseline_run=baseline_run,
                               config=config, seed=seed, device=device, fmt=fmt, feature_groups=feature_groups)
    audits = {n: get_audit(n) for n in names}
    chash, cfg = config_hash(ctx, names)
    # planned before the run directory is touched: an audit that rejects its parameters is the
    # user's input, exit 2, not an audit crash
    plan = _plan(audits, ctx)
    store = RunStore(out, lock=True) if out is not None else None  # held until the reports are written
    try:
        if store is not None:
            _begin(store, out, chash, cfg, resume)
        done = _execute(plan, ctx, store, out, executor=executor, workers=workers, ray_address=ray_address,
                        progress=progress, on_event=on_event, trial_timeout=trial_timeout, heartbeat_s=heartbeat_s)
        holm_record = _conclude(plan, done, audits, ctx)
        res = _results_json(plan, done, holm_record, ctx, facts, cfg, names, executor=executor, command=command,
                            started=started, t0=t0)
        run = AuditRun(res)
        if store is not None:
            _write(store, out, res, run)
        return run
    finally:
        if store is not None:
            store.close()


def _validate(config: AuditConfig | Mapping[str, Any] | None, *, seed: Any, checks: Sequence[str] | str | None,
              quick: bool | None, executor: str, out: Any, resume: bool,
              trial_timeout: float | None) -> tuple[AuditConfig, int, list[str]]:
    """Check the options that need no data: ``(config, seed, audit names)`` or a ConfigError."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor {executor!r}: valid executors are {', '.join(EXECUTORS)}.")
    if isinstance(config, Mapping):
        config = AuditConfig(**config)
    config = config or AuditConfig()
    if quick is not None:
        config.quick = bool(quick)
    seed = check_seed(seed)
    names = resolve_checks(checks)  # config's values were checked when it was built: before any data
    if resume and out is None:
        raise ConfigError("--resume needs --out pointing at the run directory to continue.")
    if trial_timeout is not None and not (isinstance(trial_timeout, (int, float)) and trial_timeout > 0):
        raise ConfigError(f"--trial-timeout {trial_timeout!r}: expected a positive number of seconds.")
    return config, seed, names


@dataclass
class _Plan:
    """Every requested audit, in report order, is either to be run or already settled."""

    trials: dict[str, list[Trial]]          # the audits to run and their trials
    results: dict[str, AuditResult]         # settled: skipped, failed planning; later every audit
    skip_info: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # (cause, fix) of a SKIP


def _plan(audits: Mapping[str, Audit], ctx: AuditContext) -> _Plan:
    plan = _Plan(trials={}, results={})
    for n, a in audits.items():
        reason = a.skip_reason(ctx)
        if reason:
            plan.skip_info[n] = _skip_cause(n, ctx)
            plan.results[n] = skipped(a, ctx, reason)
            continue
        try:
            plan.trials[n] = a.plan(ctx)
        except ConfigError:
            raise
        except Exception as e:
            plan.results[n] = errored(a, ctx, f"planning failed: {type(e).__name__}: {e}")
    return plan


def _begin(store: RunStore, out: Any, chash: str, cfg: dict[str, Any], resume: bool) -> None:
    store.begin(chash, cfg, resume=resume)
    if store.archived is not None:
        where, moved = store.archived
        print(f"note: the previous run in {out} ({', '.join(moved)}) was moved to {where}; nothing was deleted.",
              file=sys.stderr)


class RunTerminated(RunInterrupted):
    """SIGTERM during a run: handled like Ctrl-C (trials kept, ``--resume`` continues), exit 143."""

    exit_code = 143


class _Terminate(BaseException):
    """Raised by the SIGTERM handler; a BaseException so plugin code's ``except Exception`` lets it through."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminate()


@dataclass
class _Done:
    """What the trials gave, per audit: results by trial key, the first error, the time spent."""

    outcomes: dict[str, dict[str, dict[str, Any]]]
    errors: dict[str, str]
    durations: dict[str, float]
    # seconds inside the model's fit/score per audit; None once a trial's share is unknown (resumed)
    model_s: dict[str, float | None] = field(default_factory=dict)
    measure_s: dict[str, float] = field(default_factory=dict)  # measure + decide, per audit
    t_trials: float = 0.0   # perf_counter when the trials started, and when measuring started
    t_measure: float = 0.0

    def meta(self, plan: _Plan, name: str) -> dict[str, Any]:
        return {"n_trials": len(plan.trials[name]), "duration_s": self.durations[name]}


def _execute(plan: _Plan, ctx: AuditContext, store: RunStore | None, out: Any, *, executor: str,
             workers: int | None, ray_address: str | None, progress: bool,
             on_event: Callable[[str, Any], None] | None, trial_timeout: float | None,
             heartbeat_s: float | None) -> _Done:
    """Run the planned trials not already committed (``--resume``), committing each as it finishes."""
    done, todo = _resumed(plan, store)
    if on_event:
        on_event("planned", {"total": sum(len(v) for v in plan.trials.values()), "todo": len(todo),
                             "resumed": sum(len(v) for v in done.outcomes.values())})
    bars = _Progress(plan.trials, done.outcomes, enabled=progress)
    lines = _ProgressLines(len(todo), sum(len(v) for v in plan.trials.values()),
                           enabled=not progress and bool(heartbeat_s))
    remaining = Counter(t.audit for t in todo)
    # SIGTERM (a job scheduler, `kill`, a container stop) gets Ctrl-C's handling: trials kept, resume hint
    on_main = threading.current_thread() is threading.main_thread()
    previous_term = signal.signal(signal.SIGTERM, _on_sigterm) if on_main else None
    watch = TrialWatch(heartbeat_s=None if progress else heartbeat_s)
    done.t_trials = time.perf_counter()
    try:
        with bars:
            for trial, oc in run_trials(ctx, todo, executor, workers=workers, ray_address=ray_address,
                                        timeout=trial_timeout, watch=watch):
                remaining[trial.audit] -= 1
                if not remaining[trial.audit]:
                    ctx.release(trial.audit)  # its derived data is not needed by the trials left
                _record(done, store, trial, oc)
                bars.advance(trial.audit)
                lines.finished(trial, oc)
                if on_event:
                    on_event("trial", trial)
    except (KeyboardInterrupt, _Terminate) as e:
        raise _stopped(e, store, out) from None
    finally:
        watch.close()
        if on_main:
            signal.signal(signal.SIGTERM, previous_term)
    return done


def _resumed(plan: _Plan, store: RunStore | None) -> tuple[_Done, list[Trial]]:
    """The outcomes already committed in the store, and the trials still to run."""
    committed = store.done() if store is not None else {}
    done = _Done(outcomes={n: {} for n in plan.trials}, errors={}, durations={n: 0.0 for n in plan.trials},
                 model_s={n: 0.0 for n in plan.trials})
    todo = []
    for n, trials in plan.trials.items():
        for t in trials:
            prev = committed.get((n, t.key))
            if prev is not None and prev["ok"]:
                done.outcomes[n][t.key] = prev["result"]
                done.durations[n] += prev["duration_s"] or 0.0
                done.model_s[n] = None
            else:
                todo.append(t)
    return done, todo


def _record(done: _Done, store: RunStore | None, trial: Trial, oc: Any) -> None:
    done.durations[trial.audit] += oc.duration_s
    m = done.model_s.get(trial.audit)
    done.model_s[trial.audit] = None if m is None or oc.model_s is None else m + oc.model_s
    if store is not None:
        store.commit_trial(trial.audit, trial.key, result=oc.result, error=oc.error, duration_s=oc.duration_s)
    if oc.error is not None:
        done.errors.setdefault(trial.audit, f"trial {trial.key}: {oc.error}")
    else:
        done.outcomes[trial.audit][trial.key] = oc.result


def _stopped(e: BaseException, store: RunStore | None, out: Any) -> RunInterrupted:
    """The error for a run stopped by Ctrl-C or SIGTERM: what was kept and how to go on."""
    how = RunTerminated if isinstance(e, _Terminate) else RunInterrupted
    what = "terminated (SIGTERM)" if isinstance(e, _Terminate) else "interrupted"
    if store is None:
        return how(f"{what}: no --out directory, so nothing was kept.")
    return how(f"{what}: {store.n_trials()} finished trials are kept in {out}. "
               "Continue with the same command plus --resume.")


def _conclude(plan: _Plan, done: _Done, audits: Mapping[str, Audit], ctx: AuditContext) -> dict[str, list[Any]]:
    """Measure each audit that ran, Holm-adjust the suite's gating sub-tests, let each audit decide.

    Fills ``plan.results`` for every audit (a failure at any step is that audit's ERROR, a model
    that cannot be retrained its SKIP) and returns the Holm record.
    """
    done.t_measure = time.perf_counter()
    evidence: dict[str, Evidence] = {}
    for n, a in audits.items():
        if n in plan.results:
            continue
        tm = time.perf_counter()
        error = done.errors.get(n)
        if error is not None and f": {NOT_REFITTABLE}:" in error:  # "trial KEY: model cannot be retrained: ..."
            plan.skip_info[n] = ("not_refittable", None)
            plan.results[n] = skipped(a, ctx, _not_refittable_summary(error), **done.meta(plan, n))
        elif error is not None:
            plan.results[n] = errored(a, ctx, error, **done.meta(plan, n))
        else:
            try:
                evidence[n] = a.measure(ctx, done.outcomes[n])
            except Exception as e:
                plan.results[n] = errored(a, ctx, f"measuring failed: {type(e).__name__}: {e}",
                                          **done.meta(plan, n))
        done.measure_s[n] = time.perf_counter() - tm
    holm_record = adjust_p_values(audits, evidence)
    for n, ev in evidence.items():
        tm = time.perf_counter()
        try:
            plan.results[n] = conclude(audits[n], ctx, ev, **done.meta(plan, n))
        except Exception as e:
            plan.results[n] = errored(audits[n], ctx, f"deciding failed: {type(e).__name__}: {e}",
                                      **done.meta(plan, n))
        done.measure_s[n] += time.perf_counter() - tm
    return holm_record


def _not_refittable_summary(message: str) -> str:
    why = message[message.index(NOT_REFITTABLE):].strip().splitlines()[0]
    return f"Skipped: the {why}. This audit has to retrain the model; the audits that only score it ran."


def _results_json(plan: _Plan, done: _Done, holm_record: dict[str, list[Any]], ctx: AuditContext,
                  facts: Mapping[str, Any], cfg: Mapping[str, Any], names: list[str], *, executor: str,
                  command: str | None, started: datetime, t0: float) -> dict[str, Any]:
    """results.json (docs/RESULTS_SCHEMA.md): the audits in report order, the verdict and the provenance."""
    ordered = [_with_verdict_fields(plan.results[n].to_dict(), plan.skip_info.get(n)) for n in names]
    for d in ordered:  # where each audit's time went (docs/RESULTS_SCHEMA.md, "Timings")
        if d["name"] in plan.trials:
            m = done.model_s.get(d["name"])
            d["model_s"] = None if m is None else round(m, 3)
            d["measure_s"] = round(done.measure_s.get(d["name"], 0.0), 3)
    model_total = None if any(m is None for m in done.model_s.values()) else sum(done.model_s.values())
    t_end = time.perf_counter()
    scope = build_scope(ordered, left_out=[n for n in AUDIT_NAMES if n not in names], suite=list(AUDIT_NAMES))
    verdict, reason = decide_verdict(ordered, scope)
    config = ctx.config
    res = {
        "schema_version": 1,
        "tool": {"name": "rank-auditor", "version": __version__},
        "verdict": verdict, "verdict_label": verdict_label(verdict, scope), "verdict_reason": reason,
        "exit_code": EXIT_CODES[verdict],
        "scope": scope,
        "claim": build_claim(ordered),
        "alpha": config.alpha,
        "audits": ordered,
        "holm": holm_record,
        "model": ctx.model.describe(),
        "baseline": _baseline_json(ctx, facts),
        # the hashes config_hash computed for this run (hashing costs ~0.2 s per dataset)
        "data": {"train_sha256": cfg["train_sha256"], "test_sha256": cfg["test_sha256"],
                 "synthetic_sha256": cfg["synthetic_sha256"],
                 "train": ctx.train.summary(cfg["train_sha256"]), "test": ctx.test.summary(cfg["test_sha256"]),
                 "synthetic": (ctx.synthetic.summary(cfg["synthetic_sha256"]) if ctx.synthetic is not None
                               else None),
                 "source": facts.get("source")},
        "config": {**config.to_dict(), "checks": names, "executor": executor},
        "environment": _environment(ctx.device),
        "seed": ctx.seed,
        "command": command or f"auditor.run_audit(model={ctx.model.spec!r}, seed={ctx.seed})",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(t_end - t0, 3),
        # the run's wall time in phases, and the part inside the model's fit/score (summed over
        # trials: with a parallel executor it can exceed the trials' wall time)
        "timing": {"prepare_s": round(done.t_trials - t0, 3), "trials_s": round(done.t_measure - done.t_trials, 3),
                   "measure_s": round(t_end - done.t_measure, 3),
                   "model_s": None if model_total is None else round(model_total, 3)},
    }
    return jsonable(res)


def _baseline_json(ctx: AuditContext, facts: Mapping[str, Any]) -> dict[str, Any] | None:
    if ctx.baseline:
        return {**ctx.baseline.describe(), "source": facts.get("baseline_source")}
    if ctx.baseline_scores is not None:
        return {"spec": None, "source": facts.get("baseline_source")}
    return None


def _write(store: RunStore, out: Any, res: dict[str, Any], run: AuditRun) -> None:
    """The results into the store first, then results.json and the reports into ``out``."""
    store.set_meta("results", json.dumps(res, allow_nan=False))
    try:
        run.write_report(out, strict=False)
    except AuditorError as e:  # a full disk: the results are in the store, `audit report` writes them
        raise StoreError(f"{e} The run finished and its results are stored in {store.path}: after freeing "
                         f"space, `audit report {out}` writes results.json and the reports.") from None


def _with_verdict_fields(d: dict[str, Any], skip: tuple[str, str | None] | None) -> dict[str, Any]:
    """An audit's dict plus what the verdict reads: why it was skipped, its headline evidence."""
    if d["status"] == "SKIP":
        cause, fix = skip or ("not_applicable", None)
        d["skip_cause"], d["skip_fix"] = cause, fix
    h = headline(d)
    if h:
        d["headline"] = h
    return d


class _ProgressLines:
    """Progress for a log (stderr not a terminal): one line per finished trial.

    ``[done/total] AUDIT KEY done in S (error)``, the elapsed time, and an estimate of the time
    left: the trials left times the mean of the trials finished in this process. Trials differ
    in cost (a fit on the whole training set against one scoring pass), so it is labelled as
    that mean, not as a promise.
    """

    def __init__(self, todo: int, total: int, enabled: bool) -> None:
        self.enabled, self.todo, self.total = enabled and todo > 0, todo, total
        self.resumed = total - todo
        self.n = 0
        self.t0 = time.monotonic()

    def _fmt(self, seconds: float) -> str:
        s = int(round(max(0.0, seconds)))
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"

    def finished(self, trial: Any, oc: Any) -> None:
        if not self.enabled:
            return
        self.n += 1
        el = time.monotonic() - self.t0
        left = self.todo - self.n
        rest = f"; about {self._fmt(el / self.n * left)} left at the mean trial time so far" if left else ""
        err = " (failed)" if oc.error is not None else ""
        print(f"[{self.resumed + self.n}/{self.total}] {trial.audit} {trial.key} done in {oc.duration_s:.0f} s{err}; "
              f"elapsed {self._fmt(el)}{rest}", file=sys.stderr, flush=True)


class _Progress:
    """Progress on stderr, one row per audit plus a total row (a no-op when disabled).

    Clocks and ETAs come from finished trials only, so nothing runs that has not started:
    an audit still queued shows "queued", not a clock. The serial executor runs the trials in
    plan order, so an audit starts when the trial before it finishes; other executors run
    several audits at once, and an audit is marked running at its first finished trial at
    the latest. An audit's ETA is its remaining trials times its mean trial time so far;
    the total adds, for audits not started, their trials times the mean over all trials
    finished in this process. Inside one trial there is no finer progress (trials are opaque
    calls into the audits), so a running audit shows a spinner and its elapsed time.
    """

    def __init__(self, planned: Mapping[str, list], outcomes: Mapping[str, Mapping], enabled: bool) -> None:
        self.enabled = enabled and bool(planned)
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        owner = self

        class _State(ProgressColumn):
            def render(self, task: Any) -> Text:
                return Text(owner._state(task.fields.get("audit")), style="dim" if task.finished else "")

        class _Mark(ProgressColumn):
            """A spinner on what is running only; a tick when done, a dot when queued."""
            frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

            def render(self, task: Any) -> Text:
                audit = task.fields.get("audit")
                if task.finished:
                    return Text("✓", style="green")
                if audit is not None and audit not in owner.started:
                    return Text("·", style="dim")
                return Text(self.frames[int(time.monotonic() * 8) % len(self.frames)], style="cyan")

        self.order = list(planned)
        self.total = {n: len(t) for n, t in planned.items()}
        self.done = {n: len(outcomes.get(n, {})) for n in planned}       # including resumed trials
        self.done_here: Counter[str] = Counter()
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.last: dict[str, float] = {}          # when the audit's latest trial finished
        self.t0 = self.t_last = time.monotonic()
        self.progress = Progress(_Mark(), TextColumn("{task.description:<18}"), BarColumn(),
                                 MofNCompleteColumn(), _State(), console=Console(stderr=True), transient=False,
                                 refresh_per_second=4)
        self.tasks = {n: self.progress.add_task(n, total=self.total[n], completed=self.done[n], audit=n)
                      for n in self.order}
        self.all_task = self.progress.add_task("all audits", total=sum(self.total.values()),
                                               completed=sum(self.done.values()), audit=None)

    # ------------------------------------------------------------------ state
    def _fmt(self, seconds: float) -> str:
        s = int(round(max(0.0, seconds)))
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"

    def _mean_trial(self, audit: str | None) -> float | None:
        """Mean wall time per trial finished in this process (one audit, or all when None)."""
        if audit is not None:
            n = self.done_here[audit]
            return (self.last[audit] - self.started[audit]) / n if n else None
        n = sum(self.done_here.values())
        return (self.t_last - self.t0) / n if n else None

    def _eta(self, audit: str) -> float | None:
        left = self.total[audit] - self.done[audit]
        mean = self._mean_trial(audit) or self._mean_trial(None)
        if mean is None:
            return None
        # the trial running now has already used part of its share
        since = time.monotonic() - self.last.get(audit, self.started.get(audit, time.monotonic()))
        return max(0.0, left * mean - since)

    def _state(self, audit: str | None) -> str:
        now = time.monotonic()
        if audit is None:
            etas = [self._eta(n) for n in self.order if self.done[n] < self.total[n]]
            if not etas:
                return f"done in {self._fmt(now - self.t0)}"
            eta = "eta after the first trial" if any(e is None for e in etas) else f"eta {self._fmt(sum(etas))}"
            return f"{self._fmt(now - self.t0)} elapsed, {eta}"
        if audit in self.finished and not self.done_here[audit]:
            return "done in an earlier run (resumed)"
        if audit in self.finished:
            return f"done in {self._fmt(self.finished[audit] - self.started.get(audit, self.t0))}"
        if audit not in self.started:
            return "queued"
        eta = self._eta(audit)
        running = f"{self._fmt(now - self.started[audit])} running"
        return running + (f", eta {self._fmt(eta)}" if eta is not None else f", trial 1 of {self.total[audit]}")

    def _mark_running(self, now: float) -> None:
        # serial order: the first unfinished audit is the one running now
        for n in self.order:
            if self.done[n] < self.total[n]:
                self.started.setdefault(n, now)
                break

    # ------------------------------------------------------------------ protocol
    def __enter__(self) -> "_Progress":
        if self.enabled:
            self.t0 = self.t_last = time.monotonic()
            for n in self.order:
                if self.done[n] >= self.total[n]:
                    self.finished[n] = self.started[n] = self.t0      # resumed: nothing to run
            self._mark_running(self.t0)
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.progress.__exit__(*exc)

    def advance(self, audit: str) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        self.started.setdefault(audit, self.t0)      # a parallel executor ran it alongside others
        self.done[audit] += 1
        self.done_here[audit] += 1
        self.last[audit] = self.t_last = now
        if self.done[audit] >= self.total[audit]:
            self.finished[audit] = now
        self._mark_running(now)
        self.progress.advance(self.tasks[audit])
        self.progress.advance(self.all_task)
