"""LETOR / svmlight files: ``<label> qid:<qid> <idx>:<value> ... # docid = <id>``.

Rules: :mod:`auditor.loaders` ("LETOR / svmlight"). The file is streamed line by line.
"""
from __future__ import annotations

import os

import numpy as np

from auditor.data import RankingDataset
from auditor.errors import DataError
from auditor.loaders.common import (_DOCID_RE, _MAX_CELLS, _MAX_WIDTH, _SIZE_RE, LABEL_LIMIT, _check_contiguous,
                                    _check_duplicates, _check_file, _qid_array, _split_fields, _strict_float,
                                    _text_lines, max_features_limit)
from auditor.loaders.groups import _apply_groups, parse_feature_groups

__all__ = ["read_letor"]

#: rows parsed and validated together
_BATCH = 4096
#: bytes of one segment of the matrix under construction. Above glibc's largest mmap threshold
#: (32 MiB), so each segment is its own mapping, returned to the system when freed (smaller
#: blocks come from the heap and stay resident after they are freed)
_SEGMENT_BYTES = 64 << 20


def _check_width(path: str, width: int, n: int, max_idx: int, n_features: int | None, max_features: int | None,
                 row_max: np.ndarray, line_arr: np.ndarray) -> None:
    """DataError when the dense matrix of a sparse file would be wider than the limit (or too large).

    ``row_max``: the largest 1-based index of each row (0 for a row without features).
    """
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
    row = int(np.argmax(row_max))
    others = np.delete(row_max, row)
    rest = (f" The other lines reach index {int(others.max()):,} at most: a single far-out index is usually a "
            "typo or a broken writer." if others.size and int(others.max()) < width // 2 else "")
    raise DataError(f"feature index {width:,} is the widest in the file; features are held dense, so it would make a "
                    f"{size}; {limit}.{rest}", path=path, line=int(line_arr[row]),
                    field=f"{width}", fix=f"if the index is wrong, repair line {int(line_arr[row])}; {raise_it}.")


def read_letor(path: str, *, n_features: int | None = None, feature_groups: str | None = None,
               max_features: int | None = None) -> RankingDataset:
    """Read a LETOR / svmlight file (streamed line by line). See the module docstring.

    Memory: rows are parsed a batch at a time into dense float64 segments of 64 MiB. A file that
    fits one segment is returned in it; otherwise the segments are copied into the final matrix
    one by one, each freed as it is copied (the matrix's pages become resident as the copy
    reaches them), so the peak is about one copy of the matrix, one segment and a few dozen
    bytes per row.

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
    limit = None if n_features is None else int(n_features)
    cap = min(max_features_limit() if max_features is None else int(max_features), _MAX_WIDTH)
    b = _Blocks(path, limit, cap)
    try:
        for no, line in _text_lines(path):
            b.add_line(no, line)
    except DataError:
        b.flush(check_only=True)  # a problem on an earlier, not yet validated line is reported first
        raise
    b.flush()
    n = b.n
    if n == 0:
        raise DataError("has no data lines (empty, or comments only).", path=path,
                        fix=f"check the path; each data line reads {_EXPECT}.")
    line_arr = np.concatenate(b.line_parts)
    labels = np.concatenate(b.label_parts)
    row_max = np.concatenate(b.row_max_parts)

    def line_of(i: int) -> int:
        return int(line_arr[i])

    if b.has_qid:
        qid = _qid_array(b.qids)
        _check_query_file_agrees(path, qid)
    else:
        qid = _qid_from_query_file(path, n)
    b.qids = []
    max_idx = int(row_max.max())
    width = limit if limit is not None else max_idx
    if spec_groups is not None and limit is None:
        width = max(width, max(int(c.max()) + 1 for c in spec_groups.values()))
    if width == 0:
        raise DataError("no line has any feature (only labels and qids).", path=path,
                        fix="each data line needs <index>:<value> tokens.")
    _check_width(path, width, n, max_idx, limit, max_features, row_max, line_arr)
    del row_max
    X = b.matrix(width)
    offsets = _check_contiguous(qid, path, line_of)
    del offsets
    item = None
    docids = b.docids
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
    return RankingDataset(qid=qid, labels=labels, features=feats, item_id=item,
                          meta={"source": path, "format": "letor", "n_features": width,
                                # ids numbered from a .query file are positions, not identities:
                                # the isolation audit must not compare them across files
                                "qid_generated": not b.has_qid}, name=path)


_EXPECT = "'<label> qid:<id> <index>:<value> ... # docid = <id>'"


class _Blocks:
    """The rows read so far: per-row columns in numpy parts, features in dense segments.

    A batch's feature tokens are validated together (vectorized) when the batch is flushed; a
    batch with a problem is re-checked line by line to name the first bad line.
    """

    def __init__(self, path: str, limit: int | None, cap: int) -> None:
        self.path, self.limit, self.cap = path, limit, cap
        self.size = os.path.getsize(path)
        self.has_qid: bool | None = None
        self.n = 0
        self.qids: list[str] = []
        self.docids: list[str | None] = []
        self.segments: list[list] = []  # [array (capacity, width), rows used]
        self.too_wide = False
        self.label_parts: list[np.ndarray] = []
        self.line_parts: list[np.ndarray] = []
        self.row_max_parts: list[np.ndarray] = []
        self._new_batch()

    def _new_batch(self) -> None:
        self.labels: list[float] = []
        self.lines: list[int] = []
        self.pend: list[np.ndarray] = []  # interleaved index, value of each row with features
        self.pend_tokens: list[list[str]] = []
        self.pend_lines: list[int] = []
        self.pend_rows: list[int] = []  # row (within the batch) of each pend entry

    def add_line(self, no: int, line: str) -> None:
        """Parse one line; structural problems (label, qid, token syntax) raise at once."""
        path = self.path
        body, hash_, comment = line.partition("#")
        toks = _split_fields(body)
        if not toks:
            return  # blank or comment-only line
        lab_tok = toks[0]
        try:
            lab = _strict_float(lab_tok)
        except ValueError:
            raise DataError(f"label {lab_tok!r} is not a number; expected {_EXPECT}.", path=path, line=no,
                            field="label", fix="the first token of every line is the relevance label.") from None
        if not np.isfinite(lab) or abs(lab) > LABEL_LIMIT:
            raise DataError(f"label {lab_tok!r} is not a finite number within ±{LABEL_LIMIT:g}.", path=path,
                            line=no, field="label",
                            fix="labels are graded relevance (e.g. 0-4); repair or drop this line.")
        rest = toks[1:]
        this_has_qid = bool(rest) and rest[0].startswith("qid:")
        if self.has_qid is None:
            self.has_qid = this_has_qid
        elif self.has_qid != this_has_qid:
            raise DataError("some lines have 'qid:' and this one does not (or the other way round).", path=path,
                            line=no, field="qid", fix="give every line a qid:<id> token right after the label.")
        if this_has_qid:
            q = rest[0][4:]
            if not q:
                raise DataError("empty qid ('qid:' with no value).", path=path, line=no, field="qid",
                                fix="write qid:<id> right after the label.")
            self.qids.append(q)
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
            self.pend.append(arr)
            self.pend_tokens.append(rest)
            self.pend_lines.append(no)
            self.pend_rows.append(len(self.labels))
        self.labels.append(lab)
        self.lines.append(no)
        if hash_:
            m = _DOCID_RE.search(comment)
            self.docids.append(m.group(1) if m else None)
        else:
            self.docids.append(None)
        if len(self.labels) >= _BATCH:
            self.flush()

    def flush(self, check_only: bool = False) -> None:
        """Validate the batch's feature tokens and store it as one dense block (DataError naming a bad line)."""
        k = len(self.labels)
        if self.pend:
            idx, val, ntok = _validate_batch(self.pend, self.pend_tokens, self.pend_lines, self.limit, self.path)
        else:
            idx, val, ntok = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
        if check_only or k == 0:
            return
        pend_rows = np.asarray(self.pend_rows, dtype=np.int64)
        rows = np.repeat(pend_rows, ntok)
        row_max = np.zeros(k, dtype=np.int64)
        if idx.size:  # every pending row has at least one token
            row_max[pend_rows] = np.maximum.reduceat(idx, np.cumsum(ntok) - ntok) + 1
        top = int(row_max.max())
        self.too_wide |= top > self.cap  # the width check at the end raises, naming the line
        if not self.too_wide:
            seg = self.segments[-1] if self.segments else None
            if seg is None or seg[1] + k > seg[0].shape[0] or top > seg[0].shape[1]:
                w = max(top, seg[0].shape[1] if seg else 0, 1)
                # a row takes at least 2 bytes of the file: small files get small segments
                cap = max(k, min(_SEGMENT_BYTES // (8 * w), self.size // 2))
                seg = [np.zeros((cap, w)), 0]  # untouched pages are never resident
                self.segments.append(seg)
            seg[0][seg[1] + rows, idx] = val
            seg[1] += k
        self.row_max_parts.append(row_max)
        self.label_parts.append(np.asarray(self.labels, dtype=np.float64))
        self.line_parts.append(np.asarray(self.lines, dtype=np.int64))
        self.n += k
        self._new_batch()

    def matrix(self, width: int) -> np.ndarray:
        """The (n, width) feature matrix; the segments are given up as they are copied in."""
        segs, self.segments = self.segments, []
        if len(segs) == 1 and segs[0][0].shape[1] == width:
            return segs[0][0][:self.n]  # one segment: no copy (its unused capacity was never touched)
        X = np.zeros((self.n, width))
        r0 = 0
        while segs:
            a, used = segs.pop(0)
            X[r0:r0 + used, :a.shape[1]] = a[:used]
            r0 += used
            del a  # freed now: the peak stays near one copy of the matrix
        return X


def _validate_batch(pend: list[np.ndarray], tokens: list[list[str]], lines: list[int], limit: int | None,
                    path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a batch of parsed feature lines at once: (0-based indices, values, tokens per line).

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
    return ii - 1, val, ntok


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
