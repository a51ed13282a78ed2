"""Regenerate compat_pytrec_eval.json: trec_eval's own values for the ir_measures compat files.

Run once with the [bench] extra installed (pytrec_eval-terrier wraps trec_eval's C code):

    python tests/data/derived/make_compat_golden.py

The tests only read the JSON; they never import pytrec_eval.
"""
import json
from pathlib import Path

import pytrec_eval

HERE = Path(__file__).resolve().parent
IRM = HERE.parent / "ir_measures"
MEASURES = {"ndcg", "ndcg_cut.5,10,20,100", "map", "map_cut.10,100", "recip_rank", "P.5,10,20,100",
            "recall.10,100,1000", "set_recall"}


def _read(path, kind):
    out = {}
    for line in open(path):
        p = line.split()
        if not p:
            continue
        if kind == "qrels":
            out.setdefault(p[0], {})[p[2]] = int(p[3])
        else:
            out.setdefault(p[0], {})[p[2]] = float(p[4])
    return out


def main():
    qrels = _read(IRM / "compat.qrels", "qrels")
    run = _read(IRM / "compat.run", "run")
    res = {}
    for level in (1, 2, 3):
        ev = pytrec_eval.RelevanceEvaluator(qrels, MEASURES, relevance_level=level)
        res[f"relevance_level_{level}"] = ev.evaluate(run)
    doc = {"source": "pytrec_eval-terrier %s (trec_eval C code) on tests/data/ir_measures/compat.qrels + compat.run; "
                     "regenerate with: python tests/data/derived/make_compat_golden.py" % getattr(pytrec_eval, "__version__", "0.5.11"),
           "per_query": res}
    (HERE / "compat_pytrec_eval.json").write_text(json.dumps(doc, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
