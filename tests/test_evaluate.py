"""`audit eval` (the click command object, invoked directly): values, JSON shape, baseline table, errors."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as st

from auditor import stats
from auditor.evaluate import DEFAULT_METRICS, compare_runs, eval_cmd, evaluate_run

TE = Path(__file__).resolve().parent / "data" / "trec_eval"
Q, R = str(TE / "qrels.test"), str(TE / "results.test")


def _run(*args: str):
    return CliRunner().invoke(eval_cmd, list(args))


def _gold(measure: str, qid: str = "all") -> float:
    for line in (TE / "out.test.aq").read_text().splitlines():
        p = line.split()
        if p[:2] == [measure, qid]:
            return float(p[2])
    raise KeyError(measure)


def test_json_values_equal_trec_eval_and_shape_is_exact():
    r = _run("--qrels", Q, "--run", R, "-m", "ndcg@10", "-m", "map", "-m", "mrr", "-m", "P_10", "-m", "ndcg", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert list(out) == ["metrics"]
    assert list(out["metrics"]) == ["ndcg@10", "map", "mrr", "p@10", "ndcg"]
    for ours, te in [("ndcg@10", "ndcg_cut_10"), ("map", "map"), ("mrr", "recip_rank"), ("p@10", "P_10"),
                     ("ndcg", "ndcg")]:
        assert round(out["metrics"][ours], 4) == _gold(te), ours
    assert round(out["metrics"]["ndcg@10"], 4) == 0.3016


def test_json_per_query():
    r = _run("--qrels", Q, "--run", R, "-m", "ndcg_cut_10", "-m", "recip_rank", "--json", "--per-query")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert list(out) == ["metrics", "per_query"]
    assert list(out["per_query"]) == ["301", "302", "303"]
    for q in ("301", "302", "303"):
        assert set(out["per_query"][q]) == {"ndcg@10", "mrr"}
        assert round(out["per_query"][q]["ndcg@10"], 4) == _gold("ndcg_cut_10", q)
        assert round(out["per_query"][q]["mrr"], 4) == _gold("recip_rank", q)


def test_default_metrics_and_human_table():
    r = _run("--qrels", Q, "--run", R)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == ["metric", "mean", "queries", "excluded"]
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[1:5]}
    assert list(rows) == list(DEFAULT_METRICS)
    assert rows["ndcg@10"] == ["0.3016", "3", "0"] and rows["map"][0] == "0.1785"
    # columns aligned: every data row has the mean column ending at the same offset
    ends = {ln.index(v) + len(v) for ln, v in zip(lines[1:5], [r_[0] for r_ in rows.values()])}
    assert len(ends) == 1
    pq = _run("--qrels", Q, "--run", R, "-m", "map", "--per-query")
    assert re.search(r"^302\s+0\.4175$", pq.output, re.M)


def test_no_relevant_policy_is_counted_and_zero_matches_trec_eval(tmp_path):
    qrels = tmp_path / "q"
    qrels.write_text("1 0 a 1\n1 0 b 0\n2 0 c 0\n2 0 d 0\n")
    run = tmp_path / "r"
    run.write_text("1 Q0 b 1 2 x\n1 Q0 a 2 1 x\n2 Q0 c 1 1 x\n3 Q0 z 1 1 x\n")
    r = _run("--qrels", str(qrels), "--run", str(run), "-m", "map")
    assert r.exit_code == 0
    assert re.search(r"^map\s+0\.5000\s+1\s+1$", r.output, re.M)
    assert "1 run query has no qrels" in r.output and "--no-relevant zero" in r.output
    z = _run("--qrels", str(qrels), "--run", str(run), "-m", "map", "--no-relevant", "zero", "--json", "--per-query")
    out = json.loads(z.stdout)
    assert out["metrics"]["map"] == 0.25 and out["per_query"]["2"]["map"] == 0.0
    e = _run("--qrels", str(qrels), "--run", str(run), "-m", "map", "--json", "--per-query")
    assert json.loads(e.stdout)["per_query"]["2"]["map"] is None


def _baseline(tmp_path: Path) -> str:
    """results.test with scores perturbed: a plausible second system."""
    rng = np.random.default_rng(0)
    out = []
    for line in (TE / "results.test").read_text().splitlines():
        q, it, d, rank, score, tag = line.split()
        out.append(f"{q} {it} {d} {rank} {float(score) + rng.normal(0, 0.2):.6f} base")
    p = tmp_path / "base.run"
    p.write_text("\n".join(out) + "\n")
    return str(p)


def test_baseline_significance_table_uses_the_stats_functions(tmp_path):
    base = _baseline(tmp_path)
    metrics = ["ndcg@10", "map", "ndcg", "p@10"]
    r = _run("--qrels", Q, "--run", R, "--baseline-run", base, *sum((["-m", m] for m in metrics), []), "--json",
             "--n-resamples", "2000")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert list(out) == ["metrics", "comparison"] and list(out["comparison"]) == metrics
    a = evaluate_run(Q, R, metrics)
    b = evaluate_run(Q, base, metrics)
    ps = []
    for m in metrics:
        c = out["comparison"][m]
        d = a.per_query[m] - b.per_query[m]
        assert c["delta"] == pytest.approx(d.mean(), abs=1e-12)
        assert c["candidate"] == pytest.approx(a.mean(m)) and c["baseline"] == pytest.approx(b.mean(m))
        if np.std(d) > 0:
            assert c["p_t"] == pytest.approx(st.ttest_rel(a.per_query[m], b.per_query[m]).pvalue, rel=1e-9)
        assert c["d_z"] == (None if np.std(d) == 0 else pytest.approx(stats.effect_size_dz(d)))
        assert (c["wins"], c["ties"], c["losses"]) == stats.win_tie_loss(d)
        assert c["ci_low"] <= c["delta"] <= c["ci_high"] and c["ci_method"].startswith("bca")
        assert 0 < c["p_sign_flip"] <= 1 and c["n"] == 3
        ps.append(c["p_t"])
    from statsmodels.stats.multitest import multipletests

    want = multipletests(np.array(ps), method="holm")[1]
    assert [out["comparison"][m]["p_holm"] for m in metrics] == pytest.approx(list(want))
    human = _run("--qrels", Q, "--run", R, "--baseline-run", base, "--n-resamples", "500")
    assert human.exit_code == 0
    assert "95% CI (BCa)" in human.output and "W/T/L" in human.output and "p (Holm)" in human.output


def test_compare_runs_pairs_common_queries_only(tmp_path):
    trunc = evaluate_run(Q, str(TE / "results.trunc"), ["map"])
    full = evaluate_run(Q, R, ["map"])
    c = compare_runs(trunc, full, n_resamples=200)
    assert c["n_common_queries"] == 2 and c["n_unpaired_queries"] == 1
    assert c["metrics"]["map"]["n"] == 2


def test_complete_pairs_every_judged_query(tmp_path):
    trunc = evaluate_run(Q, str(TE / "results.trunc"), ["map"], complete=True)
    full = evaluate_run(Q, R, ["map"], complete=True)
    c = compare_runs(trunc, full, n_resamples=200)
    assert c["n_common_queries"] == 3 and c["n_unpaired_queries"] == 0
    assert trunc.per_query["map"][trunc.qids.index("302")] == 0.0


def test_complete_keeps_no_relevant_policy(tmp_path):
    # a judged query whose documents are all non-relevant, absent from the run
    q = tmp_path / "q.txt"
    q.write_text("1 0 a 1\n1 0 b 0\n2 0 c 0\n3 0 d 2\n")
    r = tmp_path / "r.txt"
    r.write_text("1 Q0 a 1 2.0 t\n1 Q0 b 2 1.0 t\n")
    ex = evaluate_run(str(q), str(r), ["map"], complete=True)
    assert ex.qids == ["1", "2", "3"]
    assert np.isnan(ex.per_query["map"][1]) and ex.per_query["map"][2] == 0.0
    assert ex.mean("map") == pytest.approx(0.5) and ex.n_excluded("map") == 1
    zero = evaluate_run(str(q), str(r), ["map"], complete=True, no_relevant="zero")
    assert zero.mean("map") == pytest.approx(1 / 3)
    plain = evaluate_run(str(q), str(r), ["map"])
    assert plain.qids == ["1"] and plain.qrels_queries_without_run == ["2", "3"]


def test_cli_complete_flag_and_absent_query_note():
    plain = _run("--qrels", Q, "--run", str(TE / "results.trunc"), "-m", "map")
    assert plain.exit_code == 0
    assert "1 judged query has no results in the run" in plain.output and "302" in plain.output
    assert "0.1523" in plain.output
    full = _run("--qrels", Q, "--run", str(TE / "results.trunc"), "-m", "map", "-c", "--json")
    assert full.exit_code == 0
    out = json.loads(full.stdout)
    assert out["metrics"]["map"] == pytest.approx(0.1016, abs=5e-5)


@pytest.mark.parametrize("make, match", [
    (lambda p: ("--run", str(p / "missing.run")), r"missing\.run: file not found"),
    (lambda p: ("--run", _write(p / "g.run", "301 Q0 d1 1 2.0 x\n301 Q0 d2 oops\n")), r"g\.run, line 2.*4 fields"),
    (lambda p: ("--run", _write(p / "b.run", b"\x89PNG\r\n\x1a\n\x00\x00binary")), r"b\.run, line \d+.*binary"),
    (lambda p: ("--run", _write(p / "s.run", "301 Q0 d1 1 x2.0 x\n")), r"s\.run, line 1, field 'score'"),
    (lambda p: ("--run", Q), r"looks like a qrels line: are --qrels and --run swapped"),
    (lambda p: ("--run", _write(p / "o.run", "999 Q0 d1 1 1 x\n")), r"no query of the run appears in the qrels"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path, make, match):
    extra = make(tmp_path)
    r = _run("--qrels", Q, *extra)
    assert r.exit_code == 2, r.output
    assert re.search(match, r.output), r.output
    assert "Traceback" not in r.output and "Fix:" in r.output


def test_bad_metric_and_bad_qrels_exit_2(tmp_path):
    r = _run("--qrels", Q, "--run", R, "-m", "ndcg@ten")
    assert r.exit_code == 2 and "unknown metric" in r.output
    r = _run("--qrels", _write(tmp_path / "q", "301 0 d1\n"), "--run", R)
    assert r.exit_code == 2 and re.search(r"q, line 1.*3 fields", r.output)
    r = _run("--qrels", Q, "--run", R, "--baseline-run", str(tmp_path / "nope.run"))
    assert r.exit_code == 2 and "nope.run: file not found" in r.output


def test_unsorted_run_and_duplicates_through_eval(tmp_path):
    """Interleaved queries take the global join; duplicates are caught on both join paths."""
    lines = (TE / "results.test").read_text().splitlines()
    rng = np.random.default_rng(0)
    shuffled = _write(tmp_path / "shuf.run", "\n".join(lines[i] for i in rng.permutation(len(lines))) + "\n")
    a = evaluate_run(Q, shuffled, ["ndcg", "map", "p@10"])
    b = evaluate_run(Q, R, ["ndcg", "map", "p@10"])
    for k in a.per_query:
        np.testing.assert_allclose(a.per_query[k], b.per_query[k], atol=1e-12)
    for name, body in (("dup_grouped.run", lines[:5] + [lines[2]] + lines[5:]),
                       ("dup_shuffled.run", [lines[i] for i in rng.permutation(len(lines))] + [lines[7]])):
        r = _run("--qrels", Q, "--run", _write(tmp_path / name, "\n".join(body) + "\n"))
        assert r.exit_code == 2 and "appears twice for query '301'" in r.output, r.output
    qdup = (TE / "qrels.test").read_text().splitlines()
    r = _run("--qrels", _write(tmp_path / "dup.qrels", "\n".join(qdup + [qdup[3]]) + "\n"), "--run", R)
    assert r.exit_code == 2 and "appears twice" in r.output, r.output


def _write(p: Path, data: str | bytes) -> str:
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data)
    return str(p)


# ----------------------------------------------------------------- fixes found against trec_eval
def _trec_eval_values(args: list[str]) -> dict[tuple[str, str], float]:
    """`audit trec-eval` (fuzzed against the real trec_eval 10.0-rc3) as the oracle."""
    import io

    from auditor.trec_eval.command import main

    out = io.StringIO()
    assert main(args, out, io.StringIO()) == 0
    vals = {}
    for line in out.getvalue().splitlines():
        name, qid, v = line.split("\t")
        if v.strip().replace(".", "").isdigit():
            vals[(name.strip(), qid)] = float(v)
    return vals


@pytest.mark.parametrize("threshold", ["0", "2"])
def test_rel_threshold_matches_trec_eval_l_and_unjudged_never_relevant(threshold):
    qrels = str(TE / "qrels.rel_level")
    r = _run("--qrels", qrels, "--run", R, "--rel-threshold", threshold, "--no-relevant", "zero", "-c",
             "-m", "map", "-m", "mrr", "-m", "p@10", "-m", "recall@100", "--json", "--per-query")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    te = _trec_eval_values(["-q", "-c", "-l", threshold, "-m", "map", "-m", "recip_rank", "-m", "P.10",
                            "-m", "recall.100", qrels, R])
    for ours, name in [("map", "map"), ("mrr", "recip_rank"), ("p@10", "P_10"), ("recall@100", "recall_100")]:
        assert round(out["metrics"][ours], 4) == te[(name, "all")], ours
        for qid, vals in out["per_query"].items():
            assert round(vals[ours], 4) == te[(name, qid)], (ours, qid)


def test_unjudged_document_is_not_relevant_at_threshold_zero(tmp_path):
    (tmp_path / "q").write_text("1 0 a 0\n1 0 b 1\n")
    (tmp_path / "r").write_text("1 Q0 x 1 3 r\n1 Q0 a 2 2 r\n1 Q0 b 3 1 r\n")  # x is unjudged
    r = _run("--qrels", str(tmp_path / "q"), "--run", str(tmp_path / "r"), "--rel-threshold", "0",
             "-m", "mrr", "-m", "p@3", "--json")
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)["metrics"]
    assert m["mrr"] == pytest.approx(0.5)  # a (judged 0) is relevant at -l 0; x is not
    assert m["p@3"] == pytest.approx(2 / 3)


def test_non_integer_labels_are_truncated_like_trec_eval_with_a_note(tmp_path):
    (tmp_path / "q").write_text("1 0 a 1.7\n1 0 b 0.9\n1 0 c 2.2\n")
    (tmp_path / "r").write_text("1 Q0 b 1 3 r\n1 Q0 a 2 2 r\n1 Q0 c 3 1 r\n")
    r = _run("--qrels", str(tmp_path / "q"), "--run", str(tmp_path / "r"), "-m", "map", "-m", "ndcg")
    assert r.exit_code == 0, r.output
    assert "3 relevance labels" in r.output and "truncated toward zero as trec_eval does (e.g. 1.7 -> 1)" in r.output
    te = _trec_eval_values(["-m", "map", "-m", "ndcg", str(tmp_path / "q"), str(tmp_path / "r")])
    table = dict(line.split()[:2] for line in r.output.splitlines()[1:3])
    assert float(table["map"]) == te[("map", "all")] and float(table["ndcg"]) == te[("ndcg", "all")]
    clean = _run("--qrels", Q, "--run", R, "-m", "map")
    assert "truncated" not in clean.output


def test_baseline_with_one_common_query_prints_no_zero_width_interval(tmp_path):
    (tmp_path / "q").write_text("1 0 a 1\n1 0 b 0\n")
    (tmp_path / "r").write_text("1 Q0 a 1 2 r\n1 Q0 b 2 1 r\n")
    (tmp_path / "b").write_text("1 Q0 b 1 2 r\n1 Q0 a 2 1 r\n")
    r = _run("--qrels", str(tmp_path / "q"), "--run", str(tmp_path / "r"), "--baseline-run", str(tmp_path / "b"),
             "-m", "map", "--n-resamples", "200")
    assert r.exit_code == 0, r.output
    assert "[-, -]" in r.output and "no confidence interval or test is possible" in r.output
    assert not re.search(r"\[(\d\.\d{4}), \1\]", r.output)
    j = _run("--qrels", str(tmp_path / "q"), "--run", str(tmp_path / "r"), "--baseline-run", str(tmp_path / "b"),
             "-m", "map", "--n-resamples", "200", "--json")
    c = json.loads(j.stdout)["comparison"]["map"]
    assert c["ci_low"] is None and c["ci_high"] is None and c["n"] == 1
