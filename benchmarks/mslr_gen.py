"""MSLR-shaped synthetic LETOR data: the size and shape of MSLR-WEB30K, with a weak fixed signal.

    python benchmarks/mslr_gen.py --rows 1000000 --out /tmp/mslr1m [--seed 0] [--format letor npz]

writes ``train.txt`` (``--rows`` rows) and ``test.txt`` (a third of that) in LETOR / svmlight
text, and/or ``train.npz`` / ``test.npz`` (the arrays :func:`auditor.loaders.read_npz` reads).
Both formats hold the same numbers: every value is a decimal with at most 4 places, written
exactly, so a file read back equals the generated array bit for bit.

Shape (what MSLR-WEB30K looks like, Qin & Liu 2013):

- 136 dense features; the first 40 are non-negative integer counts (term frequencies, lengths,
  link counts in MSLR), the other 96 real-valued scores in [0, 100) with 4 decimals;
- relevance labels 0-4 in MSLR-WEB30K's proportions (about 51% / 33% / 13% / 2% / 1%);
- query sizes log-normal around 120 candidates (5 to 600), rows of a query contiguous;
- a weak fixed signal: a latent relevance (a per-query offset plus per-row noise) sets the
  labels; 16 of the 136 columns carry a small multiple of it (the weights are fixed, not drawn
  from ``--seed``, so train and test of every seed share one relationship), 8 more carry the
  per-query offset only (features that cannot rank within a query), the rest is noise.
  On 20k rows the LightGBM example reaches nDCG@10 0.51 over query-grouped folds (stability
  audit), and no single column alone reaches a fifth of the ideal's gain over chance.

Deterministic by ``--seed`` (train uses stream ``(seed, "train")``, test ``(seed, "test")``;
test query ids start after train's). Generation and writing are vectorised: each chunk of
queries becomes one fixed-width byte matrix (every field zero-padded to its width, which
LETOR parsers read as the same number), without a per-row formatting loop: 1M + 333k rows,
text and NPZ, took 199 s under load 13 on 2 shared cores (100k + 33k: 12.5 s).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

N_FEATURES = 136
N_COUNT = 40                      # integer columns 1..40
COUNT_DIGITS = 4                  # counts 0..9999
FLOAT_INT_DIGITS = 2              # reals 0..99.9999
FLOAT_DECIMALS = 4
#: MSLR-WEB30K label proportions (all folds together), labels 0..4
LABEL_P = np.array([0.514, 0.325, 0.134, 0.019, 0.008])
MEAN_QUERY = 120
QID_BASE = 1_000_000             # 7-digit query ids without leading zeros
SIGNAL_SEED = 20260417           # the fixed relationship between latent relevance and features


def _fixed_weights() -> tuple[np.ndarray, np.ndarray]:
    """(row-signal weight, query-offset weight) per column, the same for every --seed."""
    r = np.random.default_rng(SIGNAL_SEED)
    w_row = np.zeros(N_FEATURES)
    w_q = np.zeros(N_FEATURES)
    sig = r.choice(N_FEATURES, size=16, replace=False)
    w_row[sig] = r.uniform(0.08, 0.3, size=16) * r.choice([-1.0, 1.0], size=16)
    rest = np.setdiff1d(np.arange(N_FEATURES), sig)
    qcols = r.choice(rest, size=8, replace=False)
    w_q[qcols] = r.uniform(0.5, 1.0, size=8)
    return w_row, w_q


def query_sizes(n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Query sizes summing to exactly ``n_rows``: log-normal around MEAN_QUERY, 5..600."""
    sizes: list[np.ndarray] = []
    total = 0
    while total < n_rows:
        s = np.clip(np.rint(rng.lognormal(np.log(MEAN_QUERY) - 0.18, 0.6, size=max(16, n_rows // MEAN_QUERY))),
                    5, 600).astype(np.int64)
        sizes.append(s)
        total += int(s.sum())
    s = np.concatenate(sizes)
    cs = np.cumsum(s)
    k = int(np.searchsorted(cs, n_rows))          # first query reaching n_rows
    s = s[: k + 1].copy()
    s[-1] -= int(cs[k] - n_rows)
    if s[-1] <= 0:                                 # cannot happen (cs[k] >= n_rows > cs[k-1]), kept simple
        s = s[:-1]
    return s


def generate_chunk(sizes: np.ndarray, rng: np.random.Generator,
                   thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels int (n,), features float64 (n, 136)) for queries of ``sizes``.

    Values are exact 4-decimal numbers (k / 10**4) so text and arrays agree bit for bit.
    """
    w_row, w_q = _fixed_weights()
    n = int(sizes.sum())
    q_off = np.repeat(rng.normal(0.0, 0.7, size=sizes.size), sizes)
    z = q_off + rng.normal(0.0, 1.0, size=n)                         # latent relevance
    labels = np.searchsorted(thresholds, z).astype(np.int64)          # 0..4
    # what the features see: the label's level plus noise (a weak, noisy view of relevance)
    seen = labels - 0.8 + 0.5 * rng.normal(size=n)
    noise = rng.normal(size=(n, N_FEATURES))
    raw = noise + seen[:, None] * w_row[None, :] + q_off[:, None] * w_q[None, :]
    X = np.empty((n, N_FEATURES))
    # counts: Poisson around exp(1.2 + 0.6 * raw), capped to their digits
    lam = np.exp(1.2 + 0.6 * raw[:, :N_COUNT])
    X[:, :N_COUNT] = np.minimum(rng.poisson(np.minimum(lam, 5000.0)), 10**COUNT_DIGITS - 1)
    # reals in [0, 100) with 4 decimals
    top = 10 ** (FLOAT_INT_DIGITS + FLOAT_DECIMALS) - 1
    k = np.clip(np.rint((50.0 + 12.0 * raw[:, N_COUNT:]) * 10**FLOAT_DECIMALS), 0, top)
    X[:, N_COUNT:] = k / 10**FLOAT_DECIMALS
    return labels, X


def label_thresholds() -> np.ndarray:
    """Cut points on the latent N(0, 0.7^2 + 1) giving MSLR's label proportions."""
    from scipy.stats import norm

    sd = float(np.hypot(0.7, 1.0))
    return norm.ppf(np.cumsum(LABEL_P)[:-1]) * sd


class _LetorTemplate:
    """Fixed-width LETOR row: ``L qid:QQQQQQQ 1:CCCC ... 41:RR.RRRR ...\\n`` as a byte template
    plus the byte position of every digit, so a chunk is written by a few vectorised assignments."""

    def __init__(self) -> None:
        parts = [b"0", b" qid:", b"0" * 7]
        pos: dict[str, list] = {"label": [0], "qid": [], "count": [], "real": []}
        cur = 1 + 5
        pos["qid"] = list(range(cur, cur + 7))
        cur += 7
        for j in range(N_FEATURES):
            head = f" {j + 1}:".encode()
            parts.append(head)
            cur += len(head)
            if j < N_COUNT:
                parts.append(b"0" * COUNT_DIGITS)
                pos["count"].append(list(range(cur, cur + COUNT_DIGITS)))
                cur += COUNT_DIGITS
            else:
                field = b"0" * FLOAT_INT_DIGITS + b"." + b"0" * FLOAT_DECIMALS
                parts.append(field)
                digits = [cur + i for i in range(len(field)) if field[i:i + 1] != b"."]
                pos["real"].append(digits)
                cur += len(field)
        parts.append(b"\n")
        self.row = np.frombuffer(b"".join(parts), dtype=np.uint8)
        self.width = self.row.size
        self.qid = np.array(pos["qid"])
        self.count = np.array(pos["count"])        # (40, COUNT_DIGITS)
        self.real = np.array(pos["real"])          # (96, int + decimal digits)

    @staticmethod
    def _fill(buf: np.ndarray, positions: np.ndarray, values: np.ndarray) -> None:
        """Write non-negative integers ``values`` (n, c) as zero-padded digits at ``positions`` (c, w)."""
        w = positions.shape[1]
        v = values.astype(np.int64)
        for d in range(w):
            buf[:, positions[:, w - 1 - d]] = (v % 10 + 48).astype(np.uint8)
            v //= 10

    def render(self, labels: np.ndarray, qids: np.ndarray, X: np.ndarray) -> bytes:
        n = labels.size
        buf = np.tile(self.row, (n, 1))
        buf[:, 0] = (labels + 48).astype(np.uint8)
        self._fill(buf, self.qid[None, :], qids[:, None])
        self._fill(buf, self.count, np.rint(X[:, :N_COUNT]))
        self._fill(buf, self.real, np.rint(X[:, N_COUNT:] * 10**FLOAT_DECIMALS))
        return buf.tobytes()


def write_split(path_stem: Path, n_rows: int, seed: int, role: str, qid_start: int, formats: list[str],
                chunk_rows: int = 200_000) -> tuple[int, int]:
    """Generate ``n_rows`` rows and write them; ``(n_queries, last qid + 1)``."""
    from auditor.context import derive_seed

    rng = np.random.default_rng(derive_seed(seed, "mslr_gen", role))
    sizes = query_sizes(n_rows, rng)
    thr = label_thresholds()
    tpl = _LetorTemplate()
    want_npz = "npz" in formats
    if want_npz:
        all_labels = np.empty(n_rows, dtype=np.float64)
        all_qid = np.empty(n_rows, dtype=np.int64)
        all_X = np.empty((n_rows, N_FEATURES), dtype=np.float64)
    f = open(path_stem.with_suffix(".txt"), "wb") if "letor" in formats else None
    try:
        q = 0
        row = 0
        while q < sizes.size:
            cs = np.cumsum(sizes[q:])
            k = max(1, int(np.searchsorted(cs, chunk_rows)))
            chunk = sizes[q:q + k]
            labels, X = generate_chunk(chunk, rng, thr)
            qids = np.repeat(np.arange(qid_start + q, qid_start + q + chunk.size, dtype=np.int64), chunk)
            if f is not None:
                f.write(tpl.render(labels, qids, X))
            if want_npz:
                m = labels.size
                all_labels[row:row + m] = labels
                all_qid[row:row + m] = qids
                all_X[row:row + m] = X
            row += labels.size
            q += chunk.size
    finally:
        if f is not None:
            f.close()
    if want_npz:
        np.savez(path_stem.with_suffix(".npz"), qid=all_qid, labels=all_labels, features=all_X)
    return int(sizes.size), qid_start + int(sizes.size)


def generate(out: str | Path, rows: int, *, seed: int = 0, formats: tuple[str, ...] = ("letor",),
             test_fraction: float = 1 / 3) -> dict[str, Path]:
    """Write train and test (``rows`` and ``rows * test_fraction`` rows) into ``out``; their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fm = list(formats)
    nq_train, next_qid = write_split(out / "train", rows, seed, "train", QID_BASE, fm)
    write_split(out / "test", max(1, int(round(rows * test_fraction))), seed, "test", next_qid, fm)
    paths = {}
    for f in fm:
        suf = ".txt" if f == "letor" else ".npz"
        paths[f"train.{f}"] = out / f"train{suf}"
        paths[f"test.{f}"] = out / f"test{suf}"
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, required=True, help="training rows (test gets a third of that)")
    ap.add_argument("--out", required=True, help="directory for train.* and test.*")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", nargs="+", choices=["letor", "npz"], default=["letor"])
    a = ap.parse_args(argv)
    if a.rows < 1:
        ap.error("--rows must be >= 1")
    t = time.perf_counter()
    paths = generate(a.out, a.rows, seed=a.seed, formats=tuple(a.format))
    took = time.perf_counter() - t
    for k, p in paths.items():
        print(f"{k}: {p} ({os.path.getsize(p) / 1e6:.0f} MB)")
    print(f"generated {a.rows} + {int(round(a.rows / 3))} rows in {took:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
