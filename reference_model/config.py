"""Configuration of CoTRR-Pro: architecture (:class:`ModelConfig`), training (:class:`TrainConfig`)
and the named presets.

Two presets:

``full``
    The seed's size: hidden 256, 8 heads, 4 fusion layers, feed-forward 2048. 5,327,713
    parameters as configured (inputs reduced to 64 principal components each);
    5,720,929 with ``input_rank=0`` (raw 512 / 512 / 256 / 512 inputs, the seed's input
    layer). Meant for a GPU. See ``docs/REFERENCE_MODEL.md``.
``quick``
    Small enough that one fit on the bundled data takes a couple of seconds on a 2-core
    CPU, so the whole audit suite (a dozen fits) runs in about a minute.

``preset="auto"`` picks ``full`` on CUDA and ``quick`` otherwise (:func:`resolve_preset`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from auditor.errors import ConfigError

__all__ = ["ModelConfig", "TrainConfig", "PRESETS", "resolve_preset", "preset_configs", "split_params",
           "config_dict"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of :class:`reference_model.model.CoTRRNet`.

    Parameters
    ----------
    image_dim : int, default 512
        Width of the candidate image embedding (feature group ``image``).
    text_dim : int, default 512
        Width of the candidate caption embedding: the last ``text_dim`` columns of group ``text``.
    visual_dim : int, default 256
        Width of the candidate visual descriptor (feature group ``visual``).
    query_dim : int, default 512
        Width of the query text embedding: the first ``query_dim`` columns of group ``text``
        (constant within a query). 0 disables the query token.
    hidden : int, default 256
        Token width inside the fusion stack.
    heads : int, default 8
        Attention heads (``hidden`` must be divisible by ``heads``).
    layers : int, default 4
        Fusion layers.
    ffn : int, default 2048
        Feed-forward width of each fusion layer.
    dropout : float, default 0.1
    input_rank : int, default 0
        When > 0, each input (image, caption, visual, query) is first projected onto its top
        ``input_rank`` principal components of the training rows (a fitted,
        frozen preprocessing step, like the feature scaling). It keeps a small-data fit from
        spending its capacity on noise directions of 512-d embeddings; 0 feeds the raw
        (standardised) embeddings, as the seed's architecture did.
    """

    image_dim: int = 512
    text_dim: int = 512
    visual_dim: int = 256
    query_dim: int = 512
    hidden: int = 256
    heads: int = 8
    layers: int = 4
    ffn: int = 2048
    dropout: float = 0.1
    input_rank: int = 0

    def __post_init__(self) -> None:
        if self.input_rank < 0:
            raise ConfigError(f"reference model: input_rank must be >= 0, got {self.input_rank!r}.")
        for f in ("image_dim", "text_dim", "visual_dim", "hidden", "heads", "layers", "ffn"):
            if int(getattr(self, f)) < 1:
                raise ConfigError(f"reference model: {f} must be a positive integer, got {getattr(self, f)!r}.")
        if self.query_dim < 0:
            raise ConfigError(f"reference model: query_dim must be >= 0, got {self.query_dim!r}.")
        if self.hidden % self.heads:
            raise ConfigError(f"reference model: hidden ({self.hidden}) must be divisible by heads ({self.heads}).")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"reference model: dropout must be in [0, 1), got {self.dropout!r}.")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


@dataclass(frozen=True)
class TrainConfig:
    """How :func:`reference_model.train.train_model` fits the network.

    Parameters
    ----------
    max_epochs : int, default 30
    patience : int, default 6
        Early stopping: stop after this many epochs without a lower validation loss; the
        weights of the best validation epoch are restored.
    restore_best : bool, default True
        Restore the weights of the best validation epoch when training ends (otherwise the
        last epoch's weights are kept, as Keras' ``EarlyStopping`` does by default).
    min_delta : float, default 1e-4
        Smallest validation-loss decrease that counts as an improvement.
    val_fraction : float, default 0.15
        Share of *training queries* held out for early stopping (whole queries, seeded).
        0 (or fewer than 5 training queries) disables the split and early stopping.
    batch_queries : int, default 32
        Queries per optimisation step (their candidates are flattened, see ``train.py``).
    lr : float, default 2e-3
    weight_decay : float, default 0.01
    warmup_steps : int, default 20
        Linear learning-rate warm-up.
    grad_clip : float, default 1.0
        Global gradient-norm clip (0 disables).
    w_listmle, w_focal, w_calibration : float, default 1.0, 0.5, 0.2
        Weights of the combined loss (the seed's ListMLE + 0.5 focal + 0.2 calibration).
    focal_gamma : float, default 2.0
    focal_alpha : float, default 0.25
    rel_threshold : float, default 1.0
        Label at or above which a candidate is "relevant" for the focal term.
    max_label : float, default 0.0
        Top grade for the calibration target ``label / max_label``; 0 = the training maximum.
    pretrain_epochs : int, default 0
        Optional InfoNCE pre-training epochs aligning the query token with the relevant
        candidates' pooled tokens (in-batch negatives).
    infonce_temperature : float, default 0.1
    amp : {"auto", "bf16", "off"}, default "auto"
        bf16 autocast: on for CUDA with ``auto``, never on the CPU unless ``bf16``.
    fused_adamw : {"auto", "on", "off"}, default "auto"
        Fused AdamW kernel (CUDA only).
    compile : bool, default False
        Wrap the network in ``torch.compile`` (worth it on a GPU for long runs).
    deterministic : bool, default False
        ``torch.use_deterministic_algorithms(True)`` during the fit (for CUDA runs; set
        ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` as well). Not needed on the CPU, whose kernels
        used here are deterministic already.
    score_batch_rows : int, default 65536
        Rows scored per forward pass.
    num_threads : int, default 0
        ``torch.set_num_threads`` during fit and score on the CPU. 0 = ``OMP_NUM_THREADS`` /
        ``MKL_NUM_THREADS`` when set, else 1 thread for a small network (hidden <= 128, the
        ``quick`` preset: 2 OpenMP threads cost 10x the CPU time on tiny matrices) and
        torch's default otherwise. The previous setting is restored afterwards.
    """

    max_epochs: int = 30
    patience: int = 6
    restore_best: bool = True
    min_delta: float = 1e-4
    val_fraction: float = 0.15
    batch_queries: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    grad_clip: float = 1.0
    w_listmle: float = 1.0
    w_focal: float = 0.5
    w_calibration: float = 0.2
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    rel_threshold: float = 1.0
    max_label: float = 0.0
    pretrain_epochs: int = 0
    infonce_temperature: float = 0.1
    amp: str = "auto"
    fused_adamw: str = "auto"
    compile: bool = False
    deterministic: bool = False
    score_batch_rows: int = 65536
    num_threads: int = 0

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            raise ConfigError(f"reference model: max_epochs must be >= 1, got {self.max_epochs!r}.")
        if self.patience < 1:
            raise ConfigError(f"reference model: patience must be >= 1, got {self.patience!r}.")
        if not 0.0 <= self.val_fraction < 0.9:
            raise ConfigError(f"reference model: val_fraction must be in [0, 0.9), got {self.val_fraction!r}.")
        if self.batch_queries < 1:
            raise ConfigError(f"reference model: batch_queries must be >= 1, got {self.batch_queries!r}.")
        if not self.lr > 0:
            raise ConfigError(f"reference model: lr must be > 0, got {self.lr!r}.")
        if min(self.w_listmle, self.w_focal, self.w_calibration) < 0:
            raise ConfigError("reference model: loss weights must be >= 0.")
        if self.w_listmle + self.w_focal + self.w_calibration <= 0:
            raise ConfigError("reference model: at least one loss weight must be > 0.")
        if self.amp not in ("auto", "bf16", "off"):
            raise ConfigError(f"reference model: amp must be auto, bf16 or off, got {self.amp!r}.")
        if self.fused_adamw not in ("auto", "on", "off"):
            raise ConfigError(f"reference model: fused_adamw must be auto, on or off, got {self.fused_adamw!r}.")


# The quick preset is sized for the 2-core CPU budget (one fit of the bundled data in about
# 2 s of CPU time); the full preset is the seed's architecture (hidden 256, 8 heads, 4 layers,
# FFN 2048). Both project each 512-d input on its top 64 principal components first: fed the
# raw embeddings, the full network overfitted the bundled 400 training queries from the first
# epoch (test nDCG@10 0.627, below the V1 baseline's 0.765; with input_rank=64: 0.849).
# Both keep the weights of the last epoch (restore_best=False): the early-stopping split
# bounds how far training runs past the best epoch, and a model fitted on shuffled labels has
# trained long enough to show its memorisation capacity (what random-label Variant B needs).
PRESETS: dict[str, tuple[ModelConfig, TrainConfig]] = {
    "full": (ModelConfig(hidden=256, heads=8, layers=4, ffn=2048, dropout=0.1, input_rank=64),
             TrainConfig(max_epochs=30, patience=4, restore_best=False, batch_queries=64, lr=1e-3,
                         warmup_steps=50)),
    "quick": (ModelConfig(hidden=48, heads=4, layers=1, ffn=96, dropout=0.0, input_rank=64),
              TrainConfig(max_epochs=12, patience=4, restore_best=False, batch_queries=16, lr=5e-3,
                          warmup_steps=20)),
}


def resolve_preset(preset: str, device: str) -> str:
    """``auto`` -> ``full`` on a CUDA device, ``quick`` otherwise; other names are checked.

    Raises
    ------
    ConfigError
        For an unknown preset name.
    """
    p = str(preset).lower()
    if p == "auto":
        return "full" if str(device).startswith("cuda") else "quick"
    if p not in PRESETS:
        raise ConfigError(f"reference model: unknown preset {preset!r}; use one of auto, {', '.join(PRESETS)}.")
    return p


_MODEL_KEYS = {f.name for f in fields(ModelConfig)}
_TRAIN_KEYS = {f.name for f in fields(TrainConfig)}


def split_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split ``--model-param`` overrides into (model, train, unknown) dicts."""
    m = {k: v for k, v in params.items() if k in _MODEL_KEYS}
    t = {k: v for k, v in params.items() if k in _TRAIN_KEYS}
    rest = {k: v for k, v in params.items() if k not in _MODEL_KEYS and k not in _TRAIN_KEYS}
    return m, t, rest


def preset_configs(preset: str, device: str = "cpu", **overrides: Any) -> tuple[ModelConfig, TrainConfig]:
    """The (model, train) configs of ``preset`` with ``overrides`` applied.

    Parameters
    ----------
    preset : {"auto", "quick", "full"}
    device : str
        Decides ``auto``.
    **overrides
        Any :class:`ModelConfig` / :class:`TrainConfig` field (e.g. ``hidden=128``, ``lr=1e-3``).

    Raises
    ------
    ConfigError
        Unknown preset, unknown override key, or a value of the wrong type.
    """
    name = resolve_preset(preset, device)
    mcfg, tcfg = PRESETS[name]
    m, t, rest = split_params(overrides)
    if rest:
        raise ConfigError(f"reference model: unknown parameter(s) {sorted(rest)}; valid: "
                          f"{sorted(_MODEL_KEYS | _TRAIN_KEYS | {'seed', 'scenario', 'preset', 'device'})}.")
    try:
        mcfg = replace(mcfg, **{k: _cast(ModelConfig, k, v) for k, v in m.items()})
        tcfg = replace(tcfg, **{k: _cast(TrainConfig, k, v) for k, v in t.items()})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"reference model: bad parameter value: {e}") from e
    return mcfg, tcfg


def _cast(cls: type, key: str, value: Any) -> Any:
    """Coerce a command-line value to the field's type (``"3"`` -> 3, ``"true"`` -> True)."""
    default = getattr(cls(), key) if cls is TrainConfig else getattr(ModelConfig(), key)
    typ = type(default)
    if typ is bool:
        if isinstance(value, str):
            low = value.strip().lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{key}={value!r} is not a boolean")
            return low in ("true", "1", "yes")
        return bool(value)
    if typ is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{key}={value!r} is not an integer")
        return int(value)
    if typ is float:
        return float(value)
    return str(value)


def config_dict(mcfg: ModelConfig, tcfg: TrainConfig) -> dict[str, Any]:
    """Both configs as one JSON-able dict (for checkpoints and reports)."""
    return {"model": asdict(mcfg), "train": asdict(tcfg)}

