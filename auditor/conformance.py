"""``check_ranking_model``: small, named checks every plugin must pass (``audit check-plugin``).

Modelled on scikit-learn's ``utils/estimator_checks.py``: :func:`iter_checks` yields named
check functions; each receives a *fresh* model from the factory and a small dataset, and
raises :class:`ConformanceFailure` with the reason when the rule is broken. The audits rely
on every one of these rules (e.g. random-label audits are meaningless if ``score`` reads
labels), which is why a plugin that fails one is not audited blindly.

Every check, and every ``fit`` / ``score`` call inside one, hands the plugin its own copy of
the data (:func:`fresh_copy`): a plugin that writes into its input fails the mutation checks,
which compare what it received with a private copy and name the arrays it changed, instead of
silently corrupting the data of the checks after it. Scores go through
:func:`auditor.scores.validate_scores`, the validation ``audit run`` applies.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from auditor.data import RankingDataset, Split
from auditor.errors import PluginError
from auditor.protocol import is_refittable
from auditor.registry import ModelSpec
from auditor.scores import InvalidScores, validate_scores

__all__ = ["ConformanceFailure", "CheckResult", "iter_checks", "check_ranking_model", "default_check_data",
           "fresh_copy"]

_RTOL, _ATOL = 1e-5, 1e-6


class ConformanceFailure(AssertionError):
    """A plugin broke a contract rule; the message says which and how."""


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "message": self.message, "duration_s": self.duration_s}


def _fit(spec: ModelSpec, train: RankingDataset, seed: int = 0) -> Any:
    model = spec.make(seed=seed)
    if not is_refittable(spec.factory, model):
        return model  # pre-trained (auditor/protocol.py): checked as delivered
    try:
        out = model.fit(fresh_copy(train))  # private copy, as in _score
    except NotImplementedError:
        return model  # pre-trained: fit is not available, the audits use it as delivered
    except Exception as e:
        raise ConformanceFailure(f"fit raised {type(e).__name__}: {e}") from e
    return out if out is not None else model


def _pretrained(spec: ModelSpec, train: RankingDataset) -> bool:
    """True for a model that cannot be retrained (protocol.py): the fit rules do not apply to it."""
    model = spec.make(seed=0)
    if not is_refittable(spec.factory, model):
        return True
    try:
        model.fit(fresh_copy(train))
    except NotImplementedError:
        return True
    except Exception:  # noqa: BLE001 -- the fit checks report it
        return False
    return False


def _score(model: Any, data: RankingDataset, spec: ModelSpec | None = None) -> np.ndarray:
    try:
        # a private copy per call: a plugin that edits its input fails check_score_does_not_mutate
        # (named), not every check that happens to score the same data twice
        s = model.score(fresh_copy(data))
    except Exception as e:
        raise ConformanceFailure(f"score raised {type(e).__name__}: {e}") from e
    try:  # the same rules as `audit run` (auditor.scores)
        return validate_scores(s, data.n_rows, model=spec.spec if spec else type(model).__name__, data=data.name)
    except InvalidScores as e:
        raise ConformanceFailure(str(e)) from None


def fresh_copy(data: RankingDataset) -> RankingDataset:
    """``data`` with every array copied: nothing a plugin does to it can reach ``data``."""
    def cp(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.array(a, copy=True)

    return RankingDataset(qid=cp(data.qid), labels=cp(data.labels),
                          features={g: cp(x) for g, x in data.features.items()},
                          item_id=cp(data.item_id), query_text=cp(data.query_text), timestamp=cp(data.timestamp),
                          group_id=cp(data.group_id), extra={k: cp(v) for k, v in data.extra.items()},
                          meta=dict(data.meta), name=data.name, labels_hidden=data.labels_hidden)


def _arrays(data: RankingDataset) -> dict[str, np.ndarray]:
    """Every array a plugin receives in ``data``, by the name a message should use."""
    out = {"qid": data.qid, "labels": data.labels, "query_offsets": data.query_offsets}
    out.update({f"features[{g!r}]": x for g, x in data.features.items()})
    for f in ("item_id", "query_text", "timestamp", "group_id"):
        if getattr(data, f) is not None:
            out[f] = getattr(data, f)
    out.update({f"extra[{k!r}]": v for k, v in data.extra.items()})
    return out


def _changed(given: RankingDataset, reference: RankingDataset) -> list[str]:
    """Names of the arrays of ``given`` that no longer equal their private copy in ``reference``."""
    ref, now = _arrays(reference), _arrays(given)
    bad = []
    for name in list(ref) + [n for n in now if n not in ref]:  # replaced, edited, removed or added
        a, b = now.get(name), ref.get(name)
        same = (a is not None and b is not None and a.shape == b.shape and a.dtype.kind == b.dtype.kind
                and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")))
        if not same:
            bad.append(name)
    return bad


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=_RTOL, atol=_ATOL))


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b))) if a.shape == b.shape and a.size else float("nan")


# --------------------------------------------------------------------------- checks
def check_factory_returns_model(spec: ModelSpec, split: Split) -> None:
    """``factory(seed=0, **params)`` returns an object with ``fit`` and ``score``."""
    model = spec.make(seed=0)
    missing = [m for m in ("fit", "score") if not callable(getattr(model, m, None))]
    if missing:
        raise ConformanceFailure(f"the factory returned a {type(model).__name__} without {', '.join(missing)}(); "
                                 "see auditor/protocol.py.")


def check_fit_returns_self(spec: ModelSpec, split: Split) -> None:
    """``fit`` returns the model itself (so ``factory().fit(train).score(test)`` works)."""
    if _pretrained(spec, split.train):
        return
    model = spec.make(seed=0)
    try:
        out = model.fit(split.train)
    except Exception as e:
        raise ConformanceFailure(f"fit raised {type(e).__name__}: {e}") from e
    if out is not model:
        raise ConformanceFailure(f"fit returned {type(out).__name__ if out is not None else 'None'}, not self. "
                                 "Fix: end fit() with `return self`.")


def check_score_shape_and_finite(spec: ModelSpec, split: Split) -> None:
    """``score`` returns finite real numbers of shape ``(n_rows,)`` (:func:`auditor.scores.validate_scores`)."""
    model = _fit(spec, split.train)
    _score(model, split.test.hide_labels(), spec)


def check_scores_vary_within_queries(spec: ModelSpec, split: Split) -> None:
    """Scores are not constant within most queries: a model must order the candidates of a query.

    Every audit scores tied items at the expected metric over all their orders (random-order
    chance), so a model that gives one score per query ranks nothing; under file-order
    tie-breaking such a model used to "win" on files sorted by label.
    """
    model = _fit(spec, split.train)
    test = split.test.hide_labels()
    s = _score(model, test, spec)
    o = test.query_offsets
    multi = np.flatnonzero(np.diff(o) >= 2)
    if multi.size == 0:
        return
    tol = 1e-12 * max(1.0, float(np.abs(s).max()))
    hi = np.maximum.reduceat(s, o[:-1])[multi]
    lo = np.minimum.reduceat(s, o[:-1])[multi]
    flat = int(np.count_nonzero(hi - lo <= tol))
    if 2 * flat > multi.size:
        raise ConformanceFailure(
            f"scores are constant within {flat} of {multi.size} queries with 2+ candidates "
            f"({100 * flat / multi.size:.0f}%): such a model does not rank, and every audit scores its tied "
            "candidates at random-order chance (the expected metric over all their orders). Fix: return a "
            "score that differs between the candidates of a query (a model of query-level features alone "
            "cannot rank them).")


def check_score_ignores_labels(spec: ModelSpec, split: Split) -> None:
    """Scores do not depend on the labels of the scored data (hidden or permuted give the same)."""
    model = _fit(spec, split.train)
    test = split.test
    a = _score(model, test, spec)
    rng = np.random.default_rng(0)
    b = _score(model, test.with_labels(rng.permutation(test.labels)), spec)
    c = _score(model, test.hide_labels(), spec)
    if not (_close(a, b) and _close(a, c)):
        raise ConformanceFailure(f"scores change when the test labels are permuted or hidden "
                                 f"(max difference {max(_max_diff(a, b), _max_diff(a, c)):.3g}): score() reads labels. "
                                 "Fix: score from features only.")


def _mutation_failure(method: str, names: list[str]) -> ConformanceFailure:
    return ConformanceFailure(
        f"{method}() modified its input: {', '.join(names)} changed. Later trials of `audit run` would see the "
        "edited data. Fix: copy arrays before editing them (`x = np.array(data.features[g])`); the arrays "
        "are read-only on purpose, do not set `flags.writeable`.")


def check_fit_does_not_mutate(spec: ModelSpec, split: Split) -> None:
    """Fitting leaves every array of the training data unchanged (compared with a private copy)."""
    if _pretrained(spec, split.train):
        return
    _call_and_compare(spec.make(seed=0), "fit", split.train)


def check_score_does_not_mutate(spec: ModelSpec, split: Split) -> None:
    """Scoring leaves every array it receives unchanged (compared with a private copy)."""
    _call_and_compare(_fit(spec, split.train), "score", split.test.hide_labels())


def _call_and_compare(model: Any, method: str, data: Any) -> None:
    """Call ``model.<method>`` on a fresh copy of ``data`` and fail naming any array it changed."""
    given, reference = fresh_copy(data), fresh_copy(data)
    try:
        getattr(model, method)(given)
    except Exception as e:
        raise ConformanceFailure(f"{method} raised {type(e).__name__}: {e}") from e
    changed = _changed(given, reference)
    if changed:
        raise _mutation_failure(method, changed)


def check_query_independence(spec: ModelSpec, split: Split) -> None:
    """A query's scores do not depend on which other queries are scored with it."""
    model = _fit(spec, split.train)
    test = split.test.hide_labels()
    full = _score(model, test, spec)
    half = max(1, test.n_queries // 2)
    part = test.subset(np.arange(half))
    alone = _score(model, part, spec)
    n = part.n_rows
    if not _close(full[:n], alone):
        raise ConformanceFailure(f"scores of the first {half} queries change when the other queries are left out "
                                 f"(max difference {_max_diff(full[:n], alone):.3g}). Fix: do not normalise or batch "
                                 "across queries in score().")


def check_row_order_equivariance(spec: ModelSpec, split: Split) -> None:
    """Scores follow rows when rows are reordered within each query."""
    model = _fit(spec, split.train)
    test = split.test.hide_labels()
    base = _score(model, test, spec)
    rng = np.random.default_rng(1)
    perm = np.concatenate([rng.permutation(np.arange(o0, o1)) for o0, o1 in
                           zip(test.query_offsets[:-1], test.query_offsets[1:])])
    moved = _score(model, test.take(perm), spec)
    if not _close(base[perm], moved):
        raise ConformanceFailure(f"reordering rows within queries changes their scores (max difference "
                                 f"{_max_diff(base[perm], moved):.3g}). Fix: a row's score must depend on its features "
                                 "(and its query), not its position.")


def check_same_seed_same_scores(spec: ModelSpec, split: Split) -> None:
    """Two models from the same seed, fitted on the same data, give the same scores."""
    a = _score(_fit(spec, split.train, seed=0), split.test.hide_labels(), spec)
    b = _score(_fit(spec, split.train, seed=0), split.test.hide_labels(), spec)
    if not _close(a, b):
        raise ConformanceFailure(f"same seed, different scores (max difference {_max_diff(a, b):.3g}). "
                                 "Fix: seed every random source from the factory's seed.")


def check_score_before_fit_fails(spec: ModelSpec, split: Split) -> None:
    """``score`` before ``fit`` raises instead of returning arbitrary numbers (a pre-trained model,
    which cannot be retrained, scores as delivered)."""
    if _pretrained(spec, split.train):
        return
    model = spec.make(seed=0)
    try:
        model.score(split.test.hide_labels())
    except Exception:
        return
    raise ConformanceFailure("score() before fit() returned values instead of raising. "
                             "Fix: raise an error (e.g. RuntimeError('call fit first')).")


def check_fit_history_format(spec: ModelSpec, split: Split) -> None:
    """Optional ``fit_history()`` returns ``{name: [float, ...]}``."""
    model = _fit(spec, split.train)
    fh = getattr(model, "fit_history", None)
    if fh is None:
        return
    h = fh()
    if not isinstance(h, dict) or not all(isinstance(k, str) and hasattr(v, "__len__") for k, v in h.items()):
        raise ConformanceFailure(f"fit_history() returned {type(h).__name__}; expected dict[str, list[float]].")
    for k, v in h.items():
        arr = np.asarray(v, dtype=np.float64)
        if arr.ndim != 1:
            raise ConformanceFailure(f"fit_history()[{k!r}] is not a 1-D list of floats.")


_CHECKS: list[Callable[[ModelSpec, Split], None]] = [
    check_factory_returns_model, check_fit_returns_self, check_score_shape_and_finite,
    check_scores_vary_within_queries, check_score_ignores_labels, check_fit_does_not_mutate,
    check_score_does_not_mutate, check_query_independence, check_row_order_equivariance,
    check_same_seed_same_scores, check_score_before_fit_fails, check_fit_history_format,
]


def iter_checks() -> Iterator[tuple[str, Callable[[ModelSpec, Split], None]]]:
    """Yield ``(name, check)`` pairs; each check takes ``(spec, split)`` and raises on failure."""
    for c in _CHECKS:
        yield c.__name__.removeprefix("check_"), c


def default_check_data(spec: ModelSpec, seed: int = 0, max_queries: int = 40) -> Split:
    """Small data for the checks: the model's own ``default_data`` (subsampled) or a synthetic split."""
    factory = spec.factory
    dd = getattr(factory, "default_data", None)
    if dd is not None:
        split = dd(seed=seed, **spec.params)
        tr = split.train.subset(np.arange(min(split.train.n_queries, 3 * max_queries)))
        te = split.test.subset(np.arange(min(split.test.n_queries, max_queries)))
        return Split(tr, te, name="default_data (subsample)")
    from auditor.synthetic import make_synthetic_split

    return make_synthetic_split(n_train_queries=3 * max_queries, n_test_queries=max_queries, n_items=8, seed=seed)


def check_ranking_model(model: str | ModelSpec, split: Split | None = None, *,
                        params: dict[str, Any] | None = None) -> list[CheckResult]:
    """Run every conformance check on fresh models; never raises for a failing check.

    Raises
    ------
    PluginError
        When the plugin cannot be loaded at all.
    """
    spec = model if isinstance(model, ModelSpec) else ModelSpec(model, dict(params or {}))
    spec.factory  # noqa: B018 - a plugin that cannot load is exit 2, not a failed check
    if split is None:
        try:
            split = default_check_data(spec)
        except PluginError:
            raise
        except Exception as e:
            raise PluginError(spec.spec, f"default_data raised {type(e).__name__}: {e}") from e
    out = []
    for name, check in iter_checks():
        t0 = time.perf_counter()
        try:
            # each check gets its own copy: a plugin that edits its input must not corrupt the next check
            check(spec, Split(fresh_copy(split.train), fresh_copy(split.test), name=split.name,
                              synthetic=None if split.synthetic is None else fresh_copy(split.synthetic)))
            out.append(CheckResult(name, True, "", time.perf_counter() - t0))
        except ConformanceFailure as e:
            out.append(CheckResult(name, False, str(e), time.perf_counter() - t0))
        except PluginError as e:
            out.append(CheckResult(name, False, str(e), time.perf_counter() - t0))
        except Exception as e:
            tb = traceback.format_exc(limit=-2).strip().splitlines()[-1]
            out.append(CheckResult(name, False, f"{type(e).__name__}: {e} ({tb})", time.perf_counter() - t0))
    return out
