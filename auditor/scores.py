"""The one validation of what a model's ``score`` returns, shared by ``audit run`` and ``check-plugin``.

A plugin is untrusted code, and both commands must accept and reject exactly the same outputs:
a ranking score is a real number per row. Rejected, with the plugin named and the fix:

- anything numpy cannot turn into an array (``None``, ragged lists, GPU tensors);
- non-real dtypes: booleans (a ranking of 0/1 is almost certainly a classifier's ``predict``
  where ``predict_proba`` or a decision function was meant), complex numbers (numpy would
  drop the imaginary part with only a warning), strings, objects, dates;
- a shape other than ``(n_rows,)``;
- NaN or infinite values (the first bad row is named).

Accepted scores are returned as a private float64 copy, so a plugin that keeps and later
edits the array it returned cannot change results already computed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["InvalidScores", "validate_scores"]

# integer and floating kinds; 'b' (bool), 'c' (complex), 'U'/'S' (str), 'O', 'M'/'m', 'V' are not scores
_REAL_KINDS = "iuf"
_KIND_NAMES = {"b": "booleans", "c": "complex numbers", "U": "strings", "S": "bytes", "O": "Python objects",
               "M": "datetimes", "m": "timedeltas", "V": "raw records"}


class InvalidScores(ValueError):
    """``score`` returned something that is not one finite real number per row; the message says what and how to fix it."""


def validate_scores(raw: Any, n_rows: int, *, model: str, data: str = "the data") -> np.ndarray:
    """Check a ``score`` return value and return it as a new float64 array of shape ``(n_rows,)``.

    Parameters
    ----------
    raw : Any
        What ``model.score(data)`` returned.
    n_rows : int
        Rows of the scored data.
    model : str
        The plugin spec, named in the message.
    data : str
        Name of the scored data, named in the message.

    Raises
    ------
    InvalidScores
        One paragraph: the plugin, what it returned, what is expected and the fix.
    """
    head = f"model {model!r} score() on {data}"
    if raw is None:
        raise InvalidScores(f"{head} returned None; expected one real number per row. Fix: return the scores "
                            "(e.g. `return np.asarray(s, dtype=float)`).")
    try:
        s = np.asarray(raw)
    except Exception as e:  # ragged lists, tensors on a GPU, objects with a broken __array__
        raise InvalidScores(f"{head} returned {type(raw).__name__}, which is not an array of numbers ({e}). "
                            "Fix: return a 1-D numpy array of floats (for a torch tensor: "
                            "`t.detach().cpu().numpy()`).") from None
    kind = s.dtype.kind
    if kind not in _REAL_KINDS:
        what = _KIND_NAMES.get(kind, f"dtype {s.dtype}")
        fix = {"b": "return a real-valued score (a decision function or probability), not a 0/1 decision",
               "c": "return the real part you mean explicitly (`s.real`), or fix the computation that made it complex",
               }.get(kind, "convert to floats before returning (`np.asarray(s, dtype=float)`)")
        raise InvalidScores(f"{head} returned {what} (dtype {s.dtype}); scores must be real numbers "
                            f"(integer or float dtype). Fix: {fix}.")
    if s.shape != (n_rows,):
        raise InvalidScores(f"{head} returned shape {s.shape}; expected ({n_rows},), one score per row. "
                            "Fix: return a 1-D array aligned with the rows (`.ravel()` if it is (n, 1)).")
    out = np.array(s, dtype=np.float64)  # a private copy, whatever the plugin does with its array later
    bad = ~np.isfinite(out)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InvalidScores(f"{head} returned {int(bad.sum())} non-finite values (first at row {first}: "
                            f"{out[first]}); scores must be finite. Fix: replace NaN/inf (e.g. "
                            "`np.nan_to_num`) or find the step that produces them.")
    return out
