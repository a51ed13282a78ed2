"""The metric registry against trec_eval's: every built-in family's trec_eval name is a
measure `audit trec-eval` computes, and the two give the same per-query values."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auditor import metric_registry as R
from auditor.evaluate import evaluate_run
from auditor.trec_eval import command, measures

DATA = Path(__file__).resolve().parent / "data" / "trec_eval"


@pytest.mark.parametrize("fam", [f for f in R.families(plugins=False).values() if f.trec_eval or f.trec_eval_cut],
                         ids=lambda f: f.name)
def test_builtin_family_equals_its_trec_eval_measure(fam):
    ks = ([None] if fam.trec_eval else []) + ([5, 10] if fam.trec_eval_cut else [])
    for k in ks:
        ours = R.MetricSpec(fam.name, k).name
        theirs = fam.trec_eval_name(k)
        base, _, cut = theirs.rpartition("_") if k is not None else (theirs, "", "")
        assert base in measures.BY_NAME, theirs
        a = command.parse_args(["-q", "-m", theirs if k is None else f"{base}.{cut}",
                                str(DATA / "qrels.test"), str(DATA / "results.test")])
        ranked, _, values, _ = command.evaluate(a)
        ev = evaluate_run(DATA / "qrels.test", DATA / "results.test", [ours], no_relevant="zero")
        got = dict(zip(ev.qids, ev.per_query[ours].tolist()))
        want = dict(zip(ranked.qids, values[theirs].tolist()))
        assert got.keys() == want.keys()
        np.testing.assert_allclose([got[q] for q in want], list(want.values()), rtol=1e-12, atol=1e-15,
                                   err_msg=f"{ours} vs trec_eval {theirs}")


def test_spellings_and_errors():
    assert R.parse_metric("precision@5") == R.MetricSpec("p", 5)
    assert R.parse_metric("AP").name == "map" and R.parse_metric("set_recall").name == "recall"
    assert R.parse_metric("ndcg_cut_10").family.trec_eval_name(10) == "ndcg_cut_10"
    with pytest.raises(ValueError, match="cutoff must be >= 1"):
        R.parse_metric("ndcg@0")
    with pytest.raises(ValueError, match="only compliance@1"):
        R.parse_metric("compliance@2")
    with pytest.raises(ValueError, match=r"unknown metric 'p'; valid: ndcg, ndcg@k"):
        R.parse_metric("p")
