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
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from auditor.audits.base import Trial, jsonable
from auditor.errors import ModelFailure

__all__ = ["TrialOutcome", "TrialWatch", "EXECUTORS", "execute_trial", "run_trials", "pin_threads"]

EXECUTORS = ("serial", "local", "ray")

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS")


@dataclass
class TrialOutcome:
    """A finished trial: ``result`` (JSON-able) or ``error`` (message), its duration, and the
    part of it spent inside the model's ``fit`` and ``score`` (``model_s``; None when unknown,
    e.g. a worker that died)."""

    result: dict[str, Any] | None
    error: str | None
    duration_s: float
    model_s: float | None = None


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


class TrialWatch:
    """Which trials are running and since when; prints a heartbeat for slow ones.

    Executors call :meth:`started` / :meth:`finished`; with ``heartbeat_s`` a daemon thread
    prints ``still running: AUDIT KEY (N s)`` on stderr every ``heartbeat_s`` seconds for each
    trial running longer than that, so a slow plugin is never invisible in a log.
    """

    def __init__(self, heartbeat_s: float | None = None, stream: Any = None) -> None:
        import threading

        self.heartbeat_s = heartbeat_s
        self.stream = stream
        self._running: dict[str, tuple[Trial, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if heartbeat_s:
            self._thread = threading.Thread(target=self._beat, name="auditor-heartbeat", daemon=True)
            self._thread.start()

    def started(self, trial: Trial) -> None:
        with self._lock:
            self._running[trial.id] = (trial, time.monotonic())

    def finished(self, trial: Trial) -> None:
        with self._lock:
            self._running.pop(trial.id, None)

    def _beat(self) -> None:
        import sys

        while not self._stop.wait(self.heartbeat_s):
            now = time.monotonic()
            with self._lock:
                slow = [(t, now - t0) for t, t0 in self._running.values() if now - t0 >= self.heartbeat_s]
            for t, age in slow:
                print(f"still running: {t.audit} {t.key} ({age:.0f} s)", file=self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        self._stop.set()


_NO_WATCH = TrialWatch()


def execute_trial(ctx: Any, trial: Trial, *, timeout: float | None = None) -> TrialOutcome:
    """Run one trial in this process, turning any failure of the trial into an error message.

    Never raises for the trial's own failures, including a plugin's ``sys.exit`` /
    ``os._exit`` (see :mod:`auditor.guard`) and, with ``timeout`` (main thread only), a trial
    that runs past it. ``KeyboardInterrupt`` and termination still propagate.
    """
    from auditor.audits import get_audit
    from auditor.guard import TrialTimeout, alarm, exit_message, no_exit

    t0 = time.perf_counter()
    m0 = getattr(ctx, "model_seconds", None)

    def outcome(res: dict[str, Any] | None, err: str | None) -> TrialOutcome:
        m1 = getattr(ctx, "model_seconds", None)
        return TrialOutcome(res, err, time.perf_counter() - t0, None if m0 is None or m1 is None else m1 - m0)

    try:
        with no_exit(), alarm(timeout):
            audit = get_audit(trial.audit)
            res = jsonable(audit.run_trial(ctx, trial))
        return outcome(res, None)
    except ModelFailure as e:
        return outcome(None, str(e))
    except TrialTimeout:
        return outcome(None, _timeout_message(timeout, "it was interrupted"))
    except SystemExit as e:  # from the plugin or an audit: this trial's error, never the run's exit
        tb = traceback.format_exc(limit=-4)
        return outcome(None, f"the trial {exit_message(e)}.\n{tb}")
    except Exception as e:  # an audit bug or plugin error: keep the run going, show where
        tb = traceback.format_exc(limit=-4)
        return outcome(None, f"{type(e).__name__}: {e}\n{tb}")


def _timeout_message(timeout: float | None, what: str) -> str:
    return (f"the trial ran past --trial-timeout {timeout:g} s and {what}. Fix: make the model faster "
            "(or give it fewer rows), or raise --trial-timeout.")


# --------------------------------------------------------------------------- local pool
def _worker_main(conn: Any, ctx: Any, threads: int) -> None:
    """A ``local`` worker: run the trials the parent sends, one at a time, until told to stop.

    Ctrl-C is the parent's to handle (it stops the workers); a worker ignores SIGINT so a
    terminal's Ctrl-C does not print a traceback per worker.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pin_threads(threads)
    while True:
        try:
            trial = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if trial is None:
            return
        out = execute_trial(ctx, trial)
        try:
            conn.send(out)
        except (EOFError, OSError):
            return


class _Worker:
    """One spawned worker process and the trial it is running (if any)."""

    def __init__(self, mp: Any, ctx: Any) -> None:
        parent, child = mp.Pipe()
        self.proc = mp.Process(target=_worker_main, args=(child, ctx, 1), name="auditor-worker")
        self.proc.start()
        child.close()
        self.conn = parent
        self.trial: Trial | None = None
        self.t0 = 0.0

    def give(self, trial: Trial) -> None:
        self.trial, self.t0 = trial, time.monotonic()
        self.conn.send(trial)

    def stop(self, kill: bool = False) -> None:
        if not kill and self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
        else:
            self.proc.kill()
        self.proc.join(timeout=None if kill else 5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def _death_message(proc: Any) -> str:
    code = proc.exitcode
    if code is not None and code < 0:
        import signal

        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    return (f"worker failed: the worker process running this trial {how} (out of memory, a crash in native "
            "code, or the plugin ending its process); the run went on with a fresh worker.")


class _Dispatcher:
    """Feeds trials to the workers from the front of the list, from a thread of this process.

    The thread keeps the workers busy while this process's main thread runs trials itself
    (from the back of the list), notices a worker that dies (its trial fails with "worker
    failed") or runs past the trial timeout (it is killed and its trial fails), and starts a
    replacement while trials remain. Finished trials go to :attr:`done` for the main thread.
    """

    def __init__(self, ctx: Any, todo: Any, n_workers: int, timeout: float | None, watch: TrialWatch) -> None:
        import multiprocessing as mp
        import queue
        import threading

        # spawn: safe with torch / BLAS / OpenMP thread pools and the progress-bar thread already
        # running in this process (fork is not)
        self.mp = mp.get_context("spawn")
        self.ctx, self.todo, self.timeout, self.watch = ctx, todo, timeout, watch
        self.lock = threading.Lock()
        self.done: Any = queue.Queue()
        self.workers = [_Worker(self.mp, ctx) for _ in range(n_workers)]
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="auditor-dispatch", daemon=True)
        self.thread.start()

    def take_back(self) -> Trial | None:
        with self.lock:
            return self.todo.pop() if self.todo else None

    def _take_front(self) -> Trial | None:
        with self.lock:
            return self.todo.popleft() if self.todo else None

    def _finish(self, w: _Worker, out: TrialOutcome) -> None:
        t, w.trial = w.trial, None
        self.watch.finished(t)
        self.done.put((t, out))

    def _replace(self, w: _Worker) -> None:
        w.stop(kill=True)
        self.workers.remove(w)
        with self.lock:
            more = bool(self.todo)
        if more and not self.stopping.is_set():
            self.workers.append(_Worker(self.mp, self.ctx))

    def _loop(self) -> None:
        from multiprocessing.connection import wait as mp_wait

        try:
            while not self.stopping.is_set():
                for w in self.workers:
                    if w.trial is None:
                        t = self._take_front()
                        if t is None:
                            break
                        self.watch.started(t)
                        w.give(t)
                busy = [w for w in self.workers if w.trial is not None]
                if not busy:
                    with self.lock:
                        if not self.todo:
                            return
                    time.sleep(0.05)
                    continue
                now = time.monotonic()
                wait_s = 0.5
                if self.timeout:
                    wait_s = max(0.0, min(wait_s, min(w.t0 + self.timeout - now for w in busy)))
                mp_wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=wait_s)
                for w in busy:
                    if w.conn.poll():
                        try:
                            out = w.conn.recv()
                        except (EOFError, OSError):
                            w.proc.join(timeout=5)
                            self._finish(w, TrialOutcome(None, _death_message(w.proc), time.monotonic() - w.t0))
                            self._replace(w)
                            continue
                        self._finish(w, out)
                    elif not w.proc.is_alive():
                        self._finish(w, TrialOutcome(None, _death_message(w.proc), time.monotonic() - w.t0))
                        self._replace(w)
                    elif self.timeout and time.monotonic() - w.t0 > self.timeout:
                        self._finish(w, TrialOutcome(None, _timeout_message(
                            self.timeout, "its worker process was stopped and replaced"), time.monotonic() - w.t0))
                        self._replace(w)
        except BaseException as e:  # noqa: BLE001 -- handed to the main thread, which re-raises
            self.error = e
        finally:
            self.done.put(None)  # wakes the main thread

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        for w in list(self.workers):
            w.stop(kill=w.trial is not None)
        self.workers = []


def _run_in_process(ctx: Any, t: Trial, timeout: float | None, watch: TrialWatch) -> TrialOutcome:
    import threading

    watch.started(t)
    try:
        on_main = threading.current_thread() is threading.main_thread()
        return execute_trial(ctx, t, timeout=timeout if on_main else None)
    finally:
        watch.finished(t)


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


def _run_local(ctx: Any, trials: list[Trial], workers: int | None, timeout: float | None = None,
               watch: TrialWatch = _NO_WATCH) -> Iterator[tuple[Trial, TrialOutcome]]:
    """``workers`` trials at a time: ``workers - 1`` spawned processes plus this process.

    The spawned workers take trials from the front of the list (fed by a thread of this
    process, one trial per worker at a time) while this process takes trials from the back
    until the two meet. Why the caller works too: a spawned worker costs ~0.6 s of interpreter
    start, imports and context unpickling before its first trial, while this process is ready
    at once and holds the context and its caches (the normally trained model, for one) already;
    on 2 cores that is the difference between ~1.6x and ~1.8x over ``serial`` for a minute of
    short trials (docs/PERFORMANCE.md, "Executors"). Threads are pinned to 1 per process in
    both, this process only while it runs trials.

    A trial that kills its worker (the OOM killer, a crash in native code, a plugin's
    ``os._exit``) fails with "worker failed" and a fresh worker takes the next trial; with
    ``timeout`` a worker past it is killed and replaced, and a trial this process runs is
    interrupted by :func:`auditor.guard.alarm`.
    """
    from collections import deque

    n = max(1, min(workers or (os.cpu_count() or 1), len(trials)))
    if n == 1:
        with _pinned_here(1):
            for t in trials:
                yield t, _run_in_process(ctx, t, timeout, watch)
        return
    import queue

    disp = _Dispatcher(ctx, deque(trials), n - 1, timeout, watch)
    ended = False  # the dispatcher said it has nothing more (its None)

    def drain(block: bool) -> Iterator[tuple[Trial, TrialOutcome]]:
        nonlocal ended
        while not ended:
            try:
                # a short timeout rather than a blocking get: Ctrl-C / SIGTERM land promptly
                item = disp.done.get(timeout=0.2) if block else disp.done.get_nowait()
            except queue.Empty:
                if block:
                    continue
                return
            if item is None:
                ended = True
                if disp.error is not None:
                    raise disp.error
                return
            yield item

    try:
        with _pinned_here(1):
            while True:
                t = disp.take_back()
                if t is None:
                    break
                yield t, _run_in_process(ctx, t, timeout, watch)
                yield from drain(block=False)
        yield from drain(block=True)
    finally:
        disp.close()


def run_trials(ctx: Any, trials: Iterable[Trial], executor: str = "serial", *, workers: int | None = None,
               ray_address: str | None = None, timeout: float | None = None,
               watch: TrialWatch | None = None) -> Iterator[tuple[Trial, TrialOutcome]]:
    """Run ``trials`` on ``executor``, yielding each as it finishes.

    ``timeout`` (seconds) fails a trial that runs longer (see :func:`execute_trial` and each
    executor); ``watch`` is told which trials run (heartbeat lines for slow ones).
    """
    trials = list(trials)
    watch = watch or _NO_WATCH
    if not trials:
        return
    if executor == "serial":
        for t in trials:
            yield t, _run_in_process(ctx, t, timeout, watch)
    elif executor == "local":
        yield from _run_local(ctx, trials, workers, timeout, watch)
    elif executor == "ray":
        from auditor.ray_executor import run_ray

        yield from run_ray(ctx, trials, address=ray_address, workers=workers, timeout=timeout, watch=watch)
    else:
        from auditor.errors import ConfigError

        raise ConfigError(f"--executor {executor!r}: valid executors are {', '.join(EXECUTORS)}.")
