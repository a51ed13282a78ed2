"""The ``audit`` console script's entry point (``[project.scripts]`` in pyproject.toml), and how
both entry points leave when the reader of their output has gone (:func:`quiet_stdout`).

``audit trec-eval ...`` goes straight to trec_eval's drop-in, before :mod:`auditor.cli` and its
imports (click and the audit machinery: 0.02-0.04 s of a 0.07 s start-up) are loaded; every
other command is the click group's (:func:`auditor.cli.main`).
"""
from __future__ import annotations

import os
import sys


def quiet_stdout() -> None:
    """Point stdout at /dev/null: its reader is gone (``| head``), and the final flush must not fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main() -> None:
    """``audit`` with this process's arguments."""
    if sys.argv[1:2] == ["trec-eval"]:
        from auditor.trec_eval import run_as_process

        run_as_process(sys.argv[2:])  # never returns
    from auditor.cli import main as cli_main

    cli_main()
