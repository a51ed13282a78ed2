"""Bad-input matrix through the CLI (issue 7): exit code 2 with a message naming the file, line
or field and the fix — never a traceback; a model failing mid-run makes that audit ERROR."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli

ROOT = Path(__file__).resolve().parents[1]
GOOD = str(ROOT / "tests/data/ltr/rank.test")

CASES = {
    "empty.txt": (b"", "has no data lines"),
    "binary.txt": (bytes(range(256)) * 3, "binary file"),
    "nan.txt": (b"1 qid:1 1:0.5 2:0.3\n0 qid:1 1:0.1 2:nan\n", "line 2"),
    "inf.txt": (b"1 qid:1 1:0.5 2:inf\n", "finite"),
    "label.txt": (b"x qid:1 1:0.5\n", "label 'x' is not a number"),
    "biglabel.txt": (b"99999 qid:1 1:0.5\n", "label"),
    "garbled.txt": (b"1 qid:1 1:0.5 2=3\n", "'2=3'"),
    "noncontig.txt": (b"1 qid:1 1:0.5\n0 qid:2 1:0.3\n1 qid:1 1:0.2\n", "not contiguous"),
    "noqid.txt": (b"1 1:0.5\n0 1:0.3\n", "no 'qid:' tokens"),
    "dup.txt": (b"1 qid:1 1:0.5 #docid = A\n0 qid:1 1:0.3 #docid = A\n", "appears twice"),
    "bad.csv": (b"qid,label,f.0\n1,1,0.5\n1,x,0.2\n", "'label'"),
    "noqid.csv": (b"label,f.0\n1,0.5\n", "qid"),
}


def _invoke(args):
    r = CliRunner().invoke(cli, args)
    assert "Traceback" not in r.output
    return r


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_training_file_exits_2_with_location(tmp_path, name):
    content, words = CASES[name]
    p = tmp_path / name
    p.write_bytes(content)
    r = _invoke(["run", "--model", "auditor.testing:make_linear", "--train", str(p), "--test", GOOD,
                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    assert str(p) in r.output and words in r.output
    assert "Fix:" in r.output or "expected" in r.output


def test_missing_file_exits_2(tmp_path):
    r = _invoke(["run", "--model", "auditor.testing:make_linear", "--train", str(tmp_path / "nope.txt"),
                 "--test", GOOD])
    assert r.exit_code == 2 and "not found" in r.output


def test_feature_groups_that_differ_between_train_and_test(tmp_path):
    (tmp_path / "tr.csv").write_text("qid,label,a.0,a.1\n1,1,0.5,0.1\n1,0,0.2,0.3\n")
    (tmp_path / "te.csv").write_text("qid,label,a.0,b.0\n2,1,0.5,0.1\n2,0,0.2,0.3\n")
    r = _invoke(["run", "--model", "auditor.testing:make_linear", "--train", str(tmp_path / "tr.csv"),
                 "--test", str(tmp_path / "te.csv")])
    assert r.exit_code == 2 and "feature groups" in r.output


def test_bad_feature_group_spec(tmp_path):
    r = _invoke(["run", "--model", "auditor.testing:make_linear", "--train", GOOD, "--test", GOOD,
                 "--feature-groups", "a=1-10;b=5-20"])
    assert r.exit_code == 2, r.output


@pytest.mark.parametrize("factory,words", [
    ("make_raises_in_fit", "planted failure in fit"),
    ("make_wrong_shape", "expected"),
    ("make_nan", "non-finite"),
])
def test_model_failing_mid_run_is_an_audit_error(tmp_path, factory, words):
    from auditor.testing import make_synthetic_split

    sp = make_synthetic_split(n_train_queries=40, n_test_queries=15, n_items=6, seed=1)
    for name, d in (("tr.csv", sp.train), ("te.csv", sp.test)):
        cols = ["qid", "label"] + [f"{g}.{i}" for g, x in d.features.items() for i in range(x.shape[1])]
        X = d.feature_matrix()
        lines = [",".join(cols)] + [",".join([str(int(d.qid[r])), str(d.labels[r])] + [str(float(v)) for v in X[r]])
                                    for r in range(d.n_rows)]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    r = _invoke(["run", "--model", f"plugins.bad_plugins:{factory}", "--train", str(tmp_path / "tr.csv"),
                 "--test", str(tmp_path / "te.csv"), "--checks", "random_label,isolation", "--quick", "--quiet",
                 "--out", str(out)])
    res = json.loads((out / "results.json").read_text())
    rl = next(a for a in res["audits"] if a["name"] == "random_label")
    assert rl["status"] == "ERROR" and words in rl["error"]
    assert r.exit_code in (1, 3)  # isolation may still decide; never a crash
    assert res["verdict"] in ("INCONCLUSIVE", "NO_GO")


# --------------------------------------------------------------------------- configuration values
CONFIG_CASES = {
    "seed_text": ('seed = "abc"', "seed: expected an integer"),
    "seed_negative": ("seed = -3", "seed: expected an integer from 0"),
    "quick_text": ('quick = "yes"', "quick must be true or false"),
    "min_gain_text": ('min_gain = "x"', "min_gain must be a finite number"),
    "alpha_text": ('alpha = "0.1"', "alpha must be a finite number"),
    "checks_unknown": ('checks = ["nope"]', "checks: unknown audit 'nope'"),
    "count_negative": ("[audits.random_label]\nn_seeds = -1", "[audits.random_label] n_seeds: expected an integer >= 1"),
    "count_float": ("[audits.random_label]\nn_seeds = 2.5", "n_seeds: expected an integer, got 2.5"),
    "bool_as_int": ("[audits.isolation]\nnear_duplicates = 1", "near_duplicates: expected true or false"),
    "number_as_text": ('[audits.synthetic_shift]\nfdr = "0.1"', "fdr: expected a number"),
    "audit_range": ("[audits.synthetic_shift]\nauc_warn = 0.9", "need 0.5 <= auc_warn <= auc_fail"),
    "audit_choice": ('[audits.synthetic_shift]\nclassifier = "svm"', "classifier must be 'hgb+logistic', 'hgb' or 'logistic'"),
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_bad_config_value_exits_2_naming_file_and_key_before_any_work(tmp_path, name):
    body, words = CONFIG_CASES[name]
    cfg = tmp_path / "audit.toml"
    cfg.write_text(body + "\n")
    out = tmp_path / "run"
    r = _invoke(["run", "--model", "reference", "--config", str(cfg), "--out", str(out), "--quiet"])
    assert r.exit_code == 2, r.output
    assert words in r.output, r.output
    assert str(cfg) in r.output
    assert not out.exists()  # rejected before the run directory is created


def test_negative_seed_option_exits_2():
    r = _invoke(["run", "--model", "reference", "--seed", "-1"])
    assert r.exit_code == 2
    assert "Invalid value for '--seed'" in r.output


def test_api_rejects_bad_seed_and_param_types():
    from auditor import run_audit
    from auditor.errors import ConfigError

    with pytest.raises(ConfigError, match="seed: expected an integer"):
        run_audit("reference", seed=-1)
    with pytest.raises(ConfigError, match=r"\[audits.stability\] k: expected an integer"):
        run_audit("reference", config={"audits": {"stability": {"k": "5"}}})


@pytest.mark.parametrize("args,words", [
    (["--model", "reference", "--model-param", "preset=huge"], "unknown preset 'huge'"),
    (["--model", "reference", "--model-param", "nonsense=1"], "unknown parameter(s) ['nonsense']"),
    (["--model", "reference", "--baseline", "reference", "--baseline-param", "lr=abc"], "bad parameter value"),
])
def test_bad_model_param_exits_2_before_any_work(tmp_path, args, words):
    out = tmp_path / "run"
    r = _invoke(["run", *args, "--out", str(out), "--quiet"])
    assert r.exit_code == 2, r.output
    assert words in r.output
    assert not out.exists()


def test_factory_rejecting_its_params_is_a_plugin_error(tmp_path, small_split):
    from auditor import run_audit
    from auditor.errors import PluginError

    with pytest.raises(PluginError, match=r"plugins.bad_plugins:make_checks_params.*ValueError: alpha must be >= 0"):
        run_audit("plugins.bad_plugins:make_checks_params", train=small_split.train, test=small_split.test,
                  model_params={"alpha": -1}, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    run = run_audit("plugins.bad_plugins:make_checks_params", train=small_split.train, test=small_split.test,
                    model_params={"alpha": 2}, checks="isolation", quick=True)
    assert run.audit("isolation")["status"] in ("PASS", "WARN", "FAIL")
