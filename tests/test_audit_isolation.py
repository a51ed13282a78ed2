"""Isolation audit: planted overlaps are caught by the right condition, clean twins pass.

Known answers: clean synthetic split -> PASS; test queries copied into train with their ids ->
FAIL on query-id overlap; copied under new ids -> FAIL on exact (query, item) duplicates;
slightly perturbed copies -> FAIL on near-duplicates; the real LETOR sample (where a fixed
cosine 0.95 threshold would flag 12% of a clean test set) -> no false FAIL.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auditor.audits.base import run_inline
from auditor.audits.isolation import (IsolationAudit, cluster_bootstrap_rate, normalise_text, query_identity,
                                      row_hashes, wilson_interval)
from auditor.context import AuditConfig, AuditContext
from auditor.data import RankingDataset, Split
from auditor.errors import ConfigError
from auditor.registry import ModelSpec
from rankers import LinearRanker, make_synthetic_split, plant_copied_queries

from planting import plant_near_duplicates, with_columns

LINEAR = "rankers:make_linear"
LGBM = str(Path(__file__).resolve().parents[1] / "examples" / "plugins" / "lightgbm_ranker.py") + ":make_model"




@pytest.fixture(scope="module")
def clean() -> Split:
    return make_synthetic_split(n_train_queries=150, n_test_queries=50, n_items=10, seed=11)


def run(split: Split, model: str = LINEAR, **params):
    cfg = AuditConfig(audits={"isolation": {"near_dup_permutations": 499, "bootstrap": 500, **params}})
    return run_inline(IsolationAudit(), AuditContext(split, ModelSpec(model), cfg))


def cond(res, text: str):
    hits = [c for c in res.conditions if text in c.name]
    assert len(hits) == 1, [c.name for c in res.conditions]
    return hits[0]


# --------------------------------------------------------------------------- known answers
def test_clean_split_passes(clean):
    r = run(clean)
    assert r.status == "PASS", [(c.name, c.status, c.observed) for c in r.conditions]
    m = r.measurements
    assert m["contamination"]["rows"] == 0
    assert m["contamination"]["wilson_high"] < 0.02  # an upper bound is still reported at 0
    assert m["near_duplicates"]["flagged_rows"] == 0
    assert r.p_value is not None and r.p_value > 0.5
    assert "no train/test overlap" in r.summary.lower()
    kinds = {p["type"] for p in r.plots}
    assert {"bars", "hist"} <= kinds
    # an earned PASS: it states the near-duplicate excess it rules out, and the power matches an
    # exact binomial computation (reject from the smallest k with P(Bin(n, p0) >= k) < 0.05)
    from scipy.stats import binom

    nd = m["near_duplicates"]
    n, p0 = m["n_test_rows"], nd["expected_rate"]
    k = next(k for k in range(n + 1) if binom.sf(k - 1, n, p0) < 0.05)
    assert np.isclose(nd["power_at_floor"], binom.sf(k - 1, n, p0 + 0.01))
    assert nd["power_at_floor"] >= 0.8
    assert f"an excess of 1% of test rows would have been detected with {nd['power_at_floor']:.0%} power" in r.summary


def test_copied_queries_with_same_ids_fail_on_qid_overlap(clean):
    r = run(plant_copied_queries(clean, 0.3, seed=1, keep_qid=True))
    assert r.status == "FAIL" and r.critical
    c = cond(r, "query id or normalised query text")
    assert c.status == "FAIL" and "15/50" in c.observed
    assert r.measurements["query_overlap"]["by_qid"] == 15
    assert r.measurements["contamination"]["queries"] == 15
    assert abs(r.measurements["contamination"]["rate"] - 0.3) < 1e-9


def test_copied_queries_under_new_ids_fail_on_exact_duplicates(clean):
    r = run(plant_copied_queries(clean, 0.3, seed=1, keep_qid=False))
    assert r.status == "FAIL"
    assert cond(r, "query id or normalised query text").status == "PASS"  # ids do not overlap ...
    dup = cond(r, "exact duplicate of a training row of the same query")
    assert dup.status == "FAIL" and "150/500" in dup.observed  # ... the rows do
    assert cond(r, "reappears in training under another id").status == "FAIL"
    assert r.measurements["exact_duplicates"]["same_query_rows"] == 150
    tables = [p for p in r.plots if p["type"] == "table"]
    assert tables and tables[0]["rows"][0][-1] == "same (query, item)"


def test_missing_item_id_uses_feature_row_hash(clean):
    """Without item ids the item key is the feature-row hash: copies are still exact duplicates."""
    no_ids = Split(with_columns(clean.train, item_id=None), with_columns(clean.test, item_id=None))
    r = run(plant_copied_queries(no_ids, 0.2, seed=2))
    assert r.status == "FAIL"
    assert r.measurements["exact_duplicates"]["same_query_rows"] == 100
    assert r.measurements["shared_items"]["has_item_id"] is False


def test_near_duplicates_fail_against_the_data_own_structure(clean):
    r = run(plant_near_duplicates(clean, frac=0.2, noise=0.01, seed=4))
    assert r.status == "FAIL"
    nd = cond(r, "near-duplicates")
    assert nd.status == "FAIL"
    # no exact match anywhere: only the neighbourhood rule can see these copies
    assert cond(r, "exact duplicate").status == "PASS"
    m = r.measurements["near_duplicates"]
    assert m["flagged_rows"] >= 95 and m["p_value"] < 0.01
    assert m["expected_rate"] < 0.01


def test_small_noise_level_is_judged_not_thresholded(clean):
    """Copies so noisy they are no closer than ordinary neighbours are not called duplicates."""
    r = run(plant_near_duplicates(clean, frac=0.2, noise=2.0, seed=4))
    assert cond(r, "near-duplicates").status != "FAIL"


def test_letor_no_false_fail_from_near_duplicates(letor):
    r = run(letor)
    m = r.measurements["near_duplicates"]
    # a fixed 0.95 cosine threshold would flag ~12% of this clean test set ...
    assert m["share_at_or_above_0.95"] > 0.10
    # ... the neighbourhood rule flags (almost) nothing and nothing fails
    assert m["flagged_rows"] <= 3
    assert r.status == "PASS", [(c.name, c.status, c.observed) for c in r.conditions]


def test_letor_copies_fail_and_metric_split_shows_the_inflation(letor):
    r = run(plant_copied_queries(letor, 0.3, seed=0), model=LGBM)
    assert r.status == "FAIL"
    assert cond(r, "exact duplicate").status == "FAIL"
    sub = r.measurements["metric_by_subset"]
    assert sub["contaminated"]["n"] == 15 and sub["clean"]["n"] == 35
    # the memorised queries look (almost) perfect, the clean ones do not
    assert sub["contaminated"]["mean"] > sub["clean"]["ci_high"]


# --------------------------------------------------------------------------- other overlaps
def _texts(d: RankingDataset, prefix: str) -> np.ndarray:
    return np.array([f"{prefix} query {q}" for q in d.qid])


def test_query_text_overlap_is_normalised(clean):
    tr = with_columns(clean.train, query_text=_texts(clean.train, "train"))
    te_text = _texts(clean.test, "test")
    first = clean.test.query_offsets[:2]
    te_text[first[0]:first[1]] = "  TRAIN   Query 0 "  # same query as train's first, other spelling
    te = with_columns(clean.test, query_text=te_text)
    r = run(Split(tr, te))
    c = cond(r, "query id or normalised query text")
    assert c.status == "FAIL" and "1 by text" in c.observed
    assert normalise_text("  TRAIN \t Query 0") == "train query 0"
    clean_r = run(Split(tr, with_columns(clean.test, query_text=_texts(clean.test, "test"))))
    assert clean_r.status == "PASS"


def test_group_overlap_warns_unless_declared_disjoint(clean):
    tr = with_columns(clean.train, group_id=np.char.add("u", (clean.train.query_index % 40).astype(str)))
    te = with_columns(clean.test, group_id=np.char.add("u", (clean.test.query_index % 10 + 35).astype(str)))
    split = Split(tr, te)
    r = run(split)
    assert r.status == "WARN"
    assert cond(r, "group/entity").status == "WARN"
    r2 = run(split, disjoint=["qid", "group_id"])
    assert r2.status == "FAIL" and cond(r2, "group/entity").status == "FAIL"
    assert r2.measurements["group_overlap"]["n_common_groups"] == 5
    ok = Split(tr, with_columns(clean.test, group_id=np.char.add("v", clean.test.query_index.astype(str))))
    assert cond(run(ok, disjoint=["qid", "group_id"]), "group/entity").status == "PASS"


def test_temporal_order(clean):
    tr = with_columns(clean.train, timestamp=np.linspace(0, 100, clean.train.n_rows))
    after = with_columns(clean.test, timestamp=np.linspace(101, 120, clean.test.n_rows))
    assert cond(run(Split(tr, after)), "newer than the newest training row").status == "PASS"
    mixed = with_columns(clean.test, timestamp=np.linspace(50, 150, clean.test.n_rows))
    r = run(Split(tr, mixed))
    c = cond(r, "newer than the newest training row")
    assert c.status == "WARN" and r.status == "WARN"
    assert r.measurements["temporal"]["test_rows_before_newest_train"] == int(np.sum(np.linspace(50, 150, 500) < 100))
    assert cond(run(Split(tr, mixed), temporal="fail"), "newer").status == "FAIL"
    assert not [c for c in run(Split(tr, mixed), temporal="ignore").conditions if "newer" in c.name]


def test_same_item_under_other_queries_is_reported_not_failed(clean):
    """Item ids shared across different queries (features differ): normal -> reported, PASS."""
    te_items = np.array(clean.test.item_id, copy=True)
    te_items[:40] = clean.train.item_id[:40]  # the same documents, judged for other queries
    r = run(Split(clean.train, with_columns(clean.test, item_id=te_items)))
    assert r.status == "PASS"
    assert r.measurements["shared_items"]["rows"] == 40


def test_identical_row_under_another_query_warns_at_most(clean):
    """A few test rows identical to rows of *other* training queries: WARN, never FAIL."""
    te = clean.test
    feats = {g: np.array(x, copy=True) for g, x in te.features.items()}
    for g in feats:
        feats[g][[3, 27, 61]] = clean.train.features[g][[5, 200, 700]]
    r = run(Split(clean.train, te.with_features(feats)))
    assert r.status == "WARN"
    c = cond(r, "items shared with training")
    assert c.status == "WARN" and c.observed.startswith("3 test rows")
    assert r.measurements["exact_duplicates"]["same_query_rows"] == 0
    # declaring item ids disjoint turns it into a failure
    assert run(Split(clean.train, te.with_features(feats)), disjoint=["qid", "item_id"]).status == "FAIL"


# --------------------------------------------------------------------------- edge cases
def test_single_item_queries_and_no_relevant_queries():
    rng = np.random.default_rng(0)

    def make(nq, q0, item0):
        sizes = np.r_[np.ones(5, int), rng.integers(2, 8, nq - 5)]
        qid = np.repeat(np.arange(q0, q0 + nq), sizes)
        lab = rng.integers(0, 3, qid.size).astype(float)
        lab[qid == q0 + 6] = 0.0  # a query with no relevant item
        return RankingDataset(qid=qid, labels=lab, features={"f": rng.normal(size=(qid.size, 6))},
                              item_id=np.arange(item0, item0 + qid.size))

    split = Split(make(60, 0, 0), make(20, 1000, 10_000))
    r = run(split)
    # no overlap, but ~90 test rows cannot show a 1% near-duplicate excess: inconclusive, and it says
    # how many rows would decide it
    assert r.status == "WARN" and r.inconclusive
    assert all(c.status == "PASS" for c in r.conditions if "near-duplicates" not in c.name)
    nd = r.measurements["near_duplicates"]
    assert nd["power_at_floor"] < 0.8 and nd["rows_needed"] > r.measurements["n_test_rows"]
    assert f"about {nd['rows_needed']} test rows" in r.summary
    bad = plant_copied_queries(split, 0.25, seed=3)
    r = run(bad)
    assert r.status == "FAIL" and cond(r, "exact duplicate").status == "FAIL"


def make_broken(seed: int = 0):
    class Broken(LinearRanker):
        def score(self, data):
            raise RuntimeError("boom")

    return Broken(seed=seed)


def test_model_failure_does_not_hide_the_data_check(clean):
    split = plant_copied_queries(clean, 0.3, seed=1, keep_qid=True)
    r = run(split, model="test_audit_isolation:make_broken")
    assert r.status == "FAIL"
    assert any("model failed" in n for n in r.notes)
    assert "metric_by_subset" not in r.measurements


def test_bad_config_is_a_config_error(clean):
    with pytest.raises(ConfigError, match="disjoint"):
        run(clean, disjoint=["qid", "session"])
    with pytest.raises(ConfigError, match="temporal"):
        run(clean, temporal="sometimes")


def test_deterministic_and_json_able(clean):
    import json

    from auditor.audits.base import jsonable

    a = run(plant_near_duplicates(clean, 0.1, seed=1))
    b = run(plant_near_duplicates(clean, 0.1, seed=1))
    assert jsonable(a.measurements) == jsonable(b.measurements) and a.p_value == b.p_value
    json.dumps(a.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- helpers
def test_row_hashes_are_stable_and_rounded(clean):
    # values as a text file would hold them (6 decimals), then float noise far below 1e-9
    six = clean.test.with_features({g: np.round(x, 6) for g, x in clean.test.features.items()})
    h = row_hashes(six)
    assert h.dtype == np.uint64 and np.unique(h).size == clean.test.n_rows
    nudged = six.with_features({g: x + 1e-12 for g, x in six.features.items()})
    np.testing.assert_array_equal(row_hashes(nudged), h)  # parse noise below 1e-9 is ignored
    np.testing.assert_array_equal(row_hashes(six), h)
    negz = six.with_features({g: np.where(x == 0, -0.0, x) for g, x in six.features.items()})
    np.testing.assert_array_equal(row_hashes(negz), h)


def test_query_identity_content_match(clean):
    split = plant_copied_queries(clean, 0.2, seed=5)
    tr_keys, te_keys, info = query_identity(split.train, split.test)
    assert (info["via"] == "content").sum() == 10
    assert np.isin(te_keys[info["via"] == "content"], tr_keys).all()
    assert not np.isin(te_keys[info["via"] == ""], tr_keys).any()


def test_wilson_and_cluster_bootstrap():
    from statsmodels.stats.proportion import proportion_confint

    assert wilson_interval(3, 100) == pytest.approx(proportion_confint(3, 100, method="wilson"))
    flags = np.r_[np.ones(10), np.zeros(90)].astype(bool)
    qi = np.repeat(np.arange(10), 10)
    est, lo, hi = cluster_bootstrap_rate(flags, qi, n_resamples=2000, seed=0)
    assert est == 0.1 and lo == 0.0 and hi >= 0.2  # one whole query: wide, as it should be
    w_lo, w_hi = wilson_interval(10, 100)
    assert hi - lo > w_hi - w_lo  # rows of a query are not independent


def test_generated_query_ids_are_not_compared(letor):
    """LightGBM-style files number queries 0..n-1 in *each* file: those ids are positions, not
    identities. Flagged by the loader (meta qid_generated), they are not compared; real ids are."""
    def renumber(d: RankingDataset, generated: bool) -> RankingDataset:
        return d._replace(qid=d.query_index).with_meta(qid_generated=generated)

    r = run(Split(renumber(letor.train, True), renumber(letor.test, True)))
    assert r.status == "PASS" and any("generated by the loader" in n for n in r.notes)
    # copies are still found by content
    copied = plant_copied_queries(Split(renumber(letor.train, True), renumber(letor.test, True)), 0.2, seed=1)
    assert cond(run(copied), "reappears in training under another id").status == "FAIL"
    # without the flag the same ids are taken at their word: every test id also names a training query
    r = run(Split(renumber(letor.train, False), renumber(letor.test, False)))
    assert cond(r, "query id or normalised query text").status == "FAIL"


def test_measure_from_stored_trial_results(clean):
    """Resume path: trial results come back from the store as JSON; measure gives the same answer."""
    import json

    split = plant_near_duplicates(clean, 0.1, seed=2)
    ctx = AuditContext(split, ModelSpec(LINEAR), AuditConfig(audits={"isolation": {"near_dup_permutations": 199}}))
    audit = IsolationAudit()
    raw = {t.key: audit.run_trial(ctx, t) for t in audit.plan(ctx)}
    stored = {k: json.loads(json.dumps(v, allow_nan=False)) for k, v in raw.items()}
    from auditor.audits.base import jsonable

    assert jsonable(audit.measure(ctx, stored).measurements) == jsonable(audit.measure(ctx, raw).measurements)


def test_single_near_copied_query_is_caught_by_the_copy_rule(clean):
    """One query's worth of rows cannot be significant in a whole-query permutation test, but a
    copy within noise (far closer than any two training queries' rows) is still contamination."""
    r = run(plant_near_duplicates(clean, frac=0.02, noise=0.01, seed=4))
    c = cond(r, "near-copy of a training row")
    assert c.status == "FAIL" and r.status == "FAIL"
    nd = r.measurements["near_duplicates"]
    assert nd["copy_queries"] == 1 and nd["copy_rows"] == 10
    assert nd["p_value"] > 0.05  # the permutation test alone could not have called it
    assert r.measurements["contamination"]["rows"] == 10
    # on clean data no row comes anywhere near the copy threshold
    assert cond(run(clean), "near-copy").status == "PASS"


# --------------------------------------------------------------------------- search above the exact threshold
def test_candidate_search_finds_the_planted_pairs_the_exact_search_finds(clean):
    """A threshold of 0 forces the candidate forest; the exact search is the oracle."""
    split = plant_near_duplicates(clean, frac=0.2, noise=0.01, seed=4)
    a = IsolationAudit()
    res = {}
    for mode, thr in (("exact", 10**9), ("forest", 0)):
        ctx = AuditContext(split, ModelSpec(LINEAR), AuditConfig(audits={"isolation": {
            "near_dup_exact_max_rows": thr, "near_dup_trees": 4, "near_dup_leaf_rows": 256}}))
        (t,) = [t for t in a.plan(ctx) if t.key == "near_dup"]
        res[mode] = a.run_trial(ctx, t)
    assert res["exact"]["search"]["mode"] == "exact" and res["forest"]["search"]["mode"] == "candidates"
    # the planted pairs: plant_near_duplicates appends the copies of the picked test queries to train, in order
    te = clean.test
    pick = np.random.default_rng(4).choice(te.n_queries, size=int(round(0.2 * te.n_queries)), replace=False)
    rows = np.flatnonzero(np.isin(te.query_index, pick))
    copy = clean.train.n_rows + np.arange(rows.size)
    ex_i, fo_i = np.asarray(res["exact"]["nn_train_row"]), np.asarray(res["forest"]["nn_train_row"])
    found_ex = set(rows[ex_i[rows] == copy].tolist())
    found_fo = set(rows[fo_i[rows] == copy].tolist())
    assert len(found_ex) >= 0.9 * rows.size and found_fo == found_ex
    s_ex, s_fo = np.asarray(res["exact"]["s_test"]), np.asarray(res["forest"]["s_test"])
    assert (s_fo <= s_ex + 1e-12).all()  # candidates can only miss a neighbour, never invent a closer one


def test_candidate_search_verdict_and_guarantee_text(clean):
    r = run(plant_near_duplicates(clean, frac=0.2, noise=0.01, seed=4), near_dup_exact_max_rows=0,
            near_dup_trees=4, near_dup_leaf_rows=256)
    assert cond(r, "near-duplicates").status == "FAIL"
    assert r.measurements["near_duplicates"]["search"].startswith("verified candidates")
    assert any("near-duplicate search: verified candidates" in n for n in r.notes)
    ok = run(clean, near_dup_exact_max_rows=0, near_dup_trees=4, near_dup_leaf_rows=256)
    assert ok.status == "PASS" and ok.measurements["near_duplicates"]["flagged_rows"] == 0
    assert run(clean).measurements["near_duplicates"]["search"].startswith("exact")
