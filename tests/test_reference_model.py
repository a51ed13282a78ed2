"""CoTRR-Pro network, training loop and plugin contract (CPU; GPU checks marked ``gpu``)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from auditor.data import RankingDataset
from auditor.errors import ConfigError, DataError
from auditor.metrics import evaluate, expected_random, mean_metric
from reference_model.config import PRESETS, ModelConfig, TrainConfig, preset_configs, resolve_preset
from reference_model.losses import combined_loss
from reference_model.model import CoTRRNet, FusionLayer, count_parameters
from reference_model.plugin import CoTRRPro, NotFittedError, default_data, make_model, make_v1_baseline
from reference_model.train import _DeviceData, _mask, pad_scores, Batchable

FAST = dict(max_epochs=2, patience=2)  # contract checks need a fitted model, not a good one
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="module")
def small_split():
    return default_data(seed=0, scenario="clean", n_train_queries=40, n_test_queries=12)


@pytest.fixture(scope="module")
def fitted(small_split):
    return make_model(seed=0, **FAST).fit(small_split.train)


def _ndcg(d, s) -> float:
    return mean_metric(evaluate("ndcg@10", d.labels, s, d.query_offsets, item_id=d.item_id))[0]


# ----------------------------------------------------------------------------- network
def test_full_preset_parameter_count() -> None:
    mcfg, _ = PRESETS["full"]
    net = CoTRRNet(mcfg)
    n = count_parameters(net)
    H, F, L = 256, 2048, 4
    layer = 4 * H * H + 4 * H + 2 * H * F + F + H + 4 * H  # qkv + proj + ffn + 2 LayerNorms
    proj = (512 * H + H) * 3 + (256 * H + H)  # image, caption, query, visual
    head = H + L * 8 * 3 + 1  # pooled tokens + per-layer candidate->query attention logits
    assert n == proj + L * layer + 2 * H + head == 5_720_929
    # as configured, inputs are first reduced to 64 principal components each
    k = mcfg.input_rank
    assert k == 64
    eff = CoTRRNet(replace(mcfg, image_dim=k, text_dim=k, visual_dim=k, query_dim=k))
    assert count_parameters(eff) == 4 * (k * H + H) + L * layer + 2 * H + head == 5_327_713
    # a fusion layer has exactly the parameters of a standard transformer encoder layer
    ref = nn.TransformerEncoderLayer(H, 8, F)
    assert count_parameters(FusionLayer(mcfg)) == count_parameters(ref)


def test_forward_shapes_variable_queries_and_pointwise() -> None:
    cfg = ModelConfig(image_dim=12, text_dim=10, visual_dim=6, query_dim=8, hidden=16, heads=4, layers=2, ffn=32,
                      dropout=0.0)
    torch.manual_seed(0)
    net = CoTRRNet(cfg).eval()
    with torch.no_grad():
        net.head.weight.normal_()  # the zero-initialised head would make every score equal
    sizes = [3, 1, 5]
    N, Q = sum(sizes), len(sizes)
    x = [torch.randn(N, 12), torch.randn(N, 10), torch.randn(N, 6)]
    q = torch.randn(Q, 8)
    qidx = torch.repeat_interleave(torch.arange(Q), torch.tensor(sizes))
    with torch.no_grad():
        s = net(*x, q, qidx)
        assert s.shape == (N,) and torch.isfinite(s).all()
        # a row's score depends on its own features and its query only
        x2 = [t.clone() for t in x]
        for t in x2:
            t[3:] = torch.randn_like(t[3:])
        s2 = net(*x2, q, qidx)
        assert torch.allclose(s2[:3], s[:3], atol=1e-6) and not torch.allclose(s2[3:], s[3:])
        # rows follow a permutation
        perm = torch.randperm(N)
        s3 = net(*[t[perm] for t in x], q, qidx[perm])
        assert torch.allclose(s3, s[perm], atol=1e-6)
        # the query matters
        s4 = net(*x, q + 1.0, qidx)
        assert not torch.allclose(s4, s)
    # the untrained network scores every candidate alike (zero-initialised head)
    with torch.no_grad():
        assert torch.all(CoTRRNet(cfg).eval()(*x, q, qidx) == 0)


def test_network_without_query_token() -> None:
    cfg = ModelConfig(image_dim=4, text_dim=4, visual_dim=4, query_dim=0, hidden=8, heads=2, layers=1, ffn=8)
    net = CoTRRNet(cfg)
    assert net(torch.randn(5, 4), torch.randn(5, 4), torch.randn(5, 4)).shape == (5,)


def test_large_batch_does_not_crash() -> None:
    # the nn.TransformerEncoder version died at 4,096 queries a batch; ours is one matmul per layer
    cfg = replace(PRESETS["quick"][0], image_dim=8, text_dim=8, visual_dim=8, query_dim=8)
    net = CoTRRNet(cfg).eval()
    Q, C = 4096, 20
    with torch.no_grad():
        s = net(torch.randn(Q * C, 8), torch.randn(Q * C, 8), torch.randn(Q * C, 8), torch.randn(Q, 8),
                torch.arange(Q).repeat_interleave(C))
    assert s.shape == (Q * C,)


def test_batch_padding_for_variable_query_sizes() -> None:
    sizes = np.array([2, 4, 1, 3])
    off = np.r_[0, np.cumsum(sizes)]
    n = int(off[-1])
    b = Batchable(image=np.zeros((n, 1), np.float32), text=np.zeros((n, 1), np.float32),
                  visual=np.zeros((n, 1), np.float32), query=np.zeros((4, 1), np.float32), offsets=off,
                  labels=np.arange(n, dtype=np.float32))
    d = _DeviceData(b, torch.device("cpu"))
    rows, bi, pi, C = d.batch_index(np.array([3, 1]))  # queries in batch order 3, 1
    assert C == 4
    assert rows.tolist() == [7, 8, 9, 2, 3, 4, 5]
    padded = pad_scores(d.labels[rows], bi, pi, 2, C, fill=-1.0)
    assert padded.tolist() == [[7, 8, 9, -1], [2, 3, 4, 5]]
    assert _mask(bi, pi, 2, C).tolist() == [[True, True, True, False], [True] * 4]
    # the combined loss over the padded batch is finite and ignores the padding
    s = torch.randn(rows.shape[0], requires_grad=True)
    loss = combined_loss(pad_scores(s, bi, pi, 2, C), padded.clamp_min(0) % 4, _mask(bi, pi, 2, C))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


# ----------------------------------------------------------------------------- configuration
def test_presets_and_overrides() -> None:
    assert resolve_preset("auto", "cpu") == "quick" and resolve_preset("auto", "cuda") == "full"
    m, t = preset_configs("quick", "cpu", hidden=32, lr="0.001", restore_best="true")
    assert m.hidden == 32 and t.lr == 0.001 and t.restore_best is True
    with pytest.raises(ConfigError, match="unknown parameter"):
        preset_configs("quick", "cpu", hiden=32)
    with pytest.raises(ConfigError):
        preset_configs("huge", "cpu")
    with pytest.raises(ConfigError):
        ModelConfig(hidden=30, heads=4)
    with pytest.raises(ConfigError):
        TrainConfig(amp="fp8")


def test_factory_validates_early() -> None:
    with pytest.raises(ConfigError):
        make_model(lr=-1.0)
    with pytest.raises(ConfigError):
        make_model(scenario="nope")
    with pytest.raises(ConfigError):
        make_model(bogus=1)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            make_model(device="cuda")
    # data-generation keys are accepted (they are for default_data) and not stored as model params
    m = make_model(seed=2, n_train_queries=10, hidden=32)
    assert isinstance(m, CoTRRPro) and m.params == {"hidden": 32} and not hasattr(m, "net_")


# ----------------------------------------------------------------------------- plugin contract
def test_score_before_fit_raises(small_split) -> None:
    with pytest.raises(NotFittedError):
        make_model().score(small_split.test)


def test_fit_returns_self_and_history(small_split) -> None:
    m = make_model(seed=0, **FAST)
    assert m.fit(small_split.train) is m
    h = m.fit_history()
    assert set(h) == {"train_loss", "val_loss"}
    assert len(h["train_loss"]) == len(h["val_loss"]) == m.history_["epochs"] >= 1
    assert all(np.isfinite(h["train_loss"]))


def test_score_contract(small_split, fitted) -> None:
    te = small_split.test
    s = fitted.score(te)
    assert s.shape == (te.n_rows,) and s.dtype == np.float64 and np.all(np.isfinite(s))
    # labels are never read: hidden or shuffled labels give identical scores
    assert np.array_equal(fitted.score(te.hide_labels()), s)
    assert np.array_equal(fitted.score(te.with_labels(te.labels[::-1].copy())), s)
    # a query's scores do not depend on the other queries in the call
    o = te.query_offsets
    sub = fitted.score(te.subset(np.array([5, 1])))
    ref = np.concatenate([s[o[5]:o[6]], s[o[1]:o[2]]])
    assert np.allclose(sub, ref, rtol=1e-6, atol=1e-6)
    # scores follow rows reordered within queries
    rng = np.random.default_rng(0)
    perm = np.concatenate([rng.permutation(np.arange(sl.start, sl.stop)) for sl in te.query_slices])
    assert np.allclose(fitted.score(te.take(perm)), s[perm], rtol=1e-6, atol=1e-6)
    # scoring in small batches gives the same result
    fitted_small = CoTRRPro.__new__(CoTRRPro)
    fitted_small.__dict__.update(fitted.__dict__)
    fitted_small.train_config_ = replace(fitted.train_config_, score_batch_rows=7)
    assert np.allclose(fitted_small.score(te), s, rtol=1e-6, atol=1e-6)


def test_same_seed_same_scores_other_seed_differs(small_split, fitted) -> None:
    s = fitted.score(small_split.test)
    again = make_model(seed=0, **FAST).fit(small_split.train).score(small_split.test)
    assert np.array_equal(again, s)
    other = make_model(seed=1, **FAST).fit(small_split.train).score(small_split.test)
    assert not np.allclose(other, s)
    # the global torch RNG is left as it was
    torch.manual_seed(123)
    a = torch.rand(3)
    torch.manual_seed(123)
    make_model(seed=5, **FAST).fit(small_split.train)
    assert torch.equal(torch.rand(3), a)


def test_save_load_roundtrip(tmp_path, small_split, fitted) -> None:
    p = tmp_path / "cotrr.pt"
    fitted.save(p)
    loaded = CoTRRPro.load(p)
    assert np.array_equal(loaded.score(small_split.test), fitted.score(small_split.test))
    assert loaded.fit_history() == fitted.fit_history()
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError):
        CoTRRPro.load(tmp_path / "bad.pt")
    with pytest.raises(NotFittedError):
        make_model().save(tmp_path / "x.pt")


def test_bad_data_is_a_clear_error(small_split, fitted) -> None:
    letor = RankingDataset(qid=np.repeat(np.arange(4), 5), labels=np.zeros(20), features={"all": np.ones((20, 7))})
    with pytest.raises(DataError, match="image, text and visual"):
        make_model(**FAST).fit(letor)
    tr = small_split.train
    narrow = tr.with_features({"visual": tr.features["visual"][:, :100]})
    with pytest.raises(DataError, match="fitted with 256"):
        fitted.score(narrow)
    with pytest.raises(DataError, match="hidden"):
        make_model(**FAST).fit(tr.hide_labels())


def test_optional_infonce_pretraining_runs(small_split) -> None:
    m = make_model(seed=0, max_epochs=1, pretrain_epochs=1).fit(small_split.train)
    assert len(m.history_["pretrain_loss"]) == 1 and np.isfinite(m.history_["pretrain_loss"][0])


def test_conformance_suite_passes() -> None:
    from auditor.conformance import check_ranking_model

    results = check_ranking_model("reference", params={"max_epochs": 2, "n_train_queries": 60,
                                                       "n_test_queries": 20})
    failed = [(r.name, r.message) for r in results if not r.passed]
    assert not failed, failed


def test_quick_fit_on_clean_beats_chance_and_v1() -> None:
    sp = default_data(seed=0, scenario="clean")
    te = sp.test
    m = make_model(seed=0, preset="quick").fit(sp.train)
    ours = _ndcg(te, m.score(te))
    v1 = _ndcg(te, make_v1_baseline().fit(sp.train).score(te))
    chance = mean_metric(expected_random("ndcg@10", te.labels, te.query_offsets))[0]
    assert ours > chance + 0.25
    assert ours > v1 + 0.04, (ours, v1)


# ----------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@gpu
def test_gpu_full_preset_bf16_fused_fit_and_score() -> None:
    sp = default_data(seed=0, scenario="clean", n_train_queries=120, n_test_queries=40)
    m = make_model(seed=0, preset="auto", device="cuda", max_epochs=2).fit(sp.train)
    assert m.model_config_.hidden == 256 and m.history_["amp"] is True
    s = m.score(sp.test)
    assert s.shape == (sp.test.n_rows,) and np.all(np.isfinite(s))


@pytest.mark.gpu
@gpu
def test_gpu_huge_batch_bf16_does_not_crash() -> None:
    cfg = PRESETS["full"][0]
    net = CoTRRNet(cfg).cuda().eval()
    Q, C = 8192, 20
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        s = net(torch.randn(Q * C, 512, device="cuda"), torch.randn(Q * C, 512, device="cuda"),
                torch.randn(Q * C, 256, device="cuda"), torch.randn(Q, 512, device="cuda"),
                torch.arange(Q, device="cuda").repeat_interleave(C))
    assert s.shape == (Q * C,) and torch.isfinite(s.float()).all()


@pytest.mark.gpu
@gpu
def test_gpu_compile_path() -> None:
    sp = default_data(seed=0, scenario="clean", n_train_queries=60, n_test_queries=20)
    m = make_model(seed=0, preset="full", device="cuda", max_epochs=1, compile=True).fit(sp.train)
    assert np.all(np.isfinite(m.score(sp.test)))
