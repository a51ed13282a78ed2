"""Exact blocked cosine search: agrees with brute force and scikit-learn, honours exclusions and
the memory budget, and the torch path (on CPU tensors here) gives the same answers."""
from __future__ import annotations

import numpy as np
import pytest

from auditor.neighbors import NeighborResult, cosine_neighbors, group_normalized, normalize_rows, pick_backend


def _brute(A, B):
    An = A / np.linalg.norm(A, axis=1, keepdims=True)
    Bn = B / np.linalg.norm(B, axis=1, keepdims=True)
    return An @ Bn.T


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    B = rng.standard_normal((1500, 24))
    A = rng.standard_normal((300, 24))
    return A, B


@pytest.mark.parametrize("backend,precision", [("numpy", "float32"), ("torch", "float32"), ("numpy", "bf16")])
@pytest.mark.parametrize("k", [1, 4])
def test_matches_brute_force(data, backend, precision, k):
    A, B = data
    S = _brute(A, B)
    # small blocks so several query and base blocks are merged
    r = cosine_neighbors(A, B, k=k, block_queries=70, block_base=200, backend=backend, precision=precision)
    ref = np.argsort(-S, axis=1, kind="stable")[:, :k]
    assert isinstance(r, NeighborResult)
    assert r.index.shape == r.similarity.shape == (300, k)
    np.testing.assert_array_equal(r.index, ref)
    np.testing.assert_allclose(r.similarity, np.take_along_axis(S, ref, axis=1), rtol=0, atol=1e-12)


def test_matches_sklearn_brute_cosine(data):
    from sklearn.neighbors import NearestNeighbors

    A, B = data
    dist, idx = NearestNeighbors(n_neighbors=3, algorithm="brute", metric="cosine").fit(B).kneighbors(A)
    r = cosine_neighbors(A, B, k=3)
    np.testing.assert_array_equal(r.index, idx)
    np.testing.assert_allclose(1 - r.similarity, dist, atol=1e-10)


@pytest.mark.parametrize("backend,precision", [("numpy", "float32"), ("torch", "float32"), ("numpy", "bf16")])
def test_exclusion_keys(data, backend, precision):
    A, B = data
    rng = np.random.default_rng(1)
    qg = rng.integers(0, 40, len(A))
    bg = rng.integers(0, 40, len(B))
    S = _brute(A, B)
    S[qg[:, None] == bg[None, :]] = -np.inf
    kw = dict(block_base=333, backend=backend, precision=precision)
    r = cosine_neighbors(A, B, k=2, exclude=[(qg, bg)], **kw)
    np.testing.assert_array_equal(r.index, np.argsort(-S, axis=1, kind="stable")[:, :2])
    assert not np.any(qg[:, None] == bg[r.index])
    # string keys work the same way
    r2 = cosine_neighbors(A, B, k=2, exclude=[(qg.astype(str), bg.astype(str))], **kw)
    np.testing.assert_array_equal(r2.index, r.index)


def test_self_search_nearest_other_group():
    """Queries = base, excluding the own group: the classic leave-one-query-out neighbour."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 8))
    g = np.repeat(np.arange(20), 10)
    r = cosine_neighbors(X, X, exclude=[(g, g)])
    S = _brute(X, X)
    S[g[:, None] == g[None, :]] = -np.inf
    np.testing.assert_array_equal(r.index[:, 0], S.argmax(1))
    assert np.all(g[r.index[:, 0]] != g)


@pytest.mark.parametrize("precision", ["float32", "bf16"])
def test_all_excluded_gives_nan_and_minus_one(precision):
    X = np.eye(3)
    r = cosine_neighbors(X, X, k=2, exclude=[(np.zeros(3), np.zeros(3))], precision=precision)
    assert np.all(np.isnan(r.similarity)) and np.all(r.index == -1)
    # k larger than the base: padded
    r = cosine_neighbors(X, X[:2], k=4, precision=precision)
    assert r.index.shape == (3, 4) and np.all(r.index[:, 2:] == -1) and np.all(np.isnan(r.similarity[:, 2:]))


def test_bf16_screening_is_exact_on_dense_near_tied_data():
    """Dense positive rows (LETOR-like: every cosine 0.9+) put hundreds of base rows inside the
    screening window: the full-scan fallback must still return the exact neighbours."""
    rng = np.random.default_rng(11)
    B = rng.random((4000, 64)) + 2.0
    A = rng.random((300, 64)) + 2.0
    S = _brute(A, B)
    assert np.median(S.max(1) - np.sort(S, axis=1)[:, -50]) < 2 * 0.0125  # many candidates per row
    for k in (1, 3):
        r = cosine_neighbors(A, B, k=k, precision="bf16", block_base=512)
        ref = np.argsort(-S, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(r.index, ref)
        np.testing.assert_allclose(r.similarity, np.take_along_axis(S, ref, axis=1), atol=1e-12)


def test_bf16_error_bound_holds():
    """The screening bound BF16_ERROR covers the observed bfloat16 product error with room."""
    torch = pytest.importorskip("torch")
    from auditor.neighbors import BF16_ERROR

    rng = np.random.default_rng(2)
    for d, shift in ((8, 0.0), (512, 0.0), (512, 1.0), (2048, 0.0)):
        A = normalize_rows(rng.standard_normal((200, d)) + shift)
        B = normalize_rows(rng.standard_normal((1000, d)) + shift)
        exact = A.astype(np.float64) @ B.astype(np.float64).T
        screened = (torch.from_numpy(A).bfloat16() @ torch.from_numpy(B).bfloat16().T).float().numpy()
        assert np.abs(screened - exact).max() < BF16_ERROR / 2


def test_auto_precision_follows_the_cpu(monkeypatch, data):
    import auditor.neighbors as nb

    A, B = data
    monkeypatch.setattr(nb, "_BF16_FLAGS", True)
    assert cosine_neighbors(A, B).backend == "numpy"  # too little work to pay for the screening
    monkeypatch.setattr(nb, "BF16_MIN_WORK", 0)
    assert cosine_neighbors(A, B).backend == "numpy+torch-bf16-screen"
    monkeypatch.setattr(nb, "_BF16_FLAGS", False)
    assert cosine_neighbors(A, B).backend == "numpy"
    with pytest.raises(ValueError, match="precision"):
        cosine_neighbors(A, B, precision="fp8")


def test_exact_duplicate_has_similarity_one_and_zero_rows_are_zero():
    rng = np.random.default_rng(0)
    B = rng.random((50, 300)) * 0.99 + 0.01
    A = np.vstack([B[17], np.zeros(300)])
    r = cosine_neighbors(A, B)
    assert r.index[0, 0] == 17
    assert abs(r.similarity[0, 0] - 1.0) < 1e-14  # float64 refinement of the float32 search
    assert r.similarity[1, 0] == 0.0


def test_streaming_path_equals_materialised(data):
    """A budget too small for the normalised base copy streams base blocks: same answer."""
    A, B = data
    big = cosine_neighbors(A, B, k=3, precision="float32")
    small = cosine_neighbors(A, B, k=3, memory_limit_mb=0.3, precision="float32")
    np.testing.assert_array_equal(small.index, big.index)
    np.testing.assert_allclose(small.similarity, big.similarity, atol=1e-12)
    assert small.peak_block_bytes <= 0.3 * 2**20


def test_memory_stays_within_budget():
    """tracemalloc sees numpy's allocations: the search adds about one base copy plus one block."""
    import tracemalloc

    rng = np.random.default_rng(0)
    B = rng.standard_normal((20000, 64)).astype(np.float32)
    A = rng.standard_normal((5000, 64)).astype(np.float32)
    tracemalloc.start()
    try:
        cosine_neighbors(A, B, memory_limit_mb=16, precision="float32")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, peak
    # a full similarity matrix would be 400 MB; the base copy is 5 MB
    assert peak < 20000 * 5000 * 4 / 20


def test_group_normalized_is_mean_of_group_cosines():
    rng = np.random.default_rng(5)
    f1 = {"img": rng.standard_normal((2, 16)), "txt": rng.standard_normal((2, 3))}
    Z = group_normalized(f1).astype(np.float64)
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    expect = 0.5 * (cos(f1["img"][0], f1["img"][1]) + cos(f1["txt"][0], f1["txt"][1]))
    assert abs(Z[0] @ Z[1] - expect) < 1e-6
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-6)
    assert normalize_rows(np.zeros((1, 4))).sum() == 0


def test_bad_input_is_a_clear_error(data):
    A, B = data
    with pytest.raises(ValueError, match="columns"):
        cosine_neighbors(A[:, :5], B)
    with pytest.raises(ValueError, match="k must be"):
        cosine_neighbors(A, B, k=0)
    with pytest.raises(ValueError, match="backend"):
        pick_backend("faiss")
    with pytest.raises(ValueError, match="CPU only"):
        pick_backend("numpy", "cuda")
    assert pick_backend("auto", "cpu") == ("numpy", "cpu")


@pytest.mark.gpu
def test_cuda_matches_cpu(data):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    A, B = data
    g = cosine_neighbors(A, B, k=3, device="cuda")
    c = cosine_neighbors(A, B, k=3)
    np.testing.assert_array_equal(g.index, c.index)
    assert g.backend.startswith("torch:cuda")


# --------------------------------------------------------------------------- candidate forest
def _planted(seed: int = 3, n_base: int = 3000, n_q: int = 600, d: int = 20, noise: float = 0.02):
    """Clustered base rows; the first half of the queries are noisy copies of known base rows."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, d)) * 3
    base = centres[rng.integers(0, 40, n_base)] + rng.standard_normal((n_base, d))
    src = rng.choice(n_base, size=n_q // 2, replace=False)
    copies = base[src] + noise * rng.standard_normal((src.size, d))
    others = centres[rng.integers(0, 40, n_q - src.size)] + rng.standard_normal((n_q - src.size, d))
    return base, np.vstack([copies, others]), src


def test_forest_finds_every_planted_copy_and_reports_exact_cosines():
    from auditor.neighbors import build_forest, forest_neighbors

    base, q, src = _planted()
    B, Q = normalize_rows(base), normalize_rows(q)
    ex = cosine_neighbors(Q, B, normalized=True)
    f = build_forest([B, Q], n_trees=6, leaf_size=128, seed=0)
    fo = forest_neighbors(f, [B, Q], B.shape[0] + np.arange(Q.shape[0]), np.arange(B.shape[0]))
    planted = np.arange(src.size)
    assert (ex.index[planted, 0] == src).all()  # the oracle: each copy's nearest base row is its source
    np.testing.assert_array_equal(fo.index[planted, 0], ex.index[planted, 0])
    # every reported similarity is the float64 cosine of the returned pair, never above the true nearest
    got = np.einsum("ij,ij->i", Q.astype(np.float64), B[fo.index[:, 0]].astype(np.float64))
    np.testing.assert_allclose(fo.similarity[:, 0], got, rtol=0, atol=1e-12)
    assert (fo.similarity[:, 0] <= ex.similarity[:, 0] + 1e-12).all()
    assert "forest" in fo.backend


def test_forest_with_one_leaf_is_the_exact_search_and_honours_exclusions():
    from auditor.neighbors import build_forest, forest_neighbors

    base, q, _ = _planted(n_base=500, n_q=100)
    B, Q = normalize_rows(base), normalize_rows(q)
    qk = np.arange(100) % 7
    bk = np.arange(500) % 7  # a query may not match a base row with the same key
    ex = cosine_neighbors(Q, B, normalized=True, exclude=[(qk, bk)])
    f = build_forest([B, Q], n_trees=1, leaf_size=10_000, seed=0)
    fo = forest_neighbors(f, [B, Q], 500 + np.arange(100), np.arange(500), exclude=[(qk, bk)])
    np.testing.assert_array_equal(fo.index, ex.index)
    np.testing.assert_allclose(fo.similarity, ex.similarity, rtol=0, atol=1e-12)
    assert (qk != bk[fo.index[:, 0]]).all()


def test_forest_leaves_partition_the_rows_within_the_size_bound():
    from auditor.neighbors import build_forest

    rng = np.random.default_rng(0)
    parts = [normalize_rows(rng.standard_normal((1234, 8))), normalize_rows(rng.standard_normal((321, 8)))]
    f = build_forest(parts, n_trees=3, leaf_size=100, seed=1)
    assert f.n_rows == 1555 and len(f.leaves) == 3
    for order, bounds in f.leaves:
        assert np.array_equal(np.sort(order), np.arange(1555))
        sizes = np.diff(np.r_[bounds, 1555])
        assert sizes.max() <= 100 and sizes.min() >= 40
    with pytest.raises(ValueError, match="n_trees"):
        build_forest(parts, n_trees=0)


def test_bf16_screen_falls_back_to_float32_on_rows_too_alike_to_screen():
    # uncentred non-negative features (MSLR-like counts and scores): every cosine lies in a narrow
    # band near 1, so the bfloat16 screen would admit nearly every pair; the rows it cannot screen
    # are searched with the float32 product instead, and the answer stays the exact one
    pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    base = 50.0 + rng.random((3000, 136))
    queries = 50.0 + rng.random((400, 136))
    screened = cosine_neighbors(queries, base, k=2, precision="bf16", block_queries=128, block_base=512)
    exact = cosine_neighbors(queries, base, k=2, precision="float32", block_queries=128, block_base=512)
    assert "by float32: too alike to screen" in screened.backend
    np.testing.assert_allclose(screened.similarity, exact.similarity, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(screened.index[:, 0], exact.index[:, 0])


@pytest.mark.parametrize("normalized", [True, False])
def test_forest_verification_in_blocks_gives_the_same_cosines(monkeypatch, normalized):
    # the float64 rescoring runs a block of rows at a time (memory); every block size must give
    # the very same similarities as one block over all rows
    import auditor.neighbors as nb

    base, q, _ = _planted(n_base=700, n_q=150)
    B, Q = (normalize_rows(base), normalize_rows(q)) if normalized else (base.astype(np.float32), q.astype(np.float32))
    f = nb.build_forest([B, Q], n_trees=3, leaf_size=64, seed=2)
    runs = []
    for rows in (10**9, 1, 7, 64):
        monkeypatch.setattr(nb, "_VERIFY_ROWS", rows)
        runs.append(nb.forest_neighbors(f, [B, Q], 700 + np.arange(150), np.arange(700), normalized=normalized))
    for r in runs[1:]:
        np.testing.assert_array_equal(r.index, runs[0].index)
        np.testing.assert_array_equal(r.similarity, runs[0].similarity)
    assert np.isfinite(runs[0].similarity).all()
