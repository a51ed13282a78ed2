"""A PyTorch listwise ranker (an MLP trained with the ListNet loss) as a rank-auditor plugin.

Check:  audit check-plugin examples/plugins/torch_listnet.py:make_model
Audit:  audit run --model examples/plugins/torch_listnet.py:make_model \
            --train tests/data/ltr/rank.train --test tests/data/ltr/rank.test --format letor

What a PyTorch model needs to be audited, shown on a small one:

- ``fit(train)`` reads the features (``train.feature_matrix()``), labels and the query
  structure (``train.query_index``, ``train.n_queries``; see auditor/protocol.py for every
  member) and returns ``self``; ``score(data)`` never reads ``data.labels``.
- Scores must not depend on the other queries scored in the same call: this MLP scores each
  row on its own (the listwise part is only in the loss), so that holds by construction.
- ``fit_history()`` returns per-epoch ``train_loss`` / ``val_loss``: the random-label audit
  plots them. Training stops early when the validation loss (20% of the training queries)
  has not improved for ``patience`` epochs, so a fit on shuffled labels, which has nothing
  to learn, usually stops sooner than a fit on the true labels: the curves end at different
  epochs.
- Same seed, same scores: every random draw comes from the seed, on one CPU thread.

Parameters (``--model-param key=value``): ``hidden`` (64), ``lr`` (0.01), ``max_epochs`` (40),
``patience`` (5), ``batch_queries`` (32), ``weight_decay`` (1e-4), ``device`` (cpu).
"""
from __future__ import annotations

import numpy as np


class TorchListNet:
    """Two-layer MLP scoring each row; trained per query with the ListNet top-one loss."""

    def __init__(self, seed: int = 0, hidden: int = 64, lr: float = 0.01, max_epochs: int = 40, patience: int = 5,
                 batch_queries: int = 32, weight_decay: float = 1e-4, device: str = "cpu") -> None:
        self.seed, self.hidden, self.lr = int(seed), int(hidden), float(lr)
        self.max_epochs, self.patience, self.batch_queries = int(max_epochs), int(patience), int(batch_queries)
        self.weight_decay, self.device = float(weight_decay), str(device)

    # --------------------------------------------------------------- training
    @staticmethod
    def _listnet_loss(scores, labels, group, n_groups):
        """Mean over queries of the cross-entropy between softmax(labels) and softmax(scores)."""
        import torch

        def group_log_softmax(x):
            peak = torch.full((n_groups,), -torch.inf, dtype=x.dtype).scatter_reduce(0, group, x, "amax")
            z = torch.exp(x - peak[group])
            total = torch.zeros(n_groups, dtype=x.dtype).index_add(0, group, z)
            return x - peak[group] - torch.log(total[group])

        target = torch.exp(group_log_softmax(labels))
        per_query = torch.zeros(n_groups, dtype=scores.dtype).index_add(0, group, -target * group_log_softmax(scores))
        return per_query.mean()

    def fit(self, train) -> "TorchListNet":
        import torch

        torch.set_num_threads(1)
        gen = torch.Generator().manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        X = train.feature_matrix()
        self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0) + 1e-9
        Z = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32)
        y = torch.tensor(train.labels, dtype=torch.float32)  # a copy: the dataset's arrays are read-only
        q = train.query_index                               # (n_rows,) query position 0..n_queries-1
        order = rng.permutation(train.n_queries)
        n_val = max(1, train.n_queries // 5) if train.n_queries >= 5 else 0
        val_q, fit_q = set(order[:n_val].tolist()), order[n_val:]

        net = torch.nn.Sequential(torch.nn.Linear(Z.shape[1], self.hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(self.hidden, 1))
        with torch.no_grad():                                # seeded initialisation
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * (0.1 if p.ndim > 1 else 0.0))
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)

        def rows_of(queries):
            mask = np.isin(q, np.asarray(sorted(queries), dtype=np.int64))
            idx = np.flatnonzero(mask)
            _, group = np.unique(q[idx], return_inverse=True)   # regroup as 0..k-1
            return torch.as_tensor(idx), torch.as_tensor(group), int(group.max()) + 1

        val = rows_of(val_q) if n_val else None
        self.history_ = {"train_loss": [], "val_loss": []}
        best, best_state, waited = np.inf, None, 0
        for _ in range(self.max_epochs):
            net.train()
            losses = []
            for start in range(0, len(fit_q), self.batch_queries):
                idx, group, k = rows_of(fit_q[start:start + self.batch_queries])
                loss = self._listnet_loss(net(Z[idx]).squeeze(1), y[idx], group, k)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            fit_q = fit_q[rng.permutation(len(fit_q))]       # next epoch's batches
            self.history_["train_loss"].append(float(np.mean(losses)))
            if val is None:
                continue
            net.eval()
            with torch.no_grad():
                v = float(self._listnet_loss(net(Z[val[0]]).squeeze(1), y[val[0]], val[1], val[2]))
            self.history_["val_loss"].append(v)
            if v < best - 1e-6:
                best, waited = v, 0
                best_state = {k: t.clone() for k, t in net.state_dict().items()}
            else:
                waited += 1
                if waited >= self.patience:                  # early stopping
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        self.net_ = net.eval()
        return self

    def fit_history(self) -> dict[str, list[float]]:
        return self.history_

    # --------------------------------------------------------------- scoring
    def score(self, data) -> np.ndarray:
        if not hasattr(self, "net_"):
            raise RuntimeError("TorchListNet.score called before fit")
        import torch

        Z = torch.as_tensor((data.feature_matrix() - self.mean_) / self.scale_, dtype=torch.float32)
        with torch.no_grad():
            return self.net_(Z).squeeze(1).double().numpy()          # (n_rows,), row by row


def make_model(seed: int = 0, **params) -> TorchListNet:
    """Factory: an unfitted listwise MLP."""
    return TorchListNet(seed=seed, **params)
