"""Tiny audits for engine tests (runner, store, resume, verdict) — fast and fully controlled."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from auditor.audits.base import Audit, Condition, Decision, Evidence, Trial, plot_hist


class CountingAudit(Audit):
    """Fits the model per seed and reports held-out metric; FAILs when ``fail`` param is set."""

    name = "fake_count"
    title = "Fake counting audit"
    question = "Does the engine run trials and keep them?"
    method = "n trials, each fits and scores"
    citations = ["(test)"]
    defaults = {"n": 4, "fail": False, "sleep": 0.0, "crash_on": -1}
    quick_overrides = {"n": 2}

    def plan(self, ctx):
        p = ctx.params(self)
        return [Trial(self.name, f"seed={i}", {"seed": i}) for i in range(p["n"])]

    def run_trial(self, ctx, trial):
        p = ctx.params(self)
        if trial.params["seed"] == p["crash_on"]:
            raise ValueError("planted crash")
        sleep = float(os.environ.get("FAKE_AUDIT_SLEEP", p["sleep"]))  # env: not part of the config hash
        if sleep:
            time.sleep(sleep)
        m = ctx.fit(trial.params["seed"], train=ctx.train, cache=False)
        s = ctx.score(m, ctx.test)
        v = ctx.metric_values(ctx.test, s)
        marker = os.environ.get("FAKE_AUDIT_MARKER")
        if marker:
            with open(marker, "a") as f:
                f.write(trial.key + "\n")
        return {"mean": float(np.nanmean(v)), "noise": float(ctx.rng(self.name, trial.key).random())}

    def measure(self, ctx, results):
        vals = [r["mean"] for r in results.values()]
        return Evidence({"mean": float(np.mean(vals)), "n": len(vals),
                         "noise": [results[k]["noise"] for k in sorted(results)]},
                        p_value=0.01 if ctx.params(self)["fail"] else 0.6, null_hypothesis="no defect",
                        plots=[plot_hist("means", vals)])

    def decide(self, ctx, ev, p_adjusted):
        bad = p_adjusted is not None and p_adjusted < ctx.config.alpha
        return Decision([Condition("fake defect absent", "FAIL" if bad else "PASS", f"p_adj={p_adjusted}",
                                   "p_adj < alpha")], summary="fake failed" if bad else "fake passed")


class OtherAudit(CountingAudit):
    """A second fake with its own name (for Holm and crash isolation)."""

    name = "fake_other"
    title = "Fake other audit"


class WhereAudit(CountingAudit):
    """Reports which process ran each trial and the thread caps it saw (executor tests).

    With ``rendezvous`` set to a directory, every trial waits there until two processes have
    started trials, so a run on two processes has both run some, however slow a worker starts.
    """

    name = "fake_where"
    title = "Fake where audit"
    defaults = {"n": 8, "fail": False, "sleep": 0.05, "crash_on": -1, "rendezvous": ""}

    def run_trial(self, ctx, trial):
        p = ctx.params(self)
        time.sleep(float(p["sleep"]))
        if p["rendezvous"]:
            _meet(p["rendezvous"], parties=2)
        from threadpoolctl import threadpool_info

        caps = sorted({d["num_threads"] for d in threadpool_info()})
        return {"pid": os.getpid(), "omp": os.environ.get("OMP_NUM_THREADS"), "caps": caps,
                "noise": float(ctx.rng(self.name, trial.key).random()), "mean": 0.0}


def _meet(folder: str, parties: int, deadline_s: float = 120.0) -> None:
    """Mark this process as arrived in ``folder``, then wait until ``parties`` processes have."""
    Path(folder, str(os.getpid())).touch()
    t0 = time.monotonic()
    while len(os.listdir(folder)) < parties:
        if time.monotonic() - t0 > deadline_s:
            raise TimeoutError(f"only {len(os.listdir(folder))} of {parties} processes started a trial "
                               f"within {deadline_s:.0f} s")
        time.sleep(0.01)
