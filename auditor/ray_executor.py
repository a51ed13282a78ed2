"""The ``ray`` executor: fan trials out to a Ray cluster (or a private local Ray instance).

Without ``--ray-address`` the run starts a local Ray instance with its own temporary
directory, no dashboard and no cluster-wide state, and shuts it down at the end, so the local
case needs no set-up. With an address (``ray start --head`` prints it) trials go to that
cluster; a trial whose ``resources`` ask for ``num_gpus`` is scheduled on a GPU node.

The context (data + model spec) is put in the object store once (``ray.put``); each trial is a
Ray task that receives only its reference and its own small parameters, never a pickled copy
of the data. A worker fetches the context on its first trial of the run (numpy arrays are
read from the node's shared-memory object store without a copy) and keeps it for the run's
later trials, with the models it has fitted, as a ``local`` worker does. Each task pins
BLAS/torch threads to its CPU share and returns a JSON-able result, so results equal the
serial executor's for the same seed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Iterator

from auditor.audits.base import Trial
from auditor.errors import ConfigError
from auditor.executors import TrialOutcome, execute_trial, pin_threads

__all__ = ["run_ray", "task_resources"]


#: the run context this worker process last fetched, by object id: trials of one run that land on
#: the same worker share it (and its fitted-model cache), like a ``local`` worker's context
_WORKER_CTX: dict[str, Any] = {}


def _worker_context(box: list) -> Any:
    """The run context for a task, fetched from the object store once per worker process.

    ``box`` holds the context's ObjectRef inside a list so that Ray does not resolve it per task:
    the first task of a run on a worker gets it (numpy arrays are mapped from the node's shared
    object store, not copied), later tasks reuse it with the models it has already fitted. A
    worker keeps one run's context; a task of another run replaces it.
    """
    import ray

    ref = box[0]
    key = ref.hex()
    ctx = _WORKER_CTX.get(key)
    if ctx is None:
        _WORKER_CTX.clear()
        ctx = _WORKER_CTX[key] = ray.get(ref)
    return ctx


def _trial_task(box: list, trial: Trial, threads: int) -> TrialOutcome:
    pin_threads(threads)
    return execute_trial(_worker_context(box), trial)


def task_resources(trial: Trial, device: str) -> tuple[float, float]:
    """``(num_cpus, num_gpus)`` a trial's Ray task asks for.

    A trial's own ``resources`` win. Otherwise 1 CPU, and on a CUDA run 1 GPU: trials fit and
    score the model on ``ctx.device``, so on a cluster they must land on a GPU node (an audit
    whose trials never touch the model can ask for ``{"num_gpus": 0}``).
    """
    default_gpus = 1.0 if str(device).startswith("cuda") else 0.0
    gpus = float(trial.resources.get("num_gpus", default_gpus) or 0)
    cpus = float(trial.resources.get("num_cpus", 1) or 1)
    return cpus, gpus


def run_ray(ctx: Any, trials: list[Trial], *, address: str | None = None, workers: int | None = None,
            timeout: float | None = None, watch: Any = None) -> Iterator[tuple[Trial, TrialOutcome]]:
    """Run ``trials`` as Ray tasks, yielding ``(trial, outcome)`` as each finishes.

    With ``timeout`` a task running longer (counted from when it was submitted and a worker
    was free: Ray does not report when a queued task starts, so the clock starts when fewer
    tasks than CPUs are ahead of it) is cancelled with ``force=True``, which kills its worker
    process; Ray starts a fresh one for the next task.
    """
    try:
        import ray
    except ImportError as e:
        raise ConfigError("--executor ray needs Ray: pip install 'rank-auditor[ray]' (or pip install ray).") from e
    started_here = False
    tmp = None
    if not ray.is_initialized():
        # the workers inherit this environment (PYTHONPATH, AUDITOR_EXTRA_AUDITS, thread caps)
        env_vars = {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "AUDITOR_EXTRA_AUDITS")}
        try:
            if address:
                ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": env_vars} if env_vars else None)
            else:
                tmp = tempfile.mkdtemp(prefix="auditor-ray-")
                ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                         _temp_dir=tmp, configure_logging=False, runtime_env={"env_vars": env_vars} if env_vars else None)
        except Exception as e:
            raise ConfigError(f"--executor ray: could not {'connect to ' + address if address else 'start a local Ray instance'} "
                              f"({type(e).__name__}: {e}). Fix: check `ray status`, or use --executor local.") from e
        started_here = True
    try:
        import time

        from auditor.executors import _NO_WATCH, _timeout_message

        watch = watch or _NO_WATCH
        ctx_ref = ray.put(ctx)
        task = ray.remote(_trial_task)
        # submitted in slots of the cluster's CPU count, so a trial's clock starts when it can run
        slots = max(1, int(ray.cluster_resources().get("CPU", workers or 1)))
        queue = list(reversed(trials))
        pending: dict[Any, tuple[Trial, float]] = {}

        def submit() -> None:
            while queue and len(pending) < slots:
                t = queue.pop()
                cpus, gpus = task_resources(t, getattr(ctx, "device", "cpu"))
                ref = task.options(num_cpus=cpus, num_gpus=gpus, max_retries=0).remote([ctx_ref], t, max(1, int(cpus)))
                pending[ref] = (t, time.monotonic())
                watch.started(t)

        submit()
        while pending:
            wait_s = None
            if timeout:
                wait_s = max(0.0, min(t0 + timeout for _, t0 in pending.values()) - time.monotonic())
            done, _ = ray.wait(list(pending), num_returns=1, timeout=wait_s)
            for ref in done:
                t, t0 = pending.pop(ref)
                watch.finished(t)
                try:
                    out = ray.get(ref)
                except Exception as e:  # the worker died (OOM, node lost)
                    out = TrialOutcome(None, f"ray task failed: {type(e).__name__}: {e}", time.monotonic() - t0)
                yield t, out
            if timeout:
                now = time.monotonic()
                for ref, (t, t0) in list(pending.items()):
                    if now - t0 > timeout:
                        ray.cancel(ref, force=True)
                        pending.pop(ref)
                        watch.finished(t)
                        yield t, TrialOutcome(None, _timeout_message(timeout, "its Ray task was cancelled (worker "
                                                                     "killed)"), now - t0)
            submit()
    finally:
        if started_here:
            ray.shutdown()
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
