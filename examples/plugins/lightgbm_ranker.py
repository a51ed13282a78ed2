"""LightGBM LambdaMART as a rank-auditor plugin (a real third-party ranker).

Check:  audit check-plugin examples/plugins/lightgbm_ranker.py:make_model
Audit:  audit run --model examples/plugins/lightgbm_ranker.py:make_model \
            --train tests/data/ltr/rank.train --test tests/data/ltr/rank.test --format letor

Parameters (``--model-param key=value``): ``n_estimators`` (100), ``learning_rate`` (0.1),
``num_leaves`` (31), ``min_child_samples`` (20), ``n_jobs`` (1: the auditor parallelises trials).
"""
from __future__ import annotations

import numpy as np


class LightGBMRanker:
    """``lightgbm.LGBMRanker(objective="lambdarank")`` on all feature groups, one score per row."""

    def __init__(self, seed: int = 0, n_estimators: int = 100, learning_rate: float = 0.1, num_leaves: int = 31,
                 min_child_samples: int = 20, n_jobs: int = 1) -> None:
        self.seed = seed
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.n_jobs = n_jobs

    def fit(self, train) -> "LightGBMRanker":
        import lightgbm as lgb

        # LambdaMART needs integer relevance grades; graded labels 0..k are kept as they are
        y = np.clip(np.rint(train.labels), 0, None).astype(int)
        self.model_ = lgb.LGBMRanker(objective="lambdarank", n_estimators=int(self.n_estimators),
                                     learning_rate=float(self.learning_rate), num_leaves=int(self.num_leaves),
                                     min_child_samples=int(self.min_child_samples), random_state=int(self.seed),
                                     n_jobs=int(self.n_jobs), deterministic=True, force_row_wise=True, verbose=-1)
        self.model_.fit(train.feature_matrix(), y, group=train.query_sizes)
        return self

    def score(self, data) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise RuntimeError("LightGBMRanker.score called before fit")
        return np.asarray(self.model_.predict(data.feature_matrix()), dtype=np.float64)  # (n_rows,)


def make_model(seed: int = 0, **params) -> LightGBMRanker:
    """Factory: an unfitted LambdaMART ranker."""
    return LightGBMRanker(seed=seed, **params)
