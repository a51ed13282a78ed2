"""Random-label audit: known answers on planted data and on the real LETOR sample.

- clean split + linear ranker -> PASS (both variants at chance);
- 30% of test queries copied into train + a memorising ranker -> variant B FAIL (the V2.0
  pattern: memorised rows survive random labels), variant A PASS;
- a ranker that reads a label-proxy column without learning -> variant A FAIL;
- LETOR + LightGBM: 30% copied test queries -> variant B above chance with a small p; the
  clean split stays at chance.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auditor.audits.base import Evidence, run_inline
from auditor.audits.random_label import (RandomLabelAudit, informative_queries, shared_key_labels,
                                         shuffle_within_query)
from auditor.context import AuditConfig, AuditContext
from auditor.data import RankingDataset, Split
from auditor.errors import ConfigError
from auditor.metrics import expected_random
from auditor.planting import with_columns
from auditor.registry import ModelSpec
from auditor.testing import LinearRanker, make_synthetic_split, plant_copied_queries, plant_label_proxy

LTR = Path(__file__).resolve().parent / "data" / "ltr"
LINEAR = "auditor.testing:make_linear"
MEMO = "auditor.testing:make_memorizer"
LGBM = str(Path(__file__).resolve().parents[1] / "examples" / "plugins" / "lightgbm_ranker.py") + ":make_model"


def load_letor(name: str) -> RankingDataset:
    from sklearn.datasets import load_svmlight_file

    X, y = load_svmlight_file(str(LTR / f"rank.{name}"), n_features=300)
    sizes = np.loadtxt(LTR / f"rank.{name}.query", dtype=int)
    qid = np.repeat(np.arange(sizes.size) + (0 if name == "train" else 100_000), sizes)
    return RankingDataset(qid=qid, labels=y, features={"all": X.toarray()}, name=f"rank.{name}")


@pytest.fixture(scope="module")
def clean() -> Split:
    return make_synthetic_split(n_train_queries=150, n_test_queries=60, n_items=10, seed=21)


def run(split: Split, model: str = LINEAR, **params):
    cfg = AuditConfig(audits={"random_label": {"sign_flip_resamples": 2000, "bootstrap": 1000,
                                               "null_samples": 200, **params}})
    return run_inline(RandomLabelAudit(), AuditContext(split, ModelSpec(model), cfg))


def cond(res, variant: str):
    hits = [c for c in res.conditions if f"(variant {variant})" in c.name]
    assert len(hits) == 1
    return hits[0]


# --------------------------------------------------------------------------- known answers
def test_clean_split_linear_passes(clean):
    r = run(clean)
    assert r.status == "PASS", [(c.name, c.observed) for c in r.conditions]
    assert cond(r, "A").status == "PASS" and cond(r, "B").status == "PASS"
    m = r.measurements
    assert m["n_seeds"] == 3 and r.n_trials == 5  # true-label fit + 3 seeds + variant B
    # at chance: the CI of the excess covers 0 and is narrow
    for k in ("variant_a", "variant_b"):
        assert m[k]["ci_low"] < 0.0 < m[k]["ci_high"] or abs(m[k]["excess"]) < 0.02
    # the model does learn on the true labels: the test is not vacuous
    assert m["true_labels"]["excess"] > 0.1 and m["true_labels"]["p_value"] < 1e-6
    assert m["variant_b"]["n_shared_keys"] == 0


def test_copied_queries_memoriser_fails_variant_b(clean):
    r = run(plant_copied_queries(clean, 0.3, seed=1), model=MEMO)
    assert r.status == "FAIL" and r.critical
    b, a = cond(r, "B"), cond(r, "A")
    assert b.status == "FAIL" and a.status == "PASS"
    mb = r.measurements["variant_b"]
    assert mb["shared_test_rows"] == 180  # 18 queries x 10 rows carry a shared (query, item) key
    assert mb["excess"] > 0.05 and mb["p_value"] < 1e-3
    assert "variant B" in r.summary
    assert any("isolation" in s for s in r.next_steps)


def test_memoriser_on_clean_split_passes(clean):
    """Memorising capacity alone is no leak: without shared rows the memoriser is at chance."""
    r = run(clean, model=MEMO)
    assert r.status == "PASS"


def make_proxy_reader(seed: int = 0):
    """Ignores its training labels and ranks by the 'proxy' column: label information that does
    not come from learning (what variant A exists to catch)."""
    class ProxyReader(LinearRanker):
        def score(self, data):
            return np.asarray(data.features["proxy"][:, 0], dtype=float)

    return ProxyReader(seed=seed)


def test_label_information_outside_training_fails_variant_a(clean):
    r = run(plant_label_proxy(clean, strength=2.0, seed=3), model="test_audit_random_label:make_proxy_reader")
    a = cond(r, "A")
    assert a.status == "FAIL" and r.status == "FAIL"
    assert r.measurements["variant_a"]["excess"] > 0.2
    # test labels are random under B, the proxy encodes the true ones: B stays at chance
    assert cond(r, "B").status == "PASS"


def test_training_curves_and_chance_distribution_are_evidence(clean):
    r = run(clean)
    kinds = [p["type"] for p in r.plots]
    assert kinds[0] == "lines" and "hist" in kinds and "intervals" in kinds
    lines = r.plots[0]
    labels = [s["label"] for s in lines["series"]]
    assert any(l.startswith("true labels") for l in labels) and any("random labels A0" in l for l in labels)
    assert any("not a leak" in n for n in r.notes)  # convergence is described, never judged
    hist = next(p for p in r.plots if p["type"] == "hist")
    chance = next(mk["x"] for mk in hist["markers"] if mk["label"].startswith("chance"))
    # the simulated random-ordering distribution is centred on the exact chance level
    assert abs(np.mean(hist["values"]) - chance) < 0.01


# --------------------------------------------------------------------------- real data (LightGBM)
@pytest.fixture(scope="module")
def letor() -> Split:
    return Split(load_letor("train"), load_letor("test"), name="letor")


def test_letor_lightgbm_copied_queries_b_above_chance(letor):
    r = run(plant_copied_queries(letor, 0.3, seed=0), model=LGBM)
    mb = r.measurements["variant_b"]
    assert cond(r, "B").status == "FAIL"
    assert mb["p_value"] < 1e-3 and mb["excess"] > 0.05
    assert r.measurements["variant_a"]["excess"] < 0.02  # A stays at (or below) chance


def test_letor_lightgbm_clean_at_chance(letor):
    r = run(letor, model=LGBM)
    assert r.status == "PASS"
    assert r.measurements["variant_b"]["p_value"] > 0.05
    assert r.measurements["variant_a"]["p_value"] > 0.05
    assert r.measurements["true_labels"]["excess"] > 0.05  # LightGBM learns on true labels


# --------------------------------------------------------------------------- decision rules
def _evidence(excess: float, p: float) -> Evidence:
    r = {"n": 5000, "mean_metric": 0.5 + excess, "mean_chance": 0.5, "excess": excess, "ci_low": excess - 0.002,
         "ci_high": excess + 0.002, "p_value": p, "p_sign_flip": p, "t": 5.0, "seed_excess": [excess] * 3}
    return Evidence(measurements={"variant_a": dict(r), "p_bonferroni": p}, p_value=p)


def test_effect_floor_makes_a_trivial_excess_a_warning(clean):
    ctx = AuditContext(clean, ModelSpec(LINEAR))
    audit = RandomLabelAudit()
    d = audit.decide(ctx, _evidence(0.004, 1e-6), 1e-6)
    assert [c.status for c in d.conditions] == ["WARN"]
    d = audit.decide(ctx, _evidence(0.03, 1e-6), 1e-6)
    assert [c.status for c in d.conditions] == ["FAIL"]
    # significant before, not after the suite's Holm adjustment -> PASS
    d = audit.decide(ctx, _evidence(0.03, 0.03), 0.09)
    assert [c.status for c in d.conditions] == ["PASS"]
    # the floor is configurable
    ctx2 = AuditContext(clean, ModelSpec(LINEAR), AuditConfig(audits={"random_label": {"min_excess": 0.001}}))
    assert audit.decide(ctx2, _evidence(0.004, 1e-6), 1e-6).conditions[0].status == "FAIL"


def test_quick_mode_and_bad_config(clean):
    ctx = AuditContext(clean, ModelSpec(LINEAR), AuditConfig(quick=True))
    assert len([t for t in RandomLabelAudit().plan(ctx) if t.key.startswith("A")]) == 2
    ctx = AuditContext(clean, ModelSpec(LINEAR), AuditConfig(audits={"random_label": {"n_seeds": 0}}))
    with pytest.raises(ConfigError):
        RandomLabelAudit().plan(ctx)
    ctx = AuditContext(clean, ModelSpec(LINEAR), AuditConfig(audits={"random_label": {"variant_b": False}}))
    assert "B" not in [t.key for t in RandomLabelAudit().plan(ctx)]


# --------------------------------------------------------------------------- edge cases and helpers
def _ragged(nq: int, q0: int, item0: int, seed: int) -> RankingDataset:
    rng = np.random.default_rng(seed)
    sizes = np.r_[np.ones(4, int), rng.integers(2, 12, nq - 4)]
    qid = np.repeat(np.arange(q0, q0 + nq), sizes)
    X = rng.normal(size=(qid.size, 5))
    lab = np.clip(np.round(X[:, 0] + 0.5 * rng.normal(size=qid.size)), 0, 3)
    lab[qid == q0 + 5] = 0.0   # no relevant item
    lab[qid == q0 + 6] = 2.0   # all equal: no ordering can matter
    return RankingDataset(qid=qid, labels=lab, features={"f": X}, item_id=np.arange(item0, item0 + qid.size))


def test_single_item_no_relevant_and_tied_queries_are_counted_and_excluded():
    split = Split(_ragged(120, 0, 0, 1), _ragged(40, 1000, 10_000, 2))
    te = split.test
    r = run(split)
    m = r.measurements
    no_rel = sum(1 for s in te.query_slices() if te.labels[s].max() <= 0)
    single_or_tied = sum(1 for s in te.query_slices() if te.labels[s].max() > 0 and np.unique(te.labels[s]).size == 1)
    assert no_rel >= 1 and single_or_tied >= 2  # the planted ones (q 1005 and q 1006) at least
    assert m["excluded_no_relevant"] == no_rel
    assert m["excluded_uninformative"] == single_or_tied
    assert m["variant_a"]["n"] == 40 - no_rel - single_or_tied
    assert any("no relevant item" in n for n in r.notes)
    assert r.status == "PASS"


def test_missing_item_id_uses_row_hash_for_variant_b(clean):
    no_ids = Split(with_columns(clean.train, item_id=None), with_columns(clean.test, item_id=None))
    r = run(plant_copied_queries(no_ids, 0.3, seed=1), model=MEMO, n_seeds=1)
    assert r.measurements["variant_b"]["shared_test_rows"] == 180
    assert cond(r, "B").status == "FAIL"


def test_shuffle_within_query_keeps_each_query_multiset(clean):
    d = clean.train
    y = shuffle_within_query(d.labels, d.query_offsets, np.random.default_rng(0))
    assert not np.array_equal(y, d.labels)
    for s in d.query_slices():
        assert sorted(y[s]) == sorted(d.labels[s])
    # chance is a function of the multiset only: identical before and after
    np.testing.assert_allclose(expected_random("ndcg@10", y, d.query_offsets),
                               expected_random("ndcg@10", d.labels, d.query_offsets))


def test_shared_key_labels_agree_across_the_split(clean):
    split = plant_copied_queries(clean, 0.2, seed=4)
    y_tr, y_te, info = shared_key_labels(split.train, split.test, np.random.default_rng(0))
    n_copy = split.train.n_rows - clean.train.n_rows
    copies = split.train.take(np.arange(clean.train.n_rows, split.train.n_rows))
    # each copied row has the same random label as its original in test
    pos = {int(i): k for k, i in enumerate(split.test.item_id.tolist())}
    idx = np.array([pos[int(i)] for i in copies.item_id])
    np.testing.assert_array_equal(y_tr[clean.train.n_rows:], y_te[idx])
    assert info["shared_test_rows"] == n_copy == 120
    # labels really were shuffled, and each query keeps its label multiset
    assert np.mean(y_te != split.test.labels) > 0.3
    for s in split.test.query_slices():
        assert sorted(y_te[s]) == sorted(split.test.labels[s])


def test_informative_queries():
    lab = np.array([1.0, 2, 0, 3, 3, 5.0])
    off = np.array([0, 1, 3, 5, 6])
    np.testing.assert_array_equal(informative_queries("ndcg@10", lab, off), [False, True, False, False])


def test_deterministic(clean):
    from auditor.audits.base import jsonable

    a = run(clean, n_seeds=1)
    b = run(clean, n_seeds=1)
    assert jsonable(a.measurements) == jsonable(b.measurements)


def test_measure_from_stored_trial_results(clean):
    """Resume path: trial results come back from the store as JSON; measure gives the same answer."""
    import json

    ctx = AuditContext(plant_copied_queries(clean, 0.2, seed=1), ModelSpec(MEMO),
                       AuditConfig(audits={"random_label": {"n_seeds": 2, "null_samples": 50}}))
    audit = RandomLabelAudit()
    raw = {t.key: audit.run_trial(ctx, t) for t in audit.plan(ctx)}
    stored = {k: json.loads(json.dumps(v, allow_nan=False)) for k, v in raw.items()}
    from auditor.audits.base import jsonable

    a, b = audit.measure(ctx, stored), audit.measure(ctx, raw)
    assert jsonable(a.measurements) == jsonable(b.measurements) and a.p_value == b.p_value
