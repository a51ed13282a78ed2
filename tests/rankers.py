"""Cheap models and planted-defect data for tests, benchmarks and calibration runs (test support).

Not installed with the package. The models follow the plugin contract (:mod:`auditor.protocol`)
and are registered nowhere: with ``tests/`` on ``sys.path`` (the test suite's conftest and
``benchmarks/_planting.py`` put it there) name them as ``rankers:make_linear`` etc. The
synthetic split they are tested on is :func:`auditor.synthetic.make_synthetic_split`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from auditor.data import RankingDataset, Split
from auditor.synthetic import make_synthetic_split  # noqa: F401  (re-exported for the tests)

__all__ = ["LinearRanker", "MemorizingRanker", "RandomRanker", "make_linear", "make_memorizer",
           "make_random", "make_synthetic_split", "plant_copied_queries", "plant_label_proxy",
           "row_keys"]


def row_keys(data: RankingDataset) -> np.ndarray:
    """A hash per row of its rounded feature values (what a memoriser can look up)."""
    import hashlib

    # a stable digest (Python's hash() of bytes changes per process: PYTHONHASHSEED)
    X = np.ascontiguousarray(np.round(data.feature_matrix(), 6))
    return np.array([int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little", signed=True)
                     for r in X], dtype=np.int64)


class LinearRanker:
    """Pointwise ridge regression on standardised features (closed form, milliseconds).

    Parameters
    ----------
    seed : int
        Unused by the closed form; kept for the contract.
    alpha : float, default 1.0
        Ridge penalty.
    groups : list of str, optional
        Feature groups to use (all by default).
    """

    def __init__(self, seed: int = 0, alpha: float = 1.0, groups: list[str] | None = None) -> None:
        self.seed = seed
        self.alpha = alpha
        self.groups = groups

    def _X(self, data: RankingDataset) -> np.ndarray:
        return data.feature_matrix(self.groups)

    def fit(self, train: RankingDataset) -> "LinearRanker":
        X = self._X(train)
        self.mean_ = X.mean(0)
        self.scale_ = X.std(0) + 1e-9
        Z = (X - self.mean_) / self.scale_
        y = train.labels - train.labels.mean()
        d = Z.shape[1]
        self.coef_ = np.linalg.solve(Z.T @ Z + self.alpha * np.eye(d), Z.T @ y)
        self.history_ = {"train_loss": [float(np.mean((Z @ self.coef_ - y) ** 2))]}
        return self

    def score(self, data: RankingDataset) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise RuntimeError("LinearRanker.score called before fit")
        return ((self._X(data) - self.mean_) / self.scale_) @ self.coef_

    def fit_history(self) -> dict[str, list[float]]:
        return self.history_


class MemorizingRanker(LinearRanker):
    """Linear ranker that returns a training row's label when it sees the same feature row again.

    The model the V2.0 failure produced: it scores at chance on a clean split but "wins" on
    test rows that were also in training, even when training labels were shuffled.
    """

    def fit(self, train: RankingDataset) -> "MemorizingRanker":
        super().fit(train)
        keys = row_keys(train)
        self.memory_ = dict(zip(keys.tolist(), train.labels.tolist()))
        # a scale fixed at fit time keeps each query's scores independent of the batch
        self.bound_ = float(np.abs(super().score(train)).max()) + 1e-9
        return self

    def score(self, data: RankingDataset) -> np.ndarray:
        base = np.clip(super().score(data) / self.bound_, -1.0, 1.0)
        keys = row_keys(data)
        mem = np.array([self.memory_.get(k, np.nan) for k in keys.tolist()])
        return np.where(np.isfinite(mem), 10.0 + mem, base)


class RandomRanker:
    """Scores rows at random (seeded by the row's features, so scoring is deterministic)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, train: RankingDataset) -> "RandomRanker":
        self.fitted_ = True
        return self

    def score(self, data: RankingDataset) -> np.ndarray:
        if not getattr(self, "fitted_", False):
            raise RuntimeError("RandomRanker.score called before fit")
        keys = row_keys(data)
        return np.array([np.random.default_rng([self.seed, k & 0x7FFFFFFF]).random() for k in keys.tolist()])


def make_linear(seed: int = 0, alpha: float = 1.0, **kw: Any) -> LinearRanker:
    return LinearRanker(seed=seed, alpha=alpha, **kw)


def make_memorizer(seed: int = 0, alpha: float = 1.0) -> MemorizingRanker:
    return MemorizingRanker(seed=seed, alpha=alpha)


def make_random(seed: int = 0) -> RandomRanker:
    return RandomRanker(seed=seed)


def plant_copied_queries(split: Split, frac: float = 0.3, seed: int = 0, *, keep_qid: bool = False) -> Split:
    """Copy a fraction of test queries (rows, labels, item ids) into train.

    With ``keep_qid=False`` the copies get fresh query ids, so only row/item-level checks can
    find them (the subtle V2.0 pattern); with ``True`` the query ids overlap as well.
    """
    rng = np.random.default_rng(seed)
    test, train = split.test, split.train
    k = max(1, int(round(frac * test.n_queries)))
    pick = np.sort(rng.choice(test.n_queries, size=k, replace=False))
    copied = test.subset(pick)
    if not keep_qid:
        base = (train.qid.max() + 1) if train.qid.dtype.kind in "iu" else 0
        new_q = copied.query_index + base if train.qid.dtype.kind in "iu" else np.char.add("copy-", copied.qid.astype(str))
        copied = copied._replace(qid=new_q)
    def cat(a, b):
        return None if a is None or b is None else np.concatenate([a, b])

    merged = RankingDataset(
        qid=np.concatenate([train.qid, copied.qid.astype(train.qid.dtype)]),
        labels=np.concatenate([train.labels, copied.labels]),
        features={g: np.concatenate([train.features[g], copied.features[g]]) for g in train.features},
        item_id=cat(train.item_id, copied.item_id), query_text=cat(train.query_text, copied.query_text),
        timestamp=cat(train.timestamp, copied.timestamp), group_id=cat(train.group_id, copied.group_id),
        extra={k: np.concatenate([train.extra[k], copied.extra[k]]) for k in train.extra if k in copied.extra},
        meta=train.meta, name=train.name + f"+copied({k} test queries)")
    return Split(train=merged, test=test, synthetic=split.synthetic, name=split.name + "+copied")


def plant_label_proxy(split: Split, strength: float = 1.0, group: str = "proxy", seed: int = 0) -> Split:
    """Add a one-column group equal to ``label + noise/strength`` in train and test (a leak).

    ``strength`` large -> the feature almost reproduces the label ordering.
    """
    rng = np.random.default_rng(seed)

    def add(d: RankingDataset) -> RankingDataset:
        f = d.labels + rng.normal(scale=1.0 / max(strength, 1e-9), size=d.n_rows)
        return d.with_features({group: f[:, None]})

    return Split(train=add(split.train), test=add(split.test), synthetic=split.synthetic, name=split.name + "+proxy")
