"""Run store: trials committed as they finish, --resume skips them, crash safety (SIGKILL)."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auditor.context import AuditConfig
from auditor.errors import StoreError
from auditor.runner import run_audit
from auditor.store import RunStore, atomic_write_text

MODEL = "rankers:make_linear"


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "x.json"
    atomic_write_text(p, "old")
    atomic_write_text(p, "new")
    assert p.read_text() == "new"
    assert [f.name for f in tmp_path.iterdir()] == ["x.json"]  # no temp files left


def test_store_commits_and_resume_skips(fake_audits, small_split, tmp_path, monkeypatch):
    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("FAKE_AUDIT_MARKER", str(marker))
    out = tmp_path / "run"
    r1 = run_audit(MODEL, train=small_split.train, test=small_split.test, checks=["fake_count"], out=out)
    assert len(marker.read_text().splitlines()) == 4
    assert (out / "results.json").is_file()
    r2 = run_audit(MODEL, train=small_split.train, test=small_split.test, checks=["fake_count"], out=out, resume=True)
    assert len(marker.read_text().splitlines()) == 4  # nothing rerun
    assert r2.audit("fake_count")["measurements"] == r1.audit("fake_count")["measurements"]
    s = RunStore(out)
    assert s.n_trials() == 4 and json.loads(s.get_meta("results"))["verdict"] == "GO"
    s.close()


def test_resume_with_other_configuration_is_refused(fake_audits, small_split, tmp_path):
    out = tmp_path / "run"
    run_audit(MODEL, train=small_split.train, test=small_split.test, checks=["fake_count"], out=out)
    with pytest.raises(StoreError, match="different configuration.*seed"):
        run_audit(MODEL, train=small_split.train, test=small_split.test, checks=["fake_count"], out=out,
                  resume=True, seed=5)
    with pytest.raises(StoreError, match="no run to resume"):
        run_audit(MODEL, train=small_split.train, test=small_split.test, checks=["fake_count"],
                  out=tmp_path / "empty", resume=True)


def test_new_run_archives_previous_store_and_reports(fake_audits, small_split, tmp_path, capsys):
    out = tmp_path / "run"
    run_audit(MODEL, train=small_split.train, test=small_split.test, checks=["fake_count"], out=out)
    first = json.loads((out / "results.json").read_text())
    run_audit(MODEL, train=small_split.train, test=small_split.test, checks=["fake_count"], out=out, seed=1)
    archived = list((out / "archive").iterdir())
    assert len(archived) == 1  # the first run's trials and reports are kept, not deleted
    a = archived[0]
    assert sqlite3.connect(a / "run.sqlite").execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 4
    assert json.loads((a / "results.json").read_text()) == first
    assert {p.name for p in a.iterdir()} >= {"results.json", "report.html", "junit.xml", "summary.md"}
    assert json.loads((out / "results.json").read_text())["seed"] == 1
    assert f"was moved to {a}" in capsys.readouterr().err


SCRIPT = """
import sys
from auditor.runner import run_audit
from auditor.context import AuditConfig
from auditor.synthetic import make_synthetic_split
sp = make_synthetic_split(n_train_queries=60, n_test_queries=25, n_items=8, seed=3)
run = run_audit("rankers:make_linear", train=sp.train, test=sp.test, checks=["fake_count"],
                out=sys.argv[1], resume=sys.argv[2] == "1",
                config=AuditConfig(audits={"fake_count": {"n": 8}}))
print(run.verdict)
"""


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted_run(fake_audits, tmp_path, monkeypatch):
    marker = tmp_path / "marker.txt"
    env = {**os.environ, "FAKE_AUDIT_MARKER": str(marker)}
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(killed), "0"], env={**env, "FAKE_AUDIT_SLEEP": "0.4"})
    db = killed / "run.sqlite"
    deadline = time.time() + 60
    n = 0
    while time.time() < deadline:
        time.sleep(0.1)
        if db.exists():
            try:
                n = sqlite3.connect(db, timeout=1).execute("SELECT COUNT(*) FROM trials").fetchone()[0]
            except sqlite3.Error:
                n = 0
            if n >= 3:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 3 <= n < 8, n
    assert not (killed / "results.json").exists()
    before = len(marker.read_text().splitlines())
    out = subprocess.run([sys.executable, str(script), str(killed), "1"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rerun = len(marker.read_text().splitlines()) - before
    assert rerun <= 8 - n  # committed trials were not run again
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, str(script), str(clean), "0"], env=env, check=True, capture_output=True)
    a = json.loads((killed / "results.json").read_text())
    b = json.loads((clean / "results.json").read_text())
    assert a["audits"][0]["measurements"] == b["audits"][0]["measurements"]
    assert a["verdict"] == b["verdict"]


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "local"])
def test_ctrl_c_stops_cleanly_keeps_trials_and_resume_finishes(fake_audits, tmp_path, executor):
    """SIGINT (Ctrl-C) mid-run: exit 130, a message naming --resume, no traceback; resume completes.

    With ``local`` this process may be running a trial itself when the signal lands, while its
    worker runs another: the pool is shut down and the finished trials are kept all the same.
    """
    from auditor.synthetic import make_synthetic_split

    sp = make_synthetic_split(n_train_queries=30, n_test_queries=10, n_items=6, seed=3)
    for name, d in (("tr.csv", sp.train), ("te.csv", sp.test)):
        cols = ["qid", "label"] + [f"{g}.{i}" for g, x in d.features.items() for i in range(x.shape[1])]
        X = d.feature_matrix()
        rows = [",".join([str(int(d.qid[r])), str(d.labels[r])] + [str(float(v)) for v in X[r]]) for r in range(d.n_rows)]
        (tmp_path / name).write_text("\n".join([",".join(cols)] + rows) + "\n")
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[audits.fake_count]\nn = 8\n")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "auditor.cli", "run", "--model", "rankers:make_linear",
           "--train", str(tmp_path / "tr.csv"), "--test", str(tmp_path / "te.csv"), "--checks", "fake_count",
           "--config", str(cfg), "--out", str(out), "--quiet", "--executor", executor, "--workers", "2"]
    # the child must see Ctrl-C even when this suite runs as a background job: a non-interactive
    # shell starts background jobs with SIGINT ignored, which the child would inherit (and
    # Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen(cmd, env={**os.environ, "FAKE_AUDIT_SLEEP": "0.5"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    db = out / "run.sqlite"
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.1)
        try:
            if db.exists() and sqlite3.connect(db, timeout=1).execute("SELECT COUNT(*) FROM trials").fetchone()[0] >= 2:
                break
        except sqlite3.Error:
            pass
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "--resume" in stderr and "Traceback" not in stderr
    kept = sqlite3.connect(db).execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    assert 2 <= kept < 8
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "results.json").read_text())["audits"][0]["n_trials"] == 8
