"""Metrics against trec_eval's own outputs, ir_measures / ranx cases, a brute-force reference and properties."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor import metrics as M
from auditor.evaluate import evaluate_run, evaluate_tables
from auditor.loaders import read_qrels, read_run

DATA = Path(__file__).resolve().parent / "data"
TE = DATA / "trec_eval"
KS = (5, 10, 15, 20, 30, 100, 200, 500, 1000)


# --------------------------------------------------------------------------- golden-file helpers
def _read_trec_eval_out(path: Path) -> dict[tuple[str, str], float]:
    """trec_eval -q output: {(measure, qid): value} for numeric measures."""
    out = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        try:
            out[(parts[0], parts[1])] = float(parts[2])
        except ValueError:
            pass
    return out


def _trec_to_ours() -> dict[str, str]:
    m = {"map": "map", "recip_rank": "mrr", "ndcg": "ndcg", "set_recall": "recall"}
    for k in KS:
        m[f"P_{k}"] = f"p@{k}"
        m[f"ndcg_cut_{k}"] = f"ndcg@{k}"
        m[f"map_cut_{k}"] = f"map@{k}"
        m[f"recall_{k}"] = f"recall@{k}"
    return m


def _check_golden(gold: dict, ev, mapping: dict[str, str], *, per_query_only: set[str] | None = None) -> int:
    """Compare every (measure, qid) in ``gold`` that we compute; returns how many were checked."""
    checked = 0
    for (meas, qid), want in gold.items():
        if meas not in mapping or qid == "all":
            continue
        if per_query_only is not None and qid not in per_query_only:
            continue
        got = ev.per_query[mapping[meas]][ev.qids.index(qid)]
        assert abs(got - want) <= 5e-5, (meas, qid, got, want)
        checked += 1
    return checked


# --------------------------------------------------------------------------- trec_eval golden files
def test_trec_eval_out_test_aq_per_query_and_means():
    """`trec_eval -m all_trec -q qrels.test results.test` (out.test.aq): 37 measures x 3 queries."""
    mapping = _trec_to_ours()
    ev = evaluate_run(TE / "qrels.test", TE / "results.test", list(mapping.values()), no_relevant="zero")
    gold = _read_trec_eval_out(TE / "out.test.aq")
    assert ev.qids == ["301", "302", "303"]
    assert _check_golden(gold, ev, mapping) == 3 * len(mapping)
    for meas, ours in mapping.items():
        assert abs(ev.mean(ours) - gold[(meas, "all")]) <= 5e-5, meas
    # the headline numbers of the design doc
    assert round(ev.mean("ndcg@10"), 4) == 0.3016
    assert round(ev.mean("map"), 4) == 0.1785


def test_trec_eval_relevance_level_2_out_test_aql():
    """`-l2` (relevance threshold 2) on qrels.rel_level, which also has -1 ("unjudged in pool") labels."""
    mapping = _trec_to_ours()
    ev = evaluate_run(TE / "qrels.rel_level", TE / "results.test", list(mapping.values()), rel_threshold=2.0,
                      no_relevant="zero")
    gold = _read_trec_eval_out(TE / "out.test.aql")
    assert _check_golden(gold, ev, mapping) == 3 * len(mapping)
    for meas, ours in mapping.items():
        assert abs(ev.mean(ours) - gold[(meas, "all")]) <= 5e-5, meas


def test_trec_eval_truncated_run_with_c_flag():
    """results.trunc misses query 302; out.test.aqc (-c) averages over all 3 qrels queries with 302 = 0."""
    mapping = _trec_to_ours()
    ev = evaluate_run(TE / "qrels.test", TE / "results.trunc", list(mapping.values()), no_relevant="zero")
    assert ev.qids == ["301", "303"]
    gold = _read_trec_eval_out(TE / "out.test.aqc")
    assert _check_golden(gold, ev, mapping, per_query_only={"301", "303"}) == 2 * len(mapping)
    # -c prints the missing query with zeros
    assert all(gold[(meas, "302")] == 0.0 for meas in mapping)
    n_qrels_queries = 3
    for meas, ours in mapping.items():
        assert abs(np.sum(ev.per_query[ours]) / n_qrels_queries - gold[(meas, "all")]) <= 5e-5, meas
    assert ev.qrels_queries_without_run == ["302"]


def test_complete_flag_reproduces_trec_eval_c_exactly():
    """``complete=True`` is trec_eval -c: 302 evaluated as 0, means over all 3 judged queries."""
    mapping = _trec_to_ours()
    ev = evaluate_run(TE / "qrels.test", TE / "results.trunc", list(mapping.values()), no_relevant="zero",
                      complete=True)
    assert ev.qids == ["301", "302", "303"]
    gold = _read_trec_eval_out(TE / "out.test.aqc")
    assert _check_golden(gold, ev, mapping, per_query_only={"301", "302", "303"}) == 3 * len(mapping)
    for meas, ours in mapping.items():
        assert abs(ev.mean(ours) - gold[(meas, "all")]) <= 5e-5, meas


# --------------------------------------------------------------------------- ir_measures cases
def test_ir_measures_compat_files_against_trec_eval_values():
    """compat.qrels has labels up to 50; values from trec_eval's C code (pytrec_eval), levels 1-3."""
    gold = json.loads((DATA / "derived" / "compat_pytrec_eval.json").read_text())["per_query"]
    mapping = {"map": "map", "recip_rank": "mrr", "ndcg": "ndcg", "set_recall": "recall"}
    for k in (5, 10, 20, 100):
        mapping[f"P_{k}"] = f"p@{k}"
        mapping[f"ndcg_cut_{k}"] = f"ndcg@{k}"
    for k in (10, 100):
        mapping[f"map_cut_{k}"] = f"map@{k}"
    for k in (10, 100, 1000):
        mapping[f"recall_{k}"] = f"recall@{k}"
    qrels, run = read_qrels(DATA / "ir_measures" / "compat.qrels"), read_run(DATA / "ir_measures" / "compat.run")
    checked = 0
    for level in (1, 2, 3):
        ev = evaluate_tables(qrels, run, list(mapping.values()), rel_threshold=level, no_relevant="zero")
        for qid, vals in gold[f"relevance_level_{level}"].items():
            for meas, want in vals.items():
                got = ev.per_query[mapping[meas]][ev.qids.index(qid)]
                assert got == pytest.approx(want, abs=1e-9), (level, qid, meas)
                checked += 1
    assert checked == 3 * 2 * 17


def _write_case(tmp_path: Path, name: str, qrels: str, run: str) -> tuple[Path, Path]:
    q, r = tmp_path / f"{name}.qrels", tmp_path / f"{name}.run"
    q.write_text(qrels)
    r.write_text(run)
    return q, r


def _raw_values(case: dict, measure: str) -> list[float]:
    """Per-query values asserted for ``measure`` in an ir_measures raw_assertions block."""
    i = case["measures_in_order"].index(measure)
    block = case["raw_assertions"][5 * i:5 * i + 5]
    vals = [a for a in block if a.startswith("result[") and ".value" in a]
    return [float(a.split(",")[1]) for a in vals]


def test_ir_measures_pytrec_eval_provider_cases(tmp_path):
    cases = json.loads((DATA / "ir_measures" / "pytrec_eval_provider_cases.json").read_text())["cases"]
    checked = 0
    # nDCG, nDCG@3 (expected rows), negative labels in qrels
    c = cases["test_nDCG"]
    q, r = _write_case(tmp_path, "ndcg", c["qrels_trec"], c["run_trec"])
    ev = evaluate_run(q, r, ["ndcg", "ndcg@3"], no_relevant="zero")
    rows = c["expected_metric_rows"]
    for (qid, want), name in zip(rows[:4], ["ndcg", "ndcg", "ndcg@3", "ndcg@3"]):
        assert ev.per_query[name][ev.qids.index(qid)] == pytest.approx(float(want), abs=1e-5)
        checked += 1
    # P@4 (ir_measures' first measure; judged_only is not ours)
    c = cases["test_P"]
    q, r = _write_case(tmp_path, "p", c["qrels_trec"], c["run_trec"])
    ev = evaluate_run(q, r, ["p@4"], no_relevant="zero")
    for qid, want in c["expected_metric_rows"][:2]:
        assert ev.per_query["p@4"][ev.qids.index(qid)] == pytest.approx(float(want), abs=1e-6)
        checked += 1
    # AP at relevance levels 1 and 2
    c = cases["test_infAP"]
    q, r = _write_case(tmp_path, "ap", c["qrels_trec"], c["run_trec"])
    for measure, level in (("ir_measures.AP", 1), ("ir_measures.AP(rel=2)", 2)):
        ev = evaluate_run(q, r, ["map"], rel_threshold=level, no_relevant="zero")
        for qid, want in zip(["0", "1"], _raw_values(c, measure)):
            assert ev.per_query["map"][ev.qids.index(qid)] == pytest.approx(want, abs=1e-4)
            checked += 1
    # SetR = recall over everything retrieved, levels 1-3
    c = cases["test_SetR"]
    q, r = _write_case(tmp_path, "setr", c["qrels_trec"], c["run_trec"])
    for level in (1, 2, 3):
        ev = evaluate_run(q, r, ["recall"], rel_threshold=level, no_relevant="zero")
        for qid, want in zip(["0", "1"], _raw_values(c, f"ir_measures.SetR(rel={level})")):
            assert ev.per_query["recall"][ev.qids.index(qid)] == pytest.approx(want, abs=1e-6)
            checked += 1
    assert checked == 4 + 2 + 4 + 6


# --------------------------------------------------------------------------- ranx closed forms, ties
def test_ranx_closed_form_ndcg_linear_and_exp():
    cases = json.loads((DATA / "derived" / "ranx_closed_form_ndcg.json").read_text())["cases"]
    # qrels {d2: 5, d4: 4, d5: 3, d10: 2}; each case retrieves 5 docs whose labels are given in order
    seqs = {"pred1_rels_0_5_0_4_3": [0, 5, 0, 4, 3], "pred2_rels_2_3_5_4_0": [2, 3, 5, 4, 0],
            "pred3_no_relevant": [0, 0, 0, 0, 0]}
    judged = [5, 4, 3, 2]
    for name, seq in seqs.items():
        want = cases[name]
        missing = list(judged)
        for v in seq:
            if v in missing:
                missing.remove(v)
        labels = np.array(seq + missing, dtype=float)
        scores = np.array([5, 4, 3, 2, 1] + [0] * len(missing), dtype=float)
        retrieved = np.array([True] * 5 + [False] * len(missing))
        off = np.array([0, labels.size])
        lin = M.ndcg(labels, scores, off, 10, retrieved=retrieved)[0]
        assert lin == pytest.approx(want["ndcg_linear@10"], abs=1e-12)
        if "ndcg_exp2@10" in want:
            ex = M.ndcg(labels, scores, off, 10, retrieved=retrieved, gain="exp")[0]
            assert ex == pytest.approx(want["ndcg_exp2@10"], abs=1e-12)
        disc = 1 / np.log2(np.arange(2, 7))
        assert float(np.dot(seq, disc)) == pytest.approx(want["dcg_linear"], abs=1e-12)


def test_tie_breaking_cases_follow_trec_eval_not_ranx(tmp_path):
    cases = json.loads((DATA / "derived" / "tie_breaking_cases.json").read_text())["cases"]
    names = {"ndcg": "ndcg", "P_1": "p@1", "recip_rank": "mrr", "map": "map"}
    for i, c in enumerate(cases):
        qrels = "".join(f"{q} 0 {d} {r}\n" for q, docs in c["qrels"].items() for d, r in docs.items())
        run = "".join(f"{q} Q0 {d} 1 {s} tag\n" for q, docs in c["run"].items() for d, s in docs.items())
        qp, rp = _write_case(tmp_path, f"tie{i}", qrels, run)
        ev = evaluate_run(qp, rp, list(names.values()), no_relevant="zero")
        for te, ours in names.items():
            assert round(ev.per_query[ours][0], 4) == pytest.approx(c["trec_eval"][te], abs=1e-9), (i, te)


def test_ties_broken_by_item_id_descending_in_arrays():
    labels = np.array([1.0, 0.0, 0.0])
    scores = np.ones(3)
    off = np.array([0, 3])
    te = {"ties": "trec_eval"}
    assert M.reciprocal_rank(labels, scores, off, item_id=np.array(["a", "b", "c"]), **te)[0] == pytest.approx(1 / 3)
    assert M.reciprocal_rank(labels, scores, off, item_id=np.array([9, 2, 3]), **te)[0] == 1.0
    # without ids the earlier row wins
    assert M.reciprocal_rank(labels, scores, off, **te)[0] == 1.0
    # strcmp order, not numeric: "10" < "9"
    assert M.reciprocal_rank(labels, scores, off, item_id=np.array(["10", "9", "1"]), **te)[0] == 0.5
    # the default (every audit) averages over the 3 orders instead: (1 + 1/2 + 1/3) / 3, ids or not
    for ids in (None, np.array(["a", "b", "c"]), np.array([9, 2, 3])):
        assert M.reciprocal_rank(labels, scores, off, item_id=ids)[0] == pytest.approx(11 / 18, abs=1e-15)


# --------------------------------------------------------------------------- brute-force reference
def _ref(spec: M.MetricSpec, labels, scores, ids, retrieved, thr, gain, policy):
    """Plain per-query trec_eval semantics, written for clarity (one query)."""
    n = len(labels)
    rows = [i for i in range(n) if retrieved[i]]
    key = (lambda i: (scores[i], ids[i])) if ids is not None else (lambda i: (scores[i], -i))
    rows.sort(key=key, reverse=True)
    ranked = [labels[i] for i in rows]

    def g(v):
        v = max(v, 0.0)
        return v if gain == "linear" else 2.0 ** v - 1.0

    R = sum(1 for v in labels if v >= thr)
    undef = math.nan if policy == "exclude" else 0.0
    k = spec.k
    if spec.kind == "ndcg":
        kk = n if k is None else k
        dcg = sum(g(v) / math.log2(r + 2) for r, v in enumerate(ranked[:kk]))
        ideal = sorted((g(v) for v in labels), reverse=True)[:kk]
        idcg = sum(v / math.log2(r + 2) for r, v in enumerate(ideal))
        return dcg / idcg if idcg > 0 else undef
    if R == 0:
        return undef
    top = ranked if k is None else ranked[:k]
    rel = [v >= thr for v in top]
    if spec.kind == "p":
        return sum(rel) / k
    if spec.kind == "recall":
        return sum(rel) / R
    if spec.kind == "mrr":
        return next((1.0 / (r + 1) for r, x in enumerate(rel) if x), 0.0)
    if spec.kind == "map":
        hits, s = 0, 0.0
        for r, x in enumerate(rel):
            if x:
                hits += 1
                s += hits / (r + 1)
        return s / R
    raise AssertionError(spec)


SPECS = [M.parse_metric(m) for m in ["ndcg", "ndcg@1", "ndcg@3", "ndcg@10", "map", "map@2", "mrr", "mrr@3",
                                     "p@1", "p@3", "p@20", "recall", "recall@2"]]


def _check_against_ref(labels, scores, offsets, ids, retrieved, thr, gain, policy):
    got = M.evaluate_many(SPECS, labels, scores, offsets, item_id=ids, retrieved=retrieved, gain=gain,
                          rel_threshold=thr, no_relevant=policy, ties="trec_eval")
    ret = np.ones(labels.size, bool) if retrieved is None else retrieved
    for qi in range(offsets.size - 1):
        a, b = offsets[qi], offsets[qi + 1]
        qids = None if ids is None else list(ids[a:b])
        for s in SPECS:
            want = _ref(s, list(labels[a:b]), list(scores[a:b]), qids, list(ret[a:b]), thr, gain, policy)
            g = got[s.name][qi]
            if math.isnan(want):
                assert math.isnan(g), (s.name, qi, g)
            else:
                assert g == pytest.approx(want, abs=1e-12), (s.name, qi, g, want)


@st.composite
def _ranking_problem(draw):
    uniform = draw(st.booleans())
    nq = draw(st.integers(1, 6))
    if uniform:
        size = draw(st.integers(1, 9))
        sizes = [size] * nq
    else:
        sizes = draw(st.lists(st.integers(0, 14), min_size=nq, max_size=nq))
    n = sum(sizes)
    labels = np.array(draw(st.lists(st.sampled_from([-1.0, 0.0, 1.0, 2.0, 3.0]), min_size=n, max_size=n)))
    scores = np.array(draw(st.lists(st.sampled_from([0.0, -0.0, 0.5, 1.0, 2.0, -1.5, -np.inf, 1e300]), min_size=n, max_size=n)))
    id_kind = draw(st.sampled_from(["none", "int", "str"]))
    ids = None
    if id_kind != "none":
        parts = []
        for s in sizes:
            perm = draw(st.permutations(list(range(s))))
            parts.append(np.array(perm, dtype=np.int64) * 7 % 23)
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        if id_kind == "str":
            ids = np.array([f"d{v}" for v in ids], dtype=str) if n else np.zeros(0, str)
    retrieved = None
    if not uniform and draw(st.booleans()):
        retrieved = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return labels, scores, offsets, ids, retrieved


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ranking_problem(), st.sampled_from([1.0, 2.0]), st.sampled_from(["linear", "exp"]),
       st.sampled_from(["exclude", "zero"]))
def test_matches_bruteforce_reference_with_ties_padding_and_unretrieved(problem, thr, gain, policy):
    labels, scores, offsets, ids, retrieved = problem
    _check_against_ref(labels, scores, offsets, ids, retrieved, thr, gain, policy)


@pytest.mark.parametrize("ragged", [False, True])
def test_large_blocks_use_partial_sort_and_still_match_reference(ragged, monkeypatch):
    """Width 100 with k=10 goes through the top-k mask path; heavy ties at the cut-off."""
    rng = np.random.default_rng(5)
    nq = 300
    sizes = rng.integers(40, 160, nq) if ragged else np.full(nq, 100)
    n = int(sizes.sum())
    labels = rng.integers(0, 5, n).astype(float)
    scores = rng.integers(0, 12, n).astype(float)  # many ties
    ids = np.array([f"doc{v:05d}" for v in rng.permutation(n)])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    retrieved = (rng.random(n) < 0.8) if ragged else None
    monkeypatch.setattr(M, "_CHUNK_CELLS", 2048)  # several chunks
    global SPECS
    old = SPECS
    SPECS = [M.parse_metric(m) for m in ["ndcg@10", "p@10", "mrr@10", "map@10", "recall@10", "ndcg@5"]]
    try:
        _check_against_ref(labels, scores, offsets, ids, retrieved, 1.0, "linear", "exclude")
        SPECS = [M.parse_metric(m) for m in ["ndcg", "map", "mrr"]]
        _check_against_ref(labels, scores, offsets, ids, retrieved, 2.0, "exp", "zero")
    finally:
        SPECS = old


def test_threaded_path_gives_identical_values(monkeypatch):
    rng = np.random.default_rng(1)
    nq, w = 2000, 50
    labels = rng.integers(0, 4, nq * w).astype(float)
    scores = rng.random(nq * w).round(2)
    off = np.arange(0, nq * w + 1, w)
    one = M.evaluate_many(["ndcg@10", "map"], labels, scores, off, item_id=np.arange(nq * w))
    monkeypatch.setattr(M, "_THREAD_MIN_ROWS", 1)
    monkeypatch.setattr(M, "_CHUNK_CELLS", 4096)
    two = M.evaluate_many(["ndcg@10", "map"], labels, scores, off, item_id=np.arange(nq * w))
    for k in one:
        np.testing.assert_array_equal(one[k], two[k])


def test_lazy_item_ids_are_fetched_only_for_tied_rows():
    asked = []

    def fetch(rows):
        asked.append(rows.size)
        return np.array([f"d{r:03d}" for r in rows])

    labels = np.array([1.0, 0, 0, 1, 0, 0])
    scores = np.array([3.0, 2, 1, 1, 1, 0])  # query 2 has a tie
    off = np.array([0, 3, 6])
    v = M.evaluate("mrr", labels, scores, off, item_id=M.LazyItemIds(6, fetch), ties="trec_eval")
    assert v.tolist() == [1.0, 0.5]  # d004 > d003 wins the tie
    assert sum(asked) == 3  # one query's row only
    v = M.evaluate("mrr", labels, scores, off, item_id=M.LazyItemIds(6, fetch))
    assert v.tolist() == [1.0, 0.75]  # the relevant row is first or second of the tie, equally likely
    assert sum(asked) == 3  # averaging over ties never needs the ids


# --------------------------------------------------------------------------- edge cases and errors
def test_no_relevant_policy_and_counts():
    labels = np.array([0.0, 0.0, 1.0, 0.0])
    scores = np.array([1.0, 0.0, 0.0, 1.0])
    off = np.array([0, 2, 4])
    ex = M.evaluate_many(["ndcg", "map", "mrr", "p@1", "recall@1"], labels, scores, off)
    for name, v in ex.items():
        assert math.isnan(v[0]) and not math.isnan(v[1]), name
        assert M.mean_metric(v)[1] == 1
    z = M.evaluate_many(["ndcg", "map", "mrr", "p@1"], labels, scores, off, no_relevant="zero")
    assert [z[k][0] for k in z] == [0.0] * 4
    assert z["mrr"][1] == 0.5 and z["p@1"][1] == 0.0


def test_empty_queries_follow_policy():
    off = np.array([0, 0, 2])
    lab, sc = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert math.isnan(M.evaluate("map", lab, sc, off)[0])
    assert M.evaluate("map", lab, sc, off, no_relevant="zero")[0] == 0.0
    assert M.evaluate("map", lab, sc, off)[1] == 0.5


def test_nan_scores_and_labels_raise():
    off = np.array([0, 3])
    with pytest.raises(ValueError, match="NaN"):
        M.ndcg(np.ones(3), np.array([1.0, np.nan, 0.0]), off)
    with pytest.raises(ValueError, match="NaN"):
        M.ndcg(np.ones(3), np.array([-1.0, -np.nan, 0.0]), off)  # NaN with the sign bit set
    with pytest.raises(ValueError, match="NaN"):
        M.ndcg(np.array([1.0, np.nan, 0.0]), np.ones(3), off)
    with pytest.raises(ValueError, match="NaN"):
        M.precision(np.array([1.0, np.nan, 0.0]), np.ones(3), off, 2)
    with pytest.raises(ValueError, match="offsets"):
        M.ndcg(np.ones(3), np.ones(3), np.array([0, 2]))


def test_minus_inf_score_is_ranked_last_but_still_retrieved():
    labels = np.array([0.0, 1.0, 0.0])
    scores = np.array([1.0, -np.inf, 0.5])
    off = np.array([0, 3])
    assert M.reciprocal_rank(labels, scores, off)[0] == pytest.approx(1 / 3)
    # against an unretrieved row, the -inf row still comes first
    lab2 = np.array([0.0, 1.0, 1.0])
    r = M.evaluate("map", lab2, np.array([1.0, -np.inf, 5.0]), off, retrieved=np.array([True, True, False]))
    assert r[0] == pytest.approx((1 / 2) / 2)


def test_compliance_at_1():
    comp = np.array([0, 1, 1, 0, 1, 0])
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.2, 0.3])
    off = np.array([0, 3, 6])
    assert M.compliance_at_1(comp, scores, off).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="compliance"):
        M.evaluate("compliance@1", np.ones(6), scores, off)
    er = M.expected_random("compliance@1", np.ones(6), off, compliance=comp)
    assert er.tolist() == pytest.approx([2 / 3, 1 / 3])


def test_parse_metric_names():
    assert M.parse_metric("ndcg_cut_10") == M.MetricSpec("ndcg", 10)
    assert M.parse_metric("P_5").name == "p@5"
    assert M.parse_metric("recip_rank").name == "mrr"
    assert M.parse_metric("map_cut_100").name == "map@100"
    assert M.parse_metric("recall").name == "recall"
    for bad in ["ndgc@10", "p@0", "compliance@3", "ndcg@"]:
        with pytest.raises(ValueError):
            M.parse_metric(bad)


def test_rank_order_matches_evaluation_order():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, 12).astype(float)
    ids = np.array([f"x{i}" for i in rng.permutation(12)])
    off = np.array([0, 5, 12])
    o = M.rank_order(scores, off, ids)
    for a, b in [(0, 5), (5, 12)]:
        seg = o[a:b]
        assert set(seg) == set(range(a, b))
        keys = [(scores[i], ids[i]) for i in seg]
        assert keys == sorted(keys, reverse=True)


# --------------------------------------------------------------------------- properties
_labels = st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, 4.0]), min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(st.lists(_labels, min_size=1, max_size=5), st.sampled_from(["linear", "exp"]), st.integers(1, 12))
def test_ideal_order_scores_one_and_all_metrics_are_bounded(queries, gain, k):
    labels = np.concatenate([np.array(q) for q in queries])
    off = np.concatenate([[0], np.cumsum([len(q) for q in queries])])
    ideal = labels.copy()  # score = label, ties cannot hurt: equal labels are interchangeable
    res = M.evaluate_many(["ndcg", f"ndcg@{k}", "map", "mrr", f"recall@{k}"], labels, ideal, off, gain=gain)
    has_rel = np.array([max(q) >= 1 for q in queries])
    for name in ("ndcg", f"ndcg@{k}", "map", "mrr"):
        np.testing.assert_allclose(res[name][has_rel], 1.0, atol=1e-12)
        assert np.isnan(res[name][~has_rel]).all()
    rng = np.random.default_rng(len(labels))
    rnd = M.evaluate_many(["ndcg", f"ndcg@{k}", "map", "mrr", f"p@{k}", f"recall@{k}"], labels,
                          rng.random(labels.size), off, gain=gain)
    for v in rnd.values():
        v = v[np.isfinite(v)]
        assert np.all((v >= 0) & (v <= 1 + 1e-12))


@settings(max_examples=60, deadline=None)
@given(st.lists(_labels, min_size=2, max_size=6), st.randoms(use_true_random=False))
def test_query_order_invariance(queries, rnd):
    rng = np.random.default_rng(rnd.randint(0, 2**31))
    scores = [rng.integers(0, 3, len(q)).astype(float) for q in queries]
    ids = [np.arange(len(q)) for q in queries]

    def run(order):
        lab = np.concatenate([np.array(queries[i]) for i in order])
        sc = np.concatenate([scores[i] for i in order])
        it = np.concatenate([ids[i] for i in order])
        off = np.concatenate([[0], np.cumsum([len(queries[i]) for i in order])])
        return M.evaluate_many(["ndcg@3", "map", "mrr"], lab, sc, off, item_id=it)

    base = run(list(range(len(queries))))
    perm = list(rng.permutation(len(queries)))
    moved = run(perm)
    for k in base:
        np.testing.assert_array_equal(moved[k], base[k][perm])


@settings(max_examples=40, deadline=None)
@given(_labels, st.randoms(use_true_random=False))
def test_row_order_within_query_is_irrelevant_with_item_ids(labels, rnd):
    lab = np.array(labels)
    rng = np.random.default_rng(rnd.randint(0, 2**31))
    sc = rng.integers(0, 2, lab.size).astype(float)
    ids = rng.permutation(lab.size)
    off = np.array([0, lab.size])
    a = M.evaluate_many(["ndcg", "map", "mrr", "p@2"], lab, sc, off, item_id=ids)
    p = rng.permutation(lab.size)
    b = M.evaluate_many(["ndcg", "map", "mrr", "p@2"], lab[p], sc[p], off, item_id=ids[p])
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0]), min_size=1, max_size=6), min_size=1, max_size=3),
       st.sampled_from(["ndcg", "ndcg@2", "map", "map@3", "mrr", "mrr@2", "p@2", "p@4", "recall@3"]),
       st.sampled_from(["linear", "exp"]))
def test_expected_random_equals_exact_average_over_all_orderings(queries, metric, gain):
    labels = np.concatenate([np.array(q) for q in queries])
    off = np.concatenate([[0], np.cumsum([len(q) for q in queries])])
    er = M.expected_random(metric, labels, off, gain=gain)
    for qi, q in enumerate(queries):
        lab = np.array(q)
        n = lab.size
        vals = [M.evaluate(metric, lab, -np.array(p, dtype=float), np.array([0, n]), gain=gain)[0]
                for p in itertools.permutations(range(n))]
        want = np.mean(vals)
        if math.isnan(want):
            assert math.isnan(er[qi])
        else:
            assert er[qi] == pytest.approx(want, abs=1e-12)


def test_expected_random_matches_monte_carlo_on_big_queries():
    rng = np.random.default_rng(0)
    sizes = [40, 100, 7]
    labels = rng.integers(0, 3, sum(sizes)).astype(float)
    off = np.concatenate([[0], np.cumsum(sizes)])
    reps = 4000
    for metric in ["ndcg@10", "map", "mrr", "p@5"]:
        er = M.expected_random(metric, labels, off)
        sims = np.array([M.evaluate(metric, labels, rng.random(labels.size), off) for _ in range(reps)])
        se = sims.std(axis=0) / np.sqrt(reps)
        assert np.all(np.abs(sims.mean(axis=0) - er) < 5 * se + 1e-12), metric


def test_queries_with_fewer_retrieved_than_k_in_wide_blocks():
    """A wide query (judged rows) with only 3 retrieved: the top-k mask path must not pick padding."""
    rng = np.random.default_rng(2)
    sizes = [100, 100, 120]
    n = sum(sizes)
    labels = rng.integers(0, 3, n).astype(float)
    scores = rng.random(n)
    retrieved = np.ones(n, bool)
    retrieved[3:100] = False  # query 0 retrieves 3 of its 100 judged documents
    off = np.concatenate([[0], np.cumsum(sizes)])
    global SPECS
    old = SPECS
    SPECS = [M.parse_metric(m) for m in ["ndcg@10", "p@10", "mrr@10", "recall@10"]]
    try:
        _check_against_ref(labels, scores, off, None, retrieved, 1.0, "linear", "exclude")
    finally:
        SPECS = old


def test_very_wide_query_uses_argsort_path():
    """A query wider than 2**16 candidates cannot carry its column in 16 key bits: exact argsort path."""
    rng = np.random.default_rng(9)
    n = 70_000
    labels = rng.integers(0, 3, n).astype(float)
    scores = rng.integers(0, 500, n).astype(float)  # ties
    ids = rng.permutation(n)
    off = np.array([0, n])
    global SPECS
    old = SPECS
    SPECS = [M.parse_metric(m) for m in ["ndcg@10", "map", "p@20"]]
    try:
        _check_against_ref(labels, scores, off, ids, None, 1.0, "linear", "exclude")
    finally:
        SPECS = old


# --------------------------------------------------------------------------- tie-aware (the audits' default)
ALL_KINDS = ["ndcg", "ndcg@1", "ndcg@3", "map", "map@2", "mrr", "mrr@2", "p@1", "p@3", "recall", "recall@2"]


def _ref_tie_average(spec, labels, scores, retrieved, thr, gain, policy):
    """Brute force: the trec_eval value averaged over every order of the rows (file order breaks
    the ties, so each order of the tied rows is counted equally often)."""
    n = len(labels)
    vals = []
    for p in itertools.permutations(range(n)):
        vals.append(_ref(spec, [labels[i] for i in p], [scores[i] for i in p], None,
                         [retrieved[i] for i in p], thr, gain, policy))
    return float(np.mean(vals)) if vals else math.nan


@st.composite
def _tied_problem(draw):
    nq = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(0, 6), min_size=nq, max_size=nq))
    n = sum(sizes)
    labels = np.array(draw(st.lists(st.sampled_from([-1.0, 0.0, 1.0, 2.0, 3.0]), min_size=n, max_size=n)))
    scores = np.array(draw(st.lists(st.sampled_from([0.0, -0.0, 1.0, 2.0, -np.inf]), min_size=n, max_size=n)))
    retrieved = None
    if draw(st.booleans()):
        retrieved = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return labels, scores, offsets, retrieved


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tied_problem(), st.sampled_from([1.0, 2.0]), st.sampled_from(["linear", "exp"]),
       st.sampled_from(["exclude", "zero"]))
def test_tie_aware_equals_average_over_all_orders_of_tied_items(problem, thr, gain, policy):
    labels, scores, offsets, retrieved = problem
    specs = [M.parse_metric(m) for m in ALL_KINDS]
    ids = np.arange(labels.size)[::-1].copy()  # ids must not matter
    got = M.evaluate_many(specs, labels, scores, offsets, item_id=ids, retrieved=retrieved, gain=gain,
                          rel_threshold=thr, no_relevant=policy)
    ret = np.ones(labels.size, bool) if retrieved is None else retrieved
    for qi in range(offsets.size - 1):
        a, b = offsets[qi], offsets[qi + 1]
        for s in specs:
            want = _ref_tie_average(s, list(labels[a:b]), list(scores[a:b]), list(ret[a:b]), thr, gain, policy)
            g = got[s.name][qi]
            if math.isnan(want):
                assert math.isnan(g), (s.name, qi, g)
            else:
                assert g == pytest.approx(want, abs=1e-12), (s.name, qi, g, want)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0, 2.0]), st.sampled_from([0.0, 1.0]), st.booleans()),
                min_size=1, max_size=6))
def test_tie_aware_compliance_is_the_share_of_compliant_items_in_the_top_group(rows):
    lab = np.array([r[0] for r in rows])
    sc = np.array([r[1] for r in rows])
    comp = np.array([float(r[2]) for r in rows])
    top = sc == sc.max()
    got = M.compliance_at_1(comp, sc, np.array([0, lab.size]))[0]
    assert got == pytest.approx(comp[top].mean(), abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(st.lists(_labels, min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_tie_aware_value_does_not_depend_on_row_order_or_ids(queries, rnd):
    """The file's row order (e.g. sorted by label) and the item ids never change a value."""
    rng = np.random.default_rng(rnd.randint(0, 2**31))
    lab = np.concatenate([np.array(q) for q in queries])
    off = np.concatenate([[0], np.cumsum([len(q) for q in queries])])
    sc = rng.integers(0, 2, lab.size).astype(float)
    perm = np.concatenate([a + rng.permutation(b - a) for a, b in zip(off[:-1], off[1:])])
    a = M.evaluate_many(ALL_KINDS, lab, sc, off)
    b = M.evaluate_many(ALL_KINDS, lab[perm], sc[perm], off, item_id=rng.permutation(lab.size))
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-14)


@pytest.mark.parametrize("gain", ["linear", "exp"])
def test_constant_model_scores_exactly_the_random_order_expectation(gain):
    rng = np.random.default_rng(4)
    sizes = rng.integers(1, 60, 300)
    sizes[:3] = [1, 2, 200]
    n = int(sizes.sum())
    labels = rng.choice(5, n, p=[0.6, 0.2, 0.1, 0.06, 0.04]).astype(float)
    comp = (rng.random(n) < 0.3).astype(float)
    off = np.concatenate([[0], np.cumsum(sizes)])
    names = ALL_KINDS + ["ndcg@10", "map@10", "mrr@10", "p@10", "recall@10", "compliance@1"]
    for const in (0.0, -3.5):
        got = M.evaluate_many(names, labels, np.full(n, const), off, gain=gain, compliance=comp)
        for name in names:
            er = M.expected_random(name, labels, off, gain=gain, compliance=comp)
            np.testing.assert_allclose(got[name], er, rtol=1e-12, atol=1e-15, err_msg=name)


def test_tie_aware_equals_plain_metric_without_ties_and_matches_monte_carlo_with_them():
    rng = np.random.default_rng(8)
    sizes = rng.integers(5, 120, 400)
    n = int(sizes.sum())
    off = np.concatenate([[0], np.cumsum(sizes)])
    labels = rng.integers(0, 4, n).astype(float)
    names = ["ndcg@10", "map", "mrr", "p@5", "recall@20", "ndcg"]
    distinct = rng.permutation(n).astype(float)
    a = M.evaluate_many(names, labels, distinct, off)
    b = M.evaluate_many(names, labels, distinct, off, ties="trec_eval")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    # coarse scores (many ties): the mean over random tie-breaks converges to the tie-aware value
    coarse = rng.integers(0, 3, n).astype(float)
    exact = M.evaluate_many(names, labels, coarse, off)
    reps = 300
    sims = {k: np.zeros(sizes.size) for k in names}
    sq = {k: np.zeros(sizes.size) for k in names}
    for _ in range(reps):
        v = M.evaluate_many(names, labels, coarse + rng.random(n) * 1e-3, off)  # a random order of each tie
        for k in names:
            sims[k] += v[k]
            sq[k] += v[k] ** 2
    for k in names:
        mean = sims[k] / reps
        se = np.sqrt(np.maximum(sq[k] / reps - mean ** 2, 0) / reps)
        ok = np.isfinite(exact[k])
        assert np.all(np.abs(mean[ok] - exact[k][ok]) <= 5 * se[ok] + 1e-12), k


def _sorted_by_label(path_in: Path, path_out: Path) -> None:
    lines = path_in.read_text().splitlines()
    sizes = [int(x) for x in Path(str(path_in) + ".query").read_text().split()]
    out, i = [], 0
    for s in sizes:
        q = sorted(lines[i:i + s], key=lambda line: -float(line.split()[0]))  # best label first
        out += q
        i += s
    path_out.write_text("\n".join(out) + "\n")
    Path(str(path_out) + ".query").write_text("\n".join(map(str, sizes)) + "\n")


def test_label_sorted_file_gives_a_constant_model_no_gain(tmp_path):
    """Issue 13.2: on a test file sorted by label within each query, np.zeros must not beat a ridge
    baseline (it gave mean Δ +0.25 and GO with file-order tie-breaking)."""
    import json as _json

    from click.testing import CliRunner

    from auditor.cli import cli

    _sorted_by_label(DATA / "ltr" / "rank.test", tmp_path / "sorted.test")
    plugin = tmp_path / "zeros.py"
    plugin.write_text(
        "import numpy as np\n"
        "class Zeros:\n"
        "    def fit(self, train):\n        self.fitted = True\n        return self\n"
        "    def score(self, data):\n"
        "        if not getattr(self, 'fitted', False):\n            raise RuntimeError('call fit first')\n"
        "        return np.zeros(data.n_rows)\n"
        "def make_model(seed=0):\n    return Zeros()\n")
    deltas = {}
    for name, test in (("sorted", tmp_path / "sorted.test"), ("original", DATA / "ltr" / "rank.test")):
        out = tmp_path / name
        res = CliRunner().invoke(cli, ["run", "--model", f"{plugin}:make_model", "--baseline", "rankers:make_linear",
                                       "--train", str(DATA / "ltr" / "rank.train"), "--test", str(test),
                                       "--checks", "significance", "--out", str(out), "--quiet"])
        assert res.exit_code != 0, res.output  # never GO
        assert "GO —" not in res.output.replace("NO_GO —", "")
        r = _json.loads((out / "results.json").read_text())
        sig = next(a for a in r["audits"] if a["name"] == "significance")
        deltas[name] = sig["measurements"]["mean_delta"]
        cand = sig["measurements"]["candidate_mean"]
    from auditor.data import load_dataset

    te = load_dataset(str(tmp_path / "sorted.test"))
    chance = M.mean_metric(M.expected_random("ndcg@10", te.labels, te.query_offsets))[0]
    assert cand == pytest.approx(chance, abs=1e-12)  # the constant model sits exactly at random-order chance
    assert deltas["sorted"] < 0
    assert deltas["sorted"] == pytest.approx(deltas["original"], abs=1e-12)  # the file's row order is irrelevant


def test_audit_eval_help_states_its_tie_convention():
    from click.testing import CliRunner

    from auditor.cli import cli

    r = CliRunner().invoke(cli, ["eval", "--help"])
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    assert "broken by docno" in text and "trec_eval's documented convention" in text and "audit run" in text
