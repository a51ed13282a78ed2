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
from contextlib import contextmanager
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


@contextmanager
def _pinned_here(n: int = 1) -> Iterator[None]:
    """:func:`pin_threads` for this process while the block runs, then the caller's settings back."""
    import sys

    saved_env = {v: os.environ.get(v) for v in _THREAD_VARS}
    torch = sys.modules.get("torch")
    saved_torch = torch.get_num_threads() if torch is not None else None
    limiter = None
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(n)  # restores the previous limits on unregister()
    except Exception:  # threadpoolctl is optional
        pass
    for v in _THREAD_VARS:
        os.environ[v] = str(n)
    if torch is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        for v, val in saved_env.items():
            if val is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = val
        if limiter is not None:
            limiter.unregister()
        if torch is not None and saved_torch is not None:
            torch.set_num_threads(saved_torch)


def _run_local(ctx: Any, trials: list[Trial], workers: int | None) -> Iterator[tuple[Trial, TrialOutcome]]:
    """``workers`` trials at a time: ``workers - 1`` spawned processes plus this process.

    Every trial is submitted to a pool of ``workers - 1`` processes, which take them from the
    front of the list; meanwhile this process takes trials from the back (a submitted trial no
    worker has claimed yet can be cancelled and run here instead) until the two meet. Why the
    caller works too: a spawned worker costs ~0.6 s of interpreter start, imports and context
    unpickling before its first trial, while this process is ready at once and holds the
    context and its caches (the normally trained model, for one) already; on 2 cores that is
    the difference between ~1.6x and ~1.8x over ``serial`` for a minute of short trials
    (docs/PERFORMANCE.md, "Executors"). Threads are pinned to 1 per process in both, this
    process only while it runs trials. A trial that kills its worker (the OOM killer, a
    crash in native code) fails with "worker failed" and the run goes on; one that crashes
    this process ends the run like ``serial`` does, and ``--resume`` continues from the
    trials already committed.
    """
    import multiprocessing as mp

    n = max(1, min(workers or (os.cpu_count() or 1), len(trials)))
    if n == 1:
        with _pinned_here(1):
            for t in trials:
                yield t, execute_trial(ctx, t)
        return
    # spawn: safe with torch / BLAS / OpenMP thread pools and the progress-bar thread already
    # running in this process (fork is not)
    pool = ProcessPoolExecutor(max_workers=n - 1, mp_context=mp.get_context("spawn"),
                               initializer=_init_worker, initargs=(ctx, 1))
    futures = [pool.submit(_run_in_worker, t) for t in trials]
    pending: dict[Future, Trial] = dict(zip(futures, trials))
    steal = len(futures) - 1  # this process walks the list from the back

    def harvest(block: bool) -> Iterator[tuple[Trial, TrialOutcome]]:
        done = [f for f in pending if f.done()] if not block else wait(pending, return_when=FIRST_COMPLETED)[0]
        for f in done:
            t = pending.pop(f)
            try:
                out = f.result()
            except Exception as e:  # worker died (e.g. killed by the OOM killer)
                out = TrialOutcome(None, f"worker failed: {type(e).__name__}: {e}", 0.0)
            yield t, out

    try:
        with _pinned_here(1):
            while steal >= 0 and futures[steal].cancel():
                f = futures[steal]
                t = pending.pop(f)
                steal -= 1
                yield t, execute_trial(ctx, t)
                yield from harvest(block=False)
        while pending:
            yield from harvest(block=True)
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
