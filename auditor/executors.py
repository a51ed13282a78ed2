"""Where trials run: ``serial`` (this process), ``local`` (a process pool), ``ray`` (a cluster).

Each executor takes the run's :class:`~auditor.context.AuditContext` once, then yields
``(trial, outcome)`` pairs as trials finish, where ``outcome`` is a :class:`TrialOutcome`.
Trials are deterministic functions of the context and their parameters, so the executor
changes only wall time, never results.
"""
from __future__ import annotations

import os
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from auditor.audits.base import ModelFailure, Trial, jsonable

__all__ = ["TrialOutcome", "EXECUTORS", "execute_trial", "run_trials", "pin_threads"]

EXECUTORS = ("serial", "local", "ray")

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS")


@dataclass
class TrialOutcome:
    """A finished trial: ``result`` (JSON-able) or ``error`` (message), and its duration."""

    result: dict[str, Any] | None
    error: str | None
    duration_s: float


def pin_threads(n: int = 1) -> None:
    """Limit BLAS / OpenMP / torch threads in this process so pool workers do not fight.

    The environment variables cover libraries loaded later (OpenMP in LightGBM, torch: both
    read ``OMP_NUM_THREADS`` when first loaded); threadpoolctl and ``torch.set_num_threads``
    cover those already loaded. torch is not imported here when nothing has imported it yet:
    that import costs ~1 s of CPU per pool worker, a large share of a short trial list, and
    a model that needs torch imports it later with the cap already in the environment.
    """
    import sys

    for v in _THREAD_VARS:
        os.environ[v] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except Exception:  # threadpoolctl is optional
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            torch.set_num_threads(n)
        except Exception:
            pass


def execute_trial(ctx: Any, trial: Trial) -> TrialOutcome:
    """Run one trial, turning any exception into an error message (never raising)."""
    from auditor.audits import get_audit

    t0 = time.perf_counter()
    try:
        audit = get_audit(trial.audit)
        res = jsonable(audit.run_trial(ctx, trial))
        return TrialOutcome(res, None, time.perf_counter() - t0)
    except ModelFailure as e:
        return TrialOutcome(None, str(e), time.perf_counter() - t0)
    except Exception as e:  # an audit bug or plugin error: keep the run going, show where
        tb = traceback.format_exc(limit=-4)
        return TrialOutcome(None, f"{type(e).__name__}: {e}\n{tb}", time.perf_counter() - t0)


# --------------------------------------------------------------------------- local pool
_WORKER_CTX: Any = None


def _init_worker(ctx: Any, threads: int) -> None:
    global _WORKER_CTX
    pin_threads(threads)
    _WORKER_CTX = ctx


def _run_in_worker(trial: Trial) -> TrialOutcome:
    return execute_trial(_WORKER_CTX, trial)


def _run_local(ctx: Any, trials: list[Trial], workers: int | None) -> Iterator[tuple[Trial, TrialOutcome]]:
    import multiprocessing as mp

    n = max(1, min(workers or (os.cpu_count() or 1), len(trials)))
    # spawn: safe with torch / BLAS thread pools already started in the parent
    pool = ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"),
                               initializer=_init_worker, initargs=(ctx, 1))
    pending: dict[Future, Trial] = {}
    try:
        pending = {pool.submit(_run_in_worker, t): t for t in trials}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                t = pending.pop(f)
                try:
                    out = f.result()
                except Exception as e:  # worker died (e.g. killed by the OOM killer)
                    out = TrialOutcome(None, f"worker failed: {type(e).__name__}: {e}", 0.0)
                yield t, out
    except BaseException:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    # Every result is in: the idle workers exit in the background (tearing down an interpreter
    # that has loaded scipy / LightGBM / torch takes ~0.3 s) while the caller measures and
    # reports; the pool's own exit hook still joins them before the interpreter ends.
    pool.shutdown(wait=False)


def run_trials(ctx: Any, trials: Iterable[Trial], executor: str = "serial", *, workers: int | None = None,
               ray_address: str | None = None) -> Iterator[tuple[Trial, TrialOutcome]]:
    """Run ``trials`` on ``executor``, yielding each as it finishes."""
    trials = list(trials)
    if not trials:
        return
    if executor == "serial":
        for t in trials:
            yield t, execute_trial(ctx, t)
    elif executor == "local":
        yield from _run_local(ctx, trials, workers)
    elif executor == "ray":
        from auditor.ray_executor import run_ray

        yield from run_ray(ctx, trials, address=ray_address, workers=workers)
    else:
        from auditor.errors import ConfigError

        raise ConfigError(f"--executor {executor!r}: valid executors are {', '.join(EXECUTORS)}.")
