"""Ranking data: the frozen :class:`RankingDataset`, :class:`Split`, and loader dispatch.

A dataset is a table of *rows* (query-candidate pairs). Rows of one query are contiguous.
Arrays are stored read-only: audits derive modified copies (:meth:`RankingDataset.with_labels`,
:meth:`RankingDataset.with_features`, :meth:`RankingDataset.subset`) and never mutate, and a
plugin that writes into its input fails loudly instead of corrupting later trials.

The file loaders live in :mod:`auditor.loaders`; :func:`load_dataset` dispatches on format.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from auditor.errors import DataError
from auditor.loaders.formats import FORMATS
from auditor.safetext import describe_char, first_control, printable

__all__ = ["RankingDataset", "Split", "load_dataset", "FORMATS"]



def _check_name(name: str, what: str, where: str) -> None:
    """Names reach terminals and reports: no control characters (escape sequences, line breaks)."""
    i = first_control(name)
    if i is not None:
        raise DataError(f"{what} name {name!r} holds the control character {describe_char(name[i])}; names must "
                        "be printable.", path=where, field=printable(name, newlines=False),
                        fix=f"rename the {what} (e.g. letters, digits, '_' and '-').")


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (no copy; the caller's own array stays writeable)."""
    a = np.asarray(a)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


class _CallableList(list):
    """A list that may also be called: ``query_slices`` and ``feature_names`` were methods before
    every derived value without arguments became a property (see :mod:`auditor.protocol`), so
    ``data.feature_names()`` keeps working, with a DeprecationWarning."""

    __slots__ = ("_member",)

    def __init__(self, member: str, items: Iterable[Any]) -> None:
        super().__init__(items)
        self._member = member

    def __call__(self) -> "_CallableList":
        warnings.warn(f"RankingDataset.{self._member} is a property now; drop the parentheses "
                      f"(data.{self._member}).", DeprecationWarning, stacklevel=2)
        return self

    def __reduce__(self):  # pickle as a plain list: nothing depends on the call alias across processes
        return (list, (list(self),))


def _hash_array(h: Any, a: np.ndarray) -> None:
    """Feed the bytes of the C-contiguous ``a`` to hash ``h`` without copying them
    (``a.tobytes()`` made a copy of the whole feature matrix: 1.1 GB at 1M MSLR rows)."""
    try:
        h.update(memoryview(a).cast("B"))
    except (TypeError, ValueError):  # no buffer export (object arrays): the bytes as before
        h.update(a.tobytes())


@dataclass(frozen=True, eq=False)
class RankingDataset:
    """Query-grouped ranking data (frozen).

    Parameters
    ----------
    qid : ndarray, shape (n,)
        Query id per row (int or str). Rows of one query must be contiguous.
    labels : ndarray, shape (n,)
        Graded relevance (float). Finite, unless the labels are hidden (NaN everywhere,
        see :meth:`hide_labels`).
    features : dict[str, ndarray of shape (n, d_g)]
        Named feature groups (``{"all": X}`` for a LETOR file; ``image`` / ``text`` /
        ``visual`` for the reference model). Finite floats.
    item_id : ndarray, shape (n,), optional
        Candidate (document) id; the same item may appear under several queries.
    query_text : ndarray, shape (n,), optional
        Query string per row (constant within a query).
    timestamp : ndarray, shape (n,), optional
        Event time per row (float seconds or any monotone number).
    group_id : ndarray, shape (n,), optional
        Entity / user / session id, for group-overlap checks.
    extra : dict[str, ndarray of shape (n,)], optional
        Other per-row columns (e.g. ``compliance`` for Compliance@1). Never features.
    meta : dict, optional
        Dataset-level facts (name, source path, scenario); not validated.
    name : str
        Label used in messages (usually the file path).

    Notes
    -----
    Construction validates lengths, contiguity and finiteness and raises
    :class:`~auditor.errors.DataError` naming the field and the first bad row.
    """

    qid: np.ndarray
    labels: np.ndarray
    features: Mapping[str, np.ndarray]
    item_id: np.ndarray | None = None
    query_text: np.ndarray | None = None
    timestamp: np.ndarray | None = None
    group_id: np.ndarray | None = None
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    name: str = "<array>"
    labels_hidden: bool = False

    def __post_init__(self) -> None:
        where = self.name
        qid = np.asarray(self.qid)
        if qid.ndim != 1:
            raise DataError(f"qid must be 1-D, got shape {qid.shape}.", path=where, field="qid")
        n = qid.shape[0]
        if n == 0:
            raise DataError("the dataset has no rows.", path=where,
                            fix="check the file is not empty and the right path was given.")
        if qid.dtype.kind == "f":
            if not np.all(np.isfinite(qid)) or np.any(qid != np.round(qid)):
                raise DataError("qid values must be integers or strings.", path=where, field="qid")
            qid = qid.astype(np.int64)
        if qid.dtype.kind == "O":
            qid = qid.astype(str)
        try:
            labels = np.asarray(self.labels, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("labels must be numbers (graded relevance).", path=where, field="labels",
                            fix="convert the label column to numbers.") from None
        if labels.shape != (n,):
            raise DataError(f"labels has shape {labels.shape}, expected ({n},) like qid.",
                            path=where, field="labels")
        if not self.labels_hidden:
            bad = np.flatnonzero(~np.isfinite(labels))
            if bad.size:
                raise DataError(f"label is {labels[bad[0]]} at row {bad[0]}; labels must be finite numbers.",
                                path=where, field="labels", fix="remove or repair rows with missing labels.")
        if not isinstance(self.features, Mapping) or len(self.features) == 0:
            raise DataError("features must be a non-empty dict of named groups.", path=where, field="features")
        feats: dict[str, np.ndarray] = {}
        for g, x in self.features.items():
            _check_name(str(g), "feature group", where)
            x = np.asarray(x)
            if x.ndim == 1:
                x = x[:, None]
            if x.ndim != 2 or x.shape[0] != n:
                raise DataError(f"feature group {g!r} has shape {x.shape}, expected ({n}, d).",
                                path=where, field=f"features[{g}]")
            if x.dtype.kind not in "fiub":
                raise DataError(f"feature group {g!r} is not numeric (dtype {x.dtype}).",
                                path=where, field=f"features[{g}]")
            if x.dtype.kind != "f":
                x = x.astype(np.float64)
            finite = np.isfinite(x)
            if not finite.all():
                r, c = np.argwhere(~finite)[0]
                raise DataError(f"feature group {g!r} has {x[r, c]} at row {r}, column {c}; features must be finite.",
                                path=where, field=f"features[{g}]",
                                fix="impute or drop non-finite values before auditing.")
            feats[str(g)] = _readonly(x)
        opt: dict[str, np.ndarray | None] = {}
        for fname in ("item_id", "query_text", "timestamp", "group_id"):
            v = getattr(self, fname)
            if v is not None:
                v = np.asarray(v)
                if v.dtype.kind == "O":
                    v = v.astype(str)
                if v.shape != (n,):
                    raise DataError(f"{fname} has shape {v.shape}, expected ({n},).", path=where, field=fname)
                v = _readonly(v)
            opt[fname] = v
        extra = {}
        for k, v in dict(self.extra).items():
            _check_name(str(k), "extra column", where)
            v = np.asarray(v)
            if v.shape != (n,):
                raise DataError(f"extra column {k!r} has shape {v.shape}, expected ({n},).", path=where, field=k)
            extra[str(k)] = _readonly(v)
        # contiguity: each qid must form one run of rows
        change = np.empty(n, dtype=bool)
        change[0] = True
        change[1:] = qid[1:] != qid[:-1]
        starts = np.flatnonzero(change)
        run_ids = qid[starts]
        uniq, first, counts = np.unique(run_ids, return_index=True, return_counts=True)
        if np.any(counts > 1):
            dup = uniq[counts > 1][0]
            rows = starts[run_ids == dup]
            raise DataError(
                f"rows of query {dup.item() if isinstance(dup, np.generic) else dup!r} are not contiguous (runs start at rows {rows[:3].tolist()}).",
                path=where, field="qid",
                fix="sort the file by query id (stable sort keeps the candidate order).")
        object.__setattr__(self, "qid", _readonly(qid))
        object.__setattr__(self, "labels", _readonly(labels))
        object.__setattr__(self, "features", feats)
        for k, v in opt.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "extra", extra)
        object.__setattr__(self, "meta", dict(self.meta))
        offsets = np.append(starts, n).astype(np.int64)
        offsets.flags.writeable = False
        object.__setattr__(self, "_offsets", offsets)

    # ------------------------------------------------------------------ shape
    @property
    def n_rows(self) -> int:
        return int(self.qid.shape[0])

    @property
    def n_queries(self) -> int:
        return int(self._offsets.shape[0] - 1)  # type: ignore[attr-defined]

    @property
    def query_offsets(self) -> np.ndarray:
        """Row offsets, shape (n_queries + 1,): query ``i`` is rows ``offsets[i]:offsets[i+1]``."""
        return self._offsets  # type: ignore[attr-defined]

    @property
    def query_ids(self) -> np.ndarray:
        """Query ids in file order, shape (n_queries,)."""
        return self.qid[self.query_offsets[:-1]]

    @property
    def query_sizes(self) -> np.ndarray:
        return np.diff(self.query_offsets)

    @property
    def query_index(self) -> np.ndarray:
        """Per-row query position 0..n_queries-1, shape (n,)."""
        return np.repeat(np.arange(self.n_queries), self.query_sizes)

    @property
    def query_slices(self) -> "_CallableList[slice]":
        """Row slice of each query, in file order: ``labels[data.query_slices[i]]`` is query ``i``."""
        o = self.query_offsets.tolist()
        return _CallableList("query_slices", (slice(a, b) for a, b in zip(o[:-1], o[1:])))

    @property
    def feature_groups(self) -> list[str]:
        return list(self.features)

    @property
    def n_features(self) -> int:
        return int(sum(x.shape[1] for x in self.features.values()))

    def feature_matrix(self, groups: Iterable[str] | None = None) -> np.ndarray:
        """Feature groups (all by default) side by side: one C-contiguous, read-only (n, D) float64 array.

        Built once per dataset and kept (so a model's ``fit`` and ``score`` do not copy the whole
        matrix on every call): a single float64 group that is already C-contiguous is returned
        itself, no copy; otherwise the groups are concatenated once and the result cached for
        all groups (other subsets are built per call). Read-only: copy it before editing
        (``X = data.feature_matrix().copy()``). Derived datasets that keep the features
        (:meth:`hide_labels`, :meth:`with_labels`, :meth:`with_meta`) share the cache.
        """
        gs = list(self.features) if groups is None else list(groups)
        full = gs == list(self.features)
        cache: dict[str, np.ndarray] = self.__dict__.setdefault("_matrix_cache", {})
        if full and "all" in cache:
            return cache["all"]
        if len(gs) == 1 and self.features[gs[0]].dtype == np.float64 and self.features[gs[0]].flags.c_contiguous:
            m = _readonly(self.features[gs[0]])
        else:
            owner = np.concatenate([np.asarray(self.features[g], dtype=np.float64) for g in gs], axis=1)
            owner.flags.writeable = False
            m = _readonly(owner.view())  # a view of a read-only owner: its flag cannot be set back
        if full:
            cache["all"] = m
        return m

    def _cached_matrix(self) -> np.ndarray | None:
        """The cached :meth:`feature_matrix` when it holds its own copy of the data (several
        groups, or a conversion), else None: what the input checksums must cover besides the groups."""
        m = self.__dict__.get("_matrix_cache", {}).get("all")
        if m is None or any(np.shares_memory(m, x) for x in self.features.values()):
            return None
        return m

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("_matrix_cache", None)  # rebuilt on demand in the receiving process
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)

    @property
    def feature_names(self) -> "_CallableList[str]":
        """``<group>.<i>`` per column of :meth:`feature_matrix`."""
        return _CallableList("feature_names", (f"{g}.{i}" for g, x in self.features.items() for i in range(x.shape[1])))

    # ------------------------------------------------------------------ derive
    def _replace(self, **changes: Any) -> "RankingDataset":
        kw = dict(qid=self.qid, labels=self.labels, features=self.features, item_id=self.item_id,
                  query_text=self.query_text, timestamp=self.timestamp, group_id=self.group_id,
                  extra=self.extra, meta=self.meta, name=self.name, labels_hidden=self.labels_hidden)
        kw.update(changes)
        return RankingDataset(**kw)

    def _same_rows(self, **changes: Any) -> "RankingDataset":
        """A copy with ``changes`` to fields that are not features or row order.

        The features, query ids and offsets were validated when this dataset was built and are
        shared as they are, with the feature-matrix cache: a model's ``score`` gets a copy with
        hidden labels on every call, and re-checking a million rows for finiteness and query
        contiguity each time would cost more than the call's own bookkeeping should.
        """
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__["_matrix_cache"] = self.__dict__.setdefault("_matrix_cache", {})
        for k, v in changes.items():
            object.__setattr__(new, k, v)
        return new

    def _with_trusted_features(self, features: Mapping[str, np.ndarray]) -> "RankingDataset":
        """Copy with some groups replaced, without re-validation: for the auditor's own derived
        arrays that keep each group's shape and dtype and hold only this dataset's values (its
        rows permuted), so they are finite by construction. Anything else goes through
        :meth:`with_features`."""
        new = self._same_rows()
        for g, x in features.items():
            if g not in self.features or x.shape != self.features[g].shape:
                raise ValueError(f"_with_trusted_features: group {g!r} must keep shape {self.features.get(g, x).shape}")
        object.__setattr__(new, "features", {**self.features, **{g: _readonly(x) for g, x in features.items()}})
        new.__dict__["_matrix_cache"] = {}
        return new

    def with_labels(self, labels: np.ndarray) -> "RankingDataset":
        """Copy with new labels, shape (n,)."""
        try:
            y = np.asarray(labels, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("labels must be numbers (graded relevance).", path=self.name, field="labels") from None
        if y.shape != (self.n_rows,):
            raise DataError(f"labels has shape {y.shape}, expected ({self.n_rows},) like qid.",
                            path=self.name, field="labels")
        bad = np.flatnonzero(~np.isfinite(y))
        if bad.size:
            raise DataError(f"label is {y[bad[0]]} at row {bad[0]}; labels must be finite numbers.",
                            path=self.name, field="labels", fix="remove or repair rows with missing labels.")
        return self._same_rows(labels=_readonly(y), labels_hidden=False)

    def hide_labels(self) -> "RankingDataset":
        """Copy whose labels are NaN: what a model's ``score`` receives when labels must not matter."""
        return self._same_rows(labels=_readonly(np.full(self.n_rows, np.nan)), labels_hidden=True)

    def with_features(self, features: Mapping[str, np.ndarray], *, replace_all: bool = False) -> "RankingDataset":
        """Copy with some feature groups replaced (or all, with ``replace_all``)."""
        new = dict(features) if replace_all else {**self.features, **features}
        return self._replace(features=new)

    def with_meta(self, **meta: Any) -> "RankingDataset":
        return self._same_rows(meta={**self.meta, **meta})

    def take(self, rows: np.ndarray, *, name: str | None = None) -> "RankingDataset":
        """Rows by index (must keep each query contiguous)."""
        rows = np.asarray(rows)
        def pick(a):
            return None if a is None else a[rows]
        return RankingDataset(
            qid=self.qid[rows], labels=self.labels[rows],
            features={g: x[rows] for g, x in self.features.items()},
            item_id=pick(self.item_id), query_text=pick(self.query_text),
            timestamp=pick(self.timestamp), group_id=pick(self.group_id),
            extra={k: v[rows] for k, v in self.extra.items()}, meta=self.meta,
            name=name or self.name, labels_hidden=self.labels_hidden)

    def subset(self, queries: np.ndarray, *, name: str | None = None) -> "RankingDataset":
        """Queries by position (0..n_queries-1, in the given order) or by boolean mask over queries."""
        q = np.asarray(queries)
        if q.dtype == bool:
            q = np.flatnonzero(q)
        o = self.query_offsets
        if q.size == 0:
            raise DataError("subset would be empty.", path=self.name)
        q = q.astype(np.int64)
        if q.min() < -self.n_queries or q.max() >= self.n_queries:
            raise IndexError(f"query position out of range 0..{self.n_queries - 1}")
        q = np.where(q < 0, q + self.n_queries, q)
        sizes = o[q + 1] - o[q]
        # rows of each chosen query, in order: start of its query + position within it
        starts = np.repeat(o[q], sizes)
        within = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return self.take(starts + within, name=name)

    # ------------------------------------------------------------------ identity
    def sha256(self) -> str:
        """Content hash (qid, labels, features, ids) -- the data hash shown in reports."""
        h = hashlib.sha256()
        for arr in (self.qid, self.labels, self.item_id):
            if arr is not None:
                _hash_array(h, np.ascontiguousarray(arr))
        for g in sorted(self.features):
            h.update(g.encode())
            _hash_array(h, np.ascontiguousarray(self.features[g], dtype=np.float64))
        return h.hexdigest()

    def summary(self, sha256: str | None = None) -> dict[str, Any]:
        """Small JSON-able description for results.json.

        ``sha256`` passes a hash :meth:`sha256` already computed for this dataset (a run hashes
        each dataset once; ~0.2 s for the reference training set), else it is computed.
        """
        lab = self.labels[np.isfinite(self.labels)]
        return {
            "name": self.name, "n_rows": self.n_rows, "n_queries": self.n_queries,
            "feature_groups": {g: int(x.shape[1]) for g, x in self.features.items()},
            "label_values": sorted({float(v) for v in np.unique(lab)})[:20],
            "has_item_id": self.item_id is not None,
            "sha256": sha256 if sha256 is not None else self.sha256(),
        }

    def __repr__(self) -> str:
        groups = ", ".join(f"{g}:{x.shape[1]}" for g, x in self.features.items())
        return f"RankingDataset({self.name!r}, rows={self.n_rows}, queries={self.n_queries}, features=[{groups}])"


@dataclass(frozen=True)
class Split:
    """Train / test (and optional synthetic training set) handed to the audits."""

    train: RankingDataset
    test: RankingDataset
    synthetic: RankingDataset | None = None
    name: str = "split"

    def __post_init__(self) -> None:
        a, b = self.train.features, self.test.features
        if set(a) != set(b):
            raise DataError(f"train has feature groups {sorted(a)} but test has {sorted(b)}.",
                            path=self.test.name, field="features",
                            fix="load both files with the same --feature-groups spec.")
        for g in a:
            if a[g].shape[1] != b[g].shape[1]:
                raise DataError(f"feature group {g!r} has {a[g].shape[1]} columns in train but {b[g].shape[1]} in test.",
                                path=self.test.name, field=f"features[{g}]",
                                fix="use the same feature width in both files (for svmlight, pass the total width).")


def load_dataset(path: str, fmt: str | None = None, *, feature_groups: str | None = None,
                 n_features: int | None = None, qrels: str | None = None) -> RankingDataset:
    """Load a dataset from ``path``; ``fmt`` is guessed from the suffix when omitted.

    See :mod:`auditor.loaders` for each format. Raises :class:`DataError` on bad input.
    """
    from auditor import loaders

    return loaders.load(path, fmt, feature_groups=feature_groups, n_features=n_features, qrels=qrels)
