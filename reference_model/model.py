"""CoTRR-Pro: a tri-modal (image / text / visual) cross-attention reranker, in one readable file.

Every candidate row becomes three tokens -- its image, caption-text and visual descriptors,
each projected to ``hidden`` -- and the query's text embedding becomes one more token,
projected **once per query** (not once per candidate) and shared by all the query's
candidates through an index. Each fusion layer lets the three candidate tokens attend to each
other and to their query token (multi-head attention over 4 keys), then applies a
feed-forward block. The ranking head reads the pooled candidate tokens *and* every layer's
pre-softmax attention logits from each candidate token to the query token: those logits are
learned bilinear query-candidate similarities, one per head and token, and reading them
directly is what lets a small model learn "does this candidate match this query" from a few
hundred queries (an MLP has to discover multiplicative interactions on its own, slowly).

Why hand-written attention: the sequence is only 3 tokens long (4 keys), so a fused QKV
projection plus two ``einsum`` calls is both simpler and faster than a generic
``nn.MultiheadAttention``, and free of fused-kernel size limits (the cuDNN MHA path of
``nn.TransformerEncoder`` failed at 4,096 queries a batch on an H200). The batch dimension is
rows, so a batch of any size is just a bigger matrix multiply.

The model is *pointwise given the query*: a candidate's score depends on its own features and
its query's embedding only, never on the other candidates -- which is what makes the auditor's
query-independence and row-order checks hold by construction. Listwise training happens in
the loss (:mod:`reference_model.losses`).

Shapes: ``N`` candidate rows, ``Q`` queries, ``T = 3`` candidate tokens, ``S = T + 1`` keys,
``H`` hidden, ``nh`` heads, ``hd = H / nh``, ``L`` layers.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from reference_model.config import ModelConfig

__all__ = ["FusionLayer", "CoTRRNet", "count_parameters"]


class FusionLayer(nn.Module):
    """Pre-LayerNorm attention + feed-forward block over 3 candidate tokens and 1 query token.

    The query token is memory (keys and values only, like the encoder output in
    cross-attention); its keys/values reuse this layer's QKV weights, so the layer has exactly
    the parameters of a standard transformer encoder layer.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        H = cfg.hidden
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        self.ln1 = nn.LayerNorm(H)
        self.qkv = nn.Linear(H, 3 * H)  # fused Q, K, V projection
        self.proj = nn.Linear(H, H)
        self.ln2 = nn.LayerNorm(H)
        self.fc1 = nn.Linear(H, cfg.ffn)
        self.fc2 = nn.Linear(cfg.ffn, H)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mem: torch.Tensor | None,
                qidx: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Update candidate tokens.

        Parameters
        ----------
        x : Tensor, shape (N, T, H)
            Candidate tokens.
        mem : Tensor, shape (Q, H), or None
            Query tokens (one per query), not updated by the layer.
        qidx : LongTensor, shape (N,)
            Row -> query position in ``mem``.

        Returns
        -------
        x : Tensor, shape (N, T, H)
        match : Tensor, shape (N, nh, T), or None
            Pre-softmax attention logits of each candidate token to the query token: a learned
            bilinear query-candidate similarity per head, read by the ranking head.
        """
        N, T, H = x.shape
        nh, hd = self.heads, self.head_dim
        h = self.ln1(x)
        q, k, v = self.qkv(h).view(N, T, 3, nh, hd).unbind(2)  # each (N, T, nh, hd)
        if mem is not None:
            # keys/values of the query token: computed once per query, then gathered per row
            kv = F.linear(self.ln1(mem), self.qkv.weight[H:], self.qkv.bias[H:])  # (Q, 2H)
            # index_select, not kv[qidx]: its backward (index_add) is deterministic on the CPU,
            # the advanced-indexing backward (index_put_ with accumulate) is not with >1 thread
            km, vm = torch.index_select(kv, 0, qidx).view(N, 2, nh, hd).unbind(1)  # each (N, nh, hd)
            k = torch.cat([k, km.unsqueeze(1)], dim=1)  # (N, S, nh, hd)
            v = torch.cat([v, vm.unsqueeze(1)], dim=1)  # (N, S, nh, hd)
        att = torch.einsum("nthd,nshd->nhts", q, k) * (1.0 / math.sqrt(hd))  # (N, nh, T, S)
        match = att[..., T] if mem is not None else None  # (N, nh, T) logits to the query token
        att = self.drop(att.softmax(dim=-1))
        y = torch.einsum("nhts,nshd->nthd", att, v).reshape(N, T, H)  # (N, T, H)
        x = x + self.drop(self.proj(y))
        x = x + self.drop(self.fc2(self.drop(F.gelu(self.fc1(self.ln2(x))))))
        return x, match


class CoTRRNet(nn.Module):
    """The CoTRR-Pro network: modality projections, fusion stack, ranking head.

    Parameters
    ----------
    cfg : ModelConfig

    Notes
    -----
    The ranking head's weight starts at zero, so an untrained network scores every candidate
    alike (ties) instead of carrying a random preference that could look like signal.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        H = cfg.hidden
        self.proj_image = nn.Linear(cfg.image_dim, H)
        self.proj_text = nn.Linear(cfg.text_dim, H)
        self.proj_visual = nn.Linear(cfg.visual_dim, H)
        self.proj_query = nn.Linear(cfg.query_dim, H) if cfg.query_dim > 0 else None
        self.layers = nn.ModuleList(FusionLayer(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(H)
        # head input: pooled tokens + every layer's candidate->query attention logits
        self.n_match = cfg.layers * cfg.heads * 3 if cfg.query_dim > 0 else 0
        self.head = nn.Linear(H + self.n_match, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def encode_candidates(self, image: torch.Tensor, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Project the three modalities to tokens: (N, Di), (N, Dt), (N, Dv) -> (N, 3, H)."""
        return torch.stack([self.proj_image(image), self.proj_text(text), self.proj_visual(visual)], dim=1)

    def encode_query(self, query: torch.Tensor | None) -> torch.Tensor | None:
        """Project query text embeddings once per query: (Q, Dq) -> (Q, H); None without a query token."""
        if self.proj_query is None or query is None:
            return None
        return self.proj_query(query)

    def forward(self, image: torch.Tensor, text: torch.Tensor, visual: torch.Tensor,
                query: torch.Tensor | None = None, qidx: torch.Tensor | None = None) -> torch.Tensor:
        """Score candidates.

        Parameters
        ----------
        image : Tensor, shape (N, image_dim)
        text : Tensor, shape (N, text_dim)
            Candidate caption embeddings.
        visual : Tensor, shape (N, visual_dim)
        query : Tensor, shape (Q, query_dim), optional
            One embedding per query (required when ``query_dim > 0``).
        qidx : LongTensor, shape (N,), optional
            Row -> query position in ``query``.

        Returns
        -------
        Tensor, shape (N,)
            One score per candidate (higher = more relevant).
        """
        x = self.encode_candidates(image, text, visual)  # (N, 3, H)
        mem = self.encode_query(query)  # (Q, H) or None
        if mem is not None and qidx is None:
            raise ValueError("qidx (row -> query index) is required with a query token")
        matches = []
        for layer in self.layers:
            x, match = layer(x, mem, qidx)  # (N, 3, H), (N, nh, 3)
            if match is not None:
                matches.append(match.flatten(1))
        pooled = self.ln_f(x).mean(dim=1)  # (N, H)
        feats = torch.cat([pooled, *matches], dim=1) if matches else pooled  # (N, H + L*nh*3)
        return self.head(feats).squeeze(-1)  # (N,)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))
