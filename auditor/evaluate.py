"""``audit eval``: trec_eval-compatible metrics for TREC run files, and paired run comparisons.

    audit eval --qrels Q --run R [-m ndcg@10 -m map ...] [--baseline-run B] [-c] [--per-query] [--json]

What is evaluated (trec_eval's rules, :mod:`auditor.metrics` for the metric definitions):

- queries present in both the qrels and the run (trec_eval without ``-c``); run queries
  without qrels are ignored and counted in a note; judged queries the run returned nothing for
  are named in a note, and ``-c`` / ``--complete`` (trec_eval ``-c``) scores them 0 instead;
- documents are ranked by score descending, ties by docno descending (the run's rank column
  is ignored; trec_eval's convention, kept for compatibility, whereas the audits of
  ``audit run`` average over every order of tied items); unjudged documents count as non-relevant;
- judged documents the run did not retrieve still count in the ideal DCG and in R (the MAP and
  recall denominator);
- relevant means ``rel >= --rel-threshold`` (1, trec_eval ``-l``); nDCG uses linear gain
  (``--gain exp`` for ``2**rel - 1``).
- Queries with no relevant document: excluded from the means by default and counted (the
  project-wide policy); ``--no-relevant zero`` scores them 0 as trec_eval does, which
  reproduces trec_eval's averages exactly.

Default metrics (no ``-m``): ``ndcg@10, map, mrr, p@10``. Names: ``ndcg``, ``ndcg@k``,
``map``, ``mrr``, ``p@k``, ``recall@k`` (trec_eval spellings ``ndcg_cut_10``, ``P_10``,
``recip_rank`` are accepted and reported under the names above).

``--json`` prints ``{"metrics": {"ndcg@10": 0.3016, ...}}`` plus ``"per_query": {"301":
{"ndcg@10": ...}, ...}`` with ``--per-query`` (NaN, i.e. excluded queries, print as ``null``)
and ``"comparison": {metric: {...}}`` with ``--baseline-run``.

With ``--baseline-run B`` each metric gets a paired comparison over the queries evaluated in
both runs (queries missing from either run are left out and counted): mean Δ (run − baseline),
its 95% BCa bootstrap CI (10,000 resamples), the paired t-test p (primary), the sign-flip
randomization p (10,000 flips), the Holm-adjusted t-test p across the metrics, the effect size
d_z and wins / ties / losses.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import click

from auditor.errors import AuditorError, DataError
from auditor.inputfiles import InputFile
from auditor.lazy import LazyModule
from auditor.metric_registry import MetricSpec, families, parse_metric
from auditor.safetext import printable

if TYPE_CHECKING:
    from auditor.loaders import TrecTable


# imported on first use: `audit` starts without numpy, pyarrow or the metrics engine (the cli
# imports this module to register `audit eval`)
np: Any = LazyModule("numpy")
M: Any = LazyModule("auditor.metrics")
L: Any = LazyModule("auditor.loaders")

__all__ = ["DEFAULT_METRICS", "RunEvaluation", "evaluate_run", "evaluate_tables", "compare_runs", "eval_cmd"]

DEFAULT_METRICS = ("ndcg@10", "map", "mrr", "p@10")
# built-in metrics a TREC run can give (compliance@1 needs a column TREC files lack)
_TREC_METRICS = [form for f in families(plugins=False).values() if f.column is None for form in f.forms()]


@dataclass
class RunEvaluation:
    """Per-query metrics of one run against qrels.

    Attributes
    ----------
    qids : list of str, length n_queries
        Evaluated queries, sorted by qid string (trec_eval's order).
    per_query : dict[str, ndarray of shape (n_queries,)]
        NaN for queries excluded by the no-relevant policy.
    metrics : list of str
        Canonical metric names, in request order.
    n_run_queries_without_qrels : int
        Run queries ignored because the qrels do not mention them.
    qrels_queries_without_run : list of str
        Judged queries the run returned nothing for: left out of the means, or, with
        ``complete=True`` (trec_eval ``-c``), evaluated as 0 and listed in ``qids`` too.
    """

    qids: list[str]
    per_query: dict[str, np.ndarray]
    metrics: list[str]
    n_run_queries_without_qrels: int = 0
    qrels_queries_without_run: list[str] = field(default_factory=list)
    run_path: str = ""
    qrels_path: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    label_note: str | None = None

    def mean(self, metric: str) -> float:
        return M.mean_metric(self.per_query[metric])[0]

    def n_excluded(self, metric: str) -> int:
        return M.mean_metric(self.per_query[metric])[1]

    def means(self) -> dict[str, float]:
        return {m: self.mean(m) for m in self.metrics}

    def to_json_dict(self, per_query: bool = False) -> dict[str, Any]:
        """``{"metrics": {...}}`` (+ ``"per_query"``), NaN as None."""
        out: dict[str, Any] = {"metrics": {m: _num(self.mean(m)) for m in self.metrics}}
        if per_query:
            out["per_query"] = {q: {m: _num(self.per_query[m][i]) for m in self.metrics}
                                for i, q in enumerate(self.qids)}
        return out


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _specs(metrics: Sequence[str] | None) -> list[MetricSpec]:
    names = list(metrics) if metrics else list(DEFAULT_METRICS)
    specs: list[MetricSpec] = []
    for name in names:
        try:
            s = parse_metric(name)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
        column = s.family.column
        if column is not None:
            raise click.UsageError(f"{s.name} needs a {column} column; TREC files have none.")
        if s not in specs:
            specs.append(s)
    return specs


def evaluate_tables(qrels: TrecTable, run: TrecTable, metrics: Sequence[str] | None = None, *,
                    gain: M.Gain = "linear", rel_threshold: float = 1.0,
                    no_relevant: str = "exclude", complete: bool = False) -> RunEvaluation:
    """Evaluate an already-read run against qrels (see the module docstring for the rules).

    Parameters
    ----------
    qrels, run : TrecTable
        From :func:`auditor.loaders.read_qrels` / :func:`auditor.loaders.read_run`.
    metrics : sequence of str, optional
        Default :data:`DEFAULT_METRICS`.
    gain, rel_threshold, no_relevant
        As in :func:`auditor.metrics.evaluate_many`.
    complete : bool, default False
        trec_eval ``-c``: judged queries the run returned nothing for score 0 on every metric
        (if they have a relevant document; otherwise the ``no_relevant`` policy applies) and
        count in the means. Without it they are left out, as trec_eval does by default, and
        listed in ``qrels_queries_without_run``.

    Returns
    -------
    RunEvaluation

    Raises
    ------
    DataError
        No query is in both files.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    specs = _specs(metrics)
    label_note = _truncate_labels(qrels)
    unjudged = _unjudged_rows(qrels, run) if rel_threshold <= 0 else None
    j = L.join_run_qrels(qrels, run)
    run.drop_caches()
    qrels.drop_caches()
    unret_labels = qrels.value[j.unret_rows]
    qrels_path = qrels.path
    judged = _judged_queries(qrels, rel_threshold)
    del qrels  # the caller's temporaries can go now (evaluate_run passes none): lower peak memory
    m, u = j.run_rows.size, j.unret_rows.size
    nq = j.qids.size
    # lay rows out query by query: the retrieved rows, then the judged-but-unretrieved ones
    # (rows for the ideal DCG and R only); direct positions, no sort. Each input array of the
    # join is released as soon as it is laid out (lower peak memory).
    # query sizes: the join's query numbers are non-decreasing (rows grouped by query)
    cr = np.diff(np.searchsorted(j.run_qidx, np.arange(nq + 1)))
    cu = np.diff(np.searchsorted(j.unret_qidx, np.arange(nq + 1)))
    offsets = np.concatenate([[0], np.cumsum(cr + cu)]).astype(np.int64)
    run_start = np.cumsum(cr) - cr  # index in j.run_rows of each query's first run row
    # run row i (of j.run_rows) of query q lands after the unretrieved rows of the queries before q
    idt = np.int32 if m + u < 2**31 else np.int64
    pos_r = np.repeat((np.cumsum(cu) - cu).astype(idt), cr)
    pos_r += np.arange(m, dtype=idt)
    j.run_qidx = None  # type: ignore[assignment]
    # the join keeps every run row in file order (the common case): no gathers, no row map
    identity = m == len(run) and bool(np.all(j.run_rows[1:] > j.run_rows[:-1]))
    labels = np.empty(m + u)
    if unjudged is not None:
        # with a threshold <= 0 an unjudged document (label 0 from the join) would count as
        # relevant; trec_eval codes it -1 (never relevant, gain 0)
        j.run_labels[unjudged[j.run_rows]] = -1.0
    labels[pos_r] = j.run_labels
    j.run_labels = None  # type: ignore[assignment]
    scores = np.zeros(m + u)
    scores[pos_r] = run.value if identity else run.value[j.run_rows]
    run_rows = None if identity else j.run_rows
    j.run_rows = None  # type: ignore[assignment]
    del pos_r
    retrieved = None
    if u:
        pos_u = np.repeat(np.cumsum(cr).astype(idt), cu)  # after all retrieved rows up to its query
        pos_u += np.arange(u, dtype=idt)
        labels[pos_u] = unret_labels
        retrieved = np.ones(m + u, dtype=bool)
        retrieved[pos_u] = False
        del pos_u

    def fetch(rows: np.ndarray) -> np.ndarray:
        """Docnos of the given evaluation rows (only queries with score ties are ever asked for).

        Row ``offsets[q] + k`` is query ``q``'s ``k``-th retrieved row when ``k < cr[q]``.
        Unretrieved rows are never ranked (they sit after every retrieved row, tied only with
        each other, where order cannot change a metric), so they get an empty id.
        """
        q = np.searchsorted(offsets, rows, side="right") - 1
        k = rows - offsets[q]
        out = np.full(rows.shape, "", dtype=object)
        r_ = k < cr[q]
        if r_.any():
            idx = run_start[q[r_]] + k[r_]
            out[r_] = pc.take(run.docno, pa.array(idx if run_rows is None else run_rows[idx])
                              ).to_numpy(zero_copy_only=False)
        return out.astype(str)

    qids, n_skip = j.qids, j.n_run_queries_without_qrels
    del j, unret_labels  # laid out: free the join's arrays before the metrics allocate theirs
    per = M.evaluate_many(specs, labels, scores, offsets, item_id=M.LazyItemIds(labels.size, fetch),
                          retrieved=retrieved, gain=gain, rel_threshold=rel_threshold, no_relevant=no_relevant,
                          ties="trec_eval")
    qids = [str(q) for q in qids]
    absent = sorted(set(judged) - set(qids))
    if complete and absent:
        # trec_eval -c: an empty ranking scores 0 on every measure; a query without a relevant
        # document follows the no-relevant policy as it would with a ranking
        fill = np.array([0.0 if (judged[q] or no_relevant == "zero") else np.nan for q in absent])
        per = {k: np.concatenate([v, fill]) for k, v in per.items()}
        qids += absent
    srt = np.argsort(np.asarray(qids), kind="stable")  # trec_eval prints queries in qid string order
    return RunEvaluation(qids=[qids[i] for i in srt], per_query={k: v[srt] for k, v in per.items()},
                         metrics=[s.name for s in specs], n_run_queries_without_qrels=n_skip,
                         qrels_queries_without_run=absent, run_path=run.path, qrels_path=qrels_path,
                         options={"gain": gain, "rel_threshold": rel_threshold, "no_relevant": no_relevant,
                                  "complete": complete}, label_note=label_note)


def _truncate_labels(qrels: TrecTable) -> str | None:
    """trec_eval reads relevance with C ``atol``: a non-integer label is truncated toward zero.

    Truncates ``qrels.value`` in place the same way; returns the one-line note saying so, or None.
    """
    v = np.asarray(qrels.value)
    frac = np.flatnonzero(np.isfinite(v) & (v != np.trunc(v)))
    if not frac.size:
        return None
    example = float(v[frac[0]])
    qrels.value = np.trunc(v)
    return (f"{frac.size} relevance label{'s' if frac.size > 1 else ''} in {qrels.path} "
            f"{'are' if frac.size > 1 else 'is'} not integers; truncated toward zero as trec_eval does "
            f"(e.g. {example:g} -> {math.trunc(example)}).")


def _unjudged_rows(qrels: TrecTable, run: TrecTable) -> np.ndarray:
    """bool per run row: the qrels do not judge its (qid, docno) pair (exact string match)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def keys(t: TrecTable) -> Any:
        return pc.binary_join_element_wise(pc.cast(t.qid, pa.binary()), pc.cast(t.docno, pa.binary()),
                                           pa.scalar(b"\x00", pa.binary()))
    judged = pc.is_in(keys(run), value_set=pc.unique(keys(qrels)))
    return ~np.asarray(judged.to_numpy(zero_copy_only=False), dtype=bool)


def _judged_queries(qrels: TrecTable, rel_threshold: float) -> dict[str, bool]:
    """Every qid of the qrels -> whether it has a document with ``rel >= rel_threshold``."""
    first, length, strings = qrels.qid_runs
    out: dict[str, bool] = {}
    if len(first) == 0:
        return out
    best = np.maximum.reduceat(np.asarray(qrels.value), first)  # per run of equal qids
    for q, b in zip(strings.to_pylist(), (best >= rel_threshold).tolist()):
        out[q] = out.get(q, False) or b
    return out


def evaluate_run(qrels_path: str, run_path: str, metrics: Sequence[str] | None = None, *,
                 gain: M.Gain = "linear", rel_threshold: float = 1.0, no_relevant: str = "exclude",
                 complete: bool = False) -> RunEvaluation:
    """Read ``qrels_path`` and ``run_path`` and evaluate (the core of ``audit eval``).

    Parameters
    ----------
    qrels_path, run_path : str
    metrics : sequence of str, optional
        Default :data:`DEFAULT_METRICS` (``ndcg@10, map, mrr, p@10``).
    gain : {"linear", "exp"}, default "linear"
    rel_threshold : float, default 1.0
    no_relevant : {"exclude", "zero"}, default "exclude"
    complete : bool, default False
        trec_eval ``-c`` (see :func:`evaluate_tables`).

    Returns
    -------
    RunEvaluation

    Raises
    ------
    DataError
        Missing, empty, binary or garbled files (file, line, field and fix in the message).
    click.UsageError
        Unknown metric names.
    """
    _specs(metrics)  # reject bad names before reading big files
    # tables passed as temporaries, so evaluate_tables can free the qrels once joined
    # duplicates are found by the join (as part of its sort), not by the readers
    return evaluate_tables(L.read_qrels(os.fspath(qrels_path), check_duplicates=False),
                           L.read_run(os.fspath(run_path), check_duplicates=False), metrics, gain=gain,
                           rel_threshold=rel_threshold, no_relevant=no_relevant, complete=complete)


def compare_runs(cand: RunEvaluation, base: RunEvaluation, *, n_resamples: int = 10_000, level: float = 0.95,
                 seed: int = 0) -> dict[str, Any]:
    """Paired comparison of two evaluations over their common queries, one entry per metric.

    Parameters
    ----------
    cand, base : RunEvaluation
        Same metrics, same qrels.
    n_resamples : int, default 10000
        Bootstrap resamples and sign flips.
    level : float, default 0.95
        Confidence level of the BCa interval.
    seed : int, default 0

    Returns
    -------
    dict
        ``{"n_common_queries": int, "n_unpaired_queries": int, "metrics": {name: {candidate,
        baseline, delta, ci_low, ci_high, ci_method, p_t, p_sign_flip, p_holm, d_z, wins, ties,
        losses, n}}}``; ``p_holm`` adjusts the paired t-test p-values across the metrics.
    """
    from auditor import stats

    common = sorted(set(cand.qids) & set(base.qids))
    ci = {q: i for i, q in enumerate(cand.qids)}
    bi = {q: i for i, q in enumerate(base.qids)}
    a_idx = np.array([ci[q] for q in common], dtype=np.int64)
    b_idx = np.array([bi[q] for q in common], dtype=np.int64)
    unpaired = len(set(cand.qids) ^ set(base.qids))
    rows: dict[str, dict[str, Any]] = {}
    p_t: list[float] = []
    for m in cand.metrics:
        x = cand.per_query[m][a_idx]
        y = base.per_query[m][b_idx]
        ok = np.isfinite(x) & np.isfinite(y)
        d = x[ok] - y[ok]
        t = stats.paired_t_test(x[ok], y[ok])
        sf = stats.sign_flip_test(d, n_resamples=n_resamples, seed=seed)
        if d.size >= 2:
            bc = stats.bootstrap_ci(d, n_resamples=n_resamples, level=level, method="bca", seed=seed)
            ci_low, ci_high, ci_method = _num(bc.low), _num(bc.high), bc.method
        else:  # one paired value has no spread to resample: no interval rather than a zero-width one
            ci_low = ci_high = None
            ci_method = "none (fewer than 2 paired queries)"
        w, ti, lo = stats.win_tie_loss(d)
        rows[m] = {"candidate": _num(x[ok].mean()) if ok.any() else None,
                   "baseline": _num(y[ok].mean()) if ok.any() else None,
                   "delta": _num(d.mean()) if d.size else None,
                   "ci_low": ci_low, "ci_high": ci_high, "ci_level": level, "ci_method": ci_method,
                   "p_t": _num(t.p_value), "p_sign_flip": _num(sf.p_value), "p_holm": None,
                   "d_z": _num(stats.effect_size_dz(d)), "wins": w, "ties": ti, "losses": lo, "n": int(d.size)}
        p_t.append(t.p_value if np.isfinite(t.p_value) else 1.0)
    adj = stats.holm(np.asarray(p_t))
    for m, p in zip(cand.metrics, adj):
        rows[m]["p_holm"] = _num(p)
    return {"n_common_queries": len(common), "n_unpaired_queries": unpaired, "metrics": rows}


# --------------------------------------------------------------------------- rendering
def _fmt(x: Any, nd: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _fmt_p(p: Any) -> str:
    if p is None:
        return "-"
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def _table(header: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = set(range(1, len(header))) if right is None else right
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_text(ev: RunEvaluation, *, per_query: bool = False, comparison: dict[str, Any] | None = None) -> str:
    """The human-readable output of ``audit eval``."""
    nq = len(ev.qids)
    rows = []
    for m in ev.metrics:
        mean, excl = M.mean_metric(ev.per_query[m])
        rows.append([m, _fmt(mean), str(nq - excl), str(excl)])
    out = [_table(["metric", "mean", "queries", "excluded"], rows)]
    notes = []
    if any(ev.n_excluded(m) for m in ev.metrics):
        notes.append("excluded = queries with no relevant judged document (no_relevant='exclude'); "
                     "trec_eval scores them 0: use --no-relevant zero to match its averages.")
    k = ev.n_run_queries_without_qrels
    if k:
        notes.append(f"{k} run {'query has' if k == 1 else 'queries have'} no qrels and "
                     f"{'was' if k == 1 else 'were'} ignored (as trec_eval does).")
    note = _absent_note(ev)
    if note:
        notes.append(note)
    if ev.label_note:
        notes.append(ev.label_note)
    if per_query:
        pq_rows = [[q, *[_fmt(float(ev.per_query[m][i])) for m in ev.metrics]] for i, q in enumerate(ev.qids)]
        out.append("")
        out.append(_table(["qid", *ev.metrics], pq_rows))
    if comparison is not None:
        out.append("")
        out.append(f"paired comparison: run - baseline over {comparison['n_common_queries']} common queries")
        crow = []
        for m, r in comparison["metrics"].items():
            ci = f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            delta = "-" if r["delta"] is None else f"{r['delta']:+.4f}"
            crow.append([m, _fmt(r["candidate"]), _fmt(r["baseline"]), delta, ci, _fmt_p(r["p_t"]),
                         _fmt_p(r["p_sign_flip"]), _fmt_p(r["p_holm"]), _fmt(r["d_z"], 3),
                         f"{r['wins']}/{r['ties']}/{r['losses']}"])
        out.append(_table(["metric", "run", "baseline", "delta", "95% CI (BCa)", "p (t)", "p (sign-flip)",
                           "p (Holm)", "d_z", "W/T/L"], crow))
        few = min((r["n"] for r in comparison["metrics"].values()), default=0)
        if few < 2:
            notes.append(f"only {few} {'query' if few == 1 else 'queries'} evaluated in both runs: no confidence "
                         "interval or test is possible (it needs at least 2).")
        k = comparison["n_unpaired_queries"]
        if k:
            notes.append(f"{k} {'query' if k == 1 else 'queries'} evaluated in only one of the runs "
                         f"{'was' if k == 1 else 'were'} left out of the paired tests.")
        notes.append("p (t): paired t-test (primary); p (Holm): t-test p adjusted across the metrics above.")
    if notes:
        out.append("")
        out.extend(f"note: {n}" for n in notes)
    return "\n".join(out)


def _absent_note(ev: RunEvaluation) -> str | None:
    """The note on judged queries the run returned nothing for, or None."""
    absent = ev.qrels_queries_without_run
    if not absent:
        return None
    k = len(absent)
    shown = ", ".join(absent[:5]) + (", ..." if k > 5 else "")
    if ev.options.get("complete"):
        return (f"{k} judged {'query' if k == 1 else 'queries'} with no results in the run "
                f"scored 0 (--complete, as trec_eval -c): {shown}.")
    return (f"{k} judged {'query has' if k == 1 else 'queries have'} no results in the run and "
            f"{'was' if k == 1 else 'were'} left out of the means (trec_eval's default): {shown}; "
            "--complete (trec_eval -c) scores them 0, so a run cannot gain by skipping hard queries.")


# --------------------------------------------------------------------------- click command
class _EvalExit(click.ClickException):
    """User error with exit code 2 (same contract as the ``audit`` group)."""

    exit_code = 2


@click.command("eval")
@click.option("--qrels", "qrels_path", required=True, type=InputFile(),
              help="TREC qrels file: 'qid iter docno relevance'.")
@click.option("--run", "run_path", required=True, type=InputFile(),
              help="TREC run file: 'qid Q0 docno rank score tag'.")
@click.option("-m", "--metric", "metric_names", multiple=True, metavar="NAME",
              help=f"Metric (repeatable): {', '.join(_TREC_METRICS)}, "
                   "or an installed plugin's (audit list). Default: ndcg@10, map, mrr, p@10.")
@click.option("--baseline-run", type=InputFile(),
              help="A second run: adds the paired significance table (run - baseline).")
@click.option("--per-query", is_flag=True, help="Also print every query's values.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {\"metrics\": {...}, \"per_query\": {...}}.")
@click.option("--no-relevant", type=click.Choice(["exclude", "zero"]), default="exclude", show_default=True,
              help="Queries with no relevant document: excluded from means, or scored 0 (trec_eval).")
@click.option("-c", "--complete", is_flag=True,
              help="Average over every judged query: queries the run returned nothing for score 0 "
                   "(trec_eval -c).")
@click.option("--rel-threshold", type=float, default=1.0, show_default=True,
              help="Minimum relevance counted as relevant (trec_eval -l).")
@click.option("--gain", type=click.Choice(["linear", "exp"]), default="linear", show_default=True,
              help="nDCG gain: rel (trec_eval) or 2**rel - 1.")
@click.option("--n-resamples", type=click.IntRange(min=100), default=10_000, show_default=True,
              help="Bootstrap resamples and sign flips for --baseline-run.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the resampling.")
def eval_cmd(qrels_path: str, run_path: str, metric_names: tuple[str, ...], baseline_run: str | None,
             per_query: bool, as_json: bool, no_relevant: str, complete: bool, rel_threshold: float, gain: str,
             n_resamples: int, seed: int) -> None:
    """trec_eval-compatible metrics of a TREC run (and a paired comparison with --baseline-run).

    Evaluates queries present in both files; judged documents the run missed still count in
    the ideal DCG and in R. Tied scores are broken by docno (descending), trec_eval's documented
    convention, kept for compatibility; `audit run` instead scores ties as the expected value
    over every order of the tied documents, so the two can differ on runs with tied scores.
    """
    try:
        ev = evaluate_run(qrels_path, run_path, metric_names or None, gain=gain,  # type: ignore[arg-type]
                          rel_threshold=rel_threshold, no_relevant=no_relevant, complete=complete)
        comparison = None
        if baseline_run is not None:
            base = evaluate_run(qrels_path, baseline_run, metric_names or None, gain=gain,  # type: ignore[arg-type]
                                rel_threshold=rel_threshold, no_relevant=no_relevant, complete=complete)
            comparison = compare_runs(ev, base, n_resamples=n_resamples, seed=seed)
    except AuditorError as e:
        raise _EvalExit(printable(str(e))) from None
    if as_json:
        out = ev.to_json_dict(per_query=per_query)
        if comparison is not None:
            out["comparison"] = comparison["metrics"]
        click.echo(json.dumps(out, indent=1))
        for m in ev.metrics:
            if ev.n_excluded(m):
                click.echo(f"note: {ev.n_excluded(m)} queries without relevant documents excluded from {m} "
                           "(--no-relevant zero scores them 0 like trec_eval).", err=True)
                break
        note = _absent_note(ev)
        if note:
            click.echo(f"note: {note}", err=True)
        if ev.label_note:
            click.echo(f"note: {ev.label_note}", err=True)
    else:
        click.echo(render_text(ev, per_query=per_query, comparison=comparison))
