"""Calibration of auditor.stats: under a true null each test at alpha = 0.05 rejects 4-6%.

Every check runs at least 2,000 seeded simulations (Monte Carlo sd of a 5% rate: 0.49% at
2,000, 0.34% at 4,000). Null data come in three kinds:

- ``gauss``: N(0, 0.2) differences;
- ``metric``: two systems' per-query metrics, bounded in [0, 1], skewed, drawn
  exchangeably given the query's difficulty, with 30% exact ties: d is bounded, tied at 0,
  symmetric (the sign-flip null holds exactly);
- ``skewed``: bounded, right-skewed (skewness ~0.74), 35% ties at 0, mean exactly 0 (the
  t-test and bootstrap nulls hold; the sign-flip symmetry null does not, so it is not used
  there).

To keep the file fast the sign-flip test uses B = 999 resamples per simulation (enough for
a 5% test: the Monte Carlo p-value (b+1)/(B+1) keeps its level exactly, Phipson & Smyth
2010) and the bootstrap B = 1,999 (interval endpoints carry Monte Carlo noise that widens
the rejection rate a little: 5.4-5.65% at B = 999, 5.3-5.45% at B = 1,999, for n = 300);
simulations are generated as one matrix per check. Resampling calls are per simulation
through the public functions; the BCa call also reports the percentile interval of the same
resamples, so one bootstrap serves both checks. Marked slow: ~30-45 s on 2 cores.
"""
from __future__ import annotations

import numpy as np
import pytest

from auditor import stats as S

pytestmark = pytest.mark.slow

ALPHA = 0.05
LOW, HIGH = 0.04, 0.06


def null_differences(kind: str, sims: int, n: int, seed: int) -> np.ndarray:
    """``sims`` null samples of ``n`` per-query differences, shape (sims, n)."""
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        return rng.normal(0.0, 0.2, (sims, n))
    if kind == "metric":
        difficulty = rng.beta(0.8, 1.6, (sims, n))
        x = np.clip(difficulty + rng.normal(0.0, 0.15, (sims, n)), 0, 1)
        y = np.clip(difficulty + rng.normal(0.0, 0.15, (sims, n)), 0, 1)
        tie = rng.random((sims, n)) < 0.3
        x[tie] = y[tie]
        return np.round(x, 4) - np.round(y, 4)
    if kind == "skewed":
        d = (rng.beta(2.0, 5.0, (sims, n)) - 2.0 / 7.0) * 0.5  # mean exactly 0
        d[rng.random((sims, n)) < 0.35] = 0.0
        return d
    raise ValueError(kind)


def assert_calibrated(rate: float, what: str) -> None:
    assert LOW <= rate <= HIGH, f"{what}: rejection rate {rate:.4f} outside [{LOW}, {HIGH}]"


@pytest.mark.parametrize("kind", ["gauss", "metric", "skewed"])
def test_paired_t_calibrated(kind):
    D = null_differences(kind, 4000, 40, seed=101)
    rate = np.mean([S.paired_t_test(d).p_value < ALPHA for d in D])
    assert_calibrated(rate, f"paired t ({kind})")
    if kind == "skewed":
        return  # one-sided t-tests on skewed data err at O(1/sqrt(n)) by design (3.5% / 6.5% at n=40)
    for alternative in ("greater", "less"):
        one = np.mean([S.paired_t_test(d, alternative=alternative).p_value < ALPHA for d in D])
        assert_calibrated(one, f"paired t {alternative} ({kind})")


@pytest.mark.parametrize("kind", ["gauss", "metric"])
def test_sign_flip_calibrated(kind):
    D = null_differences(kind, 4000, 50, seed=202)
    p = np.array([S.sign_flip_test(d, n_resamples=999, seed=i).p_value for i, d in enumerate(D)])
    assert_calibrated(np.mean(p < ALPHA), f"sign-flip two-sided ({kind})")
    p1 = np.array([S.sign_flip_test(d, n_resamples=999, seed=i, alternative="greater").p_value
                   for i, d in enumerate(D)])
    assert_calibrated(np.mean(p1 < ALPHA), f"sign-flip greater ({kind})")


@pytest.mark.parametrize("kind", ["gauss", "metric", "skewed"])
def test_bootstrap_ci_excluding_zero_calibrated(kind):
    # n = 300: at n = 100-200 both intervals are known to run narrow (5.5-6% here), the
    # percentile interval by a factor sqrt((n-1)/n) and z in place of t
    sims, n = 4000, 300
    D = null_differences(kind, sims, n, seed=303)
    bca = pct = 0
    for i, d in enumerate(D):
        ci = S.bootstrap_ci(d, n_resamples=1999, method="bca", seed=i)
        bca += not (ci.low <= 0.0 <= ci.high)
        low, high = ci.extra["percentile"]  # the percentile interval of the same resamples
        pct += not (low <= 0.0 <= high)
    assert_calibrated(bca / sims, f"BCa bootstrap CI excludes 0 ({kind}, n={n})")
    assert_calibrated(pct / sims, f"percentile bootstrap CI excludes 0 ({kind}, n={n})")


@pytest.mark.parametrize("kind", ["gauss", "metric"])
def test_tost_at_its_boundary_calibrated(kind):
    # true mean difference exactly at the margin: the worst case of the equivalence null,
    # where the size of TOST approaches alpha when the standard error is small against it
    margin = 0.05
    D = null_differences(kind, 4000, 100, seed=404) + margin
    rate = np.mean([S.tost_paired(d, margin).p_value < ALPHA for d in D])
    assert_calibrated(rate, f"TOST at the boundary ({kind})")
    inside = np.mean([S.tost_paired(d - margin, margin).p_value < ALPHA for d in D])
    assert inside > 0.5  # and it does declare equivalence when the truth is 0


def test_holm_controls_family_wise_error(monkeypatch):
    # statsmodels' multipletests(method="holm") ends with gc.collect() (0.1-0.2 s with torch
    # loaded); skip that collection here, the numbers are unaffected
    import gc

    monkeypatch.setattr(gc, "collect", lambda *a, **k: 0)
    # families of 10 paired t-tests on the same 40 queries: 6 true nulls, 4 real effects
    sims, m, n = 2000, 10, 40
    rng = np.random.default_rng(505)
    effects = np.r_[np.zeros(6), np.full(4, 0.15)]
    shared = rng.normal(0, 0.1, (sims, 1, n))  # query difficulty shared by the family
    D = effects[None, :, None] + rng.normal(0, 0.2, (sims, m, n)) + 0.5 * shared
    fwer = raw_fwer = 0
    for fam in D:
        p = np.array([S.paired_t_test(d).p_value for d in fam])
        fwer += np.any(S.holm(p)[:6] < ALPHA)
        raw_fwer += np.any(p[:6] < ALPHA)
    se = np.sqrt(ALPHA * (1 - ALPHA) / sims)
    assert fwer / sims <= ALPHA + 2 * se, fwer / sims
    assert raw_fwer / sims > 0.15  # without correction the family errs far more often


def test_benjamini_hochberg_controls_false_discovery_rate():
    sims, m, n = 2000, 20, 40
    rng = np.random.default_rng(606)
    effects = np.r_[np.zeros(15), np.full(5, 0.12)]
    D = effects[None, :, None] + rng.normal(0, 0.2, (sims, m, n))
    fdp = np.empty(sims)
    for i, fam in enumerate(D):
        rejected = S.benjamini_hochberg(np.array([S.paired_t_test(d).p_value for d in fam])) < ALPHA
        fdp[i] = rejected[:15].sum() / max(rejected.sum(), 1)
    se = fdp.std() / np.sqrt(sims)
    assert fdp.mean() <= ALPHA + 2 * se, fdp.mean()
    assert fdp.mean() > 0.01  # BH is not trivially conservative here (theory: 15/20 * 5% = 3.75%)


def test_power_prediction_matches_simulated_rejection_rate():
    sims, n, sd = 4000, 40, 0.2
    effect = S.mde_paired(sd, n, power=0.5, alternative="greater")
    rng = np.random.default_rng(707)
    D = rng.normal(effect, sd, (sims, n))
    rate = np.mean([S.paired_t_test(d, alternative="greater").p_value < ALPHA for d in D])
    assert abs(rate - 0.5) < 4 * np.sqrt(0.25 / sims), rate
