"""More planted defects for the isolation, random-label and feature-ablation known-answer tests.

Complements tests/rankers.py (copied queries, label proxies). Nothing here is used by an
audit at run time.
"""
from __future__ import annotations

import numpy as np

from auditor.data import RankingDataset, Split

__all__ = ["plant_near_duplicates", "with_columns", "concat_datasets"]


def concat_datasets(a: RankingDataset, b: RankingDataset, *, name: str | None = None) -> RankingDataset:
    """Rows of ``a`` then ``b`` (same feature groups); optional columns kept when both have them."""
    def both(x, y):
        return None if x is None or y is None else np.concatenate([np.asarray(x), np.asarray(y).astype(np.asarray(x).dtype)])

    return RankingDataset(
        qid=np.concatenate([a.qid, b.qid.astype(a.qid.dtype)]),
        labels=np.concatenate([a.labels, b.labels]),
        features={g: np.concatenate([a.features[g], b.features[g]]) for g in a.features},
        item_id=both(a.item_id, b.item_id), query_text=both(a.query_text, b.query_text),
        timestamp=both(a.timestamp, b.timestamp), group_id=both(a.group_id, b.group_id),
        name=name or f"{a.name}+{b.name}")


def plant_near_duplicates(split: Split, frac: float = 0.3, noise: float = 0.01, seed: int = 0) -> Split:
    """Copy a fraction of test queries into train with slightly perturbed features.

    The copies get fresh query ids, fresh item ids (when the data has item ids) and Gaussian
    noise of ``noise`` times each feature's standard deviation, so no hash, id or content
    check can match them: only a near-duplicate search can (the "re-encoded copy" case).

    Parameters
    ----------
    frac : float, default 0.3
        Share of test queries copied.
    noise : float, default 0.01
        Noise scale relative to each column's standard deviation in the test set.
    """
    rng = np.random.default_rng(seed)
    test, train = split.test, split.train
    k = max(1, int(round(frac * test.n_queries)))
    pick = np.sort(rng.choice(test.n_queries, size=k, replace=False))
    cp = test.subset(pick)
    feats = {}
    for g, x in cp.features.items():
        sd = np.asarray(test.features[g]).std(0) + 1e-12
        feats[g] = x + rng.normal(size=x.shape) * sd * noise
    if train.qid.dtype.kind in "iu":
        qid = cp.query_index + int(train.qid.max()) + 1 + 10_000_000
    else:
        qid = np.char.add("near-", cp.qid.astype(str))
    item = None
    if cp.item_id is not None:
        item = (np.arange(cp.n_rows) + 900_000_000) if cp.item_id.dtype.kind in "iu" else np.char.add("near-", cp.item_id.astype(str))
    copies = RankingDataset(qid=qid, labels=cp.labels, features=feats, item_id=item,
                            query_text=None if cp.query_text is None else np.char.add("near copy ", cp.query_text.astype(str)),
                            timestamp=cp.timestamp, group_id=None if cp.group_id is None else np.char.add("near-", cp.group_id.astype(str)),
                            name="near-copies")
    merged = concat_datasets(train, copies, name=train.name + f"+near-copies({k} test queries)")
    return Split(train=merged, test=test, synthetic=split.synthetic, name=split.name + "+near-copies")


def with_columns(data: RankingDataset, **cols: np.ndarray | None) -> RankingDataset:
    """Copy of ``data`` with ``query_text``, ``group_id``, ``timestamp`` or ``item_id`` replaced."""
    return data._replace(**cols)
