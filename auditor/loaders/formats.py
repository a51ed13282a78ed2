"""The one list of file formats: names, suffixes, readers; format guessing and :func:`load`.

Light on purpose (no numpy at import): the CLI reads :data:`FORMATS` to build its ``--format``
choices at start-up. Adding a format is one :class:`Format` entry plus its reader module.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from auditor.errors import DataError

if TYPE_CHECKING:
    from auditor.data import RankingDataset

__all__ = ["Format", "FORMATS", "FEATURE_FORMATS", "DEFAULT_FORMAT", "guess_format", "load"]


@dataclass(frozen=True)
class Format:
    """One input format.

    ``features``: the file holds features and labels (what ``audit run`` trains on); a TREC run
    holds only scores. ``suffixes`` (lower case) select the format when ``--format`` is omitted.
    ``reader``: ``"module:function"``, imported on first use.
    """

    name: str
    suffixes: tuple[str, ...]
    features: bool
    reader: str
    summary: str


FORMATS: Mapping[str, Format] = {f.name: f for f in (
    Format("letor", (".txt", ".svm", ".svmlight", ".letor", ".libsvm"), True, "auditor.loaders.letor:read_letor",
           "LETOR / svmlight text, '<label> qid:<id> <index>:<value> ...'; any unknown suffix"),
    Format("trec", (".run", ".trec", ".res"), False, "auditor.loaders.trec:read_trec",
           "TREC run 'qid Q0 docno rank score tag' with its qrels"),
    Format("parquet", (".parquet", ".pq"), True, "auditor.loaders.table:read_table", "Parquet table"),
    Format("csv", (".csv", ".tsv"), True, "auditor.loaders.table:read_table", "CSV (or .tsv) table"),
    Format("npz", (".npz",), True, "auditor.loaders.npz:read_npz", "numpy .npz archive"),
)}
#: Formats holding features and labels (``audit run``'s and ``check-plugin``'s ``--format``).
FEATURE_FORMATS: tuple[str, ...] = tuple(n for n, f in FORMATS.items() if f.features)
#: What a file whose suffix names no format is read as (LightGBM's ``rank.train`` ...).
DEFAULT_FORMAT = "letor"


def guess_format(path: str | os.PathLike, qrels: str | None = None) -> str:
    """Format name for ``path`` from its suffix (any file given with ``qrels`` is TREC)."""
    if qrels is not None:
        return "trec"
    suf = Path(path).suffix.lower()
    return next((n for n, f in FORMATS.items() if suf in f.suffixes), DEFAULT_FORMAT)


def _reader(fmt: str):  # type: ignore[no-untyped-def]
    module, _, func = FORMATS[fmt].reader.partition(":")
    return getattr(importlib.import_module(module), func)


def load(path: str | os.PathLike, fmt: str | None = None, *, feature_groups: str | None = None,
         n_features: int | None = None, qrels: str | os.PathLike | None = None,
         max_features: int | None = None) -> "RankingDataset":
    """Load a ranking dataset from ``path``.

    Parameters
    ----------
    path : str or PathLike
        The data file (for ``trec``: the run file).
    fmt : {"letor", "trec", "parquet", "csv", "npz"}, optional
        Guessed from the suffix when omitted (see :func:`guess_format`).
    feature_groups : str, optional
        Group spec, e.g. ``"image=1-512;text=513-1024"`` (see :mod:`auditor.loaders`).
        Default: one group ``all`` (``score`` for TREC; ``<group>.<i>`` columns name their own).
    n_features : int, optional
        LETOR only: force the feature width (indices above it are errors).
    qrels : str or PathLike, optional
        TREC only (required there): the qrels file giving the labels.
    max_features : int, optional
        LETOR only: the widest feature matrix accepted (default
        :data:`~auditor.loaders.DEFAULT_MAX_FEATURES`, or the
        :func:`~auditor.loaders.feature_width_limit` in force). Other formats store their matrix
        dense in the file already.

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
    read = _reader(fmt)
    if fmt == "letor":
        return read(path, n_features=n_features, feature_groups=feature_groups, max_features=max_features)
    if fmt == "trec":
        if qrels is None:
            raise DataError("a TREC run needs its qrels file for the labels.", path=path, field="qrels",
                            fix="pass --qrels QRELS (or load(run, 'trec', qrels=QRELS)).")
        if feature_groups is not None:
            raise DataError("a TREC run has a single feature group 'score'; --feature-groups does not apply.",
                            path=path, field="--feature-groups", fix="drop --feature-groups.")
        return read(path, os.fspath(qrels))
    if fmt in ("csv", "parquet"):
        return read(path, fmt, feature_groups=feature_groups)
    return read(path, feature_groups=feature_groups)
