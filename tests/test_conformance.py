"""`check_ranking_model`: a good plugin passes every check; each bad plugin fails the rule it breaks."""
import pytest

from auditor.conformance import check_ranking_model, iter_checks
from auditor.errors import PluginError


def _by_name(results):
    return {r.name: r for r in results}


def test_good_plugins_pass_every_check(small_split):
    for spec in ("auditor.testing:make_linear", "auditor.testing:make_memorizer", "auditor.testing:make_random"):
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
