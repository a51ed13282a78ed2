"""Degenerate test sets through the CLI (issue 14 items 8 and 9; issue 13 part 3): a test set whose
queries have no relevant item, equal labels or one candidate each, all-zero features, or a single
query is not something an audit can measure. Each affected audit says so -- INCONCLUSIVE with the
reason and what would decide it -- instead of ERROR ("measuring failed: TypeError"), and never a
PASS resting on a zero-width interval or "nan%"."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.data import RankingDataset
from auditor.synthetic import make_synthetic_split


def _write(d: RankingDataset, path: Path) -> None:
    X = d.feature_matrix()
    cols = ["qid", "label"] + [f"{g}.{i}" for g, x in d.features.items() for i in range(x.shape[1])]
    rows = [",".join([str(int(d.qid[r])), repr(float(d.labels[r]))] + [repr(float(v)) for v in X[r]])
            for r in range(d.n_rows)]
    path.write_text(",".join(cols) + "\n" + "\n".join(rows) + "\n")


def _degenerate(kind: str) -> tuple[RankingDataset, RankingDataset]:
    sp = make_synthetic_split(n_train_queries=40, n_test_queries=15, n_items=6, seed=1)
    te = sp.test
    o = te.query_offsets
    if kind == "no_relevant":
        te = RankingDataset(qid=te.qid, labels=np.zeros(te.n_rows), features=te.features)
    elif kind == "all_labels_equal":
        te = RankingDataset(qid=te.qid, labels=np.full(te.n_rows, 2.0), features=te.features)
    elif kind == "one_item_per_query":
        te = RankingDataset(qid=te.qid[o[:-1]], labels=te.labels[o[:-1]],
                            features={g: x[o[:-1]] for g, x in te.features.items()})
    elif kind == "all_zero_features":
        te = RankingDataset(qid=te.qid, labels=te.labels, features={g: np.zeros_like(x) for g, x in te.features.items()})
    elif kind == "single_query":
        te = RankingDataset(qid=te.qid[o[0]:o[1]], labels=te.labels[o[0]:o[1]],
                            features={g: x[o[0]:o[1]] for g, x in te.features.items()})
    return sp.train, te


#: (kind, audit) -> words its INCONCLUSIVE summary must contain
EXPECT = {
    ("no_relevant", "feature_ablation"): "have no relevant item",
    ("no_relevant", "significance"): "have no relevant item",
    ("all_labels_equal", "feature_ablation"): "have all labels equal",
    ("all_labels_equal", "significance"): "can change their ndcg@10 with the ordering",
    ("one_item_per_query", "feature_ablation"): "have a single candidate",
    ("one_item_per_query", "significance"): "can change their ndcg@10 with the ordering",
    ("all_zero_features", "feature_ablation"): "every feature is constant within each test query",
    ("all_zero_features", "significance"): "every test feature is constant within each query",
    ("single_query", "feature_ablation"): "cannot run on this test set",
    ("single_query", "significance"): "a single query gives no variance",
}


KINDS = ("no_relevant", "all_labels_equal", "one_item_per_query", "all_zero_features", "single_query")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[int, dict, str, list[str]]]:
    """kind -> (exit code, results.json, output, the Python warnings the run raised)."""
    out: dict[str, tuple[int, dict, str, list[str]]] = {}
    for kind in KINDS:
        d = tmp_path_factory.mktemp(kind)
        tr, te = _degenerate(kind)
        _write(tr, d / "tr.csv")
        _write(te, d / "te.csv")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = CliRunner().invoke(cli, ["run", "--model", "rankers:make_linear", "--baseline",
                                         "rankers:make_random", "--train", str(d / "tr.csv"), "--test",
                                         str(d / "te.csv"), "--checks", "all", "--quick", "--quiet", "--out",
                                         str(d / "out")])
        res = json.loads((d / "out" / "results.json").read_text())
        out[kind] = (r.exit_code, res, r.output,
                     [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught])
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_a_degenerate_test_set_prints_no_numpy_warning(runs, kind):
    # "Mean of empty slice" and the like, printed amid the progress lines, read as a crash; every
    # audit must handle an empty or undefined quantity itself
    warned = [w for w in runs[kind][3] if w.startswith("RuntimeWarning")]
    assert not warned, warned


@pytest.mark.parametrize("kind", ["no_relevant", "all_labels_equal", "one_item_per_query", "all_zero_features",
                                  "single_query"])
def test_degenerate_test_set_is_inconclusive_not_error(runs, kind):
    code, res, output, _ = runs[kind]
    assert "Traceback" not in output and "measuring failed" not in output
    audits = {a["name"]: a for a in res["audits"]}
    assert not [n for n, a in audits.items() if a["status"] == "ERROR"], \
        {n: a.get("error") for n, a in audits.items()}
    # the run cannot establish anything on such a test set: never GO
    assert res["verdict"] == "INCONCLUSIVE" and code == 3, (res["verdict"], code)
    for (k, name), words in EXPECT.items():
        if k != kind:
            continue
        a = audits[name]
        assert a["inconclusive"] and a["status"] == "WARN", (name, a["status"], a["summary"])
        assert words in a["summary"], a["summary"]
    for name in ("feature_ablation", "significance"):
        s = audits[name]["summary"]
        assert "nan" not in s.lower() and "n/a" not in s, s
    # no PASS of a critical audit rests on the degenerate test set (stability is advisory and runs
    # on the training folds)
    for name in ("feature_ablation", "significance", "isolation"):
        assert audits[name]["status"] != "PASS", (name, audits[name]["summary"])


def test_inconclusive_names_what_would_decide_it(runs):
    audits = {a["name"]: a for a in runs["single_query"][1]["audits"]}
    assert "About 10 informative test queries would decide it" in audits["significance"]["summary"]
    iso = audits["isolation"]
    assert iso["inconclusive"] and "test rows" in iso["summary"] and "would give 80%" in iso["summary"]
    fa = {a["name"]: a for a in runs["no_relevant"][1]["audits"]}["feature_ablation"]
    assert any("graded labels" in s for s in fa["next_steps"])


@pytest.mark.parametrize("kind", ["no_relevant", "single_query"])
def test_random_label_on_a_degenerate_test_set_is_inconclusive_and_says_no_nan(tmp_path, kind):
    tr, te = _degenerate(kind)
    _write(tr, tmp_path / "tr.csv")
    _write(te, tmp_path / "te.csv")
    r = CliRunner().invoke(cli, ["run", "--model", "rankers:make_linear", "--train", str(tmp_path / "tr.csv"),
                                 "--test", str(tmp_path / "te.csv"), "--checks", "random_label", "--quick", "--quiet",
                                 "--out", str(tmp_path / "out")])
    a = json.loads((tmp_path / "out" / "results.json").read_text())["audits"][0]
    assert r.exit_code == 3 and a["inconclusive"] and a["status"] != "PASS", a["summary"]
    assert "too few to test or bound" in a["summary"]
    assert "nan" not in a["summary"].lower(), a["summary"]
