"""The baseline's per-query metric on the test set, from a model or from a fixed run file.

The significance audit tests the candidate's gain over it and the stability audit compares its
fold-to-fold spread with that gain; both read it from here so that neither imports the other.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from auditor.errors import ConfigError, DataError

__all__ = ["baseline_metric_values"]


def baseline_metric_values(ctx: Any, seed: int) -> tuple[np.ndarray, str]:
    """Per-query suite metric of the baseline on the test set, shape (n_test_queries,).

    Uses the ``--baseline`` model fitted with ``seed`` (cached per process, like the
    candidate), else the ``--baseline-run`` scores aligned to the test rows.

    Returns
    -------
    values : ndarray, shape (n_queries,)
    source : {"model", "run"}

    Raises
    ------
    DataError
        When the baseline scores do not match the test rows or are not finite.
    ConfigError
        When there is no baseline at all.
    """
    test = ctx.test
    if ctx.baseline is not None:
        model = ctx.fit(seed, spec=ctx.baseline)
        s = ctx.score(model, test, spec=ctx.baseline)
        return ctx.metric_values(test, s), "model"
    if ctx.baseline_scores is None:
        raise ConfigError("the significance audit needs a baseline: pass --baseline MODEL or --baseline-run FILE.")
    s = np.asarray(ctx.baseline_scores, dtype=np.float64)
    if s.shape != (test.n_rows,):
        raise DataError(f"the baseline run has {s.size} scores but the test set has {test.n_rows} rows.",
                        path=test.name, field="baseline_scores",
                        fix="score every test row in the baseline run (one line per query-document pair).")
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.size:
        raise DataError(f"the baseline run has a non-finite score ({s[bad[0]]}) at test row {int(bad[0])}.",
                        path=test.name, field="baseline_scores", fix="give every row a finite score.")
    return ctx.metric_values(test, s), "run"
