"""A scikit-learn regressor that scores rows (pointwise ranking) as a rank-auditor plugin.

Check:  audit check-plugin examples/plugins/sklearn_pointwise.py:make_model
Audit:  audit run --model examples/plugins/sklearn_pointwise.py:make_model \
            --train tests/data/ltr/rank.train --test tests/data/ltr/rank.test --format letor

Parameters: ``max_iter`` (100), ``learning_rate`` (0.1), ``max_leaf_nodes`` (31).
"""
from __future__ import annotations

import numpy as np


class PointwiseRegressor:
    """``HistGradientBoostingRegressor`` on the label, ignoring query structure when fitting."""

    def __init__(self, seed: int = 0, max_iter: int = 100, learning_rate: float = 0.1, max_leaf_nodes: int = 31) -> None:
        self.seed = seed
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes

    def fit(self, train) -> "PointwiseRegressor":
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.model_ = HistGradientBoostingRegressor(max_iter=int(self.max_iter), learning_rate=float(self.learning_rate),
                                                    max_leaf_nodes=int(self.max_leaf_nodes),
                                                    random_state=int(self.seed), early_stopping=False)
        self.model_.fit(train.feature_matrix(), train.labels)
        return self

    def score(self, data) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise RuntimeError("PointwiseRegressor.score called before fit")
        return np.asarray(self.model_.predict(data.feature_matrix()), dtype=np.float64)  # (n_rows,)


def make_model(seed: int = 0, **params) -> PointwiseRegressor:
    """Factory: an unfitted pointwise regressor."""
    return PointwiseRegressor(seed=seed, **params)
