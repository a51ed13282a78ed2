"""Preference judgments (``-R prefs`` / ``-R qrels_prefs``) and the prefs_* measures of trec_eval 10.0-rc3.

Input (``get_prefs.c``): ``qid jg jsg docno rel_level`` lines; ``qrels_prefs`` reads a qrels file
``qid jg docno rel_level`` with one sub-group per judgment group. ``rel_level`` is C ``atof``;
only its order matters, except that ``> 0`` means relevant and ``0`` non-relevant.

Per query (``form_prefs_counts.c``): the run is ranked by score descending, ties by docno
*ascending* (unlike the qrels path), cut to ``-M``. Judged documents get an internal id: the
retrieved ones 0..NJR-1 in rank order, the others NJR.. in docno order. Each judgment group
(JG) then holds its preferences either

- as equivalence classes (one sub-group): every document of a higher level is preferred to
  every document of a lower one, duplicates counted as often as they occur; or
- as a preference matrix (several sub-groups): the preferences of each sub-group, closed
  transitively; a cycle is an inconsistency (trec_eval aborts: we refuse).

and counts preferences fulfilled / possible among retrieved pairs (``ret``), pairs with one
document retrieved (``imp``) and pairs with none (``notoccur``). A counts matrix sums every
JG's preferences (prefs_pair*). The measures combine those counts exactly as the C code does,
including prefs_avgjg_Rnonrel's recount with R non-relevant documents, whose equivalence-class
version reads the R documents from the lowest class onwards in trec_eval's pool of classes
(into the next JG's classes when the lowest class is smaller than R; past the query's classes
trec_eval reads stale memory: refused).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from auditor.errors import DataError
from auditor.trec_eval.reader import c_atof
from auditor.trec_eval.textfile import read_fields

PREFS_FORM = "'qid jg jsg docno rel_level' (5 whitespace-separated fields, e.g. '301 u1 s1 doc7 2.0')"
QRELS_PREFS_FORM = "'qid jg docno rel_level' (4 whitespace-separated fields, e.g. '301 0 doc7 1')"

#: measure name -> kind of value ("long" counts are summed in the summary, the others averaged)
MEASURES = ("prefs_num_prefs_poss", "prefs_num_prefs_ful", "prefs_num_prefs_ful_ret", "prefs_simp", "prefs_pair",
            "prefs_avgjg", "prefs_avgjg_Rnonrel", "prefs_simp_ret", "prefs_pair_ret", "prefs_avgjg_ret",
            "prefs_avgjg_Rnonrel_ret", "prefs_simp_imp", "prefs_pair_imp", "prefs_avgjg_imp")


@dataclass
class Pref:
    jg: bytes
    jsg: bytes
    docno: bytes
    level: float
    line: int


def read_prefs(path: str, fmt: str) -> dict[bytes, list[Pref]]:
    """Preference lines per qid (qids in byte order), for ``fmt`` 'prefs' or 'qrels_prefs'."""
    levels: dict[bytes, float] = {}  # a file holds few distinct level strings

    def level(tok: bytes) -> float:
        v = levels.get(tok)
        if v is None:
            v = levels[tok] = c_atof(tok)
        return v

    if fmt == "prefs":
        rows = read_fields(path, "prefs", 5, PREFS_FORM)
        prefs = [(t[0], Pref(t[1], t[2], t[3], level(t[4]), no)) for no, t in rows]
    else:
        rows = read_fields(path, "qrels_prefs", 4, QRELS_PREFS_FORM)
        prefs = [(t[0], Pref(t[1], b"0", t[2], level(t[3]), no)) for no, t in rows]
    out: dict[bytes, list[Pref]] = {}
    for qid, p in prefs:
        if math.isnan(p.level):
            raise DataError(f"{fmt} file {path!r}, line {p.line}: rel_level is NaN; trec_eval's sort of the "
                            "preferences is undefined with NaN levels. Give a number.")
        out.setdefault(qid, []).append(p)
    return dict(sorted(out.items()))


@dataclass
class Group:
    """One judgment group's counts (``JG`` in trec_eval.h) and what the Rnonrel recount needs."""

    ful_ret: int = 0
    poss_ret: int = 0
    ful_imp: int = 0
    poss_imp: int = 0
    notoccur: int = 0
    num_rel: int = 0
    num_rel_ret: int = 0
    num_nonrel: int = 0
    num_nonrel_ret: int = 0
    ecs: list[np.ndarray] | None = None  # equivalence classes: sorted internal ids, highest level first
    pool_ecs: list[np.ndarray] | None = None  # every class as written to trec_eval's pool (ecs may omit one)
    ec_start: int = 0  # offset of this JG's classes in the query's class pool
    matrix: np.ndarray | None = None  # preference matrix (bool), when the JG has sub-groups
    rel_array: np.ndarray | None = None


@dataclass
class QueryPrefs:
    groups: list[Group]
    counts: np.ndarray  # (num_judged, num_judged) int: preferences summed over JGs
    njr: int  # judged documents retrieved
    pool: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # all EC ids, JG order
    pair_cache: tuple | None = None


def rank_run(docnos: list[bytes], sims: list[float], max_docs: int, qid: str, path: str) -> list[bytes]:
    """The run's docnos in rank order: score descending, ties by docno ascending; top ``max_docs``."""
    order = sorted(range(len(docnos)), key=lambda k: (-sims[k], docnos[k]))
    ranked = [docnos[k] for k in order[: max(max_docs, 0)]]
    if len(set(ranked)) != len(ranked):
        seen: set[bytes] = set()
        dup = next(d for d in ranked if d in seen or seen.add(d))
        raise DataError(f"run file {path!r}: document {dup.decode('utf-8', 'replace')!r} is retrieved twice for "
                        f"query {qid!r}; trec_eval stops there ('duplicate docs'). Keep one line.")
    return ranked


def form_counts(prefs: list[Pref], ranked: list[bytes], qid: str, path: str) -> QueryPrefs:
    """form_prefs_counts for one query."""
    judged = sorted({p.docno for p in prefs})
    jset = set(judged)
    retrieved = [d for d in ranked if d in jset]
    njr = len(retrieved)
    ids = {d: k for k, d in enumerate(retrieved)}
    rest = [d for d in judged if d not in ids]
    for k, d in enumerate(rest):
        ids[d] = njr + k
    nj = len(judged)
    rows = sorted(((p.jg, p.jsg, -p.level, ids[p.docno], p) for p in prefs), key=lambda r: r[:4])
    counts = np.zeros((nj, nj), dtype=np.int32)  # every JG adds its preferences here
    groups: list[Group] = []
    pool_parts: list[np.ndarray] = []
    pool_len = 0
    i = 0
    while i < len(rows):
        j = i
        while j < len(rows) and rows[j][0] == rows[i][0]:
            j += 1
        block = rows[i:j]
        if len({r[1] for r in block}) > 1:
            g = _matrix_group(block, nj, njr, qid, path, counts)
        else:
            g = _class_group(block, njr, qid, path, counts)
            g.ec_start = pool_len
            for ec in g.pool_ecs:
                pool_parts.append(ec)
                pool_len += ec.size
        groups.append(g)
        i = j
    pool = np.concatenate(pool_parts) if pool_parts else np.zeros(0, dtype=np.int64)
    return QueryPrefs(groups=groups, counts=counts, njr=njr, pool=pool)


def _class_group(block: list, njr: int, qid: str, path: str, counts: np.ndarray) -> Group:
    g = Group()
    ecs: list[np.ndarray] = []
    levels: list[float] = []
    for r in block:
        if not levels or -r[2] != levels[-1]:
            levels.append(-r[2])
            ecs.append([])  # type: ignore[arg-type]
        ecs[-1].append(r[3])  # type: ignore[union-attr]
    g.pool_ecs = [np.array(e, dtype=np.int64) for e in ecs]
    # trec_eval counts classes from a "previous level" of -3.0: a group whose highest level is
    # exactly -3 gets one class fewer, and its lowest class is then left out of every count
    n_ecs = len(ecs) - (1 if levels[0] == -3.0 else 0)
    ecs = g.pool_ecs[:n_ecs]
    levels = levels[:n_ecs]
    g.ecs = ecs
    unique = [np.unique(e).size == e.size for e in ecs]
    for a, (lv, ea) in enumerate(zip(levels, ecs)):
        ret = int((ea < njr).sum())
        if lv > 0.0:
            g.num_rel_ret += ret
            g.num_rel += ea.size
        else:
            g.num_nonrel_ret += ret
            g.num_nonrel += ea.size
        for k, eb in enumerate(ecs[a + 1:]):
            r1, r2 = ea[:, None], eb[None, :]
            if (r1 == r2).any():
                same = int(np.intersect1d(ea, eb)[0])
                doc = next(r[4] for r in block if r[3] == same)
                raise DataError(f"prefs for query {qid!r} in {path!r}: document "
                                f"{doc.docno.decode('utf-8', 'replace')!r} has two different rel_levels in judgment "
                                f"group {doc.jg.decode('utf-8', 'replace')!r} (one sub-group); trec_eval stops there "
                                "('occurs with different rel_level in same jsg'). Keep one level per document.")
            fwd = r1 < r2
            g.ful_ret += int((fwd & (r2 < njr)).sum())
            g.ful_imp += int((fwd & (r2 >= njr) & (r1 < njr)).sum())
            g.notoccur += int(((r1 >= njr) & (r2 >= njr)).sum())
            g.poss_ret += int((~fwd & (r1 < njr)).sum())
            g.poss_imp += int((~fwd & (r1 >= njr) & (r2 < njr)).sum())
            if unique[a] and unique[a + 1 + k]:
                counts[np.ix_(ea, eb)] += 1
            else:  # a document listed twice in one class counts twice
                np.add.at(counts, (np.broadcast_to(r1, fwd.shape).ravel(), np.broadcast_to(r2, fwd.shape).ravel()), 1)
    g.poss_ret += g.ful_ret
    g.poss_imp += g.ful_imp
    return g


def _matrix_group(block: list, nj: int, njr: int, qid: str, path: str, counts: np.ndarray) -> Group:
    g = Group()
    a = np.zeros((nj, nj), dtype=bool)
    rel = np.full(nj, -1.0)
    for k, r in enumerate(block):
        d, lv, p = r[3], -r[2], r[4]
        if (rel[d] > 0.0 and lv == 0.0) or (rel[d] == 0.0 and lv > 0.0):
            raise DataError(f"prefs for query {qid!r} in {path!r}: document {p.docno.decode('utf-8', 'replace')!r} "
                            f"is given rel_level 0 and a positive rel_level in judgment group "
                            f"{p.jg.decode('utf-8', 'replace')!r} (line {p.line}); trec_eval stops there. A "
                            "judgment group must be consistent about non-relevance.")
        rel[d] = lv
        m = k + 1
        while m < len(block) and block[m][1] == r[1] and block[m][2] == r[2]:
            m += 1
        while m < len(block) and block[m][1] == r[1]:
            a[d, block[m][3]] = True
            m += 1
    # only this JG's documents carry preferences: close the relation over them
    idx = np.unique(np.array([r[3] for r in block], dtype=np.int64))
    closure = np.zeros((nj, nj), dtype=bool)
    closure[np.ix_(idx, idx)] = _closure(a[np.ix_(idx, idx)])
    cyc = closure & closure.T
    if cyc.any():
        x, y = np.argwhere(cyc)[0]
        names = {r[3]: r[4].docno.decode("utf-8", "replace") for r in block}
        raise DataError(f"prefs for query {qid!r} in {path!r}: judgment group "
                        f"{block[0][4].jg.decode('utf-8', 'replace')!r} prefers {names.get(x, x)!r} to "
                        f"{names.get(y, y)!r} and the reverse (through its sub-groups); trec_eval aborts on such an "
                        "inconsistency. Put conflicting judgments in different judgment groups.")
    g.matrix = closure
    counts += closure
    g.rel_array = rel
    ret = np.arange(nj) < njr
    g.num_rel_ret = int(((rel > 0.0) & ret).sum())
    g.num_nonrel_ret = int(((rel == 0.0) & ret).sum())
    g.num_rel = int((rel > 0.0).sum())
    g.num_nonrel = int((rel == 0.0).sum())
    upper = np.triu(np.ones((nj, nj), dtype=bool), 1)
    rr = ret[:, None] & ret[None, :]
    g.ful_ret = int((closure & rr & upper).sum())
    g.poss_ret = int((closure & rr & ~upper).sum()) + g.ful_ret
    g.ful_imp = int((closure & ret[:, None] & ~ret[None, :]).sum())
    g.poss_imp = int((closure & ~ret[:, None] & ret[None, :]).sum()) + g.ful_imp
    g.notoccur = int((closure & ~ret[:, None] & ~ret[None, :]).sum())
    return g


def _closure(a: np.ndarray) -> np.ndarray:
    """Transitive closure of a boolean relation (Warshall), diagonal cleared as trec_eval leaves it.

    trec_eval multiplies the matrix (diagonal set) by itself until it stops changing; the fixed
    point is the same closure.
    """
    c = a.copy()
    for k in range(c.shape[0]):
        c |= c[:, k:k + 1] & c[k:k + 1, :]
    np.fill_diagonal(c, False)
    return c


def _ratio(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 else math.copysign(math.inf, a)
    return a / b


def _avg_over_groups(terms: list[float], n: int) -> float:
    s = 0.0
    for t in terms:
        s += t
    return s / n if s > 0.0 else 0.0


def _pair_fractions(q: QueryPrefs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, c_ij / (c_ij + c_ji)) for the document pairs i < j with a preference either way,
    row by row as the C loops visit them."""
    if q.pair_cache is None:
        c = (q.counts & 0xFFFF).astype(np.int64)  # trec_eval's counts are unsigned short
        i, j = np.nonzero(np.triu((c > 0) | (c.T > 0), 1))
        cij, cji = c[i, j], c[j, i]
        q.pair_cache = (i, j, cij / (cij + cji).astype(np.float64))
    return q.pair_cache


def _pairs(q: QueryPrefs, which: str) -> float:
    njr = q.njr
    i, j, frac = _pair_fractions(q)
    both = j < njr
    one = (i < njr) & (j >= njr)
    terms = [frac[both]]  # both retrieved first, then one retrieved (the C loops' order)
    n = int(both.sum())
    if which in ("all", "imp"):
        terms.append(frac[one])
        n += int(one.sum())
    if which == "all":
        n += int((i >= njr).sum())
    flat = np.concatenate(terms)
    s = float(np.cumsum(flat)[-1]) if flat.size else 0.0
    return s / n if n else 0.0


def _recount(g: Group, q: QueryPrefs, ret_only: bool, qid: str) -> tuple[int, int]:
    """prefs_avgjg_Rnonrel's recount with only R non-relevant documents (its ``recalculate``)."""
    njr = q.njr
    ful = poss = 0
    if g.ecs is not None:
        r = g.num_rel_ret if ret_only else g.num_rel
        last_start = g.ec_start + sum(e.size for e in g.ecs[:-1])
        take = []
        for k in range(r):
            if last_start + k >= q.pool.size:
                raise DataError(f"prefs_avgjg_Rnonrel for query {qid!r}: the lowest rel_level class of a judgment "
                                "group has fewer documents than the group's relevant ones and trec_eval 10.0-rc3 "
                                "then reads stale memory; its value is undefined. Leave prefs_avgjg_Rnonrel out "
                                "(-m all_prefs lists the others one by one) or judge more non-relevant documents.")
            v = int(q.pool[last_start + k])
            if ret_only and v >= njr:
                break
            take.append(v)
        new = np.array(take, dtype=np.int64)
        ecs = [e[e < njr] if ret_only else e for e in g.ecs]
        for a in range(len(ecs)):
            targets = list(ecs[a + 1: len(ecs) - 1]) + [new]
            for eb in targets:
                r1, r2 = ecs[a][:, None], eb[None, :]
                good = (r1 < r2) if ret_only else ((r1 < r2) & (r1 < njr))
                ful += int(good.sum())
                poss += int((~good).sum())
        return ful, poss + ful
    rel, a = g.rel_array, g.matrix
    nj = rel.size
    scan = njr if ret_only else nj
    seen, first = 0, scan
    for k in range(scan):
        if rel[k] == 0.0:
            seen += 1
            if seen == g.num_rel + 1:
                first = k
                break
    keep = ~((np.arange(nj) >= first) & (rel == 0.0))
    sub = a & keep[:, None] & keep[None, :]
    ret = np.arange(nj) < njr
    upper = np.triu(np.ones((nj, nj), dtype=bool), 1)
    if ret_only:
        sub = sub & ret[:, None] & ret[None, :]
    ful = int((sub & upper & ret[:, None]).sum())
    poss = int(sub.sum()) - ful
    return ful, poss + ful


def values(q: QueryPrefs, names: list[str], qid: str) -> dict[str, float]:
    """The requested prefs_* values of one query."""
    gs = q.groups
    out: dict[str, float] = {}
    for name in names:
        if name == "prefs_num_prefs_poss":
            v = float(sum(g.poss_ret + g.poss_imp + g.notoccur for g in gs))
        elif name == "prefs_num_prefs_ful":
            v = float(sum(g.ful_ret + g.ful_imp for g in gs))
        elif name == "prefs_num_prefs_ful_ret":
            v = float(sum(g.ful_ret for g in gs))
        elif name in ("prefs_simp", "prefs_simp_ret", "prefs_simp_imp"):
            ful = sum(g.ful_ret + (g.ful_imp if name != "prefs_simp_ret" else 0) for g in gs)
            poss = sum(g.poss_ret + (0 if name == "prefs_simp_ret" else g.poss_imp)
                       + (g.notoccur if name == "prefs_simp" else 0) for g in gs)
            v = ful / poss if poss else 0.0
        elif name in ("prefs_pair", "prefs_pair_ret", "prefs_pair_imp"):
            v = _pairs(q, {"prefs_pair": "all", "prefs_pair_ret": "ret", "prefs_pair_imp": "imp"}[name])
        elif name in ("prefs_avgjg", "prefs_avgjg_ret", "prefs_avgjg_imp"):
            terms = []
            for g in gs:
                if name == "prefs_avgjg":
                    ful, poss = g.ful_ret + g.ful_imp, g.poss_ret + g.poss_imp + g.notoccur
                elif name == "prefs_avgjg_ret":
                    ful, poss = g.ful_ret, g.poss_ret
                else:
                    ful, poss = g.ful_ret + g.ful_imp, g.poss_ret + g.poss_imp
                if poss:
                    terms.append(ful / poss)
            v = _avg_over_groups(terms, len(gs))
        else:  # prefs_avgjg_Rnonrel(_ret)
            ret_only = name.endswith("_ret")
            terms = []
            for g in gs:
                big_r, n = (g.num_rel_ret, g.num_nonrel_ret) if ret_only else (g.num_rel, g.num_nonrel)
                if big_r >= n:
                    if ret_only:
                        ful, poss = g.ful_ret, g.poss_ret
                    else:
                        ful, poss = g.ful_ret + g.ful_imp, g.poss_ret + g.poss_imp + g.notoccur
                    ful += g.num_rel_ret * (big_r - n)
                    poss += g.num_rel * (big_r - n)
                else:
                    ful, poss = _recount(g, q, ret_only, qid)
                terms.append(_ratio(float(ful), float(poss)))
            v = _avg_over_groups(terms, len(gs))
        out[name] = v
    return out
