"""Read qrels and TREC run files exactly as trec_eval 10.0-rc3 does (``get_qrels.c``, ``get_trec_results.c``).

Rules reproduced (they decide which lines count and what value a field gets):

- qrels: ``qid iter docno rel``, exactly four whitespace-separated fields (C ``isspace``); a
  line whose first byte is ``#`` is a comment; a blank line is malformed; ``rel`` is C
  ``atol`` (``"1.7"`` -> 1, ``"abc"`` -> 0).
- run: ``qid iter docno rank sim runid [anything]``, at least six fields; blank lines and lines
  whose first non-blank byte is ``#`` are skipped; ``sim`` is C ``atof`` (double precision);
  the run id printed is the one on the last line read.
- a NUL byte ends the file (C strings).

Where trec_eval's behaviour is undefined (reads past its buffer) the file is refused with a
:class:`~auditor.errors.DataError` saying why. A fast path (pyarrow's CSV reader) handles files
with one consistent single-character delimiter; anything else goes through the line parser,
which is the definition.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor.errors import DataError

__all__ = ["Judgments", "Run", "read_qrels", "read_run", "c_atof", "c_atol"]

_ATOF = re.compile(
    rb"[+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?)")
_ATOL = re.compile(rb"[+-]?[0-9]+")
_LONG_MAX = (1 << 63) - 1
_HEX_FIELD = re.compile(rb"(?:^|[ \t])[+-]?0[xX]", re.M)


def c_atof(tok: bytes) -> float:
    """C ``atof``: the longest numeric prefix (decimal, hex, inf, nan), 0.0 when there is none."""
    m = _ATOF.match(tok.lstrip(b" \t\n\r\x0b\x0c"))
    if not m:
        return 0.0
    s = m.group(0)
    body = s.lstrip(b"+-")
    if body[:2] in (b"0x", b"0X"):
        try:
            v = float.fromhex(s.decode())
        except (OverflowError, ValueError):
            v = float("inf")
            v = -v if s.startswith(b"-") else v
        return v
    if body[:1] in (b"n", b"N"):
        return float("nan")
    return float(s.decode())


def c_atol(tok: bytes) -> int:
    """C ``atol``: the leading integer (clamped to the long range), 0 when there is none."""
    m = _ATOL.match(tok.lstrip(b" \t\n\r\x0b\x0c"))
    if not m:
        return 0
    return max(-_LONG_MAX - 1, min(_LONG_MAX, int(m.group(0))))


@dataclass
class Judgments:
    """qrels rows in file order: ``qid``/``docno`` as arrays of bytes objects, ``rel`` int64."""

    path: str
    qid: Any
    docno: Any
    rel: np.ndarray


@dataclass
class Run:
    """Run rows in file order; ``runid`` is the tag of the last line (what trec_eval prints)."""

    path: str
    qid: Any
    docno: Any
    sim: np.ndarray
    runid: str


def _read_bytes(path: str, what: str) -> bytes:
    if path == "-" and what == "run":
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise DataError(f"{what} file {path!r}: cannot read it ({e.strerror or e}).") from None
    cut = data.find(b"\x00")
    if cut >= 0:  # trec_eval works on C strings: a NUL ends the text
        data = data[:cut]
    if not data:
        raise DataError(f"{what} file {path!r} is empty: trec_eval refuses an empty file; "
                        f"give a file with at least one {'judgment' if what == 'qrels' else 'result'} line.")
    if not data.endswith(b"\n"):
        data += b"\n"
    return data


def _fast_table(data: bytes, ncols: int, keep: tuple[int, ...], numeric: int | None = None,
                integer: int | None = None) -> Any:
    """pyarrow columns ``keep`` when every line is ``ncols`` fields joined by one ' ' or one tab.

    Binary columns, except ``numeric`` parsed as float64 by the CSV reader when every value is a
    number it reads (then exactly as strtod reads it) and ``integer`` as int64 (as atol reads
    it; hexadecimal, which atol reads as 0, sends the file to the binary path); None when the
    line parser must look.
    """
    # single-byte searches run at memory speed; the two-byte one only where a '#' occurs at all.
    # Blank lines make the CSV reader fail (ignore_empty_lines=False below).
    if b"\r" in data or b"\x0b" in data or b"\x0c" in data:
        return None
    if data.startswith((b"#", b"\n")) or (b"#" in data and b"\n#" in data):
        return None
    first = data[: data.find(b"\n")]
    delim = b"\t" if b"\t" in first else b" "
    other = b" " if delim == b"\t" else b"\t"
    if other in data:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    def read(types: dict) -> Any:
        return pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=[f"f{i}" for i in range(ncols)], block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delim.decode(), quote_char=False, escape_char=False,
                                             double_quote=False, newlines_in_values=False,
                                             ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=[f"f{i}" for i in keep],
                                                 null_values=[], strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False))

    types = {f"f{i}": pa.binary() for i in range(ncols)}
    tbl = None
    fast_types = dict(types)
    if numeric is not None:
        fast_types[f"f{numeric}"] = pa.float64()
    # the regex only where an 'x' occurs at all (a byte search is ~50x faster than the regex)
    if integer is not None and not ((b"x" in data or b"X" in data) and _HEX_FIELD.search(data)):
        fast_types[f"f{integer}"] = pa.int64()
    if fast_types != types:
        try:
            tbl = read(fast_types)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            tbl = None
    try:
        tbl = tbl if tbl is not None else read(types)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if tbl.num_columns != len(keep) or tbl.num_rows == 0:
        return None
    for col in tbl.columns:  # doubled or leading delimiters give empty fields
        if pa.types.is_binary(col.type) and pc.min(pc.binary_length(col)).as_py() == 0:
            return None
        if not pa.types.is_binary(col.type) and col.null_count:
            return None
    # a line with fewer or more fields makes the reader fail: ncols fields on every line
    return tbl


def _int_column(col: Any) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    s = pc.cast(col, pa.string(), safe=False)
    try:  # pyarrow's integers are atol's, hexadecimal aside (atol reads "0x10" as 0)
        if not pc.any(pc.match_substring(s, "x", ignore_case=True)).as_py():
            return pc.cast(s, pa.int64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return np.array([c_atol(t) for t in col.to_pylist()], dtype=np.int64)


def _float_column(col: Any) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    s = pc.cast(col, pa.string(), safe=False)
    try:  # what pyarrow parses (decimal, exponent, inf, nan) strtod parses to the same double
        if not pc.any(pc.match_substring(s, "x", ignore_case=True)).as_py():
            return pc.cast(s, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return np.array([c_atof(t) for t in col.to_pylist()], dtype=np.float64)


def _bytes_array(col: Any) -> np.ndarray:
    return np.array(col.to_pylist(), dtype=object)


def read_qrels(path: str | os.PathLike) -> Judgments:
    """Read a qrels file with trec_eval's rules. Raises DataError naming the line on bad input."""
    import pyarrow as pa

    path = os.fspath(path)
    data = _read_bytes(path, "qrels")
    tbl = _fast_table(data, 4, (0, 2, 3), integer=3)
    if tbl is not None:
        rel = tbl.column(2)
        rel = rel.to_numpy() if pa.types.is_integer(rel.type) else _int_column(rel)
        return Judgments(path, tbl.column(0), tbl.column(1), np.asarray(rel, dtype=np.int64))
    qid: list[bytes] = []
    docno: list[bytes] = []
    rel: list[int] = []
    lines = data.split(b"\n")[:-1]
    i = 0
    n_read = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"#"):
            i += 1
            if i >= len(lines):
                raise DataError(f"qrels file {path!r} ends with a comment line (line {i}): trec_eval 10.0-rc3 "
                                "then reads past the end of its buffer. Remove that line or add a judgment after it.")
            if lines[i].startswith(b"#"):
                raise DataError(f"qrels file {path!r}, lines {i} and {i + 1}: two consecutive comment lines; "
                                "trec_eval 10.0-rc3 reads the second one as a judgment (and overruns its line "
                                "array). Merge them into one comment line.")
            line = lines[i]
        n_read += 1
        tok = line.split()
        if len(tok) != 4:
            raise DataError(f"qrels file {path!r}, line {i + 1}: expected 4 whitespace-separated fields "
                            f"'qid iter docno relevance', found {len(tok)} (trec_eval: 'Malformed line {n_read}'). "
                            "Fix or delete that line (blank lines are not allowed in qrels).")
        qid.append(tok[0])
        docno.append(tok[2])
        rel.append(c_atol(tok[3]))
        i += 1
    if not qid:
        raise DataError(f"qrels file {path!r} has no judgment lines (only comments): trec_eval's behaviour is "
                        "undefined there; give at least one 'qid iter docno relevance' line.")
    return Judgments(path, np.array(qid, dtype=object), np.array(docno, dtype=object),
                     np.array(rel, dtype=np.int64))


def read_run(path: str | os.PathLike) -> Run:
    """Read a TREC run with trec_eval's rules ('-' reads standard input)."""
    import pyarrow as pa

    path = os.fspath(path)
    data = _read_bytes(path, "run")
    tbl = _fast_table(data, 6, (0, 2, 4, 5), numeric=4)
    if tbl is not None:
        last = tbl.column(3)[tbl.num_rows - 1].as_py()
        sim = tbl.column(2)
        sim = (sim.to_numpy() if pa.types.is_floating(sim.type) else _float_column(sim))
        return Run(path, tbl.column(0), tbl.column(1), np.asarray(sim, dtype=np.float64),
                   last.decode("utf-8", "surrogateescape"))
    qid: list[bytes] = []
    docno: list[bytes] = []
    sim: list[float] = []
    runid = b""
    for no, line in enumerate(data.split(b"\n")[:-1], 1):
        tok = line.split()
        if not tok or tok[0].startswith(b"#"):
            continue
        if len(tok) < 6:
            raise DataError(f"run file {path!r}, line {no}: expected at least 6 whitespace-separated fields "
                            f"'qid Q0 docno rank score runid', found {len(tok)} "
                            f"(trec_eval: 'Malformed line {len(qid) + 1}'). Fix or delete that line.")
        qid.append(tok[0])
        docno.append(tok[2])
        sim.append(c_atof(tok[4]))
        runid = tok[5]
    if not qid:
        raise DataError(f"run file {path!r} has no result lines (only blank or comment lines): trec_eval's "
                        "behaviour is undefined there; give at least one 'qid Q0 docno rank score runid' line.")
    return Run(path, np.array(qid, dtype=object), np.array(docno, dtype=object), np.array(sim, dtype=np.float64),
               runid.decode("utf-8", "surrogateescape"))
