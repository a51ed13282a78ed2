"""The GPU check's benchmark (``benchmarks/bench_gpu.py``) without a GPU: its dry run puts the
torch path on CPU tensors, so the agreement checks and the script's plumbing are tested here and
only the figures need a lent card (``benchmarks/gpu_check.sh``)."""
from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

pytest.importorskip("torch")


def test_dry_run_agrees_with_the_cpu_path(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(BENCH / "bench_gpu.py"), "--device", "cpu", "--small",
                           "--json", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks pass" in proc.stdout
    assert "command: python benchmarks/bench_gpu.py --device cpu --small" in proc.stdout
    rows = json.loads(out.read_text())
    device_rows = [r for r in rows["stats"] if r["impl"].startswith("torch")]
    assert {r["work"] for r in device_rows} == {"sign-flip", "BCa bootstrap"}
    assert all(r["check"].startswith("agrees") for r in device_rows)
    (nn,) = rows["neighbors"]
    assert nn["impl"] == "torch:cpu" and nn["check"].startswith("agrees with numpy on 1,000 rows")


def test_a_disagreeing_device_path_is_reported(monkeypatch):
    sys.path.insert(0, str(BENCH))
    try:
        bench_gpu = importlib.import_module("bench_gpu")
    finally:
        sys.path.remove(str(BENCH))
    real = bench_gpu.S.sign_flip_test

    def off_by_a_lot(d, **kw):  # a device path with a planted bug: p shifted by 0.2
        r = real(d, **kw)
        return dataclasses.replace(r, p_value=r.p_value + 0.2) if kw.get("_backend") == "torch" else r

    monkeypatch.setattr(bench_gpu.S, "sign_flip_test", off_by_a_lot)
    rows, ok = bench_gpu.stats_part("cpu", 2000, 2000, [2000])
    assert not ok
    sf = [r for r in rows if r["work"] == "sign-flip" and r["impl"].startswith("torch")]
    assert sf and sf[0]["check"].startswith("DISAGREE")
    assert all(r["check"].startswith(("agrees", "reference")) for r in rows if r["work"] == "BCa bootstrap")


def test_cuda_requested_without_a_gpu_exits_2():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = subprocess.run([sys.executable, str(BENCH / "bench_gpu.py")], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert "torch finds no CUDA device here; use --device cpu" in proc.stderr
