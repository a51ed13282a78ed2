"""benchmarks/bench_near_dup.py: the MSLR-shaped generator has the documented shape, and the recall
mode runs end to end on a small split (the candidate forest against the exact search)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_near_dup  # noqa: E402


def test_mslr_like_shape_is_deterministic():
    d = bench_near_dup.mslr_like(2000, seed=1)
    X = d.features["f"]
    assert d.n_rows == 2000 and X.shape == (2000, 136)
    assert np.array_equal(X[:, :40], np.round(X[:, :40]))        # 40 integer count columns
    assert set(np.unique(d.labels).tolist()) <= {0, 1, 2, 3, 4}
    assert 60 <= np.median(d.query_sizes) <= 180
    assert np.array_equal(bench_near_dup.mslr_like(2000, seed=1).features["f"], X)


def test_recall_mode_reports_every_planted_copy_found(capsys):
    bench_near_dup.recall(argparse.Namespace(n_train=3000, seeds=1, noise=[0.01]))
    out = capsys.readouterr().out
    last = [ln for ln in out.splitlines() if ln.startswith("planted rows whose nearest")][0]
    found, total = last.split(": ")[1].split(" ")[0].split("/")
    assert int(total) > 0 and int(found) == int(total)
