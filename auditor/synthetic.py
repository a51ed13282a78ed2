"""A small synthetic learning-to-rank split: ``audit check-plugin``'s default data.

Graded labels (0-3) from a hidden linear relevance over named feature groups; rows of a query
share a query-level offset. Deterministic by ``seed``. Test support (cheap rankers, planted
defects) lives with the tests, in ``tests/rankers.py``.
"""
from __future__ import annotations

import numpy as np

from auditor.data import RankingDataset, Split

__all__ = ["make_synthetic_split"]


def _make_queries(rng: np.random.Generator, n_queries: int, n_items: int, w: np.ndarray,
                  groups: dict[str, int], noise: float, qid0: int, item0: int) -> RankingDataset:
    d = int(sum(groups.values()))
    n = n_queries * n_items
    X = rng.normal(size=(n, d))
    qoff = rng.normal(scale=0.5, size=(n_queries, d))  # query-level shift: rows of a query are alike
    X = X + np.repeat(qoff, n_items, axis=0)
    latent = (X - np.repeat(qoff, n_items, axis=0)) @ w + noise * rng.normal(size=n)
    # graded labels 0..3 from within-query quantiles of the latent relevance
    labels = np.zeros(n)
    for q in range(n_queries):
        s = slice(q * n_items, (q + 1) * n_items)
        r = latent[s].argsort().argsort() / max(n_items - 1, 1)
        labels[s] = np.digitize(r, [0.5, 0.75, 0.9])
    feats, c = {}, 0
    for g, k in groups.items():
        feats[g] = X[:, c:c + k]
        c += k
    qid = np.repeat(np.arange(qid0, qid0 + n_queries), n_items)
    item = np.arange(item0, item0 + n)
    return RankingDataset(qid=qid, labels=labels, features=feats, item_id=item)


def make_synthetic_split(n_train_queries: int = 200, n_test_queries: int = 60, n_items: int = 10,
                         groups: dict[str, int] | None = None, noise: float = 1.0, seed: int = 0,
                         signal_groups: list[str] | None = None) -> Split:
    """A clean split with learnable graded relevance (labels 0-3).

    Parameters
    ----------
    groups : dict, default ``{"a": 4, "b": 4, "noise": 4}``
        Feature groups and widths.
    signal_groups : list of str, optional
        Groups that carry signal (default: every group except ``"noise"``).
    noise : float, default 1.0
        Label noise relative to a unit-scale signal.
    """
    rng = np.random.default_rng(seed)
    groups = groups or {"a": 4, "b": 4, "noise": 4}
    signal_groups = signal_groups or [g for g in groups if g != "noise"]
    w = np.concatenate([rng.normal(size=k) * (1.0 if g in signal_groups else 0.0) for g, k in groups.items()])
    w = w / (np.linalg.norm(w) + 1e-12)
    train = _make_queries(rng, n_train_queries, n_items, w, groups, noise, 0, 0)
    test = _make_queries(rng, n_test_queries, n_items, w, groups, noise, 100_000, 10_000_000)
    return Split(train=_named(train, "synthetic-train"), test=_named(test, "synthetic-test"), name=f"synthetic(seed={seed})")


def _named(d: RankingDataset, name: str) -> RankingDataset:
    return d._replace(name=name)
