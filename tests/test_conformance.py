"""`check_ranking_model`: a good plugin passes every check; each bad plugin fails the rule it breaks."""
import json

import pytest

from auditor.conformance import check_ranking_model, iter_checks
from auditor.errors import PluginError
from auditor.registry import ModelSpec


def _by_name(results):
    return {r.name: r for r in results}


def test_good_plugins_pass_every_check(small_split):
    for spec in ("rankers:make_linear", "rankers:make_memorizer", "rankers:make_random"):
        res = check_ranking_model(spec, small_split)
        failed = [(r.name, r.message) for r in res if not r.passed]
        assert not failed, (spec, failed)
    assert len(res) == len(list(iter_checks())) >= 9


@pytest.mark.parametrize("factory,rule,words", [
    ("make_reads_labels", "score_ignores_labels", "reads labels"),
    ("make_query_dependent", "query_independence", "other queries"),
    ("make_position_dependent", "row_order_equivariance", "reordering rows"),
    ("make_nondeterministic", "same_seed_same_scores", "same seed"),
    ("make_fit_returns_none", "fit_returns_self", "not self"),
    ("make_scores_before_fit", "score_before_fit_fails", "before fit"),
    ("make_wrong_shape", "score_shape_and_finite", "shape"),
    ("make_nan", "score_shape_and_finite", "non-finite"),
    ("make_raises_in_fit", "fit_returns_self", "planted failure in fit"),
])
def test_each_broken_rule_is_named(small_split, factory, rule, words):
    res = _by_name(check_ranking_model(f"plugins.bad_plugins:{factory}", small_split))
    assert not res[rule].passed
    assert words in res[rule].message


def test_unloadable_plugins_raise_plugin_error(small_split, tmp_path):
    with pytest.raises(PluginError, match="does not exist"):
        check_ranking_model(str(tmp_path / "nope.py") + ":make_model", small_split)
    with pytest.raises(PluginError, match="not a factory"):
        check_ranking_model("plugins.bad_plugins:NOT_A_FACTORY", small_split)
    with pytest.raises(PluginError, match="no attribute"):
        check_ranking_model("plugins.bad_plugins:missing", small_split)
    bad = tmp_path / "broken.py"
    bad.write_text("import numpy as np\nraise ImportError('planted import failure')\n")
    with pytest.raises(PluginError, match="planted import failure"):
        check_ranking_model(f"{bad}:make_model", small_split)


# --------------------------------------------------------------------------- scores, constant scores, mutation
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from auditor.cli import cli  # noqa: E402
from auditor.scores import InvalidScores, validate_scores  # noqa: E402

LTR = Path(__file__).resolve().parent / "data" / "ltr"


@pytest.mark.parametrize("raw,words", [
    (np.array(["1.0", "2.0", "3.0"]), "strings"),
    (np.array([True, False, True]), "booleans"),
    (np.array([1.0, 2.0, 3.0]) + 1j, "complex numbers"),
    (np.array([1.0, None, 3.0], dtype=object), "Python objects"),
    ([1.0, [2.0], 3.0], "not an array of numbers"),
    (None, "returned None"),
    (np.ones((3, 1)), "shape (3, 1)"),
    (np.ones(4), "shape (4,)"),
    (np.array([1.0, np.nan, 3.0]), "non-finite values (first at row 1"),
    (np.array([1.0, 2.0, -np.inf]), "non-finite values (first at row 2"),
])
def test_validate_scores_rejects_what_is_not_one_real_number_per_row(raw, words):
    with pytest.raises(InvalidScores) as e:
        validate_scores(raw, 3, model="my_plugin.py:make_model", data="test.txt")
    msg = str(e.value)
    assert words in msg and "'my_plugin.py:make_model'" in msg and "test.txt" in msg and "Fix:" in msg


def test_validate_scores_accepts_real_numbers_as_a_private_float_copy():
    for raw in (np.array([3, 1, 2]), np.array([3, 1, 2], dtype=np.uint8), np.array([0.5, 1.0, 2.0], dtype=np.float32),
                [0.1, 0.2, 0.3]):
        out = validate_scores(raw, 3, model="m")
        assert out.dtype == np.float64 and out.shape == (3,)
        np.testing.assert_array_equal(out, np.asarray(raw, dtype=np.float64))
    raw = np.array([1.0, 2.0, 3.0])
    out = validate_scores(raw, 3, model="m")
    raw[0] = 99.0  # the plugin editing the array it returned does not reach us
    assert out[0] == 1.0


def test_constant_scores_within_queries_fail_with_the_reason(small_split):
    res = _by_name(check_ranking_model("plugins.score_plugins:make_constant", small_split))
    r = res["scores_vary_within_queries"]
    assert not r.passed
    assert "constant within 25 of 25 queries" in r.message and "random-order chance" in r.message
    # most queries constant (80%): still fails; a minority (20%) passes
    res = _by_name(check_ranking_model(ModelSpec("plugins.score_plugins:make_constant", {"share": 0.8}), small_split))
    assert not res["scores_vary_within_queries"].passed
    res = _by_name(check_ranking_model(ModelSpec("plugins.score_plugins:make_constant", {"share": 0.2}), small_split))
    assert res["scores_vary_within_queries"].passed


@pytest.mark.parametrize("where,what,rule,names", [
    ("score", "features", "score_does_not_mutate", "features['a'], features['b'], features['noise']"),
    ("score", "qid", "score_does_not_mutate", "qid"),
    ("score", "item_id", "score_does_not_mutate", "item_id"),
    ("fit", "features", "fit_does_not_mutate", "features['a']"),
    ("fit", "labels", "fit_does_not_mutate", "labels"),
    ("score", "drop_group", "score_does_not_mutate", "features['a']"),
])
def test_mutating_plugins_fail_the_mutation_check_naming_the_array(small_split, where, what, rule, names):
    spec = ModelSpec("plugins.score_plugins:make_mutates", {"where": where, "what": what})
    res = check_ranking_model(spec, small_split)
    failed = {r.name: r.message for r in res if not r.passed}
    assert set(failed) == {rule}, failed  # every other check gets its own copy, so only this one fails
    assert f"{where}() modified its input: {names}" in failed[rule]
    # the caller's data is untouched
    assert np.isfinite(small_split.test.features["a"]).all() and small_split.test.features["a"].std() > 0


def _small_letor(tmp_path: Path) -> tuple[str, str]:
    """The first 60 / 20 queries of the bundled LETOR sample (fast runs)."""
    out = []
    for name, nq in (("rank.train", 60), ("rank.test", 20)):
        sizes = [int(x) for x in (LTR / f"{name}.query").read_text().split()][:nq]
        lines = (LTR / name).read_text().splitlines()[:sum(sizes)]
        p = tmp_path / name
        p.write_text("\n".join(lines) + "\n")
        Path(str(p) + ".query").write_text("\n".join(map(str, sizes)) + "\n")
        out.append(str(p))
    return out[0], out[1]


@pytest.mark.parametrize("kind,words", [("str", "returned strings (dtype <U"), ("bool", "returned booleans (dtype bool)"),
                                        ("complex", "returned complex numbers (dtype complex128)")])
def test_run_and_check_plugin_reject_the_same_score_types(tmp_path, monkeypatch, kind, words):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    train, test = _small_letor(tmp_path)
    model = ["plugins.score_plugins:make_returns", "--model-param", f"kind={kind}"]
    data = ["--train", train, "--test", test]
    chk = CliRunner().invoke(cli, ["check-plugin", *model, *data])
    assert chk.exit_code == 1, chk.output
    assert "FAIL  score_shape_and_finite" in chk.output and words in chk.output
    run = CliRunner().invoke(cli, ["run", "--model", *model[:1], *model[1:], *data, "--checks", "feature_ablation",
                                   "--quick", "--out", str(tmp_path / "out")])
    assert run.exit_code == 3, run.output  # the audit errors: INCONCLUSIVE, never GO
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    err = res["audits"][0]["error"]
    assert res["audits"][0]["status"] == "ERROR" and words in err and "plugins.score_plugins:make_returns" in err


@pytest.mark.parametrize("spec,line", [
    (["plugins.score_plugins:make_constant"], "FAIL  scores_vary_within_queries: scores are constant within"),
    (["plugins.score_plugins:make_mutates"], "FAIL  score_does_not_mutate: score() modified its input: features["),
    (["plugins.score_plugins:make_mutates", "--model-param", "where=fit"],
     "FAIL  fit_does_not_mutate: fit() modified its input: features["),
])
def test_check_plugin_cli_fails_constant_and_mutating_plugins(monkeypatch, spec, line):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    r = CliRunner().invoke(cli, ["check-plugin", *spec])
    assert r.exit_code == 1, r.output
    assert line in r.output and "1 failed" in r.output
