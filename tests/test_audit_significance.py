"""Significance audit: real gains pass, no-gain candidates never pass, underpowered comparisons are
inconclusive with their MDE, and every figure agrees with scipy / statsmodels."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as st

from auditor.audits.base import run_inline
from auditor.audits.significance import SignificanceAudit
from auditor.context import AuditConfig, AuditContext
from auditor.data import Split
from auditor.errors import DataError
from auditor.registry import ModelSpec
from auditor.synthetic import make_synthetic_split

LIN = ModelSpec("rankers:make_linear")
RND = ModelSpec("rankers:make_random")
QUICK = {"n_signflip": 2000, "n_bootstrap": 2000}


def noisy(noise: float, salt: int) -> ModelSpec:
    return ModelSpec("planting_shift:make_noisy_linear", {"noise": noise, "salt": salt})


def run(split: Split, model: ModelSpec, baseline: ModelSpec | None = None, *, scores: np.ndarray | None = None,
        p_adjusted: float | None = None, min_gain: float = 0.0, **params):
    cfg = AuditConfig(min_gain=min_gain, audits={"significance": params})
    ctx = AuditContext(split, model, cfg, baseline=baseline, baseline_scores=scores)
    return run_inline(SignificanceAudit(), ctx, p_adjusted=p_adjusted)


@pytest.fixture(scope="module")
def split() -> Split:
    return make_synthetic_split(n_train_queries=200, n_test_queries=60, n_items=10, seed=0)


@pytest.fixture(scope="module")
def real_gain(split):
    return run(split, LIN, RND)


# --------------------------------------------------------------------------- known answers
def test_real_gain_passes(real_gain):
    r = real_gain
    assert r.status == "PASS" and not r.inconclusive
    m = r.measurements
    assert m["ci_low"] > 0 and m["mean_delta"] > 0.1 and m["n_queries"] == 60
    assert m["wins"] > 3 * m["losses"]
    assert "beats the baseline" in r.summary


def test_signal_groups_beat_noise_groups(split):
    cand = ModelSpec("rankers:make_linear", {"groups": ["a", "b"]})
    base = ModelSpec("rankers:make_linear", {"groups": ["noise"]})
    r = run(split, cand, base)
    assert r.status == "PASS" and r.measurements["ci_low"] > 0


def test_figures_agree_with_scipy_and_statsmodels(real_gain, split):
    from statsmodels.stats.power import TTestPower

    m = real_gain.measurements
    ctx = AuditContext(split, LIN, baseline=RND)
    c = ctx.metric_values(split.test, ctx.score(ctx.fit(0), split.test))
    b = ctx.metric_values(split.test, ctx.score(ctx.fit(0, spec=RND), split.test, spec=RND))
    d = c - b
    t = st.ttest_rel(c, b, alternative="greater")
    assert m["t_statistic"] == pytest.approx(t.statistic, rel=1e-9)
    assert m["t_p_value"] == pytest.approx(t.pvalue, rel=1e-6)
    assert m["mean_delta"] == pytest.approx(d.mean(), abs=1e-12)
    assert m["d_z"] == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-9)
    es = TTestPower().solve_power(nobs=60, alpha=0.05, power=0.8, alternative="larger")
    assert m["mde"] == pytest.approx(es * d.std(ddof=1), rel=1e-4)  # root-finder tolerance
    assert m["wins"] + m["ties"] + m["losses"] == 60
    bca = st.bootstrap((d,), np.mean, n_resamples=10_000, method="BCa", random_state=0).confidence_interval
    assert m["ci_low"] == pytest.approx(bca.low, abs=0.01) and m["ci_high"] == pytest.approx(bca.high, abs=0.01)


def test_identical_models_fail_with_all_ties(split):
    r = run(split, LIN, LIN)
    m = r.measurements
    assert r.status == "FAIL" and not r.inconclusive
    assert m["ties"] == 60 and m["mean_delta"] == 0 and m["mde"] == 0
    assert "No demonstrated gain" in r.summary


def test_worse_candidate_fails(split):
    r = run(split, RND, LIN)
    assert r.status == "FAIL" and r.measurements["mean_delta"] < 0


def test_no_gain_positive_by_chance_is_inconclusive_with_mde(split):
    # two noisy copies of one ranker: identical in expectation; pick salts where the
    # observed difference comes out positive, so the post-hoc power rule applies
    for salt in range(1, 40):
        r = run(split, noisy(1.0, 0), noisy(1.0, salt), **QUICK)
        if r.measurements["mean_delta"] > 0:
            break
    assert r.status == "WARN" and r.inconclusive
    assert r.measurements["mde"] > r.measurements["mean_delta"]
    assert "MDE" in r.summary or "detect" in r.summary


def test_declared_min_gain_fails_when_adequately_powered():
    # 400 test queries: the MDE is far below the declared 0.05, so "no gain" is a FAIL
    sp = make_synthetic_split(n_train_queries=100, n_test_queries=400, n_items=10, seed=1)
    r = run(sp, noisy(0.3, 0), noisy(0.3, 1), min_gain=0.05, **QUICK)
    m = r.measurements
    assert m["mde"] < 0.05
    assert r.status == "FAIL" and not r.inconclusive
    assert "min_gain" in r.conditions[0].name


def test_declared_min_gain_underpowered_is_inconclusive():
    sp = make_synthetic_split(n_train_queries=100, n_test_queries=15, n_items=10, seed=2)
    r = run(sp, noisy(0.3, 0), noisy(0.3, 1), min_gain=0.01, **QUICK)
    assert r.measurements["mde"] > 0.01
    assert r.status == "WARN" and r.inconclusive
    assert any("queries" in s for s in r.next_steps)


def test_holm_adjustment_can_withhold_a_pass(real_gain, split):
    r = run(split, LIN, RND, p_adjusted=0.2)
    assert r.status != "PASS"
    assert r.measurements["ci_low"] > 0  # the CI alone would have passed
    # the two tests disagree: neither a gain nor its absence is shown, and the summary names the test
    assert r.inconclusive and "the Holm-adjusted t-test does not reject" in r.summary


def test_min_gain_shifts_the_bar(split):
    r = run(split, LIN, RND, min_gain=0.5)  # far above the real gain of ~0.19
    assert r.status == "FAIL"
    assert r.measurements["ci_high"] < 0.5


# --------------------------------------------------------------------------- baseline sources
def test_skip_without_baseline(split):
    r = run(split, LIN)
    assert r.status == "SKIP" and "baseline" in r.summary


def test_baseline_run_scores(split):
    rng = np.random.default_rng(0)
    r = run(split, LIN, scores=rng.random(split.test.n_rows))
    assert r.status == "PASS" and r.measurements["baseline_source"] == "run"
    assert any("--baseline-run" in n for n in r.notes)
    with pytest.raises(DataError, match="scores but the test set has"):
        run(split, LIN, scores=np.zeros(5))
    bad = np.zeros(split.test.n_rows)
    bad[3] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        run(split, LIN, scores=bad)


# --------------------------------------------------------------------------- edge cases
def test_tiny_test_set_is_inconclusive():
    sp = make_synthetic_split(n_train_queries=50, n_test_queries=3, n_items=8, seed=3)
    r = run(sp, LIN, RND, **QUICK)
    assert r.status == "WARN" and r.inconclusive
    assert "too few" in r.summary


def test_undefined_queries_are_excluded_and_counted(split):
    t = split.test
    y = t.labels.copy()
    y[t.query_offsets[0]:t.query_offsets[2]] = 0  # two queries without a relevant item
    sp = Split(train=split.train, test=t.with_labels(y))
    r = run(sp, LIN, RND, **QUICK)
    assert r.measurements["n_queries"] == 58 and r.measurements["n_excluded"] == 2
    assert any("excluded" in n for n in r.notes)


def test_seeds_average_per_query(split):
    r = run(split, LIN, RND, n_seeds=2, **QUICK)
    assert r.n_trials == 2 and r.measurements["n_seeds"] == 2
    assert len(r.measurements["per_seed_mean_delta"]) == 2


def test_plots_and_json(real_gain):
    d = real_gain.to_dict()
    json.dumps(d)
    hist, bars, lines = d["plots"]
    assert hist["type"] == "hist" and {m["label"].split()[0] for m in hist["markers"]} >= {"mean", "95%", "0"}
    assert bars["labels"] == ["wins", "ties", "losses"] and sum(bars["values"]) == 60
    assert lines["type"] == "lines" and any(s["label"].startswith("MDE") for s in lines["series"])
    power = lines["series"][0]["y"]
    assert power[0] == pytest.approx(0.05, abs=1e-6) and np.all(np.diff(power) >= 0)


# --------------------------------------------------------------------------- false positives
def test_null_simulations_pass_at_most_five_percent():
    """200 candidates identical in expectation to their baselines (same ridge ranker, independent
    score noise), 40 test queries each: the PASS rate must stay <= 5%. PASS needs the one-sided
    t-test at alpha, so the rate is bounded by the t-test's 5%; measured 9/200 = 4.5% (the rest
    FAIL when the observed difference is <= 0, else inconclusive with the MDE stated)."""
    statuses = []
    for s in range(200):
        sp = make_synthetic_split(n_train_queries=40, n_test_queries=40, n_items=8, seed=1000 + s)
        r = run(sp, noisy(0.7, 2 * s), noisy(0.7, 2 * s + 1), n_signflip=500, n_bootstrap=1000)
        statuses.append("INCONCLUSIVE" if r.inconclusive else r.status)
    n_pass = statuses.count("PASS")
    assert n_pass <= 10, n_pass
    assert set(statuses) == {"PASS", "FAIL", "INCONCLUSIVE"}
    assert statuses.count("FAIL") > 50 and statuses.count("INCONCLUSIVE") > 50


def test_real_gain_detected_in_every_simulation():
    hits = 0
    for s in range(50):
        sp = make_synthetic_split(n_train_queries=40, n_test_queries=40, n_items=8, seed=2000 + s)
        hits += run(sp, LIN, RND, n_signflip=500, n_bootstrap=1000).status == "PASS"
    assert hits >= 48  # measured 50/50


# --------------------------------------------------------------------------- earned PASS (issue 13 part 3)
def test_pass_states_the_gain_it_established(real_gain):
    m = real_gain.measurements
    assert f"the gain is at least {m['ci_low']:.4f} (95% lower bound) > 0" in real_gain.summary
    assert f"MDE at 80% power {m['mde']:.4f}" in real_gain.summary
    assert f"{m['candidate_mean']:.4f} (candidate) vs {m['baseline_mean']:.4f} (baseline)" in real_gain.summary


def test_powered_fail_states_the_power_at_the_declared_gain():
    sp = make_synthetic_split(n_train_queries=100, n_test_queries=400, n_items=10, seed=1)
    r = run(sp, noisy(0.3, 0), noisy(0.3, 1), min_gain=0.05, **QUICK)
    m = r.measurements
    assert r.status == "FAIL"
    assert f"a true gain of 0.0500 (declared min_gain) would have shown with at least 80% power (MDE {m['mde']:.4f})" \
        in r.summary
    assert f"the gain is at most {m['ci_high']:.4f} (95% upper bound)" in r.summary


def test_underpowered_names_the_queries_that_would_decide():
    sp = make_synthetic_split(n_train_queries=100, n_test_queries=15, n_items=10, seed=2)
    r = run(sp, noisy(0.3, 0), noisy(0.3, 1), min_gain=0.01, **QUICK)
    m = r.measurements
    assert r.inconclusive and m["queries_needed"] > 15
    # the number is where the one-sided paired t-test reaches 80% power at min_gain (statsmodels)
    from statsmodels.stats.power import TTestPower

    pw = lambda n: TTestPower().power(effect_size=0.01 / m["sd_delta"], nobs=n, alpha=0.05, alternative="larger")
    assert pw(m["queries_needed"]) >= 0.8 > pw(m["queries_needed"] - 1)
    assert f"About {m['queries_needed']} test queries (now 15)" in r.summary


def test_single_query_is_inconclusive_not_a_zero_width_ci():
    sp = make_synthetic_split(n_train_queries=50, n_test_queries=1, n_items=8, seed=3)
    r = run(sp, LIN, RND, **QUICK)
    assert r.status == "WARN" and r.inconclusive
    assert "only 1 test query has a defined ndcg@10" in r.summary
    assert "a single query gives no variance" in r.summary and "About 10 informative test queries" in r.summary


def test_equal_labels_leave_no_informative_query(split):
    t = split.test
    r = run(Split(train=split.train, test=t.with_labels(np.ones(t.n_rows))), LIN, RND, **QUICK)
    assert r.inconclusive and r.measurements["n_informative"] == 0
    assert "only 0 of the 60 test queries can change their ndcg@10 with the ordering" in r.summary


def test_zero_variance_gain_is_inconclusive():
    # two candidates per query, the relevant one ranked first by the candidate and last by the
    # baseline run: Δ nDCG@10 = 1 - 1/log2(3) on every query, sd 0
    from auditor.data import RankingDataset

    def data(nq, q0):
        qid = np.repeat(np.arange(q0, q0 + nq), 2)
        y = np.tile([1.0, 0.0], nq)
        return RankingDataset(qid=qid, labels=y, features={"f": np.c_[y, np.arange(2 * nq) % 3]})

    sp = Split(train=data(20, 0), test=data(12, 100))
    r = run(sp, LIN, scores=-sp.test.features["f"][:, 0], **QUICK)
    m = r.measurements
    assert m["sd_is_zero"] and np.isclose(m["mean_delta"], 1 - 1 / np.log2(3))
    assert r.status == "WARN" and r.inconclusive
    assert "with zero variance" in r.summary and "zero-width CI is no evidence" in r.summary
