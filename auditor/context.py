"""The context every audit trial receives.

:class:`AuditContext` bundles the run's configuration (:class:`~auditor.config.AuditConfig`),
the data, the model specs and helpers that keep every audit honest in the same way: models are always scored on data whose labels are hidden,
their output is validated, and every random stream is derived from the run seed.
"""
from __future__ import annotations

import hashlib
import time
import traceback
import zlib
from typing import Any

import numpy as np

from auditor.config import AuditConfig  # declared in auditor.config; imported from here by existing code
from auditor.data import RankingDataset, Split
from auditor.errors import ModelFailure, ModelNotRefittable
from auditor.guard import exit_message
from auditor.metrics import evaluate_many, parse_metric
from auditor.protocol import is_refittable
from auditor.registry import ModelSpec
from auditor.scores import InvalidScores, validate_scores
from auditor.seeds import derive_seed

__all__ = ["AuditConfig", "AuditContext"]


class AuditContext:
    """Everything a trial needs; picklable so trials can run in other processes.

    Parameters
    ----------
    split : Split
    model : ModelSpec
    config : AuditConfig
    seed : int
    baseline : ModelSpec, optional
        Baseline model for the significance audit (``--baseline``).
    baseline_scores : ndarray, shape (n_test,), optional
        Baseline scores aligned to the test rows (``--baseline-run``).
    device : str
    """

    def __init__(self, split: Split, model: ModelSpec, config: AuditConfig | None = None, *, seed: int = 0,
                 baseline: ModelSpec | None = None, baseline_scores: np.ndarray | None = None,
                 device: str = "cpu") -> None:
        self.split = split
        self.model = model
        self.config = config or AuditConfig()
        self.seed = int(seed)
        self.baseline = baseline
        self.baseline_scores = None if baseline_scores is None else np.asarray(baseline_scores, dtype=np.float64)
        self.device = device
        self._fitted: dict[Any, Any] = {}
        self._memo: dict[Any, Any] = {}
        #: seconds spent inside the plugin's fit and score in this process (the model's time, not
        #: the auditor's); executors report each trial's share (TrialOutcome.model_s)
        self.model_seconds = 0.0
        freeze_split(split)

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_fitted"] = {}  # fitted models stay in their process
        d["_memo"] = {}  # so do derived data (rebuilt on demand)
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        d.setdefault("_memo", {})
        d["model_seconds"] = 0.0
        self.__dict__.update(d)
        freeze_split(self.split)  # unpickled arrays come back writeable

    def memo(self, key: Any, build: Any) -> Any:
        """``build()``, computed once per process and context and kept for the run.

        For derived data that several trials of one audit need (e.g. the pooled two-sample
        matrix of the synthetic-shift tests); callers must treat the value as read-only. Not
        pickled: each worker process builds its own.
        """
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def release(self, audit: str) -> int:
        """Drop the memo entries of ``audit`` (keys whose first element is its name); how many.

        The runner calls it once an audit's last trial has finished in this process, so a
        large derived matrix is not held while the other audits run.
        """
        keys = [k for k in self._memo if isinstance(k, tuple) and k and k[0] == audit]
        for k in keys:
            del self._memo[k]
        return len(keys)

    # ------------------------------------------------------------------ data
    @property
    def train(self) -> RankingDataset:
        return self.split.train

    @property
    def test(self) -> RankingDataset:
        return self.split.test

    @property
    def synthetic(self) -> RankingDataset | None:
        return self.split.synthetic

    @property
    def metric(self) -> str:
        return parse_metric(self.config.metric).name

    # ------------------------------------------------------------------ config
    def params(self, audit: Any) -> dict[str, Any]:
        """Effective parameters of ``audit``: defaults, then quick overrides, then the user's."""
        out = dict(audit.defaults)
        user = dict(self.config.audits.get(audit.name, {}))
        if self.config.quick:
            out.update({k: v for k, v in audit.quick_overrides.items()})
        out.update(user)
        return out

    def rng(self, *keys: Any) -> np.random.Generator:
        """A generator seeded from the run seed and ``keys`` (deterministic, independent streams)."""
        return np.random.default_rng(derive_seed(self.seed, *keys))

    # ------------------------------------------------------------------ models
    def make_model(self, seed: int = 0, *, spec: ModelSpec | None = None) -> Any:
        return (spec or self.model).make(seed=seed)

    def fit(self, seed: int = 0, train: RankingDataset | None = None, *, spec: ModelSpec | None = None,
            cache: bool | None = None) -> Any:
        """Fit a fresh model from ``spec`` (the audited model by default) on ``train``.

        Fits on the full training set are cached per process (keyed by spec and seed), so the
        audits that need "the model trained normally" share one fit.

        A model that cannot be retrained (``refittable = False`` on its factory or on the model,
        or ``fit`` raising ``NotImplementedError``; :mod:`auditor.protocol`) is used as delivered
        for the full training set, and raises :class:`ModelNotRefittable` for any other.

        Raises
        ------
        ModelFailure
            When ``fit`` raises; the message names the model and the exception.
        ModelNotRefittable
            When asked to fit a model that cannot be retrained on other data than the training set.
        """
        spec = spec or self.model
        use_cache = (train is None) if cache is None else cache
        data = self.train if train is None else train
        normal = train is None or train is self.train
        key = None
        if use_cache:  # the key hashes a given training set: only build it when caching
            key = (spec.spec, repr(sorted(spec.params.items())), int(seed),
                   data.sha256() if train is not None else "train")
        if key is not None and key in self._fitted:
            return self._fitted[key]
        model = spec.make(seed=seed)
        if not is_refittable(spec.factory, model):
            return self._as_delivered(model, spec, data, normal, key, "declares refittable = False")
        before = input_checksums(data)
        t0 = time.perf_counter()
        try:
            out = model.fit(data)
        except NotImplementedError as e:
            return self._as_delivered(model, spec, data, normal, key, f"fit() raised NotImplementedError ({e})")
        except SystemExit as e:  # never the run's exit: this trial's error
            raise ModelFailure(f"model {spec.spec!r} fit(seed={seed}) on {data.name} {exit_message(e)}.") from None
        except Exception as e:
            raise ModelFailure(f"model {spec.spec!r} fit(seed={seed}) on {data.name} raised "
                               f"{type(e).__name__}: {e}{_read_only_hint(e)}\n{_short_tb()}") from e
        finally:
            self.model_seconds += time.perf_counter() - t0
        _check_unchanged(before, data, f"model {spec.spec!r} fit(seed={seed})")
        model = out if out is not None else model
        if key is not None:
            self._fitted[key] = model
        return model

    def _as_delivered(self, model: Any, spec: ModelSpec, data: RankingDataset, normal: bool, key: Any,
                      why: str) -> Any:
        """A model that cannot be retrained: as delivered where the training set is asked for."""
        if not normal:
            raise ModelNotRefittable(f"model cannot be retrained: {spec.spec!r} {why}; this audit fits the model "
                                     f"again (on {data.name})")
        if key is not None:
            self._fitted[key] = model
        return model

    def score(self, model: Any, data: RankingDataset, *, spec: ModelSpec | None = None) -> np.ndarray:
        """Score ``data`` with its labels hidden; validate with :func:`auditor.scores.validate_scores`.

        Raises
        ------
        ModelFailure
            When ``score`` raises or returns anything but finite real numbers of shape ``(n_rows,)``.
        """
        name = (spec or self.model).spec
        hidden = data.hide_labels()
        before = input_checksums(hidden)
        t0 = time.perf_counter()
        try:
            s = model.score(hidden)
        except SystemExit as e:  # never the run's exit: this trial's error
            raise ModelFailure(f"model {name!r} score() on {data.name} {exit_message(e)}.") from None
        except Exception as e:
            raise ModelFailure(f"model {name!r} score() on {data.name} raised {type(e).__name__}: {e}"
                               f"{_read_only_hint(e)}\n{_short_tb()}") from e
        finally:
            self.model_seconds += time.perf_counter() - t0
        _check_unchanged(before, hidden, f"model {name!r} score()")
        try:
            return validate_scores(s, data.n_rows, model=name, data=data.name)  # the rules check-plugin applies
        except InvalidScores as e:
            raise ModelFailure(str(e)) from None

    def per_query(self, data: RankingDataset, scores: np.ndarray, metrics: list[str] | None = None,
                  labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Per-query metric arrays ``{name: (n_queries,)}`` (the suite metric by default)."""
        ms = metrics or [self.metric]
        kw: dict[str, Any] = {}
        if "compliance" in data.extra:
            kw["compliance"] = data.extra["compliance"]
        return evaluate_many(ms, data.labels if labels is None else labels, scores, data.query_offsets,
                             item_id=data.item_id, gain=self.config.gain,
                             no_relevant=self.config.no_relevant, **kw)

    def metric_values(self, data: RankingDataset, scores: np.ndarray) -> np.ndarray:
        """The suite metric per query, shape (n_queries,); NaN where undefined."""
        return self.per_query(data, scores)[self.metric]

    def describe(self) -> dict[str, Any]:
        return {"model": self.model.describe(),
                "baseline": self.baseline.describe() if self.baseline else None,
                "baseline_run": self.baseline_scores is not None}


# --------------------------------------------------------------------------- input integrity
def _dataset_arrays(ds: RankingDataset) -> list[tuple[str, np.ndarray]]:
    out = [("qid", ds.qid), ("labels", ds.labels)]
    out += [(f"features[{g!r}]", x) for g, x in ds.features.items()]
    out += [(f, getattr(ds, f)) for f in ("item_id", "query_text", "timestamp", "group_id") if getattr(ds, f) is not None]
    out += [(f"extra[{k!r}]", v) for k, v in ds.extra.items()]
    out.append(("query_offsets", ds.query_offsets))
    m = ds._cached_matrix()  # a cached copy the plugin reads (several groups): covered like the groups
    if m is not None:
        out.append(("feature_matrix()", m))
    return out


def freeze_split(split: Split) -> None:
    """Make the run's data truly read-only: the *base* array of every view is made non-writeable.

    A dataset's arrays are read-only views, but a view of a writeable array can be made
    writeable again (``a.flags.writeable = True``); once the array that owns the memory is
    read-only, numpy refuses that. Costs nothing (no copy). Side effect for API callers: arrays
    they built a dataset from are read-only after the run starts.
    """
    for ds in (split.train, split.test, split.synthetic):
        if ds is None:
            continue
        for _, a in _dataset_arrays(ds):
            root = a
            while isinstance(root.base, np.ndarray):
                root = root.base
            if root.flags.writeable:
                root.flags.writeable = False


def input_checksums(ds: RankingDataset) -> dict[str, int]:
    """CRC-32 of every array of ``ds`` (object arrays skipped), to detect a plugin writing into its input.

    ~2.7 GB/s on this machine's CPU (docs/RUN_DIRECTORY.md has the cost per run).
    """
    out = {}
    for name, a in _dataset_arrays(ds):
        if a.dtype.kind == "O":
            continue
        out[name] = zlib.crc32(memoryview(np.ascontiguousarray(a)).cast("B"))
    return out


def _check_unchanged(before: dict[str, int], ds: RankingDataset, who: str) -> None:
    after = input_checksums(ds)
    changed = [k for k in before if after.get(k) != before[k]]
    if changed:
        raise ModelFailure(f"{who} modified its input: {', '.join(changed)} of {ds.name} changed during the call. "
                           "A plugin must treat the data it is given as read-only (copy an array before editing "
                           "it); results computed after the change cannot be trusted.")


def _read_only_hint(e: BaseException) -> str:
    """The fix for a plugin editing its input in place (numpy says "... is read-only")."""
    if isinstance(e, ValueError) and "read-only" in str(e):
        return (" (the dataset's arrays, feature_matrix() included, are read-only and shared between calls: "
                "copy before editing in place, e.g. X = data.feature_matrix().copy())")
    return ""


def _short_tb(limit: int = 3) -> str:
    tb = traceback.format_exc(limit=-limit).strip().splitlines()
    return "\n".join(tb[-2 * limit:])
