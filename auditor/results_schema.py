"""Validation of a stored ``results.json`` against its schema (docs/RESULTS_SCHEMA.md, version 1).

``audit report`` and ``audit compare`` read results written earlier, possibly truncated, edited
or written by something else. A file with ``status: 12345`` or ``verdict: null`` must not render
as a report that exits 0: :func:`validate_results_schema` raises a
:class:`~auditor.errors.ConfigError` naming the first field that breaks the schema (its path,
e.g. ``audits[2].status``), what it holds and what was expected.

Checked: every key the runner writes is present with its type; enumerations (verdict, status);
ranges (p-values in [0, 1], alpha in (0, 1), counts >= 0); the exit code matches the verdict;
the verdict is the one the audits imply (:func:`auditor.runner.decide_verdict`), so an edited
verdict cannot pass. Keys the schema does not name are allowed (a newer writer may add some).
Hand-written, so reading a report needs no extra dependency.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from auditor.errors import ConfigError
from auditor.verdict import SKIP_CAUSES

__all__ = ["validate_results_schema", "SCHEMA_VERSION", "VERDICTS", "STATUSES"]

SCHEMA_VERSION = 1
VERDICTS = ("GO", "NO_GO", "INCONCLUSIVE")
STATUSES = ("PASS", "WARN", "FAIL", "ERROR", "SKIP")


class _Invalid(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.field, self.problem = field, problem


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(v: Any) -> str:
    return {type(None): "null", bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


# --------------------------------------------------------------------------- field checks
def _str(v: Any, f: str) -> None:
    if not isinstance(v, str):
        raise _Invalid(f, f"is {_kind(v)} ({_show(v)}), expected a string")


def _bool(v: Any, f: str) -> None:
    if not isinstance(v, bool):
        raise _Invalid(f, f"is {_kind(v)} ({_show(v)}), expected true or false")


def _int(lo: int | None = None) -> Callable[[Any, str], None]:
    def check(v: Any, f: str) -> None:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Invalid(f, f"is {_kind(v)} ({_show(v)}), expected an integer")
        if lo is not None and v < lo:
            raise _Invalid(f, f"is {v}, expected an integer >= {lo}")
    return check


def _num(lo: float | None = None, hi: float | None = None, *, open_ends: bool = False,
         null: bool = False) -> Callable[[Any, str], None]:
    def check(v: Any, f: str) -> None:
        if v is None and null:
            return
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _Invalid(f, f"is {_kind(v)} ({_show(v)}), expected a finite number" + (" or null" if null else ""))
        below = lo is not None and (v <= lo if open_ends else v < lo)
        above = hi is not None and (v >= hi if open_ends else v > hi)
        if below or above:
            br = "()" if open_ends else "[]"
            raise _Invalid(f, f"is {v}, expected a number in {br[0]}{lo}, {hi}{br[1]}")
    return check


def _enum(*allowed: str) -> Callable[[Any, str], None]:
    def check(v: Any, f: str) -> None:
        if not isinstance(v, str) or v not in allowed:
            raise _Invalid(f, f"is {_show(v)}, expected one of {', '.join(allowed)}")
    return check


def _obj(v: Any, f: str) -> None:
    if not isinstance(v, dict):
        raise _Invalid(f or "(the whole file)", f"is {_kind(v)} ({_show(v)}), expected an object")


def _nullable(check: Callable[[Any, str], None]) -> Callable[[Any, str], None]:
    def inner(v: Any, f: str) -> None:
        if v is not None:
            check(v, f)
    return inner


def _list_of(check: Callable[[Any, str], None]) -> Callable[[Any, str], None]:
    def inner(v: Any, f: str) -> None:
        if not isinstance(v, list):
            raise _Invalid(f, f"is {_kind(v)} ({_show(v)}), expected a list")
        for i, x in enumerate(v):
            check(x, f"{f}[{i}]")
    return inner


def _fields(required: Mapping[str, Callable[[Any, str], None]],
            optional: Mapping[str, Callable[[Any, str], None]] | None = None) -> Callable[[Any, str], None]:
    def check(v: Any, f: str) -> None:
        _obj(v, f)
        for k, c in required.items():
            if k not in v:
                raise _Invalid(f"{f}.{k}" if f else k, "is missing")
            c(v[k], f"{f}.{k}" if f else k)
        for k, c in (optional or {}).items():
            if k in v:
                c(v[k], f"{f}.{k}" if f else k)
    return check


_P = _num(0.0, 1.0, null=True)
_CONDITION = _fields({"name": _str, "status": _enum(*STATUSES)}, {"observed": _str, "threshold": _str})
_PLOT = _fields({"type": _str})
_AUDIT = _fields(
    {"name": _str, "status": _enum(*STATUSES), "critical": _bool, "summary": _str, "measurements": _obj,
     "p_value": _P, "p_adjusted": _P, "conditions": _list_of(_CONDITION), "inconclusive": _bool,
     "error": _nullable(_str)},
    {"title": _str, "question": _str, "method": _str, "null_hypothesis": _str, "citations": _list_of(_str),
     "blind_spots": _list_of(_str), "next_steps": _list_of(_str), "notes": _list_of(_str),
     "plots": _list_of(_PLOT), "n_trials": _int(0), "duration_s": _num(0.0, null=True), "config": _obj,
     "skip_cause": _enum(*SKIP_CAUSES), "skip_fix": _nullable(_str), "headline": _obj,
     "model_s": _num(0.0, null=True), "measure_s": _num(0.0)})
_TIMING = _fields({"prepare_s": _num(0.0), "trials_s": _num(0.0), "measure_s": _num(0.0),
                   "model_s": _num(0.0, null=True)})
_RESULTS = _fields({
    "schema_version": _int(), "tool": _fields({"name": _str, "version": _str}), "verdict": _enum(*VERDICTS),
    "verdict_reason": _str, "exit_code": _int(), "alpha": _num(0.0, 1.0, open_ends=True),
    "audits": _list_of(_AUDIT),
    "holm": _fields({"audits": _list_of(_str), "p_raw": _list_of(_P), "p_adjusted": _list_of(_P)}),
    "model": _fields({"spec": _str}), "baseline": _nullable(_obj), "data": _obj, "config": _obj,
    "environment": _obj, "seed": _int(0), "command": _str, "started_at": _str, "finished_at": _str,
    "duration_s": _num(0.0, null=True)},
    {"verdict_label": _str, "scope": _obj, "claim": _nullable(_obj), "timing": _TIMING})


def _consistent(r: Mapping[str, Any]) -> None:
    from auditor.runner import EXIT_CODES, decide_verdict

    if r["schema_version"] != SCHEMA_VERSION:
        raise _Invalid("schema_version", f"is {r['schema_version']}, this version reads {SCHEMA_VERSION}")
    if not r["audits"]:
        raise _Invalid("audits", "is empty: a run has at least one audit")
    names = [a["name"] for a in r["audits"]]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise _Invalid("audits", f"lists audit {dup!r} twice")
    if r["exit_code"] != EXIT_CODES[r["verdict"]]:
        raise _Invalid("exit_code", f"is {r['exit_code']} but verdict {r['verdict']} exits {EXIT_CODES[r['verdict']]}")
    audits = r["audits"]
    if "scope" not in r:  # written before skips had causes: a skipped audit did not block the verdict then
        audits = [{**a, "skip_cause": a.get("skip_cause") or "recorded_before_causes"} for a in audits]
    implied, _ = decide_verdict(audits)  # the verdict follows from the audits and their skip causes
    if implied != r["verdict"]:
        raise _Invalid("verdict", f"is {r['verdict']} but the audits' statuses give {implied}")
    h = r["holm"]
    if not len(h["audits"]) == len(h["p_raw"]) == len(h["p_adjusted"]):
        raise _Invalid("holm", "has lists of different lengths (audits, p_raw, p_adjusted)")


def _finite(v: Any, f: str) -> None:
    """Non-finite numbers are written as null; a NaN or Infinity token anywhere means another writer."""
    if isinstance(v, float) and not math.isfinite(v):
        raise _Invalid(f, f"is {v}, but non-finite numbers are written as null")
    if isinstance(v, dict):
        for k, x in v.items():
            _finite(x, f"{f}.{k}" if f else str(k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _finite(x, f"{f}[{i}]")


def validate_results_schema(results: Any, source: str = "results.json") -> None:
    """Raise :class:`ConfigError` naming the first field of ``results`` that breaks the schema.

    Parameters
    ----------
    results : Any
        The parsed JSON.
    source : str
        Where it came from, for the message (e.g. ``"runs/v2/results.json"``).
    """
    try:
        _RESULTS(results, "")
        _consistent(results)
        _finite(results, "")
    except _Invalid as e:
        raise ConfigError(f"{source}: field {e.field!r} {e.problem}; this is not a results.json written by "
                          "`audit run` (schema_version 1, docs/RESULTS_SCHEMA.md).") from None
