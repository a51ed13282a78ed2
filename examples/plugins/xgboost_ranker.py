"""XGBoost's ``XGBRanker`` (LambdaMART, NDCG objective) as a rank-auditor plugin.

Check:  audit check-plugin examples/plugins/xgboost_ranker.py:make_model
Audit:  audit run --model examples/plugins/xgboost_ranker.py:make_model \
            --train tests/data/ltr/rank.train --test tests/data/ltr/rank.test --format letor

XGBoost wants the query of every row (``qid``) with the rows of one query together, which
is how a RankingDataset stores them: ``train.query_index`` (0..n_queries-1, non-decreasing)
is exactly that. Relevance grades must be non-negative integers for ``rank:ndcg``.

Parameters (``--model-param key=value``): ``n_estimators`` (100), ``learning_rate`` (0.1),
``max_depth`` (6), ``min_child_weight`` (1.0), ``subsample`` (1.0), ``n_jobs`` (1: the
auditor parallelises trials itself).
"""
from __future__ import annotations

import numpy as np


class XGBoostRanker:
    """``xgboost.XGBRanker(objective="rank:ndcg")`` on all feature groups, one score per row."""

    def __init__(self, seed: int = 0, n_estimators: int = 100, learning_rate: float = 0.1, max_depth: int = 6,
                 min_child_weight: float = 1.0, subsample: float = 1.0, n_jobs: int = 1) -> None:
        self.seed = int(seed)
        self.n_estimators, self.learning_rate = int(n_estimators), float(learning_rate)
        self.max_depth, self.min_child_weight = int(max_depth), float(min_child_weight)
        self.subsample, self.n_jobs = float(subsample), int(n_jobs)

    def fit(self, train) -> "XGBoostRanker":
        import xgboost as xgb

        y = np.clip(np.rint(train.labels), 0, None).astype(int)       # integer grades for rank:ndcg
        self.model_ = xgb.XGBRanker(objective="rank:ndcg", tree_method="hist", n_estimators=self.n_estimators,
                                    learning_rate=self.learning_rate, max_depth=self.max_depth,
                                    min_child_weight=self.min_child_weight, subsample=self.subsample,
                                    random_state=self.seed, n_jobs=self.n_jobs)
        self.model_.fit(train.feature_matrix(), y, qid=train.query_index)
        return self

    def score(self, data) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise RuntimeError("XGBoostRanker.score called before fit")
        # predict() scores each row from its features alone: no dependence on the other queries
        return np.asarray(self.model_.predict(data.feature_matrix()), dtype=np.float64)   # (n_rows,)


def make_model(seed: int = 0, **params) -> XGBoostRanker:
    """Factory: an unfitted XGBoost LambdaMART ranker."""
    return XGBoostRanker(seed=seed, **params)
