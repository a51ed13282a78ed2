"""RankingDataset / Split: validation at construction, read-only arrays, derive-don't-mutate helpers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auditor.data import RankingDataset, Split, load_dataset
from auditor.errors import DataError

LTR = Path(__file__).resolve().parent / "data" / "ltr"


def _ds(**kw) -> RankingDataset:
    base = dict(qid=np.array([1, 1, 1, 2, 2, 3]), labels=np.array([2.0, 0, 1, 1, 0, 3]),
                features={"a": np.arange(12.0).reshape(6, 2), "b": np.ones((6, 1))},
                item_id=np.array(["x", "y", "z", "x", "w", "v"]))
    base.update(kw)
    return RankingDataset(**base)


def test_shape_and_offsets():
    d = _ds()
    assert (d.n_rows, d.n_queries, d.n_features) == (6, 3, 3)
    assert d.query_offsets.tolist() == [0, 3, 5, 6]
    assert d.query_ids.tolist() == [1, 2, 3] and d.query_sizes.tolist() == [3, 2, 1]
    assert d.query_index.tolist() == [0, 0, 0, 1, 1, 2]
    assert d.query_slices == [slice(0, 3), slice(3, 5), slice(5, 6)]
    assert d.feature_names == ["a.0", "a.1", "b.0"]
    np.testing.assert_array_equal(d.feature_matrix(["b", "a"])[:, 0], np.ones(6))


@pytest.mark.parametrize("kw, match, field", [
    ({"qid": np.array([1, 2, 1, 3, 3, 3])}, "query 1 are not contiguous", "qid"),
    ({"labels": np.array([1.0, np.nan, 0, 0, 0, 0])}, "label is nan at row 1", "labels"),
    ({"labels": np.ones(5)}, r"labels has shape \(5,\)", "labels"),
    ({"labels": np.array(["a"] * 6)}, "labels must be numbers", "labels"),
    ({"features": {}}, "non-empty dict", "features"),
    ({"features": {"a": np.ones((5, 2))}}, r"shape \(5, 2\)", "features[a]"),
    ({"features": {"a": np.array([[np.inf]] * 6)}}, "must be finite", "features[a]"),
    ({"features": {"a": np.array([["s"]] * 6)}}, "not numeric", "features[a]"),
    ({"item_id": np.arange(5)}, r"item_id has shape", "item_id"),
    ({"extra": {"c": np.ones(2)}}, "extra column 'c'", "c"),
    ({"qid": np.array([1.5] * 6)}, "integers or strings", "qid"),
    ({"qid": np.array([]), "labels": np.array([]), "features": {"a": np.ones((0, 1))}}, "no rows", None),
])
def test_validation_errors(kw, match, field):
    with pytest.raises(DataError, match=match) as ei:
        _ds(**kw)
    assert ei.value.field == field


def test_arrays_are_read_only_views_and_the_callers_stay_writeable():
    labels = np.array([2.0, 0, 1, 1, 0, 3])
    d = _ds(labels=labels)
    with pytest.raises(ValueError):
        d.labels[0] = 5
    with pytest.raises(ValueError):
        d.features["a"][0, 0] = 5
    labels[0] = 9.0  # the caller's array is untouched by construction
    assert labels.flags.writeable


def test_derive_helpers_never_mutate():
    d = _ds()
    h = d.sha256()
    d2 = d.with_labels(np.zeros(6))
    assert d2.labels.sum() == 0 and d.labels.sum() == 7 and d.sha256() == h != d2.sha256()
    hid = d.hide_labels()
    assert hid.labels_hidden and np.isnan(hid.labels).all() and not d.labels_hidden
    assert not hid.with_labels(np.ones(6)).labels_hidden
    d3 = d.with_features({"b": np.zeros((6, 1))})
    assert set(d3.features) == {"a", "b"} and d3.features["b"].sum() == 0 and d.features["b"].sum() == 6
    d4 = d.with_features({"c": np.zeros((6, 4))}, replace_all=True)
    assert list(d4.features) == ["c"]
    assert d.with_meta(x=1).meta["x"] == 1 and "x" not in d.meta


def test_subset_and_take():
    d = _ds()
    s = d.subset(np.array([2, 0]))
    assert s.qid.tolist() == [3, 1, 1, 1] and s.item_id.tolist() == ["v", "x", "y", "z"]
    m = d.subset(np.array([False, True, True]))
    assert m.qid.tolist() == [2, 2, 3] and m.labels.tolist() == [1.0, 0.0, 3.0]
    assert d.subset(np.array([-1])).qid.tolist() == [3]
    with pytest.raises(DataError, match="empty"):
        d.subset(np.array([], dtype=int))
    with pytest.raises(IndexError):
        d.subset(np.array([3]))
    with pytest.raises(DataError, match="not contiguous"):
        d.take(np.array([0, 3, 1]))


def test_summary_and_identity():
    d = _ds(extra={"compliance": np.array([1, 0, 1, 1, 0, 1])})
    s = d.summary()
    assert s["n_rows"] == 6 and s["feature_groups"] == {"a": 2, "b": 1} and s["label_values"] == [0.0, 1.0, 2.0, 3.0]
    assert s["has_item_id"] and len(s["sha256"]) == 64
    assert _ds().sha256() == _ds().sha256()
    assert "rows=6" in repr(d)


def test_split_requires_matching_feature_groups():
    d = _ds()
    Split(train=d, test=d)
    with pytest.raises(DataError, match="feature groups"):
        Split(train=d, test=d.with_features({"a": d.features["a"]}, replace_all=True))
    with pytest.raises(DataError, match="2 columns in train but 3 in test"):
        Split(train=d, test=d.with_features({"a": np.ones((6, 3))}))


def test_load_dataset_dispatches_to_loaders():
    d = load_dataset(str(LTR / "rank.test"), n_features=300)
    assert d.n_queries == 50 and d.meta["format"] == "letor"
    train = load_dataset(str(LTR / "rank.train"), "letor", n_features=300)
    Split(train=train, test=d)  # same width: compatible
