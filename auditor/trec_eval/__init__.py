"""trec_eval 10.0-rc3, reproduced: readers, ranked judgments, the measure registry and the command.

``audit trec-eval`` (:mod:`auditor.trec_eval.command`) prints the same lines as the C
trec_eval for every measure, from qrels (:mod:`~auditor.trec_eval.ranked`), preference
judgments (:mod:`~auditor.trec_eval.prefs`) or multi-assessor qrels
(:mod:`~auditor.trec_eval.judgment_groups`), optionally as z-scores
(:mod:`~auditor.trec_eval.zscores`); the registry (:mod:`auditor.trec_eval.measures`) holds one
entry per measure family.
"""
from __future__ import annotations

__all__ = ["main", "run_as_process"]


def main(argv: list[str]) -> int:
    """Run ``audit trec-eval`` with trec_eval's arguments as this process's command; returns the exit status."""
    # no cycle collection during the imports and the evaluation (it ran dozens of times over the
    # imported modules and the run's objects: ~3% of the CPU time in a profile); back on for a
    # caller that goes on
    import gc

    collecting = gc.isenabled()
    gc.disable()
    try:
        _no_blas_threads()
        _tune_process_memory()  # imports numpy
        from auditor.trec_eval.command import main as _main

        return _main(argv)
    finally:
        if collecting:
            gc.enable()


def run_as_process(argv: list[str]) -> None:
    """``audit trec-eval ARGS`` as this whole process (``python -m auditor.cli trec-eval``): never returns.

    The click group is skipped (its imports are a third of the start-up) and, once the output
    is flushed, the process ends without the interpreter's teardown (freeing every object and
    module: 40-50 ms after a 20,000-query run). Errors end as through ``audit``: exit 2 with a
    message (``AUDITOR_DEBUG=1`` shows the traceback), 130 on Ctrl-C, 143 on SIGTERM, 141 without a
    message when the reader of the output leaves early (``| head``), as trec_eval killed by SIGPIPE.
    """
    import os
    import signal
    import sys

    def terminated(signum: int, frame: object) -> None:
        raise _Terminated()

    signal.signal(signal.SIGTERM, terminated)
    _no_transparent_hugepages()
    message = None
    try:
        code = main(argv)
    except KeyboardInterrupt:
        code, message = 130, "interrupted."
    except _Terminated:
        code, message = 143, "terminated (SIGTERM)."
    except BrokenPipeError:  # the reader left (`| head`): quietly, as trec_eval killed by SIGPIPE
        from auditor.console import quiet_stdout

        code = 141
        quiet_stdout()
    except Exception as e:
        if os.environ.get("AUDITOR_DEBUG"):
            raise
        code, message = 2, (f"internal error: {type(e).__name__}: {e}. This is a bug in rank-auditor or a plugin; "
                            "rerun with `audit --debug ...` for the traceback and report it.")
    if message is not None:
        from auditor.safetext import printable

        sys.stderr.write(f"Error: {printable(message)}\n")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            code = code or 141  # the reader left before the last bytes: as above
        except (OSError, ValueError):
            code = code or 2  # output lost: not a success
    os._exit(code)


class _Terminated(BaseException):
    """SIGTERM during :func:`run_as_process`."""


def _no_blas_threads() -> None:
    """One BLAS thread, unless the caller chose otherwise: the evaluation does no linear algebra.

    numpy's OpenBLAS starts a thread per core when numpy is imported, and starting them costs
    more CPU than anything it would do here (measured on 2 cores: ``import numpy`` 0.13-0.18 s
    of CPU, 0.08-0.12 s with one thread). Only before numpy's first import does it take effect.
    """
    import os
    import sys

    if "numpy" not in sys.modules:
        for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # not OMP_NUM_THREADS: it sizes Arrow's pool
            os.environ.setdefault(var, "1")


def _no_transparent_hugepages() -> None:
    """No transparent huge pages for this process (the CLI's, which exits after one evaluation).

    Arrow's allocator asks for huge pages; where the kernel then has to compact memory to find
    one, the fault stalls (measured 0.5-0.9 s for 256 MB in 2 of 12 tries, against 0.02-0.04 s
    otherwise), a large share of a 0.7 s run. Without them, in 2 x 40 interleaved runs of the
    20,000-query benchmark: median CPU 1.005 / 1.044 s against 1.055 / 1.102 s, lower and upper
    quartiles lower too. Linux only (``PR_SET_THP_DISABLE``); inherited by child processes, so
    never set for a library caller. Skipped where not available.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE
    except (OSError, AttributeError):
        pass


def _tune_process_memory() -> None:
    """Memory settings for a process that runs one evaluation and exits (the CLI's, not a library caller's).

    Fresh memory costs a page fault per page on first touch; here that was 0.4-1.3 s of system
    time in a 20,000-query run, more than reading the files. Two settings cut it: numpy asks for
    transparent huge pages on large arrays, and where the kernel then compacts memory to find
    them each fault stalls (measured 3-5x the system time); glibc returns each large freed array
    to the system and faults the next one in afresh, while keeping freed memory lets the next
    array reuse pages already mapped; one arena (``M_ARENA_MAX`` 1) keeps the memory pyarrow's
    reader threads free in that same pool (measured: 4,000 fewer page faults, 13 MB less peak RSS
    in a 20,000-query run). None changes a result. Skipped where not available.
    """
    try:
        import numpy as np

        np._core.multiarray._set_madvise_hugepage(False)
    except (ImportError, AttributeError):
        pass
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
        libc.mallopt(m_mmap_threshold, 1 << 30)
        libc.mallopt(m_trim_threshold, 1 << 30)
        libc.mallopt(m_arena_max, 1)
    except (OSError, AttributeError):
        pass
