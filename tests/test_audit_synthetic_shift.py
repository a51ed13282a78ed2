"""Synthetic-shift audit: planted shifts caught, clean twins pass, the real LETOR pair passes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from auditor.audits.base import run_inline
from auditor.audits.synthetic_shift import SyntheticShiftAudit, auc_upper_bound
from auditor.context import AuditConfig, AuditContext
from auditor.data import Split
from auditor.errors import ConfigError
from auditor.registry import ModelSpec
from auditor.synthetic import make_synthetic_split

from planting_shift import naive_synthetic, shift_features, with_synthetic

SPEC = ModelSpec("rankers:make_linear")  # the audit never fits a model; the context needs one
FAST = {"clf_permutations": 1000, "n_bootstrap": 200, "ks_permutations": 200, "mmd_permutations": 1000,
        "label_permutations": 500}


def audit(split: Split, **params) -> "AuditResult":  # noqa: F821
    cfg = AuditConfig(audits={"synthetic_shift": {**FAST, **params}})
    return run_inline(SyntheticShiftAudit(), AuditContext(split, SPEC, cfg))


@pytest.fixture(scope="module")
def letor_clean(letor):
    return audit(letor)


@pytest.fixture(scope="module")
def letor_naive(letor):
    # the V1.0 pattern: a small synthetic set (40 queries, ~600 rows) drawn feature by feature
    return audit(with_synthetic(letor, naive_synthetic(letor.train, n_queries=40, seed=1)))


@pytest.fixture(scope="module")
def gen_split() -> Split:
    return make_synthetic_split(n_train_queries=300, n_test_queries=60, n_items=10, seed=0)


@pytest.fixture(scope="module")
def gen_real_twin() -> "RankingDataset":  # noqa: F821
    # another draw from the same generator: same feature distribution as gen_split.train
    return make_synthetic_split(n_train_queries=300, n_test_queries=2, n_items=10, seed=1).train


# --------------------------------------------------------------------------- real data
def test_letor_train_vs_test_passes(letor_clean):
    r = letor_clean
    assert r.status == "PASS" and not r.inconclusive
    m = r.measurements
    assert m["mode"] == "train_vs_test"
    assert m["auc"] < 0.55  # query-grouped folds: ~0.5 (row-level CV gives 0.99, see test_twosample)
    assert r.p_value > 0.05
    assert m["ks_n_rejected_bh"] == 0 and m["ks_n_features"] == 218
    assert m["queries_a"] == 201 and m["queries_b"] == 50
    # an earned PASS: it names the AUC bound that rules out a FAIL-size shift
    assert m["auc_upper_one_sided"] < 0.625
    stated = float(r.summary.split("AUC <= ")[1].split(" (one-sided 95% bound)")[0])
    assert m["auc_upper_one_sided"] <= stated < m["auc_upper_one_sided"] + 0.001  # rounded up, never down
    assert "(FAIL size)" in r.summary and "is ruled out" in r.summary


def test_letor_naive_synthetic_fails(letor_naive):
    r = letor_naive
    assert r.status == "FAIL" and r.critical
    m = r.measurements
    assert m["mode"] == "synthetic" and m["auc"] > 0.95
    assert r.p_value < 0.01
    assert m["ks_n_rejected_bh"] > 100
    assert "easily told" in r.summary and "0.625" in r.summary
    assert r.next_steps


def test_result_is_json_and_carries_plots(letor_naive):
    d = letor_naive.to_dict()
    json.dumps(d)
    kinds = [p["type"] for p in d["plots"]]
    assert kinds == ["intervals", "bars", "hist", "table"]
    bars = d["plots"][1]
    assert len(bars["labels"]) == 20 and all(v >= 0 for v in bars["values"])
    assert bars["labels"][0].endswith("*")  # BH-rejected features are marked
    assert d["plots"][0]["ref"] == 0.5


# --------------------------------------------------------------------------- planted shifts
def test_subtle_shift_of_a_synthetic_set_is_detected(gen_split, gen_real_twin):
    syn = shift_features(gen_real_twin, shift=0.25, n_columns=3, seed=2, name="shifted-synthetic")
    r = audit(with_synthetic(gen_split, syn))
    assert r.status in ("WARN", "FAIL") and not r.inconclusive
    m = r.measurements
    assert m["auc"] >= 0.55 and r.p_value < 0.01
    top = {t["feature"] for t in m["ks_top"][:3]}
    assert top == set(syn.meta["shifted_columns"])  # KS names the shifted columns


def test_clean_synthetic_twin_passes(gen_split, gen_real_twin):
    r = audit(with_synthetic(gen_split, gen_real_twin))
    assert r.status == "PASS" and not r.inconclusive
    assert r.measurements["mode"] == "synthetic"
    assert r.measurements["auc_upper_one_sided"] < 0.625 and "(FAIL size)" in r.summary


def test_train_vs_test_shift_is_capped_at_warn(gen_split):
    big = shift_features(gen_split.test, shift=2.0, n_columns=6, seed=3)
    r = audit(Split(train=gen_split.train, test=big))
    assert r.measurements["auc"] >= 0.625 and r.p_value < 0.01
    assert r.status == "WARN"  # a shifted test set questions transfer; it is not a model defect
    assert "capped at WARN" in r.summary


def test_label_distribution_shift_is_reported(gen_split, gen_real_twin):
    y = gen_real_twin.labels
    skewed = gen_real_twin.with_labels(np.where(y == 0, 3.0, y))  # every non-relevant row relabelled 3
    r = audit(with_synthetic(gen_split, skewed))
    lab = {c.name: c for c in r.conditions}["the label distributions match"]
    assert lab.status == "WARN"
    ls = r.measurements["label_shift"]
    assert ls["tv_distance"] > 0.4 and ls["p_value"] < 0.01


def test_hidden_synthetic_labels_skip_the_label_test(gen_split, gen_real_twin):
    r = audit(with_synthetic(gen_split, gen_real_twin.hide_labels()), n_folds=3)
    assert r.measurements["label_shift"] is None
    assert any("label-distribution test was skipped" in n for n in r.notes)
    assert [c.name for c in r.conditions] == [r.conditions[0].name]


# --------------------------------------------------------------------------- edge cases
def test_single_query_side_is_skipped():
    sp = make_synthetic_split(n_train_queries=20, n_test_queries=1, n_items=6, seed=4)
    r = audit(sp)
    assert r.status == "SKIP" and "at least 2 queries" in r.summary


def test_tiny_samples_do_not_fail():
    sp = make_synthetic_split(n_train_queries=3, n_test_queries=3, n_items=6, seed=5)
    r = audit(sp)
    assert r.status in ("PASS", "WARN")
    assert r.measurements["n_folds"] == 3  # folds reduced to the smaller sample's query count
    if r.status == "WARN":
        assert r.inconclusive  # a large-looking AUC on 3 + 3 queries is never significant


def test_quick_mode_and_bad_config():
    sp = make_synthetic_split(n_train_queries=30, n_test_queries=20, n_items=6, seed=6)
    ctx = AuditContext(sp, SPEC, AuditConfig(quick=True))
    assert ctx.params(SyntheticShiftAudit())["n_folds"] == 3
    r = run_inline(SyntheticShiftAudit(), ctx)
    assert r.measurements["n_folds"] == 3 and r.config["ks_permutations"] == 200
    with pytest.raises(ConfigError, match="auc_warn"):
        audit(sp, auc_warn=0.7, auc_fail=0.6)


def test_trials_are_deterministic_and_jsonable(gen_split):
    a = SyntheticShiftAudit()
    ctx = AuditContext(make_synthetic_split(n_train_queries=30, n_test_queries=20, n_items=6, seed=7), SPEC,
                       AuditConfig(audits={"synthetic_shift": FAST}))
    for t in a.plan(ctx):
        r1, r2 = a.run_trial(ctx, t), a.run_trial(ctx, t)
        assert json.dumps(r1) == json.dumps(r2)


@pytest.mark.slow
def test_reference_leaky_scenario_synthetic_set_fails():
    """The V1.0 story on the bundled multimodal data (1,792 embedding columns): the leaky
    scenario's naive 500-row synthetic set is told from real training data at once."""
    generate = pytest.importorskip("reference_model.synthetic").generate
    r = audit(generate(seed=0, scenario="leaky"))
    m = r.measurements
    assert r.status == "FAIL" and m["mode"] == "synthetic"
    assert m["auc"] > 0.95 and r.p_value < 0.01
    assert m["ks_raw_top"]  # wide groups: KS ran on components, raw columns ranked
    labels = {c.name: c.status for c in r.conditions}
    assert labels["the label distributions match"] == "WARN"  # its grades come from a shifted distribution


def _decide_with(auc, lo, hi, p, *, queries=(100, 100), quick=False, **params):
    """Decide on stated measurements (known answers): AUC, its 95% CI, the Holm-adjusted p."""
    from auditor.audits.base import Evidence
    from auditor.audits.synthetic_shift import SyntheticShiftAudit
    from auditor.context import AuditContext
    from auditor.registry import ModelSpec
    from auditor.synthetic import make_synthetic_split

    cfg = AuditConfig(quick=quick, audits={"synthetic_shift": params} if params else {})
    ctx = AuditContext(make_synthetic_split(n_train_queries=10, n_test_queries=5), ModelSpec("rankers:make_linear"),
                       cfg)
    m = {"alpha": 0.05, "auc": auc, "auc_ci_low": lo, "auc_ci_high": hi, "auc_warn": 0.55, "auc_fail": 0.625,
         "mode": "synthetic", "sample_a": "synthetic", "sample_b": "train", "label_shift": None,
         "ks_n_rejected_bh": 0, "ks_n_features": 10, "mmd_p_value": 0.5, "queries_a": queries[0],
         "queries_b": queries[1], **params}
    return SyntheticShiftAudit().decide(ctx, Evidence(m, p_value=p), p)


def _status(d) -> str:
    return d.status or d.conditions[0].status


def _queries_in(summary: str) -> int:
    import re

    return int(re.search(r"about (\d+) queries in all \(now \d+\)", summary).group(1))


def _narrowed(auc, lo, hi, n_now, n_new):
    """The same AUC with its CI narrowed as 1/sqrt(queries) to n_new queries in all."""
    f = (n_now / n_new) ** 0.5
    return auc, auc - (auc - lo) * f, auc + (hi - auc) * f


def test_high_but_noisy_auc_passes_and_consistent_high_auc_is_inconclusive():
    d = _decide_with(0.56, 0.50, 0.61, 0.30)  # CI reaches below the floor, not significant: noise
    assert not d.inconclusive and _status(d) == "PASS"
    assert "within noise" in d.summary
    # the PASS names the bound it rules out: 0.56 + 0.05 x 1.645 / 1.96 = 0.602 < 0.625
    assert "AUC <= 0.602 (one-sided 95% bound)" in d.summary and "(FAIL size) is ruled out" in d.summary
    assert "not ruled out" not in d.summary
    # a bound just under the FAIL size is printed with the decimals that keep it under: never
    # "AUC <= 0.625 ... a shift of AUC >= 0.625 is ruled out"
    d = _decide_with(0.56, 0.50, 0.56 + (0.62495 - 0.56) * 1.959964 / 1.644854, 0.30)
    assert _status(d) == "PASS" and "AUC <= 0.62495 (one-sided 95% bound): a shift of AUC >= 0.625" in d.summary
    d = _decide_with(0.62, 0.57, 0.67, 0.20)  # whole CI above the floor, yet not significant
    assert d.inconclusive
    d = _decide_with(0.70, 0.65, 0.75, 0.001)
    assert d.conditions[0].status == "FAIL"


def test_bound_between_fail_size_and_rule_out_passes_saying_a_medium_shift_is_not_ruled_out():
    auc, lo, hi = 0.58, 0.50, 0.66  # bound 0.58 + 0.08 x 1.645 / 1.96 = 0.6471: in [0.625, 0.70)
    ub = auc_upper_bound(auc, hi)
    assert 0.625 <= ub < 0.70
    d = _decide_with(auc, lo, hi, 0.30)
    assert not d.inconclusive and _status(d) == "PASS"
    # the bound 0.64714 is stated rounded up: claiming 0.647 would claim more than the numbers show
    assert "AUC <= 0.648 (one-sided 95% bound) rules out AUC >= 0.7" in d.summary
    assert "a medium shift, AUC 0.625 to 0.648 (FAIL size), is not ruled out with 100 + 100 queries" in d.summary
    # no sentence claims the FAIL size is ruled out
    assert "(FAIL size) is ruled out" not in d.summary
    # the number of queries it names would rule the medium shift out at the same AUC
    need = _queries_in(d.summary)
    assert need > 200 and any(str(need) in s for s in d.next_steps)
    d2 = _decide_with(*_narrowed(auc, lo, hi, 200, need), 0.30, queries=(need // 2, need - need // 2))
    assert _status(d2) == "PASS" and "(FAIL size) is ruled out" in d2.summary
    # a bound just above the FAIL size is never printed as the FAIL size itself
    d4 = _decide_with(0.543, 0.45, 0.543 + (0.62501 - 0.543) * 1.959964 / 1.644854, 0.30)
    assert "a medium shift, AUC 0.625 to 0.626 (FAIL size), is not ruled out" in d4.summary
    # a PASS is not earned when the rule-out size is the FAIL size itself (the former rule)
    d3 = _decide_with(auc, lo, hi, 0.30, auc_rule_out=0.625)
    assert d3.inconclusive and d3.status == "WARN" and "does not rule out a large shift (AUC >= 0.625" in d3.summary


def test_bound_at_or_above_rule_out_is_inconclusive_with_the_queries_that_would_decide():
    auc, lo, hi = 0.56, 0.42, 0.73  # bound 0.56 + 0.17 x 1.645 / 1.96 = 0.7027 >= 0.70
    ub = auc_upper_bound(auc, hi)
    assert ub >= 0.70
    d = _decide_with(auc, lo, hi, 0.30, queries=(40, 30))
    assert d.inconclusive and d.status == "WARN" and d.conditions[0].status == "WARN"
    assert "upper bound 0.703 does not rule out a large shift (AUC >= 0.7" in d.summary
    need = _queries_in(d.summary)
    assert need > 70 and "(now 70)" in d.summary and any(str(need) in s for s in d.next_steps)
    d2 = _decide_with(*_narrowed(auc, lo, hi, 70, need), 0.30, queries=(need // 2, need - need // 2))
    assert not d2.inconclusive and _status(d2) == "PASS"
    # a stricter rule-out size asks for more queries
    d3 = _decide_with(auc, lo, hi, 0.30, queries=(40, 30), auc_rule_out=0.72)
    assert not d3.inconclusive  # 0.703 < 0.72: a PASS that says the medium shift is not ruled out
    assert "is not ruled out" in d3.summary


def test_significant_shift_still_warns_or_fails_whatever_the_rule_out_size():
    d = _decide_with(0.60, 0.52, 0.66, 0.01)
    assert d.conditions[0].status == "WARN" and not d.inconclusive and "differs from" in d.summary
    d = _decide_with(0.68, 0.60, 0.76, 0.001, auc_rule_out=0.9)
    assert d.conditions[0].status == "FAIL" and not d.inconclusive


@pytest.mark.parametrize("quick", [False, True])
def test_not_significant_auc_at_fail_size_never_passes(quick):
    """A FAIL of the default run that loses significance (as under --quick) may become INCONCLUSIVE,
    never PASS, even when its bound lies below auc_rule_out."""
    auc, lo, hi = 0.64, 0.52, 0.70  # bound 0.64 + 0.06 x 0.839 = 0.690 < 0.70; CI reaches below 0.55
    assert auc_upper_bound(auc, hi) < 0.70
    assert _decide_with(auc, lo, hi, 0.001).conditions[0].status == "FAIL"  # significant: FAIL
    d = _decide_with(auc, lo, hi, 0.20, quick=quick)
    assert d.inconclusive and d.status == "WARN" and d.conditions[0].status == "WARN"
    assert "reads at or above the FAIL size (0.625)" in d.summary and "neither established nor ruled out" in d.summary
    assert ("Rerun without --quick" in d.next_steps[0]) == quick
    d = _decide_with(auc, 0.45, 0.70, 0.20)  # CI reaches below chance: the queries that would exclude it
    assert d.inconclusive and _queries_in(d.summary) > 200


def test_rule_out_below_fail_size_is_a_config_error():
    sp = make_synthetic_split(n_train_queries=30, n_test_queries=20, n_items=6, seed=6)
    with pytest.raises(ConfigError, match="need auc_rule_out >= auc_fail"):
        audit(sp, auc_rule_out=0.6)
    with pytest.raises(ConfigError, match="auc_rule_out"):
        audit(sp, auc_fail=0.75)  # raising the FAIL size alone leaves the rule-out size below it
