"""The feature-group spec (``--feature-groups NAME=RANGES[;NAME=RANGES...]``) and its application.

Syntax and rules: :mod:`auditor.loaders` ("Feature-group spec").
"""
from __future__ import annotations

import re

import numpy as np

from auditor.errors import DataError
from auditor.loaders.common import _NAME_RE

def parse_feature_groups(spec: str, width: int | None = None, *, where: str = "--feature-groups"
                         ) -> dict[str, np.ndarray]:
    """Parse a feature-group spec into ``{name: 0-based column indices}``.

    Parameters
    ----------
    spec : str
        ``NAME=RANGES[;NAME=RANGES...]``, e.g. ``"image=1-512;text=513-1024;visual=1025-1280"``
        (1-based inclusive ranges; commas also separate groups, see the module docstring).
    width : int, optional
        Number of feature columns; when given, every column must be in exactly one group.
    where : str
        Name used in error messages.

    Returns
    -------
    dict[str, ndarray of int64]
        Groups in spec order; each group's columns in the order written.

    Raises
    ------
    DataError
        Syntax errors, bad names, repeated names, empty / reversed ranges, overlaps,
        columns beyond ``width`` and columns not covered by any group.
    """
    ex = "e.g. image=1-512;text=513-1024;visual=1025-1280"
    if spec is None or not str(spec).strip():
        raise DataError(f"the feature-group spec is empty; expected NAME=RANGES[;NAME=RANGES], {ex}.",
                        path=where, field="spec")
    groups: dict[str, list[tuple[int, int]]] = {}
    current: str | None = None
    for tok in re.split(r"[;,]", str(spec)):
        tok = tok.strip()
        if not tok:
            raise DataError(f"empty item in {spec!r} (two separators in a row?); expected NAME=RANGES, {ex}.",
                            path=where, field="spec")
        if "=" in tok:
            name, _, rng = tok.partition("=")
            name, rng = name.strip(), rng.strip()
            if not _NAME_RE.match(name):
                raise DataError(f"group name {name!r} is not an identifier ([A-Za-z_][A-Za-z0-9_-]*).",
                                path=where, field=name or "spec", fix=f"rename the group, {ex}.")
            if name in groups:
                raise DataError(f"group {name!r} is named twice.", path=where, field=name,
                                fix="list all of a group's ranges after one NAME=, separated by commas.")
            groups[name] = []
            current = name
        else:
            if current is None:
                raise DataError(f"{tok!r} comes before any NAME=; expected NAME=RANGES, {ex}.", path=where, field="spec")
            rng = tok
        m = re.fullmatch(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", rng)
        if not m:
            raise DataError(f"range {rng!r} of group {current!r} is not 'a-b' or 'a' with positive integers.",
                            path=where, field=current, fix=f"write 1-based inclusive column ranges, {ex}.")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if lo < 1:
            raise DataError(f"range {rng!r} of group {current!r} starts at {lo}; columns are 1-based.",
                            path=where, field=current, fix="the first feature column is 1.")
        if hi < lo:
            raise DataError(f"range {rng!r} of group {current!r} is reversed ({lo} > {hi}).", path=where,
                            field=current, fix=f"write it as {hi}-{lo}.")
        groups[current].append((lo, hi))
    owner: dict[int, str] = {}
    out: dict[str, np.ndarray] = {}
    spans = sorted((lo, hi, g) for g, rs in groups.items() for lo, hi in rs)
    for (lo1, hi1, g1), (lo2, hi2, g2) in zip(spans, spans[1:]):
        if lo2 <= hi1:
            raise DataError(f"groups {g1!r} ({lo1}-{hi1}) and {g2!r} ({lo2}-{hi2}) overlap at column {lo2}.",
                            path=where, field=g2, fix="give every column to exactly one group.")
    for g, rs in groups.items():
        cols = np.concatenate([np.arange(lo, hi + 1, dtype=np.int64) for lo, hi in rs]) - 1
        out[g] = cols
        for lo, hi in rs:
            owner[lo] = g
    if width is not None:
        top = max(hi for _, hi, _ in spans)
        if top > width:
            g = [g for lo, hi, g in spans if hi == top][0]
            raise DataError(f"group {g!r} names column {top} but the data has {width} feature columns.",
                            path=where, field=g, fix=f"keep ranges within 1-{width}.")
        covered = np.zeros(width, dtype=bool)
        for cols in out.values():
            covered[cols] = True
        if not covered.all():
            miss = np.flatnonzero(~covered) + 1
            runs = _ranges_text(miss)
            raise DataError(f"feature columns {runs} are in no group.", path=where, field="spec",
                            fix=f"add them to a group (e.g. other={runs.split(',')[0]}) so no column is dropped silently.")
    return out


def _ranges_text(cols: np.ndarray, limit: int = 4) -> str:
    parts = []
    start = prev = int(cols[0])
    for c in list(cols[1:]) + [None]:
        if c is not None and int(c) == prev + 1:
            prev = int(c)
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = int(c)
    more = "" if len(parts) <= limit else f", ... ({len(parts) - limit} more ranges)"
    return ",".join(parts[:limit]) + more


def _apply_groups(X: np.ndarray, spec: str | None, default: str = "all") -> dict[str, np.ndarray]:
    if spec is None:
        return {default: X}
    groups = parse_feature_groups(spec, X.shape[1])
    return {g: np.ascontiguousarray(X[:, cols]) for g, cols in groups.items()}
