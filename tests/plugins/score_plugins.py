"""Plugins for the shared score validation, the constant-score check and the input-mutation checks."""
from __future__ import annotations

import numpy as np

from rankers import LinearRanker


class Returns(LinearRanker):
    """A ridge ranker whose ``score`` returns its scores in the form ``kind`` names."""

    def __init__(self, seed: int = 0, kind: str = "float") -> None:
        super().__init__(seed=seed)
        self.kind = kind

    def score(self, data):
        s = super().score(data)
        if self.kind == "str":
            return s.astype(str)
        if self.kind == "bool":
            return s > np.median(s)
        if self.kind == "complex":
            return s + 1j
        if self.kind == "object":
            return np.array([None] + list(s[1:]), dtype=object)
        if self.kind == "column":
            return s[:, None]
        if self.kind == "inf":
            s = s.copy()
            s[3] = np.inf
            return s
        if self.kind == "none":
            return None
        if self.kind == "int":
            return np.argsort(np.argsort(s))  # integer ranks are real scores
        return s


def make_returns(seed=0, kind="float"):
    return Returns(seed=seed, kind=kind)


class Constant(LinearRanker):
    """The same score for every candidate of a query (``share`` of the queries), else the ridge score."""

    def __init__(self, seed: int = 0, share: float = 1.0) -> None:
        super().__init__(seed=seed)
        self.share = share

    def score(self, data):
        s = super().score(data)
        o = data.query_offsets
        q = data.query_index
        flat = (q % 10) < round(10 * self.share)  # by query position: deterministic, query-local
        per_query = np.add.reduceat(s, o[:-1]) / np.diff(o)  # a query-level number
        return np.where(flat, per_query[q], s)


def make_constant(seed=0, share=1.0):
    return Constant(seed=seed, share=share)


class Mutates(LinearRanker):
    """Writes into an input array it was given read-only (re-enabling ``writeable`` on the view)."""

    def __init__(self, seed: int = 0, where: str = "score", what: str = "features") -> None:
        super().__init__(seed=seed)
        self.where, self.what = where, what

    def _spoil(self, data):
        if self.what == "drop_group":  # edits the dict of groups instead of an array
            del data.features[next(iter(data.features))]
            return
        arrays = list(data.features.values()) if self.what == "features" else [getattr(data, self.what)]
        for a in arrays:
            a.flags.writeable = True
            a[...] = a[::-1].copy() if a.dtype.kind in "UO" else 0

    def fit(self, train):
        out = super().fit(train)
        if self.where == "fit":
            self._spoil(train)
        return out

    def score(self, data):
        s = super().score(data)
        if self.where == "score":
            self._spoil(data)
        return s


def make_mutates(seed=0, where="score", what="features"):
    return Mutates(seed=seed, where=where, what=what)
