"""The fast TREC reader: pyarrow's streamed CSV reader into growing numpy buffers.

:func:`read_fast` returns a :class:`~auditor.loaders.trec.TrecTable` equal to the line reader's
(``trec.read_trec_lines``), or None whenever it cannot be sure of that (an odd delimiter, a
non-finite or out-of-range value, a control character, invalid UTF-8, a duplicate pair): the
line reader then reads the file and names the line.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from auditor._arrow import compute, from_numpy, to_numpy

if TYPE_CHECKING:  # imported where used: audit trec-eval's reader uses the sink and the run collector alone
    from auditor.loaders.trec import TrecTable

def read_fast(path: str, kind: str, check_duplicates: bool = True) -> TrecTable | None:
    """pyarrow's multithreaded CSV reader; None when the slow parser must look (it finds the line)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from auditor.loaders._trec_join import has_duplicate_pairs
    from auditor.loaders.common import LABEL_LIMIT
    from auditor.loaders.trec import _TREC_COLS, TrecTable

    cols = _TREC_COLS[kind]
    with open(path, "rb") as f:
        sample = f.read(1 << 14)
    if not sample.strip():
        return None
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(sample) - 4:  # not just a character cut at the sample's end
            return None
    delim = _sniff_delimiter(sample, len(cols))
    src: Any = path
    size_hint = os.path.getsize(path)
    if delim is None:
        data = Path(path).read_bytes()
        if b"\x00" in data:
            return None
        # collapse runs of blanks (trec_eval splits on any whitespace) and trim line ends
        data = re.sub(rb"[ \t\r\f\v]+", b" ", data)
        data = re.sub(rb" ?\n ?", b"\n", data)
        data = data.lstrip(b" ")
        src = io.BytesIO(data)
        size_hint = len(data)
        delim = " "
    value_col = "score" if kind == "run" else "rel"
    # streamed batch by batch (read-ahead threads parse the next blocks): only the docno
    # strings, the values and the qid runs are kept, never the whole table or file. Blocks of
    # 256 KB: the reader keeps a few dozen blocks in flight, so its memory is ~40 x block_size
    # (1 MB blocks measured 39 MB of Arrow memory, 256 KB 10 MB, at the same CPU time).
    reader = pacsv.open_csv(
        src,
        read_options=pacsv.ReadOptions(column_names=list(cols), use_threads=True, block_size=_TREC_BLOCK),
        parse_options=pacsv.ParseOptions(delimiter=delim, quote_char=False, escape_char=False,
                                         newlines_in_values=False, ignore_empty_lines=True),
        convert_options=pacsv.ConvertOptions(
            # binary, not string: UTF-8 is checked below, almost free for ASCII (pyarrow's own
            # check_utf8 measured ~8% of the parse)
            column_types={"qid": pa.binary(), "docno": pa.binary(), value_col: pa.float64()},
            include_columns=["qid", "docno", value_col], strings_can_be_null=False,
            quoted_strings_can_be_null=False, check_utf8=False),
    )
    sink = _TrecSink(size_hint)
    runs = _RunCollector()
    for batch in reader:
        if batch.num_rows == 0:
            continue
        v = batch.column(value_col)
        if v.null_count:
            return None
        # copied: the batch's buffers can go. Numbers and UTF-8 are checked once at the end
        sink.add(np.asarray(v.to_numpy(zero_copy_only=False), dtype=np.float64), batch.column("docno"))
        runs.add(batch.column("qid"))
    if sink.n == 0:
        return None
    value, docno = sink.result()
    del sink
    lo, hi = float(value.min()), float(value.max())  # NaN propagates; +-inf shows at an end
    if not (np.isfinite(lo) and np.isfinite(hi)) or (kind == "qrels" and max(-lo, hi) > LABEL_LIMIT):
        return None  # the slow reader names the line
    qid_runs = runs.result(value.size)
    if _has_control_bytes(docno) or _has_control_bytes(qid_runs[2]):
        return None  # a control character: the slow reader names the line
    docno, qid_strings = _utf8(docno), _utf8(qid_runs[2])  # every qid equals its run's bytes
    if docno is None or qid_strings is None:
        return None  # invalid UTF-8: the slow reader names the line
    t = TrecTable.from_runs(path, kind, (qid_runs[0], qid_runs[1], qid_strings), docno, value)
    if check_duplicates and has_duplicate_pairs(t):
        return None  # the slow reader names both lines
    return t


_TREC_BLOCK = 1 << 18


def _sniff_delimiter(sample: bytes, ncols: int) -> str | None:
    """A single-character delimiter that splits every sampled line into ``ncols`` non-empty fields."""
    if b"\x00" in sample or b"\r" in sample:
        return None
    lines = sample.split(b"\n")
    if len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    lines = [ln for ln in lines if ln]
    if not lines:
        return None
    for d in (b"\t", b" "):
        other = b" " if d == b"\t" else b"\t"
        if all(other not in ln and len(ln.split(d)) == ncols and all(ln.split(d)) for ln in lines):
            return d.decode()
    return None


def _offsets(a: Any) -> np.ndarray:
    """The offsets of a string or binary Arrow array, shape (len(a) + 1,), as a numpy view."""
    import pyarrow as pa

    large = pa.types.is_large_string(a.type) or pa.types.is_large_binary(a.type)
    return np.frombuffer(a.buffers()[1], dtype=np.int64 if large else np.int32)[a.offset:a.offset + len(a) + 1]


def _has_control_bytes(a: Any) -> bool:
    """Whether a binary / string Arrow array's UTF-8 bytes hold a character :func:`first_control` refuses.

    One vectorized pass for C0 controls and DEL; the multi-byte ones (C1 controls, U+2028/9,
    bidi overrides and isolates) are looked for only when the data has non-ASCII bytes.
    """
    buf = a.buffers()[2]
    if buf is None:
        return False
    off = _offsets(a)
    b = np.frombuffer(buf, dtype=np.uint8)[int(off[0]):int(off[-1])]
    if b.size == 0:
        return False
    if bool(np.any(b < 0x20)) or bool(np.any(b == 0x7F)):
        return True
    if int(b.max()) < 0x80:
        return False
    lead = np.flatnonzero(b[:-1] == 0xC2)
    if lead.size and bool(np.any((b[lead + 1] >= 0x80) & (b[lead + 1] <= 0x9F))):
        return True  # U+0080..U+009F
    lead = np.flatnonzero(b[:-2] == 0xE2)
    if lead.size:
        b1, b2 = b[lead + 1], b[lead + 2]
        if bool(np.any((b1 == 0x80) & (b2 >= 0xA8) & (b2 <= 0xAE))) or \
                bool(np.any((b1 == 0x81) & (b2 >= 0xA6) & (b2 <= 0xA9))):
            return True  # U+2028..U+202E, U+2066..U+2069
    return False


def _utf8(a: Any) -> Any:
    """A binary Arrow array as string, or None when it is not valid UTF-8.

    All-ASCII data (one vectorized max over the bytes) is relabelled without a copy; anything
    else goes through Arrow's validating cast.
    """
    import pyarrow as pa

    if pa.types.is_string(a.type) or pa.types.is_large_string(a.type):
        return a
    buf = a.buffers()[2]
    off = _offsets(a)
    b0, b1 = int(off[0]), int(off[-1])
    large = pa.types.is_large_binary(a.type)
    if buf is None or b1 == b0 or int(np.frombuffer(buf, dtype=np.uint8)[b0:b1].max()) < 0x80:
        return a.view(pa.large_string() if large else pa.string())
    try:
        return a.cast(pa.large_string() if large else pa.string())
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None


class _TrecSink:
    """Values and docno strings of streamed batches, copied into growing numpy buffers.

    Concatenating the batches' Arrow arrays at the end would hold every string twice at the
    peak; here each batch is copied once into buffers sized from the first batch (rows and
    string bytes per input byte, times the input size, +10%; grown by half when short) and
    dropped. Untouched capacity is never resident. :meth:`result` wraps the buffers as one
    contiguous Arrow binary array without a copy (Arrow's take on a chunked array is several
    times slower), which :func:`_utf8` turns into a string array.
    """

    def __init__(self, size_hint: int, dtype: Any = np.float64, block: int | None = None, narrow: bool = False) -> None:
        self.hint = max(int(size_hint), 1)
        self.block = block or _TREC_BLOCK  # input bytes per batch (sizes the buffers from the first)
        self.n = 0  # rows
        self.nb = 0  # string bytes
        # narrow (integer values): kept in the narrowest of int8 .. int64 that holds every value so
        # far, widened when a batch needs it (relevance labels fit a byte: 2 MB per million rows
        # instead of 8, and fresh memory costs a page fault per 4 KB)
        self.narrow = narrow
        self.value = np.zeros(0, dtype=np.int8 if narrow else dtype)
        self.off = np.zeros(1, dtype=np.int32 if self.hint < 2**31 - 1 else np.int64)
        self.data = np.zeros(0, dtype=np.uint8)

    def _grow(self, rows: int, nbytes: int, first: bool) -> None:
        if self.n + rows > self.value.size:
            cap = int(rows * 1.1 * self.hint / min(self.block, self.hint)) + 16 if first else 0
            cap = max(cap, self.n + rows, int(self.value.size * 1.5))
            v, o = np.empty(cap, dtype=self.value.dtype), np.empty(cap + 1, dtype=self.off.dtype)
            v[:self.n] = self.value[:self.n]
            o[:self.n + 1] = self.off[:self.n + 1]
            self.value, self.off = v, o
        if self.nb + nbytes > self.data.size:
            cap = int(nbytes * 1.1 * self.hint / min(self.block, self.hint)) + 64 if first else 0
            cap = max(cap, self.nb + nbytes, int(self.data.size * 1.5))
            d = np.empty(cap, dtype=np.uint8)
            d[:self.nb] = self.data[:self.nb]
            self.data = d

    def _widen(self, values: np.ndarray) -> None:
        lo, hi = int(values.min()), int(values.max())
        cur = np.iinfo(self.value.dtype)
        if cur.min <= lo and hi <= cur.max:
            return
        for dt in (np.int16, np.int32, np.int64):
            info = np.iinfo(dt)
            if info.min <= lo and hi <= info.max:
                break
        wider = np.empty(self.value.size, dtype=dt)
        wider[:self.n] = self.value[:self.n]
        self.value = wider

    def add(self, values: np.ndarray, docno: Any) -> None:
        k = len(docno)
        if self.narrow and k:
            self._widen(values)
        bufs = docno.buffers()
        off = _offsets(docno)
        b0, b1 = int(off[0]), int(off[-1])
        self._grow(k, b1 - b0, self.n == 0)
        n, nb = self.n, self.nb
        self.value[n:n + k] = values
        o = self.off[n + 1:n + k + 1]
        o[:] = off[1:]
        o += nb - b0
        if b1 > b0:
            self.data[nb:nb + b1 - b0] = np.frombuffer(bufs[2], dtype=np.uint8)[b0:b1]
        self.n, self.nb = n + k, nb + b1 - b0

    def result(self) -> tuple[np.ndarray, Any]:
        """(values, shape (n,); docno binary array of n rows) sharing the buffers (see :func:`_utf8`)."""
        import pyarrow as pa

        n, nb = self.n, self.nb
        typ = pa.binary() if self.off.dtype == np.int32 else pa.large_binary()
        docno = pa.Array.from_buffers(typ, n, [None, pa.py_buffer(self.off[:n + 1]), pa.py_buffer(self.data[:nb])])
        return self.value[:n], docno


class _RunCollector:
    """Runs of equal consecutive qids across streamed batches: (first row, qid string) per run."""

    def __init__(self) -> None:
        self.firsts: list[np.ndarray] = []
        self.strings: list[Any] = []
        self.n = 0
        self.last: bytes | None = None

    def add(self, q: Any) -> None:
        k = len(q)
        bufs = q.buffers()
        off = _offsets(q)
        data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
        change = np.ones(k, dtype=bool)
        if k > 1:
            o0, o1 = int(off[0]), int(off[-1])
            width = int(off[1]) - o0
            if width and o1 - o0 == width * k and bool((off[1:] - off[:-1] == width).all()):
                # equal lengths (the usual case): rows of the byte buffer compared byte for byte,
                # NULs included. Up to 8 bytes: the 8-byte word ending at each row's end, read in
                # place at a stride of width bytes, its top width bytes kept (3x faster than
                # numpy's opaque-value compare, a memcmp per row); the first rows, whose word
                # would start before the buffer, compared as bytes
                if width <= 8:
                    i0 = min(k, max(0, -(-(8 - width - o0) // width)))  # first row whose word starts in the buffer
                    if i0 < k:
                        x = np.ndarray((k - i0,), dtype="<u8", buffer=data, offset=o0 + i0 * width + width - 8,
                                       strides=(width,))
                        if width < 8:
                            x = x >> np.uint64(8 * (8 - width))
                        change[i0 + 1:] = x[1:] != x[:-1]
                    for i in range(1, min(i0 + 1, k)):
                        a0 = o0 + i * width
                        change[i] = data[a0:a0 + width].tobytes() != data[a0 - width:a0].tobytes()
                else:
                    v = data[o0:o1].view(f"V{width}")
                    change[1:] = v[1:] != v[:-1]
            else:
                change[1:] = ~to_numpy(compute("equal", q.slice(1), q.slice(0, k - 1)))
        if self.last is not None and data[int(off[0]):int(off[1])].tobytes() == self.last:
            change[0] = False  # the previous batch's last query continues
        first = np.flatnonzero(change)
        self.firsts.append(first + self.n)
        self.strings.append(compute("take", q, from_numpy(first)))
        self.n += k
        self.last = data[int(off[k - 1]):int(off[k])].tobytes()

    def result(self, n: int) -> tuple[np.ndarray, np.ndarray, Any]:
        """(first row, length, qid) per run; the qids in the batches' type (string or binary)."""
        import pyarrow as pa

        first = np.concatenate(self.firsts) if self.firsts else np.zeros(0, np.int64)
        strings = pa.concat_arrays(self.strings) if self.strings else pa.array([], pa.string())
        return first, np.diff(np.append(first, n)), strings
