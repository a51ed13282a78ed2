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
