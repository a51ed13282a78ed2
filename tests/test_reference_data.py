"""The bundled synthetic scenarios plant exactly what they claim (and clean plants nothing)."""
from __future__ import annotations

import numpy as np
import pytest

from auditor.data import Split
from auditor.errors import ConfigError
from auditor.metrics import evaluate, expected_random, mean_metric
from reference_model.baseline import make_v1_baseline
from reference_model.plugin import default_data, make_model
from reference_model.synthetic import SCENARIOS, generate, v1_cosines

SMALL = dict(n_train_queries=120, n_test_queries=60)


@pytest.fixture(scope="module")
def splits() -> dict[str, Split]:
    return {sc: generate(seed=0, scenario=sc, **SMALL) for sc in SCENARIOS}


def _row_hashes(d) -> set[bytes]:
    X = np.concatenate([d.features[g] for g in ("image", "text", "visual")], axis=1)
    return {r.tobytes() for r in np.ascontiguousarray(X)}


def _ndcg(d, s) -> float:
    return mean_metric(evaluate("ndcg@10", d.labels, s, d.query_offsets, item_id=d.item_id))[0]


def _within_query_corr(d) -> np.ndarray:
    """Per column: correlation with the label after centring both within each query, (n_cols,)."""
    X = d.feature_matrix()
    y = d.labels.astype(np.float64)
    qi = d.query_index
    sizes = d.query_sizes[:, None]
    Xc = X - (np.add.reduceat(X, d.query_offsets[:-1], axis=0) / sizes)[qi]
    yc = y - (np.add.reduceat(y, d.query_offsets[:-1]) / d.query_sizes)[qi]
    return (Xc * yc[:, None]).sum(0) / (np.sqrt((Xc ** 2).sum(0) * (yc ** 2).sum()) + 1e-12)


def test_layout_and_fields(splits) -> None:
    for sc, sp in splits.items():
        for d in (sp.train, sp.test):
            assert {g: x.shape[1] for g, x in d.features.items()} == {"image": 512, "text": 1024, "visual": 256}
            assert set(np.unique(d.labels)) <= {0.0, 1.0, 2.0, 3.0}
            assert set(np.unique(d.extra["compliance"])) <= {0.0, 1.0}
            assert d.item_id is not None and d.query_text is not None
            # the query half of `text` is constant within each query
            q = d.features["text"][:, :512]
            for sl in d.query_slices[:20]:
                assert np.all(q[sl] == q[sl][0])
            # every query has a relevant candidate and a mix of grades (graded within query)
            assert np.all(np.isfinite(expected_random("ndcg@10", d.labels, d.query_offsets)))
            assert d.meta["scenario"] == sc


def test_generation_is_deterministic_and_seeded() -> None:
    a = generate(seed=3, **SMALL)
    b = generate(seed=3, **SMALL)
    c = generate(seed=4, **SMALL)
    assert a.train.sha256() == b.train.sha256() and a.test.sha256() == b.test.sha256()
    assert a.train.sha256() != c.train.sha256()


def test_clean_has_no_overlap(splits) -> None:
    tr, te = splits["clean"].train, splits["clean"].test
    assert not set(tr.query_text) & set(te.query_text)
    assert not set(tr.item_id.tolist()) & set(te.item_id.tolist())
    assert not set(tr.qid.tolist()) & set(te.qid.tolist())
    assert not _row_hashes(tr) & _row_hashes(te)
    # item ids unique per (query, candidate) and carry no label information
    assert np.unique(tr.item_id).size == tr.n_rows
    rho = np.corrcoef(te.item_id.astype(float), te.labels)[0, 1]
    assert abs(rho) < 0.1


def test_clean_synthetic_set_is_faithful(splits) -> None:
    sp = splits["clean"]
    syn = sp.synthetic
    assert syn is not None and syn.n_queries == 100
    assert not set(syn.query_text) & (set(sp.train.query_text) | set(sp.test.query_text))
    # same label distribution (graded within query) and similar feature moments
    assert np.allclose(np.bincount(syn.labels.astype(int), minlength=4) / syn.n_rows,
                       np.bincount(sp.train.labels.astype(int), minlength=4) / sp.train.n_rows, atol=0.03)
    for g in ("image", "visual"):
        d = np.abs(syn.features[g].mean(0) - sp.train.features[g].mean(0)) / (sp.train.features[g].std(0) + 1e-9)
        assert np.median(d) < 0.15


def test_clean_has_no_label_proxy(splits) -> None:
    for sc in ("clean", "leaky"):
        te = splits[sc].test
        r = np.abs(_within_query_corr(te))
        top = int(np.argmax(r))
        if sc == "clean":
            assert r.max() < 0.5, "no single column may nearly order the candidates"
            # the strongest column ranks far from perfectly
            s = te.feature_matrix()[:, top] * np.sign(_within_query_corr(te)[top])
            assert _ndcg(te, s) < 0.8
        else:
            assert r.max() > 0.95 and te.feature_names[top] == splits[sc].train.meta["planted"]["label_proxy"]
            assert np.sort(r)[-2] < 0.5  # one proxy, nothing else near it


def test_leaky_plants_overlap_proxy_and_naive_synthetic(splits) -> None:
    sp = splits["leaky"]
    tr, te = sp.train, sp.test
    # (a) ~30% of test queries re-logged into train: same text, items and rows, new qids
    shared = set(tr.query_text) & set(te.query_text)
    assert len(shared) == round(0.3 * te.n_queries)
    assert not set(tr.qid.tolist()) & set(te.qid.tolist())
    te_rows, tr_rows = _row_hashes(te), _row_hashes(tr)
    assert len(te_rows & tr_rows) >= 0.25 * te.n_rows
    for text in list(shared)[:5]:
        a, b = tr.item_id[tr.query_text == text], te.item_id[te.query_text == text]
        assert set(a.tolist()) == set(b.tolist())
        assert np.array_equal(np.sort(tr.labels[tr.query_text == text]), np.sort(te.labels[te.query_text == text]))
    # (b) a single visual column proxies the label
    col = sp.train.meta["planted"]["label_proxy"]
    assert col.startswith("visual.")
    j = int(col.split(".")[1])
    assert _ndcg(te, te.features["visual"][:, j]) > 0.97
    assert np.corrcoef(te.features["visual"][:, j], te.labels)[0, 1] > 0.95
    # it is on the scale of its neighbours (not an obvious outlier column)
    sds = te.features["visual"].std(0)
    assert 0.5 < sds[j] / np.median(sds) < 2.0
    # (c) a naive synthetic set: 500 rows, independent columns, shifted labels
    syn = sp.synthetic
    assert syn is not None and syn.n_rows == 500
    real_c = np.corrcoef(tr.features["image"][:2000, :40].T)
    syn_c = np.corrcoef(syn.features["image"][:, :40].T)
    off = ~np.eye(40, dtype=bool)
    assert np.abs(syn_c[off]).mean() < 0.5 * np.abs(real_c[off]).mean()
    assert syn.labels.mean() > tr.labels.mean() + 0.5


def test_shifted_moves_only_the_named_visual_columns(splits) -> None:
    sp = splits["shifted"]
    desc = sp.test.meta["planted"]["covariate_shift"]
    cols = [int(c) for c in desc.split("[")[1].split("]")[0].split(",")]
    assert len(cols) == 16
    tr, te = sp.train.features["visual"], sp.test.features["visual"]
    delta = (te.mean(0) - tr.mean(0)) / tr.std(0)
    others = np.setdiff1d(np.arange(256), cols)
    assert np.all(delta[cols] > 0.3)
    assert np.abs(delta[others]).max() < 0.2


def test_no_gain_relevance_is_the_v1_signal(splits) -> None:
    te = splits["no_gain"].test
    ct, _ = v1_cosines(te.features["text"], te.features["image"])
    chance = mean_metric(expected_random("ndcg@10", te.labels, te.query_offsets))[0]
    v1_clean = _ndcg(splits["clean"].test, v1_cosines(splits["clean"].test.features["text"],
                                                         splits["clean"].test.features["image"])[0])
    assert _ndcg(te, ct) > 0.85 > v1_clean
    assert _ndcg(te, ct) > chance + 0.3


def test_default_data_hook_and_errors() -> None:
    assert make_model.default_data is default_data
    assert make_model.default_baseline == "reference_model.plugin:make_v1_baseline"
    sp = default_data(seed=1, scenario="leaky", preset="quick", lr=0.01, n_train_queries=30, n_test_queries=10)
    assert isinstance(sp, Split) and sp.train.meta["scenario"] == "leaky"
    with pytest.raises(ConfigError):
        generate(scenario="nope")
    with pytest.raises(ConfigError):
        generate(n_train_queries=2)


def test_v1_baseline_contract_and_fit(splits) -> None:
    sp = splits["clean"]
    b = make_v1_baseline(seed=0, scenario="clean", preset="quick", device="cpu")
    with pytest.raises(RuntimeError):
        b.score(sp.test)
    assert b.fit(sp.train) is b
    s = b.score(sp.test.hide_labels())
    assert s.shape == (sp.test.n_rows,) and s.dtype == np.float64 and np.all(np.isfinite(s))
    assert 0.0 <= b.weight_ <= 1.0
    chance = mean_metric(expected_random("ndcg@10", sp.test.labels, sp.test.query_offsets))[0]
    assert _ndcg(sp.test, s) > chance + 0.15
    # query independence and row-order equivariance (row-wise formula)
    sub = sp.test.subset(np.array([2]))
    o = sp.test.query_offsets
    assert np.array_equal(b.score(sub), s[o[2]:o[3]])
