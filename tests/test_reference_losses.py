"""CoTRR-Pro losses against naive float64 reference implementations (plain loops, no torch)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reference_model.losses import calibration_loss, combined_loss, focal_loss, info_nce, listmle


# ----------------------------------------------------------------------------- naive references
def naive_listmle(scores, labels, mask, tie_break=None, marginalize_bottom=True) -> float:
    per_query = []
    for b in range(scores.shape[0]):
        idx = [i for i in range(scores.shape[1]) if mask[b, i]]
        if not idx:
            continue
        tb = tie_break[b] if tie_break is not None else np.zeros(scores.shape[1])
        # lexicographic: label desc, tie-break desc, then row order (Python's sort is stable)
        order = sorted(idx, key=lambda i: (-labels[b, i], -tb[i]))
        lowest = min(labels[b, i] for i in idx)
        total = 0.0
        for pos, i in enumerate(order):
            if marginalize_bottom and labels[b, i] <= lowest:
                continue
            rest = [float(scores[b, j]) for j in order[pos:]]
            m = max(rest)
            total += m + math.log(sum(math.exp(r - m) for r in rest)) - float(scores[b, i])
        per_query.append(total)
    return float(np.mean(per_query)) if per_query else 0.0


def naive_focal(scores, labels, mask, gamma=2.0, alpha=0.25, thr=1.0) -> float:
    vals = []
    for s, lab, m in zip(scores.ravel(), labels.ravel(), mask.ravel()):
        if not m:
            continue
        p = 1.0 / (1.0 + math.exp(-float(s)))
        y = 1.0 if lab >= thr else 0.0
        pt = p if y else 1.0 - p
        a = alpha if y else 1.0 - alpha
        vals.append(-a * (1.0 - pt) ** gamma * math.log(pt))
    return float(np.mean(vals)) if vals else 0.0


def naive_calibration(scores, labels, mask, max_label=3.0) -> float:
    vals = []
    for s, lab, m in zip(scores.ravel(), labels.ravel(), mask.ravel()):
        if m:
            t = min(max(float(lab) / max_label, 0.0), 1.0)
            vals.append((1.0 / (1.0 + math.exp(-float(s))) - t) ** 2)
    return float(np.mean(vals)) if vals else 0.0


def naive_info_nce(a, c, pos, tau, valid) -> float:
    vals = []
    for i in range(a.shape[0]):
        ai = a[i] / np.linalg.norm(a[i])
        logits = [float(ai @ (c[j] / np.linalg.norm(c[j]))) / tau for j in range(c.shape[0])]
        den = [logits[j] for j in range(c.shape[0]) if valid[j]]
        num = [logits[j] for j in range(c.shape[0]) if valid[j] and pos[i, j]]
        if not num:
            continue
        lse = lambda xs: max(xs) + math.log(sum(math.exp(x - max(xs)) for x in xs))  # noqa: E731
        vals.append(lse(den) - lse(num))
    return float(np.mean(vals)) if vals else 0.0


# ----------------------------------------------------------------------------- fixtures
def _batch(seed: int, B: int = 5, C: int = 7, scale: float = 2.0):
    rng = np.random.default_rng(seed)
    scores = rng.normal(scale=scale, size=(B, C))
    labels = rng.integers(0, 4, size=(B, C)).astype(np.float64)
    sizes = rng.integers(1, C + 1, size=B)
    sizes[0] = C  # one full query, the others padded
    mask = np.arange(C)[None, :] < sizes[:, None]
    tie = rng.random((B, C))
    return scores, labels, mask, tie


def _t(x, dtype=torch.float64):
    return torch.tensor(x, dtype=dtype)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("marg", [True, False])
def test_listmle_matches_naive(seed: int, marg: bool) -> None:
    s, y, m, tie = _batch(seed)
    got = listmle(_t(s), _t(y), torch.tensor(m), _t(tie), marginalize_bottom=marg)
    assert float(got) == pytest.approx(naive_listmle(s, y, m, tie, marg), rel=1e-5, abs=1e-5)
    # without tie-break keys: ties keep row order
    got = listmle(_t(s), _t(y), torch.tensor(m), marginalize_bottom=marg)
    assert float(got) == pytest.approx(naive_listmle(s, y, m, None, marg), rel=1e-5, abs=1e-5)


def test_listmle_known_value() -> None:
    # two items, labels (1, 0), scores (a, b): loss = log(e^a + e^b) - a (+ 0 for the last item)
    a, b = 0.3, -1.2
    got = listmle(_t([[a, b]]), _t([[1.0, 0.0]]), torch.tensor([[True, True]]), marginalize_bottom=False)
    assert float(got) == pytest.approx(math.log(math.exp(a) + math.exp(b)) - a, rel=1e-9)
    # marginalising the bottom group changes nothing here (the last term is 0 anyway)
    got2 = listmle(_t([[a, b]]), _t([[1.0, 0.0]]), torch.tensor([[True, True]]))
    assert float(got2) == pytest.approx(float(got), rel=1e-9)


def test_listmle_marginalize_bottom_removes_tie_noise() -> None:
    # a query with one relevant item and many tied zeros: with marginalisation the loss does
    # not depend on the (random) tie order of the zeros
    rng = np.random.default_rng(0)
    s = _t(rng.normal(size=(1, 10)))
    y = _t([[2.0] + [0.0] * 9])
    m = torch.ones(1, 10, dtype=torch.bool)
    vals = {round(float(listmle(s, y, m, _t(rng.random((1, 10))))), 9) for _ in range(5)}
    assert len(vals) == 1
    vals_nm = {round(float(listmle(s, y, m, _t(rng.random((1, 10))), marginalize_bottom=False)), 9) for _ in range(5)}
    assert len(vals_nm) > 1


def test_listmle_stable_and_masked_gradients() -> None:
    s, y, m, tie = _batch(3, scale=1.0)
    s[1:] *= 1e3  # huge scores: log-sum-exp must stay finite
    st = _t(s).requires_grad_(True)
    loss = listmle(st, _t(y), torch.tensor(m), _t(tie))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(st.grad).all()
    assert torch.all(st.grad[~torch.tensor(m)] == 0), "padding must get no gradient"
    # padded values never change the loss
    s2 = s.copy()
    s2[~m] = 1e6
    assert float(listmle(_t(s2), _t(y), torch.tensor(m), _t(tie))) == pytest.approx(float(loss.detach()), rel=1e-12)


def test_listmle_perfect_order_beats_reverse() -> None:
    y = _t([[3.0, 2.0, 1.0, 0.0]])
    m = torch.ones(1, 4, dtype=torch.bool)
    good = listmle(_t([[3.0, 2.0, 1.0, 0.0]]) * 5, y, m)
    bad = listmle(_t([[0.0, 1.0, 2.0, 3.0]]) * 5, y, m)
    assert float(good) < 0.1 < float(bad)


@pytest.mark.parametrize("seed", range(4))
def test_focal_and_calibration_match_naive(seed: int) -> None:
    s, y, m, _ = _batch(seed)
    got = focal_loss(_t(s), _t(y), torch.tensor(m), gamma=2.0, alpha=0.25)
    assert float(got) == pytest.approx(naive_focal(s, y, m), rel=1e-6, abs=1e-9)
    got = focal_loss(_t(s), _t(y), torch.tensor(m), gamma=0.0, alpha=-1.0)  # plain BCE
    assert float(got) == pytest.approx(naive_focal(s, y, m, gamma=0.0, alpha=0.5) * 2, rel=1e-6)
    got = calibration_loss(_t(s), _t(y), torch.tensor(m), max_label=3.0)
    assert float(got) == pytest.approx(naive_calibration(s, y, m), rel=1e-6, abs=1e-12)


def test_focal_and_calibration_extremes_are_finite() -> None:
    s = _t([[1e4, -1e4, 0.0]]).requires_grad_(True)
    y = _t([[0.0, 3.0, 1.0]])
    m = torch.ones(1, 3, dtype=torch.bool)
    tot = focal_loss(s, y, m) + calibration_loss(s, y, m)
    tot.backward()
    assert torch.isfinite(tot) and torch.isfinite(s.grad).all()
    with pytest.raises(ValueError):
        calibration_loss(s, y, m, max_label=0.0)


@pytest.mark.parametrize("seed", range(4))
def test_info_nce_matches_naive(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(5, 8))
    c = rng.normal(size=(7, 8))
    pos = rng.random((5, 7)) < 0.3
    pos[0] = False  # an anchor without positives is skipped
    valid = rng.random(7) < 0.85
    got = info_nce(_t(a), _t(c), torch.tensor(pos), temperature=0.2, valid=torch.tensor(valid))
    assert float(got) == pytest.approx(naive_info_nce(a, c, pos, 0.2, valid), rel=1e-5, abs=1e-6)
    # default positives: the diagonal (in-batch negatives)
    a2 = rng.normal(size=(6, 8))
    got = info_nce(_t(a2), _t(a2 + 0.01 * rng.normal(size=(6, 8))), temperature=0.1)
    ref = naive_info_nce(a2, a2 + 0, np.eye(6, dtype=bool), 0.1, np.ones(6, bool))
    assert float(got) == pytest.approx(ref, abs=0.05)  # nearly aligned pairs: small loss
    assert float(got) < 0.5


def test_info_nce_errors() -> None:
    with pytest.raises(ValueError):
        info_nce(torch.zeros(3, 4), torch.zeros(4, 4))  # no positives and A != M
    with pytest.raises(ValueError):
        info_nce(torch.ones(3, 4), torch.ones(3, 4), temperature=0.0)


@pytest.mark.parametrize("seed", range(3))
def test_combined_is_weighted_sum(seed: int) -> None:
    s, y, m, tie = _batch(seed)
    args = (_t(s), _t(y), torch.tensor(m))
    got = combined_loss(*args, w_listmle=1.0, w_focal=0.5, w_calibration=0.2, max_label=3.0, tie_break=_t(tie))
    ref = naive_listmle(s, y, m, tie) + 0.5 * naive_focal(s, y, m) + 0.2 * naive_calibration(s, y, m)
    assert float(got) == pytest.approx(ref, rel=1e-5)
    only = combined_loss(*args, w_listmle=0.0, w_focal=0.0, w_calibration=1.0)
    assert float(only) == pytest.approx(naive_calibration(s, y, m), rel=1e-6)


def test_losses_on_empty_mask_are_zero_not_nan() -> None:
    s = torch.zeros(2, 3, requires_grad=True)
    y = torch.zeros(2, 3)
    m = torch.zeros(2, 3, dtype=torch.bool)
    tot = combined_loss(s, y, m)
    tot.backward()
    assert float(tot.detach()) == 0.0 and torch.all(s.grad == 0)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        listmle(torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2, 3, dtype=torch.bool))
