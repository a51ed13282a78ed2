"""The `audit` CLI: exit codes and messages (CliRunner), no tracebacks for user errors."""
import json
import os

import pytest
from click.testing import CliRunner

from auditor.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


def test_version_and_help(runner):
    r = runner.invoke(cli, ["--version"])
    assert r.exit_code == 0 and "rank-auditor" in r.output
    r = runner.invoke(cli, ["--help"])
    assert r.exit_code == 0
    for cmd in ("run", "eval", "list", "check-plugin", "report", "compare", "init-plugin"):
        assert cmd in r.output


def test_list_shows_audits_and_reference_model(runner):
    r = runner.invoke(cli, ["list", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert [a["name"] for a in data["audits"]][:6] == ["random_label", "feature_ablation", "isolation",
                                                       "synthetic_shift", "significance", "stability"]
    assert data["models"]["reference"] == "reference_model.plugin:make_model"


def test_check_plugin_good_and_bad(runner, tmp_path, monkeypatch):
    r = runner.invoke(cli, ["check-plugin", "auditor.testing:make_linear"])
    assert r.exit_code == 0, r.output
    assert "0 failed" in r.output and "PASS  score_ignores_labels" in r.output
    r = runner.invoke(cli, ["check-plugin", "plugins.bad_plugins:make_reads_labels"])
    assert r.exit_code == 1
    assert "FAIL  score_ignores_labels: scores change when the test labels" in r.output


def test_check_plugin_that_cannot_load_exits_2(runner, tmp_path):
    r = runner.invoke(cli, ["check-plugin", str(tmp_path / "missing.py") + ":make_model"])
    assert r.exit_code == 2
    assert "does not exist" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, ["check-plugin", "no_such_pkg.mod:make"])
    assert r.exit_code == 2 and "not found" in r.output


def test_init_plugin_scaffold_passes_check_plugin(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(cli, ["init-plugin", "my_ranker"])
    assert r.exit_code == 0, r.output
    assert os.path.isfile("my_ranker.py")
    r = runner.invoke(cli, ["check-plugin", "./my_ranker.py:make_model"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["init-plugin", "my_ranker"])
    assert r.exit_code == 2 and "already exists" in r.output


@pytest.mark.parametrize("args,words", [
    (["run", "--model", "auditor.testing:make_linear", "--checks", "random_label,bogus"], "valid: random_label"),
    (["run", "--model", "not-installed"], "no model named 'not-installed'"),
    (["run", "--model", "auditor.testing:make_linear"], "ships no default data"),
    (["run", "--model", "auditor.testing:make_linear", "--model-param", "oops"], "expected key=value"),
    (["run", "--model", "reference", "--device", "gpu"], "Invalid value for '--device'"),
    (["run", "--model", "auditor.testing:make_linear", "--train", "x.txt"], "pass both --train and --test"),
])
def test_run_usage_errors_exit_2(runner, args, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.txt").write_text("1 qid:1 1:0.5\n")  # exists: the missing --test is what is tested
    r = runner.invoke(cli, args)
    assert r.exit_code == 2, r.output
    assert words in r.output
    assert "Traceback" not in r.output


def test_run_bad_config_file(runner, tmp_path):
    cfg = tmp_path / "audit.toml"
    cfg.write_text('metric = "ndcg@10"\nalpah = 0.05\n')
    r = runner.invoke(cli, ["run", "--model", "reference", "--config", str(cfg)])
    assert r.exit_code == 2 and "unknown key(s) alpah" in r.output
    cfg.write_text('metric = ndcg\n')
    r = runner.invoke(cli, ["run", "--model", "reference", "--config", str(cfg)])
    assert r.exit_code == 2 and "not valid TOML" in r.output


def test_report_on_empty_dir_exits_2(runner, tmp_path):
    r = runner.invoke(cli, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "no results.json" in r.output
