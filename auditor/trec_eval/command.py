"""``audit trec-eval``: trec_eval 10.0-rc3's command line and output, computed with numpy.

    audit trec-eval [-q] [-c] [-n] [-J] [-l N] [-M N] [-N N] [-R FORMAT] [-Z FILE] [-m MEASURE[.PARAMS]]... QRELS RUN

Same options (short and GNU long forms, e.g. ``--query_eval_wanted``), same measure names and
parameter syntax (``-m P.5,10``, ``-m ndcg_cut.10``, ``-m ndcg.1=3,2=9``, nicknames
``official`` (default), ``all_trec``, ``set``), same lines: ``measure<TAB>qid<TAB>value``
with the measure name padded to 22 characters and values printed ``%6.4f`` (counts as
integers), per-query lines (``-q``) query by query in qrels order, then the ``all`` summary.

``-D 0.QID`` evaluates query QID only (trec_eval's debug-query filter, without traces).
``-R prefs`` / ``qrels_prefs`` / ``qrels_jg`` read preference and multi-assessor judgments
(:mod:`auditor.trec_eval.prefs`, :mod:`auditor.trec_eval.judgment_groups`); ``-Z FILE`` prints
z-scores (:mod:`auditor.trec_eval.zscores`). Not supported (refused with exit 2 and a message
saying what to use instead): debug traces (``-D N`` with N > 0), a negative ``-l``.

``--float32-scores`` stores scores as float32 before ranking, as trec_eval 9.0.8 (and
pytrec_eval, which wraps it) does: scores that differ only beyond float32 precision then tie.
"""
from __future__ import annotations

import getopt
import io
import math
import sys
from dataclasses import dataclass
from typing import Any, Sequence, TextIO

import numpy as np

from auditor.errors import DataError
from auditor.trec_eval import measures as ME
from auditor.trec_eval.measures import _Refuse
from auditor.trec_eval.ranked import Options, build
from auditor.trec_eval.reader import c_atof, c_atol, read_qrels, read_run

VERSION = "10.0-rc3"
REL_FORMATS = ("qrels", "qrels_jg", "prefs", "qrels_prefs")
_SHORT = "hvqm:cl:nD:JN:M:R:T:oZ:"
_LONG = ["help", "version", "query_eval_wanted", "measure=", "complete_rel_info_wanted", "level_for_rel=",
         "nosummary", "Debug_level=", "Judged_docs_only", "Number_docs_in_coll=", "Max_retrieved_per_topic=",
         "Rel_info_format=", "Results_format=", "Output_old_results_format=", "Zscore=", "float32-scores"]


class UsageError(Exception):
    """Bad command line (exit 2)."""


@dataclass
class Selected:
    """A requested measure with its parsed parameters and the names of its printed values."""

    measure: ME.Measure
    params: tuple
    names: list[str]


@dataclass
class Args:
    query: bool = False
    summary: bool = True
    measures: list[str] | None = None
    meas_args: list[tuple[str, str]] | None = None
    opts: Options | None = None
    qrels: str = ""
    run: str = ""
    help: bool = False
    version: bool = False
    debug_query: str | None = None  # -D 0.QID: evaluate that qrels query only
    zscores: str | None = None  # -Z FILE
    rel_format: str = "qrels"  # -R
    n_qrels_queries: int | None = None  # with -D 0.QID: every qrels query (what -c averages over)


def parse_args(argv: Sequence[str]) -> Args:
    """getopt_long parsing as trec_eval does it (options may follow the file names)."""
    try:
        pairs, rest = getopt.gnu_getopt(list(argv), _SHORT, _LONG)
    except getopt.GetoptError as e:
        raise UsageError(f"{e}. See 'audit trec-eval --help'.") from None
    a = Args(measures=[], meas_args=[], opts=Options())
    for opt, val in pairs:
        o = opt.lstrip("-")
        if o in ("h", "help"):
            a.help = True
        elif o in ("v", "version"):
            a.version = True
        elif o in ("q", "query_eval_wanted"):
            a.query = True
        elif o in ("m", "measure"):
            _mark(a, val)
        elif o in ("c", "complete_rel_info_wanted"):
            a.opts.complete = True
        elif o in ("l", "level_for_rel"):
            a.opts.relevance_level = c_atol(val.encode())
        elif o in ("n", "nosummary"):
            a.summary = False
        elif o in ("J", "Judged_docs_only"):
            a.opts.judged_only = True
        elif o in ("N", "Number_docs_in_coll"):
            a.opts.num_docs_in_coll = c_atol(val.encode())
        elif o in ("M", "Max_retrieved_per_topic"):
            a.opts.max_docs = c_atol(val.encode())
        elif o in ("R", "Rel_info_format"):
            if val not in REL_FORMATS:
                raise UsageError(f"-R {val}: unknown relevance format (trec_eval: 'Illegal rel_format'); give one "
                                 f"of {', '.join(REL_FORMATS)}.")
            a.rel_format = val
        elif o in ("T", "Results_format"):
            if val != "trec_results":
                raise UsageError(f"-T {val}: only the 'trec_results' format exists.")
        elif o in ("o", "Output_old_results_format"):
            pass  # obsolete in trec_eval too: no effect
        elif o in ("Z", "Zscore"):
            a.zscores = val
        elif o in ("D", "Debug_level"):
            level, dot, query = val.partition(".")
            if c_atol(level.encode()) != 0:
                raise UsageError(f"-D {val}: debug levels above 0 print trec_eval's internal traces, which are not "
                                 "reproduced. -D 0.QID (evaluate query QID only) is supported; use -q for "
                                 "per-query values.")
            a.debug_query = query if dot else None
        elif o == "float32-scores":
            a.opts.float32_scores = True
    if a.help or a.version:
        return a
    if len(rest) != 2:
        raise UsageError(f"expected 2 file arguments, QRELS and RUN, got {len(rest)}. "
                         "Usage: audit trec-eval [-q] [-c] [-m measure[.params]]... QRELS RUN")
    a.qrels, a.run = rest
    if a.opts.max_docs < 0:
        raise UsageError(f"-M {a.opts.max_docs}: trec_eval then reports negative document counts; give -M 0 or more.")
    if a.opts.relevance_level < 0 and a.rel_format in ("qrels", "qrels_jg"):
        raise UsageError(f"-l {a.opts.relevance_level}: a negative relevance level makes trec_eval count "
                         "unjudged documents (coded -1/-2) as relevant; not supported. Use -l 0 or more.")
    defaulted = not a.measures
    if defaulted:
        _mark(a, "official")
    _check_formats(a, defaulted)
    return a


_FORMAT_WORDS = {"qrels": "-R qrels (the default)", "prefs": "-R prefs or -R qrels_prefs", "qrels_jg": "-R qrels_jg"}
_FORMAT_NICK = {"qrels": "official or all_trec", "prefs": "all_prefs or prefs", "qrels_jg": "qrels_jg",
                "qrels_prefs": "all_prefs or prefs"}


def _check_formats(a: Args, defaulted: bool) -> None:
    """Every requested measure must read the -R format given (trec_eval: "Can't calculate measure")."""
    for name in a.measures or ():
        need = ME.BY_NAME[name].rel_format
        fits = need == "any" or need == a.rel_format or (need == "prefs" and a.rel_format == "qrels_prefs")
        if not fits:
            what = "the default measures (-m official)" if defaulted else f"-m {name}"
            verb = "need" if defaulted else "needs"
            raise UsageError(f"{what} {verb} {_FORMAT_WORDS[need]} judgments, not -R {a.rel_format} "
                             f"(trec_eval stops: \"Can't calculate measure '{name}'\"). With -R {a.rel_format} "
                             f"request -m {_FORMAT_NICK[a.rel_format]} (or their measures) explicitly.")


def _mark(a: Args, arg: str) -> None:
    name, dot, params = arg.partition(".")
    if dot:
        if params == "":
            raise UsageError(f"-m {arg}: empty parameter list (trec_eval: 'improper measure in parameter').")
        a.meas_args.append((name, params))
    if name in ME.NICKNAMES:
        a.measures.extend(ME.NICKNAMES[name])
    elif name in ME.BY_NAME:
        a.measures.append(name)
    else:
        raise UsageError(f"-m {arg}: unknown measure (trec_eval: 'illegal measure'). "
                         "See 'audit trec-eval --help' for the list.")


def _c_fmt_double(value: float) -> str:
    return "%3.2f" % value


def select(a: Args) -> list[Selected]:
    """The measures to compute, in trec_eval's order, with parameters and value names."""
    wanted = set(a.measures or ())
    shared = sorted(wanted & {"dcg", "ideal_dcg", "ndcg"})
    if len(shared) > 1 and any(n in shared for n, _ in (a.meas_args or ())):
        raise UsageError(f"-m {' -m '.join(shared)} with gain parameters: in trec_eval 10.0-rc3 these measures "
                         "share one parameter block, which it frees twice (it crashes). Request one of them "
                         "with parameters per run.")
    out = []
    for m in ME.MEASURES:
        if m.name not in wanted:
            continue
        given = next((p for n, p in (a.meas_args or ()) if n == m.name), None)
        out.append(_params(m, given))
    return out


def _params(m: ME.Measure, given: str | None) -> Selected:
    if m.params == "none":
        return Selected(m, (), [m.name])
    if m.params == "cut_long":
        if given is None:
            vals = list(m.default)
        else:
            vals = sorted(c_atol(t.encode()) for t in given.split(","))
            if vals[0] <= 0:
                raise UsageError(f"-m {m.name}.{given}: cutoffs must be positive (trec_eval: 'Negative cutoff "
                                 "detected').")
            if len(set(vals)) != len(vals):
                raise UsageError(f"-m {m.name}.{given}: duplicate cutoffs (trec_eval refuses them).")
        return Selected(m, tuple(vals), [f"{m.name}_{v}" for v in vals])
    if m.params == "cut_double":
        if given is None:
            vals_d = list(m.default)
        else:
            vals_d = sorted(c_atof(t.encode()) for t in given.split(","))
            if any(math.isnan(v) for v in vals_d) or len(set(vals_d)) != len(vals_d):
                raise UsageError(f"-m {m.name}.{given}: duplicate (or NaN) cutoffs (trec_eval refuses them).")
        # the C name buffer holds len(name) + 9 characters
        names = [f"{m.name}_{_c_fmt_double(v)}"[: len(m.name) + 9] for v in vals_d]
        return Selected(m, tuple(vals_d), names)
    if m.params == "p_double":
        if given is None:
            return Selected(m, tuple(m.default), [m.name])
        return Selected(m, tuple(c_atof(t.encode()) for t in given.split(",")), [f"{m.name}_{given}"])
    # p_pair
    if given is None:
        return Selected(m, tuple(m.default), [m.name])
    last = ","
    for ch in given:
        if ch == ",":
            if last == ",":
                break
            last = ","
        elif ch == "=":
            if last == "=":
                last = ","
                break
            last = "="
    if last != "=":
        raise UsageError(f"-m {m.name}.{given}: malformed pair parameters; expected name=value[,name=value...] "
                         "(e.g. -m ndcg.1=1,2=3 or -m rbp.p=0.95).")
    pairs = []
    for seg in given.split(","):
        name, _, value = seg.partition("=")
        pairs.append((name, c_atof(value.encode())))
    return Selected(m, tuple(pairs), [f"{m.name}_{given}"])


_RESET_EXACT = ("num_ret", "utility", "rbp_resid")


def evaluate(a: Args) -> tuple[Any, list[Selected], dict[str, np.ndarray], list[str] | None]:
    """(ranked lists, selected measures, per-query values by printed name, relstrings)."""
    sel = select(a)
    if a.rel_format != "qrels":
        ranked, values = _evaluate_other_format(a, sel)
        _zscores(a, ranked, sel, values)
        return ranked, sel, values, None
    qrels, run = _read_both(a.qrels, a.run)
    n_positive = None
    if a.debug_query is not None:
        qrels, run, n_positive, a.n_qrels_queries = _one_query(qrels, run, a.debug_query)
    ranked = build(qrels, run, a.opts)
    del qrels, run  # the files' columns: freed for the kernels' temporaries (fresh memory costs page faults)
    if n_positive is not None:
        ranked.n_qrels_positive = n_positive  # -c num_rel sums every qrels query, evaluated or not
    nq = len(ranked.qids)
    computed = [s for s in sel if s.measure.kernel is not None]
    blocks = {s.measure.name: np.zeros((nq, len(s.names))) for s in computed}
    for idx, chunk in ranked.chunks():  # one chunk at a time: its cached intermediates are shared, then freed
        for s in computed:
            blocks[s.measure.name][idx] = s.measure.kernel(chunk, s.params)
    values: dict[str, np.ndarray] = {}
    for s in computed:
        for k, name in enumerate(s.names):
            values[name] = blocks[s.measure.name][:, k]
    rel_strings = None
    rs = next((s for s in sel if s.measure.name == "relstring"), None)
    if rs is not None and a.query:
        rel_strings = _relstrings(ranked, rs.params[0])
    if ranked.bogus.any():
        for name, v in values.items():
            if name in _RESET_EXACT or name.startswith("unj"):
                v[ranked.bogus] = 0.0
        if rel_strings is not None and rs.names[0] == "relstring":  # trec_eval compares the full name
            for q in np.flatnonzero(ranked.bogus):
                rel_strings[q] = ""
    _zscores(a, ranked, sel, values)
    return ranked, sel, values, rel_strings


def _read_both(qrels_path: str, run_path: str) -> tuple[Any, Any]:
    """Read the qrels and the run at once, the run in a second thread; the qrels' error first, as in trec_eval.

    The CSV parser releases the GIL, so the two files are parsed on two cores (measured at
    20,000 queries x 100 on 2 cores: 14% less wall time, the same CPU time); each reader then
    parses in its own thread rather than in Arrow's pool.
    """
    import threading

    got: dict[str, Any] = {}

    def read() -> None:
        try:
            got["run"] = read_run(run_path, threads=False)
        except BaseException as e:  # re-raised below, after the qrels' own error if any
            got["error"] = e

    t = threading.Thread(target=read, daemon=True)
    t.start()
    # an error in the qrels (or Ctrl-C) is raised at once, not after the run is read: the thread's
    # result is then dropped (the process entry ends it with the process)
    qrels = read_qrels(qrels_path, threads=False)
    t.join()
    if "error" in got:
        raise got["error"]
    return qrels, got["run"]


def _zscores(a: Args, ranked: Any, sel: list[Selected], values: dict[str, np.ndarray]) -> None:
    """-Z: per-query values to z-scores, in place (after -c's resets, before averaging, as trec_eval)."""
    if a.zscores is None:
        return
    from auditor.trec_eval import zscores

    table = zscores.read_zscores(a.zscores)
    nq = len(ranked.qids)
    # every value trec_eval holds per query is looked up, printed or not (relstring, num_q)
    probe = {name: values[name] if name in values else np.zeros(nq)
             for s in sel if s.measure.summary != "runid" for name in s.names}
    zscores.apply(table, ranked.qids, probe)


def _run_by_query(a: Args) -> tuple[Any, dict[bytes, tuple[list[bytes], list[float]]]]:
    run = read_run(a.run)
    sims = np.asarray(run.sim, dtype=np.float64)
    if a.opts.float32_scores:
        sims = sims.astype(np.float32).astype(np.float64)
    if np.isnan(sims).any():
        raise DataError(f"run file {run.path!r}: a score is NaN; trec_eval's sort is undefined with NaN scores. "
                        "Replace it with a number.")
    sims = sims + 0.0  # -0.0 ties 0.0, as in C
    if hasattr(run.qid, "indices"):  # the fast reader's dictionary array
        names = run.qid.dictionary.to_pylist()
        codes = np.asarray(run.qid.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        docs_in = lambda rows: run.docno.take(rows).to_pylist()  # noqa: E731
    else:  # the line parser's arrays of bytes
        uq, codes = np.unique(run.qid, return_inverse=True)
        names = uq.tolist()
        docs_in = lambda rows: run.docno[rows].tolist()  # noqa: E731
    order = np.argsort(codes, kind="stable")  # each query's rows, in file order
    sc = codes[order]
    cuts = (np.flatnonzero(sc[1:] != sc[:-1]) + 1).tolist()
    d_sorted, x_sorted = docs_in(order), sims[order].tolist()
    groups: dict[bytes, tuple[list[bytes], list[float]]] = {}
    for a0, a1 in zip([0, *cuts], [*cuts, sc.size]):
        groups[names[int(sc[a0])]] = (d_sorted[a0:a1], x_sorted[a0:a1])
    return run, groups


def _evaluate_other_format(a: Args, sel: list[Selected]) -> tuple[Any, dict[str, np.ndarray]]:
    """-R prefs / qrels_prefs / qrels_jg: per-query values of runid, num_q and the format's measures."""
    from types import SimpleNamespace

    from auditor.trec_eval import judgment_groups as JG
    from auditor.trec_eval import prefs as PR
    from auditor.trec_eval.ranked import BOGUS_DOCNO

    is_prefs = a.rel_format in ("prefs", "qrels_prefs")
    judgments: dict[bytes, Any] = (PR.read_prefs(a.qrels, a.rel_format) if is_prefs
                                   else JG.read_qrels_jg(a.qrels))
    run, by_query = _run_by_query(a)
    qids = list(judgments)
    if a.debug_query is not None:
        key = a.debug_query.encode("utf-8", "surrogateescape")
        if key not in judgments:
            raise UsageError(f"-D 0.{a.debug_query}: query {a.debug_query!r} is not in {a.qrels!r} (trec_eval: "
                             "'No queries with both results and relevance info').")
        a.n_qrels_queries = len(qids)
        qids = [key]
    missing = [q for q in qids if q not in by_query]
    if missing and not a.opts.complete:
        raise DataError(f"query {missing[0].decode('utf-8', 'replace')!r} has judgments in {a.qrels!r} but no "
                        f"results in {a.run!r} ({len(missing)} such queries); trec_eval 10.0-rc3 stops there "
                        "without -c (its message: \"result qid ... not found in qrels\"). Pass -c to evaluate them "
                        "against an empty ranking, or drop their judgments.")
    computed = [s for s in sel if s.measure.summary != "runid" and s.measure.name != "num_q"]
    nq = len(qids)
    values: dict[str, np.ndarray] = {name: np.zeros(nq) for s in sel if s.measure.summary != "runid"
                                     for name in s.names}
    if "num_q" in values:
        values["num_q"][:] = 1.0
    for q, qid in enumerate(qids):
        name_q = qid.decode("utf-8", "surrogateescape")
        docs, sims = by_query.get(qid, ([BOGUS_DOCNO], [1.0]))
        if is_prefs:
            ranked = PR.rank_run(docs, sims, a.opts.max_docs, name_q, a.run)
            counts = PR.form_counts(judgments[qid], ranked, name_q, a.qrels)
            got = PR.values(counts, [s.measure.name for s in computed], name_q)
            for s in computed:
                values[s.names[0]][q] = got[s.measure.name]
        else:
            ranked = JG.rank_run(docs, sims, a.opts.max_docs, name_q, a.run)
            got_jg = JG.values(judgments[qid], ranked, a.opts.relevance_level, a.opts.judged_only,
                               [(s.measure.name, s.params) for s in computed])
            for s in computed:
                for name, v in zip(s.names, got_jg[s.measure.name]):
                    values[name][q] = v
    ranked_ns = SimpleNamespace(qids=[q.decode("utf-8", "surrogateescape") for q in qids], runid=run.runid,
                                n_qrels_positive=0, bogus=np.array([q not in by_query for q in qids]))
    return ranked_ns, values


def _one_query(qrels: Any, run: Any, qid: str) -> tuple[Any, Any, int, int]:
    """``-D 0.QID``: the qrels and run rows of query QID only, the qrels' positive count and query count."""
    from dataclasses import replace

    key = qid.encode("utf-8", "surrogateescape")
    qk = _rows_of(qrels.qid, key)
    if not qk.any():
        raise UsageError(f"-D 0.{qid}: query {qid!r} is not in {qrels.path!r} (trec_eval: 'No queries with both "
                         "results and relevance info').")
    rk = _rows_of(run.qid, key)
    n_positive = int((np.asarray(qrels.rel) > 0).sum())
    qids = qrels.qid.to_pylist() if hasattr(qrels.qid, "to_pylist") else qrels.qid.tolist()
    return (replace(qrels, qid=_take(qrels.qid, qk), docno=_take(qrels.docno, qk), rel=np.asarray(qrels.rel)[qk]),
            replace(run, qid=_take(run.qid, rk), docno=_take(run.docno, rk), sim=np.asarray(run.sim)[rk]), n_positive,
            len(set(qids)))


def _rows_of(col: Any, key: bytes) -> np.ndarray:
    """bool per row: the column (pyarrow binary, or numpy array of bytes) equals ``key``."""
    if hasattr(col, "to_numpy"):
        import pyarrow as pa
        import pyarrow.compute as pc

        eq = pc.equal(col, pa.scalar(key, type=col.type))
        return np.asarray(eq.to_numpy(zero_copy_only=False), dtype=bool)
    return np.array([q == key for q in col.tolist()], dtype=bool)


def _take(col: Any, mask: np.ndarray) -> Any:
    if hasattr(col, "filter"):
        import pyarrow as pa

        return col.filter(pa.array(mask))
    return col[mask]


def _relstrings(ranked: Any, length: float) -> list[str]:
    n = max(int(length), 0) if math.isfinite(length) else 0
    out = []
    for q in range(len(ranked.qids)):
        a, b = ranked.starts[q], ranked.starts[q + 1]
        chars = []
        for r in ranked.rels[a: min(b, a + n)].tolist():
            chars.append(">" if r > 9 else chr(48 + r) if r >= 0 else "-" if r == -1 else "." if r == -2 else "<")
        out.append("".join(chars))
    return out


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "%6s" % "-nan"
    return "%6.4f" % v


def _c_long(v: float) -> int:
    return int(v) if math.isfinite(v) else 0


def render(a: Args, ranked: Any, sel: list[Selected], values: dict[str, np.ndarray],
           rel_strings: list[str] | None, out: TextIO) -> None:
    """Print trec_eval's lines: per query (with -q), then the summary."""
    nq = len(ranked.qids)
    w = out.write
    z = "Z" if a.zscores is not None else ""  # z-scores: every value printed as a double, names prefixed
    if a.query:
        cols = []
        for s in sel:
            m = s.measure
            if not m.per_query:
                continue
            if m.name == "relstring":
                cols.append(("relstring", s.names[0], None))
                continue
            for name in s.names:
                cols.append(("long" if m.long and not z else "double", name, values[name]))
        pads = [f"{name:<22}\t" if kind == "relstring" else f"{z}{name:<22}\t" for kind, name, _ in cols]
        formatted = []
        for kind, name, v in cols:
            if kind == "long":
                formatted.append([str(_c_long(x)) for x in v.tolist()])
            elif kind == "double":
                formatted.append(_format_many(v))
            else:
                formatted.append(None)
        lines = []
        for q, qid in enumerate(ranked.qids):
            for k, (kind, name, v) in enumerate(cols):
                if kind == "relstring":
                    lines.append(f"{pads[k]}{qid}\t'{rel_strings[q]}'\n")
                else:
                    lines.append(f"{pads[k]}{qid}\t{formatted[k][q]}\n")
        w("".join(lines))
    if not a.summary:
        return
    # -c averages over every qrels query; with -D 0.QID that is more than the one evaluated, and
    # the geometric means count the others at MIN_GEO_MEAN (meas_avg.c)
    n_avg = a.n_qrels_queries if (a.opts.complete and a.n_qrels_queries) else nq
    for s in sel:
        m = s.measure
        if m.summary == "runid":
            w(f"{'runid':<22}\tall\t{ranked.runid}\n")
            continue
        if m.summary == "none":
            continue
        for name in s.names:
            v = values[name]
            head = f"{z}{name:<22}\tall\t"
            if m.summary == "count":
                w(f"{head}{_fmt(n_avg) if z else n_avg}\n")
            elif m.summary == "sum":
                w(f"{head}{_fmt(_seq(v)) if z else _c_long(_seq(v))}\n")
            elif m.summary == "num_rel":
                total = ranked.n_qrels_positive if a.opts.complete else _seq(v)
                w(f"{head}{_fmt(total) if z else _c_long(total)}\n")
            elif m.summary == "gm":
                total = _seq(v)
                if n_avg != nq:
                    total += (n_avg - nq) * math.log(ME.MIN_GEO_MEAN)
                w(f"{head}{_fmt(_c_exp(total / n_avg))}\n")
            else:
                w(f"{head}{_fmt(_seq(v) / n_avg)}\n")


def _c_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:  # C's exp gives inf
        return math.inf


def _seq(v: np.ndarray) -> float:
    """Left-to-right sum, in qrels order, as trec_eval accumulates."""
    return float(np.cumsum(v)[-1]) if v.size else 0.0


def _format_many(v: np.ndarray) -> list[str]:
    if np.isnan(v).any():
        return [_fmt(x) for x in v.tolist()]
    return ["%6.4f" % x for x in v.tolist()]


HELP = """Usage: audit trec-eval [options] QRELS RUN

trec_eval, as a drop-in: the same command line and the same output lines as trec_eval
{version} (the version matched; scores read as double precision), computed with numpy.
RUN '-' reads standard input.

Options (trec_eval's; long forms too, e.g. --query_eval_wanted):
  -q            per-query values too (query by query, qrels order), then the summary
  -m MEASURE    add MEASURE (repeatable); MEASURE.PARAMS sets parameters, e.g.
                -m P.5,10  -m ndcg_cut.10  -m iprec_at_recall..25,.5  -m ndcg.1=3,2=9
                -m rbp.p=0.95  -m utility.2,-1,0,0  -m set_F.0.5  -m relstring.20
                nicknames: official (the default), all_trec, set; with -R prefs or
                qrels_prefs: all_prefs, prefs; with -R qrels_jg: qrels_jg
  -c            average over every qrels query; a query the run lacks scores 0
                (without -c such a query is an error, as in trec_eval {version})
  -l N          relevance level: rel >= N is relevant (default 1)
  -n            no summary lines
  -J            judged documents only (unjudged ones removed before ranking)
  -M N          evaluate only the top N documents of each query
  -N N          number of documents in the collection (utility)
  -R FORMAT     relevance file format: qrels (default, 'qid iter docno rel'),
                qrels_jg ('qid jg docno rel': one judgment group per assessor; the
                *_avgjg measures average over groups), prefs ('qid jg jsg docno
                rel_level': preference judgments; the prefs_* measures) or
                qrels_prefs (a qrels file read as preferences)
  -Z FILE       print z-scores: each per-query value becomes (value - mean) / stddev
                with FILE's 'qid measure mean stddev' lines; names get a 'Z' prefix
                and the summary is the mean z-score. As trec_eval: a query or measure
                missing from FILE, or a zero stddev with value != mean, gives
                -1000000; a lookup trec_eval answers from outside its table (it
                crashes there) is refused with the line to add.
  --float32-scores  store scores as float32 before ranking, as trec_eval 9.0.8 and
                pytrec_eval do (scores equal in float32 then tie, broken by docno)
  -h, --help    this help;  -v  version

Ranking: score descending, ties broken by docno descending (byte order; ascending for
-R prefs/qrels_prefs, as trec_eval); the rank column is ignored. -D 0.QID evaluates query
QID only. Not supported: -D N > 0 (debug traces).
Refused (exit 2) where trec_eval stops, crashes or reads undefined memory: a judged
query missing from the run without -c, duplicate documents, a query judged only below
-1, negative -l or -M, dcg/ideal_dcg/ndcg together with gain parameters, rbp with
per-level gains, a measure the -R format cannot compute, inconsistent preferences,
prefs_avgjg_Rnonrel where trec_eval reads memory it never wrote. rbp normalises graded
gains to [0,1] from 0 and the largest gain, as trec_eval -m all_trec prints (its C code
reads two uninitialised variables there).

Measures (all_trec = every qrels one below except dcg, ideal_dcg, yaap):
{measures}
"""


def help_text() -> str:
    rows = []
    for m in ME.MEASURES:
        params = {"cut_long": f" [cutoffs, default {','.join(map(str, m.default))}]",
                  "cut_double": f" [cutoffs, default {','.join(f'{x:g}' for x in m.default)}]",
                  "p_double": f" [params, default {','.join(f'{x:g}' for x in m.default)}]",
                  "p_pair": " [name=value pairs]", "none": ""}[m.params]
        rows.append(f"  {m.name:<23} {m.explanation}{params}")
    return HELP.format(version=VERSION, measures="\n".join(rows))


def main(argv: Sequence[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command; returns the exit status (0, or 2 for a refused input)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        a = parse_args(argv)
        if a.help:
            out.write(help_text())
            return 0
        if a.version:
            out.write(f"audit trec-eval: trec_eval version {VERSION} (reproduced)\n")
            return 0
        ranked, sel, values, rel_strings = evaluate(a)
        buf = io.StringIO()
        render(a, ranked, sel, values, rel_strings, buf)
        text = buf.getvalue()
        raw = getattr(out, "buffer", None)
        if raw is not None:  # qids and run ids are bytes in trec_eval: write them back unchanged
            out.flush()
            raw.write(text.encode("utf-8", "surrogateescape"))
            raw.flush()
        else:
            out.write(text)
        return 0
    except (UsageError, _Refuse) as e:
        err.write(f"audit trec-eval: error: {e}\n")
        return 2
    except DataError as e:
        err.write(f"audit trec-eval: error: {e}\n")
        return 2
