"""Clean models and data with a strong *label-free* ranking prior, for tests and benchmarks.

Nothing here is used by an audit at run time. A model trained on random labels can rank a
held-out set above random-ordering chance with no leak at all: its architecture and the
features rank by themselves. Two mechanisms, both present in real learning-to-rank data:

- features such as BM25 carry relevance, so ranking by a fixed direction (the plain sum of
  the features on the LETOR sample: nDCG@10 0.759 against 0.656 for a random order) beats
  chance without any training, and a randomly initialised network's output is a random
  function of that direction;
- shuffling labels *within* each query keeps every query's label multiset, so a pointwise
  model still learns which *queries* have many relevant candidates from query-level features;
  when the same features also order candidates inside a query, that between-query association
  ranks held-out candidates above chance.

This module holds the ordinary models and the simulated split that show it:

- :func:`make_mlp` -- a two-layer PyTorch MLP (MSE, Adam, a few epochs): the issue's model;
- :func:`make_fixed_direction` -- ranks by a fixed feature direction and ignores its labels
  (a rule, e.g. "sum of the features"), the limiting case of a label-free prior;
- :func:`make_prior_split` -- a simulated split in which a fixed direction (the feature sum)
  ranks well and query label distributions vary with query-level features (as in LETOR).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from auditor.data import RankingDataset, Split

__all__ = ["MLPRanker", "FixedDirectionRanker", "make_mlp", "make_fixed_direction", "make_prior_split"]


class MLPRanker:
    """Pointwise two-layer MLP (ReLU) trained with MSE and Adam on the raw features.

    Parameters
    ----------
    seed : int
        Seeds the initialisation and the mini-batch order (``torch.manual_seed``).
    hidden : int, default 64
    epochs : int, default 15
    lr : float, default 1e-3
    batch : int, default 128
    threads : int, default 1
        ``torch.set_num_threads`` during fit and score (benchmarks run several processes).
    """

    def __init__(self, seed: int = 0, hidden: int = 64, epochs: int = 15, lr: float = 1e-3, batch: int = 128,
                 threads: int = 1) -> None:
        self.seed = int(seed)
        self.hidden = int(hidden)
        self.epochs = int(epochs)
        self.lr = float(lr)
        self.batch = int(batch)
        self.threads = int(threads)

    def fit(self, train: RankingDataset) -> "MLPRanker":
        import torch

        torch.set_num_threads(self.threads)
        g = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        X = torch.tensor(np.array(train.feature_matrix(), dtype=np.float32))
        y = torch.tensor(np.array(train.labels, dtype=np.float32))
        self.net_ = torch.nn.Sequential(torch.nn.Linear(X.shape[1], self.hidden), torch.nn.ReLU(),
                                        torch.nn.Linear(self.hidden, 1))
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        losses = []
        for _ in range(self.epochs):
            perm = torch.randperm(X.shape[0], generator=g)
            tot = 0.0
            for i in range(0, X.shape[0], self.batch):
                idx = perm[i:i + self.batch]
                opt.zero_grad()
                loss = torch.mean((self.net_(X[idx]).squeeze(1) - y[idx]) ** 2)
                loss.backward()
                opt.step()
                tot += float(loss.detach()) * idx.numel()
            losses.append(tot / X.shape[0])
        self.history_ = {"train_loss": losses}
        return self

    def score(self, data: RankingDataset) -> np.ndarray:
        if not hasattr(self, "net_"):
            raise RuntimeError("MLPRanker.score called before fit")
        import torch

        torch.set_num_threads(self.threads)
        with torch.no_grad():
            X = torch.tensor(np.array(data.feature_matrix(), dtype=np.float32))
            return self.net_(X).squeeze(1).double().numpy()

    def fit_history(self) -> dict[str, list[float]]:
        return self.history_


class FixedDirectionRanker:
    """Scores ``X @ w`` for a fixed direction ``w`` (all ones: the feature sum); ignores its labels.

    ``seed`` only perturbs the direction when ``jitter > 0`` (``w = 1 + jitter * N(0, 1)``), so
    that different seeds give different, equally label-free rules.
    """

    def __init__(self, seed: int = 0, jitter: float = 0.0) -> None:
        self.seed = int(seed)
        self.jitter = float(jitter)

    def fit(self, train: RankingDataset) -> "FixedDirectionRanker":
        d = train.feature_matrix().shape[1]
        self.w_ = 1.0 + self.jitter * np.random.default_rng(self.seed).normal(size=d)
        return self

    def score(self, data: RankingDataset) -> np.ndarray:
        if not hasattr(self, "w_"):
            raise RuntimeError("FixedDirectionRanker.score called before fit")
        return data.feature_matrix() @ self.w_


def make_mlp(seed: int = 0, **params: Any) -> MLPRanker:
    """Factory for :class:`MLPRanker` (plugin contract)."""
    return MLPRanker(seed=seed, **params)


def make_fixed_direction(seed: int = 0, jitter: float = 0.0) -> FixedDirectionRanker:
    """Factory for :class:`FixedDirectionRanker` (plugin contract)."""
    return FixedDirectionRanker(seed=seed, jitter=jitter)


def _prior_queries(rng: np.random.Generator, n_queries: int, n_items: int, d: int, noise: float, qid0: int,
                   item0: int, query_sd: float) -> RankingDataset:
    sizes = rng.integers(max(2, n_items // 2), n_items * 3 // 2 + 1, size=n_queries)
    n = int(sizes.sum())
    # non-negative features (like LETOR's [0, 1] scores); a per-query level moves every column of
    # a query together, so queries differ in how many relevant candidates they hold
    level = np.repeat(rng.normal(scale=query_sd, size=n_queries), sizes)
    X = np.abs(rng.normal(size=(n, d)) + level[:, None])
    latent = X.sum(axis=1) / np.sqrt(d) + noise * rng.normal(size=n)
    qid = np.repeat(np.arange(qid0, qid0 + n_queries), sizes)
    return RankingDataset(qid=qid, labels=latent, features={"f": X}, item_id=np.arange(item0, item0 + n))


def make_prior_split(n_train_queries: int = 150, n_test_queries: int = 50, n_items: int = 12, d: int = 20,
                     noise: float = 0.5, query_sd: float = 0.5, seed: int = 0) -> Split:
    """A clean split where a fixed feature direction (the sum) ranks well; no leak of any kind.

    Features are ``|N(level_q, 1)|`` with a per-query level ``N(0, query_sd^2)``; relevance is
    ``sum(x) / sqrt(d) + noise * N(0, 1)``, cut into grades 0-4 at global quantiles, so both
    the within-query order and each query's share of relevant candidates follow the feature sum.
    Train and test are independent draws (disjoint query and item ids); query sizes vary
    around ``n_items``.
    """
    rng = np.random.default_rng(seed)
    tr = _prior_queries(rng, n_train_queries, n_items, d, noise, 0, 0, query_sd)
    te = _prior_queries(rng, n_test_queries, n_items, d, noise, 100_000, 10_000_000, query_sd)
    # graded labels 0..4 at the training set's latent quantiles, the same cut for both splits:
    # label distributions vary between queries, as in LETOR
    cuts = np.quantile(tr.labels, [0.35, 0.7, 0.88, 0.97])
    tr, te = (x.with_labels(np.digitize(x.labels, cuts).astype(np.float64)) for x in (tr, te))
    return Split(train=tr._replace(name="prior-train"), test=te._replace(name="prior-test"),
                 name=f"fixed-direction(seed={seed})")
