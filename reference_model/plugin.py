"""The ``reference`` plugin: CoTRR-Pro behind the auditor's plugin contract.

Registered in ``pyproject.toml`` as the entry point ``reference =
"reference_model.plugin:make_model"`` (group ``auditor.models``), exactly like an outside plugin.

Contract (see :mod:`auditor.protocol`)
--------------------------------------
``make_model(seed=0, scenario="clean", preset="auto", device="cpu", **params) -> CoTRRPro``
    A fresh, unfitted model. ``params`` override any field of
    :class:`~reference_model.config.ModelConfig` / :class:`~reference_model.config.TrainConfig`
    (``hidden=128``, ``max_epochs=10``, ``lr=1e-3`` ...); the data-generation keys of
    :func:`reference_model.synthetic.generate` (``n_train_queries`` ...) and ``scenario`` are
    accepted and ignored here (they are for :func:`default_data`); anything else is a
    :class:`~auditor.errors.ConfigError` naming the valid keys. ``preset="auto"`` means
    ``full`` on CUDA, ``quick`` on the CPU; ``device`` is ``cpu``, ``cuda`` or ``auto``.

``CoTRRPro.fit(train) -> self`` / ``CoTRRPro.score(data) -> ndarray (n_rows,) float64``
    ``score`` never reads labels, raises before ``fit``, and scores each query from its own
    rows only (the network is pointwise given the query), so scores do not depend on the
    other queries in the call and follow rows when they are reordered. Same seed -> same
    scores on the CPU.

``CoTRRPro.fit_history() -> {"train_loss": [...], "val_loss": [...]}``
    Per-epoch combined loss on the training queries and on the early-stopping split.

Data layout expected: feature groups ``image`` (n, 512), ``text`` (n, 1024 = query text
embedding 512 | candidate caption 512; the query half is constant within a query) and
``visual`` (n, 256). Widths other than these are accepted as long as ``text`` is wider than
``query_dim`` (default 512); other groups are ignored.

Optional hooks the runner uses (attributes of the factory)
----------------------------------------------------------
``make_model.default_data``
    ``default_data(seed=0, scenario="clean", **ignored) -> auditor.data.Split`` -- the bundled
    synthetic data for ``audit run --model reference`` without data files. Scenarios
    ``clean`` (with a faithful synthetic set), ``leaky`` (the V2.0 failure, with its naive
    synthetic set), ``shifted`` and ``no_gain``; see :mod:`reference_model.synthetic`. Keys of
    :func:`~reference_model.synthetic.generate` (sizes ...) are honoured, others ignored.
``make_model.default_baseline``
    ``"reference_model.plugin:make_v1_baseline"`` -- the spec string of the V1.0 baseline
    factory (:class:`~reference_model.baseline.V1Baseline`), used by the significance audit
    when the user names no baseline. It ignores unknown params (scenario, preset, device ...).

``make_model.params``
    Every ``--model-param`` key with its default and allowed values, read from the code
    (``audit list`` shows them).

Checkpoints: :meth:`CoTRRPro.save` / :meth:`CoTRRPro.load` (``torch.save`` /
``torch.load(weights_only=True)``).
"""
from __future__ import annotations

import contextlib
import inspect
import os
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch

from auditor.data import RankingDataset, Split
from auditor.errors import ConfigError, DataError
from reference_model.baseline import V1Baseline, make_v1_baseline
from reference_model.config import ModelConfig, TrainConfig, preset_configs, resolve_preset
from reference_model.model import CoTRRNet, count_parameters
from reference_model.synthetic import generate
from reference_model.train import Batchable, cpu_threads, resolve_device, score_rows, train_model

__all__ = ["CoTRRPro", "NotFittedError", "make_model", "make_v1_baseline", "default_data", "V1Baseline"]

_GEN_KEYS = frozenset(p for p in inspect.signature(generate).parameters if p not in ("seed", "scenario"))
_CHECKPOINT_FORMAT = "cotrr-pro/1"


class NotFittedError(RuntimeError):
    """``score`` (or ``save``) called on a model that has not been fitted."""


def _groups(data: RankingDataset, query_dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image, caption, visual, query rows) of ``data``; clear DataError when the layout is wrong."""
    missing = [g for g in ("image", "text", "visual") if g not in data.features]
    if missing:
        raise DataError(f"the reference model needs feature groups image, text and visual; missing {missing} "
                        f"(found {data.feature_groups}).", path=data.name, field="features",
                        fix="use the bundled data (audit run --model reference without --train/--test) "
                            "or load files with --feature-groups 'image=1-512;text=513-1536;visual=1537-1792' "
                            "(text = the query embedding, then the caption).")
    text = data.features["text"]
    if text.shape[1] <= query_dim:
        raise DataError(f"group 'text' has {text.shape[1]} columns; the reference model expects the query "
                        f"embedding ({query_dim} columns) followed by the candidate caption.",
                        path=data.name, field="features[text]",
                        fix="append the query embedding in front of the caption, or pass --model-param query_dim=0 "
                            "to use the whole group as the caption.")
    return data.features["image"], text[:, query_dim:], data.features["visual"], text[:, :query_dim]


def _per_query_mean(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Mean of each query's rows, (Q, d) float64; order-independent when rows are equal (as designed)."""
    if rows.shape[1] == 0:
        return np.zeros((offsets.size - 1, 0))
    sums = np.add.reduceat(np.asarray(rows, dtype=np.float64), offsets[:-1], axis=0)
    return sums / np.diff(offsets)[:, None]


def _blas_threads(n: int) -> Any:
    """Limit numpy's BLAS / OpenMP pools to ``n`` threads inside the block (no-op for 0).

    The preprocessing (covariances, eigh) runs in numpy; on a shared 2-core machine an
    unrestricted OpenBLAS pool spin-waited 24 s over four 512x512 eigh calls that take 0.1 s
    on one thread.
    """
    if not n:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(n))


def _pca(x: np.ndarray, mean: np.ndarray, sd: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` principal directions of the standardised rows, (d, k) float32 (not whitened:
    whitening would blow the weak, mostly-noise directions up to the scale of the signal).

    Eigenvectors of the (d, d) covariance; signs fixed (largest |loading| positive) so the
    result is a deterministic function of the data.
    """
    z = ((x - mean.astype(np.float64)) / sd.astype(np.float64)).astype(np.float32)
    cov = (z.T @ z).astype(np.float64) / max(z.shape[0] - 1, 1)
    w, v = np.linalg.eigh(cov)
    idx = np.argsort(w)[::-1][:k]
    w, v = np.maximum(w[idx], 1e-8), v[:, idx]
    sign = np.sign(v[np.abs(v).argmax(axis=0), np.arange(v.shape[1])])
    return (v * sign).astype(np.float32)


class CoTRRPro:
    """CoTRR-Pro reranker (scikit-learn style: ``__init__`` stores, ``fit`` learns ``*_`` state).

    Parameters
    ----------
    seed : int, default 0
        Seeds the weights, the early-stopping split, batch order, tie-breaking and dropout.
    preset : {"auto", "quick", "full"}, default "auto"
    device : {"cpu", "cuda", "auto"}, default "cpu"
    scenario : str, default "clean"
        Not used by the model (it names the bundled data); kept so ``--model-param
        scenario=...`` reaches :func:`default_data` and shows in reports.
    **params
        Overrides of :class:`ModelConfig` / :class:`TrainConfig` fields.

    Attributes
    ----------
    net_ : CoTRRNet
    model_config_ : ModelConfig
    train_config_ : TrainConfig
    norm_ : dict[str, ndarray]
        Per-column mean / SD of each input, from the training rows.
    history_ : dict
        Training curves and facts (epochs, best epoch, seconds, candidates/s ...).
    n_params_ : int
    device_ : torch.device
    """

    def __init__(self, seed: int = 0, preset: str = "auto", device: str = "cpu", scenario: str = "clean",
                 **params: Any) -> None:
        self.seed = seed
        self.preset = preset
        self.device = device
        self.scenario = scenario
        self.params = params

    # ----------------------------------------------------------------------- helpers
    def _configs(self) -> tuple[ModelConfig, TrainConfig, torch.device]:
        dev = resolve_device(self.device)
        mcfg, tcfg = preset_configs(self.preset, str(dev), **self.params)
        return mcfg, tcfg, dev

    def _inputs(self, data: RankingDataset, *, with_labels: bool) -> Batchable:
        mcfg, raw = self.model_config_, self.raw_dims_
        image, caption, visual, qrows = _groups(data, raw["query"])
        for name, x, d in (("image", image, raw["image"]), ("text (caption part)", caption, raw["text"]),
                           ("visual", visual, raw["visual"])):
            if x.shape[1] != d:
                raise DataError(f"group {name} has {x.shape[1]} columns but the model was fitted with {d}.",
                                path=data.name, field="features")
        nm = self.norm_
        off = data.query_offsets

        def z(x: np.ndarray, key: str) -> np.ndarray:
            out = ((np.asarray(x, dtype=np.float32) - nm[key + "_mean"]) / nm[key + "_sd"]).astype(np.float32)
            return out @ nm[key + "_pca"] if key + "_pca" in nm else out

        query = _per_query_mean(qrows, off)
        query = z(query, "query") if mcfg.query_dim else query.astype(np.float32)
        return Batchable(image=z(image, "image"), text=z(caption, "text"), visual=z(visual, "visual"),
                         query=query, offsets=np.asarray(off, dtype=np.int64),
                         labels=np.asarray(data.labels, dtype=np.float32) if with_labels else None)

    # ----------------------------------------------------------------------- contract
    def fit(self, train: RankingDataset) -> "CoTRRPro":
        """Fit on ``train`` (labels required); returns ``self``.

        Raises
        ------
        DataError
            Missing / mis-sized feature groups, or hidden labels.
        ConfigError
            Bad parameters or an unavailable device.
        """
        mcfg, tcfg, dev = self._configs()
        with _blas_threads(cpu_threads(tcfg, mcfg, dev)):
            return self._fit(train, mcfg, tcfg, dev)

    def _fit(self, train: RankingDataset, mcfg: ModelConfig, tcfg: TrainConfig, dev: torch.device) -> "CoTRRPro":
        if train.labels_hidden or not np.all(np.isfinite(train.labels)):
            raise DataError("training labels are hidden or not finite.", path=train.name, field="labels")
        image, caption, visual, qrows = _groups(train, mcfg.query_dim)
        norm: dict[str, np.ndarray] = {}
        qmeans = _per_query_mean(qrows, train.query_offsets)
        for key, x in (("image", image), ("text", caption), ("visual", visual), ("query", qmeans)):
            x64 = np.asarray(x, dtype=np.float64)
            norm[key + "_mean"] = x64.mean(axis=0).astype(np.float32) if x64.shape[1] else np.zeros(0, np.float32)
            norm[key + "_sd"] = (x64.std(axis=0) + 1e-6).astype(np.float32) if x64.shape[1] else np.ones(0, np.float32)
            k = mcfg.input_rank
            if 0 < k < x64.shape[1]:
                norm[key + "_pca"] = _pca(x64, norm[key + "_mean"], norm[key + "_sd"], k)
        dims = {key: norm[key + "_pca"].shape[1] if key + "_pca" in norm else norm[key + "_mean"].shape[0]
                for key in ("image", "text", "visual", "query")}
        mcfg = replace(mcfg, image_dim=dims["image"], text_dim=dims["text"], visual_dim=dims["visual"],
                       query_dim=dims["query"] if mcfg.query_dim else 0)
        self.raw_dims_ = {"image": image.shape[1], "text": caption.shape[1], "visual": visual.shape[1],
                          "query": qrows.shape[1]}
        self.model_config_, self.train_config_, self.norm_, self.device_ = mcfg, tcfg, norm, dev
        data = self._inputs(train, with_labels=True)
        net, hist = train_model(data, mcfg, tcfg, seed=int(self.seed), device=dev)
        self.net_ = net
        self.history_ = hist
        self.n_params_ = count_parameters(net)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError("CoTRRPro.score called before fit: call fit(train) first.")

    def score(self, data: RankingDataset) -> np.ndarray:
        """Scores, shape (n_rows,) finite float64; never reads ``data.labels``.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        DataError
            Feature groups missing or of other widths than at fit time.
        """
        self._check_fitted()
        tcfg = self.train_config_
        n = cpu_threads(tcfg, self.model_config_, self.device_)
        prev = torch.get_num_threads()
        try:
            with _blas_threads(n):
                b = self._inputs(data, with_labels=False)
                if n and n != prev:
                    torch.set_num_threads(n)
                s = score_rows(self.net_, b, device=self.device_, batch_rows=tcfg.score_batch_rows)
        finally:
            if torch.get_num_threads() != prev:
                torch.set_num_threads(prev)
        if not np.all(np.isfinite(s)):  # pragma: no cover - a diverged fit
            raise RuntimeError("CoTRRPro produced non-finite scores (the fit diverged); lower lr.")
        return s

    def fit_history(self) -> dict[str, list[float]]:
        """``{"train_loss": [...], "val_loss": [...]}`` per epoch (empty lists before fit)."""
        h = getattr(self, "history_", None) or {}
        return {"train_loss": list(h.get("train_loss", [])), "val_loss": list(h.get("val_loss", []))}

    # ----------------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a checkpoint (weights, configs, normalisation, history) with ``torch.save``."""
        self._check_fitted()
        h = {k: v for k, v in self.history_.items() if isinstance(v, (int, float, str, bool, list))}
        torch.save({
            "format": _CHECKPOINT_FORMAT,
            "seed": int(self.seed), "preset": str(self.preset), "scenario": str(self.scenario),
            "params": {k: v for k, v in self.params.items() if isinstance(v, (int, float, str, bool))},
            "model_config": asdict(self.model_config_), "train_config": asdict(self.train_config_),
            "state_dict": {k: v.detach().cpu() for k, v in self.net_.state_dict().items()},
            "norm": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.norm_.items()},
            "raw_dims": {k: int(v) for k, v in self.raw_dims_.items()},
            "history": h,
        }, os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str = "cpu") -> "CoTRRPro":
        """Read a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``)."""
        try:
            ck = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        except Exception as e:
            raise DataError(f"cannot read a CoTRR-Pro checkpoint: {type(e).__name__}: {e}", path=os.fspath(path)) from e
        if not isinstance(ck, dict) or ck.get("format") != _CHECKPOINT_FORMAT:
            raise DataError(f"not a CoTRR-Pro checkpoint (expected format {_CHECKPOINT_FORMAT!r}).", path=os.fspath(path))
        m = cls(seed=ck["seed"], preset=ck["preset"], device=device, scenario=ck["scenario"], **ck["params"])
        m.model_config_ = ModelConfig(**ck["model_config"])
        m.train_config_ = TrainConfig(**ck["train_config"])
        m.device_ = resolve_device(device)
        net = CoTRRNet(m.model_config_)
        net.load_state_dict(ck["state_dict"])
        m.net_ = net.to(m.device_).eval()
        m.norm_ = {k: v.numpy() for k, v in ck["norm"].items()}
        m.raw_dims_ = {k: int(v) for k, v in ck["raw_dims"].items()}
        m.history_ = dict(ck["history"])
        m.n_params_ = count_parameters(net)
        return m

    def __repr__(self) -> str:
        state = f", fitted: {self.n_params_:,} params" if hasattr(self, "net_") else ""
        return f"CoTRRPro(seed={self.seed}, preset={self.preset!r}, device={self.device!r}{state})"


def make_model(seed: int = 0, scenario: str = "clean", preset: str = "auto", device: str = "cpu",
               **params: Any) -> CoTRRPro:
    """Factory of the ``reference`` plugin: a fresh, unfitted :class:`CoTRRPro`.

    Parameters
    ----------
    seed : int, default 0
    scenario : str, default "clean"
        Names the bundled data (see :func:`default_data`); not used by the model.
    preset : {"auto", "quick", "full"}, default "auto"
    device : {"cpu", "cuda", "auto"}, default "cpu"
    **params
        Model / training overrides; data-generation keys are accepted and ignored.

    Raises
    ------
    ConfigError
        Unknown preset, device, scenario or parameter, or a bad value -- at construction, so a
        typo fails before any training.
    """
    from reference_model.synthetic import SCENARIOS

    if str(scenario).lower() not in SCENARIOS:
        raise ConfigError(f"reference model: unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}.")
    model_params = {k: v for k, v in params.items() if k not in _GEN_KEYS}
    dev = resolve_device(device)
    resolve_preset(preset, str(dev))
    preset_configs(preset, str(dev), **model_params)  # validate now; raises ConfigError
    return CoTRRPro(seed=int(seed), preset=str(preset), device=str(device), scenario=str(scenario), **model_params)


def default_data(seed: int = 0, scenario: str = "clean", **ignored: Any) -> Split:
    """The bundled data of ``scenario`` (see :func:`reference_model.synthetic.generate`).

    Keys of ``generate`` among ``ignored`` (``n_train_queries`` ...) are honoured; the rest
    (model parameters such as ``preset``) are ignored.
    """
    kw = {k: v for k, v in ignored.items() if k in _GEN_KEYS}
    return generate(seed=int(seed), scenario=str(scenario), **kw)


def _declared_params() -> dict[str, dict[str, Any]]:
    """``make_model.params`` (shown by ``audit list``): every ``--model-param`` key, read from
    the code that consumes it (scenarios, presets, the config dataclasses, ``generate``)."""
    from dataclasses import fields

    from reference_model.config import PRESETS
    from reference_model.synthetic import SCENARIOS

    out: dict[str, dict[str, Any]] = {
        "scenario": {"default": "clean", "choices": list(SCENARIOS), "group": "data",
                     "help": "which bundled data set default_data generates: clean, the V2.0 leak, a shifted synthetic set, "
                             "or a candidate without real gain"},
        "preset": {"default": "auto", "choices": ["auto", *PRESETS], "group": "model",
                   "help": "network and training size; auto = full on CUDA, quick on the CPU"},
        "device": {"default": "cpu", "choices": ["cpu", "cuda", "auto"], "group": "model",
                   "help": "set by audit run --device"},
    }
    for group, cls in (("model", ModelConfig), ("training", TrainConfig)):
        for f in fields(cls):
            by_preset = {name: getattr(cfgs[0 if cls is ModelConfig else 1], f.name) for name, cfgs in PRESETS.items()}
            values = set(map(repr, by_preset.values()))
            default = (next(iter(by_preset.values())) if len(values) == 1
                       else " / ".join(f"{v} ({k})" for k, v in by_preset.items()))
            out[f.name] = {"default": default, "group": group, "help": f"{cls.__name__}.{f.name}"}
    for name, prm in inspect.signature(generate).parameters.items():
        if name in _GEN_KEYS:
            out[name] = {"default": prm.default, "group": "data", "help": "reference_model.synthetic.generate"}
    return out


make_model.params = _declared_params()  # type: ignore[attr-defined]
make_model.default_data = default_data  # type: ignore[attr-defined]
make_model.default_baseline = "reference_model.plugin:make_v1_baseline"  # type: ignore[attr-defined]
