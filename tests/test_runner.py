"""Engine: planning, execution, Holm across audits, verdicts, errors isolated, executors agree."""
import json

import numpy as np
import pytest

from auditor.context import AuditConfig
from auditor.errors import ConfigError, PluginError
from auditor.runner import decide_verdict, resolve_checks, run_audit

MODEL = "rankers:make_linear"


def _run(split, checks, **kw):
    return run_audit(MODEL, train=split.train, test=split.test, checks=checks, **kw)


def test_go_when_everything_passes(fake_audits, small_split):
    run = _run(small_split, ["fake_count"])
    assert run.verdict == "GO" and run.exit_code == 0
    a = run.audit("fake_count")
    assert a["status"] == "PASS" and a["n_trials"] == 4
    assert a["measurements"]["n"] == 4
    json.dumps(run.to_dict(), allow_nan=False)  # strict JSON


def test_no_go_when_a_critical_audit_fails(fake_audits, small_split):
    run = _run(small_split, ["fake_count"], config=AuditConfig(audits={"fake_count": {"fail": True}}))
    assert run.verdict == "NO_GO" and run.exit_code == 1
    assert "fake_count" in run.results["verdict_reason"]


def test_holm_across_gating_audits(fake_audits, small_split):
    # fake_count p=0.01 (fail) and fake_other p=0.6: Holm gives 0.02 and 0.6
    run = _run(small_split, ["fake_count", "fake_other"], config=AuditConfig(audits={"fake_count": {"fail": True}}))
    h = run.results["holm"]
    assert h["audits"] == ["fake_count", "fake_other"]
    assert h["p_adjusted"] == pytest.approx([0.02, 0.6])
    assert run.audit("fake_count")["p_adjusted"] == pytest.approx(0.02)


def test_sub_tests_are_holm_adjusted_together_and_each_gets_its_own_p():
    """Every gating sub-test of the suite is one member of the Holm family; a reported-only test is
    never adjusted, and an audit that does not join Holm keeps its raw p (statsmodels as reference)."""
    from types import SimpleNamespace

    from statsmodels.stats.multitest import multipletests

    from auditor.audits.base import Evidence, SubTest, adjust_p_values

    two = Evidence({}, tests=[SubTest("one", 0.01), SubTest("two", 0.04), SubTest("shown", 0.001, gates=False)])
    single = Evidence({}, p_value=0.03)
    alone = Evidence({}, p_value=0.2)
    gating, not_gating = SimpleNamespace(gating=True), SimpleNamespace(gating=False)
    record = adjust_p_values({"a": gating, "b": gating, "c": not_gating}, {"a": two, "b": single, "c": alone})
    ref = multipletests([0.01, 0.04, 0.03], method="holm")[1]
    assert record["audits"] == ["a: one", "a: two", "b"] and record["p_raw"] == [0.01, 0.04, 0.03]
    assert record["p_adjusted"] == pytest.approx(ref)
    assert [two.test("one").p_adjusted, two.test("two").p_adjusted, single.p_adjusted] == pytest.approx(ref)
    assert two.test("shown").p_adjusted is None
    # the audit's own p: the smallest of its gating sub-tests, raw and adjusted
    assert two.p_value == 0.01 and two.p_adjusted == pytest.approx(ref[0])
    assert alone.p_adjusted == 0.2
    with pytest.raises(ValueError, match="unique"):
        Evidence({}, tests=[SubTest("x", 0.1), SubTest("x", 0.2)])
    with pytest.raises(ValueError, match="smallest p"):
        Evidence({}, p_value=0.5, tests=[SubTest("x", 0.1)])


def test_crashing_audit_becomes_error_and_run_goes_on(fake_audits, small_split):
    run = _run(small_split, ["fake_count", "fake_other"],
               config=AuditConfig(audits={"fake_count": {"crash_on": 1}}))
    a, b = run.audit("fake_count"), run.audit("fake_other")
    assert a["status"] == "ERROR" and "planted crash" in a["error"]
    assert b["status"] == "PASS"
    assert run.verdict == "INCONCLUSIVE" and run.exit_code == 3


def test_model_failure_is_reported_as_error(fake_audits, small_split):
    run = run_audit("plugins.bad_plugins:make_nan", train=small_split.train, test=small_split.test,
                    checks=["fake_count"])
    a = run.audit("fake_count")
    assert a["status"] == "ERROR"
    assert "non-finite" in a["error"]


def test_quick_overrides_and_user_params(fake_audits, small_split):
    run = _run(small_split, ["fake_count"], quick=True)
    assert run.audit("fake_count")["n_trials"] == 2
    run = _run(small_split, ["fake_count"], quick=True, config=AuditConfig(audits={"fake_count": {"n": 3}}))
    assert run.audit("fake_count")["n_trials"] == 3  # the user's explicit value wins over quick


def test_unknown_checks_and_params_are_usage_errors(fake_audits, small_split):
    with pytest.raises(ConfigError, match="valid: random_label"):
        resolve_checks("random_label,nope")
    with pytest.raises(ConfigError, match="unknown parameter"):
        _run(small_split, ["fake_count"], config=AuditConfig(audits={"fake_count": {"bogus": 1}}))
    with pytest.raises(ConfigError, match="metric"):
        AuditConfig(metric="ndgc@10")


def test_unknown_model_is_a_plugin_error(small_split):
    with pytest.raises(PluginError, match="no model named"):
        run_audit("does-not-exist", train=small_split.train, test=small_split.test)


def test_same_seed_same_results_and_seed_matters(fake_audits, small_split):
    a = _run(small_split, ["fake_count"], seed=1).audit("fake_count")["measurements"]
    b = _run(small_split, ["fake_count"], seed=1).audit("fake_count")["measurements"]
    c = _run(small_split, ["fake_count"], seed=2).audit("fake_count")["measurements"]
    assert a == b
    assert a["noise"] != c["noise"]


def test_local_executor_matches_serial(fake_audits, small_split):
    a = _run(small_split, ["fake_count"], executor="serial").audit("fake_count")["measurements"]
    b = _run(small_split, ["fake_count"], executor="local", workers=2).audit("fake_count")["measurements"]
    assert a["noise"] == b["noise"]
    assert a["mean"] == pytest.approx(b["mean"], rel=1e-12)


@pytest.mark.parametrize("audits,verdict", [
    ([("PASS", True), ("WARN", False)], "GO"),
    ([("FAIL", False), ("PASS", True)], "GO"),  # advisory failures never block
    ([("FAIL", True), ("ERROR", True)], "NO_GO"),
    ([("ERROR", False), ("PASS", True)], "INCONCLUSIVE"),
    ([("SKIP", True), ("PASS", True)], "INCONCLUSIVE"),  # a critical audit that could not run: not established
    ([("SKIP", False), ("PASS", True)], "GO"),
    ([("SKIP", True, "not_refittable"), ("PASS", True)], "GO"),  # scoped, see below
    ([("SKIP", True, "missing_input"), ("FAIL", True)], "NO_GO"),
])
def test_verdict_rules(audits, verdict):
    rows = [{"name": f"a{i}", "status": s[0], "critical": s[1], "summary": "x",
             **({"skip_cause": s[2]} if len(s) > 2 else {})} for i, s in enumerate(audits)]
    assert decide_verdict(rows)[0] == verdict


def test_plain_go_only_when_every_audit_ran():
    from auditor.verdict import build_scope, verdict_label

    rows = [{"name": "isolation", "status": "PASS", "critical": True, "summary": "x"}]
    scope = build_scope(rows, left_out=["random_label", "significance"],
                        suite=["random_label", "isolation", "significance"])
    v, reason = decide_verdict(rows, scope)
    assert (v, verdict_label(v, scope)) == ("GO", "GO for isolation only \u2014 1 of 3 audits")
    assert reason.startswith("The isolation audit, the only one that ran, passed") and "all 1 audits" not in reason
    assert "left out by --checks: random_label, significance" in reason
    rows.append({"name": "significance", "status": "SKIP", "critical": True, "summary": "No baseline.",
                 "skip_cause": "missing_input", "skip_fix": "add --baseline MODEL"})
    v, reason = decide_verdict(rows, build_scope(rows, left_out=["random_label"],
                                                 suite=["random_label", "isolation", "significance"]))
    assert v == "INCONCLUSIVE" and "add --baseline MODEL" in reason
    full = [{"name": n, "status": "PASS", "critical": True, "summary": "x"} for n in ("a", "b")]
    scope = build_scope(full, suite=["a", "b"])
    assert decide_verdict(full, scope) == ("GO", "All 2 audits ran and passed their critical conditions.")
    assert verdict_label("GO", scope) == "GO"


def test_model_that_cannot_be_retrained_is_used_as_delivered(small_split):
    """make_flagged declares refittable = False: fit is never called (it would raise), the scoring
    audits run, the retraining ones are SKIPPED and the verdict is scoped."""
    run = run_audit("plugins.pretrained:make_flagged", train=small_split.train, test=small_split.test,
                    checks=["random_label", "feature_ablation", "stability"], quick=True)
    st = {a["name"]: a["status"] for a in run.audits}
    assert st == {"random_label": "SKIP", "feature_ablation": "PASS", "stability": "SKIP"}
    assert all(a["skip_cause"] == "not_refittable" for a in run.audits if a["status"] == "SKIP")
    assert run.verdict == "GO" and run.results["scope"]["complete"] is False
    assert run.results["verdict_label"].startswith("GO for feature_ablation only")


def test_inconclusive_flag_gives_inconclusive():
    rows = [{"name": "significance", "status": "WARN", "critical": True, "summary": "x", "inconclusive": True}]
    v, reason = decide_verdict(rows)
    assert v == "INCONCLUSIVE" and "significance" in reason


@pytest.mark.slow
def test_ray_executor_matches_serial(fake_audits, small_split):
    pytest.importorskip("ray")
    a = _run(small_split, ["fake_count"], executor="serial").audit("fake_count")["measurements"]
    b = _run(small_split, ["fake_count"], executor="ray", workers=2).audit("fake_count")["measurements"]
    assert a["noise"] == b["noise"]
    assert a["mean"] == pytest.approx(b["mean"], rel=1e-12)


def test_an_audits_memo_is_released_after_its_last_trial(fake_audits, small_split, monkeypatch):
    """Derived data an audit memoised (e.g. synthetic_shift's pooled matrix) is dropped once its
    trials are done, not held while the other audits run."""
    from auditor import context as C
    import fake_audits as F

    seen = []
    real_run = F.CountingAudit.run_trial

    def run_trial(self, ctx, trial):
        ctx.memo((self.name, "big"), lambda: bytearray(10))
        seen.append((self.name, sorted(k[0] for k in ctx._memo)))
        return real_run(self, ctx, trial)

    monkeypatch.setattr(F.CountingAudit, "run_trial", run_trial)
    released = []
    real_release = C.AuditContext.release
    monkeypatch.setattr(C.AuditContext, "release",
                        lambda self, audit: released.append((audit, real_release(self, audit))) or 0)
    _run(small_split, ["fake_count", "fake_other"])
    assert released == [("fake_count", 1), ("fake_other", 1)]
    # fake_other's trials (run after fake_count's) no longer see fake_count's entry
    assert all(keys == ["fake_other"] for name, keys in seen if name == "fake_other")


def _sig(**kw):
    m = {"metric": "ndcg@10", "n_queries": 30, "candidate_mean": 0.52, "baseline_mean": 0.50, "mean_delta": 0.02,
         "sd_delta": 0.05, "ci_low": 0.004, "ci_high": 0.037, "ci_level": 0.95, "min_gain": 0.0, "alpha": 0.05,
         "mde": 0.024, "mde_power": 0.8}
    m.update(kw.pop("m", {}))
    return {"name": "significance", "status": "WARN", "critical": True, "inconclusive": True, "summary": "x",
            "p_value": 0.035, "p_adjusted": 0.07, "measurements": m, "config": {"min_queries": 10}, **kw}


def test_claim_names_the_test_that_decided_a_missing_gain():
    from auditor.stats import power_paired
    from auditor.verdict import build_claim, claim_followups

    c = build_claim([_sig()])
    assert c["decided_by"] == ("no demonstrated gain: the 95% CI excludes 0 (lower bound +0.0040) but the "
                               "Holm-adjusted t-test p = 0.07 is not below \u03b1 = 0.05")
    assert (c["candidate"], c["baseline"], c["delta"]) == (0.52, 0.50, 0.02)
    k = c["queries_needed"]                                          # for the observed gain 0.02
    assert power_paired(0.02, 0.05, k) >= 0.8 > power_paired(0.02, 0.05, k - 1) and k > 30
    assert any(f"about {k} test queries (here 30)" in s for s in claim_followups(c))
    c = build_claim([_sig(p_adjusted=0.01, m={"ci_low": -0.001})])
    assert "t-test p = 0.01 is below \u03b1 = 0.05 but the 95% CI reaches down to -0.0010" in c["decided_by"]
    c = build_claim([_sig(status="FAIL", inconclusive=False, p_adjusted=0.9, m={"mean_delta": -0.01,
                                                                             "ci_low": -0.03})])
    assert c["decided_by"].startswith("no demonstrated gain: the candidate is not better than the baseline")
    c = build_claim([_sig(status="PASS", inconclusive=False, p_adjusted=0.001)])
    assert c["demonstrated"] and c["decided_by"] is None and c["queries_needed"] is None
    assert build_claim([{"name": "significance", "status": "SKIP", "critical": True}]) is None


def test_headlines_rank_direct_evidence_first():
    from auditor.verdict import headline

    iso = {"name": "isolation", "status": "FAIL", "critical": True, "summary": "Overlap found; details.",
           "measurements": {"n_test_rows": 100, "n_test_queries": 10, "exact_duplicates": {"same_query_rows": 25},
                            "query_overlap": {"by_qid": 0, "by_text": 3, "by_content": 0},
                            "contamination": {"rows": 30}}}
    assert headline(iso) == {"text": "25.0% of test rows (25 of 100) are exact copies of training rows, and 3 of "
                                     "10 test queries also occur in training", "directness": 1}
    iso["measurements"]["exact_duplicates"]["same_query_rows"] = 0
    assert headline(iso)["text"] == "3 of 10 test queries (30.0% of test rows) also occur in training"
    iso["measurements"] = {}                                          # nothing countable: the summary, ranked last
    assert headline(iso) == {"text": "Overlap found", "directness": 5}
    rl = {"name": "random_label", "status": "FAIL", "critical": True, "summary": "Above chance (B): 0.6 vs 0.5."}
    fa = {"name": "feature_ablation", "status": "FAIL", "critical": True, "summary": "Proxy.",
          "measurements": {"proxy": {"suspects": ["v.3"], "candidates": [{"name": "v.3", "solo_share": 0.99,
                                                                          "dependence": 0.8}]}}}
    assert headline(fa)["text"] == ("column v.3 is a label proxy: alone it ranks almost perfectly (0.99 of the ideal "
                                    "gain over chance) and permuting it removes 80% of the model's gain")
    assert headline({**rl, "status": "PASS"}) is None
    verdict, reason = decide_verdict([rl, fa])                        # table order: random_label first
    assert verdict == "NO_GO" and reason.startswith("Column v.3 is a label proxy")
    assert reason.endswith("Critical audits failed: feature_ablation, random_label.")
