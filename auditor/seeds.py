"""Seeds derived from the run seed: one stream per (audit, purpose, repeat), stable across runs.

Here rather than in :mod:`auditor.context` so that an audit computing a seed of its own needs
nothing from the context module but the run seed.
"""
from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["derive_seed"]


def derive_seed(seed: int, *keys: Any) -> int:
    """A 63-bit seed from the run seed and any keys (audit name, repeat index ...), stable across runs."""
    h = hashlib.sha256(repr((int(seed),) + tuple(str(k) for k in keys)).encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1
