"""What every loader shares: limits, the input-file check, text lines, and row checks.

The rules (see :mod:`auditor.loaders`): only regular files are read; text is UTF-8 split on ASCII
whitespace, without control characters; numbers are plain ASCII; labels are finite within
±:data:`LABEL_LIMIT`; rows of a query are contiguous; no (query, item) twice. Every problem is a
:class:`~auditor.errors.DataError` naming the file, the line or row, the field and the fix.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import re
import stat
from typing import Any, Callable, Iterator

import numpy as np

from auditor.errors import DataError
from auditor.safetext import describe_char, first_control, printable

#: Largest absolute label accepted (2**1023 is the largest finite power of two).
LABEL_LIMIT = 1023.0

# dense feature matrices only: guard against a stray huge index allocating terabytes
_MAX_WIDTH = 1 << 20
_MAX_CELLS = 1 << 31
#: Longest line a text loader reads (a LETOR line of 400,000 ``index:value`` tokens fits).
MAX_LINE_BYTES = 8 << 20
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_DOCID_RE = re.compile(r"(?:^|\s)docid\s*=\s*(\S+)")
_INT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_SIZE_RE = re.compile(r"[0-9]+\Z")
_SORT_FIX = "sort the rows by qid with a stable sort (it keeps each query's candidate order)."


#: Default widest feature matrix a sparse (LETOR / svmlight) file may expand to, in columns.
DEFAULT_MAX_FEATURES = 10_000
_max_features: contextvars.ContextVar[int] = contextvars.ContextVar("max_features", default=DEFAULT_MAX_FEATURES)


def max_features_limit() -> int:
    """The current width limit for sparse files (see :func:`feature_width_limit`)."""
    return _max_features.get()


@contextlib.contextmanager
def feature_width_limit(n: int | None) -> Iterator[None]:
    """Within the block, sparse files may expand to ``n`` feature columns (None: the default).

    Sparse files name only their non-zero columns, so one stray index of 100,000 would expand
    every row to 100,000 dense columns; the limit turns that into a clear error instead.
    """
    token = _max_features.set(DEFAULT_MAX_FEATURES if n is None else int(n))
    try:
        yield
    finally:
        _max_features.reset(token)


def _py(v: Any) -> Any:
    """numpy scalar -> Python scalar, so messages read 'query 7', not 'np.int64(7)'."""
    return v.item() if isinstance(v, np.generic) else v


_KIND = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_input_file(path: str | os.PathLike, option: str | None = None) -> None:
    """DataError unless ``path`` is an existing, readable regular file.

    A FIFO would block the read forever and a device such as ``/dev/zero`` never ends, so
    anything but a regular file is refused before it is opened. ``option`` (e.g. ``"--test"``)
    is named in the message.
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError("file not found.", path=path, field=option,
                        fix="check the path (relative paths start at the current directory).") from None
    except OSError as e:
        raise DataError(f"cannot be read ({e.strerror}).", path=path, field=option,
                        fix="check the path and its permissions.") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError("is a directory, expected a file.", path=path, field=option, fix="name the data file inside it.")
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _KIND if test(st.st_mode)), "not a regular file")
        raise DataError(f"is {kind}, not a regular file; it is refused because reading it may never end.",
                        path=path, field=option, fix="save the data to a regular file and pass that file.")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise DataError(f"cannot be read ({e.strerror}).", path=path, field=option,
                        fix="check the file's permissions.") from None


def _check_file(path: str) -> None:
    check_input_file(path)


def _name_problem(name: str) -> str | None:
    """Why ``name`` (an id, column or group name) cannot be accepted, or None."""
    i = first_control(name)
    if i is None:
        return None
    return (f"holds the control character {describe_char(name[i])} at position {i + 1} (terminal escape "
            "sequences, line breaks and text-direction overrides are refused in names and ids)")


def _check_strings(values: Any, path: str, field: str, line_of: Callable[[int], int] | None = None,
                   unit: str = "line") -> None:
    """DataError naming the first value of a string column holding a control character.

    Such values would reach terminals and reports: a name carrying ``ESC ] 0 ; ... BEL``
    retitles the window, ``ESC [ 2 J`` clears it. One regex pass over the joined values finds
    whether any is bad; only then are they searched one by one.
    """
    if isinstance(values, list):
        vals = [v for v in values if isinstance(v, str)]
    else:
        arr = np.asarray(values)
        if arr.dtype.kind != "U":
            return
        vals = arr.reshape(-1).tolist()
    if not vals or first_control("".join(vals)) is None:
        return
    for i, v in enumerate(vals):
        why = _name_problem(v)
        if why:
            where = {} if line_of is None else {"line": line_of(i)}
            raise DataError(f"{field} {v!r} {why}.", path=path, field=field, **where,
                            fix=f"remove the control characters from the {field} values.")


def _check_name(name: str, path: str, what: str) -> None:
    why = _name_problem(name)
    if why:
        raise DataError(f"{what} {name!r} {why}.", path=path, field=printable(name, newlines=False),
                        fix=f"rename the {what}.")


def _strict_float(tok: str) -> float:
    """``float(tok)`` for plain ASCII numbers only.

    Python's ``float`` also reads other scripts' digits (``'٣'`` is 3.0) and digit-group
    underscores (``'1_0'`` is 10.0); a ranking file holding those is garbled, not a number.
    """
    if not tok.isascii() or "_" in tok:
        raise ValueError(tok)
    return float(tok)


def _check_labels(labels: np.ndarray, path: str, field: str, where: Any) -> None:
    """Vectorized label check; ``where(i)`` gives the (line, detail) of row ``i`` for messages."""
    bad = ~np.isfinite(labels) | (np.abs(labels) > LABEL_LIMIT)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        line = where(i)
        raise DataError(f"label {labels[i]!r} is not a finite number within ±{LABEL_LIMIT:g}.",
                        path=path, line=line, field=field,
                        fix="labels are graded relevance (e.g. 0-4); repair or drop this row.")


def _qid_array(values: list[str]) -> np.ndarray:
    """int64 when every qid is a plain integer literal, else str."""
    if values and all(_INT_RE.match(v) for v in values):
        try:
            return np.array([int(v) for v in values], dtype=np.int64)
        except OverflowError:
            pass
    return np.array(values, dtype=str)


def _check_contiguous(qid: np.ndarray, path: str, line_of: Any, unit: str = "line") -> np.ndarray:
    """Query start offsets (n_queries + 1,); DataError if a query's rows are split."""
    n = qid.shape[0]
    change = np.empty(n, dtype=bool)
    change[0] = True
    change[1:] = qid[1:] != qid[:-1]
    starts = np.flatnonzero(change)
    run_ids = qid[starts]
    _, first_idx, counts = np.unique(run_ids, return_index=True, return_counts=True)
    if np.any(counts > 1):
        # first query (in file order) whose rows come back after another query
        dup_runs = np.flatnonzero(counts > 1)
        firsts = first_idx[dup_runs]
        j = int(firsts.min())
        q = run_ids[j]
        later = [int(k) for k in np.flatnonzero(run_ids == q) if k > j][0]
        a, b = line_of(int(starts[j])), line_of(int(starts[later]))
        raise DataError(f"rows of query {_py(q)!r} are not contiguous: it starts at {unit} {a} and comes back at {unit} {b} "
                        "after another query.", path=path, line=b, field="qid", fix=_SORT_FIX)
    return np.append(starts, n).astype(np.int64)


def _check_duplicates(qid: np.ndarray, item: np.ndarray, path: str, line_of: Any, unit: str = "line") -> None:
    """DataError on a repeated (query, item) pair."""
    n = qid.shape[0]
    if n < 2:
        return
    # queries are contiguous here, so sort items within query via (query index, item)
    qi = np.cumsum(np.r_[True, qid[1:] != qid[:-1]])
    _, item_codes = np.unique(item.astype(str) if item.dtype.kind not in "iuf" else item, return_inverse=True)
    order = np.lexsort((np.arange(n), item_codes.reshape(-1), qi))
    key_q, key_i = qi[order], item_codes.reshape(-1)[order]
    same = (key_q[1:] == key_q[:-1]) & (key_i[1:] == key_i[:-1])
    if same.any():
        k = int(np.flatnonzero(same)[0])
        r1, r2 = int(order[k]), int(order[k + 1])
        raise DataError(f"item {_py(item[r2])!r} appears twice in query {_py(qid[r2])!r} ({unit}s {line_of(r1)} and {line_of(r2)}); "
                        "a repeated (query, item) row is counted twice by every metric.",
                        path=path, line=line_of(r2), field="item_id",
                        fix="remove the duplicate rows (keep one row per (qid, item_id)).")


_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]|\xe2\x81[\xa6-\xa9]")
_C0_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
_ASCII_SPACE = re.compile(r"[ \t\n\r\f\v]+")


def _split_fields(s: str) -> list[str]:
    """Fields split on ASCII whitespace only, as trec_eval and svmlight readers do (``str.split``
    would also split on a no-break space and other Unicode spaces, shifting every later field)."""
    if s.isascii():
        return s.split()  # the ASCII controls it would also split on are refused by _text_lines
    return [t for t in _ASCII_SPACE.split(s) if t]


def _text_lines(path: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line) with binary / non-UTF-8 content as DataError."""
    with open(path, "rb") as f:
        no = 0
        while True:
            # bounded: a file without line breaks must not be read into memory whole
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            no += 1
            if len(raw) > MAX_LINE_BYTES:
                raise DataError(f"line is longer than {MAX_LINE_BYTES // (1 << 20)} MiB; reading stopped there "
                                "(a text ranking file has one short line per row).", path=path, line=no,
                                fix="check that this is the right file (not binary, not one huge line); "
                                    "split rows onto separate lines.")
            if b"\x00" in raw:
                raise DataError("contains NUL bytes: this is a binary file, not a text ranking file.", path=path,
                                line=no, fix="pass the text file (decompress it first; use --format for parquet/npz).")
            # one C pass for the one-byte controls; the regex only on lines with non-ASCII bytes
            # (a regex over every line measured +30% on the whole LETOR load)
            if len(raw.translate(None, _C0_BYTES)) != len(raw) or (not raw.isascii() and _CONTROL_BYTES.search(raw)):
                bad = _CONTROL_BYTES.search(raw)
                assert bad is not None
                c = bad.group(0).decode("utf-8")
                raise DataError(f"holds the control character {describe_char(c)} at byte {bad.start() + 1}; a text "
                                "ranking file has none (they would reach terminals and reports as escape sequences, "
                                "or split fields where other tools do not).", path=path, line=no,
                                fix="remove it (or re-export the file).")
            try:
                line = raw.decode("utf-8")
                # a UTF-8 byte-order mark (Windows editors, Excel's "UTF-8" export) is not data
                yield no, (line[1:] if no == 1 and line.startswith("\ufeff") else line)
            except UnicodeDecodeError as e:
                raise DataError(f"is not UTF-8 text: binary, or another encoding (byte {raw[e.start]:#04x} at column "
                                f"{e.start + 1}).", path=path,
                                line=no, fix="pass a text file (decompress it first; re-encode it as UTF-8).") from None
