"""Planted distribution shifts, for tests and benchmarks.

Nothing here is used by an audit at run time. The plants mirror the defects the
synthetic-shift, significance and stability audits must catch:

- :func:`naive_synthetic` -- the "biased synthetic training set": every feature drawn
  independently from a Gaussian with the real marginal mean and sd, labels drawn from the
  real label marginal, query sizes from the real query sizes.
- :func:`shift_features` -- a subtle covariate shift: ``+shift`` standard deviations on a
  few columns.
- :func:`make_noisy_linear` -- a ridge ranker plus seeded score noise: two of them with
  different ``salt`` are identical in expectation (a candidate with no real gain).
- :func:`make_unstable_linear` -- a ridge ranker whose coefficients are jittered by an
  amount seeded from its training data: its quality changes from one training subset to
  the next (what the stability audit must flag).
"""
from __future__ import annotations

import numpy as np

from auditor.data import RankingDataset, Split
from rankers import LinearRanker

__all__ = ["naive_synthetic", "shift_features", "with_synthetic",
           "NoisyLinearRanker", "UnstableLinearRanker", "make_noisy_linear", "make_unstable_linear"]


def naive_synthetic(real: RankingDataset, n_queries: int | None = None, seed: int = 0,
                    name: str = "naive-synthetic") -> RankingDataset:
    """Independent Gaussians per feature matching the real marginal mean and sd.

    Parameters
    ----------
    real : RankingDataset
        The data to imitate.
    n_queries : int, optional
        Queries to generate (default: as many as ``real``).
    seed : int

    Returns
    -------
    RankingDataset
        Same feature groups and widths; query sizes and labels resampled from ``real``.
    """
    rng = np.random.default_rng(seed)
    nq = real.n_queries if n_queries is None else int(n_queries)
    sizes = rng.choice(real.query_sizes, size=nq, replace=True)
    n = int(sizes.sum())
    feats = {}
    for g, x in real.features.items():
        feats[g] = rng.normal(size=(n, x.shape[1])) * x.std(0) + x.mean(0)
    labels = rng.choice(real.labels, size=n, replace=True)
    qid = np.repeat(np.arange(nq), sizes)
    return RankingDataset(qid=qid, labels=labels, features=feats, name=name)


def shift_features(data: RankingDataset, shift: float = 0.25, n_columns: int = 3, *,
                   columns: list[int] | None = None, seed: int = 0, name: str | None = None) -> RankingDataset:
    """Add ``shift`` standard deviations to a few columns of the concatenated feature matrix.

    Parameters
    ----------
    data : RankingDataset
    shift : float, default 0.25
        In units of each column's own sd (over ``data``).
    n_columns : int, default 3
        Columns chosen at random among the non-constant ones (ignored with ``columns``).
    columns : list of int, optional
        Column indices in :meth:`RankingDataset.feature_matrix` order.
    seed : int

    Returns
    -------
    RankingDataset
        Copy with the shifted columns; ``meta["shifted_columns"]`` names them.
    """
    rng = np.random.default_rng(seed)
    X = data.feature_matrix()
    sd = X.std(0)
    if columns is None:
        cand = np.flatnonzero(sd > 0)
        columns = sorted(rng.choice(cand, size=min(n_columns, cand.size), replace=False).tolist())
    X = X.copy()
    X[:, columns] += shift * sd[columns]
    feats, c = {}, 0
    for g, x in data.features.items():
        feats[g] = X[:, c:c + x.shape[1]]
        c += x.shape[1]
    names = data.feature_names
    out = data.with_features(feats, replace_all=True).with_meta(shifted_columns=[names[i] for i in columns])
    return out._replace(name=name or f"{data.name}+shift({shift:g}sd x{len(columns)})")


def with_synthetic(split: Split, synthetic: RankingDataset) -> Split:
    """The split with ``synthetic`` attached as its synthetic training set."""
    return Split(train=split.train, test=split.test, synthetic=synthetic, name=split.name + "+synthetic")


def _data_seed(data: RankingDataset) -> int:
    return int(data.sha256()[:12], 16)


class NoisyLinearRanker(LinearRanker):
    """Ridge ranker plus Gaussian score noise, seeded by ``salt`` and the scored data's hash.

    Parameters
    ----------
    seed : int
        Unused by the ridge fit; kept for the contract.
    noise : float, default 0.5
        Noise sd relative to the sd of the clean scores on the scored data.
    salt : int, default 0
        Two rankers with different ``salt`` add independent noise: identical in expectation.
    """

    def __init__(self, seed: int = 0, noise: float = 0.5, salt: int = 0, alpha: float = 1.0,
                 groups: list[str] | None = None) -> None:
        super().__init__(seed=seed, alpha=alpha, groups=groups)
        self.noise = noise
        self.salt = salt

    def score(self, data: RankingDataset) -> np.ndarray:
        s = super().score(data)
        rng = np.random.default_rng([int(self.salt), _data_seed(data)])
        return s + self.noise * (s.std() + 1e-12) * rng.normal(size=s.shape)


class UnstableLinearRanker(LinearRanker):
    """Ridge ranker whose fitted coefficients are perturbed by an amount seeded by the training data.

    ``coef <- u * coef + jitter * ||coef|| * N(0, I) / sqrt(d)`` with ``u ~ Uniform(-1, 1)``:
    refit on another subset of queries and the model's alignment with the truth changes from
    good to reversed, so its quality varies a lot from fold to fold.
    """

    def __init__(self, seed: int = 0, jitter: float = 0.5, alpha: float = 1.0,
                 groups: list[str] | None = None) -> None:
        super().__init__(seed=seed, alpha=alpha, groups=groups)
        self.jitter = jitter

    def fit(self, train: RankingDataset) -> "UnstableLinearRanker":
        super().fit(train)
        rng = np.random.default_rng([int(self.seed), _data_seed(train)])
        d = self.coef_.size
        norm = np.linalg.norm(self.coef_)
        self.coef_ = rng.uniform(-1, 1) * self.coef_ + self.jitter * norm * rng.normal(size=d) / np.sqrt(d)
        return self


def make_noisy_linear(seed: int = 0, noise: float = 0.5, salt: int = 0, **kw) -> NoisyLinearRanker:
    """Factory for :class:`NoisyLinearRanker` (``planting_shift:make_noisy_linear`` with ``tests/`` on the path)."""
    return NoisyLinearRanker(seed=seed, noise=noise, salt=salt, **kw)


def make_unstable_linear(seed: int = 0, jitter: float = 0.5, **kw) -> UnstableLinearRanker:
    """Factory for :class:`UnstableLinearRanker` (``planting_shift:make_unstable_linear``)."""
    return UnstableLinearRanker(seed=seed, jitter=jitter, **kw)
