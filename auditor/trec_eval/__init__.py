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
    """Run ``audit trec-eval`` with trec_eval's arguments; returns the exit status."""
    from auditor.trec_eval.command import main as _main

    return _main(argv)
