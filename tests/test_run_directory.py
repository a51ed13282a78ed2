"""The run directory and hostile plugins through the CLI (issue 14): a plugin that exits, edited
plugin code on --resume, two runs on one --out, archived reports, a full disk, slow plugins,
SIGTERM. docs/RUN_DIRECTORY.md states the guarantees these tests hold the code to."""
import errno
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli

TESTS = Path(__file__).resolve().parent
HOSTILE = "plugins.hostile:make_model"


def _run(out, *extra, model=HOSTILE, checks="fake_count"):
    return CliRunner().invoke(cli, ["run", "--model", model, "--checks", checks, "--out", str(out), "--quiet", *extra])


def _results(out):
    return json.loads((Path(out) / "results.json").read_text())


# --------------------------------------------------------------------------- 1. a plugin that exits
def _invoke(args):
    """``audit ARGS`` -> (exit code, output). In a subprocess where a regression could end the
    process itself (os._exit would otherwise end pytest with status 0, a silent pass)."""
    if any("os_exit" in a for a in args):
        p = subprocess.run([sys.executable, "-m", "auditor.cli", *args], capture_output=True, text=True, timeout=300)
        return p.returncode, p.stdout + p.stderr
    r = CliRunner().invoke(cli, args)
    return r.exit_code, r.output


@pytest.mark.parametrize("act", ["sys_exit", "os_exit"])
@pytest.mark.parametrize("where,executor", [("fit", "serial"), ("score", "serial"), ("worker", "local")])
def test_plugin_that_exits_is_a_trial_error_not_a_verdict(fake_audits, tmp_path, monkeypatch, act, where, executor):
    """``worker``: the plugin exits only inside a ``local`` worker process (in its first call, fit)."""
    if executor == "local":
        monkeypatch.setenv("FAKE_AUDIT_SLEEP", "0.5")  # this process is busy long enough for the worker to start
    out = tmp_path / "run"
    code, output = _invoke(["run", "--model", HOSTILE, "--checks", "fake_count", "--out", str(out), "--quiet",
                            "--model-param", f"act={act}", "--model-param", f"where={where}",
                            "--executor", executor, "--workers", "2"])
    assert code == 3, output  # INCONCLUSIVE: the audit errored; never 0 (GO) or 1
    res = _results(out)
    assert res["verdict"] == "INCONCLUSIVE"
    audit = res["audits"][0]
    assert audit["status"] == "ERROR"
    how = "sys.exit" if act == "sys_exit" else "os._exit"
    call = "fit(" if where == "worker" else f"{where}("
    assert f"called {how}(0)" in audit["error"] and call in audit["error"]


def test_worker_that_dies_fails_only_its_trial(fake_audits, tmp_path, monkeypatch):
    """A plugin that kills its worker process (past any guard) fails that trial; the run finishes."""
    monkeypatch.setenv("FAKE_AUDIT_SLEEP", "0.5")  # this process is busy long enough for the worker to start
    out = tmp_path / "run"
    r = _run(out, "--model-param", "act=sigkill", "--model-param", "where=worker", "--executor", "local",
             "--workers", "2")
    assert r.exit_code == 3, r.output
    audit = _results(out)["audits"][0]
    assert audit["status"] == "ERROR" and "worker failed" in audit["error"] and "SIGKILL" in audit["error"]
    rows = sqlite3.connect(out / "run.sqlite").execute("SELECT ok FROM trials").fetchall()
    assert len(rows) == 4 and any(ok for (ok,) in rows)  # this process's trials still succeeded


def test_plugin_that_exits_while_loading_is_exit_2(fake_audits, tmp_path):
    r = _run(tmp_path / "run", model="plugins.hostile:make_exits_in_factory")
    assert r.exit_code == 2, r.output
    assert "plugins.hostile:make_exits_in_factory" in r.output and "called sys.exit(0)" in r.output
    plugin = tmp_path / "exits_on_import.py"
    plugin.write_text("import sys\nsys.exit(0)\n")
    r = _run(tmp_path / "run2", model=f"{plugin}:make_model")
    assert r.exit_code == 2 and "called sys.exit(0)" in r.output, r.output


@pytest.mark.parametrize("act", ["sys_exit", "os_exit"])
def test_check_plugin_that_exits_is_exit_2_naming_the_plugin(fake_audits, act):
    code, output = _invoke(["check-plugin", HOSTILE, "--model-param", f"act={act}", "--model-param", "where=fit"])
    assert code == 2, output
    how = "sys.exit" if act == "sys_exit" else "os._exit"
    assert HOSTILE in output and f"called {how}(0)" in output


def test_main_never_exits_0_without_a_verdict(monkeypatch, capsys):
    """The last guard: a run command that ends with exit 0 but wrote no verdict exits 2."""
    import auditor.cli as C

    def fake_cli(**kw):
        C._RUN_STATE.update(started=True, verdict=None)
        raise SystemExit(0)

    monkeypatch.setattr(C, "cli", fake_cli)
    monkeypatch.setattr(C, "_RUN_STATE", {"started": False, "verdict": None})
    with pytest.raises(SystemExit) as e:
        C.main()
    assert e.value.code == 2 and "wrote no verdict" in capsys.readouterr().err


# --------------------------------------------------------------------------- 2. --resume and edited code
def test_resume_refuses_edited_plugin_code(fake_audits, tmp_path):
    src = (TESTS / "plugins" / "hostile.py").read_text()
    plugin = tmp_path / "my_ranker.py"
    plugin.write_text(src)
    out = tmp_path / "run"
    spec = f"{plugin}:make_model"
    assert _run(out, model=spec).exit_code == 0
    plugin.write_text(src.replace("return super().score(data)", "return -super().score(data)"))
    r = _run(out, "--resume", model=spec)
    assert r.exit_code == 2, r.output
    assert "code changed" in r.output and str(plugin) in r.output and "Traceback" not in r.output
    plugin.write_text(src)  # restored: the same code resumes
    assert _run(out, "--resume", model=spec).exit_code == 0


def test_resume_refuses_edited_package_module(fake_audits, tmp_path, monkeypatch):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("SIGN = 1\n")
    (pkg / "ranker.py").write_text(
        "from rankers import LinearRanker, make_synthetic_split\nfrom mypkg.helpers import SIGN\n"
        "def make_model(seed=0):\n    return LinearRanker(seed)\n"
        "make_model.default_data = lambda seed=0, **k: make_synthetic_split(30, 15, 6, seed=3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    assert _run(out, model="mypkg.ranker:make_model").exit_code == 0
    (pkg / "helpers.py").write_text("SIGN = -1\n")  # a helper module of the package, not the named one
    r = _run(out, "--resume", model="mypkg.ranker:make_model")
    assert r.exit_code == 2 and "helpers.py" in r.output, r.output


# --------------------------------------------------------------------------- 3. two runs, one --out
def _cli_cmd(out, *extra):
    return [sys.executable, "-m", "auditor.cli", "run", "--model", HOSTILE, "--checks", "fake_count",
            "--out", str(out), "--quiet", *extra]


def _wait_for_trials(db, n, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        try:
            if db.exists() and sqlite3.connect(db, timeout=1).execute("SELECT COUNT(*) FROM trials").fetchone()[0] >= n:
                return True
        except sqlite3.Error:
            pass
    return False


def test_second_run_on_a_busy_directory_is_refused(fake_audits, tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(_cli_cmd(out), env={**os.environ, "FAKE_AUDIT_SLEEP": "0.5"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for_trials(out / "run.sqlite", 1, first)
        r = _run(out)
        assert r.exit_code == 2, r.output
        assert f"pid {first.pid}" in r.output and "in use by another" in r.output
        r = _run(out, "--resume")  # resuming a running run is refused the same way
        assert r.exit_code == 2 and f"pid {first.pid}" in r.output
    finally:
        stdout, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    # the first run is whole: its results and its store agree, nothing was archived under it
    res = _results(out)
    assert res["audits"][0]["n_trials"] == 4
    assert sqlite3.connect(out / "run.sqlite").execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 4
    assert not (out / "archive").exists()


def test_stale_lock_of_a_dead_run_is_taken_over(fake_audits, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".audit.lock").write_text(json.dumps({"pid": 999999999, "host": "x", "started": "then"}))
    r = _run(out)
    assert r.exit_code == 0, r.output


# --------------------------------------------------------------------------- 4. reports archived
def test_second_run_archives_the_first_runs_reports(fake_audits, tmp_path):
    out = tmp_path / "run"
    assert _run(out).exit_code == 0
    first = (out / "report.html").read_text()
    r = _run(out, "--seed", "1")
    assert r.exit_code == 0, r.output
    (archived,) = (out / "archive").iterdir()
    assert (archived / "report.html").read_text() == first
    assert _results(archived)["seed"] == 0 and _results(out)["seed"] == 1
    assert f"was moved to {archived}" in r.stderr and "nothing was deleted" in r.stderr


# --------------------------------------------------------------------------- 8. full disk
class _FullDiskConnection:
    """A sqlite3 connection whose trial inserts fail as on a full disk."""

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql, *args):
        if sql.lstrip().upper().startswith("INSERT OR REPLACE INTO TRIALS"):
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_full_disk_while_committing_trials_is_exit_2_with_resume_hint(fake_audits, tmp_path, monkeypatch):
    import auditor.store as S

    real_connect = S.sqlite3.connect
    monkeypatch.setattr(S.sqlite3, "connect", lambda *a, **k: _FullDiskConnection(real_connect(*a, **k)))
    out = tmp_path / "run"
    r = _run(out)
    assert r.exit_code == 2, r.output
    assert str(out / "run.sqlite") in r.output and "full" in r.output and "--resume" in r.output
    assert "internal error" not in r.output and "Traceback" not in r.output
    monkeypatch.setattr(S.sqlite3, "connect", real_connect)  # space freed: the run resumes
    assert _run(out, "--resume").exit_code == 0


def test_full_disk_writing_results_is_exit_2_and_report_rebuilds(fake_audits, tmp_path, monkeypatch):
    import auditor.store as S

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "run"
    monkeypatch.setattr(S.os, "fsync", no_space)
    r = _run(out)
    assert r.exit_code == 2, r.output
    assert str(out / "results.json") in r.output and "audit report" in r.output
    assert "internal error" not in r.output
    monkeypatch.undo()
    r = CliRunner().invoke(cli, ["report", str(out)])
    assert r.exit_code == 0, r.output
    assert _results(out)["verdict"] == "GO"


# --------------------------------------------------------------------------- 5. read-only inputs
@pytest.mark.parametrize("executor", ["serial", "local"])
def test_plugin_cannot_unfreeze_its_input(fake_audits, tmp_path, executor):
    out = tmp_path / "run"
    r = _run(out, "--model-param", "act=unfreeze", "--executor", executor, "--workers", "2")
    assert r.exit_code == 3, r.output
    audit = _results(out)["audits"][0]
    assert audit["status"] == "ERROR" and "WRITEABLE" in audit["error"]


@pytest.mark.parametrize("act,array", [("labels", "labels"), ("ctypes", "features[")])
def test_mutation_of_the_input_is_detected_and_named(fake_audits, tmp_path, act, array):
    out = tmp_path / "run"
    r = _run(out, "--model-param", f"act={act}")
    assert r.exit_code == 3, r.output
    err = _results(out)["audits"][0]["error"]
    assert "modified its input" in err and array in err and "score()" in err


# --------------------------------------------------------------------------- 13. slow plugins
@pytest.mark.parametrize("executor", ["serial", "local"])
def test_trial_timeout_fails_the_slow_trial(fake_audits, tmp_path, monkeypatch, executor):
    # the plugin sleeps 120 s; a run that took anything near that waited for it instead of
    # stopping it (the bound leaves room for spawning a worker on a loaded machine)
    monkeypatch.setenv("HOSTILE_SLEEP", "120")
    out = tmp_path / "run"
    t0 = time.perf_counter()
    r = _run(out, "--model-param", "act=sleep", "--trial-timeout", "1", "--executor", executor, "--workers", "2")
    assert time.perf_counter() - t0 < 90
    assert r.exit_code == 3, r.output
    audit = _results(out)["audits"][0]
    assert audit["status"] == "ERROR" and "--trial-timeout 1 s" in audit["error"]
    if executor == "local":
        errs = [e for (e,) in sqlite3.connect(out / "run.sqlite").execute("SELECT error FROM trials")]
        assert any("worker process was stopped and replaced" in e for e in errs)


def test_slow_trials_show_a_heartbeat_unless_quiet(fake_audits, tmp_path, monkeypatch):
    monkeypatch.setenv("HOSTILE_SLEEP", "1.2")
    monkeypatch.setenv("AUDITOR_HEARTBEAT_S", "0.5")
    monkeypatch.setenv("FAKE_AUDIT_SLEEP", "0")
    args = ["run", "--model", HOSTILE, "--checks", "fake_count", "--model-param", "act=sleep",
            "--config", str(_config(tmp_path, n=1))]
    r = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "still running: fake_count seed=0" in r.stderr
    assert re.search(r"\[1/1\] fake_count seed=0 done in \d+ s; elapsed 0:00:\d\d", r.stderr)  # where a logged run is
    r = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "b"), "--quiet"])
    assert r.exit_code == 0 and "still running" not in r.stderr and "[1/1]" not in r.stderr


def _config(tmp_path, n):
    p = tmp_path / "audit.toml"
    p.write_text(f"[audits.fake_count]\nn = {n}\n")
    return p


# --------------------------------------------------------------------------- 14. SIGTERM
@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "local"])
def test_sigterm_keeps_trials_says_resume_and_exits_143(fake_audits, tmp_path, executor):
    out = tmp_path / "run"
    cmd = _cli_cmd(out, "--executor", executor, "--workers", "2", "--config", str(_config(tmp_path, n=8)))
    proc = subprocess.Popen(cmd, env={**os.environ, "FAKE_AUDIT_SLEEP": "0.5"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert _wait_for_trials(out / "run.sqlite", 2, proc)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, (stdout, stderr)
    assert "SIGTERM" in stderr and "--resume" in stderr and "Traceback" not in stderr
    kept = sqlite3.connect(out / "run.sqlite").execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    assert 2 <= kept < 8
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _results(out)["audits"][0]["n_trials"] == 8
