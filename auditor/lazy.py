"""A module imported on first attribute access, so light entry points (``audit --help``) start
without numpy, pyarrow or the metrics engine."""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LazyModule"]


class LazyModule:
    """Stands for module ``name``; the import happens on the first attribute looked up."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)
