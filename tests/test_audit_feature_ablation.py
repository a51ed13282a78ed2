"""Feature-ablation audit: planted label proxies are caught and named, solo strength alone never
fails (not even on the real LETOR sample, where one feature nearly matches LightGBM), unused
groups are shown by equivalence, and the "mask half the features" check is a measurement."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auditor.audits.base import run_inline
from auditor.audits.feature_ablation import FeatureAblationAudit, permute_columns, within_query_permutation
from auditor.context import AuditConfig, AuditContext
from auditor.data import RankingDataset, Split
from auditor.errors import ConfigError
from auditor.registry import ModelSpec
from rankers import make_synthetic_split, plant_label_proxy

LINEAR = "rankers:make_linear"
LGBM = str(Path(__file__).resolve().parents[1] / "examples" / "plugins" / "lightgbm_ranker.py") + ":make_model"




@pytest.fixture(scope="module")
def clean() -> Split:
    return make_synthetic_split(n_train_queries=150, n_test_queries=60, n_items=10, seed=1)


def run(split: Split, model: str = LINEAR, model_params: dict | None = None, **params):
    cfg = AuditConfig(audits={"feature_ablation": {"bootstrap": 1000, **params}})
    return run_inline(FeatureAblationAudit(), AuditContext(split, ModelSpec(model, model_params or {}), cfg))


def cond(res, text: str):
    hits = [c for c in res.conditions if text in c.name]
    assert len(hits) == 1, [c.name for c in res.conditions]
    return hits[0]


# --------------------------------------------------------------------------- known answers
def test_clean_split_has_no_proxy_and_groups_matter(clean):
    r = run(clean)
    assert r.status in ("PASS", "WARN")
    assert cond(r, "label proxy").status == "PASS"
    g = r.measurements["groups"]
    # signal groups: a clear drop with a CI below 0
    assert g["a"]["ci_high"] < -0.05 and g["b"]["ci_high"] < -0.05
    # the noise group moves nothing of note
    assert abs(g["noise"]["delta"]) < 0.01
    assert r.measurements["proxy"]["best_solo_share"] < 0.5


def test_planted_proxy_fails_and_is_named(clean):
    r = run(plant_label_proxy(clean, strength=3.0, seed=2))
    assert r.status == "FAIL" and r.critical
    c = cond(r, "label proxy")
    assert c.status == "FAIL" and "proxy.0" in c.observed
    pr = r.measurements["proxy"]
    assert pr["suspects"] == ["proxy.0"]
    best = pr["candidates"][0]
    assert best["solo_share"] > 0.95 and best["dependence"] > 0.8 and best["gap"] > 0.5
    assert "proxy.0" in r.summary and any("proxy.0" in s for s in r.next_steps)


def test_solo_strength_alone_never_fails(clean):
    """A near-perfect column the model does not use: strong, isolated, but not relied on -> PASS."""
    split = plant_label_proxy(clean, strength=5.0, seed=2)
    r = run(split, model_params={"groups": ["a", "b", "noise"]})
    c = cond(r, "label proxy")
    assert c.status == "PASS"
    best = r.measurements["proxy"]["candidates"][0]
    assert best["name"] == "proxy.0" and best["strong"] and best["isolated"] and not best["relied_on"]
    assert abs(best["dependence"]) < 0.05
    # ... and the unused proxy group is reported as such (TOST equivalence), a WARN
    assert cond(r, "feature group is shown to be ignored").status == "WARN"
    assert r.measurements["groups"]["proxy"]["unused"]


def test_weak_proxy_is_not_called_a_leak(clean):
    """A proxy far from perfect (noise sd 1.33 label units) stays below the solo threshold."""
    r = run(plant_label_proxy(clean, strength=0.75, seed=2))
    assert cond(r, "label proxy").status == "PASS"


def test_unused_group_is_shown_by_equivalence_not_by_a_missing_effect(clean):
    r = run(clean, model_params={"groups": ["a", "b"]})
    g = r.measurements["groups"]["noise"]
    assert g["delta"] == 0.0 and g["unused"] and g["tost_p_bh"] < 0.05
    c = cond(r, "feature group is shown to be ignored")
    assert c.status == "WARN" and "noise: unused" in c.observed
    assert r.status == "WARN"


def test_half_mask_is_a_measurement_with_ci(clean):
    r = run(clean)
    h = r.measurements["half_mask"]
    assert h["columns"] == 6
    assert h["ci_low"] <= h["delta"] <= h["ci_high"] < 0  # half the columns do matter here
    assert 0 < h["ratio"] < 1
    assert not [c for c in r.conditions if "half" in c.name]  # no pass/fail threshold on it
    assert "random half" in r.summary
    rows = next(p for p in r.plots if p["type"] == "intervals")["rows"]
    assert any(row["label"].startswith("random half") for row in rows)


# --------------------------------------------------------------------------- real data (LightGBM)
def test_letor_lightgbm_no_false_alarm(letor):
    """One LETOR column alone nearly matches the boosted model's nDCG@10, yet no proxy is called."""
    r = run(letor, model=LGBM, n_repeats=20)
    assert cond(r, "label proxy").status == "PASS"
    assert r.status != "FAIL"
    pr = r.measurements["proxy"]
    assert pr["best_solo_vs_model"] > 0.95  # strong single feature ...
    assert pr["best_solo_share"] < 0.5      # ... but far from the ideal ranking
    assert r.measurements["groups"]["all"]["ci_high"] < 0  # the model uses its features
    h = r.measurements["half_mask"]
    assert h["ci_low"] < h["delta"] < h["ci_high"]


def test_letor_lightgbm_planted_proxy_fails(letor):
    r = run(plant_label_proxy(letor, strength=3.0, seed=0), model=LGBM, n_repeats=10, half_mask=False)
    assert r.status == "FAIL"
    assert r.measurements["proxy"]["suspects"] == ["proxy.0"]


# --------------------------------------------------------------------------- options and edges
def test_loco_option(clean):
    r = run(clean, loco=True, n_repeats=5, half_mask=False, proxy_scan=False)
    assert r.n_trials == 1 + 3
    loco = r.measurements["loco"]
    assert set(loco) == {"a", "b", "noise"}
    assert loco["a"]["ci_high"] < 0  # retraining without group a's information costs
    assert abs(loco["noise"]["delta"]) < 0.02


def test_edge_queries_are_counted_and_excluded():
    rng = np.random.default_rng(0)

    def make(nq, q0):
        sizes = np.r_[np.ones(3, int), rng.integers(3, 10, nq - 3)]
        qid = np.repeat(np.arange(q0, q0 + nq), sizes)
        X = rng.normal(size=(qid.size, 4))
        lab = np.clip(np.round(0.7 * X[:, 0] + 0.7 * X[:, 2] + 1 + 0.7 * rng.normal(size=qid.size)), 0, 3)
        lab[qid == q0 + 4] = 0.0
        return RankingDataset(qid=qid, labels=lab, features={"f": X[:, :2], "g": X[:, 2:]})

    split = Split(make(100, 0), make(40, 1000))
    r = run(split, n_repeats=5)
    m = r.measurements
    te = split.test
    no_rel = sum(1 for s in te.query_slices if te.labels[s].max() <= 0)
    tied = sum(1 for s in te.query_slices if te.labels[s].max() > 0 and np.unique(te.labels[s]).size == 1)
    assert m["excluded_no_relevant"] == no_rel >= 1
    assert m["excluded_uninformative"] == tied >= 1
    assert m["n_queries"] == 40 - no_rel - tied
    assert cond(r, "label proxy").status == "PASS"


def test_within_query_permutation_never_leaves_the_query(clean):
    d = clean.test
    perm = within_query_permutation(d.query_offsets, np.random.default_rng(0))
    np.testing.assert_array_equal(d.query_index[perm], d.query_index)
    assert not np.array_equal(perm, np.arange(d.n_rows))
    out = permute_columns(d, {"a": [1, 3]}, perm)
    np.testing.assert_array_equal(out.features["b"], d.features["b"])
    np.testing.assert_array_equal(out.features["a"][:, [0, 2]], d.features["a"][:, [0, 2]])
    # no zero-masking: each query keeps exactly its own values of the permuted columns
    for s in d.query_slices:
        np.testing.assert_array_equal(np.sort(out.features["a"][s, 1]), np.sort(d.features["a"][s, 1]))
    assert not np.array_equal(out.features["a"][:, 1], d.features["a"][:, 1])


def test_bad_group_is_a_config_error(clean):
    with pytest.raises(ConfigError, match="unknown feature group"):
        run(clean, groups=["a", "image"])


def test_deterministic_and_json_able(clean):
    import json

    from auditor.audits.base import jsonable

    a = run(clean, n_repeats=5)
    b = run(clean, n_repeats=5)
    assert jsonable(a.measurements) == jsonable(b.measurements)
    json.dumps(a.to_dict(), allow_nan=False)


def test_measure_from_stored_trial_results(clean):
    """Resume path: trial results come back from the store as JSON; measure gives the same answer."""
    import json

    ctx = AuditContext(plant_label_proxy(clean, 3.0, seed=1), ModelSpec(LINEAR),
                       AuditConfig(audits={"feature_ablation": {"n_repeats": 3, "loco": True}}))
    audit = FeatureAblationAudit()
    raw = {t.key: audit.run_trial(ctx, t) for t in audit.plan(ctx)}
    stored = {k: json.loads(json.dumps(v, allow_nan=False)) for k, v in raw.items()}
    from auditor.audits.base import jsonable

    assert jsonable(audit.measure(ctx, stored).measurements) == jsonable(audit.measure(ctx, raw).measurements)


# --------------------------------------------------------------------------- earned PASS (issue 13 part 3)
def _decide_proxy(dep: float, low: float, high: float, *, gain_low: float = 0.05):
    from auditor.audits.base import Evidence

    ctx = AuditContext(make_synthetic_split(n_train_queries=10, n_test_queries=5), ModelSpec(LINEAR))
    cand = {"name": "x.0", "solo_share": 0.95, "gap": 0.6, "strong": True, "isolated": True,
            "dependence": dep, "dependence_low": low, "dependence_high": high, "drop": dep * 0.2,
            "relied_on": dep >= 0.5 and low > 0, "suspect": dep >= 0.5 and low > 0}
    m = {"metric": "ndcg@10", "n_queries": 40, "n_test_queries": 40, "features_constant_within_queries": False,
         "gain_over_chance": {"estimate": 0.2, "ci_low": gain_low, "ci_high": 0.3},
         "proxy": {"candidates": [cand], "suspects": ["x.0"] if cand["suspect"] else []}, "groups": {}}
    return FeatureAblationAudit().decide(ctx, Evidence(m), None)


def test_strong_isolated_column_clears_only_below_the_dependence_bound():
    d = _decide_proxy(0.10, 0.02, 0.30)  # upper bound 30% < 50%: ruled out, and said so
    assert d.status is None and d.conditions[0].status == "PASS" and not d.inconclusive
    assert "removes at most 30% of the model's gain (95% upper bound" in d.summary
    d = _decide_proxy(0.35, -0.05, 0.75)  # the CI straddles 50%: cannot say
    assert d.inconclusive and d.status == "WARN" and d.conditions[0].status == "WARN"
    assert "cannot show whether the model depends on it" in d.summary
    assert "test queries (now 40) would decide it" in d.summary
    d = _decide_proxy(0.80, 0.60, 0.95)  # planted proxy: still a FAIL
    assert d.conditions[0].status == "FAIL" and not d.inconclusive


def test_all_zero_test_features_are_inconclusive_not_a_pass(clean):
    te = clean.test
    zero = RankingDataset(qid=te.qid, labels=te.labels, features={g: np.zeros_like(x) for g, x in te.features.items()},
                          name="zeros")
    r = run(Split(clean.train, zero))
    assert r.status == "WARN" and r.inconclusive
    assert "every feature is constant within each test query" in r.summary
    assert "nan" not in r.summary.lower() and "+0.0000" not in r.summary
