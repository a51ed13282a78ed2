"""Third-party audits: registered in the entry-point group ``auditor.audits``, checked when loaded,
run like the built-ins (docs/AUDITS.md, "Add an audit")."""
import json
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from conftest import install_audit_plugins

ROOT = Path(__file__).resolve().parent.parent
LTR = ["--train", str(ROOT / "tests/data/ltr/rank.train"), "--test", str(ROOT / "tests/data/ltr/rank.test"),
       "--format", "letor", "--model", "tiny_model:make_model"]

# a closed-form ridge ranker (milliseconds), so the tests time the audit, not a model
MODEL = '''
import numpy as np


class Ridge:
    def __init__(self, seed=0):
        self.seed = seed

    def fit(self, train):
        X = train.feature_matrix()
        self.mean_, self.scale_ = X.mean(0), X.std(0) + 1e-9
        Z = (X - self.mean_) / self.scale_
        self.coef_ = np.linalg.solve(Z.T @ Z + np.eye(Z.shape[1]), Z.T @ (train.labels - train.labels.mean()))
        return self

    def score(self, data):
        return ((data.feature_matrix() - self.mean_) / self.scale_) @ self.coef_


def make_model(seed=0):
    return Ridge(seed)
'''

# the whole of a small third-party audit: one module, as docs/AUDITS.md "Add an audit" shows it
TINY = '''
import numpy as np

from auditor.audits.base import Audit, Condition, Decision, Evidence, Trial
from auditor.config import ParamText, declare, param


class HeldOutAboveChance(Audit):
    name = "above_chance"
    title = "Held-out metric above chance"
    question = "Does the model rank held-out queries better than a random order?"
    method = ParamText("The model is fitted n_fits ({n_fits}) times (seeds 0..n_fits-1) and its mean held-out "
                       "metric compared with the exact chance level; PASS when it is above chance by margin "
                       "({margin}).")
    critical = False
    gating = False
    defaults = declare(
        n_fits=param(int, 2, min=1, quick=1, help="model seeds fitted"),
        margin=param(float, 0.0, min=0, help="excess over chance a PASS needs (metric units)"),
    )

    def plan(self, ctx):
        return [Trial(self.name, f"seed={s}", {"seed": s}) for s in range(ctx.params(self)["n_fits"])]

    def run_trial(self, ctx, trial):
        model = ctx.fit(trial.params["seed"])
        return {"metric": float(np.nanmean(ctx.metric_values(ctx.test, ctx.score(model, ctx.test))))}

    def measure(self, ctx, results):
        metric = sum(r["metric"] for r in results.values()) / len(results)
        # a constant score ties every candidate: the metric's exact chance level
        chance = float(np.nanmean(ctx.metric_values(ctx.test, np.zeros(ctx.test.n_rows))))
        return Evidence({"metric": metric, "chance": chance, "n_fits": len(results)})

    def decide(self, ctx, evidence, p_adjusted):
        m = evidence.measurements
        ok = m["metric"] > m["chance"] + ctx.params(self)["margin"]
        return Decision([Condition("held-out metric above chance", "PASS" if ok else "WARN",
                                   f"{m['metric']:.3f} vs chance {m['chance']:.3f}", "metric > chance + margin")],
                        summary=f"held-out metric {m['metric']:.3f}, chance {m['chance']:.3f}")
'''


def _install(monkeypatch, tmp_path, source: str, entry: str = "above_chance = tiny_audit:HeldOutAboveChance"):
    site = tmp_path / "site"
    site.mkdir()
    (site / "tiny_audit.py").write_text(textwrap.dedent(source))
    (site / "tiny_model.py").write_text(MODEL)
    for mod in ("tiny_audit", "tiny_model"):  # each test imports its own version
        monkeypatch.delitem(sys.modules, mod, raising=False)
    name, target = (s.strip() for s in entry.split("="))
    install_audit_plugins(monkeypatch, site, {name: target}, extra_path=site)


def test_an_audit_registered_by_entry_point_is_listed_configured_and_run(monkeypatch, tmp_path):
    _install(monkeypatch, tmp_path, TINY)
    listed = json.loads(CliRunner().invoke(cli, ["list", "--json"]).output)
    tiny = {a["name"]: a for a in listed["audits"]}["above_chance"]
    assert tiny["params"]["n_fits"] == {"default": 2, "quick": 1, "values": "integer >= 1",
                                        "help": "model seeds fitted"}

    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["run", *LTR, "--checks", "above_chance", "--set", "above_chance.n_fits=3",
                                 "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    (a,) = res["audits"]
    assert (a["name"], a["status"], a["n_trials"]) == ("above_chance", "PASS", 3)
    assert a["config"] == {"n_fits": 3, "margin": 0.0}
    assert a["method"].startswith("The model is fitted n_fits (2) times")  # filled from the declaration
    assert a["measurements"]["metric"] > a["measurements"]["chance"]

    r = CliRunner().invoke(cli, ["run", *LTR, "--checks", "above_chance", "--set", "above_chance.n_fits=0",
                                 "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "[audits.above_chance] n_fits: expected an integer >= 1, got 0" in r.output


BROKEN = {
    "wrong name": (TINY.replace('name = "above_chance"', 'name = "other"'),
                   "the class's name is 'other', but it is registered as 'above_chance'"),
    "not an audit": (TINY + "\nclass HeldOutAboveChance:\n    name = 'above_chance'\n",
                     "is not a class derived from auditor.audits.base.Audit"),
    "no decide": (TINY.replace("    def decide(", "    def not_decide("), "does not implement decide"),
    "no method text": (TINY.replace('method = ParamText("The model', 'method = ("" and "The model'),
                       "HeldOutAboveChance.method is empty"),
    "default out of its bounds": (TINY.replace("param(int, 2, min=1", "param(int, 0, min=1"),
                                  "default n_fits: expected an integer >= 1, got 0"),
    "import fails": ("import no_such_module_here\n" + TINY, "importing 'tiny_audit' raised ModuleNotFoundError"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_audit_plugin_is_a_usage_error_naming_it_and_the_rule(monkeypatch, tmp_path, case):
    source, words = BROKEN[case]
    _install(monkeypatch, tmp_path, source)
    r = CliRunner().invoke(cli, ["run", *LTR, "--checks", "above_chance", "--out", str(tmp_path / "run")])
    assert r.exit_code == 2, r.output
    assert "plugin 'above_chance=tiny_audit:HeldOutAboveChance'" in r.output and words in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "run").exists()
    listed = CliRunner().invoke(cli, ["list"])  # one broken plugin does not hide the rest
    assert listed.exit_code == 0 and "random_label" in listed.output


def test_an_entry_point_cannot_take_a_built_in_name(monkeypatch, tmp_path):
    _install(monkeypatch, tmp_path, TINY, entry="isolation = tiny_audit:HeldOutAboveChance")
    r = CliRunner().invoke(cli, ["run", *LTR, "--checks", "isolation"])
    assert r.exit_code == 2 and "has the name of a built-in audit" in r.output, r.output


def test_the_environment_variable_still_registers_an_audit_with_a_deprecation_warning(monkeypatch, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "tiny_audit.py").write_text(textwrap.dedent(TINY))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "tiny_audit", raising=False)
    monkeypatch.setenv("AUDITOR_EXTRA_AUDITS", "above_chance=tiny_audit:HeldOutAboveChance")
    from auditor.audits import audit_names, get_audit

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert "above_chance" in audit_names()
    assert any("deprecated" in str(w.message) and "auditor.audits" in str(w.message) for w in caught)
    assert get_audit("above_chance").defaults == {"n_fits": 2, "margin": 0.0}
