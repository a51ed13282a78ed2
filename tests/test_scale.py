"""Scale work of issue 17: no per-call copies of the feature matrix, in-place permutations,
per-run timings, and the MSLR-shaped generator (benchmarks/mslr_gen.py)."""
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from auditor.audits.feature_ablation import permute_columns, within_query_permutation
from auditor.context import AuditContext, input_checksums
from auditor.data import RankingDataset, load_dataset
from auditor.registry import ModelSpec
from auditor.results_schema import validate_results_schema
from auditor.runner import run_audit
from auditor.synthetic import make_synthetic_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import mslr_gen  # noqa: E402


def _two_groups(n_q=20, k=5, seed=0):
    r = np.random.default_rng(seed)
    n = n_q * k
    return RankingDataset(qid=np.repeat(np.arange(n_q), k), labels=r.integers(0, 3, n).astype(float),
                          features={"a": r.normal(size=(n, 3)), "b": r.normal(size=(n, 2))}, name="two")


def test_feature_matrix_is_built_once_read_only_and_shared_by_label_views():
    d = _two_groups()
    X = d.feature_matrix()
    assert X.shape == (100, 5) and X.flags.c_contiguous and not X.flags.writeable
    np.testing.assert_array_equal(X, np.hstack([d.features["a"], d.features["b"]]))
    assert d.feature_matrix() is X                          # cached, not rebuilt per call
    assert d.hide_labels().feature_matrix() is X            # what score() gets shares it
    assert d.with_labels(np.zeros(100)).feature_matrix() is X
    with pytest.raises(ValueError, match="read-only"):
        X[0, 0] = 1.0
    # a single float64 group is handed over as it is: no copy at all
    one = RankingDataset(qid=d.qid, labels=d.labels, features={"all": np.ascontiguousarray(X.copy())})
    assert np.shares_memory(one.feature_matrix(), one.features["all"])
    # a subset of groups is built per call, in the order asked
    np.testing.assert_array_equal(d.feature_matrix(["b"]), d.features["b"])
    # the cache does not travel with a pickled dataset, the values do
    back = pickle.loads(pickle.dumps(d))
    assert "_matrix_cache" not in back.__dict__
    np.testing.assert_array_equal(back.feature_matrix(), X)


def test_with_labels_still_rejects_bad_labels():
    d = _two_groups()
    from auditor.errors import DataError

    with pytest.raises(DataError, match="row 3"):
        d.with_labels(np.where(np.arange(100) == 3, np.nan, 0.0))
    with pytest.raises(DataError, match="shape"):
        d.with_labels(np.zeros(7))


def test_a_plugin_writing_into_the_cached_matrix_is_caught():
    d = _two_groups()
    d.feature_matrix()                                     # cache built (a copy: two groups)
    before = input_checksums(d)
    assert "feature_matrix()" in before
    m = d.feature_matrix()
    with pytest.raises(ValueError):
        m.flags.writeable = True                           # refused: the owner is read-only
    owner = m.base
    owner.flags.writeable = True                           # what only a determined plugin does
    owner[0, 0] += 1.0
    assert input_checksums(d)["feature_matrix()"] != before["feature_matrix()"]


def test_in_place_edit_of_the_input_names_the_fix():
    class Standardise:
        def fit(self, train):
            X = train.feature_matrix()
            X -= X.mean(0)                                 # in place: the array is read-only
            return self

        def score(self, data):
            return np.zeros(data.n_rows)

    sp = make_synthetic_split(n_train_queries=5, n_test_queries=3, n_items=4)
    spec = ModelSpec("x", {}, "cpu")
    spec._factory = lambda seed=0: Standardise()
    from auditor.audits.base import ModelFailure

    with pytest.raises(ModelFailure, match=r"copy before editing in place, e.g. X = data.feature_matrix\(\).copy\(\)"):
        AuditContext(sp, spec).fit(0)


@pytest.mark.parametrize("cols", [None, [0, 2], [1]])
def test_permutation_into_a_reused_scratch_buffer_equals_the_copying_one(cols):
    d = _two_groups(seed=3)
    perm = within_query_permutation(d.query_offsets, np.random.default_rng(1))
    want = np.array(d.features["a"])
    if cols is None:
        want = want[perm]
    else:
        want[:, cols] = want[perm][:, cols]
    scratch: dict = {}
    out = permute_columns(d, {"a": cols}, perm, scratch)
    np.testing.assert_array_equal(out.features["a"], want)
    np.testing.assert_array_equal(out.features["b"], d.features["b"])
    assert not out.features["a"].flags.writeable
    buf = scratch["a"]
    perm2 = within_query_permutation(d.query_offsets, np.random.default_rng(2))
    out2 = permute_columns(d, {"a": cols}, perm2, scratch)
    assert scratch["a"] is buf and np.shares_memory(out2.features["a"], buf)   # no new allocation
    np.testing.assert_array_equal(permute_columns(d, {"a": cols}, perm2).features["a"], out2.features["a"])
    # the permuted dataset's matrix reflects the permutation, not the original's cache
    d.feature_matrix()
    np.testing.assert_array_equal(out2.feature_matrix()[:, :3], out2.features["a"])


class _SlowFit:
    def __init__(self, seed=0):
        self.seed = seed

    def fit(self, train):
        time.sleep(0.05)
        self.w_ = np.ones(train.n_features)
        return self

    def score(self, data):
        return data.feature_matrix() @ self.w_


def make_slow(seed: int = 0) -> _SlowFit:
    return _SlowFit(seed)


def test_results_record_where_the_time_went():
    sp = make_synthetic_split(n_train_queries=30, n_test_queries=12, n_items=6, seed=2)
    run = run_audit(make_slow, train=sp.train, test=sp.test, checks="stability", quick=True)
    res = run.to_dict()
    validate_results_schema(res)
    t = res["timing"]
    stab = res["audits"][0]
    n_fits = stab["n_trials"]                              # one fit per fold
    assert stab["model_s"] >= 0.05 * n_fits
    assert stab["model_s"] <= stab["duration_s"] + 1e-6
    assert t["model_s"] == pytest.approx(stab["model_s"], abs=2e-3)
    assert t["prepare_s"] + t["trials_s"] + t["measure_s"] == pytest.approx(res["duration_s"], abs=0.05)


def test_mslr_generator_is_deterministic_and_text_equals_arrays(tmp_path):
    p = mslr_gen.generate(tmp_path / "a", 3000, seed=5, formats=("letor", "npz"))
    txt = load_dataset(str(p["train.letor"]), "letor")
    arr = load_dataset(str(p["train.npz"]), "npz")
    assert txt.n_rows == 3000 and txt.n_features == 136
    np.testing.assert_array_equal(txt.feature_matrix(), arr.feature_matrix())   # bit for bit
    np.testing.assert_array_equal(txt.labels, arr.labels)
    X = txt.feature_matrix()
    assert np.all(X[:, :40] == np.round(X[:, :40])) and np.all(X >= 0)
    assert set(np.unique(txt.labels)) <= {0, 1, 2, 3, 4}
    test = load_dataset(str(p["test.letor"]), "letor")
    assert test.n_rows == 1000 and not set(test.query_ids) & set(txt.query_ids)
    again = mslr_gen.generate(tmp_path / "b", 3000, seed=5, formats=("npz",))
    np.testing.assert_array_equal(load_dataset(str(again["train.npz"]), "npz").feature_matrix(), X)
    other = mslr_gen.generate(tmp_path / "c", 3000, seed=6, formats=("npz",))
    assert not np.array_equal(load_dataset(str(other["train.npz"]), "npz").feature_matrix(), X)


def test_mslr_generator_label_shares_and_query_sizes():
    rng = np.random.default_rng(0)
    sizes = mslr_gen.query_sizes(200_000, rng)
    assert sizes.sum() == 200_000 and sizes.min() >= 1 and 100 <= sizes.mean() <= 140
    labels, X = mslr_gen.generate_chunk(sizes[:400], rng, mslr_gen.label_thresholds())
    share = np.bincount(labels, minlength=5) / labels.size
    np.testing.assert_allclose(share, mslr_gen.LABEL_P, atol=0.02)
    # the signal is weak: no single column ranks like the labels
    corr = [abs(np.corrcoef(X[:, j], labels)[0, 1]) for j in range(X.shape[1])]
    assert 0.05 < max(corr) < 0.5


def test_a_relative_plugin_path_resolves_where_it_was_named(tmp_path, monkeypatch):
    # a Ray worker starts in its own session directory: the spec must not depend on the worker's cwd
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    spec = ModelSpec("examples/plugins/sklearn_pointwise.py:make_model", {}, "cpu")
    blob = pickle.dumps(spec)
    monkeypatch.chdir(tmp_path)
    back = pickle.loads(blob)
    assert callable(back.factory)
    from auditor.errors import PluginError

    with pytest.raises(PluginError, match="does not exist"):
        ModelSpec("examples/plugins/sklearn_pointwise.py:make_model", {}, "cpu").factory   # named here: not found
