"""Plugins that each break one rule of the contract (auditor/protocol.py), for conformance tests."""
from __future__ import annotations

import numpy as np

from rankers import LinearRanker


class ReadsLabels(LinearRanker):
    def score(self, data):
        s = super().score(data)
        lab = np.nan_to_num(data.labels, nan=0.0)
        return s + 0.5 * lab


class QueryDependent(LinearRanker):
    """Normalises scores over the whole batch (so a query's scores depend on the others)."""

    def score(self, data):
        s = super().score(data)
        return (s - s.mean()) / (s.std() + 1e-9)


class PositionDependent(LinearRanker):
    def score(self, data):
        return super().score(data) + 0.01 * np.arange(data.n_rows)


class NonDeterministic(LinearRanker):
    def score(self, data):
        return super().score(data) + np.random.default_rng().normal(size=data.n_rows)


class FitReturnsNone(LinearRanker):
    def fit(self, train):
        super().fit(train)
        return None


class ScoresBeforeFit(LinearRanker):
    def score(self, data):
        if not hasattr(self, "coef_"):
            return np.zeros(data.n_rows)
        return super().score(data)


class WrongShape(LinearRanker):
    def score(self, data):
        return super().score(data)[:-1]


class ReturnsNaN(LinearRanker):
    def score(self, data):
        s = super().score(data).copy()
        s[0] = np.nan
        return s


class RaisesInFit(LinearRanker):
    def fit(self, train):
        raise RuntimeError("planted failure in fit")


def make_reads_labels(seed=0):
    return ReadsLabels(seed)


def make_query_dependent(seed=0):
    return QueryDependent(seed)


def make_position_dependent(seed=0):
    return PositionDependent(seed)


def make_nondeterministic(seed=0):
    return NonDeterministic(seed)


def make_fit_returns_none(seed=0):
    return FitReturnsNone(seed)


def make_scores_before_fit(seed=0):
    return ScoresBeforeFit(seed)


def make_wrong_shape(seed=0):
    return WrongShape(seed)


def make_nan(seed=0):
    return ReturnsNaN(seed)


def make_raises_in_fit(seed=0):
    return RaisesInFit(seed)


NOT_A_FACTORY = 42


def make_checks_params(seed=0, alpha=1.0):
    """A factory that validates its parameter (as scikit-learn-style plugins often do, with ValueError)."""
    if float(alpha) < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    return LinearRanker(seed)
