"""The overhead speed-ups (issue 8) compute exactly what the code they replaced computed."""
from __future__ import annotations

import pickle

import numpy as np

from auditor.audits.feature_ablation import _solo_metrics
from auditor.audits.isolation import row_hashes
from auditor.context import AuditConfig, AuditContext
from auditor.metrics import evaluate
from auditor.registry import ModelSpec
from auditor.synthetic import make_synthetic_split
from auditor.twosample import TwoSample, _count_matrix, _ks_observed_many, reduce_dims


def _ks_observed_loop(ts: TwoSample, j: int, T: int) -> float:
    C, _ = _count_matrix(ts, j, T)
    z = ts.in_a.astype(float)
    n = ts.sizes.astype(float)
    za = z @ C
    return float(np.max(np.abs(za / (z @ n) - (C.sum(0) - za) / ((1 - z) @ n))))


def _two_sample(seed: int = 0) -> TwoSample:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(700, 30))
    X[:, :10] = np.round(X[:, :10], 1)  # few distinct values: exact thresholds
    X[:, 5] = 2.0  # constant
    X[:, 6] = np.where(X[:, 6] > 0, 0.0, -0.0)  # signed zeros
    X[300:, 20:] += 0.3
    return TwoSample.from_arrays(X[:300], X[300:], np.repeat(np.arange(30), 10), np.repeat(np.arange(40), 10))


def test_vectorised_observed_ks_equals_the_per_column_count_matrix():
    ts = _two_sample()
    cols = ts.varying_columns()
    for T in (3, 16, 128):
        want = np.array([_ks_observed_loop(ts, j, T) for j in cols])
        np.testing.assert_array_equal(_ks_observed_many(ts, cols, T, block=7), want)


def test_reduced_equals_reduce_dims_and_is_read_only():
    ts = _two_sample(1)
    for k in (4, 8, 40):
        Z0, e0 = reduce_dims(ts.X, k)
        Z1, e1 = ts.reduced(k)
        np.testing.assert_array_equal(Z1, Z0)
        assert e1 == e0
    assert not ts.reduced(40)[0].flags.writeable


def test_reduced_slices_one_exact_svd_and_caches_randomized_ones_per_k():
    rng = np.random.default_rng(3)
    narrow = TwoSample.from_arrays(rng.normal(size=(300, 50)), rng.normal(size=(300, 50)) + 0.1,
                                   np.repeat(np.arange(30), 10), np.repeat(np.arange(30), 10))
    for k in (20, 3, 10):  # exact path: one full SVD, sliced; any order of k
        Z0, e0 = reduce_dims(narrow.X, k)
        Z1, e1 = narrow.reduced(k)
        np.testing.assert_array_equal(Z1, Z0)
        assert e1 == e0
    assert len(narrow.__dict__["_decompositions"]) == 1
    wide = TwoSample.from_arrays(rng.normal(size=(350, 640)), rng.normal(size=(350, 640)),
                                 np.repeat(np.arange(35), 10), np.repeat(np.arange(35), 10))
    for k in (16, 4, 16):  # randomized path (min(n, D) > 600): one decomposition per k, as asked
        Z0, e0 = reduce_dims(wide.X, k)
        Z1, e1 = wide.reduced(k)
        np.testing.assert_array_equal(Z1, Z0)
        assert e1 == e0
    assert sorted(wide.__dict__["_decompositions"]) == [4, 16]


def test_ks_group_components_from_the_shared_standardisation_match_reduce_dims():
    from auditor.twosample import _summarise_wide_groups

    rng = np.random.default_rng(4)
    X = rng.normal(size=(600, 90))
    X[300:] += 0.05
    X[:, 40] = 1.0  # constant column: not among the standardised ones
    names = [f"img.{i}" for i in range(40)] + ["q.0"] + [f"txt.{i}" for i in range(49)]
    ts = TwoSample.from_arrays(X[:300], X[300:], np.repeat(np.arange(30), 10), np.repeat(np.arange(30), 10),
                               feature_names=names)
    cols = ts.varying_columns()
    got, got_names = _summarise_wide_groups(ts, cols, 8)
    want = np.hstack([reduce_dims(ts.X[:, cols[:40]], 8)[0], reduce_dims(ts.X[:, cols[40:]], 8)[0]])
    assert got_names == [f"img.pc{k}" for k in range(1, 9)] + [f"txt.pc{k}" for k in range(1, 9)]
    # the same columns standardised the same way; only rounding (~1e-14) may differ
    np.testing.assert_allclose(got.X, want, rtol=0, atol=1e-9)


def test_batched_solo_metrics_equal_one_evaluate_per_column():
    split = make_synthetic_split(n_train_queries=5, n_test_queries=12, n_items=9, seed=3)
    test = split.test
    X = test.feature_matrix().copy()  # read-only: edited below
    X[:, 0] = np.round(X[:, 0], 0)  # ties: broken by item id
    off = test.query_offsets
    kw = dict(item_id=test.item_id, gain="exp", no_relevant="zero")
    cols = np.arange(X.shape[1])
    got = list(_solo_metrics("ndcg@10", test.labels, X, cols, off, kw, max_rows=5 * test.n_rows))
    assert [j for j, _, _ in got] == cols.tolist()
    for j, up, dn in got:
        np.testing.assert_array_equal(up, evaluate("ndcg@10", test.labels, X[:, j], off, **kw))
        np.testing.assert_array_equal(dn, evaluate("ndcg@10", test.labels, -X[:, j], off, **kw))


def test_row_hashes_are_cached_read_only_and_identify_equal_rounded_rows():
    split = make_synthetic_split(n_train_queries=4, n_test_queries=3, seed=2)
    d = split.train
    X = np.round(np.concatenate([np.asarray(d.features[g], float) for g in sorted(d.features)], axis=1), 9) + 0.0
    h = row_hashes(d)
    # equal hashes exactly where the rounded rows are equal (vectorised hash; see tests/test_rowid.py)
    _, inv = np.unique(X, axis=0, return_inverse=True)
    _, hinv = np.unique(h, return_inverse=True)
    assert h.dtype == np.uint64 and np.array_equal(inv.ravel() == inv.ravel()[:, None], hinv == hinv[:, None])
    assert row_hashes(d) is h and not h.flags.writeable
    assert row_hashes(d, decimals=3) is not h


def test_context_memo_is_per_process_and_not_pickled():
    ctx = AuditContext(make_synthetic_split(n_train_queries=4, n_test_queries=3), ModelSpec("rankers:make_linear"),
                       AuditConfig())
    calls = []
    assert ctx.memo("k", lambda: calls.append(1) or 7) == 7
    assert ctx.memo("k", lambda: calls.append(1) or 8) == 7 and calls == [1]
    ctx2 = pickle.loads(pickle.dumps(ctx))
    assert ctx2.memo("k", lambda: 9) == 9
