"""auditor.stats against scipy / statsmodels on the same inputs, plus edge cases.

Monte Carlo comparisons use tolerances of several standard errors computed from the
numbers involved (never a hard-coded expected value); seeds are fixed so runs repeat.
"""
from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from auditor import stats as S
from auditor.errors import ConfigError, DataError

ALTS = ["two-sided", "greater", "less"]
SM_ALT = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


def metric_pair(n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-query metrics of two systems: bounded in [0, 1], skewed, ties at 0 and 1."""
    rng = np.random.default_rng(seed)
    difficulty = rng.beta(0.8, 1.6, n)
    x = np.clip(difficulty + rng.normal(shift, 0.15, n), 0, 1)
    y = np.clip(difficulty + rng.normal(0.0, 0.15, n), 0, 1)
    tie = rng.random(n) < 0.3
    x[tie] = y[tie]
    return np.round(x, 4), np.round(y, 4)


def differences(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        return rng.normal(0.02, 0.2, n)
    if kind == "skewed":
        return rng.exponential(0.1, n) - 0.08
    x, y = metric_pair(n, seed, shift=0.02)
    return x - y


# --------------------------------------------------------------------------- clean_pairs

def test_clean_pairs_drops_undefined_pairs_and_validates_shape():
    x = np.array([0.5, np.nan, 0.2, 0.9, 0.1])
    y = np.array([0.4, 0.3, np.nan, 0.8, 0.1])
    np.testing.assert_allclose(S.clean_pairs(x, y), [0.1, 0.1, 0.0])
    np.testing.assert_allclose(S.clean_pairs(x), [0.5, 0.2, 0.9, 0.1])
    with pytest.raises(DataError, match="shape"):
        S.clean_pairs(x, y[:3])
    with pytest.raises(DataError, match="1-d"):
        S.clean_pairs(np.zeros((2, 3)))


# --------------------------------------------------------------------------- t-test

@pytest.mark.parametrize("kind", ["gauss", "skewed", "metric"])
@pytest.mark.parametrize("alternative", ALTS)
def test_paired_t_matches_scipy(kind, alternative):
    x, y = metric_pair(80, seed=3, shift=0.03) if kind == "metric" else (
        differences(kind, 80, 3) + 0.5, np.full(80, 0.5))
    ours = S.paired_t_test(x, y, alternative=alternative)
    ref = st.ttest_rel(x, y, alternative=alternative)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours.extra["df"] == 79 and ours.n == 80
    one = S.paired_t_test(x - y, alternative=alternative, mu=0.01)
    ref1 = st.ttest_1samp(x - y, 0.01, alternative=alternative)
    assert one.p_value == pytest.approx(ref1.pvalue, rel=1e-9)


def test_paired_t_edge_cases():
    assert S.paired_t_test(np.array([])).p_value == 1.0 and S.paired_t_test(np.array([])).n == 0
    r1 = S.paired_t_test(np.array([0.3]))
    assert np.isnan(r1.statistic) and r1.p_value == 1.0
    r2 = S.paired_t_test(np.array([0.1, 0.3]))
    assert r2.p_value == pytest.approx(st.ttest_1samp([0.1, 0.3], 0).pvalue)
    zero = S.paired_t_test(np.zeros(10))
    assert zero.statistic == 0.0 and zero.p_value == 1.0
    const = np.full(10, 0.25)
    assert S.paired_t_test(const).p_value == 0.0 and S.paired_t_test(const).statistic == np.inf
    assert S.paired_t_test(const, alternative="greater").p_value == 0.0
    assert S.paired_t_test(const, alternative="less").p_value == 1.0
    x, y = metric_pair(40, 1, 0.05)
    x[[3, 7]] = np.nan
    assert S.paired_t_test(x, y).p_value == pytest.approx(st.ttest_rel(x, y, nan_policy="omit").pvalue)
    assert S.paired_t_test(x, y).n == 38
    with pytest.raises(ConfigError, match="alternative"):
        S.paired_t_test(x, y, alternative="bigger")


# --------------------------------------------------------------------------- sign flips

def brute_force_sign_flip_p(d: np.ndarray, alternative: str) -> float:
    """Exact p over all 2^n sign vectors, enumerated independently of auditor.stats."""
    signs = np.array(list(itertools.product([1.0, -1.0], repeat=d.size)))
    null = signs @ d
    obs = d.sum()
    eps = 1e-9 * np.abs(d).sum()
    if alternative == "two-sided":
        return float(np.mean(np.abs(null) >= abs(obs) - eps))
    if alternative == "greater":
        return float(np.mean(null >= obs - eps))
    return float(np.mean(null <= obs + eps))


@pytest.mark.parametrize("alternative", ALTS)
@pytest.mark.parametrize("n", [11, 13, 16])  # 11 and 13 are not multiples of the 8-bit blocks the fast path uses
def test_sign_flip_exact_enumeration_matches_brute_force(alternative, n):
    d = np.round(np.random.default_rng(5).normal(0.1, 0.3, n), 2)  # rounding makes ties
    exact = S.sign_flip_test(d, alternative=alternative, exact=True)
    assert exact.p_value == pytest.approx(brute_force_sign_flip_p(d, alternative), abs=1e-12)
    assert exact.extra["exact"] and "exact" in exact.method


@pytest.mark.parametrize("alternative", ALTS)
@pytest.mark.parametrize("n", [9, 14])
def test_sign_flip_monte_carlo_matches_exact_p(alternative, n):
    d = np.round(np.random.default_rng(n).normal(0.12, 0.3, n), 3)
    p_exact = brute_force_sign_flip_p(d, alternative)
    B = 20_000
    mc = S.sign_flip_test(d, n_resamples=B, alternative=alternative, seed=1, exact=False)
    se = np.sqrt(p_exact * (1 - p_exact) / B) + 1 / B
    assert abs(mc.p_value - p_exact) < 4.5 * se, (mc.p_value, p_exact)


@pytest.mark.parametrize("alternative", ALTS)
def test_sign_flip_matches_scipy_permutation_test(alternative):
    x, y = metric_pair(60, seed=11, shift=0.04)
    d = x - y
    B = 20_000
    ours = S.sign_flip_test(d, n_resamples=B, alternative=alternative, seed=2)
    ref = st.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=B, alternative=alternative,
                              vectorized=True, random_state=np.random.default_rng(3))
    p = (ours.p_value + ref.pvalue) / 2
    se = np.sqrt(2 * p * (1 - p) / B) + 2 / B
    assert abs(ours.p_value - ref.pvalue) < 4.5 * se, (ours.p_value, ref.pvalue)


def test_sign_flip_p_is_b_plus_one_over_B_plus_one_and_null_is_right():
    d = differences("metric", 301, 4)
    B = 4_999
    r = S.sign_flip_test(d, n_resamples=B, seed=9, return_null=True)
    null = r.extra["null"]
    assert null.shape == (B,)
    b = np.sum(np.abs(null) >= abs(d.mean()) - 1e-12)
    assert r.p_value == (b + 1) / (B + 1)
    # exact null moments of the sign-flip mean: 0 and sum(d^2) / n^2
    var = np.sum(d ** 2) / d.size ** 2
    assert abs(null.mean()) < 5 * np.sqrt(var / B)
    assert null.var() == pytest.approx(var, rel=5 * np.sqrt(2 / B))
    big = S.sign_flip_test(np.full(50, 0.2) + np.linspace(0, 0.01, 50), n_resamples=999)
    assert big.p_value == 1 / 1000  # never 0


def test_sign_flip_reproducible_and_chunk_and_thread_invariant():
    d = differences("skewed", 1003, 8)
    ref = S.sign_flip_test(d, n_resamples=3001, seed=17, return_null=True)
    for kw in [{}, {"chunk": 1}, {"chunk": 64 * 376 * 7}, {"n_threads": 1}, {"n_threads": 3, "chunk": 5000}]:
        r = S.sign_flip_test(d, n_resamples=3001, seed=17, return_null=True, **kw)
        assert r.p_value == ref.p_value
        np.testing.assert_array_equal(r.extra["null"], ref.extra["null"])
    other = S.sign_flip_test(d, n_resamples=3001, seed=18, return_null=True)
    assert not np.array_equal(other.extra["null"], ref.extra["null"])


def test_sign_flip_memory_bounded_at_50k_queries_10k_resamples():
    d = differences("gauss", 50_000, 1)
    tracemalloc.start()
    r = S.sign_flip_test(d, n_resamples=10_000, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 256 * 2**20, peak / 2**20
    assert 0 < r.p_value <= 1


def test_sign_flip_edge_cases():
    empty = S.sign_flip_test(np.array([]))
    assert empty.p_value == 1.0 and empty.n == 0
    assert S.sign_flip_test(np.array([0.4])).p_value == 1.0  # exact: both signs as extreme
    assert S.sign_flip_test(np.array([0.4]), alternative="greater").p_value == 0.5
    assert S.sign_flip_test(np.array([0.2, 0.3]), alternative="greater").p_value == 0.25
    assert S.sign_flip_test(np.zeros(40), exact=False).p_value == 1.0  # every flip ties
    const = S.sign_flip_test(np.full(30, 0.1), n_resamples=999, alternative="greater", exact=False)
    assert const.p_value == 1 / 1000
    nan = S.sign_flip_test(np.r_[differences("gauss", 40, 2), np.nan], n_resamples=999, seed=3)
    assert nan.n == 40
    assert nan.p_value == S.sign_flip_test(differences("gauss", 40, 2), n_resamples=999, seed=3).p_value
    with pytest.raises(ConfigError):
        S.sign_flip_test(np.ones(3), n_resamples=0)
    with pytest.raises(ConfigError):
        S.sign_flip_test(np.ones(30), exact=True)
    with pytest.raises(ConfigError, match="seed"):
        S.sign_flip_test(np.ones(30), seed=-1)
    assert S.sign_flip_test(np.ones(30), seed=np.int64(3), exact=False, n_resamples=99).extra["seed"] == 3


# --------------------------------------------------------------------------- bootstrap

def _boot_se(x: np.ndarray, B: int) -> float:
    """Monte Carlo sd of a 2.5% / 97.5% bootstrap quantile (normal approximation)."""
    sd_boot = x.std(ddof=1) / np.sqrt(x.size)
    return float(np.sqrt(0.025 * 0.975 / B) / st.norm.pdf(1.96) * sd_boot)


@pytest.mark.parametrize("method,scipy_method", [("percentile", "percentile"), ("bca", "BCa")])
@pytest.mark.parametrize("kind", ["gauss", "skewed", "metric"])
def test_bootstrap_matches_scipy(method, scipy_method, kind):
    x = differences(kind, 120, 21)
    B = 20_000
    ours = S.bootstrap_ci(x, n_resamples=B, method=method, seed=4)
    ref = st.bootstrap((x,), np.mean, method=scipy_method, n_resamples=B, random_state=np.random.default_rng(5))
    tol = 5 * np.sqrt(2) * _boot_se(x, B)
    assert ours.estimate == pytest.approx(x.mean())
    assert abs(ours.low - ref.confidence_interval.low) < tol
    assert abs(ours.high - ref.confidence_interval.high) < tol


def test_bca_differs_from_percentile_where_scipy_says_so():
    x = np.random.default_rng(2).lognormal(0.0, 1.2, 30)  # strong right skew: BCa shifts the interval right
    B = 40_000
    ours = S.bootstrap_ci(x, n_resamples=B, method="bca", seed=1)
    pct = S.bootstrap_ci(x, n_resamples=B, method="percentile", seed=1)
    ref = st.bootstrap((x,), np.mean, method="BCa", n_resamples=B, random_state=np.random.default_rng(2))
    tol = 5 * np.sqrt(2) * _boot_se(x, B)
    assert ours.extra["acceleration"] > 0
    assert ours.high - pct.high > 3 * tol and ours.low > pct.low  # a real adjustment, not noise
    assert abs(ours.high - ref.confidence_interval.high) < tol
    assert abs(ours.low - ref.confidence_interval.low) < tol


def test_bca_reports_the_percentile_interval_of_the_same_resamples():
    x = differences("skewed", 90, 5)
    bca = S.bootstrap_ci(x, n_resamples=3000, seed=8)
    pct = S.bootstrap_ci(x, n_resamples=3000, seed=8, method="percentile")
    assert bca.extra["percentile"] == [pct.low, pct.high]


def test_bca_interval_equals_textbook_bca_of_the_same_resamples():
    # oracle: Efron's BCa from the returned bootstrap means, with the acceleration from an explicit
    # leave-one-out jackknife (the fast path uses a closed form)
    x = differences("skewed", 57, 3)
    r = S.bootstrap_ci(x, n_resamples=4000, seed=8, method="bca", return_distribution=True)
    boots, B = r.extra["distribution"], 4000
    loo = np.array([np.delete(x, i).mean() for i in range(x.size)])
    u = loo.mean() - loo
    a = np.sum(u ** 3) / (6 * np.sum(u ** 2) ** 1.5)
    assert r.extra["acceleration"] == pytest.approx(a, rel=1e-9)
    prop = (np.sum(boots < x.mean()) + 0.5 * np.sum(boots == x.mean())) / B
    z0 = st.norm.ppf(prop)
    za = st.norm.ppf([0.025, 0.975])
    lo, hi = np.quantile(boots, st.norm.cdf(z0 + (z0 + za) / (1 - a * (z0 + za))))
    assert (r.low, r.high) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))


def test_bootstrap_distribution_moments_and_reproducibility():
    x = differences("metric", 503, 6)
    B = 6_000
    r = S.bootstrap_ci(x, n_resamples=B, seed=3, return_distribution=True)
    boots = r.extra["distribution"]
    var = x.var() / x.size  # exact variance of the bootstrap mean (ddof 0)
    assert abs(boots.mean() - x.mean()) < 5 * np.sqrt(var / B)
    assert boots.var() == pytest.approx(var, rel=5 * np.sqrt(2 / B))
    for kw in [{"chunk": 1}, {"chunk": 503 * 7 + 3}, {"n_threads": 1}, {"n_threads": 3}]:
        again = S.bootstrap_ci(x, n_resamples=B, seed=3, return_distribution=True, **kw)
        np.testing.assert_array_equal(again.extra["distribution"], boots)
        assert (again.low, again.high) == (r.low, r.high)
    assert S.bootstrap_ci(x, n_resamples=B, seed=4).low != r.low


def test_bootstrap_resamples_draw_every_position_uniformly():
    # the bootstrap mean of the indicator of position j is (draws of j) / n: over B resamples every
    # position is drawn B times in expectation, n = 7 being where a biased modulo would show first
    n, B = 7, 20_000
    draws = []
    for j in range(n):
        e = np.zeros(n)
        e[j] = 1.0
        r = S.bootstrap_ci(e, n_resamples=B, seed=12345, method="percentile", return_distribution=True)
        draws.append(int(round(float(r.extra["distribution"].sum()) * n)))
    assert sum(draws) == n * B  # the same resamples for every j: each draws n positions
    assert st.chisquare(draws).pvalue > 1e-4


def test_bootstrap_memory_bounded_at_50k_queries_10k_resamples():
    x = differences("gauss", 50_000, 2)
    tracemalloc.start()
    r = S.bootstrap_ci(x, n_resamples=10_000, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 256 * 2**20, peak / 2**20
    assert r.low < x.mean() < r.high


def test_bootstrap_edge_cases():
    assert np.isnan(S.bootstrap_ci(np.array([])).estimate)
    one = S.bootstrap_ci(np.array([0.3]))
    assert (one.low, one.estimate, one.high) == (0.3, 0.3, 0.3)
    const = S.bootstrap_ci(np.full(20, 0.1), n_resamples=500)
    assert const.low == pytest.approx(0.1) and const.high == pytest.approx(0.1)
    zero = S.bootstrap_ci(np.zeros(20), n_resamples=500, method="percentile")
    assert (zero.low, zero.high) == (0.0, 0.0)
    two = S.bootstrap_ci(np.array([0.0, 1.0]), n_resamples=2000, method="percentile")
    assert two.low == 0.0 and two.high == 1.0
    x = differences("gauss", 50, 1)
    with_nan = S.bootstrap_ci(np.r_[x, np.nan], n_resamples=500, seed=2)
    assert with_nan.n == 50 and with_nan.low == S.bootstrap_ci(x, n_resamples=500, seed=2).low
    with pytest.raises(ConfigError):
        S.bootstrap_ci(x, method="studentized")
    with pytest.raises(ConfigError):
        S.bootstrap_ci(x, level=95)


# --------------------------------------------------------------------------- Wilcoxon, effect sizes

@pytest.mark.parametrize("alternative", ALTS)
@pytest.mark.parametrize("n", [20, 200])
def test_wilcoxon_matches_scipy(alternative, n):
    x, y = metric_pair(n, seed=n, shift=0.03)
    d = x - y
    ours = S.wilcoxon_test(d, alternative=alternative)
    ref = st.wilcoxon(d, alternative=alternative, zero_method="wilcox")
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert ours.statistic == pytest.approx(ref.statistic)
    pratt = st.wilcoxon(d, alternative=alternative, zero_method="pratt")
    assert S.wilcoxon_test(d, alternative=alternative, zero_method="pratt").p_value == pytest.approx(pratt.pvalue)


def test_wilcoxon_edge_cases():
    assert S.wilcoxon_test(np.zeros(5)).p_value == 1.0
    assert S.wilcoxon_test(np.array([])).p_value == 1.0
    assert S.wilcoxon_test(np.array([0.2, np.nan, 0.0, 0.3])).n == 3


def test_effect_size_and_win_tie_loss():
    d = np.array([0.1, -0.2, 0.0, 0.3, 0.0, 0.05, np.nan])
    clean = d[~np.isnan(d)]
    assert S.effect_size_dz(d) == pytest.approx(clean.mean() / clean.std(ddof=1))
    assert S.win_tie_loss(d) == (3, 2, 1)
    assert S.win_tie_loss(np.array([1e-13, -1e-13, 0.5])) == (1, 2, 0)
    assert np.isnan(S.effect_size_dz(np.array([0.2]))) and np.isnan(S.effect_size_dz(np.full(5, 0.2)))


# --------------------------------------------------------------------------- multiple testing

@pytest.mark.parametrize("fn,method", [(S.holm, "holm"), (S.benjamini_hochberg, "fdr_bh")])
def test_adjustments_match_statsmodels(fn, method):
    p = np.random.default_rng(1).uniform(0, 0.2, 17) ** 2
    np.testing.assert_allclose(fn(p), multipletests(p, method=method)[1], rtol=1e-12)
    with_nan = np.r_[p[:5], np.nan, p[5:]]
    out = fn(with_nan)
    assert np.isnan(out[5])
    np.testing.assert_allclose(np.delete(out, 5), multipletests(p, method=method)[1])
    assert fn(np.array([])).size == 0
    with pytest.raises(DataError):
        fn(np.array([0.1, 1.5]))


# --------------------------------------------------------------------------- power, MDE

@pytest.mark.parametrize("alternative", ALTS)
def test_power_and_mde_match_statsmodels(alternative):
    sd, n = 0.15, 60
    sign = -1 if alternative == "less" else 1
    ours = S.power_paired(sign * 0.04, sd, n, alternative=alternative)
    ref = TTestPower().power(effect_size=sign * 0.04 / sd, nobs=n, alpha=0.05, alternative=SM_ALT[alternative])
    assert ours == pytest.approx(float(ref), rel=1e-12)
    for power in (0.5, 0.8, 0.9):
        mde = S.mde_paired(sd, n, power=power, alternative=alternative)
        assert np.sign(mde) == sign
        assert S.power_paired(mde, sd, n, alternative=alternative) == pytest.approx(power, abs=1e-6)
    assert abs(S.mde_paired(sd, 4 * n, alternative=alternative)) < abs(S.mde_paired(sd, n, alternative=alternative))
    assert np.isnan(S.mde_paired(0.0, n)) and np.isnan(S.power_paired(0.1, sd, 1))


# --------------------------------------------------------------------------- TOST

@pytest.mark.parametrize("shift", [0.0, 0.004, 0.02])
def test_tost_matches_statsmodels(shift):
    x, y = metric_pair(150, seed=7, shift=shift)
    ours = S.tost_paired(x - y, 0.01)
    p, (t1, p1, _), (t2, p2, _) = ttost_paired(x, y, -0.01, 0.01)
    assert ours.p_value == pytest.approx(float(p), rel=1e-10)
    assert ours.extra["p_lower"] == pytest.approx(float(p1)) and ours.extra["p_upper"] == pytest.approx(float(p2))
    assert ours.extra["t_lower"] == pytest.approx(float(t1)) and ours.extra["t_upper"] == pytest.approx(float(t2))
    asym = S.tost_paired(x - y, 0.0, bounds=(-0.005, 0.02))
    assert asym.p_value == pytest.approx(float(ttost_paired(x, y, -0.005, 0.02)[0]), rel=1e-10)


def test_tost_edge_cases():
    assert S.tost_paired(np.array([0.001]), 0.01).p_value == 1.0
    assert S.tost_paired(np.zeros(10), 0.01).p_value == 0.0
    assert S.tost_paired(np.full(10, 0.02), 0.01).p_value == 1.0
    with pytest.raises(ConfigError):
        S.tost_paired(np.zeros(10), -0.01)


# --------------------------------------------------------------------------- torch path (issue 8)

def test_torch_path_on_cpu_agrees_with_numpy_within_mc_error():
    pytest.importorskip("torch")
    x, y = metric_pair(400, seed=13, shift=0.015)
    d = x - y
    B = 20_000
    a = S.sign_flip_test(d, n_resamples=B, seed=1, return_null=True)
    b = S.sign_flip_test(d, n_resamples=B, seed=1, return_null=True, device="cpu", _backend="torch")
    assert b.extra["backend"] == "torch" and a.extra["backend"] == "numpy"
    p = (a.p_value + b.p_value) / 2
    assert abs(a.p_value - b.p_value) < 4.5 * np.sqrt(2 * p * (1 - p) / B) + 2 / B
    var = np.sum(d ** 2) / d.size ** 2
    assert b.extra["null"].var() == pytest.approx(var, rel=5 * np.sqrt(2 / B))
    again = S.sign_flip_test(d, n_resamples=B, seed=1, device="cpu", _backend="torch")
    assert again.p_value == b.p_value
    for method in ("percentile", "bca"):
        c = S.bootstrap_ci(d, n_resamples=B, seed=2, method=method)
        t = S.bootstrap_ci(d, n_resamples=B, seed=2, method=method, device="cpu", _backend="torch")
        tol = 5 * np.sqrt(2) * _boot_se(d, B)
        assert abs(c.low - t.low) < tol and abs(c.high - t.high) < tol
        assert t.extra["backend"] == "torch"


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def test_device_selection_without_cuda():
    if _has_cuda():
        pytest.skip("this machine has CUDA: see test_device_selection_with_cuda")
    d = differences("gauss", 30, 0)
    for device in (None, "auto", "cpu"):  # the default never needs a GPU, however many resamples
        r = S.bootstrap_ci(d, n_resamples=S.GPU_MIN_RESAMPLES, seed=0, device=device)
        assert (r.extra["backend"], r.extra["device"]) == ("numpy", "cpu")
    with pytest.raises(ConfigError, match="CUDA"):
        S.sign_flip_test(d, device="cuda", exact=False)
    with pytest.raises(ConfigError, match="device"):
        S.bootstrap_ci(d, device="tpu")


@pytest.mark.gpu
def test_device_selection_with_cuda():
    if not _has_cuda():
        pytest.skip("no CUDA device")
    d = differences("gauss", 30, 0)

    def where(**kw):
        r = S.bootstrap_ci(d, seed=0, **kw)
        return r.extra["backend"], r.extra["device"]
    assert where(n_resamples=S.GPU_MIN_RESAMPLES) == ("torch", "cuda")
    assert where(n_resamples=S.GPU_MIN_RESAMPLES - 1) == ("numpy", "cpu")
    assert where(n_resamples=10**6, device="cpu") == ("numpy", "cpu")
    assert where(n_resamples=10, device="cuda:0") == ("torch", "cuda:0")


@pytest.mark.gpu
def test_gpu_agrees_with_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    d = differences("metric", 5_000, 3)
    B = 200_000
    g = S.sign_flip_test(d, n_resamples=B, seed=1)
    c = S.sign_flip_test(d, n_resamples=B, seed=1, device="cpu")
    assert g.extra["device"].startswith("cuda")
    p = (g.p_value + c.p_value) / 2
    assert abs(g.p_value - c.p_value) < 4.5 * np.sqrt(2 * p * (1 - p) / B) + 2 / B
    gb = S.bootstrap_ci(d, n_resamples=B, seed=1)
    cb = S.bootstrap_ci(d, n_resamples=B, seed=1, device="cpu")
    tol = 5 * np.sqrt(2) * _boot_se(d, B)
    assert abs(gb.low - cb.low) < tol and abs(gb.high - cb.high) < tol
