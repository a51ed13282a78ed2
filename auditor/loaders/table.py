"""CSV and Parquet tables (pyarrow): ``qid``, ``label``, optional id columns, feature columns.

Columns and rules: :mod:`auditor.loaders` ("CSV / Parquet").
"""
from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from auditor.data import RankingDataset
from auditor.errors import DataError
from auditor.loaders.common import (_check_contiguous, _check_duplicates, _check_file, _check_labels, _check_name,
                                    _check_strings)
from auditor.loaders.groups import _apply_groups

__all__ = ["read_table"]

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
