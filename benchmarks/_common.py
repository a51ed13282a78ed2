"""Helpers shared by the benchmark scripts: the machine line and best-of-N timing."""
from __future__ import annotations

import gc
import os
import platform
import subprocess
import time
from typing import Any, Callable

import numpy as np


def cpu_model() -> str:
    """``lscpu``'s model name and the cores this process may use."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(x.split(":", 1)[1].strip() for x in out.splitlines() if x.startswith("Model name"))
    except Exception:
        model = platform.processor() or platform.machine()
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def best_of(fn: Callable[[], Any], reps: int) -> tuple[float, float, Any, float]:
    """(best wall s, median wall s, result, best CPU s of this process, all threads)."""
    times, cpu, out = [], [], None
    for _ in range(reps):
        gc.collect()
        c = time.process_time()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return min(times), float(np.median(times)), out, min(cpu)


def interleaved(fns: dict[str, Callable[[], Any]], reps: int) -> dict[str, tuple[float, float, Any, float]]:
    """Time every function ``reps`` times, taking turns (a, b, c, a, b, c, ...).

    Machine load then hits every contender alike, and each gets the same number of repeats.
    Returns ``{name: (best wall s, median wall s, last result, best CPU s of this process)}``.
    """
    walls: dict[str, list[float]] = {k: [] for k in fns}
    cpus: dict[str, list[float]] = {k: [] for k in fns}
    out: dict[str, Any] = {}
    for _ in range(reps):
        for name, fn in fns.items():
            gc.collect()
            c = time.process_time()
            t = time.perf_counter()
            out[name] = fn()
            walls[name].append(time.perf_counter() - t)
            cpus[name].append(time.process_time() - c)
    return {k: (min(walls[k]), float(np.median(walls[k])), out[k], min(cpus[k])) for k in fns}
