"""Training losses of CoTRR-Pro: pure, masked, numerically stable functions.

All listwise inputs are padded per query: ``scores`` and ``labels`` of shape ``(B, C)``
(``B`` queries, up to ``C`` candidates) with a boolean ``mask`` (True = real candidate).
Padded entries never influence a value or a gradient, and no function produces NaN/inf for
finite inputs (masked positions are filled with finite values, log-sum-exp is used instead of
``log(sum(exp))``, and BCE-with-logits instead of ``log(sigmoid)``).

The seed's objective is :func:`combined_loss`: ListMLE + 0.5 focal + 0.2 calibration
(weights configurable). :func:`info_nce` serves the optional contrastive pre-training.

References: ListMLE -- Xia et al., "Listwise approach to learning to rank", ICML 2008.
Focal loss -- Lin et al., ICCV 2017. Brier score -- Brier, Monthly Weather Review 1950.
InfoNCE -- van den Oord et al., 2018 (multi-positive form: Khosla et al., NeurIPS 2020).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["listmle", "focal_loss", "calibration_loss", "info_nce", "combined_loss"]

# Finite stand-in for -inf at padded positions: exp() underflows to 0 in fp32/bf16 but
# arithmetic on it never gives NaN (unlike -inf - -inf).
_NEG = -1e4


def _f(x: torch.Tensor) -> torch.Tensor:
    """Half-precision (bf16 / fp16 autocast output) -> float32; float32 / float64 kept as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) or not x.is_floating_point() else x


def _check(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> None:
    if scores.shape != labels.shape or scores.shape != mask.shape or scores.dim() != 2:
        raise ValueError(f"scores, labels and mask must share a (B, C) shape; got "
                         f"{tuple(scores.shape)}, {tuple(labels.shape)}, {tuple(mask.shape)}")


def listmle(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
            tie_break: torch.Tensor | None = None, *, marginalize_bottom: bool = True) -> torch.Tensor:
    """ListMLE: negative log-likelihood of the label-sorted permutation under Plackett-Luce.

    For a query whose candidates sorted by label (descending) are ``pi(1..n)``::

        loss = sum_{i=1..n} [ logsumexp(s_pi(i), ..., s_pi(n)) - s_pi(i) ]

    With graded labels most candidates share the lowest grade, and the order among them is
    arbitrary. ``marginalize_bottom=True`` drops the terms of positions in the query's lowest
    grade: the product of the remaining Plackett-Luce factors is exactly the probability that
    the higher grades come first in the given order, *summed over every order of the bottom
    group* -- so the loss stops chasing a random order of the irrelevant candidates (a pure
    noise gradient that otherwise dominates on small data).

    Parameters
    ----------
    scores : Tensor, shape (B, C)
    labels : Tensor, shape (B, C)
    mask : BoolTensor, shape (B, C)
        True for real candidates.
    tie_break : Tensor, shape (B, C), optional
        Secondary sort key (descending) among equal labels -- pass fresh random numbers each
        step to average over the permutations consistent with the grades. Without it, ties
        keep their row order (stable sort).
    marginalize_bottom : bool, default True
        Skip the terms of the lowest-grade group of each query (see above). A query whose
        candidates all share one grade then contributes 0.

    Returns
    -------
    Tensor, shape ()
        Mean over queries with at least one real candidate of the per-query sum; 0 when there
        is none.
    """
    _check(scores, labels, mask)
    s = _f(scores)
    key = _f(labels).to(s.dtype).masked_fill(~mask, float("-inf"))  # padding sorts last
    if tie_break is not None:
        # two stable sorts = lexicographic (label desc, tie_break desc)
        o1 = torch.argsort(_f(tie_break), dim=1, descending=True, stable=True)
        o2 = torch.argsort(key.gather(1, o1), dim=1, descending=True, stable=True)
        order = o1.gather(1, o2)
    else:
        order = torch.argsort(key, dim=1, descending=True, stable=True)
    s_sorted = s.gather(1, order).masked_fill(~mask.gather(1, order), _NEG)  # (B, C)
    m_sorted = mask.gather(1, order)
    # log-sum-exp of each suffix: reverse, cumulative logsumexp, reverse back
    suffix = torch.logcumsumexp(s_sorted.flip(1), dim=1).flip(1)  # (B, C)
    keep = m_sorted
    if marginalize_bottom:
        lab_sorted = key.gather(1, order)
        lowest = lab_sorted.masked_fill(~m_sorted, float("inf")).amin(dim=1, keepdim=True)  # (B, 1)
        keep = keep & (lab_sorted > lowest)
    per_item = (suffix - s_sorted) * keep
    per_query = per_item.sum(dim=1)  # (B,)
    has = m_sorted.any(dim=1)
    if not bool(has.any()):
        return scores.sum() * 0.0
    return per_query[has].mean()


def focal_loss(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, *, gamma: float = 2.0,
               alpha: float = 0.25, rel_threshold: float = 1.0) -> torch.Tensor:
    """Binary focal loss on "relevant" (``label >= rel_threshold``) with ``sigmoid(score)``.

    ``FL = -alpha_t (1 - p_t)^gamma log(p_t)``, with ``alpha_t = alpha`` for relevant and
    ``1 - alpha`` for non-relevant candidates; ``log(p_t)`` is computed as ``-BCEWithLogits``.

    Parameters
    ----------
    scores, labels : Tensor, shape (B, C) (or any shape, matching ``mask``)
    mask : BoolTensor, same shape
    gamma : float, default 2.0
    alpha : float, default 0.25
        Weight of the positive class; ``alpha < 0`` disables class weighting.
    rel_threshold : float, default 1.0

    Returns
    -------
    Tensor, shape ()
        Mean over real candidates (0 when there is none).
    """
    s = _f(scores)
    y = (labels >= rel_threshold).to(s.dtype)
    ce = F.binary_cross_entropy_with_logits(s, y, reduction="none")  # = -log(p_t), stable
    p_t = torch.exp(-ce)
    w = (1.0 - p_t).clamp_min(0.0) ** gamma
    if alpha >= 0:
        w = w * (alpha * y + (1.0 - alpha) * (1.0 - y))
    m = mask.to(s.dtype)
    return (w * ce * m).sum() / m.sum().clamp_min(1.0)


def calibration_loss(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, *,
                     max_label: float = 3.0) -> torch.Tensor:
    """Calibration term: Brier score of ``sigmoid(score)`` against the graded target ``label / max_label``.

    A proper scoring rule: minimised when ``sigmoid(score)`` equals the expected normalised
    grade, which keeps scores interpretable across queries (ListMLE alone is shift-invariant
    per query).

    Parameters
    ----------
    scores, labels : Tensor, same shape as ``mask``
    mask : BoolTensor
    max_label : float, default 3.0
        Top grade; targets are clipped to [0, 1].

    Returns
    -------
    Tensor, shape ()
        Mean over real candidates (0 when there is none).
    """
    if not max_label > 0:
        raise ValueError(f"max_label must be > 0, got {max_label}")
    p = torch.sigmoid(_f(scores))
    t = (_f(labels).to(p.dtype) / float(max_label)).clamp(0.0, 1.0)
    m = mask.to(p.dtype)
    return (((p - t) ** 2) * m).sum() / m.sum().clamp_min(1.0)


def info_nce(anchors: torch.Tensor, candidates: torch.Tensor, positives: torch.Tensor | None = None, *,
             temperature: float = 0.1, valid: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE (multi-positive) between anchors and candidates, cosine similarity / temperature.

    For anchor ``i`` with positive set ``P(i)`` among the valid candidates ``V``::

        loss_i = -[ logsumexp_{j in P(i)} l_ij - logsumexp_{j in V} l_ij ],  l_ij = cos(a_i, c_j) / T

    Parameters
    ----------
    anchors : Tensor, shape (A, H)
    candidates : Tensor, shape (M, H)
    positives : BoolTensor, shape (A, M), optional
        Positive pairs; default the diagonal (``A == M``, in-batch negatives).
    temperature : float, default 0.1
    valid : BoolTensor, shape (M,), optional
        Candidates that exist (padding excluded from the denominator).

    Returns
    -------
    Tensor, shape ()
        Mean over anchors with at least one valid positive (0 when there is none).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    A, M = anchors.shape[0], candidates.shape[0]
    if positives is None:
        if A != M:
            raise ValueError("positives is required when anchors and candidates differ in number")
        positives = torch.eye(A, dtype=torch.bool, device=anchors.device)
    if positives.shape != (A, M):
        raise ValueError(f"positives must have shape ({A}, {M}), got {tuple(positives.shape)}")
    a = F.normalize(_f(anchors), dim=-1)
    c = F.normalize(_f(candidates).to(a.dtype), dim=-1)
    logits = a @ c.T / temperature  # (A, M)
    v = torch.ones(M, dtype=torch.bool, device=anchors.device) if valid is None else valid.bool()
    pos = positives & v[None, :]
    denom = torch.logsumexp(logits.masked_fill(~v[None, :], _NEG), dim=1)  # (A,)
    numer = torch.logsumexp(logits.masked_fill(~pos, _NEG), dim=1)  # (A,)
    has = pos.any(dim=1)
    if not bool(has.any()):
        return anchors.sum() * 0.0
    return (denom - numer)[has].mean()


def combined_loss(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, *,
                  w_listmle: float = 1.0, w_focal: float = 0.5, w_calibration: float = 0.2,
                  max_label: float = 3.0, rel_threshold: float = 1.0, focal_gamma: float = 2.0,
                  focal_alpha: float = 0.25, tie_break: torch.Tensor | None = None,
                  marginalize_bottom: bool = True) -> torch.Tensor:
    """The seed's objective: ``w_listmle * ListMLE + w_focal * focal + w_calibration * calibration``.

    Parameters
    ----------
    scores, labels : Tensor, shape (B, C)
    mask : BoolTensor, shape (B, C)
    w_listmle, w_focal, w_calibration : float, default 1.0, 0.5, 0.2
    max_label, rel_threshold, focal_gamma, focal_alpha : float
        See :func:`calibration_loss` and :func:`focal_loss`.
    tie_break : Tensor, shape (B, C), optional
        See :func:`listmle`.
    marginalize_bottom : bool, default True
        See :func:`listmle`.

    Returns
    -------
    Tensor, shape ()
    """
    total = _f(scores).sum() * 0.0
    if w_listmle:
        total = total + w_listmle * listmle(scores, labels, mask, tie_break, marginalize_bottom=marginalize_bottom)
    if w_focal:
        total = total + w_focal * focal_loss(scores, labels, mask, gamma=focal_gamma, alpha=focal_alpha,
                                             rel_threshold=rel_threshold)
    if w_calibration:
        total = total + w_calibration * calibration_loss(scores, labels, mask, max_label=max_label)
    return total
