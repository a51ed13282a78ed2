"""Row identity (auditor.rowid): vectorised row hashes, confirmed matches, shared by two audits."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from auditor.data import RankingDataset
from auditor.rowid import matched_rows, query_identity, row_hashes
from auditor.synthetic import make_synthetic_split


def _data(X: np.ndarray, **groups: np.ndarray) -> RankingDataset:
    feats = {"a": X, **groups}
    return RankingDataset(qid=np.repeat(np.arange(len(X) // 4 + 1), 4)[:len(X)], labels=np.zeros(len(X)),
                          features=feats)


def test_equal_rounded_rows_hash_alike_and_any_change_hashes_apart():
    rng = np.random.default_rng(0)
    X = np.round(rng.standard_normal((3000, 7)), 6)
    X[10] = X[3]                      # a duplicate row
    X[11] = X[3] + 1e-12              # parse noise below the rounding
    X[12] = np.where(X[3] == 0, -0.0, X[3])
    X[13] = X[3]
    X[13, 6] += 1e-6                  # one value off by one unit of the sixth decimal
    X[14] = X[3][[1, 0, 2, 3, 4, 5, 6]]  # two values swapped between columns
    h = row_hashes(_data(X))
    assert h.dtype == np.uint64 and h.shape == (3000,)
    assert h[10] == h[3] == h[11] == h[12]
    assert h[13] != h[3] and h[14] != h[3]
    distinct = np.unique(np.round(X, 9) + 0.0, axis=0).shape[0]
    assert np.unique(h).size == distinct  # no collision among thousands of distinct rows


def test_hash_covers_every_group_in_name_order_and_is_cached_read_only():
    rng = np.random.default_rng(1)
    X, Z = rng.standard_normal((50, 3)), rng.standard_normal((50, 2))
    one = _data(np.hstack([X, Z]))
    two = RankingDataset(qid=one.qid, labels=one.labels, features={"b": Z, "a": X})  # sorted by name: a, b
    np.testing.assert_array_equal(row_hashes(two), row_hashes(one))
    h = row_hashes(one)
    assert row_hashes(one) is h and not h.flags.writeable
    assert row_hashes(one, decimals=3) is not h


def test_hashes_are_the_same_in_another_process():
    split = make_synthetic_split(n_train_queries=4, n_test_queries=3, seed=2)
    code = ("from rankers import make_synthetic_split; from auditor.rowid import row_hashes; "
            "print(row_hashes(make_synthetic_split(n_train_queries=4, n_test_queries=3, seed=2).train).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(out) == row_hashes(split.train).tolist()


def test_matched_rows_confirms_equal_hashes_value_by_value():
    rng = np.random.default_rng(2)
    tr = _data(rng.standard_normal((40, 5)))
    X = rng.standard_normal((8, 5))
    X[0] = tr.features["a"][7]
    X[1] = tr.features["a"][30]
    te = _data(X)
    m = matched_rows(tr, te)
    assert m.tolist() == [7, 30] + [-1] * 6
    # forged hashes: every row "collides" with training row 0; only true copies survive the check
    h_tr = np.zeros(40, dtype=np.uint64)
    h_tr[1:] = np.arange(1, 40, dtype=np.uint64)
    h_te = np.zeros(8, dtype=np.uint64)
    assert matched_rows(tr, te, train_hash=h_tr, test_hash=h_te).tolist() == [-1] * 8
    X[2] = tr.features["a"][0]
    te2 = _data(X)
    assert matched_rows(tr, te2, train_hash=h_tr, test_hash=h_te).tolist() == [-1, -1, 0] + [-1] * 5


def test_query_identity_ignores_hash_collisions():
    """A copied query is matched through confirmed rows; forged equal hashes alone match nothing."""
    from rankers import plant_copied_queries

    split = plant_copied_queries(make_synthetic_split(n_train_queries=30, n_test_queries=10, n_items=6, seed=3),
                                 0.3, seed=1)
    _, _, info = query_identity(split.train, split.test)
    assert (info["via"] == "content").sum() == 3
    zeros_tr = np.zeros(split.train.n_rows, dtype=np.uint64)
    zeros_te = np.zeros(split.test.n_rows, dtype=np.uint64)
    _, _, forged = query_identity(split.train, split.test, train_hash=zeros_tr, test_hash=zeros_te)
    assert (forged["via"] == "content").sum() <= 3  # at most the true copies, never every query
