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

``factory.params: dict[str, dict]``
    The ``--model-param`` keys the factory understands, each ``{"default": ..., "choices":
    [...] (optional), "help": "..."}``; ``audit list`` shows them. Without it ``audit list``
    shows the factory's keyword arguments and their defaults.

``factory.default_data(seed: int = 0, **params) -> auditor.data.Split``
    Data to audit when ``audit run`` gets no ``--train`` / ``--test`` (the bundled
    ``reference`` model generates its synthetic multimodal scenarios this way). Receives the
    same ``--model-param`` values as the factory.

``factory.default_baseline: str``
    A model spec (``"pkg.mod:factory"``) used as the significance audit's baseline when the
    user names none; it receives the same ``--model-param`` values (ignore unknown ones).

What a plugin may read
----------------------
``fit`` and ``score`` receive a :class:`auditor.data.RankingDataset` (frozen; arrays are
read-only). Convention: every value without arguments is an **attribute or property** (no
parentheses); **methods** are the members that take arguments, copy the feature data or hash it.
``query_slices`` and ``feature_names`` were methods before this convention: calling them
(``data.feature_names()``) still works and warns.

======================  ==========  ==========================================================
member                  kind        value
======================  ==========  ==========================================================
``n_rows``              property    int: rows (query-candidate pairs)
``n_queries``           property    int: queries
``n_features``          property    int: feature columns, all groups together
``qid``                 attribute   ndarray (n_rows,): query id per row; a query's rows are contiguous
``labels``              attribute   ndarray (n_rows,) float: graded relevance; **NaN in score**
``labels_hidden``       attribute   bool: True when ``labels`` are hidden (NaN)
``features``            attribute   dict[str, ndarray (n_rows, d_g)]: named feature groups
``feature_groups``      property    list[str]: the group names, in order
``feature_names``       property    list[str]: ``"<group>.<i>"`` per column of ``feature_matrix()``
``query_ids``           property    ndarray (n_queries,): query ids in file order
``query_offsets``       property    ndarray (n_queries + 1,): query i is rows ``offsets[i]:offsets[i+1]``
``query_sizes``         property    ndarray (n_queries,): rows per query
``query_index``         property    ndarray (n_rows,): query position 0..n_queries-1 per row
``query_slices``        property    list[slice]: rows of each query, ``labels[data.query_slices[i]]``
``item_id``             attribute   ndarray (n_rows,) or None: candidate (document) id
``query_text``          attribute   ndarray (n_rows,) of str or None
``timestamp``           attribute   ndarray (n_rows,) or None: event time
``group_id``            attribute   ndarray (n_rows,) or None: entity / user / session id
``extra``               attribute   dict[str, ndarray (n_rows,)]: other per-row columns (never features)
``meta``                attribute   dict: dataset-level facts (name, source, scenario)
``name``                attribute   str: label used in messages (usually the file path)
``feature_matrix(g)``   method      ndarray (n_rows, D) float64: groups ``g`` (all by default) side by side, read-only, cached
``subset(queries)``     method      RankingDataset: queries by position or boolean mask
``take(rows)``          method      RankingDataset: rows by index (queries stay contiguous)
``with_labels(y)``      method      RankingDataset: a copy with new labels
``with_features(d)``    method      RankingDataset: a copy with feature groups replaced
``with_meta(**kw)``     method      RankingDataset: a copy with ``meta`` entries added
``hide_labels()``       method      RankingDataset: a copy whose labels are NaN (what ``score`` gets)
``sha256()``            method      str: content hash shown in reports
``summary()``           method      dict: the small description written to results.json
======================  ==========  ==========================================================

A :class:`auditor.data.Split` (what ``factory.default_data`` returns) has ``train``,
``test``, ``synthetic`` (a RankingDataset or None) and ``name``.
``tests/test_examples.py`` checks this table against the classes.

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
