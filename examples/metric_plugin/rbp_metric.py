"""Rank-biased precision (Moffat & Zobel, TOIS 2008) as an ``auditor.metrics`` plugin.

    RBP@k = (1 - p) * sum_{r=1..k} rel_r * p**(r-1),   p = 0.8 (patience), rel_r in {0, 1}

Installed (``pip install ./examples/metric_plugin``), it is one more metric everywhere:
``audit eval -m rbp -m rbp@10``, ``audit run --metric rbp@10``, ``audit list``. The entry
point in pyproject.toml is the only registration; see docs/METRICS.md for the contract.

A query with no relevant item gets ``view.undefined`` (NaN, or 0 with ``--no-relevant zero``),
as every built-in metric does. RBP is linear in the per-rank relevance, so its tie-aware value
(the expected RBP over every order of tied items) is RBP of the expected relevance at each
rank, and its chance level is ``R/n`` at every rank.
"""
from __future__ import annotations

import numpy as np

from auditor.metric_registry import MetricFamily

PATIENCE = 0.8


def _weights(depth: int) -> np.ndarray:
    return (1.0 - PATIENCE) * PATIENCE ** np.arange(depth, dtype=np.float64)


def rbp(view, k):
    """Ranked queries (auditor.metrics.RankedView): ``view.rel`` is (queries, ranks) relevant-and-retrieved."""
    kk = view.cut(k)
    value = (view.rel[:, :kk] * _weights(kk)).sum(axis=1)
    return np.where(view.has_rel, value, view.undefined)


def rbp_tied(view, k):
    """Queries with tied scores (auditor.metrics.TiedView): a rank's expected relevance is r/m,
    the share of relevant items in its group of equal scores."""
    kk = view.cut(k)
    value = ((view.rel_in_group / view.m)[:, :kk] * _weights(kk)).sum(axis=1)
    return np.where(view.has_rel, value, view.undefined)


def rbp_chance(view, k):
    """Under a random order every rank holds a relevant item with probability R/n (auditor.metrics.ChanceView)."""
    cum = np.concatenate([[0.0], np.cumsum(_weights(int(view.n.max())))])
    value = view.R / view.n * cum[view.kk(k).astype(np.int64)]
    return np.where(view.R > 0, value, view.undefined)


RBP = MetricFamily("rbp", rbp, tie_kernel=rbp_tied, chance=rbp_chance, cutoff="optional",
                   description=f"rank-biased precision, patience {PATIENCE} (binary relevance)")
