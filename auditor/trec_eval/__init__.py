"""trec_eval 10.0-rc3, reproduced: readers, ranked judgments, the measure registry and the command.

``audit trec-eval`` (:mod:`auditor.trec_eval.command`) prints the same lines as the C
trec_eval for every measure, from qrels (:mod:`~auditor.trec_eval.ranked`), preference
judgments (:mod:`~auditor.trec_eval.prefs`) or multi-assessor qrels
(:mod:`~auditor.trec_eval.judgment_groups`), optionally as z-scores
(:mod:`~auditor.trec_eval.zscores`); the registry (:mod:`auditor.trec_eval.measures`) holds one
entry per measure family.
"""
from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Run ``audit trec-eval`` with trec_eval's arguments as this process's command; returns the exit status."""
    _tune_process_memory()
    from auditor.trec_eval.command import main as _main

    return _main(argv)


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
