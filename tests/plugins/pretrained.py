"""Pre-trained models that cannot be retrained (auditor/protocol.py "Models that cannot be
retrained"): one whose ``fit`` raises NotImplementedError, one whose factory declares
``refittable = False``. Both score with fixed weights learned elsewhere: a ridge fit, once, on
another draw of ``make_synthetic_split(seed=1)`` (the generator the CLI tests use, so the
weights rank its test queries well), standing in for a model trained outside the auditor."""
from __future__ import annotations

import functools

import numpy as np

from rankers import LinearRanker, make_synthetic_split


@functools.lru_cache(maxsize=1)
def _weights() -> LinearRanker:
    return LinearRanker().fit(make_synthetic_split(n_train_queries=200, n_test_queries=2, n_items=6, seed=1).train)


class FrozenRanker:
    """Scores rows with fixed, previously learned weights; ``fit`` is not available."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.ranker_ = _weights()

    def fit(self, train):
        raise NotImplementedError("this ranker is served pre-trained; it cannot be retrained here")

    def score(self, data) -> np.ndarray:
        return self.ranker_.score(data)


class FlaggedRanker(FrozenRanker):
    def fit(self, train):  # must never be called: the factory says refittable = False
        raise RuntimeError("fit() was called on a model declared refittable = False")


def make_frozen(seed: int = 0) -> FrozenRanker:
    return FrozenRanker(seed)


def make_flagged(seed: int = 0) -> FlaggedRanker:
    return FlaggedRanker(seed)


make_flagged.refittable = False
