"""Random-label audit: known answers both ways, on planted data and on the real LETOR sample.

Leaks are caught:
- 30% of test queries copied into train + a memorising ranker -> variant B FAIL (the V2.0
  pattern: memorised rows survive random labels); LETOR + LightGBM the same;
- a label-proxy column read by a model that ignores its labels -> variant A WARNs (label-free
  ranking strength, scores identical with true and permuted labels) and the suite is NO_GO
  through the feature-ablation audit's proxy scan.
Clean models with a strong label-free prior are not called leaky:
- the issue's two-layer MLP and the ridge scaffold on LETOR, ridge with 10 seeds, and ridge /
  MLP on a simulated split where a fixed feature direction ranks well -> never FAIL;
- a fixed rule (the feature sum) -> WARN, not FAIL.
A PASS is earned: B's upper confidence bound must lie inside the margin, else INCONCLUSIVE
with the number of test queries that would decide; ``--quick`` changes nothing B decides.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auditor.audits.base import Evidence, SubTest, run_inline
from auditor.audits.random_label import RandomLabelAudit, shared_key_labels
from auditor.context import AuditConfig, AuditContext
from auditor.data import RankingDataset, Split
from auditor.errors import ConfigError
from auditor.informative import informative_queries
from auditor.metrics import expected_random
from auditor.registry import ModelSpec
from auditor.prior_models import make_prior_split
from rankers import LinearRanker, make_synthetic_split, plant_copied_queries, plant_label_proxy

from planting import with_columns

LINEAR = "rankers:make_linear"
MEMO = "rankers:make_memorizer"
MLP = "auditor.prior_models:make_mlp"
RULE = "auditor.prior_models:make_fixed_direction"
LGBM = str(Path(__file__).resolve().parents[1] / "examples" / "plugins" / "lightgbm_ranker.py") + ":make_model"




@pytest.fixture(scope="module")
def clean() -> Split:
    return make_synthetic_split(n_train_queries=150, n_test_queries=60, n_items=10, seed=21)


def run(split: Split, model: str = LINEAR, quick: bool = False, seed: int = 0, model_params=None, **params):
    cfg = AuditConfig(quick=quick, audits={"random_label": {"sign_flip_resamples": 2000, "bootstrap": 1000,
                                                            "null_samples": 200, **params}})
    return run_inline(RandomLabelAudit(), AuditContext(split, ModelSpec(model, model_params or {}), cfg, seed=seed))


def cond(res, variant: str):
    hits = [c for c in res.conditions if f"(variant {variant}" in c.name]
    assert len(hits) == 1
    return hits[0]


# --------------------------------------------------------------------------- known answers
def test_clean_split_linear_passes(clean):
    r = run(clean)
    assert r.status == "PASS", [(c.name, c.observed) for c in r.conditions]
    assert cond(r, "A").status == "PASS" and cond(r, "B").status == "PASS"
    m = r.measurements
    assert m["n_seeds"] == 3 and r.n_trials == 6  # true-label fit + 3 seeds + 2 variant-B shuffles
    assert m["variant_b"]["repeats"] == 2
    # B at chance: the CI of the excess covers 0 and is narrow; A (label-free strength) is reported, and the
    # ridge's ranking does depend on its labels
    assert m["variant_b"]["ci_low"] < 0.0 < m["variant_b"]["ci_high"]
    assert m["variant_a"]["labels_ignored"] is False and len(m["variant_a"]["seed_excess"]) == 3
    # the model does learn on the true labels: the test is not vacuous
    assert m["true_labels"]["excess"] > 0.1 and m["true_labels"]["p_value"] < 1e-6
    assert m["variant_b"]["n_shared_keys"] == 0
    # the PASS is earned: B's upper bound lies inside the named margin, and the summary says so
    b = m["variant_b"]
    assert b["upper_bound"] < b["margin"] == pytest.approx(0.2 * b["headroom"])
    assert not r.inconclusive and "rules out an excess of" in r.summary
    assert "stay at chance" not in r.summary and "not a leak test" in r.summary


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


def test_label_proxy_read_without_learning_warns_here_and_fails_the_suite(clean):
    """A model that ignores its labels and ranks by a label-proxy column looks exactly like a fixed rule
    to the random-label test (a label-free prior): variant A WARNs, nothing here FAILs; the proxy
    column itself is the feature-ablation audit's, and the suite is NO_GO through it."""
    from auditor.runner import run_audit

    split = plant_label_proxy(clean, strength=2.0, seed=3)
    r = run(split, model="test_audit_random_label:make_proxy_reader")
    a = cond(r, "A")
    assert a.status == "WARN" and r.status == "WARN" and not r.inconclusive
    assert r.measurements["variant_a"]["excess"] > 0.2 and r.measurements["variant_a"]["labels_ignored"]
    assert "identical with true and permuted training labels" in a.observed
    assert any("label-proxy scan" in s for s in r.next_steps)
    assert "is above chance" in r.summary and "not a leak test" in r.summary
    # test labels are random under B, the proxy encodes the true ones: B stays at chance
    assert cond(r, "B").status == "PASS"
    run_ = run_audit("test_audit_random_label:make_proxy_reader", train=split.train, test=split.test,
                     checks="random_label,feature_ablation",
                     config=AuditConfig(audits={"random_label": {"sign_flip_resamples": 2000, "bootstrap": 1000,
                                                                 "null_samples": 200}}))
    st = {x["name"]: x["status"] for x in run_.audits}
    assert run_.verdict == "NO_GO" and st["feature_ablation"] == "FAIL" and st["random_label"] == "WARN"


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


# --------------------------------------------------------------------------- clean models with a label-free prior
@pytest.mark.slow
def test_letor_mlp_and_ridge_scaffold_are_not_called_leaky(letor):
    """The issue's cases: a two-layer MLP (MSE, 15 epochs) was NO_GO through variant A (excess +0.116),
    the init-plugin ridge scaffold sat on the edge. Both are clean; B decides, and its PASS is earned."""
    for model, kw in ((MLP, {"n_seeds": 3}), (LINEAR, {"n_seeds": 10})):
        r = run(letor, model=model, **kw)
        assert r.status != "FAIL" and cond(r, "B").status == "PASS", (model, r.summary)
        assert not r.inconclusive
        a = r.measurements["variant_a"]
        assert len(a["seed_excess"]) == kw["n_seeds"] and "Label-free ranking strength" in r.summary
        assert r.measurements["true_labels"]["excess"] > 0.08  # both learn from the true labels


def test_fixed_direction_data_is_not_called_leaky():
    """Simulated: the feature sum ranks well and query base rates follow it. Ridge and an MLP never FAIL;
    a fixed rule (the feature sum itself) WARNs as a label-free prior and says it ignores its labels."""
    split = make_prior_split(seed=4)
    runs = {model: run(split, model=model, seed=1) for model in (LINEAR, MLP)}
    for model, r in runs.items():
        assert r.status != "FAIL" and cond(r, "B").status == "PASS", (model, r.summary)
    rule = run(split, model=RULE)
    assert rule.status == "WARN" and cond(rule, "A").status == "WARN" and cond(rule, "B").status == "PASS"
    assert rule.measurements["variant_a"]["labels_ignored"]
    assert rule.measurements["variant_a"]["share_of_true_excess"] == pytest.approx(1.0)
    assert any("fixed rule" in s for s in rule.next_steps)
    # a learner whose label-free strength is far above chance is reported, not flagged
    mlp = runs[MLP]
    assert mlp.measurements["variant_a"]["ci_low"] > 0.05 and cond(mlp, "A").status == "PASS"
    assert "is above chance" in mlp.summary


def _within_query_shuffle(d: RankingDataset, rng: np.random.Generator) -> np.ndarray:
    qidx = np.repeat(np.arange(d.n_queries), np.diff(d.query_offsets))
    return d.labels[np.lexsort((rng.random(d.n_rows), qidx))]


def test_within_query_shuffle_leaves_query_base_rates_learnable():
    """Why variant A permutes labels across all rows: shuffled *within* queries, labels keep each query's
    base rate, which ridge learns from query-level features and turns into a held-out ranking."""
    split = make_prior_split(seed=4)
    tr, te = split.train, split.test
    ctx = AuditContext(split, ModelSpec(LINEAR))
    chance = np.nanmean(expected_random("ndcg@10", te.labels, te.query_offsets))

    def excess(y):
        s = ctx.score(ctx.fit(0, train=tr.with_labels(y)), te)
        return float(np.nanmean(ctx.metric_values(te, s))) - chance

    within = [excess(_within_query_shuffle(tr, np.random.default_rng(k))) for k in range(3)]
    assert min(within) > 0.1  # every seed, far above chance: the old variant A's false FAIL
    r = run(split)
    assert abs(r.measurements["variant_a"]["excess"]) < 0.1 and cond(r, "A").status == "PASS"


# --------------------------------------------------------------------------- decision rules
def _evidence(excess: float, p: float, *, upper: float | None = None, margin: float = 0.07,
              ci: tuple[float, float] | None = None, a_excess: float | None = None, a_p: float = 0.5) -> Evidence:
    lo, hi = ci or (excess - 0.002, excess + 0.002)
    b = {"n": 50, "mean_metric": 0.5 + excess, "mean_chance": 0.5, "excess": excess, "ci_low": lo, "ci_high": hi,
         "p_value": p, "p_min_effect": p, "p_sign_flip": p, "repeats": 2, "t": 5.0, "shared_test_rows": 0, "upper_bound": hi if upper is None else upper,
         "margin": margin, "margin_share": 0.2, "headroom": margin / 0.2, "bound_level": 0.95, "sd": 0.11,
         "queries_needed": 22}
    m: dict = {"variant_b": b, "p_gate": p}
    if a_excess is not None:
        m["variant_a"] = {"n": 50, "mean_metric": 0.5 + a_excess, "mean_chance": 0.5, "excess": a_excess,
                          "ci_low": a_excess - 0.05, "ci_high": a_excess + 0.05, "p_value": a_p,
                          "seed_excess": [a_excess] * 3, "labels_ignored": False}
    tests = [SubTest("variant_b", p)]
    if a_excess is not None:
        tests.append(SubTest("variant_a", a_p, gates=False))
    return Evidence(measurements=m, tests=tests)


def _decide(ctx: AuditContext, ev: Evidence, p_adj: float | None):
    """decide as the runner calls it: variant B's sub-test carries the p the suite's Holm gave it."""
    if p_adj is not None:
        ev.test("variant_b").p_adjusted = p_adj
    return RandomLabelAudit().decide(ctx, ev, ev.p_adjusted)


def test_fail_needs_an_excess_shown_above_the_floor(clean):
    ctx = AuditContext(clean, ModelSpec(LINEAR))
    # the gating p tests "excess > min_excess": small after Holm -> FAIL
    d = _decide(ctx, _evidence(0.03, 1e-6), 1e-6)
    assert [c.status for c in d.conditions] == ["FAIL"] and not d.inconclusive
    # not shown above the floor after Holm, bounded inside the margin -> PASS, and the summary does not
    # call an excess whose CI lies above zero "at chance"
    # (the raw p 0.03 is below alpha: decide judges the adjusted p it is handed, never the raw one)
    d = _decide(ctx, _evidence(0.03, 0.03, upper=0.05, ci=(0.005, 0.055)), 0.09)
    assert [c.status for c in d.conditions] == ["PASS"] and not d.inconclusive
    assert "at chance" not in d.summary and "adjusted p = 0.09" in d.summary
    # ... nor "no sign" of shared rows: it names the small excess and points to the isolation audit
    assert d.summary.startswith("A small excess, below the FAIL floor") and "No sign" not in d.summary
    assert any("isolation audit" in s for s in d.next_steps)
    # the floor is configurable and is what FAIL has to clear: copied rows memorised (excess ~0.2) do not
    # FAIL a floor of 0.5, and cannot PASS either
    split = plant_copied_queries(clean, 0.3, seed=1)
    assert run(split, model=MEMO, n_seeds=1).status == "FAIL"
    r = run(split, model=MEMO, n_seeds=1, min_excess=0.5)
    assert r.status == "WARN" and r.inconclusive and r.measurements["variant_b"]["p_value"] < 1e-3


def test_fail_floor_scales_with_the_headroom(clean):
    """B's FAIL floor is max(min_excess, min_excess_share x headroom): memorised copies (excess ~0.2)
    clear a twentieth of the headroom and FAIL; against nine tenths of it they cannot, and the gating
    p is the t-test against exactly that floor."""
    from scipy import stats as st

    split = plant_copied_queries(clean, 0.3, seed=1)
    r = run(split, model=MEMO, n_seeds=1)
    b = r.measurements["variant_b"]
    assert r.status == "FAIL"
    assert b["min_effect"] == pytest.approx(max(0.01, 0.05 * b["headroom"]))
    high = run(split, model=MEMO, n_seeds=1, min_excess_share=0.9)
    hb = high.measurements["variant_b"]
    assert hb["min_effect"] == pytest.approx(0.9 * hb["headroom"]) and hb["min_effect"] > hb["excess"]
    assert high.status != "FAIL"
    # the same per-query excesses, tested against the larger floor: the t statistic moves by the floor
    t_lo = st.t.isf(b["p_min_effect"], b["n"] - 1)
    t_hi = st.t.isf(hb["p_min_effect"], hb["n"] - 1)
    se = (b["excess"] - b["min_effect"]) / t_lo
    assert t_hi == pytest.approx((hb["excess"] - hb["min_effect"]) / se, rel=1e-4)


def test_pass_is_earned_or_inconclusive(clean):
    ctx = AuditContext(clean, ModelSpec(LINEAR))
    # not significant, upper bound outside the margin: INCONCLUSIVE with the queries that would decide
    d = _decide(ctx, _evidence(0.03, 0.2, upper=0.09, ci=(-0.01, 0.08)), 0.2)
    assert d.inconclusive and d.status == "WARN" and [c.status for c in d.conditions] == ["WARN"]
    assert "cannot bound" in d.summary and any("about 22 informative test queries" in s for s in d.next_steps)
    # a demonstrated leak stays a FAIL whatever the bound
    d = _decide(ctx, _evidence(0.03, 1e-4, upper=0.09), 1e-4)
    assert not d.inconclusive and d.conditions[0].status == "FAIL"
    # variant A never FAILs: a strong label-free prior is reported (B at chance, A above it) ...
    d = _decide(ctx, _evidence(0.0, 0.5, upper=0.03, ci=(-0.02, 0.02), a_excess=0.2, a_p=1e-6), 0.5)
    assert [c.status for c in d.conditions] == ["PASS", "PASS"] and not d.inconclusive
    assert "is at chance" in d.summary and "is above chance" in d.summary
    # ... and WARNs only when the scores ignore the training labels while ranking above chance
    ev = _evidence(0.0, 0.5, upper=0.03, ci=(-0.02, 0.02), a_excess=0.2, a_p=1e-6)
    ev.measurements["variant_a"]["labels_ignored"] = True
    ev.measurements["true_labels"] = {"mean_metric": 0.7, "excess": 0.2, "p_value": 1e-9}
    d = _decide(ctx, ev, 0.5)
    assert [c.status for c in d.conditions] == ["PASS", "WARN"] and not d.inconclusive
    # without variant B nothing bounds a leak: INCONCLUSIVE, never PASS
    ctx_b = AuditContext(clean, ModelSpec(LINEAR), AuditConfig(audits={"random_label": {"variant_b": False}}))
    ev = _evidence(0.0, 0.5, a_excess=0.0)
    del ev.measurements["variant_b"]
    ev.tests = [t for t in ev.tests if t.name != "variant_b"]
    d = _decide(ctx_b, ev, None)
    assert d.inconclusive and "variant_b" in d.summary


def test_too_few_test_queries_is_inconclusive_with_the_number_that_decides():
    split = make_synthetic_split(n_train_queries=150, n_test_queries=6, n_items=10, seed=22)
    r = run(split, n_seeds=2)
    assert r.inconclusive and r.status == "WARN" and cond(r, "B").status == "WARN"
    need = r.measurements["variant_b"]["queries_needed"]
    assert need > 6 and any(f"about {need} informative test queries" in s for s in r.next_steps)


def test_quick_never_turns_the_decision_into_a_pass(clean):
    """--quick lowers A's seeds and the reported resamples; B's decision (one fit, t-test, t bound) is
    the default run's: a FAIL stays a FAIL, an INCONCLUSIVE stays INCONCLUSIVE."""
    for split, model in ((plant_copied_queries(clean, 0.3, seed=1), MEMO),
                         (make_synthetic_split(n_train_queries=150, n_test_queries=6, n_items=10, seed=22), LINEAR)):
        full, quick = run(split, model=model), run(split, model=model, quick=True)
        assert (quick.status, quick.inconclusive) == (full.status, full.inconclusive)
        for k in ("p_value", "p_min_effect", "upper_bound", "excess"):
            assert quick.measurements["variant_b"][k] == full.measurements["variant_b"][k]
        assert len(quick.measurements["variant_a"]["seed_excess"]) == 2


def test_quick_mode_and_bad_config(clean):
    ctx = AuditContext(clean, ModelSpec(LINEAR), AuditConfig(quick=True))
    assert len([t for t in RandomLabelAudit().plan(ctx) if t.key.startswith("A")]) == 2
    with pytest.raises(ConfigError, match=r"n_seeds: expected an integer >= 1, got 0"):  # when the config is built
        AuditConfig(audits={"random_label": {"n_seeds": 0}})
    ctx = AuditContext(clean, ModelSpec(LINEAR), AuditConfig(audits={"random_label": {"variant_b": False}}))
    assert "B" not in [t.key for t in RandomLabelAudit().plan(ctx)]
    with pytest.raises(ConfigError, match=r"b_repeats: expected an integer >= 1, got 0"):
        AuditConfig(audits={"random_label": {"b_repeats": 0}})


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
    no_rel = sum(1 for s in te.query_slices if te.labels[s].max() <= 0)
    single_or_tied = sum(1 for s in te.query_slices if te.labels[s].max() > 0 and np.unique(te.labels[s]).size == 1)
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
    for s in split.test.query_slices:
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
    # B's minimum-effect test is the one gating sub-test; A's test over seeds is reported beside it
    assert [(t.name, t.gates) for t in a.tests] == [("variant_b", True), ("variant_a", False)]
    assert a.test("variant_b").p_value == a.measurements["variant_b"]["p_min_effect"] == a.p_value
    assert a.test("variant_a").p_value == a.measurements["variant_a"]["p_value"]


def _string_key_labels(train, test, rng, min_share=0.5):
    """Reference for variant B's shuffle: the (query, item) keys as strings, ``np.unique`` over them."""
    from auditor.rowid import item_keys, query_identity, row_hashes

    h_tr, h_te = row_hashes(train), row_hashes(test)
    tr_q, te_q, _ = query_identity(train, test, min_share=min_share, train_hash=h_tr, test_hash=h_te)
    q_rows = np.concatenate([tr_q[train.query_index], te_q[test.query_index]])
    keys = np.char.add(np.char.add(q_rows, "\x1f"), np.concatenate([item_keys(train, h_tr), item_keys(test, h_te)]))
    labels = np.concatenate([train.labels, test.labels])
    uniq, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    _, kq = np.unique(q_rows[first], return_inverse=True)
    order = np.lexsort((rng.random(uniq.size), kq))
    new = np.empty(uniq.size)
    new[np.argsort(kq, kind="stable")] = labels[first][order]
    return new[inv][:train.n_rows], new[inv][train.n_rows:]


@pytest.mark.parametrize("qid_prefix", ["", "a\t"])
def test_shared_key_labels_match_the_string_keys_without_item_ids(clean, qid_prefix):
    # rows keyed by their hash (no item ids): integer keys must give the very shuffle the key
    # strings "query\x1fr:<hash>" give -- copied queries (content match), a row duplicated
    # inside train, and query ids with a control character (the string path) included
    tr = with_columns(clean.train, item_id=None)
    tr = tr.take(np.concatenate([[0, 1], np.arange(tr.n_rows)]))  # two rows of query 0 twice
    split = plant_copied_queries(Split(tr, with_columns(clean.test, item_id=None)), 0.3, seed=2)
    if qid_prefix:
        split = Split(*(d._replace(qid=np.char.add(qid_prefix, d.qid.astype(str))) for d in (split.train, split.test)))
    for seed in range(3):
        y_tr, y_te, info = shared_key_labels(split.train, split.test, np.random.default_rng(seed))
        r_tr, r_te = _string_key_labels(split.train, split.test, np.random.default_rng(seed))
        np.testing.assert_array_equal(y_tr, r_tr)
        np.testing.assert_array_equal(y_te, r_te)
    assert info["shared_test_rows"] > 0


def test_row_hash_keys_sort_as_their_decimal_strings():
    from auditor.audits.random_label import _decimal_order_keys

    rng = np.random.default_rng(0)
    h = np.concatenate([np.array([0, 1, 9, 10, 19, 2, 100, 1000000000, 999999999, 10**19, 2**64 - 1, 10**18,
                                  1234567890, 12345678901, 123456789, 12345678900, 1234567890000000000],
                                 dtype=np.uint64),
                        rng.integers(0, 2**63, 500, dtype=np.uint64) * np.uint64(2),
                        rng.integers(0, 10**6, 200).astype(np.uint64)])
    hi, lo, digits = _decimal_order_keys(h)
    got = h[np.lexsort((digits, lo, hi))]
    want = np.array(sorted(h.tolist(), key=str), dtype=np.uint64)
    np.testing.assert_array_equal(got, want)
