"""Query-grouped two-sample machinery: statistics against scipy / sklearn / direct formulas,
exactness of the whole-group nulls, and the real LETOR train-vs-test pair (no false alarm,
while the row-level analysis false-alarms)."""
from __future__ import annotations


import numpy as np
import pytest
from scipy import stats as st

from auditor.errors import DataError
from auditor.twosample import (TwoSample, auc, classifier_test, group_weighted_auc, ks_test, label_shift_test,
                               mmd_test, permute_membership, reduce_dims, stratified_group_folds, weighted_auc)



def clustered(n_groups_a: int, n_groups_b: int, size: int, d: int, rng: np.random.Generator, *,
              group_sd: float = 1.0, shift: float = 0.0) -> TwoSample:
    """Rows share a strong per-group offset (like the rows of one query); optional mean shift of B."""
    def side(n_g: int, mu: float) -> np.ndarray:
        off = rng.normal(scale=group_sd, size=(n_g, d))
        return np.repeat(off, size, axis=0) + rng.normal(size=(n_g * size, d)) + mu

    Xa, Xb = side(n_groups_a, 0.0), side(n_groups_b, shift)
    ga, gb = np.repeat(np.arange(n_groups_a), size), np.repeat(np.arange(n_groups_b), size)
    return TwoSample.from_arrays(Xa, Xb, ga, gb)


@pytest.fixture(scope="module")
def letor_pair(letor) -> TwoSample:
    return TwoSample.from_datasets(letor.train, letor.test)


# --------------------------------------------------------------------------- building blocks
def test_pooling_keeps_groups_and_membership():
    rng = np.random.default_rng(0)
    ts = clustered(4, 3, 5, 2, rng)
    assert ts.n_groups == 7 and ts.n_rows == 35
    assert ts.counts() == {"rows_a": 20, "rows_b": 15, "groups_a": 4, "groups_b": 3}
    assert np.all(np.diff(ts.group) >= 0)
    assert ts.row_level().n_groups == 35
    sub = ts.select_groups(np.array([True, False, True, False, True, True, False]))
    assert sub.counts() == {"rows_a": 10, "rows_b": 10, "groups_a": 2, "groups_b": 2}


def test_from_datasets_rejects_mismatched_features():
    from auditor.data import RankingDataset

    a = RankingDataset(qid=np.array([0, 0, 1]), labels=np.zeros(3), features={"all": np.ones((3, 2))})
    b = RankingDataset(qid=np.array([0, 0, 1]), labels=np.zeros(3), features={"all": np.ones((3, 3))})
    with pytest.raises(DataError, match="columns"):
        TwoSample.from_datasets(a, b)


def test_permute_membership_keeps_counts_and_observed_first():
    in_a = np.array([True] * 3 + [False] * 5)
    Z = permute_membership(in_a, 200, np.random.default_rng(1))
    assert Z.shape == (201, 8)
    assert np.array_equal(Z[0], in_a)
    assert np.all(Z.sum(1) == 3)
    assert len({z.tobytes() for z in Z[1:]}) > 30  # really shuffled (56 distinct assignments exist)


def test_stratified_folds_put_both_samples_in_every_fold():
    in_a = np.array([True] * 7 + [False] * 23)
    f = stratified_group_folds(in_a, 5, np.random.default_rng(2))
    for k in range(5):
        assert in_a[f == k].any() and (~in_a[f == k]).any()
    assert np.bincount(f[in_a], minlength=5).max() - np.bincount(f[in_a], minlength=5).min() <= 1


def test_auc_and_weighted_auc_match_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    s = np.round(rng.normal(size=300), 1)  # many ties
    y = rng.random(300) < 0.3
    assert auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    w = rng.integers(0, 4, size=300)
    rep = np.repeat(np.arange(300), w)
    got = weighted_auc(s, y, np.vstack([np.ones(300), w]))
    assert got[0] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert got[1] == pytest.approx(roc_auc_score(y[rep], s[rep]), abs=1e-12)


def test_group_weighted_auc_equals_weighted_auc_on_the_expanded_weights(monkeypatch):
    import auditor.twosample as T

    rng = np.random.default_rng(8)
    sizes = rng.integers(1, 30, size=60)
    group = np.repeat(np.arange(60), sizes)
    y = rng.random(60)[group] < 0.5
    s = np.round(rng.normal(size=group.size), 1)  # ties across groups
    M = rng.integers(0, 3, size=(45, 60)).astype(float)
    full = weighted_auc(s, y, M[:, group])
    monkeypatch.setattr(T, "_AUC_BLOCK_CELLS", 2 * group.size + 1)  # blocks of two weight rows
    np.testing.assert_array_equal(group_weighted_auc(s, y, M, group), full)


def test_two_samples_given_as_blocks_behave_like_the_pooled_matrix():
    rng = np.random.default_rng(9)
    ts = clustered(12, 9, 7, 4, rng, shift=0.3)  # from_arrays: sample A's and B's rows as two blocks
    Xa = ts.X[ts.row_in_a]
    Xa[:, 2] = 5.0  # column 2 constant in A ...
    ts = TwoSample.from_arrays(Xa, ts.X[~ts.row_in_a], ts.group[ts.row_in_a], ts.group[~ts.row_in_a])
    pooled = TwoSample(X=ts.X.copy(), group=ts.group, in_a=ts.in_a, feature_names=ts.feature_names)
    fresh = TwoSample.from_arrays(Xa, pooled.X[~pooled.row_in_a], pooled.group[pooled.row_in_a],
                                  pooled.group[~pooled.row_in_a])
    np.testing.assert_array_equal(fresh.varying_columns(), pooled.varying_columns())  # ... but not in B
    assert 2 in fresh.varying_columns()
    for j in range(4):
        np.testing.assert_array_equal(fresh.column(j), pooled.X[:, j])
    a, b = fresh.subsample(40, np.random.default_rng(1)), pooled.subsample(40, np.random.default_rng(1))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.group, b.group)
    ka, kb = ks_test(fresh, n_permutations=99, seed=2), ks_test(pooled, n_permutations=99, seed=2)
    np.testing.assert_array_equal(ka.p_value, kb.p_value)
    np.testing.assert_array_equal(ka.statistic, kb.statistic)


def test_reduce_dims_keeps_top_components():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 10)) + 0.01 * rng.normal(size=(200, 10))
    X[:, 4] = 1.0  # constant column is dropped
    Z, explained = reduce_dims(X, 3)
    assert Z.shape == (200, 3) and explained > 0.99


# --------------------------------------------------------------------------- KS
def test_ks_distance_equals_scipy_statistic():
    rng = np.random.default_rng(5)
    Xa = np.c_[np.round(rng.normal(size=120), 1), rng.normal(size=120), rng.integers(0, 3, 120)]
    Xb = np.c_[np.round(rng.normal(0.3, 1, size=90), 1), rng.normal(size=90), rng.integers(0, 3, 90)]
    ts = TwoSample.from_arrays(Xa, Xb, np.repeat(np.arange(40), 3), np.repeat(np.arange(30), 3))
    r = ks_test(ts, n_permutations=50, max_thresholds=1000)
    assert r.exact.all()
    for j in range(3):
        assert r.statistic[j] == pytest.approx(st.ks_2samp(Xa[:, j], Xb[:, j]).statistic, abs=1e-12)


def test_ks_row_level_permutation_p_matches_scipy_exact():
    rng = np.random.default_rng(6)
    Xa, Xb = rng.normal(size=(30, 2)), rng.normal(0.5, 1, size=(25, 2))
    ts = TwoSample.from_arrays(Xa, Xb)  # every row its own group: the classic i.i.d. test
    r = ks_test(ts, n_permutations=5000, max_thresholds=1000, seed=1)
    for j in range(2):
        exact = st.ks_2samp(Xa[:, j], Xb[:, j], method="exact").pvalue
        assert r.p_value[j] == pytest.approx(exact, abs=0.02)


def test_ks_continuous_features_use_quantile_grid():
    rng = np.random.default_rng(7)
    ts = TwoSample.from_arrays(rng.normal(size=(400, 1)), rng.normal(size=(400, 1)))
    r = ks_test(ts, n_permutations=20, max_thresholds=64)
    assert not r.exact[0]
    full = st.ks_2samp(ts.X[ts.row_in_a, 0], ts.X[~ts.row_in_a, 0]).statistic
    assert 0 <= full - r.statistic[0] <= 0.05  # a grid can only miss part of the maximum


# --------------------------------------------------------------------------- MMD
def test_mmd_matches_direct_unbiased_estimate():
    rng = np.random.default_rng(8)
    ts = clustered(6, 5, 4, 3, rng, shift=0.5)
    r = mmd_test(ts, n_permutations=10, max_dims=32, max_rows=10_000)
    Z, _ = reduce_dims(ts.X, 32)
    D2 = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
    iu = np.triu_indices(len(Z), 1)
    sigma = np.median(np.sqrt(D2[iu]))
    K = np.exp(-D2 / (2 * sigma ** 2))
    a = ts.row_in_a
    Kaa, Kbb, Kab = K[np.ix_(a, a)], K[np.ix_(~a, ~a)], K[np.ix_(a, ~a)]
    m, n = a.sum(), (~a).sum()
    direct = ((Kaa.sum() - np.trace(Kaa)) / (m * (m - 1)) + (Kbb.sum() - np.trace(Kbb)) / (n * (n - 1))
              - 2 * Kab.mean())
    assert r.bandwidth == pytest.approx(sigma)
    assert r.mmd2 == pytest.approx(direct, rel=1e-9)


def test_grouped_nulls_are_calibrated_where_row_level_tests_false_alarm():
    """Clustered rows, no shift: whole-group permutations hold their level; row-level ones do not."""
    rng = np.random.default_rng(9)
    p_grp, p_row, p_ks = [], [], []
    for s in range(60):
        ts = clustered(12, 12, 8, 3, rng)
        p_grp.append(mmd_test(ts, n_permutations=200, seed=s).p_value)
        p_row.append(mmd_test(ts.row_level(), n_permutations=200, seed=s).p_value)
        p_ks.append(ks_test(ts, n_permutations=200, seed=s).p_value[0])
    p_grp, p_row, p_ks = map(np.asarray, (p_grp, p_row, p_ks))
    # 60 null draws at level 0.05: binomial 99th percentile is 8 rejections
    assert np.sum(p_grp < 0.05) <= 8
    assert np.sum(p_ks < 0.05) <= 8
    assert np.sum(p_row < 0.05) >= 30  # the i.i.d. analysis rejects most clean pairs


def test_mmd_detects_a_shift_of_whole_groups():
    rng = np.random.default_rng(10)
    ts = clustered(30, 30, 8, 3, rng, group_sd=0.5, shift=0.5)
    assert mmd_test(ts, n_permutations=1000).p_value < 0.01


# --------------------------------------------------------------------------- labels
def test_label_shift_chi2_matches_scipy_and_detects_a_planted_shift():
    rng = np.random.default_rng(11)
    la = rng.choice(4, size=400, p=[0.4, 0.3, 0.2, 0.1]).astype(float)
    lb = rng.choice(4, size=400, p=[0.1, 0.2, 0.3, 0.4]).astype(float)
    X = rng.normal(size=(400, 1))
    g = np.repeat(np.arange(40), 10)
    ts = TwoSample.from_arrays(X, X, g, g, labels_a=la, labels_b=lb)
    r = label_shift_test(ts, n_permutations=500)
    table = np.array([np.bincount(la.astype(int), minlength=4), np.bincount(lb.astype(int), minlength=4)])
    assert r.chi2 == pytest.approx(st.chi2_contingency(table, correction=False)[0], rel=1e-9)
    assert r.p_value < 0.01 and r.tv_distance > 0.3
    same = TwoSample.from_arrays(X, X, g, g, labels_a=la, labels_b=la[rng.permutation(400)])
    assert label_shift_test(same, n_permutations=500).tv_distance == pytest.approx(0.0)
    assert label_shift_test(TwoSample.from_arrays(X, X, g, g)) is None


# --------------------------------------------------------------------------- classifier
def test_classifier_detects_shift_and_stays_at_chance_without_one():
    rng = np.random.default_rng(12)
    shifted = classifier_test(clustered(40, 40, 8, 4, rng, group_sd=0.5, shift=0.6), n_permutations=500,
                              n_bootstrap=200, classifier="logistic")
    assert shifted.auc > 0.6 and shifted.p_value < 0.01 and shifted.ci_low > 0.5
    clean = classifier_test(clustered(40, 40, 8, 4, rng, group_sd=0.5), n_permutations=500, n_bootstrap=200,
                            classifier="logistic")
    # with 40 queries a side the out-of-fold AUC of a clean pair has sd ~0.09 (measured over 30
    # draws: mean 0.51, 1 of 30 split tests below 0.05), so only the test's p is asserted here
    assert clean.p_value > 0.01
    assert clean.ci_low <= clean.auc <= clean.ci_high


def test_classifier_needs_two_groups_per_sample():
    rng = np.random.default_rng(13)
    with pytest.raises(DataError, match="at least 2 queries"):
        classifier_test(clustered(1, 5, 4, 2, rng), n_permutations=10, n_bootstrap=10)


@pytest.mark.slow
def test_classifier_split_test_holds_its_level():
    """40 clean clustered pairs: the held-out split test must not reject more than chance allows."""
    rng = np.random.default_rng(14)
    ps = [classifier_test(clustered(15, 15, 6, 3, rng), n_permutations=200, n_bootstrap=50, n_folds=3,
                          classifier="logistic", seed=s).p_value for s in range(40)]
    assert np.sum(np.asarray(ps) < 0.05) <= 6  # binomial(40, 0.05) 99th percentile


# --------------------------------------------------------------------------- real LETOR pair
def test_letor_clean_pair_ks_grouped_vs_row_level(letor_pair):
    """The issue's measurement: row-level KS + BH false-alarms on the clean LETOR split."""
    grouped = ks_test(letor_pair, n_permutations=1000)
    assert grouped.n_rejected == 0
    pvals = np.array([st.ks_2samp(letor_pair.X[letor_pair.row_in_a, j], letor_pair.X[~letor_pair.row_in_a, j]).pvalue
                      for j in letor_pair.varying_columns()])
    from auditor.stats import benjamini_hochberg

    assert len(pvals) == 218
    assert int(np.sum(benjamini_hochberg(pvals) < 0.05)) == 22  # scipy's row-level KS, as in the issue
    # the exact row-level permutation KS (ties handled exactly) rejects even more
    assert ks_test(letor_pair.row_level(), n_permutations=300).n_rejected >= 22


def test_letor_clean_pair_mmd_grouped(letor_pair):
    # the grouped classifier on this pair is exercised by tests/test_audit_synthetic_shift.py
    assert mmd_test(letor_pair, n_permutations=1000).p_value > 0.05


@pytest.mark.slow
def test_letor_row_level_classifier_recognises_queries(letor_pair):
    """Row-level folds let the domain classifier recognise queries: AUC ~ 1 on a clean split."""
    r = classifier_test(letor_pair.row_level(), n_permutations=200, n_bootstrap=100)
    assert r.auc > 0.9


# --------------------------------------------------------------------------- wide data
@pytest.fixture(scope="module")
def wide_pair() -> tuple[TwoSample, list[int]]:
    """400-column embeddings (two groups), +1 SD on 4 columns of sample B only."""
    rng = np.random.default_rng(15)
    shifted = [5, 120, 230, 399]

    def side(n_g: int, shift: bool) -> np.ndarray:
        X = np.repeat(rng.normal(scale=0.5, size=(n_g, 400)), 10, axis=0) + rng.normal(size=(n_g * 10, 400))
        if shift:
            X[:, shifted] += 1.0
        return X

    names = [f"emb.{i}" for i in range(200)] + [f"img.{i}" for i in range(200)]
    ts = TwoSample.from_arrays(side(60, False), side(60, True), np.repeat(np.arange(60), 10),
                               np.repeat(np.arange(60), 10), feature_names=names)
    return ts, shifted


def test_ks_on_wide_groups_uses_components_and_ranks_raw_columns(wide_pair):
    ts, shifted = wide_pair
    r = ks_test(ts, n_permutations=200)
    assert len(r.feature_names) == 64 and r.feature_names[0] == "emb.pc1" and r.feature_names[-1] == "img.pc32"
    top = {t["feature"] for t in r.raw_top[:4]}
    assert top == {ts.feature_names[j] for j in shifted}


def test_classifier_screens_raw_columns_of_wide_data(wide_pair):
    """A sparse shift (4 of 400 columns) is diluted by PCA alone; per-fit screening recovers it
    (measured for the trees: AUC 0.69 -> 0.82 without query context). The logistic regression
    reads some of it off the principal components (0.77 from PCA alone), so the two-learner
    default gains less from screening but keeps the best of both."""
    ts, _ = wide_pair
    pca_only = classifier_test(ts, classifier="hgb", n_permutations=500, n_bootstrap=100, screen_features=0,
                               query_context=0)
    screened = classifier_test(ts, classifier="hgb", n_permutations=500, n_bootstrap=100, query_context=0)
    assert screened.n_features == 64 + 64
    assert screened.auc > pca_only.auc + 0.08
    assert screened.p_value < 0.05
    both = classifier_test(ts, n_permutations=500, n_bootstrap=100, query_context=0)
    assert both.auc >= screened.auc - 1e-12 and both.p_value < 0.05


def test_query_context_reveals_a_generator_that_drops_query_structure():
    """Naive synthetic rows from the test generator have the right marginals and independent
    columns, like the real rows; only the query-level offsets are missing. A row-level
    classifier cannot see that; the query-context columns can (measured AUC 0.51 -> 0.89)."""
    from planting_shift import naive_synthetic
    from auditor.synthetic import make_synthetic_split

    real = make_synthetic_split(n_train_queries=300, n_test_queries=2, n_items=10, seed=100).train
    twin = make_synthetic_split(n_train_queries=300, n_test_queries=2, n_items=10, seed=500).train
    ts = TwoSample.from_datasets(naive_synthetic(twin, n_queries=100, seed=1), real)
    blind = classifier_test(ts, n_permutations=500, n_bootstrap=100, query_context=0)
    seeing = classifier_test(ts, n_permutations=500, n_bootstrap=100)
    assert blind.auc < 0.6
    assert seeing.auc > 0.75 and seeing.p_value < 0.01


def _diffuse(rng: np.random.Generator, ga: int = 60, gb: int = 60, size: int = 8, d: int = 30, k: int = 15,
             shift: float = 0.25) -> TwoSample:
    """A small mean shift spread over k of d columns, rows clustered by group."""
    Xa = rng.normal(size=(ga * size, d)) + np.repeat(rng.normal(scale=0.5, size=(ga, d)), size, axis=0)
    Xb = rng.normal(size=(gb * size, d)) + np.repeat(rng.normal(scale=0.5, size=(gb, d)), size, axis=0)
    Xb[:, :k] += shift
    return TwoSample.from_arrays(Xa, Xb, np.repeat(np.arange(ga), size), np.repeat(np.arange(gb), size))


def test_two_learners_catch_a_diffuse_linear_shift_the_trees_learn_slowly():
    """The default runs trees and a logistic regression side by side; a shift of 0.25 SD on 15 of
    30 columns is the linear model's (measured: held-out AUC 0.63 trees, 0.75 logistic; p 0.032
    with the trees alone, at the 1/(B+1) floor with both)."""
    both = classifier_test(_diffuse(np.random.default_rng(100)), n_permutations=500, n_bootstrap=100)
    trees = classifier_test(_diffuse(np.random.default_rng(100)), classifier="hgb", n_permutations=500,
                            n_bootstrap=100)
    assert both.classifier == "hgb+logistic" and both.chosen == "logistic"
    per = both.per_classifier
    assert per["logistic"]["auc"] > per["hgb"]["auc"] + 0.05
    assert per["hgb"]["auc"] == pytest.approx(trees.auc)  # same folds, same trees
    # the effect size is the out-of-fold AUC of the learner that won the held-out split
    assert both.chosen == max(per, key=lambda c: per[c]["split_auc"])
    assert both.auc == pytest.approx(per[both.chosen]["auc"])
    assert both.split_auc == pytest.approx(max(per["hgb"]["split_auc"], per["logistic"]["split_auc"]))
    assert both.p_value <= 2 / 501 < trees.p_value


def test_two_learners_catch_lost_correlations_the_linear_model_cannot_see():
    """A synthetic set with each column's marginal right but the correlations lost (the naive
    generator): invisible to a linear model, found by the trees, so the pair still finds it."""
    rng = np.random.default_rng(21)
    n, size = 50 * 6, 6
    z = rng.normal(size=(n, 4))
    real = np.hstack([z, z + 0.3 * rng.normal(size=(n, 4))])  # columns 4-7 track 0-3
    fake = np.hstack([rng.normal(size=(n, 4)), rng.normal(scale=np.sqrt(1.09), size=(n, 4))])
    g = np.repeat(np.arange(50), size)
    ts = TwoSample.from_arrays(fake, real, g, g)
    r = classifier_test(ts, n_permutations=500, n_bootstrap=100, query_context=0)
    assert r.chosen == "hgb" and r.p_value < 0.01
    assert r.per_classifier["logistic"]["auc"] < 0.6 < r.per_classifier["hgb"]["auc"]


def test_two_learner_split_test_holds_its_level_under_the_null():
    """The maximum of two held-out AUCs is tested against the null of that maximum (every shuffle
    scores both fixed classifiers): exact, so clean pairs reject at about alpha."""
    rng = np.random.default_rng(5)
    p = np.array([classifier_test(clustered(12, 12, 8, 3, rng), n_folds=2, n_permutations=199, n_bootstrap=50,
                                  seed=s).p_value for s in range(60)])
    assert np.sum(p < 0.05) <= 8  # 60 null draws at 0.05: binomial 99th percentile is 8
    assert np.sum(p < 0.5) >= 15  # and not stuck near 1 (a conservative test would be)
