"""The plugin contract: the only thing a ranking model must implement to be audited.

This file is the single source of truth for plugin authors. Everything rank-auditor
does to a model goes through the two methods below, so any ranker (a LightGBM booster,
a scikit-learn regressor, a PyTorch cross-encoder, a call to a remote service) can be
audited once it is wrapped in a small class.

Contract
--------
A **model factory** is a callable ``factory(seed: int = 0, **params) -> RankingModel``
returning a *fresh, unfitted* model. The auditor calls it many times (one model per
trial: random-label seeds, cross-validation folds ...), so it must be cheap and must not
share fitted state between the models it returns. ``params`` are the
``--model-param key=value`` pairs from the command line (values arrive as strings
unless they parse as int / float / bool).

A **ranking model** has:

``fit(train: RankingDataset) -> RankingModel``
    Learn from ``train`` (labels, features, query ids). Must return ``self``.
    Learned state should live in attributes ending in ``_`` (scikit-learn style).

``score(data: RankingDataset) -> numpy.ndarray``
    One finite float per row, shape ``(data.n_rows,)``; higher means more relevant.
    **Must not read ``data.labels``** -- the auditor calls it on data whose labels are
    hidden (set to NaN) or shuffled. Scores of one query must not depend on the other
    queries scored in the same call, and must follow rows when rows are reordered.

Optional:

``fit_history() -> dict[str, list[float]]``
    Per-epoch curves such as ``{"train_loss": [...], "val_loss": [...]}``; the
    random-label audit plots them (memorisation capacity).

``device`` attribute / ``to(device)``
    Ignored by the auditor unless present; ``--device`` is passed to the factory as
    the ``device`` parameter only when the factory accepts it.

Optional factory hooks (attributes of the factory function):

``factory.default_data(seed: int = 0, **params) -> auditor.data.Split``
    Data to audit when ``audit run`` gets no ``--train`` / ``--test`` (the bundled
    ``reference`` model generates its synthetic multimodal scenarios this way). Receives the
    same ``--model-param`` values as the factory.

``factory.default_baseline: str``
    A model spec (``"pkg.mod:factory"``) used as the significance audit's baseline when the
    user names none; it receives the same ``--model-param`` values (ignore unknown ones).

Models that cannot be retrained
-------------------------------
A pre-trained model (a remote service, a checkpoint you cannot retrain here) declares it in
either of two ways:

- ``refittable = False`` as an attribute of the factory (``make_model.refittable = False``) or
  of the model (a class attribute), or
- ``fit`` raising ``NotImplementedError``.

``score`` must then work without ``fit``. The auditor uses the model as delivered wherever an
audit needs "the model trained normally" (feature ablation, the isolation model check,
significance, stability's claimed gain), and every audit that must *retrain* it (random-label
training on shuffled labels, stability's query-grouped folds) is SKIPPED with "model cannot be
retrained" -- so is feature ablation when its optional ``loco`` drop-and-retrain is switched on
(leave it off, the default); synthetic shift never fits the model. The verdict is then scoped to
the audits that ran ("GO for 4 of 6 audits -- not run: random_label, stability"), never a plain GO.
``audit check-plugin`` checks such a model as delivered (the ``fit`` rules do not apply).

Rules checked by ``audit check-plugin`` (see :mod:`auditor.conformance`): ``fit``
returns the model; ``score`` shape and finiteness; label independence; no mutation of
the input; query independence; row-order equivariance; same seed -> same scores;
``score`` before ``fit`` fails with an exception (not a silent constant).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from auditor.data import RankingDataset

__all__ = ["RankingModel", "ModelFactory", "has_fit_history", "is_refittable"]


@runtime_checkable
class RankingModel(Protocol):
    """What every audited model implements. See the module docstring for the rules."""

    def fit(self, train: "RankingDataset") -> "RankingModel":
        """Fit on ``train`` and return ``self``."""
        ...

    def score(self, data: "RankingDataset") -> np.ndarray:
        """Return finite scores of shape ``(data.n_rows,)``; never read ``data.labels``."""
        ...


ModelFactory = Callable[..., RankingModel]
"""``factory(seed: int = 0, **params) -> RankingModel`` (unfitted)."""


def has_fit_history(model: object) -> bool:
    """True when ``model`` offers the optional ``fit_history()`` curves."""
    return callable(getattr(model, "fit_history", None))


def is_refittable(factory: object, model: object) -> bool:
    """False when the factory or the model declares ``refittable = False`` (see the module docstring).

    A ``fit`` that raises ``NotImplementedError`` is detected when it is called
    (:meth:`auditor.context.AuditContext.fit`); this only reads the declared flag.
    """
    return getattr(factory, "refittable", True) is not False and getattr(model, "refittable", True) is not False
