"""``-Z FILE``: per-query values as z-scores against reference means and deviations (trec_eval 10.0-rc3).

The file has one ``qid measure mean stddev`` line per topic and printed measure name (four
whitespace-separated fields, no comments, no blank lines; ``mean`` and ``stddev`` read as C
``atof``). Each per-query value becomes ``(value - mean) / stddev`` before it is printed and
averaged, so the summary line is the mean z-score (num_q stays the query count, ``-c``'s
num_rel stays the qrels count). As in trec_eval:

- a (query, measure) with ``stddev == 0`` scores 0 when the value equals the mean exactly and
  -1000000 otherwise; a query absent from the file scores -1000000 on every measure, and so
  does a measure absent for its query;
- lookups are trec_eval's binary search over the file sorted by (qid, measure): its search
  window is one entry too wide, so a measure missing from a query's lines can pick up the
  first line of the next query (when that line carries the same measure name). We reproduce
  that. Where the window runs past the end of the table (a qid sorting after every qid of the
  file, or a measure sorting after every measure of the file's last qid), trec_eval reads
  outside its memory and crashes; we refuse with a message naming the query and measure.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from auditor.errors import DataError
from auditor.trec_eval.reader import c_atof

MISSING = -1000000.0
FORM = "'qid measure mean stddev' (4 whitespace-separated fields, e.g. '301 map 0.2531 0.1102')"


@dataclass
class ZTable:
    """The file's lines sorted by (qid, measure) in byte order (stable, as glibc's qsort sorts them)."""

    path: str
    qids: list[bytes]  # one per query group, sorted
    starts: list[int]  # group offsets into the entry lists (len(qids) + 1)
    meas: list[bytes]
    mean: list[float]
    sd: list[float]


def read_zscores(path: str) -> ZTable:
    """Read a z-score file with trec_eval's rules. Raises DataError naming the line on bad input."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"z-score file {path!r}: cannot read it ({e.strerror or e}).") from None
    if not data:
        raise DataError(f"z-score file {path!r} is empty (trec_eval: 'Cannot read zscores file'); give one "
                        f"line per query and measure of the form {FORM}.")
    if b"\x00" in data:
        raise DataError(f"z-score file {path!r} contains a NUL byte; trec_eval reads it as a C string and its "
                        "parse is undefined there. Remove it.")
    if not data.endswith(b"\n"):
        data += b"\n"
    rows = []
    for no, line in enumerate(data.split(b"\n")[:-1], 1):
        tok = line.split()
        if len(tok) != 4:
            raise DataError(f"z-score file {path!r}, line {no}: expected {FORM}, found {len(tok)} field(s) "
                            f"(trec_eval: 'Malformed line {no}'). Blank and comment lines are not allowed.")
        rows.append((tok[0], tok[1], c_atof(tok[2]), c_atof(tok[3])))
    rows.sort(key=lambda r: (r[0], r[1]))  # Python's sort is stable, like glibc's merge sort
    qids: list[bytes] = []
    starts: list[int] = []
    for k, r in enumerate(rows):
        if not qids or qids[-1] != r[0]:
            qids.append(r[0])
            starts.append(k)
    starts.append(len(rows))
    return ZTable(path, qids, starts, [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


class _OutOfTable(Exception):
    """trec_eval's search window reached past its table (it crashes there)."""


def _search(keys: list[bytes], base: int, n: int, key: bytes) -> int | None:
    """trec_eval's lookup: binary search over keys[base .. base + n] (n + 1 entries, one too many)."""
    start, end = 0, n
    while start <= end:
        cur = (start + end) // 2
        if base + cur >= len(keys):
            raise _OutOfTable
        probe = keys[base + cur]
        if key < probe:
            end = cur - 1
        elif key > probe:
            start = cur + 1
        else:
            return base + cur
    return None


def apply(table: ZTable, qids: list[str], values: dict[str, np.ndarray]) -> None:
    """Replace every per-query value in ``values`` (printed name -> per-query array) by its z-score."""
    names = list(values)
    for q, qid in enumerate(qids):
        key = qid.encode("utf-8", "surrogateescape")
        try:
            g = _search(table.qids, 0, len(table.qids), key)
        except _OutOfTable:
            raise DataError(f"z-score file {table.path!r} has no line for query {qid!r}, which sorts after every "
                            "qid of the file: trec_eval 10.0-rc3 then reads past its table and crashes. Add lines "
                            f"for query {qid!r} (or for a qid sorting after it).") from None
        if g is None:
            for name in names:
                values[name][q] = MISSING
            continue
        base, n = table.starts[g], table.starts[g + 1] - table.starts[g]
        for name in names:
            try:
                k = _search(table.meas, base, n, name.encode("utf-8", "surrogateescape"))
            except _OutOfTable:
                raise DataError(f"z-score file {table.path!r} has no line for measure {name!r} of query {qid!r}, "
                                "the last qid of the file, and that name sorts after its measures: trec_eval "
                                "10.0-rc3 then reads past its table and crashes. Add a line "
                                f"'{qid} {name} MEAN STDDEV'.") from None
            v = values[name]
            if k is None:
                v[q] = MISSING
            elif table.sd[k] != 0.0:
                v[q] = _sub_div(float(v[q]), table.mean[k], table.sd[k])
            else:
                v[q] = 0.0 if v[q] == table.mean[k] else MISSING


def _sub_div(x: float, mean: float, sd: float) -> float:
    d = x - mean
    if math.isinf(d) and math.isinf(sd):
        return math.nan
    return d / sd
