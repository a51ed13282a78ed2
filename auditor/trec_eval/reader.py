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

import io
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
    """qrels rows in file order: ``qid``/``docno`` as arrays of bytes objects, ``rel`` integers (int64,
    or the narrowest integer type holding every value: what the fast reader keeps)."""

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


class _Source:
    """A qrels or run file (or standard input, read once and kept): fresh readers and the whole text."""

    def __init__(self, path: str, what: str) -> None:
        self.path, self.what = path, what
        self.data: bytes | None = None
        if path == "-" and what == "run":
            self.data = sys.stdin.buffer.read()

    def open(self) -> Any:
        if self.data is not None:
            return io.BytesIO(self.data)
        try:
            return open(self.path, "rb")
        except OSError as e:
            raise DataError(f"{self.what} file {self.path!r}: cannot read it ({e.strerror or e}).") from None

    def size(self, f: Any) -> int:
        return len(self.data) if self.data is not None else os.fstat(f.fileno()).st_size

    def empty(self) -> DataError:
        return DataError(f"{self.what} file {self.path!r} is empty: trec_eval refuses an empty file; give a file "
                         f"with at least one {'judgment' if self.what == 'qrels' else 'result'} line.")

    def text(self) -> bytes:
        """The whole text as trec_eval sees it: cut at the first NUL, ending with a newline."""
        if self.data is not None:
            data = self.data
        else:
            with self.open() as f:
                try:
                    data = f.read()
                except OSError as e:
                    raise DataError(f"{self.what} file {self.path!r}: cannot read it ({e.strerror or e}).") from None
        cut = data.find(b"\x00")
        if cut >= 0:  # trec_eval works on C strings: a NUL ends the text
            data = data[:cut]
        if not data:
            raise self.empty()
        if not data.endswith(b"\n"):
            data += b"\n"
        return data


#: input bytes per block: smaller blocks cost more per-batch work, larger ones more memory (the reader's
#: allocations grow with the block: 1 MB measured 20-40 MB more peak RSS than 512 KB at the same CPU time)
_BLOCK = 1 << 19


class _Blocks:
    """The file handed to pyarrow's CSV reader block by block, each block checked before it is parsed.

    The CSV reader splits fields on one delimiter and lines on CR as well as LF; trec_eval splits
    on any run of C whitespace and skips comment lines. They read a block alike when it holds no
    CR, VT or FF, not the other delimiter (tab or space), no line starting with ``#``, no blank
    line at its start and (the file's first block) no UTF-8 byte-order mark; a block that does not pass ends the stream with ``bad`` set (the line
    parser decides). Lines with too few or too many fields make the CSV reader fail; empty fields
    (doubled or leading delimiters) are read as nulls and refused. A NUL ends the text, as
    in C strings. ``hex_check``: a hexadecimal number at a field start sets ``hexadecimal`` and
    ends the stream (atol reads ``0x10`` as 0, the CSV reader's integers as 16).
    """

    def __init__(self, f: Any, delim: bytes, hex_check: bool) -> None:
        self.f = f
        self.other = b" " if delim == b"\t" else b"\t"
        self.hex_check = hex_check
        self.tail = b"\n"  # the last bytes before the block: the file starts a line
        self.bad = self.hexadecimal = self.done = False
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        if self.done:
            return b""
        d = self.f.read(n if n and n > 0 else _BLOCK)
        cut = d.find(b"\x00")
        if cut >= 0:
            d, self.done = d[:cut], True
        if not d:
            self.done = True
            return b""
        start = self.tail[-1:] == b"\n"
        if self.tail == b"\n" and d.startswith(b"\xef\xbb\xbf"):
            self.bad = self.done = True  # the CSV reader drops a UTF-8 BOM; trec_eval keeps it in the qid
            return b""
        # single-byte searches run at memory speed; the two-byte one only where a '#' occurs at all
        if (b"\r" in d or b"\x0b" in d or b"\x0c" in d or self.other in d or (start and d[:1] in (b"#", b"\n"))
                or (b"#" in d and b"\n#" in d)):
            self.bad = self.done = True
            return b""
        # the regular expression only where an 'x' occurs at all (a byte search is ~50x faster)
        if self.hex_check and (b"x" in d or b"X" in d) and _HEX_FIELD.search(self.tail + d):
            self.hexadecimal = self.done = True
            return b""
        self.tail = d[-3:]
        return d

    def close(self) -> None:
        self.closed = True


class _Columns:
    """A file's rows as the fast reader gives them: qids dictionary-encoded, docnos one binary array."""

    def __init__(self, qid: Any, docno: Any, value: Any, last_tag: bytes | None) -> None:
        self.qid, self.docno, self.value, self.last_tag = qid, docno, value, last_tag


def _fast_columns(src: _Source, ncols: int, value_col: int, value_type: str, threads: bool = True) -> _Columns | None:
    """The file's qid, docno (column 2) and value columns, or None when the line parser must look.

    pyarrow's CSV reader, streamed block by block (:class:`_Blocks` checks each block first),
    when every line is ``ncols`` non-empty fields joined by one ' ' or one tab. The value column
    is parsed as ``value_type`` ("float": as strtod reads it; "int": as atol reads it, hexadecimal
    aside) when every value is a number the CSV reader reads, else kept as bytes and converted
    with trec_eval's rules (:func:`_float_column`, :func:`_int_column`). Only the columns are
    kept, never the file: qids as runs of equal lines, then a dictionary array; docnos copied
    into one buffer; values into one array.
    """
    import pyarrow as pa

    with src.open() as f:
        head = f.read(_BLOCK)
        size = src.size(f)
    cut = head.find(b"\x00")
    if cut >= 0:
        head = head[:cut]
    if not head:
        raise src.empty()
    nl = head.find(b"\n")
    if nl < 0 and len(head) == _BLOCK:
        return None  # a first line longer than a block: the line parser
    first = head[:nl] if nl >= 0 else head
    delim = b"\t" if b"\t" in first else b" "
    typed = True
    while True:
        try:
            out = _stream(src, ncols, value_col, value_type if typed else "bytes", delim, size, threads)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            out = None if not typed else "retry"  # a value the CSV reader does not read: as bytes
        if out == "retry":
            typed = False
            continue
        return out


def _stream(src: _Source, ncols: int, value_col: int, value_type: str, delim: bytes, size: int,
            threads: bool = True) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from auditor._arrow import compute, from_numpy, to_numpy
    from auditor.loaders._trec_stream import _RunCollector, _TrecSink

    names = [f"f{i}" for i in range(ncols)]
    types = {n: pa.binary() for n in names}
    if value_type != "bytes":
        types[names[value_col]] = pa.float64() if value_type == "float" else pa.int64()
    vname = names[value_col]
    with src.open() as f:
        blocks = _Blocks(f, delim, hex_check=value_type == "int")
        reader = pacsv.open_csv(
            pa.PythonFile(blocks, mode="r"),
            read_options=pacsv.ReadOptions(column_names=names, block_size=_BLOCK, use_threads=threads),
            parse_options=pacsv.ParseOptions(delimiter=delim.decode(), quote_char=False, escape_char=False,
                                             double_quote=False, newlines_in_values=False,
                                             ignore_empty_lines=False),
            # an empty field (doubled or leading delimiter: trec_eval sees one field fewer) reads as null
            convert_options=pacsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True,
                                                 check_utf8=False))
        sink = _TrecSink(size, np.float64 if value_type == "float" else np.int64, block=_BLOCK, narrow=value_type == "int")
        runs = _RunCollector()
        raw: list[Any] = []  # value strings, when the CSV reader does not read them
        last_tag = None
        for batch in reader:
            k = batch.num_rows
            if k == 0:
                continue
            if batch.num_columns != ncols:
                return None
            if any(col.null_count for col in batch.columns):
                return None
            v = batch.column(vname)
            if pa.types.is_binary(v.type):
                raw.append(v)
                v = np.zeros(k, dtype=sink.value.dtype)
            else:
                v = to_numpy(v)
            sink.add(v, batch.column(names[2]))
            runs.add(batch.column(names[0]))
            if ncols > 5:
                last_tag = batch.column(names[5])[k - 1].as_py()
        if blocks.bad:
            return None
        if blocks.hexadecimal:
            return "retry"
    if sink.n == 0:
        return None
    value, docno = sink.result()
    del sink
    _, lens, strings = runs.result(value.size)
    enc = compute("dictionary_encode", strings)
    qid = pa.DictionaryArray.from_arrays(from_numpy(np.repeat(to_numpy(enc.indices), lens)), enc.dictionary)
    if raw:
        value = pa.concat_arrays(raw)
    return _Columns(qid, docno, value, last_tag)


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


def read_qrels(path: str | os.PathLike, threads: bool = True) -> Judgments:
    """Read a qrels file with trec_eval's rules. Raises DataError naming the line on bad input.

    ``threads``: let the CSV reader parse ahead in Arrow's thread pool (no gain when the caller
    already reads another file in parallel: the two cores are busy).
    """
    path = os.fspath(path)
    src = _Source(path, "qrels")
    fast = _fast_columns(src, 4, 3, "int", threads)
    if fast is not None:
        rel = fast.value if isinstance(fast.value, np.ndarray) else _int_column(fast.value)
        return Judgments(path, fast.qid, fast.docno, rel)
    data = src.text()
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


def read_run(path: str | os.PathLike, threads: bool = True) -> Run:
    """Read a TREC run with trec_eval's rules ('-' reads standard input); ``threads`` as in :func:`read_qrels`."""
    path = os.fspath(path)
    src = _Source(path, "run")
    fast = _fast_columns(src, 6, 4, "float", threads)
    if fast is not None:
        sim = fast.value if isinstance(fast.value, np.ndarray) else _float_column(fast.value)
        return Run(path, fast.qid, fast.docno, np.asarray(sim, dtype=np.float64),
                   fast.last_tag.decode("utf-8", "surrogateescape"))
    data = src.text()
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
