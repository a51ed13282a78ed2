"""Metric plugins for tests/test_metric_plugins.py: one that keeps the contract in a way the
audits refuse, and one per rule a plugin can break (each is an ``auditor.metrics`` entry point there)."""
from __future__ import annotations

import numpy as np

from auditor.metric_registry import MetricFamily


def _hits(view, k):
    return np.count_nonzero(view.rel[:, :view.cut(k)], axis=1).astype(np.float64)


def _hits_tied(view, k):
    return (view.rel_in_group / view.m)[:, :view.cut(k)].sum(axis=1)


# usable by audit eval; refused by audit run (no tie-aware kernel)
HITS_NO_TIES = MetricFamily("hits_plain", _hits, cutoff="required")
# does not depend on the order (number of relevant items judged): audit run refuses it
JUDGED = MetricFamily("judged", lambda v, k: v.n_relevant, tie_kernel=lambda v, k: v.n_relevant, cutoff="none",
                      rank_based=False)

# ---------------------------------------------------------------- broken ones
NOT_A_FAMILY = {"name": "not_a_family"}
WRONG_NAME = MetricFamily("something_else", _hits, _hits_tied, cutoff="required")
TIES_DISAGREE = MetricFamily("ties_disagree", _hits, lambda v, k: _hits_tied(v, k) + 1.0, cutoff="required")
RAISES = MetricFamily("raises", lambda v, k: 1 / 0, cutoff="none")
WRONG_SHAPE = MetricFamily("wrong_shape", lambda v, k: np.zeros(3), cutoff="none")
CHANCE_WRONG = MetricFamily("chance_wrong", _hits, _hits_tied, chance=lambda v, k: v.R * 0 + 7.0, cutoff="required")
CLASHES = MetricFamily("clashes", _hits, _hits_tied, aliases=("ap",), cutoff="required")
