"""File loaders: LETOR/svmlight, TREC run + qrels, CSV, Parquet and NPZ into a :class:`RankingDataset`.

:func:`load` dispatches on ``fmt`` (``letor | trec | parquet | csv | npz``); when ``fmt`` is
omitted it is guessed from the suffix: ``.parquet/.pq`` → parquet, ``.csv/.tsv`` → csv,
``.npz`` → npz, ``.run/.trec/.res`` (or any file when ``qrels`` is given) → trec, and
everything else (``.txt``, ``.svm``, ``.letor``, LightGBM's ``rank.train`` ...) → letor.

Every problem with the input raises :class:`~auditor.errors.DataError` naming the file, the
line (text formats, 1-based) or row / column, the field, what was expected and the fix. Nothing
else escapes a loader (no tracebacks, no silently wrong numbers).

Formats
-------
**LETOR / svmlight** (streamed line by line)::

    <label> qid:<qid> <idx>:<value> <idx>:<value> ... # docid = <id> other = comments

- indices are 1-based (index 0 is an error: add 1 to every index); they may come in any
  order but not twice in one line; missing indices are 0 (sparse rows).
- the width is ``n_features`` when given (an index above it is an error), else the largest
  index seen (or the largest index named by ``feature_groups``). Features are held dense, so
  a width above ``max_features`` (default :data:`DEFAULT_MAX_FEATURES` = 10,000 columns;
  ``--max-features``, :func:`feature_width_limit`) is an error naming the widest index, its
  line and how far the other lines reach: one stray index of 100,000 would otherwise expand
  every row to 100,000 columns.
- ``# docid = X`` becomes ``item_id``; other ``# key = value`` comments are ignored.
- qids that are all plain integers load as int64, otherwise as strings.
- LightGBM / XGBoost style files without ``qid:`` take query sizes from a sibling
  ``<file>.query`` (or ``<file>.group``) file, one positive integer per line, summing to the
  number of rows; queries are then numbered 0, 1, 2, ... Mixing lines with and without
  ``qid:`` is an error. With both ``qid:`` and a ``.query`` file, the two must agree.

**TREC** (``load(run, "trec", qrels=QRELS)``): a run ``qid Q0 docno rank score tag`` (rank is
ignored, as in trec_eval) and qrels ``qid iter docno rel``. The dataset holds the *retrieved*
rows of queries that have qrels (trec_eval's rule; run queries without qrels are dropped and
counted in ``meta``), grouped by query in first-appearance order, labels from the qrels
(unjudged = 0), ``item_id`` = docno and one feature group ``score`` (shape (n, 1)) holding the
run's score, so a model or baseline can rank by it. Judged-but-unretrieved documents are not
rows; their count is in ``meta["n_judged_unretrieved"]`` (``audit eval`` uses them for the
ideal DCG and R, see :mod:`auditor.evaluate`). Duplicate (qid, docno) pairs in either file are
an error (trec_eval refuses them too). Relevance values may be any number within ±1023;
negatives mean judged non-relevant.

**CSV / Parquet** (pyarrow): columns ``qid`` and ``label`` (required); optional ``item_id``,
``query_text``, ``timestamp`` (number, or a timestamp / ISO-8601 string → float seconds),
``group_id`` and ``compliance`` (→ ``extra``). Features are either columns named
``<group>.<i>`` (grouped by prefix, ordered by ``i``; other columns then go to ``extra``) or,
when there are none, every other column in file order, as one group ``all`` or split by
``feature_groups`` (1-based positions among those columns); a non-numeric column is then an
error (one stray word would otherwise silently drop a feature). ``.tsv`` files are read
tab-separated. Nulls in qid, label or features are errors.

**NPZ** (``np.load(..., allow_pickle=False)``): arrays ``qid`` (n,), ``labels`` (n,) and
``features__<group>`` (n, d) per group — or one ``features`` (n, D) split by
``feature_groups`` (default group ``all``); optional ``item_id``, ``query_text``,
``timestamp``, ``group_id`` and ``extra__<name>``. Any other array name is an error (a typo
would otherwise vanish). Strings must be saved as fixed-width unicode, not objects.

Rules shared by all formats
---------------------------
- Only regular files are read (:func:`check_input_file`): a FIFO would block forever and a
  device such as ``/dev/zero`` never ends. Text formats stop at a line longer than
  :data:`MAX_LINE_BYTES` (8 MiB).
- Numbers are plain ASCII: Python's ``float`` / ``int`` also read other scripts' digits
  (``'٣'`` → 3) and ``'1_0'`` → 10, which here are errors naming the line.
- No control characters (C0 except tab / line ends, DEL, C1, bidi overrides and isolates,
  U+2028/9) in text files, ids, column names or ``extra`` names, and NPZ ``features__<group>`` /
  ``extra__<name>`` names are identifiers like ``--feature-groups`` names: these strings reach
  terminals and reports, where ``ESC ] 0 ; ... BEL`` would retitle the window.
  Text fields split on ASCII whitespace only, as trec_eval and svmlight readers do.
- Rows of one query must be contiguous; otherwise a DataError names the query and the two
  places it appears, with the fix (sort by qid with a stable sort). Feature files are not
  re-sorted silently because row order can carry meaning (candidate order, time).
  TREC runs are grouped by query instead, since trec_eval ignores their row order.
- Labels must be finite numbers within ±1023 (so ``2**label - 1`` stays finite for
  ``gain="exp"``); features must be finite.
- Duplicate (query, item_id) rows are an error: they double-count an item in every metric.

Feature-group spec (``--feature-groups``)
------------------------------------------
``NAME=RANGES[;NAME=RANGES...]`` with ``RANGES`` a comma list of 1-based inclusive column
ranges ``a-b`` or single columns ``a``, e.g. ``image=1-512;text=513-1024;visual=1025-1280``.
A comma may also separate groups, because a token holding ``=`` starts a new group:
``image=1-512,text=513-1024`` is the same as with ``;``. Names are identifiers
(``[A-Za-z_][A-Za-z0-9_-]*``). Overlapping groups, repeated names, empty or reversed ranges,
columns beyond the data's width and columns left out of every group are DataErrors (name the
left-out columns in a group, e.g. ``other=1281-1300``, to keep them).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from auditor.data import FORMATS, RankingDataset
from auditor.errors import DataError
from auditor.safetext import describe_char, first_control, printable

__all__ = ["load", "guess_format", "check_input_file", "feature_width_limit", "max_features_limit",
           "DEFAULT_MAX_FEATURES", "MAX_LINE_BYTES", "parse_feature_groups", "read_letor", "read_trec", "read_run",
           "read_qrels", "read_table", "read_npz", "align_run_to_dataset", "join_run_qrels", "TrecTable",
           "TrecJoin", "LABEL_LIMIT"]

#: Largest absolute label accepted (2**1023 is the largest finite power of two).
LABEL_LIMIT = 1023.0

# dense feature matrices only: guard against a stray huge index allocating terabytes
_MAX_WIDTH = 1 << 20
_MAX_CELLS = 1 << 31
#: Longest line a text loader reads (a LETOR line of 400,000 ``index:value`` tokens fits).
MAX_LINE_BYTES = 8 << 20
_LETOR_SUFFIXES = {".txt", ".svm", ".svmlight", ".letor", ".libsvm"}
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


# =========================================================================== dispatch
def guess_format(path: str | os.PathLike, qrels: str | None = None) -> str:
    """Format name for ``path`` from its suffix (see the module docstring)."""
    if qrels is not None:
        return "trec"
    suf = Path(path).suffix.lower()
    if suf in (".parquet", ".pq"):
        return "parquet"
    if suf in (".csv", ".tsv"):
        return "csv"
    if suf == ".npz":
        return "npz"
    if suf in (".run", ".trec", ".res"):
        return "trec"
    return "letor"


def load(path: str | os.PathLike, fmt: str | None = None, *, feature_groups: str | None = None,
         n_features: int | None = None, qrels: str | os.PathLike | None = None,
         max_features: int | None = None) -> RankingDataset:
    """Load a ranking dataset from ``path``.

    Parameters
    ----------
    path : str or PathLike
        The data file (for ``trec``: the run file).
    fmt : {"letor", "trec", "parquet", "csv", "npz"}, optional
        Guessed from the suffix when omitted (see :func:`guess_format`).
    feature_groups : str, optional
        Group spec, e.g. ``"image=1-512;text=513-1024"`` (see the module docstring).
        Default: one group ``all`` (``score`` for TREC; ``<group>.<i>`` columns name their own).
    n_features : int, optional
        LETOR only: force the feature width (indices above it are errors).
    qrels : str or PathLike, optional
        TREC only (required there): the qrels file giving the labels.
    max_features : int, optional
        LETOR only: the widest feature matrix accepted (default :data:`DEFAULT_MAX_FEATURES`,
        or the :func:`feature_width_limit` in force). Other formats store their matrix dense
        in the file already.

    Returns
    -------
    RankingDataset
        ``meta`` holds ``source``, ``format`` and format-specific counts.

    Raises
    ------
    DataError
        Any problem with the input, naming file, line / column, field and fix.
    """
    path = os.fspath(path)
    if fmt is None:
        fmt = guess_format(path, None if qrels is None else os.fspath(qrels))
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}.", path=path,
                        field="--format", fix=f"pass --format {'|'.join(FORMATS)}.")
    if n_features is not None:
        if fmt != "letor":
            raise DataError(f"n_features only applies to LETOR/svmlight files, not {fmt}.", path=path,
                            field="n_features", fix="drop --n-features for this format.")
        if int(n_features) < 1:
            raise DataError(f"n_features must be >= 1, got {n_features}.", path=path, field="n_features")
    if fmt == "letor":
        return read_letor(path, n_features=n_features, feature_groups=feature_groups, max_features=max_features)
    if fmt == "trec":
        if qrels is None:
            raise DataError("a TREC run needs its qrels file for the labels.", path=path, field="qrels",
                            fix="pass --qrels QRELS (or load(run, 'trec', qrels=QRELS)).")
        if feature_groups is not None:
            raise DataError("a TREC run has a single feature group 'score'; --feature-groups does not apply.",
                            path=path, field="--feature-groups", fix="drop --feature-groups.")
        return read_trec(path, os.fspath(qrels))
    if fmt in ("csv", "parquet"):
        return read_table(path, fmt, feature_groups=feature_groups)
    return read_npz(path, feature_groups=feature_groups)


# =========================================================================== helpers
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


# =========================================================================== feature groups
def parse_feature_groups(spec: str, width: int | None = None, *, where: str = "--feature-groups"
                         ) -> dict[str, np.ndarray]:
    """Parse a feature-group spec into ``{name: 0-based column indices}``.

    Parameters
    ----------
    spec : str
        ``NAME=RANGES[;NAME=RANGES...]``, e.g. ``"image=1-512;text=513-1024;visual=1025-1280"``
        (1-based inclusive ranges; commas also separate groups, see the module docstring).
    width : int, optional
        Number of feature columns; when given, every column must be in exactly one group.
    where : str
        Name used in error messages.

    Returns
    -------
    dict[str, ndarray of int64]
        Groups in spec order; each group's columns in the order written.

    Raises
    ------
    DataError
        Syntax errors, bad names, repeated names, empty / reversed ranges, overlaps,
        columns beyond ``width`` and columns not covered by any group.
    """
    ex = "e.g. image=1-512;text=513-1024;visual=1025-1280"
    if spec is None or not str(spec).strip():
        raise DataError(f"the feature-group spec is empty; expected NAME=RANGES[;NAME=RANGES], {ex}.",
                        path=where, field="spec")
    groups: dict[str, list[tuple[int, int]]] = {}
    current: str | None = None
    for tok in re.split(r"[;,]", str(spec)):
        tok = tok.strip()
        if not tok:
            raise DataError(f"empty item in {spec!r} (two separators in a row?); expected NAME=RANGES, {ex}.",
                            path=where, field="spec")
        if "=" in tok:
            name, _, rng = tok.partition("=")
            name, rng = name.strip(), rng.strip()
            if not _NAME_RE.match(name):
                raise DataError(f"group name {name!r} is not an identifier ([A-Za-z_][A-Za-z0-9_-]*).",
                                path=where, field=name or "spec", fix=f"rename the group, {ex}.")
            if name in groups:
                raise DataError(f"group {name!r} is named twice.", path=where, field=name,
                                fix="list all of a group's ranges after one NAME=, separated by commas.")
            groups[name] = []
            current = name
        else:
            if current is None:
                raise DataError(f"{tok!r} comes before any NAME=; expected NAME=RANGES, {ex}.", path=where, field="spec")
            rng = tok
        m = re.fullmatch(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", rng)
        if not m:
            raise DataError(f"range {rng!r} of group {current!r} is not 'a-b' or 'a' with positive integers.",
                            path=where, field=current, fix=f"write 1-based inclusive column ranges, {ex}.")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if lo < 1:
            raise DataError(f"range {rng!r} of group {current!r} starts at {lo}; columns are 1-based.",
                            path=where, field=current, fix="the first feature column is 1.")
        if hi < lo:
            raise DataError(f"range {rng!r} of group {current!r} is reversed ({lo} > {hi}).", path=where,
                            field=current, fix=f"write it as {hi}-{lo}.")
        groups[current].append((lo, hi))
    owner: dict[int, str] = {}
    out: dict[str, np.ndarray] = {}
    spans = sorted((lo, hi, g) for g, rs in groups.items() for lo, hi in rs)
    for (lo1, hi1, g1), (lo2, hi2, g2) in zip(spans, spans[1:]):
        if lo2 <= hi1:
            raise DataError(f"groups {g1!r} ({lo1}-{hi1}) and {g2!r} ({lo2}-{hi2}) overlap at column {lo2}.",
                            path=where, field=g2, fix="give every column to exactly one group.")
    for g, rs in groups.items():
        cols = np.concatenate([np.arange(lo, hi + 1, dtype=np.int64) for lo, hi in rs]) - 1
        out[g] = cols
        for lo, hi in rs:
            owner[lo] = g
    if width is not None:
        top = max(hi for _, hi, _ in spans)
        if top > width:
            g = [g for lo, hi, g in spans if hi == top][0]
            raise DataError(f"group {g!r} names column {top} but the data has {width} feature columns.",
                            path=where, field=g, fix=f"keep ranges within 1-{width}.")
        covered = np.zeros(width, dtype=bool)
        for cols in out.values():
            covered[cols] = True
        if not covered.all():
            miss = np.flatnonzero(~covered) + 1
            runs = _ranges_text(miss)
            raise DataError(f"feature columns {runs} are in no group.", path=where, field="spec",
                            fix=f"add them to a group (e.g. other={runs.split(',')[0]}) so no column is dropped silently.")
    return out


def _ranges_text(cols: np.ndarray, limit: int = 4) -> str:
    parts = []
    start = prev = int(cols[0])
    for c in list(cols[1:]) + [None]:
        if c is not None and int(c) == prev + 1:
            prev = int(c)
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = int(c)
    more = "" if len(parts) <= limit else f", ... ({len(parts) - limit} more ranges)"
    return ",".join(parts[:limit]) + more


def _apply_groups(X: np.ndarray, spec: str | None, default: str = "all") -> dict[str, np.ndarray]:
    if spec is None:
        return {default: X}
    groups = parse_feature_groups(spec, X.shape[1])
    return {g: np.ascontiguousarray(X[:, cols]) for g, cols in groups.items()}


# =========================================================================== LETOR / svmlight
# the control characters of :mod:`auditor.safetext` as UTF-8 bytes, less the whitespace that
# trec_eval and svmlight readers split on (tab, LF, VT, FF, CR)
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


def _check_width(path: str, width: int, n: int, max_idx: int, n_features: int | None, spec_groups: Any,
                 max_features: int | None, idx_parts: list[np.ndarray], row_len: list[int], line_arr: np.ndarray) -> None:
    """DataError when the dense matrix of a sparse file would be wider than the limit (or too large)."""
    cap = max_features_limit() if max_features is None else int(max_features)
    if width <= cap and width <= _MAX_WIDTH and n * width <= _MAX_CELLS:
        return
    size = f"{n:,} x {width:,} matrix of float64 ({n * width * 8 / 1e9:.1f} GB)"
    raise_it = ("if the features really are this wide, raise the limit: --max-features "
                f"{width} (API: load(..., max_features={width}))")
    limit = f"the limit is {cap:,} columns"
    if width > _MAX_WIDTH or n * width > _MAX_CELLS:
        raise_it = "reduce the feature space (select or hash fewer features)"
        limit = f"at most {_MAX_WIDTH:,} columns and {_MAX_CELLS:,} cells are ever held"
    if n_features is not None and width == n_features:
        raise DataError(f"n_features={width:,} would make a dense {size}; {limit}.", path=path,
                        field="n_features", fix=f"pass a smaller n_features, or {raise_it}.")
    if max_idx < width:  # the width came from the --feature-groups spec
        raise DataError(f"the feature-group spec names column {width:,}, which would make a dense {size}; "
                        f"{limit}.", path=path, field="--feature-groups", fix=f"check the spec, or {raise_it}.")
    # the widest index, its line, and how wide the other lines are (a lone stray index is a typo)
    idx = np.concatenate(idx_parts)
    rows = np.repeat(np.arange(n), np.asarray(row_len, dtype=np.int64))
    k = int(np.argmax(idx))
    row = int(rows[k])
    others = idx[rows != row]
    rest = (f" The other lines reach index {int(others.max()) + 1:,} at most: a single far-out index is usually a "
            "typo or a broken writer." if others.size and int(others.max()) + 1 < width // 2 else "")
    raise DataError(f"feature index {width:,} is the widest in the file; features are held dense, so it would make a "
                    f"{size}; {limit}.{rest}", path=path, line=int(line_arr[row]),
                    field=f"{width}", fix=f"if the index is wrong, repair line {int(line_arr[row])}; {raise_it}.")


def read_letor(path: str, *, n_features: int | None = None, feature_groups: str | None = None,
               max_features: int | None = None) -> RankingDataset:
    """Read a LETOR / svmlight file (streamed line by line). See the module docstring.

    Parameters
    ----------
    path : str
    n_features : int, optional
        Force the width (indices above it are errors).
    feature_groups : str, optional
        Group spec over the 1-based indices.
    max_features : int, optional
        Widest dense matrix accepted, in columns (default :func:`max_features_limit`).

    Returns
    -------
    RankingDataset
    """
    path = os.fspath(path)
    _check_file(path)
    spec_groups = None
    if feature_groups is not None:
        spec_groups = parse_feature_groups(feature_groups, None)  # syntax first; coverage below
    labels: list[float] = []
    qids: list[str] = []
    docids: list[str | None] = []
    lines: list[int] = []
    idx_parts: list[np.ndarray] = []
    val_parts: list[np.ndarray] = []
    pend: list[np.ndarray] = []
    pend_tokens: list[list[str]] = []
    pend_lines: list[int] = []
    row_len: list[int] = []
    has_qid: bool | None = None
    max_idx = 0
    limit = None if n_features is None else int(n_features)
    expect = "'<label> qid:<id> <index>:<value> ... # docid = <id>'"
    try:
        for no, line in _text_lines(path):
            has_qid, max_idx = _letor_line(no, line, path, expect, has_qid, max_idx, limit, labels, qids, docids,
                                           lines, row_len, pend, pend_tokens, pend_lines, idx_parts, val_parts)
    except DataError:
        if pend:  # a problem on an earlier, not yet validated line is reported first
            _flush_letor(pend, pend_tokens, pend_lines, [], [], limit, path)
        raise
    if pend:
        max_idx = max(max_idx, _flush_letor(pend, pend_tokens, pend_lines, idx_parts, val_parts, limit, path))
    n = len(labels)
    if n == 0:
        raise DataError("has no data lines (empty, or comments only).", path=path,
                        fix=f"check the path; each data line reads {expect}.")
    line_arr = np.asarray(lines, dtype=np.int64)

    def line_of(i: int) -> int:
        return int(line_arr[i])

    if has_qid:
        qid = _qid_array(qids)
        _check_query_file_agrees(path, qid)
    else:
        qid = _qid_from_query_file(path, n)
    width = limit if limit is not None else max_idx
    if spec_groups is not None and limit is None:
        width = max(width, max(int(c.max()) + 1 for c in spec_groups.values()))
    if width == 0:
        raise DataError("no line has any feature (only labels and qids).", path=path,
                        fix="each data line needs <index>:<value> tokens.")
    _check_width(path, width, n, max_idx, limit, spec_groups, max_features, idx_parts, row_len, line_arr)
    X = np.zeros((n, width), dtype=np.float64)
    if idx_parts:
        rl = np.asarray(row_len, dtype=np.int64)
        rows = np.repeat(np.arange(n), rl)
        X[rows, np.concatenate(idx_parts)] = np.concatenate(val_parts)
    offsets = _check_contiguous(qid, path, line_of)
    del offsets
    item = None
    if any(d is not None for d in docids):
        missing = [i for i, d in enumerate(docids) if d is None]
        if missing:
            raise DataError("some lines have '# docid = ...' and this one does not.", path=path,
                            line=line_of(missing[0]), field="docid",
                            fix="give every line a '# docid = <id>' comment, or none.")
        item = _qid_array(docids)  # type: ignore[arg-type]
        _check_duplicates(qid, item, path, line_of)
    if feature_groups is not None:
        feats = _apply_groups(X, feature_groups)
    else:
        feats = {"all": X}
    return RankingDataset(qid=qid, labels=np.asarray(labels, dtype=np.float64), features=feats, item_id=item,
                          meta={"source": path, "format": "letor", "n_features": width,
                                # ids numbered from a .query file are positions, not identities:
                                # the isolation audit must not compare them across files
                                "qid_generated": not has_qid}, name=path)


def _letor_line(no: int, line: str, path: str, expect: str, has_qid: bool | None, max_idx: int, limit: int | None,
                labels: list, qids: list, docids: list, lines: list, row_len: list, pend: list, pend_tokens: list,
                pend_lines: list, idx_parts: list, val_parts: list) -> tuple[bool | None, int]:
    """Parse one LETOR line into the accumulators; returns the updated (has_qid, max_idx)."""
    body, hash_, comment = line.partition("#")
    toks = _split_fields(body)
    if not toks:
        return has_qid, max_idx  # blank or comment-only line
    lab_tok = toks[0]
    try:
        lab = _strict_float(lab_tok)
    except ValueError:
        raise DataError(f"label {lab_tok!r} is not a number; expected {expect}.", path=path, line=no,
                        field="label", fix="the first token of every line is the relevance label.") from None
    if not np.isfinite(lab) or abs(lab) > LABEL_LIMIT:
        raise DataError(f"label {lab_tok!r} is not a finite number within ±{LABEL_LIMIT:g}.", path=path,
                        line=no, field="label", fix="labels are graded relevance (e.g. 0-4); repair or drop this line.")
    rest = toks[1:]
    this_has_qid = bool(rest) and rest[0].startswith("qid:")
    if has_qid is None:
        has_qid = this_has_qid
    elif has_qid != this_has_qid:
        raise DataError("some lines have 'qid:' and this one does not (or the other way round).", path=path,
                        line=no, field="qid", fix="give every line a qid:<id> token right after the label.")
    if this_has_qid:
        q = rest[0][4:]
        if not q:
            raise DataError("empty qid ('qid:' with no value).", path=path, line=no, field="qid",
                            fix="write qid:<id> right after the label.")
        qids.append(q)
        rest = rest[1:]
    n_tok = len(rest)
    if n_tok:
        joined = " ".join(rest)
        flat = joined.replace(":", " ").split()
        arr = None
        if len(flat) == 2 * n_tok and joined.count(":") == n_tok and joined.isascii() and "_" not in joined:
            try:
                arr = np.array(flat, dtype=np.float64)
            except ValueError:
                arr = None
        if arr is None:
            _raise_bad_token(rest, path, no)
        # values are validated a batch of lines at a time (vectorized); a batch with a
        # problem is re-checked line by line to name the first bad line
        pend.append(arr)
        pend_tokens.append(rest)
        pend_lines.append(no)
        if len(pend) >= 4096:
            max_idx = max(max_idx, _flush_letor(pend, pend_tokens, pend_lines, idx_parts, val_parts, limit, path))
            pend.clear()
            pend_tokens.clear()
            pend_lines.clear()
    row_len.append(n_tok)
    labels.append(lab)
    lines.append(no)
    if hash_:
        m = _DOCID_RE.search(comment)
        docids.append(m.group(1) if m else None)
    else:
        docids.append(None)
    return has_qid, max_idx


def _flush_letor(pend: list[np.ndarray], tokens: list[list[str]], lines: list[int], idx_parts: list[np.ndarray],
                 val_parts: list[np.ndarray], limit: int | None, path: str) -> int:
    """Validate a batch of parsed feature lines at once; returns the batch's largest index.

    Each array interleaves index, value. Checks: integer indices >= 1 (and <= ``limit``),
    finite values, no index twice on a line. The first failing line is re-checked alone,
    which raises the DataError naming it.
    """
    A = np.concatenate(pend)
    idx, val = A[0::2], A[1::2]
    ntok = np.fromiter((a.size // 2 for a in pend), dtype=np.int64, count=len(pend))
    row = np.repeat(np.arange(len(pend)), ntok)
    with np.errstate(invalid="ignore"):
        ii = idx.astype(np.int64)
    bad = (ii != idx) | (ii < 1) | ~np.isfinite(val)
    if limit is not None:
        bad |= ii > limit
    d = np.diff(ii)
    suspect = np.zeros(ii.size, dtype=bool)
    suspect[1:] = (d <= 0) & (row[1:] == row[:-1])  # not increasing within a line: maybe repeated
    if bad.any() or suspect.any():
        for r in np.unique(row[bad | suspect]):
            _check_letor_line(pend[r], tokens[r], lines[r], limit, path)
    idx_parts.append(ii - 1)
    val_parts.append(val)
    return int(ii.max()) if ii.size else 0


def _check_letor_line(arr: np.ndarray, rest: list[str], no: int, limit: int | None, path: str) -> None:
    """Raise the DataError for one parsed feature line, if it has a problem."""
    idx = arr[0::2]
    val = arr[1::2]
    if not np.all(np.isfinite(idx)) or not np.all(idx == np.floor(idx)):
        _raise_bad_token(rest, path, no)
    if idx.max() > _MAX_WIDTH:  # beyond any width, and beyond int64 the cast would wrap
        t = rest[int(np.argmax(idx))]
        raise DataError(f"feature index in {t!r} is above {_MAX_WIDTH:,}, the widest matrix ever held dense.",
                        path=path, line=no, field=t.partition(":")[0],
                        fix="check for a garbled index, or reduce the feature space (select or hash fewer features).")
    idx = idx.astype(np.int64)
    if idx.min() < 1:
        t = rest[int(np.argmin(idx))]
        raise DataError(f"feature index in {t!r} is {int(idx.min())}; indices are 1-based.", path=path, line=no,
                        field=t.partition(":")[0],
                        fix="add 1 to every index (e.g. sklearn dump_svmlight_file(..., zero_based=False)).")
    u, c = np.unique(idx, return_counts=True)
    if np.any(c > 1):
        d = int(u[c > 1][0])
        raise DataError(f"feature index {d} appears twice on this line.", path=path, line=no,
                        field=f"{d}", fix="write each index once per line.")
    if not np.all(np.isfinite(val)):
        j = int(np.flatnonzero(~np.isfinite(val))[0])
        raise DataError(f"feature {int(idx[j])} is {rest[j].partition(':')[2]!r}; features must be finite numbers.",
                        path=path, line=no, field=f"{int(idx[j])}",
                        fix="impute or drop non-finite values before auditing.")
    top = int(idx.max())
    if limit is not None and top > limit:
        raise DataError(f"feature index {top} is above n_features={limit}.", path=path, line=no,
                        field=f"{top}", fix=f"pass a larger --n-features (at least {top}) or drop the column.")


def _raise_bad_token(tokens: list[str], path: str, line: int) -> None:
    for t in tokens:
        i, sep, v = t.partition(":")
        ok = bool(sep) and ":" not in v and bool(_SIZE_RE.match(i))
        if ok:
            try:
                _strict_float(v)
            except ValueError:
                ok = False
        if not ok:
            raise DataError(f"token {t!r} is not '<index>:<value>' (positive integer index, number value).",
                            path=path, line=line, field=t[:40],
                            fix="features are written as index:value, e.g. 12:0.5; comments go after '#'.")
    raise DataError("garbled feature tokens.", path=path, line=line, field="features",
                    fix="features are written as index:value, e.g. 12:0.5.")


def _query_file(path: str) -> str | None:
    for suf in (".query", ".group"):
        p = path + suf
        if os.path.isfile(p):
            return p
    return None


def _read_sizes(qpath: str) -> list[int]:
    sizes: list[int] = []
    for no, line in _text_lines(qpath):
        t = line.strip()
        if not t:
            continue
        if not _SIZE_RE.match(t) or int(t) < 1:
            raise DataError(f"{t!r} is not a positive integer query size.", path=qpath, line=no, field="size",
                            fix="one positive integer per line: the number of rows of each query, in file order.")
        sizes.append(int(t))
    if not sizes:
        raise DataError("the query-size file is empty.", path=qpath, fix="one positive integer per line.")
    return sizes


def _qid_from_query_file(path: str, n: int) -> np.ndarray:
    qpath = _query_file(path)
    if qpath is None:
        raise DataError("no 'qid:' tokens and no sibling query-size file, so rows cannot be grouped into queries.",
                        path=path, line=1, field="qid",
                        fix=f"add qid:<id> after each label, or write {os.path.basename(path)}.query with one query size per line.")
    sizes = _read_sizes(qpath)
    if sum(sizes) != n:
        raise DataError(f"query sizes sum to {sum(sizes)} but {path} has {n} rows.", path=qpath, field="size",
                        fix="the sizes must add up to the data file's row count (one line per query, in order).")
    return np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)


def _check_query_file_agrees(path: str, qid: np.ndarray) -> None:
    qpath = _query_file(path)
    if qpath is None:
        return
    sizes = np.asarray(_read_sizes(qpath))
    change = np.r_[True, qid[1:] != qid[:-1]]
    runs = np.diff(np.append(np.flatnonzero(change), qid.shape[0]))
    if runs.shape != sizes.shape or np.any(runs != sizes):
        raise DataError("the qid: tokens and the query-size file disagree about query boundaries.", path=qpath,
                        field="size", fix="delete or regenerate the .query file (qid: tokens take precedence).")


# =========================================================================== TREC
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
        first, lens, strings = self.qid_runs
        if rows is not None:  # a string's hash does not depend on its neighbours
            import pyarrow as pa
            import pyarrow.compute as pc

            rows = np.asarray(rows, dtype=np.int64)
            seeds = _hash_strings(strings)[np.searchsorted(first, rows, side="right") - 1]
            return _hash_strings(pc.take(self.docno, pa.array(rows)), seed=seeds)
        k = _hash_strings(self.docno, run_seed=(_hash_strings(strings), first), out=out)
        if out is not None and k is not out:
            out[:] = k
        return k

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


def _read_trec_file(path: str, kind: str, check_duplicates: bool = True) -> TrecTable:
    _check_file(path)
    try:
        t = _read_trec_fast(path, kind, check_duplicates)
    except Exception:  # noqa: BLE001 - any fast-path failure: the slow parser names the line
        t = None
    if t is None:
        return _read_trec_slow(path, kind)
    return t


def _read_trec_fast(path: str, kind: str, check_duplicates: bool = True) -> TrecTable | None:
    """pyarrow's multithreaded CSV reader; None when the slow parser must look (it finds the line)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

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
    if check_duplicates and _has_duplicate_pairs(t):
        return None  # the slow reader names both lines
    return t


_TREC_BLOCK = 1 << 18


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

    def __init__(self, size_hint: int) -> None:
        self.hint = max(int(size_hint), 1)
        self.n = 0  # rows
        self.nb = 0  # string bytes
        self.value = np.zeros(0)
        self.off = np.zeros(1, dtype=np.int32 if self.hint < 2**31 - 1 else np.int64)
        self.data = np.zeros(0, dtype=np.uint8)

    def _grow(self, rows: int, nbytes: int, first: bool) -> None:
        if self.n + rows > self.value.size:
            cap = int(rows * 1.1 * self.hint / min(_TREC_BLOCK, self.hint)) + 16 if first else 0
            cap = max(cap, self.n + rows, int(self.value.size * 1.5))
            v, o = np.empty(cap), np.empty(cap + 1, dtype=self.off.dtype)
            v[:self.n] = self.value[:self.n]
            o[:self.n + 1] = self.off[:self.n + 1]
            self.value, self.off = v, o
        if self.nb + nbytes > self.data.size:
            cap = int(nbytes * 1.1 * self.hint / min(_TREC_BLOCK, self.hint)) + 64 if first else 0
            cap = max(cap, self.nb + nbytes, int(self.data.size * 1.5))
            d = np.empty(cap, dtype=np.uint8)
            d[:self.nb] = self.data[:self.nb]
            self.data = d

    def add(self, values: np.ndarray, docno: Any) -> None:
        k = len(docno)
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
        import pyarrow as pa
        import pyarrow.compute as pc

        k = len(q)
        bufs = q.buffers()
        off = _offsets(q)
        data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
        change = np.ones(k, dtype=bool)
        if k > 1:
            o0, o1 = int(off[0]), int(off[-1])
            width = int(off[1]) - o0
            if width and o1 - o0 == width * k and bool((off[1:] - off[:-1] == width).all()):
                # equal lengths (the usual case): rows of the byte buffer compared as fixed-size
                # opaque values (byte for byte, NULs included)
                v = data[o0:o1].view(f"V{width}")
                change[1:] = v[1:] != v[:-1]
            else:
                change[1:] = ~np.asarray(pc.equal(q.slice(1), q.slice(0, k - 1)).to_numpy(zero_copy_only=False),
                                         dtype=bool)
        if self.last is not None and data[int(off[0]):int(off[1])].tobytes() == self.last:
            change[0] = False  # the previous batch's last query continues
        first = np.flatnonzero(change)
        self.firsts.append(first + self.n)
        self.strings.append(pc.take(q, pa.array(first)))
        self.n += k
        self.last = data[int(off[k - 1]):int(off[k])].tobytes()

    def result(self, n: int) -> tuple[np.ndarray, np.ndarray, Any]:
        """(first row, length, qid) per run; the qids in the batches' type (string or binary)."""
        import pyarrow as pa

        first = np.concatenate(self.firsts) if self.firsts else np.zeros(0, np.int64)
        strings = pa.concat_arrays(self.strings) if self.strings else pa.array([], pa.string())
        return first, np.diff(np.append(first, n)), strings


# ------------------------------------------------------------------ string hashing
# Joining a run with its qrels by (qid, docno) strings is the slow part of evaluation when done
# with hash tables of Python or Arrow strings. Instead every string is hashed to 64 bits with
# vectorized numpy over Arrow's buffers (8 bytes per step), and joins, grouping and duplicate
# checks work on integers. Hashes are only a fast path: every match is then confirmed by
# comparing the strings themselves, and any collision falls back to exact dictionary encoding.
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xBF58476D1CE4E5B9)
_K3 = np.uint64(0x94D049BB133111EB)
_K4 = np.uint64(0xD6E8FEB86659FD93)
_HASH_CHUNK = 1 << 16
_MERGE_CHUNK = 1 << 18
_BYTE_MASKS = np.array([0] + [(1 << (8 * i)) - 1 for i in range(1, 8)] + [(1 << 64) - 1], dtype=np.uint64)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer (in place on a fresh array)."""
    h ^= h >> np.uint64(30)
    h *= _K3
    h ^= h >> np.uint64(27)
    h *= _K2
    h ^= h >> np.uint64(31)
    return h


def _run_values(vals: np.ndarray, firsts: np.ndarray, a: int, b: int) -> np.ndarray:
    """Per-row values for rows ``a:b`` from one value per run (runs start at ``firsts``, sorted)."""
    r0 = max(int(np.searchsorted(firsts, a, side="right")) - 1, 0)
    r1 = int(np.searchsorted(firsts, b, side="left"))
    starts = np.maximum(firsts[r0:r1], a)
    ends = np.append(firsts[r0 + 1:r1], b) if r1 > r0 else np.zeros(0, np.int64)
    ends = np.minimum(ends, b)
    return np.repeat(vals[r0:r1], ends - starts)


def _hash_strings(arr: Any, seed: np.ndarray | None = None, *, run_seed: tuple[np.ndarray, np.ndarray] | None = None,
                  out: np.ndarray | None = None) -> np.ndarray:
    """uint64 hash per string of an Arrow string (Chunked)Array, shape (n,).

    ``seed`` (n,) is mixed into each hash; ``run_seed = (values, first_rows)`` does the same with
    one seed per run of rows (row ``i`` takes the value of the last run starting at or before
    it) without materializing the per-row array. Processed in cache-sized chunks of strings,
    8 bytes per step, reading Arrow's buffers in place (no copy of the string data). ``out``
    (uint64, shape (n,)) receives the hashes when given.
    """
    import pyarrow as pa

    if out is None:
        out = np.empty(len(arr), dtype=np.uint64)
    if isinstance(arr, pa.ChunkedArray):
        o = 0
        for ch in arr.chunks:
            k = len(ch)
            rs = None if run_seed is None else (run_seed[0], run_seed[1] - o)
            _hash_strings(ch, None if seed is None else seed[o:o + k], run_seed=rs, out=out[o:o + k])
            o += k
        return out
    n = len(arr)
    if n == 0:
        return out
    bufs = arr.buffers()
    odt = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    off = np.frombuffer(bufs[1], dtype=odt)[arr.offset:arr.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    base = int(off[0])
    end = int(off[-1])
    # words[i] = the 8 bytes from byte i (unaligned view of the buffer, no copy); the last few
    # strings, whose 8-byte reads would run past the buffer, are read from a small padded copy
    safe_end = max(base, end - 8 + 1)
    tail = np.zeros(end - safe_end + 16, dtype=np.uint8)
    tail[:end - safe_end] = data[safe_end:end]
    tail_words = np.ndarray((tail.size - 7,), dtype="<u8", buffer=tail, strides=(1,))
    if safe_end > base:
        words = np.ndarray((safe_end,), dtype="<u8", buffer=data, offset=0, strides=(1,))
    else:
        words = np.zeros(1, dtype=np.uint64)
    for c in range(0, n, _HASH_CHUNK):
        oc = off[c:c + _HASH_CHUNK + 1].astype(np.int64)
        st, ln = oc[:-1], np.diff(oc)
        h = ln.astype(np.uint64) * _K1
        if seed is not None:
            h ^= seed[c:c + _HASH_CHUNK] * _K4
        if run_seed is not None:
            h ^= _run_values(run_seed[0], run_seed[1], c, c + st.size) * _K4
        shortest, longest = int(ln.min()), int(ln.max())
        fixed = shortest == longest
        rem = None if fixed else ln.copy()
        st0, st_last = int(st[0]), int(st[-1])
        for j in range(0, longest, 8):
            if st_last + j < safe_end:  # every 8-byte read of this step lies inside the buffer
                if fixed:  # equal lengths: the words sit at a fixed stride, no index array
                    w = np.ndarray((st.size,), dtype="<u8", buffer=data, offset=st0 + j, strides=(longest,))
                else:
                    w = words[st + j]
            else:
                p = st + j
                inside = p < safe_end
                w = np.where(inside, words[np.minimum(p, words.size - 1)],
                             tail_words[np.clip(p - safe_end, 0, tail_words.size - 1)])
            if j + 8 > shortest:  # a new array (w may be a read-only view of Arrow's buffer)
                w = w & (_BYTE_MASKS[min(longest - j, 8)] if fixed else _BYTE_MASKS[np.minimum(rem, 8)])
            # polynomial step (the finalizer mixes); strings already consumed keep their hash,
            # which must not depend on the longest neighbour
            if j < shortest:
                h *= _K2
                h += w
            else:
                h = np.where(rem > 0, h * _K2 + w, h)
            if rem is not None:
                rem -= 8
                np.maximum(rem, 0, out=rem)
        out[c:c + _HASH_CHUNK] = _mix(h)
    return out


def _same_strings(a: Any, ia: np.ndarray, b: Any, ib: np.ndarray) -> np.ndarray:
    """Elementwise ``a[ia] == b[ib]`` for Arrow string arrays, shape (len(ia),) bool (exact)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(ia) == 0:
        return np.zeros(0, dtype=bool)
    # Arrow's take + equal measured faster than comparing 8-byte words gathered with numpy;
    # chunks keep the gathered strings small
    out = np.empty(len(ia), dtype=bool)
    for c in range(0, len(ia), _MERGE_CHUNK):
        x = pc.take(a, pa.array(ia[c:c + _MERGE_CHUNK]))
        y = pc.take(b, pa.array(ib[c:c + _MERGE_CHUNK]))
        out[c:c + _MERGE_CHUNK] = np.asarray(pc.equal(x, y).to_numpy(zero_copy_only=False), dtype=bool)
    return out


def _has_duplicate_pairs(t: "TrecTable") -> bool:
    """Whether some (qid, docno) repeats (hash candidates confirmed on the strings)."""
    k = t.pair_key
    ks = np.sort(k)  # vectorized sort; the row order is only needed if something repeats
    if not (ks[1:] == ks[:-1]).any():
        return False
    order = np.argsort(k, kind="stable")
    ks = k[order]
    cand = np.flatnonzero(ks[1:] == ks[:-1])
    i, j = order[cand], order[cand + 1]
    same = _same_strings(t.qid, i, t.qid, j) & _same_strings(t.docno, i, t.docno, j)
    return bool(same.any())


def _read_trec_slow(path: str, kind: str) -> TrecTable:
    """Line-by-line reader that validates everything and names the offending line."""
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


def _codes(*arrays: Any) -> tuple[list[np.ndarray], Any]:
    """Dictionary-encode string arrays over their union: (int64 codes per array, dictionary)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(pa.chunked_array([a for a in arrays], type=pa.string()))
    dictionary = enc.chunk(0).dictionary if enc.num_chunks else pa.array([], pa.string())
    out = [c.indices.to_numpy().astype(np.int64) for c in enc.chunks]
    return out, dictionary


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


def _chunks(a: Any) -> list:
    import pyarrow as pa

    return list(a.chunks) if isinstance(a, pa.ChunkedArray) else [a]


class _HashCollision(Exception):
    pass


def _nondecreasing(key: np.ndarray) -> bool:
    return key.size < 2 or bool(np.all(key[1:] >= key[:-1]))


def _group_stable(rows: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``rows`` stably sorted by ``key`` (free when already sorted, as in grouped files)."""
    if _nondecreasing(key):
        return rows
    return rows[np.argsort(key, kind="stable")]


def _pair_candidates(get_kr: Callable[[], np.ndarray], get_kq: Callable[[], np.ndarray], nr: int, nq: int,
                     exact: bool = False) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray],
                                                   tuple[np.ndarray, np.ndarray]]:
    """Candidate matches and candidate duplicates of both files, from one sort of all pair keys.

    Every row of both files becomes one 64-bit word: the high bits of its pair key, then a side
    bit (qrels 0, run 1), then its row number; the words are sorted once (numpy's vectorized
    integer sort, no argsort). Rows whose high bits occur exactly twice are candidate pairs: a
    qrels row then a run row is a candidate match, two rows of one file a candidate duplicate.
    The caller confirms each on the strings; a failed candidate is simply nothing, because any
    true partner has the same full key, hence the same high bits, hence is in the same group.
    High-bit groups of three rows or more (rare: true duplicates, or chance) are resolved on the
    full keys; a full-key group of three or more is a hash collision (``_HashCollision``)
    unless ``exact`` (keys are then exact codes and such a group holds duplicates).

    ``get_kr(out=None, rows=None)`` / ``get_kq(...)`` give the run / qrels keys (uint64, shape
    (nr,) / (nq,)), written into ``out`` when given (so no full-size key array is held besides
    the sorted words), or the keys of just ``rows`` (for the rare groups).

    Returns
    -------
    run_rows, qrels_rows : ndarray of int, candidate matches
    qrels_dups, run_dups : (rows_a, rows_b) candidate duplicate pairs within each file
    """
    idt = np.int32 if max(nr, nq) < 2**31 else np.int64  # row ids: half the memory
    n = nr + nq
    none = np.zeros(0, dtype=idt)
    if nr == 0 or nq == 0 or n < 2:
        return none, none, (none, none), (none, none)
    bits = max(1, int(max(nr, nq) - 1).bit_length())
    low = np.uint64((1 << bits) - 1)
    sbit = np.uint64(1 << bits)
    lowside = np.uint64((1 << (bits + 1)) - 1)
    hi_mask = np.uint64(((1 << 64) - 1) ^ ((1 << (bits + 1)) - 1))
    s = np.empty(n, dtype=np.uint64)
    for part, get, run_side in ((s[:nq], get_kq, False), (s[nq:], get_kr, True)):
        get(part)  # the keys, written in place
        for c in range(0, part.size, _MERGE_CHUNK):  # chunked: no full-size temporaries
            o = part[c:c + _MERGE_CHUNK]
            o &= hi_mask
            o |= np.arange(c, c + o.size, dtype=np.uint64)
            if run_side:
                o |= sbit
    s.sort()
    # e[i]: row s[i] has the same high bits as s[i - 1] (e[0] = e[n] = False)
    e = np.zeros(n + 1, dtype=bool)
    for c in range(1, n, _MERGE_CHUNK):
        d = min(c + _MERGE_CHUNK, n)
        np.less_equal(np.bitwise_xor(s[c:d], s[c - 1:d - 1]), lowside, out=e[c:d])
    # matches pair distinct rows of both files: at most min(nr, nq) of them (untouched
    # capacity is never resident)
    run_rows, qrels_rows = np.empty(min(nr, nq), dtype=idt), np.empty(min(nr, nq), dtype=idt)
    n_match = 0
    qd_l: list[tuple[np.ndarray, np.ndarray]] = []
    rd_l: list[tuple[np.ndarray, np.ndarray]] = []

    def classify(a: np.ndarray, b: np.ndarray) -> None:
        nonlocal n_match
        sa, sb = (a & sbit) != 0, (b & sbit) != 0
        m = sb & ~sa  # sorted: a qrels row comes before a run row with the same high bits
        k = int(np.count_nonzero(m))
        np.bitwise_and(b[m], low, out=run_rows[n_match:n_match + k], casting="unsafe")
        np.bitwise_and(a[m], low, out=qrels_rows[n_match:n_match + k], casting="unsafe")
        n_match += k
        dq = ~sb
        if dq.any():
            qd_l.append(((a[dq] & low).astype(idt), (b[dq] & low).astype(idt)))
        if sa.any():
            rd_l.append(((a[sa] & low).astype(idt), (b[sa] & low).astype(idt)))

    big_starts: list[np.ndarray] = []
    for c0 in range(0, n - 1, _MERGE_CHUNK):  # pairs starting at rows c0 .. c1 - 1, chunk by chunk
        c1 = min(c0 + _MERGE_CHUNK, n - 1)
        head = e[c0 + 1:c1 + 1] & ~e[c0:c1]  # i opens a group of two or more
        more = e[c0 + 2:c1 + 2]  # ... of three or more
        three = head & more
        if three.any():
            big_starts.append(np.flatnonzero(three) + c0)
        head &= ~more
        ps = np.flatnonzero(head) + c0
        classify(s[ps], s[ps + 1])
    if big_starts:
        # groups of three rows or more: a matched pair plus a row whose high bits collide by
        # chance (about one such group per run at 2M + 2M rows), or duplicates. Resolved on
        # the full keys of just those rows.
        gs = np.concatenate(big_starts)
        ends = np.empty_like(gs)
        for i, g in enumerate(gs.tolist()):  # a group ends at the next row that opens one
            w = e[g + 1:g + 65]
            ends[i] = g + 1 + (int(np.argmin(w)) if not w.all() else int(np.flatnonzero(~e[g + 1:])[0]))
        gz = ends - gs
        idx = np.repeat(gs, gz) + (np.arange(int(gz.sum())) - np.repeat(np.cumsum(gz) - gz, gz))
        el = s[idx]
        del s, e
        side = (el & sbit) != 0
        row = (el & low).astype(np.int64)
        full = np.empty(el.size, dtype=np.uint64)
        full[side] = get_kr(rows=row[side])
        full[~side] = get_kq(rows=row[~side])
        o = np.lexsort((row, side, full))
        el, full = el[o], full[o]
        same = full[1:] == full[:-1]
        sub = np.flatnonzero(np.concatenate([[True], ~same]))
        ssz = np.diff(np.append(sub, el.size))
        if (ssz >= 3).any():
            if not exact:
                raise _HashCollision
            # exact keys: consecutive rows of one file with the same key are duplicates
            sd = (el & sbit) != 0
            p = np.flatnonzero(same & (sd[1:] == sd[:-1]))
            classify(el[p], el[p + 1])
        p2 = sub[ssz == 2]
        classify(el[p2], el[p2 + 1])

    def cat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        if not parts:
            return none, none
        return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])

    return run_rows[:n_match], qrels_rows[:n_match], cat(qd_l), cat(rd_l)


def _raise_duplicate(t: TrecTable, i: int, j: int) -> None:
    """Raise the DataError for rows ``i`` and ``j`` of ``t`` holding the same (qid, docno)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if os.path.isfile(t.path):
        _read_trec_slow(t.path, t.kind)  # names both lines
    first = t.qid_runs[0]
    q = t.qid_runs[2][int(np.searchsorted(first, i, side="right")) - 1].as_py()
    d = pc.take(t.docno, pa.array([i])).to_pylist()[0]
    raise DataError(f"document {d!r} appears twice for query {q!r} (rows {i + 1} and {j + 1}); "
                    "trec_eval refuses duplicates too.", path=t.path, field="docno",
                    fix="keep one line per (qid, docno).")


def join_run_qrels(qrels: TrecTable, run: TrecTable) -> TrecJoin:
    """Join ``run`` to ``qrels`` by (qid, docno) (see :class:`TrecJoin`).

    Raises
    ------
    DataError
        A (qid, docno) pair twice in either file (qrels checked first), or no run query has qrels.
    """
    try:
        return _join(qrels, run, exact=False)
    except _HashCollision:  # astronomically rare; exact dictionary codes instead
        return _join(qrels, run, exact=True)


def _join(qrels: TrecTable, run: TrecTable, exact: bool) -> TrecJoin:
    import pyarrow as pa
    import pyarrow.compute as pc

    nr, nq = len(run), len(qrels)
    fr, lr, sr = run.qid_runs
    fq, lq, sq = qrels.qid_runs
    # ---- exact query codes: dictionary over the qid runs of both files (about 2 x n_queries strings)
    firsts = pa.chunked_array(_chunks(sr) + _chunks(sq), type=pa.string()).combine_chunks()
    enc = pc.dictionary_encode(firsts)
    inv = enc.indices.to_numpy().astype(np.int64)
    nu = len(enc.dictionary)
    code_r_run, code_q_run = inv[:fr.size], inv[fr.size:]
    # ---- documents: candidate (run row, qrels row) pairs and duplicates, from one sort
    if exact:
        (dq, dr), dd = _codes(qrels.docno, run.docno)  # exact ints: every candidate is a match
        nd = np.uint64(max(len(dd), 1))
        def exact_key(codes: np.ndarray, lens: np.ndarray, docs: np.ndarray) -> Callable[..., np.ndarray]:
            first = np.cumsum(lens) - lens

            def get(out: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
                if rows is not None:
                    run_of = np.searchsorted(first, rows, side="right") - 1
                    return codes[run_of].astype(np.uint64) * nd + docs[rows].astype(np.uint64)
                k = np.repeat(codes.astype(np.uint64), lens) * nd + docs.astype(np.uint64)
                if out is not None:
                    out[:] = k
                return k
            return get

        rr, qq, qdup, rdup = _pair_candidates(exact_key(code_r_run, lr, dr), exact_key(code_q_run, lq, dq),
                                              nr, nq, exact=True)
        del dq, dr, dd
    else:
        rr, qq, qdup, rdup = _pair_candidates(run.compute_pair_key, qrels.compute_pair_key, nr, nq)
        run.drop_caches()
        qrels.drop_caches()
    # duplicates are errors (trec_eval refuses them); the qrels first, as they are read first
    for t, codes, (i, j) in ((qrels, code_q_run, qdup), (run, code_r_run, rdup)):
        if i.size:
            dup = (t.row_qid_codes(i, codes) == t.row_qid_codes(j, codes)) & _same_strings(t.docno, i, t.docno, j)
            if dup.any():
                k = int(np.flatnonzero(dup)[0])
                _raise_duplicate(t, int(min(i[k], j[k])), int(max(i[k], j[k])))
    in_run = np.zeros(nu, dtype=bool)
    in_run[code_r_run] = True
    in_qrels = np.zeros(nu, dtype=bool)
    in_qrels[code_q_run] = True
    both = in_run & in_qrels
    if not both.any():
        raise DataError("no query of the run appears in the qrels (trec_eval evaluates only queries in both files).",
                        path=run.path, field="qid",
                        fix=f"check that {qrels.path} holds the judgments for this run (query ids must match exactly).")
    # number evaluated queries by first appearance in the run
    first_run_pos = np.full(nu, np.iinfo(np.int64).max)
    np.minimum.at(first_run_pos, code_r_run, np.arange(code_r_run.size))
    ev_codes = np.flatnonzero(both)
    ev_codes = ev_codes[np.argsort(first_run_pos[ev_codes], kind="stable")]
    idt = np.int32 if max(nr, nq) < 2**31 else np.int64  # row and query numbers: half the memory
    qnum = np.full(nu, -1, dtype=idt)
    qnum[ev_codes] = np.arange(ev_codes.size)
    row_q_run = np.repeat(qnum[code_r_run], lr)
    row_q_qrels = np.repeat(qnum[code_q_run], lq)
    keep = row_q_run >= 0
    # back to run-row order: sequential string access below, and sorted outputs
    match = np.full(nr, -1, dtype=idt)
    match[rr] = qq
    del rr, qq
    match[~keep] = -1
    hits = np.flatnonzero(match >= 0).astype(idt)
    qrow_hits = match[hits]
    del match
    if not exact and hits.size:
        # candidates: confirm on the exact query codes and the docno strings; a failed candidate
        # is no match (a true partner would have been in its group)
        ok = (row_q_run[hits] == row_q_qrels[qrow_hits]) & _same_strings(run.docno, hits, qrels.docno, qrow_hits)
        if not ok.all():
            hits, qrow_hits = hits[ok], qrow_hits[ok]
    retrieved_q = np.zeros(nq, dtype=bool)
    retrieved_q[qrow_hits] = True
    unret = np.flatnonzero((row_q_qrels >= 0) & ~retrieved_q).astype(idt)
    del retrieved_q
    unret = _group_stable(unret, row_q_qrels[unret])
    unret_qidx = row_q_qrels[unret]
    del row_q_qrels
    labels = np.zeros(nr)
    for c in range(0, hits.size, _MERGE_CHUNK):  # chunked: no full-size temporary
        labels[hits[c:c + _MERGE_CHUNK]] = qrels.value[qrow_hits[c:c + _MERGE_CHUNK]]
    del hits, qrow_hits
    if keep.all() and _nondecreasing(row_q_run):  # every run row kept, already grouped: no copies
        run_rows, run_qidx, run_labels = np.arange(nr, dtype=idt), row_q_run, labels
    else:
        run_rows = np.flatnonzero(keep).astype(idt)
        run_rows = _group_stable(run_rows, row_q_run[run_rows])
        run_qidx, run_labels = row_q_run[run_rows], labels[run_rows]
    del keep, labels, row_q_run
    first_idx = np.zeros(nu, dtype=np.int64)
    u_, f_ = np.unique(inv, return_index=True)  # first run (of either file) holding each code
    first_idx[u_] = f_
    qids = np.asarray(pc.take(firsts, pa.array(first_idx[ev_codes])).to_numpy(zero_copy_only=False)).astype(str)
    return TrecJoin(qids=qids, run_rows=run_rows, run_qidx=run_qidx, run_labels=run_labels,
                    unret_rows=unret, unret_qidx=unret_qidx,
                    n_run_queries_without_qrels=int((in_run & ~in_qrels).sum()))


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


# =========================================================================== CSV / Parquet
_RESERVED = ("qid", "label", "item_id", "query_text", "timestamp", "group_id", "compliance")
_GROUP_COL = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)\.([0-9]+)\Z")


def read_table(path: str, fmt: str, *, feature_groups: str | None = None) -> RankingDataset:
    """Read a CSV or Parquet file (pyarrow). See the module docstring for the columns."""
    import pyarrow as pa

    path = os.fspath(path)
    _check_file(path)
    if os.path.getsize(path) == 0:
        raise DataError("is empty.", path=path, fix="check the path; the file needs a header and rows.")
    unit = "line" if fmt == "csv" else "row"

    def line_of(i: int) -> int:
        return i + 2 if fmt == "csv" else i  # CSV: header is line 1

    try:
        if fmt == "csv":
            import pyarrow.csv as pacsv

            delim = "\t" if path.lower().endswith(".tsv") else ","
            with open(path, "rb") as f:
                head = f.read(4096)
            if b"\x00" in head:
                raise DataError("contains NUL bytes: this is a binary file, not CSV.", path=path,
                                fix="pass the CSV text file, or --format parquet/npz for binary files.")
            try:
                head.decode("utf-8")
            except UnicodeDecodeError as e:
                if e.start < len(head) - 4:
                    raise DataError(f"is not UTF-8 text (byte {head[e.start]:#04x} at offset {e.start}).", path=path,
                                    fix="pass a UTF-8 CSV file (decompress it first; re-encode it).") from None
            # only empty cells are missing: 'n/a' or 'NA' in a feature column must not pass as a number
            table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delim),
                                   convert_options=pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True))
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        names = table.column_names
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot be read as {fmt.upper()}: {msg}", path=path,
                        fix=f"check that it is a valid {fmt.upper()} file (use --format to name the right format).") from None
    for c in names:
        _check_name(c, path, "column")
    if len(set(names)) != len(names):
        dup = [c for c in names if names.count(c) > 1][0]
        raise DataError(f"column {dup!r} appears twice.", path=path, field=dup, fix="give every column a unique name.")
    for req in ("qid", "label"):
        if req not in names:
            raise DataError(f"required column {req!r} is missing (columns: {', '.join(names[:12])}"
                            f"{', ...' if len(names) > 12 else ''}).", path=path, field=req,
                            fix="name the query-id column 'qid' and the relevance column 'label'.")
    if table.num_rows == 0:
        raise DataError("has a header but no rows.", path=path, fix="check the file.")

    def col(name: str) -> Any:
        c = table.column(name)
        if c.null_count:
            i = int(np.flatnonzero(c.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(f"column {name!r} is empty at {unit} {line_of(i)}.", path=path, line=line_of(i),
                            field=name, fix="fill or drop rows with missing values.")
        return c

    def numeric(name: str) -> np.ndarray:
        c = col(name)
        if not (pa.types.is_integer(c.type) or pa.types.is_floating(c.type) or pa.types.is_boolean(c.type)):
            raise DataError(f"column {name!r} holds {c.type}, expected numbers.", path=path, field=name,
                            fix="write plain numbers in this column.")
        return np.asarray(c.to_numpy(), dtype=np.float64)

    qc = col("qid")
    if pa.types.is_integer(qc.type):
        qid = qc.to_numpy().astype(np.int64)
    elif pa.types.is_floating(qc.type):
        qf = qc.to_numpy()
        if not np.all(np.isfinite(qf)) or np.any(qf != np.round(qf)):
            raise DataError("qid values must be integers or strings.", path=path, field="qid")
        qid = qf.astype(np.int64)
    else:
        qid = np.asarray(qc.cast(pa.string()).to_numpy(zero_copy_only=False)).astype(str)
        _check_strings(qid, path, "qid", line_of, unit)
    labels = numeric("label")
    _check_labels(labels, path, "label", line_of)
    _check_contiguous(qid, path, line_of, unit)
    opt: dict[str, np.ndarray | None] = {"item_id": None, "query_text": None, "timestamp": None, "group_id": None}
    for name in ("item_id", "query_text", "group_id"):
        if name in names:
            c = col(name)
            if pa.types.is_integer(c.type):
                opt[name] = c.to_numpy()
            else:
                opt[name] = np.asarray(c.cast(pa.string()).to_numpy(zero_copy_only=False)).astype(str)
                if name != "query_text":  # query text may span lines; printers escape it
                    _check_strings(opt[name], path, name, line_of, unit)
    if "timestamp" in names:
        opt["timestamp"] = _timestamps(col("timestamp"), path)
    extra: dict[str, np.ndarray] = {}
    if "compliance" in names:
        extra["compliance"] = numeric("compliance")
    dotted = {c: _GROUP_COL.match(c) for c in names if c not in _RESERVED}
    dotted = {c: m for c, m in dotted.items() if m}
    feats: dict[str, np.ndarray] = {}
    if dotted:
        if feature_groups is not None:
            raise DataError("--feature-groups applies to files without '<group>.<i>' columns; this file names its groups.",
                            path=path, field="--feature-groups", fix="drop --feature-groups (or rename the columns).")
        by_group: dict[str, list[tuple[int, str]]] = {}
        for c, m in dotted.items():
            by_group.setdefault(m.group(1), []).append((int(m.group(2)), c))
        for g, cs in by_group.items():
            cs.sort()
            idx = [i for i, _ in cs]
            if len(set(idx)) != len(idx):
                raise DataError(f"feature group {g!r} repeats a column index.", path=path, field=g,
                                fix="number the columns <group>.1, <group>.2, ... once each.")
            feats[g] = np.column_stack([_finite(numeric(c), c, path, line_of) for _, c in cs])
        rest = [c for c in names if c not in _RESERVED and c not in dotted]
        for c in rest:
            extra[c] = _to_numpy(table.column(c))
    else:
        rest = [c for c in names if c not in _RESERVED]
        num = [c for c in rest if _is_numeric(table.column(c).type)]
        for c in rest:
            if c not in num:
                # a feature column with one stray word would otherwise vanish from the features
                raise DataError(f"column {c!r} is not numeric ({_first_non_number(table.column(c))}), and every "
                                "non-reserved column is a feature here.", path=path, field=c,
                                fix="make it numeric, drop it, or name feature columns <group>.<i> (other "
                                    "columns are then kept as extra data).")
        if not num:
            raise DataError("has no numeric feature columns.", path=path, field="features",
                            fix="add feature columns (numbers), named <group>.<i> or plain.")
        X = np.column_stack([_finite(numeric(c), c, path, line_of) for c in num])
        feats = _apply_groups(X, feature_groups)
    if opt["item_id"] is not None:
        _check_duplicates(qid, opt["item_id"], path, line_of, unit)
    return RankingDataset(qid=qid, labels=labels, features=feats, extra=extra,
                          meta={"source": path, "format": fmt}, name=path, **opt)


def _first_non_number(c: Any) -> str:
    vals = c.to_pylist()
    for i, v in enumerate(vals):
        try:
            float(v)
        except (TypeError, ValueError):
            return f"value {str(v)[:40]!r} in data row {i + 1}"
    return f"type {c.type}"


def _is_numeric(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _to_numpy(c: Any) -> np.ndarray:
    a = np.asarray(c.to_numpy(zero_copy_only=False))
    return a.astype(str) if a.dtype.kind == "O" else a


def _finite(x: np.ndarray, name: str, path: str, line_of: Any) -> np.ndarray:
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"feature {name!r} is {x[i]} at row {i}; features must be finite.", path=path,
                        line=line_of(i), field=name, fix="impute or drop non-finite values before auditing.")
    return x


def _timestamps(c: Any, path: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(c.type) or pa.types.is_floating(c.type):
        return np.asarray(c.to_numpy(), dtype=np.float64)
    try:
        if pa.types.is_string(c.type) or pa.types.is_large_string(c.type):
            c = pc.cast(c, pa.timestamp("us"))
        if pa.types.is_timestamp(c.type) or pa.types.is_date(c.type):
            return np.asarray(pc.cast(pc.cast(c, pa.timestamp("us")), pa.int64()).to_numpy(), dtype=np.float64) / 1e6
    except pa.ArrowException as e:
        raise DataError(f"timestamp values cannot be read as times ({str(e).splitlines()[0]}).", path=path,
                        field="timestamp", fix="write numbers (seconds) or ISO-8601 times like 2024-01-31T12:00:00.") from None
    raise DataError(f"timestamp column holds {c.type}.", path=path, field="timestamp",
                    fix="write numbers (seconds) or ISO-8601 times.")


# =========================================================================== NPZ
_NPZ_OPTIONAL = ("item_id", "query_text", "timestamp", "group_id")


def read_npz(path: str, *, feature_groups: str | None = None) -> RankingDataset:
    """Read an ``.npz`` archive (see the module docstring for the array names)."""
    path = os.fspath(path)
    _check_file(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"cannot be read as NPZ ({str(e).splitlines()[0] if str(e) else type(e).__name__}).",
                        path=path, fix="write it with numpy.savez(path, qid=..., labels=..., features__all=...).") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError("is a single .npy array, not an .npz archive.", path=path,
                        fix="write it with numpy.savez(path, qid=..., labels=..., features__all=...).")
    with z:
        keys = list(z.keys())
        arrays: dict[str, np.ndarray] = {}
        for k in keys:
            try:
                arrays[k] = z[k]
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
                raise DataError(f"array {k!r} cannot be read ({str(e).splitlines()[0]}).", path=path, field=k,
                                fix="store strings as fixed-width unicode (np.str_), not Python objects.") from None
    for k in keys:
        if k.startswith(("features__", "extra__")):
            g = k.partition("__")[2]
            if not _NAME_RE.match(g):
                raise DataError(f"array {k!r}: the name {g!r} after '__' is not an identifier "
                                "([A-Za-z_][A-Za-z0-9_-]*).", path=path, field=printable(k, newlines=False),
                                fix="rename the array, e.g. features__text or extra__clicks.")
    allowed = {"qid", "labels", "features", *_NPZ_OPTIONAL}
    unknown = [k for k in keys if k not in allowed and not k.startswith(("features__", "extra__"))]
    if unknown:
        raise DataError(f"unexpected array {unknown[0]!r}.", path=path, field=unknown[0],
                        fix="use qid, labels, features__<group> (or features), item_id, query_text, timestamp, "
                            "group_id, extra__<name>.")
    for req in ("qid", "labels"):
        if req not in arrays:
            raise DataError(f"required array {req!r} is missing (arrays: {', '.join(keys)}).", path=path, field=req,
                            fix="save the query ids as 'qid' and the relevance labels as 'labels'.")
    qid = arrays["qid"]
    if qid.ndim != 1:
        raise DataError(f"qid has shape {qid.shape}, expected (n,).", path=path, field="qid")
    n = qid.shape[0]
    if n == 0:
        raise DataError("has no rows.", path=path, field="qid")
    lab = arrays["labels"]
    if lab.shape != (n,) or lab.dtype.kind not in "iufb":
        raise DataError(f"labels has shape {lab.shape} and dtype {lab.dtype}, expected ({n},) numbers.", path=path,
                        field="labels")
    labels = lab.astype(np.float64)

    def row(i: int) -> int:
        return i

    _check_labels(labels, path, "labels", row)
    if qid.dtype.kind == "f":
        if not np.all(np.isfinite(qid)) or np.any(qid != np.round(qid)):
            raise DataError("qid values must be integers or strings.", path=path, field="qid")
        qid = qid.astype(np.int64)
    _check_strings(qid, path, "qid", row, "row")
    _check_contiguous(qid, path, row, "row")
    group_keys = [k for k in keys if k.startswith("features__")]
    if group_keys and "features" in arrays:
        raise DataError("has both 'features' and 'features__<group>' arrays.", path=path, field="features",
                        fix="store either one 'features' matrix or one array per group.")
    feats: dict[str, np.ndarray] = {}
    if group_keys:
        if feature_groups is not None:
            raise DataError("--feature-groups applies to a single 'features' array; this file names its groups.",
                            path=path, field="--feature-groups", fix="drop --feature-groups.")
        for k in group_keys:
            g = k[len("features__"):]
            feats[g] = _npz_matrix(arrays[k], k, n, path)
    elif "features" in arrays:
        feats = _apply_groups(_npz_matrix(arrays["features"], "features", n, path), feature_groups)
    else:
        raise DataError("has no features.", path=path, field="features",
                        fix="save features as features__<group> arrays (n, d) or one 'features' array.")
    opt = {}
    for k in _NPZ_OPTIONAL:
        if k in arrays:
            a = arrays[k]
            if a.shape != (n,):
                raise DataError(f"{k} has shape {a.shape}, expected ({n},).", path=path, field=k)
            if k != "query_text":
                _check_strings(a, path, k, row, "row")
            opt[k] = a
    extra = {}
    for k in keys:
        if k.startswith("extra__"):
            a = arrays[k]
            if a.shape != (n,):
                raise DataError(f"{k} has shape {a.shape}, expected ({n},).", path=path, field=k)
            extra[k[len("extra__"):]] = a
    if "item_id" in opt:
        _check_duplicates(qid, opt["item_id"], path, row, "row")
    return RankingDataset(qid=qid, labels=labels, features=feats, extra=extra,
                          meta={"source": path, "format": "npz"}, name=path, **opt)


def _npz_matrix(a: np.ndarray, name: str, n: int, path: str) -> np.ndarray:
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] != n:
        raise DataError(f"{name} has shape {a.shape}, expected ({n}, d).", path=path, field=name)
    if a.dtype.kind not in "iufb":
        raise DataError(f"{name} has dtype {a.dtype}, expected numbers.", path=path, field=name)
    a = a.astype(np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"{name} is {a[r, c]} at row {r}, column {c}; features must be finite.", path=path,
                        line=int(r), field=name, fix="impute or drop non-finite values before auditing.")
    return a
