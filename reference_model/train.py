"""Fitting CoTRR-Pro: batching by query, AdamW, bf16 autocast on CUDA, early stopping, history.

The network is pointwise given the query (see :mod:`reference_model.model`), so a training
batch is ``batch_queries`` whole queries whose candidate rows are *flattened* into one
``(N, ...)`` matrix for the forward pass; only the loss re-pads the scores to ``(B, C)``
per query (:func:`pad_scores`). Nothing is ever padded inside the network.

Determinism (CPU): the initial weights, the validation split, the batch order, the ListMLE
tie-breaking and dropout all come from generators seeded by ``seed``; the global torch RNG
state is saved and restored around the fit (``torch.random.fork_rng``). The CPU kernels used
are deterministic, so the same seed gives bit-identical weights and scores (tested);
``deterministic=True`` additionally switches on ``torch.use_deterministic_algorithms`` for
the fit (useful on CUDA; it costs seconds of imports on first use). The thread
count follows ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` when set (the auditor's process-pool
executor pins them to 1 per worker).
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from reference_model.config import ModelConfig, TrainConfig
from reference_model.losses import combined_loss, info_nce
from reference_model.model import CoTRRNet

__all__ = ["Batchable", "train_model", "pad_scores", "score_rows", "resolve_device", "fit_context",
           "use_amp", "use_fused", "env_threads", "cpu_threads"]


@dataclass
class Batchable:
    """Model inputs of one dataset, as float32 numpy arrays (already normalised).

    Parameters
    ----------
    image : ndarray, shape (N, image_dim)
    text : ndarray, shape (N, text_dim)
        Candidate caption embeddings.
    visual : ndarray, shape (N, visual_dim)
    query : ndarray, shape (Q, query_dim)
        One query embedding per query (``query_dim`` may be 0).
    offsets : ndarray of int64, shape (Q + 1,)
        Query ``q`` owns rows ``offsets[q]:offsets[q+1]``.
    labels : ndarray, shape (N,), optional
        Only for training; never present when scoring.
    """

    image: np.ndarray
    text: np.ndarray
    visual: np.ndarray
    query: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray | None = None

    @property
    def n_queries(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def n_rows(self) -> int:
        return int(self.offsets[-1])


def resolve_device(device: str | None) -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU raises ConfigError."""
    from auditor.errors import ConfigError

    d = "auto" if device is None else str(device).lower()
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"reference model: device {device!r} requested but CUDA is not available; "
                              "use --device cpu (or auto).")
        return torch.device(d)
    if d == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"reference model: unknown device {device!r}; use auto, cpu or cuda.")


def use_amp(tcfg: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast: ``auto`` -> on for CUDA only; ``bf16`` -> always; ``off`` -> never."""
    return tcfg.amp == "bf16" or (tcfg.amp == "auto" and device.type == "cuda")


def use_fused(tcfg: TrainConfig, device: torch.device) -> bool:
    """Fused AdamW: CUDA only (``auto`` / ``on``)."""
    return device.type == "cuda" and tcfg.fused_adamw in ("auto", "on")


def env_threads() -> int:
    """Thread count from ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` (0 when unset)."""
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        v = os.environ.get(k, "").strip()
        if v.isdigit() and int(v) > 0:
            return int(v)
    return 0


def cpu_threads(tcfg: TrainConfig, mcfg: ModelConfig | None, device: torch.device) -> int:
    """Threads for a CPU fit / scoring pass (0 = leave torch's setting alone).

    ``num_threads`` when set; else ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``; else 1 for a small
    network (hidden <= 128): its per-step matrices are tiny, and with 2 OpenMP threads a
    ``quick`` fit took 31 s of CPU (51 s wall) instead of 2.5 s on the shared 2-core machine
    (spin-waiting threads). Larger networks keep torch's default.
    """
    if device.type != "cpu":
        return 0
    n = tcfg.num_threads or env_threads()
    if n:
        return n
    return 1 if mcfg is not None and mcfg.hidden <= 128 else 0


@contextlib.contextmanager
def fit_context(tcfg: TrainConfig, device: torch.device, seed: int,
                mcfg: ModelConfig | None = None) -> Iterator[None]:
    """Seeded, deterministic, thread-bounded scope for one fit; restores global torch state after.

    Only the CPU's RNG is forked; on CUDA the CUDA RNG is forked as well.
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    n = cpu_threads(tcfg, mcfg, device)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
        try:
            if n and n != prev_threads:
                torch.set_num_threads(n)
            if tcfg.deterministic:
                # opt-in: its first call imports compiler machinery (seconds), and the CPU kernels
                # this model uses are deterministic already; on CUDA set CUBLAS_WORKSPACE_CONFIG too
                torch.use_deterministic_algorithms(True, warn_only=True)
            yield
        finally:
            if tcfg.deterministic and not prev_det:
                torch.use_deterministic_algorithms(False)
            if torch.get_num_threads() != prev_threads:
                torch.set_num_threads(prev_threads)


def _to(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)


class _DeviceData:
    """A :class:`Batchable` moved to the device once, with index helpers for query batches."""

    def __init__(self, b: Batchable, device: torch.device) -> None:
        self.device = device
        self.image = _to(b.image, device)
        self.text = _to(b.text, device)
        self.visual = _to(b.visual, device)
        self.query = _to(b.query, device)
        self.labels = None if b.labels is None else _to(b.labels, device)
        self.offsets = np.asarray(b.offsets, dtype=np.int64)
        self.sizes = np.diff(self.offsets)

    def batch_index(self, queries: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Rows of ``queries`` (positions) and their (query-in-batch, position-in-query) coordinates.

        Returns
        -------
        rows : LongTensor, shape (N_b,)
        bi : LongTensor, shape (N_b,)
            Query position within the batch (0..B-1) -- also the row -> query index.
        pi : LongTensor, shape (N_b,)
            Candidate position within its query.
        C : int
            Largest query size in the batch.
        """
        sizes = self.sizes[queries]
        starts = self.offsets[queries]
        total = int(sizes.sum())
        bi = np.repeat(np.arange(queries.size), sizes)
        first = np.repeat(np.cumsum(sizes) - sizes, sizes)
        pi = np.arange(total) - first
        rows = np.repeat(starts, sizes) + pi
        t = lambda a: torch.from_numpy(a.astype(np.int64)).to(self.device)  # noqa: E731
        return t(rows), t(bi), t(pi), int(sizes.max()) if sizes.size else 0


def pad_scores(values: torch.Tensor, bi: torch.Tensor, pi: torch.Tensor, B: int, C: int,
               fill: float = 0.0) -> torch.Tensor:
    """Scatter flat per-row values (N,) into a padded (B, C) tensor (differentiable)."""
    out = values.new_full((B, C), fill)
    return out.index_put((bi, pi), values)


def _mask(bi: torch.Tensor, pi: torch.Tensor, B: int, C: int) -> torch.Tensor:
    m = torch.zeros((B, C), dtype=torch.bool, device=bi.device)
    m[bi, pi] = True
    return m


def _loss_kwargs(tcfg: TrainConfig, max_label: float) -> dict[str, Any]:
    return dict(w_listmle=tcfg.w_listmle, w_focal=tcfg.w_focal, w_calibration=tcfg.w_calibration,
                max_label=max_label, rel_threshold=tcfg.rel_threshold, focal_gamma=tcfg.focal_gamma,
                focal_alpha=tcfg.focal_alpha)


def _autocast(enabled: bool, device: torch.device):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _forward(net: torch.nn.Module, d: _DeviceData, queries: np.ndarray):
    rows, bi, pi, C = d.batch_index(queries)
    q = d.query[torch.from_numpy(queries.astype(np.int64)).to(d.device)] if d.query.shape[1] else None
    s = net(d.image[rows], d.text[rows], d.visual[rows], q, bi)  # (N_b,)
    return s, rows, bi, pi, C


def _evaluate(net: torch.nn.Module, d: _DeviceData, queries: np.ndarray, tcfg: TrainConfig, max_label: float,
              tie: torch.Tensor, amp: bool) -> float:
    """Mean combined loss over ``queries`` (eval mode, fixed tie-break keys), weighted by queries."""
    if queries.size == 0:
        return float("nan")
    net.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for start in range(0, queries.size, max(tcfg.batch_queries, 256)):
            qb = queries[start:start + max(tcfg.batch_queries, 256)]
            with _autocast(amp, d.device):
                s, rows, bi, pi, C = _forward(net, d, qb)
            B = qb.size
            loss = combined_loss(pad_scores(s.float(), bi, pi, B, C), pad_scores(d.labels[rows], bi, pi, B, C),
                                 _mask(bi, pi, B, C), tie_break=pad_scores(tie[rows], bi, pi, B, C),
                                 **_loss_kwargs(tcfg, max_label))
            total += float(loss) * B
            n += B
    return total / n


def _split_queries(n_queries: int, frac: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if frac <= 0 or n_queries < 5:
        return np.arange(n_queries), np.arange(0)
    n_val = max(1, int(round(frac * n_queries)))
    perm = rng.permutation(n_queries)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def train_model(data: Batchable, mcfg: ModelConfig, tcfg: TrainConfig, *, seed: int = 0,
                device: torch.device | str = "cpu", log: Any = None) -> tuple[CoTRRNet, dict[str, Any]]:
    """Fit a fresh :class:`CoTRRNet` on ``data`` (labels required).

    Parameters
    ----------
    data : Batchable
        Normalised training inputs with ``labels``.
    mcfg, tcfg : ModelConfig, TrainConfig
    seed : int, default 0
    device : torch.device or str, default "cpu"
    log : callable, optional
        ``log(epoch, train_loss, val_loss)`` after every epoch.

    Returns
    -------
    net : CoTRRNet
        In eval mode, on ``device``: the last epoch's weights, or the best validation epoch's
        with ``tcfg.restore_best`` (and a validation split).
    history : dict
        ``train_loss`` and ``val_loss`` per epoch (lists of float; ``val_loss`` is empty without
        a validation split), ``pretrain_loss``, ``best_epoch``, ``epochs``, ``stopped_early``,
        ``seconds``, ``candidates_per_s``.
    """
    if data.labels is None:
        raise ValueError("train_model needs labels")
    device = torch.device(device) if isinstance(device, str) else device
    rng = np.random.default_rng([int(seed) & 0xFFFF_FFFF, 0xC07])
    t0 = time.perf_counter()
    with fit_context(tcfg, device, seed, mcfg):
        net = CoTRRNet(mcfg).to(device)
        d = _DeviceData(data, device)
        amp = use_amp(tcfg, device)
        max_label = float(tcfg.max_label) if tcfg.max_label > 0 else max(1.0, float(np.max(data.labels)))
        tr_q, va_q = _split_queries(data.n_queries, tcfg.val_fraction, rng)
        opt_kw: dict[str, Any] = dict(lr=tcfg.lr, weight_decay=tcfg.weight_decay)
        if use_fused(tcfg, device):
            opt_kw["fused"] = True
        opt = torch.optim.AdamW(net.parameters(), **opt_kw)
        warm = max(int(tcfg.warmup_steps), 0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warm) if warm else 1.0)
        fwd_net = torch.compile(net, dynamic=True) if tcfg.compile else net
        # fixed tie-break keys for the validation loss, so it moves only when the model does
        tie_val = torch.from_numpy(rng.random(data.n_rows).astype(np.float32)).to(device)
        tgen = torch.Generator(device=device)
        tgen.manual_seed(int(rng.integers(2**62)))
        kw = _loss_kwargs(tcfg, max_label)

        history: dict[str, Any] = {"train_loss": [], "val_loss": [], "pretrain_loss": []}
        # optional contrastive pre-training: query token vs. its best candidate's pooled tokens
        for _ in range(int(tcfg.pretrain_epochs)):
            net.train()
            losses = []
            for qb in _batches(rng.permutation(tr_q), tcfg.batch_queries):
                with _autocast(amp, device):
                    rows, bi, pi, C = d.batch_index(qb)
                    lab = pad_scores(d.labels[rows], bi, pi, qb.size, C, fill=-1.0)  # (B, C)
                    best_pos = lab.argmax(dim=1)  # (B,) padding (-1) never wins
                    first_row = torch.from_numpy(d.offsets[qb]).to(device)
                    best = first_row + best_pos  # (B,) row of each query's top-graded candidate
                    cand = net.encode_candidates(d.image[best], d.text[best], d.visual[best]).mean(dim=1)  # (B, H)
                    anc = net.encode_query(d.query[torch.from_numpy(qb).to(device)])
                if anc is None:
                    break
                loss = info_nce(anc.float(), cand.float(), temperature=tcfg.infonce_temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
            history["pretrain_loss"].append(float(np.mean(losses)) if losses else float("nan"))

        best_val, best_state, best_epoch, bad = math.inf, None, 0, 0
        n_seen = 0
        stopped = False
        for epoch in range(int(tcfg.max_epochs)):
            net.train()
            tot, nq = 0.0, 0
            for qb in _batches(rng.permutation(tr_q), tcfg.batch_queries):
                with _autocast(amp, device):
                    s, rows, bi, pi, C = _forward(fwd_net, d, qb)
                B = qb.size
                tie = torch.rand(rows.shape[0], generator=tgen, device=device)
                loss = combined_loss(pad_scores(s.float(), bi, pi, B, C), pad_scores(d.labels[rows], bi, pi, B, C),
                                     _mask(bi, pi, B, C), tie_break=pad_scores(tie, bi, pi, B, C), **kw)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if tcfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), tcfg.grad_clip)
                opt.step()
                sched.step()
                tot += float(loss.detach()) * B
                nq += B
                n_seen += int(rows.shape[0])
            history["train_loss"].append(tot / max(nq, 1))
            if va_q.size:
                v = _evaluate(net, d, va_q, tcfg, max_label, tie_val, amp)
                history["val_loss"].append(v)
                if v < best_val - tcfg.min_delta:
                    best_val, best_epoch, bad = v, epoch, 0
                    if tcfg.restore_best:
                        best_state = copy.deepcopy(net.state_dict())
                else:
                    bad += 1
            else:
                best_epoch = epoch
            if log is not None:
                log(epoch, history["train_loss"][-1], history["val_loss"][-1] if va_q.size else None)
            if va_q.size and bad >= tcfg.patience:
                stopped = True
                break
        if best_state is not None and tcfg.restore_best:
            net.load_state_dict(best_state)
        net.eval()
    secs = time.perf_counter() - t0
    history.update(best_epoch=best_epoch, epochs=len(history["train_loss"]), stopped_early=stopped,
                   seconds=secs, candidates_per_s=n_seen / secs if secs > 0 else float("nan"),
                   n_train_queries=int(tr_q.size), n_val_queries=int(va_q.size), device=str(device), amp=amp)
    return net, history


def _batches(order: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, order.size, size):
        yield order[start:start + size]


def score_rows(net: CoTRRNet, data: Batchable, *, device: torch.device | str = "cpu",
               batch_rows: int = 65536, amp: bool = False) -> np.ndarray:
    """Scores of every row, float64 (N,), in batches of whole queries (about ``batch_rows`` rows).

    Each query's rows are scored in one forward pass with its own query embedding, so a
    query's scores never depend on which other queries share the batch.
    """
    device = torch.device(device) if isinstance(device, str) else device
    d = _DeviceData(data, device)
    out = np.empty(data.n_rows, dtype=np.float64)
    net.eval()
    q0 = 0
    with torch.no_grad():
        while q0 < data.n_queries:
            # grow the batch by whole queries up to batch_rows rows (at least one query)
            q1 = int(np.searchsorted(d.offsets, d.offsets[q0] + batch_rows, side="right")) - 1
            q1 = min(max(q1, q0 + 1), data.n_queries)
            qb = np.arange(q0, q1)
            with _autocast(amp, device):
                s, rows, _, _, _ = _forward(net, d, qb)
            out[int(d.offsets[q0]):int(d.offsets[q1])] = s.float().cpu().numpy().astype(np.float64)
            q0 = q1
    return out
