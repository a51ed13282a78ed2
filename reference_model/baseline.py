"""The "V1.0" baseline: cross-modal cosine similarity with one fitted mixing weight.

``score = w * cos(query text, caption) + (1 - w) * cos(query text, image)``, where ``w`` is
the value on a grid of 11 (0, 0.1, ..., 1) with the best mean training nDCG@10 (ties: the
smaller ``w``). Closed form apart from that grid search: milliseconds, deterministic, and a
query's scores depend on its own rows only.

It reads the feature groups ``text`` (query embedding in the first ``query_dim`` columns,
caption in the rest) and ``image`` of the bundled data (see :mod:`reference_model.synthetic`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from auditor.data import RankingDataset
from auditor.errors import DataError
from auditor.metrics import evaluate, mean_metric
from reference_model.synthetic import QUERY_DIM, v1_cosines

__all__ = ["V1Baseline", "make_v1_baseline"]


class V1Baseline:
    """Cosine-similarity reranker (the V1.0 system the CoTRR-Pro candidate is compared with).

    Parameters
    ----------
    seed : int, default 0
        Unused (the fit is deterministic); kept for the plugin contract.
    query_dim : int, default 512
        Width of the query embedding at the start of the ``text`` group.
    grid : int, default 11
        Number of mixing weights tried in [0, 1].
    metric : str, default "ndcg@10"
        Training metric used to choose the weight.
    """

    def __init__(self, seed: int = 0, query_dim: int = QUERY_DIM, grid: int = 11, metric: str = "ndcg@10") -> None:
        self.seed = seed
        self.query_dim = query_dim
        self.grid = grid
        self.metric = metric

    def _cos(self, data: RankingDataset) -> tuple[np.ndarray, np.ndarray]:
        for g in ("text", "image"):
            if g not in data.features:
                raise DataError(f"the V1.0 baseline needs feature groups 'text' and 'image'; got {data.feature_groups}.",
                                path=data.name, field="features")
        text, image = data.features["text"], data.features["image"]
        if text.shape[1] != self.query_dim + image.shape[1]:
            raise DataError(f"'text' must hold the query embedding ({self.query_dim} columns) followed by a caption "
                            f"as wide as 'image' ({image.shape[1]}); it has {text.shape[1]} columns.",
                            path=data.name, field="features[text]")
        return v1_cosines(text, image, self.query_dim)

    def fit(self, train: RankingDataset) -> "V1Baseline":
        """Choose the mixing weight on ``train``; returns ``self``."""
        ct, ci = self._cos(train)
        best_w, best_v = 0.0, -np.inf
        for w in np.linspace(0.0, 1.0, max(int(self.grid), 2)):
            v = mean_metric(evaluate(self.metric, train.labels, w * ct + (1 - w) * ci, train.query_offsets,
                                     item_id=train.item_id))[0]
            if np.isfinite(v) and v > best_v + 1e-12:
                best_w, best_v = float(w), float(v)
        self.weight_ = best_w
        self.train_metric_ = best_v
        return self

    def score(self, data: RankingDataset) -> np.ndarray:
        """Scores, shape (n_rows,) float64; never reads labels."""
        if not hasattr(self, "weight_"):
            raise RuntimeError("V1Baseline.score called before fit")
        ct, ci = self._cos(data)
        return self.weight_ * ct + (1.0 - self.weight_) * ci

    def fit_history(self) -> dict[str, list[float]]:
        """No iterative training: an empty loss curve and the chosen weight's training metric."""
        return {"train_loss": [], "val_loss": []}

    def __repr__(self) -> str:
        w = getattr(self, "weight_", None)
        return f"V1Baseline(weight={w})"


def make_v1_baseline(seed: int = 0, query_dim: int = QUERY_DIM, grid: int = 11, **ignored: Any) -> V1Baseline:
    """Factory of the V1.0 baseline; ignores the reference model's params (scenario, preset, device ...)."""
    return V1Baseline(seed=seed, query_dim=int(query_dim), grid=int(grid))
