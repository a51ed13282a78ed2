"""File loaders (a package: one module per format): LETOR/svmlight, TREC run + qrels, CSV, Parquet and NPZ into a :class:`RankingDataset`.

:func:`load` dispatches on ``fmt``, one of :data:`~auditor.loaders.formats.FORMATS` (the one list
of formats, which the CLI and :mod:`auditor.data` read too); when ``fmt`` is omitted it is
guessed from the suffix: ``.parquet/.pq`` → parquet, ``.csv/.tsv`` → csv,
``.npz`` → npz, ``.run/.trec/.res`` (or any file when ``qrels`` is given) → trec, and
everything else (``.txt``, ``.svm``, ``.letor``, LightGBM's ``rank.train`` ...) → letor.

Every problem with the input raises :class:`~auditor.errors.DataError` naming the file, the
line (text formats, 1-based) or row / column, the field, what was expected and the fix. Nothing
else escapes a loader (no tracebacks, no silently wrong numbers).

Modules: :mod:`~auditor.loaders.formats` (the registry, guessing, :func:`load`),
:mod:`~auditor.loaders.common` (shared checks), :mod:`~auditor.loaders.groups` (the feature-group
spec), :mod:`~auditor.loaders.letor`, :mod:`~auditor.loaders.trec` (with the private fast reader
``_trec_stream`` and hash join ``_trec_join``), :mod:`~auditor.loaders.table` (CSV, Parquet) and
:mod:`~auditor.loaders.npz`. Everything public is importable from ``auditor.loaders`` itself,
imported on first use (``import auditor.loaders`` does not import numpy).

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

import importlib
from typing import Any

# name -> module holding it: imported on first use (PEP 562), so that the CLI can read the
# format registry without importing numpy and pyarrow
_WHERE = {
    "load": "formats", "guess_format": "formats", "FORMATS": "formats", "FEATURE_FORMATS": "formats",
    "Format": "formats",
    "check_input_file": "common", "feature_width_limit": "common", "max_features_limit": "common",
    "DEFAULT_MAX_FEATURES": "common", "MAX_LINE_BYTES": "common", "LABEL_LIMIT": "common",
    "parse_feature_groups": "groups",
    "read_letor": "letor",
    "read_trec": "trec", "read_run": "trec", "read_qrels": "trec", "align_run_to_dataset": "trec",
    "join_run_qrels": "trec", "reference_join": "trec", "read_trec_lines": "trec", "TrecTable": "trec", "TrecJoin": "trec",
    "read_table": "table",
    "read_npz": "npz",
}
__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"auditor.loaders.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'auditor.loaders' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
