"""Metric plugins (``auditor.metrics`` entry points): the documented example works in `audit eval`,
`audit run` and `audit list`; a broken plugin is refused with exit 2 naming it and the rule broken.

Plugins are "installed" the way pip does it, as far as importlib.metadata can tell: a
``*.dist-info`` folder with an ``entry_points.txt`` on ``sys.path``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from auditor import metric_registry as R
from auditor import metrics as M
from auditor.cli import cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "metric_plugin"


@pytest.fixture
def install(tmp_path, monkeypatch):
    """install({entry name: "module:attr"}, *module_dirs): a fake distribution on sys.path."""
    def go(entries: dict[str, str], *paths: Path) -> None:
        dist = tmp_path / "site" / "test_metric_plugins-0.1.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: test-metric-plugins\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(
            "[auditor.metrics]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
        for p in (tmp_path / "site", *paths):
            monkeypatch.syspath_prepend(str(p))
        R.reload_plugins()

    yield go
    monkeypatch.undo()
    R.reload_plugins()


def _rbp_by_definition(rels: list[int], k: int | None, p: float = 0.8) -> float:
    """RBP written out as its formula, rank by rank."""
    kk = len(rels) if k is None else min(k, len(rels))
    return sum((1 - p) * p ** r * (1 if rels[r] >= 1 else 0) for r in range(kk))


QRELS = "1 0 a 1\n1 0 b 0\n1 0 c 2\n1 0 z 1\n2 0 a 0\n2 0 b 1\n3 0 a 0\n"
RUN = ("1 Q0 c 1 0.9 t\n1 Q0 b 2 0.8 t\n1 Q0 a 3 0.7 t\n1 Q0 x 4 0.6 t\n"
       "2 Q0 a 1 0.5 t\n2 Q0 b 2 0.4 t\n3 Q0 a 1 0.3 t\n")


def test_example_plugin_in_the_python_api(install):
    install({"rbp": "rbp_metric:RBP"}, EXAMPLE)
    assert M.parse_metric("rbp").name == "rbp" and M.parse_metric("RBP_5") == M.MetricSpec("rbp", 5)
    assert {"rbp", "rbp@k"} <= set(R.metric_names())
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 30, 60)
    off = np.concatenate([[0], np.cumsum(sizes)])
    labels = rng.integers(0, 3, off[-1]).astype(float)
    scores = rng.random(off[-1])
    for k in (None, 5):
        got = M.evaluate("rbp" if k is None else f"rbp@{k}", labels, scores, off)
        want = []
        for q in range(sizes.size):
            lab, sc = labels[off[q]:off[q + 1]], scores[off[q]:off[q + 1]]
            want.append(_rbp_by_definition(lab[np.argsort(-sc)].astype(int).tolist(), k) if (lab >= 1).any()
                        else math.nan)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        # constant scores: the tie-aware value is the expectation over all orders = the closed-form chance
        const = M.evaluate("rbp" if k is None else f"rbp@{k}", labels, np.zeros(off[-1]), off)
        chance = M.expected_random("rbp" if k is None else f"rbp@{k}", labels, off)
        np.testing.assert_allclose(const, chance, rtol=1e-12)
    # two tied items, one relevant: half of RBP at rank 1 plus half at rank 2
    v = M.evaluate("rbp", np.array([1.0, 0.0]), np.array([0.5, 0.5]), np.array([0, 2]))
    assert v[0] == pytest.approx(0.5 * 0.2 + 0.5 * 0.2 * 0.8)


def test_example_plugin_in_audit_eval_and_list(install, tmp_path):
    install({"rbp": "rbp_metric:RBP"}, EXAMPLE)
    (tmp_path / "q").write_text(QRELS)
    (tmp_path / "r").write_text(RUN)
    r = CliRunner().invoke(cli, ["eval", "--qrels", str(tmp_path / "q"), "--run", str(tmp_path / "r"),
                                 "-m", "rbp", "-m", "rbp@2", "-m", "ndcg@10", "--per-query", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[:r.output.rindex("}") + 1])
    # query 1 ranks c, b, a, x (labels 2, 0, 1, unjudged); query 2 a, b (0, 1); query 3: no relevant item
    assert out["per_query"]["1"]["rbp"] == pytest.approx(_rbp_by_definition([2, 0, 1, 0], None))
    assert out["per_query"]["1"]["rbp@2"] == pytest.approx(_rbp_by_definition([2, 0], 2))
    assert out["per_query"]["2"]["rbp"] == pytest.approx(_rbp_by_definition([0, 1], None))
    assert out["per_query"]["3"]["rbp"] is None
    r = CliRunner().invoke(cli, ["list", "--json"])
    assert r.exit_code == 0 and "rbp@k" in json.loads(r.output)["metrics"]


def test_example_plugin_in_audit_run(install, tmp_path):
    from auditor.synthetic import make_synthetic_split

    install({"rbp": "rbp_metric:RBP"}, EXAMPLE)
    sp = make_synthetic_split(n_train_queries=30, n_test_queries=20, n_items=6, seed=1)
    paths = []
    for name, d in (("tr.csv", sp.train), ("te.csv", sp.test)):
        X = d.feature_matrix()
        cols = ["qid", "label"] + [f"f{i}" for i in range(X.shape[1])]
        rows = [",".join([str(int(d.qid[i])), str(d.labels[i])] + [repr(float(v)) for v in X[i]])
                for i in range(d.n_rows)]
        (tmp_path / name).write_text("\n".join([",".join(cols), *rows]) + "\n")
        paths.append(str(tmp_path / name))
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["run", "--model", "rankers:make_linear", "--train", paths[0], "--test",
                                 paths[1], "--metric", "rbp@5", "--checks", "random_label", "--quick", "--out",
                                 str(out)])
    assert "Traceback" not in r.output, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["metric"] == "rbp@5"
    ra = next(a for a in res["audits"] if a["name"] == "random_label")
    assert ra["status"] != "ERROR", ra
    assert ra["measurements"]["metric"] == "rbp@5"


@pytest.mark.parametrize("entry, target, rule", [
    ("not_a_family", "metric_plugins:NOT_A_FAMILY", "it is a dict, not an auditor.metric_registry.MetricFamily"),
    ("wrong_name", "metric_plugins:WRONG_NAME", "differs from the entry point's name 'wrong_name'"),
    ("ties_disagree", "metric_plugins:TIES_DISAGREE", "tie_kernel differs from kernel on queries without tied"),
    ("raises", "metric_plugins:RAISES", "its kernel raised ZeroDivisionError"),
    ("wrong_shape", "metric_plugins:WRONG_SHAPE", "its kernel returned shape (3,)"),
    ("chance_wrong", "metric_plugins:CHANCE_WRONG", "differs from tie_kernel under constant scores"),
    ("clashes", "metric_plugins:CLASHES", "'ap' is already a metric name"),
    ("import_fails", "metric_plugin_import_fails:X", "loading it raised ImportError: this plugin needs a library"),
])
def test_broken_plugin_is_refused_naming_it_and_the_rule(install, tmp_path, entry, target, rule):
    install({entry: target}, ROOT / "tests" / "plugins")
    (tmp_path / "q").write_text(QRELS)
    (tmp_path / "r").write_text(RUN)
    base = ["eval", "--qrels", str(tmp_path / "q"), "--run", str(tmp_path / "r")]
    r = CliRunner().invoke(cli, [*base, "-m", entry])
    assert r.exit_code == 2, r.output
    assert f"auditor.metrics entry point '{entry}'" in r.output and rule in r.output, r.output
    assert "Traceback" not in r.output
    # the broken plugin hurts nobody who does not ask for it, and audit list says what is wrong
    assert CliRunner().invoke(cli, [*base, "-m", "ndcg@10"]).exit_code == 0
    r = CliRunner().invoke(cli, ["list"])
    assert r.exit_code == 0 and f"{entry} (cannot be loaded" in r.output


def test_audit_run_refuses_plugins_the_audits_cannot_use(install, tmp_path):
    install({"hits_plain": "metric_plugins:HITS_NO_TIES", "judged": "metric_plugins:JUDGED"}, ROOT / "tests" / "plugins")
    (tmp_path / "q").write_text(QRELS)
    (tmp_path / "r").write_text(RUN)
    r = CliRunner().invoke(cli, ["eval", "--qrels", str(tmp_path / "q"), "--run", str(tmp_path / "r"),
                                 "-m", "hits_plain@2", "-m", "judged", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output[:r.output.rindex("}") + 1])["metrics"]["hits_plain@2"] == pytest.approx(2 / 3)
    for metric, why in (("hits_plain@2", "no tie-aware kernel"), ("judged", "does not depend on the order")):
        r = CliRunner().invoke(cli, ["run", "--model", "reference", "--metric", metric, "--out", str(tmp_path / "o")])
        assert r.exit_code == 2 and why in r.output and "Traceback" not in r.output, r.output
    with pytest.raises(ValueError, match="no tie-aware kernel"):
        M.evaluate("hits_plain@2", np.array([1.0, 0.0]), np.array([0.5, 0.5]), np.array([0, 2]))
