"""The click parameter type of every option that names a file the auditor reads.

A FIFO passed as ``--test`` would block the read forever and ``/dev/zero`` would grow memory
until the OOM killer; :class:`InputFile` refuses anything but an existing regular file while
the command line is parsed (exit 2, naming the option and the path), before any work.
"""
from __future__ import annotations

import os
from typing import Any

import click

from auditor.errors import DataError
from auditor.safetext import printable

__all__ = ["InputFile"]


class InputFile(click.ParamType):
    """An existing, readable regular file (the value stays a ``str``)."""

    name = "file"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from auditor.loaders import check_input_file

        path = os.fspath(value)
        try:
            check_input_file(path)
        except DataError as e:
            self.fail(printable(f"{e.path}: {e.detail}" + (f" Fix: {e.fix}" if e.fix else "")), param, ctx)
        return path
