"""TREC runs (``qid Q0 docno rank score tag``) and qrels (``qid iter docno rel``), and their join.

:func:`read_run` / :func:`read_qrels` give a :class:`TrecTable`; :func:`join_run_qrels` joins
them by (qid, docno) into a :class:`TrecJoin`; :func:`read_trec` makes a
:class:`~auditor.data.RankingDataset` of the retrieved rows. Rules: :mod:`auditor.loaders`
("TREC").

Two readers: :func:`read_trec_lines` (line by line, the definition, names the offending line)
and the streamed fast reader of :mod:`auditor.loaders._trec_stream`, which hands any file it
cannot read exactly as the slow one does back to it. The join is hashed 64-bit keys with every
match confirmed on the strings (:mod:`auditor.loaders._trec_join`); :func:`reference_join` is
the plain dictionary join it must agree with.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor.data import RankingDataset
from auditor.errors import DataError
from auditor.loaders.common import (LABEL_LIMIT, _check_file, _py, _qid_array, _split_fields, _strict_float,
                                    _text_lines)

__all__ = ["TrecTable", "TrecJoin", "read_run", "read_qrels", "join_run_qrels", "reference_join", "read_trec_lines", "read_trec",
           "align_run_to_dataset"]

class TrecTable:
    """Columns of a TREC run (``qid Q0 docno rank score tag``) or qrels (``qid iter docno rel``) file.

    Qids are kept run-length encoded (files are grouped by query, so a run file of 2 million
    lines holds a few thousand qid runs): ``qid_runs`` gives them, ``qid`` rebuilds the column.

    Parameters
    ----------
    path : str
    kind : {"run", "qrels"}
    qid, docno : pyarrow.Array or ChunkedArray of string, shape (n,)
    value : ndarray of float64, shape (n,)
        The score (run) or the relevance (qrels).
    """

    def __init__(self, path: str, kind: str, qid: Any, docno: Any, value: np.ndarray) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.path, self.kind, self.docno, self.value = path, kind, docno, value
        n = len(value)
        change = np.ones(n, dtype=bool)
        if n > 1:
            eq = pc.equal(qid.slice(1), qid.slice(0, n - 1)).to_numpy(zero_copy_only=False)
            change[1:] = ~np.asarray(eq, dtype=bool)
        first = np.flatnonzero(change)
        strings = pc.take(qid, pa.array(first))
        if isinstance(strings, pa.ChunkedArray):
            strings = strings.combine_chunks()
        #: (first row, length, qid string) of each run of equal consecutive qids
        self.qid_runs: tuple[np.ndarray, np.ndarray, Any] = (first, np.diff(np.append(first, n)), strings)

    @classmethod
    def from_runs(cls, path: str, kind: str, qid_runs: tuple[np.ndarray, np.ndarray, Any], docno: Any,
                  value: np.ndarray) -> "TrecTable":
        """Build from qid runs already computed (``(first row, length, qid string)`` per run)."""
        t = cls.__new__(cls)
        t.path, t.kind, t.docno, t.value = path, kind, docno, value
        t.qid_runs = qid_runs
        return t

    def __len__(self) -> int:
        return int(self.value.shape[0])

    @property
    def qid(self) -> Any:
        """The qid column (rebuilt from the runs)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        first, lens, strings = self.qid_runs
        return pc.take(strings, pa.array(np.repeat(np.arange(first.size), lens)))

    @functools.cached_property
    def pair_key(self) -> np.ndarray:
        """64-bit hash of each (qid, docno) pair, shape (n,) uint64 (qids hashed once per run)."""
        return self.compute_pair_key()

    def compute_pair_key(self, out: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """:attr:`pair_key` computed afresh (not cached), into ``out`` when given; only ``rows`` when given."""
        if "pair_key" in self.__dict__:
            k = self.__dict__["pair_key"]
            if rows is not None:
                return k[rows]
            if out is not None:
                out[:] = k
            return k
        from auditor.loaders._trec_join import pair_keys

        return pair_keys(self, out=out, rows=rows)

    def row_qid_codes(self, rows: np.ndarray, run_codes: np.ndarray) -> np.ndarray:
        """``run_codes[k]`` for the qid run ``k`` holding each of ``rows`` (one code per qid run given)."""
        first = self.qid_runs[0]
        return run_codes[np.searchsorted(first, rows, side="right") - 1]

    def drop_caches(self) -> None:
        """Free the cached pair keys (recomputed on demand)."""
        self.__dict__.pop("pair_key", None)


_TREC_COLS = {"run": ("qid", "q0", "docno", "rank", "score", "tag"), "qrels": ("qid", "iter", "docno", "rel")}
_TREC_EXPECT = {"run": "'qid Q0 docno rank score tag' (6 whitespace-separated fields; more are ignored)",
                "qrels": "'qid iter docno relevance' (4 whitespace-separated fields)"}


def read_run(path: str | os.PathLike, *, check_duplicates: bool = True) -> TrecTable:
    """Read a TREC run file. Raises DataError (file, line, field, fix) on bad input.

    ``check_duplicates=False`` skips the duplicate (qid, docno) check, for a caller that joins
    the table next: :func:`join_run_qrels` finds duplicates as part of its sort, for free.
    """
    return _read_trec_file(os.fspath(path), "run", check_duplicates)


def read_qrels(path: str | os.PathLike, *, check_duplicates: bool = True) -> TrecTable:
    """Read a TREC qrels file. Raises DataError (file, line, field, fix) on bad input (see :func:`read_run`)."""
    return _read_trec_file(os.fspath(path), "qrels", check_duplicates)


def _read_trec_file(path: str, kind: str, check_duplicates: bool = True) -> TrecTable:
    _check_file(path)
    from auditor.loaders._trec_stream import read_fast

    try:
        t = read_fast(path, kind, check_duplicates)
    except Exception:  # noqa: BLE001 - any fast-path failure: the slow parser names the line
        t = None
    if t is None:
        return read_trec_lines(path, kind)
    return t


def read_trec_lines(path: str | os.PathLike, kind: str) -> TrecTable:
    """Read a TREC ``kind`` ("run" or "qrels") file line by line: the definition of the format.

    :func:`read_run` and :func:`read_qrels` use a streamed reader that must give the same table
    and fall back to this one on anything unusual; this one validates everything and names the
    offending line.
    """
    path = os.fspath(path)
    import pyarrow as pa

    cols = _TREC_COLS[kind]
    expect = _TREC_EXPECT[kind]
    qids: list[str] = []
    docs: list[str] = []
    vals: list[float] = []
    seen: dict[tuple[str, str], int] = {}
    field = "score" if kind == "run" else "relevance"
    for no, line in _text_lines(path):
        parts = _split_fields(line)
        if not parts or parts[0].startswith("#"):
            continue  # blank line or comment (trec_eval skips both)
        # trec_eval ignores anything after a run's 6th field; qrels lines have exactly 4
        if len(parts) != len(cols) and not (kind == "run" and len(parts) > len(cols)):
            hint = ""
            if kind == "run" and len(parts) == 4:
                hint = " (this looks like a qrels line: are --qrels and --run swapped?)"
            elif kind == "qrels" and len(parts) == 6:
                hint = " (this looks like a run line: are --qrels and --run swapped?)"
            raise DataError(f"has {len(parts)} fields, expected {expect}{hint}.", path=path, line=no,
                            field=f"{len(parts)} fields", fix="repair or drop the line.")
        q, d, raw = parts[0], parts[2], parts[4] if kind == "run" else parts[3]
        try:
            v = _strict_float(raw)
        except ValueError:
            raise DataError(f"{field} {raw!r} is not a number; expected {expect}.", path=path, line=no, field=field,
                            fix=f"the {'5th' if kind == 'run' else '4th'} field must be a number.") from None
        if not np.isfinite(v):
            raise DataError(f"{field} {raw!r} is not finite.", path=path, line=no, field=field,
                            fix="write a finite number (rank the document last with a very low score).")
        if kind == "qrels" and abs(v) > LABEL_LIMIT:
            raise DataError(f"relevance {raw!r} is outside ±{LABEL_LIMIT:g}.", path=path, line=no, field=field,
                            fix="relevance is a small graded label (e.g. 0-4; negative = non-relevant).")
        key = (q, d)
        if key in seen:
            raise DataError(f"document {d!r} appears twice for query {q!r} (lines {seen[key]} and {no}); "
                            "trec_eval refuses duplicates too.", path=path, line=no, field="docno",
                            fix="keep one line per (qid, docno).")
        seen[key] = no
        qids.append(q)
        docs.append(d)
        vals.append(v)
    if not vals:
        raise DataError(f"has no data lines; expected {expect}.", path=path,
                        fix="check the path and that the file is not empty.")
    return TrecTable(path, kind, pa.array(qids, pa.string()), pa.array(docs, pa.string()),
                     np.asarray(vals, dtype=np.float64))


@dataclass
class TrecJoin:
    """A run joined with its qrels, restricted to the queries in both (trec_eval's rule).

    Queries are numbered 0..n_queries-1 in order of first appearance in the run.

    Attributes
    ----------
    qids : ndarray of str, shape (n_queries,)
    run_rows : ndarray of int64, shape (m,)
        Run rows of those queries, grouped by query (file order kept within a query).
    run_qidx : ndarray of int64, shape (m,)
        Query number of each of those rows (non-decreasing).
    run_labels : ndarray of float64, shape (m,)
        Relevance from the qrels (0 for unjudged documents).
    unret_rows : ndarray of int64, shape (u,)
        Qrels rows of those queries whose document the run did not retrieve, grouped by query.
    unret_qidx : ndarray of int64, shape (u,)
    n_run_queries_without_qrels : int
    """

    qids: np.ndarray
    run_rows: np.ndarray
    run_qidx: np.ndarray
    run_labels: np.ndarray
    unret_rows: np.ndarray
    unret_qidx: np.ndarray
    n_run_queries_without_qrels: int


def join_run_qrels(qrels: TrecTable, run: TrecTable) -> TrecJoin:
    """Join ``run`` to ``qrels`` by (qid, docno) (see :class:`TrecJoin`).

    Raises
    ------
    DataError
        A (qid, docno) pair twice in either file (qrels checked first), or no run query has qrels.
    """
    from auditor.loaders._trec_join import join

    return join(qrels, run)


def reference_join(qrels: TrecTable, run: TrecTable) -> TrecJoin:
    """:func:`join_run_qrels` as a plain dictionary join: slow, obviously right, the fast join's oracle.

    Same result and the same errors (duplicates: the qrels first, then the run; the first
    repeated pair in file order), without the file lines in the duplicate message.
    """
    q_q, q_d = [str(x) for x in qrels.qid.to_pylist()], [str(x) for x in qrels.docno.to_pylist()]
    r_q, r_d = [str(x) for x in run.qid.to_pylist()], [str(x) for x in run.docno.to_pylist()]
    judged: dict[tuple[str, str], int] = {}
    for t, qs, ds, seen in ((qrels, q_q, q_d, judged), (run, r_q, r_d, {})):
        for i, key in enumerate(zip(qs, ds)):
            if key in seen:
                raise DataError(f"document {key[1]!r} appears twice for query {key[0]!r} (rows {seen[key] + 1} and "
                                f"{i + 1}); trec_eval refuses duplicates too.", path=t.path, field="docno",
                                fix="keep one line per (qid, docno).")
            seen[key] = i
    in_qrels = set(q_q)
    order: dict[str, int] = {}
    for q in r_q:
        if q in in_qrels and q not in order:
            order[q] = len(order)
    if not order:
        raise DataError("no query of the run appears in the qrels (trec_eval evaluates only queries in both files).",
                        path=run.path, field="qid",
                        fix=f"check that {qrels.path} holds the judgments for this run (query ids must match exactly).")
    rows = sorted((i for i, q in enumerate(r_q) if q in order), key=lambda i: (order[r_q[i]], i))
    retrieved = {(r_q[i], r_d[i]) for i in rows}
    unret = sorted((i for i, key in enumerate(zip(q_q, q_d)) if key[0] in order and key not in retrieved),
                   key=lambda i: (order[q_q[i]], i))
    labels = [float(qrels.value[judged[(r_q[i], r_d[i])]]) if (r_q[i], r_d[i]) in judged else 0.0 for i in rows]
    return TrecJoin(qids=np.array(list(order), dtype=str), run_rows=np.array(rows, dtype=np.int64),
                    run_qidx=np.array([order[r_q[i]] for i in rows], dtype=np.int64),
                    run_labels=np.array(labels, dtype=np.float64), unret_rows=np.array(unret, dtype=np.int64),
                    unret_qidx=np.array([order[q_q[i]] for i in unret], dtype=np.int64),
                    n_run_queries_without_qrels=len(set(r_q) - in_qrels))


def read_trec(run_path: str, qrels_path: str) -> RankingDataset:
    """TREC run + qrels → RankingDataset of retrieved rows (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    qrels = read_qrels(qrels_path)
    run = read_run(run_path)
    try:
        j = join_run_qrels(qrels, run)
    except DataError as e:
        raise DataError("no query of the run has qrels (trec_eval evaluates only queries in both files).",
                        path=run_path, field="qid",
                        fix=f"check that {qrels_path} is the qrels for this run (query ids must match exactly).") from e
    qid_per_query = j.qids
    qid = _qid_array(list(qid_per_query))[j.run_qidx] if qid_per_query.size < 2_000_000 else qid_per_query[j.run_qidx]
    docno = np.asarray(pc.take(run.docno, pa.array(j.run_rows)).to_numpy(zero_copy_only=False)).astype(str)
    meta = {"source": run_path, "format": "trec", "qrels": qrels_path,
            "n_run_queries_without_qrels": j.n_run_queries_without_qrels,
            "n_judged_unretrieved": int(j.unret_rows.size)}
    return RankingDataset(qid=qid, labels=j.run_labels, features={"score": run.value[j.run_rows][:, None]},
                          item_id=docno, meta=meta, name=run_path)


def align_run_to_dataset(run_path: str | os.PathLike, data: RankingDataset) -> np.ndarray:
    """Scores of a TREC run file for each row of ``data``, matched by (qid, item_id).

    Used for ``audit run --baseline-run FILE``: the baseline's scores come from its run file.

    Parameters
    ----------
    run_path : str or PathLike
        TREC run (``qid Q0 docno rank score tag``); qids and docnos compare as strings
        (an int qid 7 matches "7").
    data : RankingDataset
        Must have ``item_id``.

    Returns
    -------
    ndarray of float64, shape (n_rows,)

    Raises
    ------
    DataError
        ``data`` has no item ids, or some rows have no line in the run (how many, and an
        example): a baseline that did not score a candidate cannot be compared on it. Run
        lines for (qid, docno) pairs absent from ``data`` are ignored.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    run_path = os.fspath(run_path)
    if data.item_id is None:
        raise DataError("the dataset has no item ids, so run lines cannot be matched to its rows.",
                        path=data.name, field="item_id",
                        fix="load data that carries item ids (LETOR '# docid = X' comments, an item_id column, or TREC).")
    run = read_run(run_path)
    dq = pa.array(np.asarray(data.qid).astype(str))
    di = pa.array(np.asarray(data.item_id).astype(str))
    sep = "\x1f"
    dkey = pc.binary_join_element_wise(dq, di, sep)
    rkey = pc.binary_join_element_wise(run.qid, run.docno, sep)
    hit = pc.index_in(dkey, value_set=rkey)
    found = hit.is_valid().to_numpy(zero_copy_only=False)
    if not found.all():
        miss = np.flatnonzero(~found)
        i = int(miss[0])
        raise DataError(f"{miss.size} of {found.size} dataset rows have no line in the run, e.g. query "
                        f"{_py(data.qid[i])!r} item {_py(data.item_id[i])!r} (row {i}).", path=run_path, field="docno",
                        fix="score every candidate of the dataset in the baseline run (same qids and docnos).")
    return run.value[hit.to_numpy()]
