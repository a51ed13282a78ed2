"""What part of a test set can show anything about a ranking at all.

A query whose best and worst orderings score the same carries no information about any model,
and a feature column that never varies inside a query cannot change any ranking when permuted
within it. Several audits exclude or diagnose these; they live here so that no audit imports
another.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from auditor.metrics import evaluate

__all__ = ["informative_queries", "constant_within_queries"]


def informative_queries(metric: str, labels: np.ndarray, offsets: np.ndarray, **kw: Any) -> np.ndarray:
    """Queries whose metric can change with the ordering, shape (n_queries,) bool.

    A query whose best and worst orderings score the same (one candidate, or all labels equal
    for the metric) carries no information about any model: metric - chance is 0 by
    construction. Such queries are excluded from the test (and counted).
    """
    labels = np.asarray(labels, dtype=np.float64)
    best = evaluate(metric, labels, labels, offsets, **kw)
    worst = evaluate(metric, labels, -labels, offsets, **kw)
    return np.isfinite(best) & (np.abs(best - worst) > 1e-12)


def constant_within_queries(X: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Columns of ``X`` whose value never varies inside any query, shape (n_columns,) bool.

    Permuting such a column within query is a no-op: it cannot change any ranking.
    """
    if X.shape[0] == 0 or X.shape[1] == 0:
        return np.ones(X.shape[1], dtype=bool)
    starts = offsets[:-1][np.diff(offsets) > 0]
    lo = np.minimum.reduceat(X, starts, axis=0)
    hi = np.maximum.reduceat(X, starts, axis=0)
    return np.all(hi - lo == 0, axis=0)
