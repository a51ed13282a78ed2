"""The ``local`` executor: work shared between this process and spawned workers, same results."""
import os

import pytest

from auditor.audits import get_audit
from auditor.context import AuditConfig
from auditor.executors import run_trials
from auditor.runner import build_context

MODEL = "rankers:make_linear"


def _ctx_and_trials(small_split, n=8, sleep=0.05, **params):
    ctx, _ = build_context(MODEL, train=small_split.train, test=small_split.test,
                           config=AuditConfig(audits={"fake_where": {"n": n, "sleep": sleep, **params}}))
    return ctx, get_audit("fake_where").plan(ctx)


def _outcomes(ctx, trials, executor, workers=None):
    got = {}
    for t, out in run_trials(ctx, trials, executor, workers=workers):
        assert out.error is None, out.error
        assert t.key not in got, "a trial ran twice"
        got[t.key] = out.result
    return got


def test_local_shares_trials_between_this_process_and_a_worker(fake_audits, small_split, tmp_path):
    ctx, trials = _ctx_and_trials(small_split, n=10, sleep=0.0)
    serial = _outcomes(ctx, trials, "serial")
    # every trial waits until both processes have started one: the caller's first trial (taken
    # from the back at once) holds it until the worker, however slow to start, has taken one
    # from the front -- so both run trials whatever the machine's load
    ctx, trials = _ctx_and_trials(small_split, n=10, sleep=0.0, rendezvous=str(tmp_path))
    local = _outcomes(ctx, trials, "local", workers=2)
    assert set(local) == {t.key for t in trials}
    pids = {r["pid"] for r in local.values()}
    assert os.getpid() in pids and len(pids) == 2
    assert {k: r["noise"] for k, r in local.items()} == {k: r["noise"] for k, r in serial.items()}
    # threads pinned to 1 in both processes while trials run
    assert all(r["omp"] == "1" for r in local.values())
    assert all(r["caps"] in ([], [1]) for r in local.values())


def test_local_restores_this_process_thread_settings(fake_audits, small_split, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    from threadpoolctl import threadpool_info

    before = [d["num_threads"] for d in threadpool_info()]
    ctx, trials = _ctx_and_trials(small_split, n=3, sleep=0.0)
    _outcomes(ctx, trials, "local", workers=2)
    assert os.environ["OMP_NUM_THREADS"] == "7"
    assert "MKL_NUM_THREADS" not in os.environ
    assert [d["num_threads"] for d in threadpool_info()] == before


def test_local_with_one_worker_runs_here(fake_audits, small_split):
    ctx, trials = _ctx_and_trials(small_split, n=3, sleep=0.0)
    local = _outcomes(ctx, trials, "local", workers=1)
    assert {r["pid"] for r in local.values()} == {os.getpid()}
    assert all(r["omp"] == "1" for r in local.values())


def test_interrupt_while_this_process_runs_a_trial_stops_the_pool(fake_audits, small_split):
    ctx, trials = _ctx_and_trials(small_split, n=6, sleep=0.05)
    gen = run_trials(ctx, trials, "local", workers=2)
    next(gen)
    gen.close()  # what a KeyboardInterrupt in the consumer does to the generator
    with pytest.raises(StopIteration):
        next(gen)


def test_ray_tasks_ask_for_a_gpu_on_cuda_runs():
    from auditor.audits.base import Trial
    from auditor.ray_executor import task_resources

    plain = Trial("x", "k", {})
    assert task_resources(plain, "cpu") == (1.0, 0.0)
    assert task_resources(plain, "cuda:0") == (1.0, 1.0)
    own = Trial("x", "k", {}, resources={"num_gpus": 0, "num_cpus": 2})
    assert task_resources(own, "cuda") == (2.0, 0.0)
