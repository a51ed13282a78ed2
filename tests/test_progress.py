"""The progress display's clocks and ETAs come from finished trials only (runner._Progress)."""
from __future__ import annotations

import auditor.runner as runner


def test_progress_clock_and_eta_follow_finished_trials(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(runner.time, "monotonic", lambda: now[0])
    p = runner._Progress({"a": [1, 2, 3, 4], "b": [1, 2]}, {}, enabled=True)
    p.progress.disable = True                                  # no terminal in a test
    with p:
        assert p._state("a") == "0:00 running, trial 1 of 4"
        assert p._state("b") == "queued"                      # no clock for what has not started
        assert p._state(None) == "0:00 elapsed, eta after the first trial"
        now[0] = 110.0
        p.advance("a")
        assert p._state("a") == "0:10 running, eta 0:30"     # 3 left x 10 s
        assert p._state("b") == "queued"
        assert p._state(None) == "0:10 elapsed, eta 0:50"    # + b's 2 trials at the mean 10 s
        now[0] = 140.0
        for _ in range(3):
            p.advance("a")
        now[0] = 145.0
        assert p._state("a") == "done in 0:40"
        assert p._state("b") == "0:05 running, eta 0:15"     # 2 x the mean 10 s, 5 s of it spent
        now[0] = 150.0
        p.advance("b")
        p.advance("b")
        assert p._state("b") == "done in 0:10" and p._state(None) == "done in 0:50"


def test_progress_resumed_audits_are_not_timed(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr(runner.time, "monotonic", lambda: now[0])
    p = runner._Progress({"a": [1, 2], "b": [1, 2]}, {"a": {"k1": {}, "k2": {}}, "b": {"k1": {}}}, enabled=True)
    p.progress.disable = True
    with p:
        assert p._state("a") == "done in an earlier run (resumed)"
        assert p._state("b") == "0:00 running, trial 1 of 2"
        now[0] = 3.0
        p.advance("b")
        assert p._state("b") == "done in 0:03"
