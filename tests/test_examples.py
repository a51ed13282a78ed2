"""The example plugins (real third-party rankers) pass check-plugin and are audited end to end
on the real LETOR sample, through the CLI as a user would run them."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli

ROOT = Path(__file__).resolve().parents[1]
LGBM = str(ROOT / "examples/plugins/lightgbm_ranker.py") + ":make_model"
SKL = str(ROOT / "examples/plugins/sklearn_pointwise.py") + ":make_model"
TORCH = str(ROOT / "examples/plugins/torch_listnet.py") + ":make_model"
XGB = str(ROOT / "examples/plugins/xgboost_ranker.py") + ":make_model"
TRAIN = str(ROOT / "tests/data/ltr/rank.train")
TEST = str(ROOT / "tests/data/ltr/rank.test")


SMALL = {LGBM: ["n_estimators=20"], SKL: ["max_iter=20"], TORCH: ["max_epochs=8"], XGB: ["n_estimators=20"]}


@pytest.mark.parametrize("spec", [LGBM, SKL, TORCH, XGB], ids=["lightgbm", "sklearn", "torch", "xgboost"])
def test_example_plugins_pass_check_plugin(spec):
    args = ["check-plugin", spec]
    for kv in SMALL[spec]:
        args += ["--model-param", kv]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "0 failed" in r.output and "fit_history_format" in r.output


def _audit(tmp_path, spec, params, baseline, baseline_params=()):
    out = tmp_path / "run"
    args = ["run", "--model", spec, "--baseline", baseline, "--train", TRAIN, "--test", TEST, "--format", "letor",
            "--quick", "--quiet", "--out", str(out)]
    for kv in params:
        args += ["--model-param", kv]
    for kv in baseline_params:
        args += ["--baseline-param", kv]
    r = CliRunner().invoke(cli, args)
    res = json.loads((out / "results.json").read_text())
    assert r.exit_code == res["exit_code"], r.output
    statuses = {a["name"]: a["status"] for a in res["audits"]}
    assert "ERROR" not in statuses.values(), {a["name"]: a["error"] for a in res["audits"]}
    # a clean real split with a real model: no leak alarms
    for name in ("random_label", "isolation", "synthetic_shift", "feature_ablation"):
        assert statuses[name] != "FAIL", (name, res["audits"])
    return res


@pytest.mark.slow
def test_torch_listnet_audited_end_to_end_with_its_training_curves(tmp_path):
    res = _audit(tmp_path, TORCH, ["max_epochs=15"], "rankers:make_random")
    rl = next(a for a in res["audits"] if a["name"] == "random_label")
    curves = next(p for p in rl["plots"] if p["type"] == "lines")
    labels = [s["label"] for s in curves["series"]]
    assert labels[0] == "true labels (train_loss)" and any(lab.startswith("random labels") for lab in labels)
    assert all(1 <= len(s["y"]) <= 15 for s in curves["series"])          # early stopping within max_epochs
    sig = next(a for a in res["audits"] if a["name"] == "significance")
    assert sig["status"] == "PASS", sig["summary"]                          # beats a random ranker


@pytest.mark.slow
def test_xgboost_ranker_audited_end_to_end(tmp_path):
    res = _audit(tmp_path, XGB, ["n_estimators=30"], SKL, ["max_iter=20"])
    assert res["data"]["train"]["n_queries"] == 201 and res["model"]["spec"] == XGB


@pytest.mark.slow
def test_lightgbm_audited_end_to_end_on_letor(tmp_path):
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, [
        "run", "--model", LGBM, "--model-param", "n_estimators=40",
        "--baseline", SKL, "--baseline-param", "max_iter=20",
        "--train", TRAIN, "--test", TEST, "--format", "letor", "--quick", "--quiet", "--out", str(out)])
    res = json.loads((out / "results.json").read_text())
    statuses = {a["name"]: a["status"] for a in res["audits"]}
    assert r.exit_code == res["exit_code"], r.output
    assert set(statuses) == {"random_label", "feature_ablation", "isolation", "synthetic_shift", "significance",
                             "stability"}
    assert "ERROR" not in statuses.values(), {a["name"]: a["error"] for a in res["audits"]}
    # a clean real split with a real model: no leak alarms
    for name in ("random_label", "isolation", "synthetic_shift", "feature_ablation"):
        assert statuses[name] != "FAIL", (name, res["audits"])
    assert res["data"]["train"]["n_queries"] == 201 and res["data"]["test"]["n_queries"] == 50
    for f in ("report.html", "junit.xml", "summary.md"):
        assert (out / f).is_file()


@pytest.mark.slow
def test_planted_copies_in_letor_are_caught_end_to_end(tmp_path):
    """Copy 30% of the test queries into train (new qids): the run must be NO_GO via isolation."""
    tr = Path(TRAIN).read_text().splitlines()
    te = Path(TEST).read_text().splitlines()
    tq = [int(x) for x in Path(TRAIN + ".query").read_text().split()]
    eq = [int(x) for x in Path(TEST + ".query").read_text().split()]
    starts = [0]
    for n in eq:
        starts.append(starts[-1] + n)
    copied, sizes = [], []
    for i in range(0, len(eq), 3):  # every third test query
        copied += te[starts[i]:starts[i + 1]]
        sizes.append(eq[i])
    (tmp_path / "train.txt").write_text("\n".join(tr + copied) + "\n")
    (tmp_path / "train.txt.query").write_text("\n".join(map(str, tq + sizes)) + "\n")
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, [
        "run", "--model", LGBM, "--model-param", "n_estimators=40", "--checks", "isolation,random_label",
        "--train", str(tmp_path / "train.txt"), "--test", TEST, "--format", "letor", "--quick", "--quiet",
        "--out", str(out)])
    assert r.exit_code == 1, r.output
    res = json.loads((out / "results.json").read_text())
    iso = next(a for a in res["audits"] if a["name"] == "isolation")
    assert iso["status"] == "FAIL"
