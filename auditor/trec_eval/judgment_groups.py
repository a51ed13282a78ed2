"""Multi-assessor qrels (``-R qrels_jg``) and the *_avgjg measures of trec_eval 10.0-rc3.

Input (``get_qrels_jg.c``): ``qid jg docno rel`` lines, ``rel`` read as C ``atol``; each judgment
group (JG, e.g. one assessor) of a query is a separate set of judgments. A document judged
twice within one JG is an error. Per query (``form_res_rels_jg.c``) the run is ranked as in
the qrels path (score descending, ties by docno descending, ``-M`` cut, ``-J`` keeps judged
documents only) and judged separately by every JG (JGs in byte order). map_avgjg, P_avgjg and
Rprec_mult_avgjg compute map, P and Rprec_mult per JG, add them up JG after JG and divide by
the number of JGs when there are several.
"""
from __future__ import annotations

import math

import numpy as np

from auditor.errors import DataError
from auditor.trec_eval.reader import c_atol
from auditor.trec_eval.textfile import read_fields

FORM = "'qid jg docno rel' (4 whitespace-separated fields, e.g. '301 assessor1 doc7 1')"
MEASURES = ("map_avgjg", "P_avgjg", "Rprec_mult_avgjg")


def read_qrels_jg(path: str) -> dict[bytes, list[dict[bytes, int]]]:
    """Per qid (byte order): one {docno: rel} per judgment group, groups in byte order."""
    rows = read_fields(path, "qrels_jg", 4, FORM)
    rows.sort(key=lambda r: (r[1][0], r[1][1], r[1][2]))
    out: dict[bytes, dict[bytes, dict[bytes, int]]] = {}
    for no, t in rows:
        group = out.setdefault(t[0], {}).setdefault(t[1], {})
        if t[2] in group:
            raise DataError(f"qrels_jg file {path!r}, line {no}: document {t[2].decode('utf-8', 'replace')!r} is "
                            f"judged twice for query {t[0].decode('utf-8', 'replace')!r} in judgment group "
                            f"{t[1].decode('utf-8', 'replace')!r}; trec_eval stops there ('duplicate docs'). "
                            "Keep one judgment.")
        group[t[2]] = c_atol(t[3])
    return {q: [gs[k] for k in sorted(gs)] for q, gs in sorted(out.items())}


def rank_run(docnos: list[bytes], sims: list[float], max_docs: int, qid: str, path: str) -> list[bytes]:
    """Docnos in rank order: score descending, ties by docno descending; top ``max_docs``."""
    order = sorted(range(len(docnos)), key=lambda k: (sims[k], docnos[k]), reverse=True)
    ranked = [docnos[k] for k in order[: max(max_docs, 0)]]
    if len(set(ranked)) != len(ranked):
        seen: set[bytes] = set()
        dup = next(d for d in ranked if d in seen or seen.add(d))
        raise DataError(f"run file {path!r}: document {dup.decode('utf-8', 'replace')!r} is retrieved twice for "
                        f"query {qid!r}; trec_eval stops there ('duplicate docs'). Keep one line.")
    return ranked


def _seq(x: np.ndarray) -> float:
    return float(np.cumsum(x)[-1]) if x.size else 0.0


def values(groups: list[dict[bytes, int]], ranked: list[bytes], level: int, judged_only: bool,
           selected: list[tuple[str, tuple]]) -> dict[str, list[float]]:
    """Per requested measure (name, parameters): its values for one query, one per printed name."""
    per_group: list[dict[str, list[float]]] = []
    for g in groups:
        rels = np.array([g.get(d, -1) for d in ranked], dtype=np.int64)
        if judged_only:
            rels = rels[rels >= 0]
        nret = rels.size
        is_rel = (rels >= 0) & (rels >= level)
        csum = np.cumsum(is_rel)
        num_rel = sum(1 for v in g.values() if v >= 0 and v >= level)
        nrr = int(is_rel.sum())
        vals: dict[str, list[float]] = {}
        for name, params in selected:
            if name == "map_avgjg":
                s = _seq((csum / np.arange(1, nret + 1))[is_rel])
                vals[name] = [s / num_rel if nrr else 0.0]
            elif name == "P_avgjg":
                vals[name] = [float(csum[min(c, nret) - 1] if min(c, nret) > 0 else 0) / c for c in params]
            else:  # Rprec_mult_avgjg
                out = []
                for pct in params:
                    c = int(math.trunc(pct * num_rel + 0.9)) if math.isfinite(pct * num_rel + 0.9) else 0
                    if c > nret:
                        out.append(nrr / c)
                    elif c >= 1:
                        out.append(float(csum[c - 1]) / c)
                    else:
                        out.append(0.0)
                vals[name] = out
        per_group.append(vals)
    result: dict[str, list[float]] = {}
    n = len(groups)
    for name, params in selected:
        width = len(per_group[0][name])
        tot = [0.0] * width
        for vals in per_group:
            for k in range(width):
                tot[k] += vals[name][k]
        result[name] = [t / n for t in tot] if n > 1 else tot
    return result
