"""Typed views of a finished run: :class:`AuditRun`, :class:`Audits`, :class:`AuditSummary`.

``run_audit`` returns an :class:`AuditRun`. It wraps the ``results.json`` document (the single
source of truth, docs/RESULTS_SCHEMA.md) and reads it through small typed objects::

    run.verdict, run.exit_code, run.verdict_reason
    run.audits["isolation"].status          # by name ...
    run.audits[0].conditions[0].observed    # ... or by position
    run.to_dict()                            # results.json, unchanged

Nothing is copied out of the document, so ``to_dict()`` always equals what was written. An
:class:`AuditSummary` is also a read-only mapping over its ``results.json`` entry, so code
written against the dicts (``a["status"]``, ``dict(a)``) keeps working.

In Jupyter, ``run`` renders as the report's verdict card and audit table (the same templates
as report.html, no scripts); ``repr(run)`` is one screen of text.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, overload

from auditor.audits.base import Condition

__all__ = ["AuditRun", "Audits", "AuditSummary", "Condition"]

_REPR_WIDTH = 100


def _cut(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


class AuditSummary(Mapping[str, Any]):
    """One audit's result (a ``results.json`` ``audits[i]`` entry) with typed attributes.

    Attributes
    ----------
    name, title, status, summary : str
        ``status`` is PASS, WARN, FAIL, ERROR or SKIP.
    critical, inconclusive : bool
    p_value, p_adjusted : float or None
        Raw and Holm-adjusted p-values (None for audits without a test).
    conditions : tuple of Condition
        The named rules that decided the status (name, status, observed, threshold).
    measurements : dict
        Everything the audit measured (nested; see docs/AUDITS.md).
    error : str or None
    next_steps, notes : list of str
    """

    __slots__ = ("_d",)

    def __init__(self, entry: Mapping[str, Any]) -> None:
        self._d = entry

    # Mapping over the results.json entry (backward compatible with the dicts of earlier versions)
    def __getitem__(self, key: str) -> Any:
        return self._d[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` entry (the same object, not a copy)."""
        return self._d  # type: ignore[return-value]

    name = property(lambda self: str(self._d["name"]))
    title = property(lambda self: str(self._d.get("title") or self._d["name"]))
    status = property(lambda self: str(self._d["status"]))
    summary = property(lambda self: str(self._d.get("summary", "")))
    critical = property(lambda self: bool(self._d.get("critical")))
    inconclusive = property(lambda self: bool(self._d.get("inconclusive")))
    p_value = property(lambda self: self._d.get("p_value"))
    p_adjusted = property(lambda self: self._d.get("p_adjusted"))
    measurements = property(lambda self: self._d.get("measurements") or {})
    error = property(lambda self: self._d.get("error"))
    next_steps = property(lambda self: list(self._d.get("next_steps") or []))
    notes = property(lambda self: list(self._d.get("notes") or []))

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return tuple(Condition(name=str(c.get("name", "")), status=str(c.get("status", "")),
                               observed=str(c.get("observed", "")), threshold=str(c.get("threshold", "")))
                     for c in self._d.get("conditions") or [])

    def __repr__(self) -> str:
        p = self.p_adjusted
        ptxt = f", p_adj={p:.3g}" if isinstance(p, (int, float)) else ""
        return (f"AuditSummary({self.name!r}, status={self.status!r}, critical={self.critical}{ptxt}, "
                f"summary={_cut(self.summary, 80)!r})")


class Audits:
    """The audits of a run, in report order: by position (``audits[0]``) or by name
    (``audits["isolation"]``); iterating yields :class:`AuditSummary` objects."""

    __slots__ = ("_items",)

    def __init__(self, entries: list[Mapping[str, Any]]) -> None:
        self._items = [AuditSummary(e) for e in entries]

    @overload
    def __getitem__(self, key: int) -> AuditSummary: ...

    @overload
    def __getitem__(self, key: str) -> AuditSummary: ...

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            for a in self._items:
                if a.name == key:
                    return a
            raise KeyError(f"{key!r}: no such audit in this run (ran: {', '.join(self.names()) or 'none'})")
        return self._items[key]

    def __iter__(self) -> Iterator[AuditSummary]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return any(a.name == name for a in self._items)

    def names(self) -> list[str]:
        return [a.name for a in self._items]

    def by_status(self, status: str) -> list[AuditSummary]:
        """The audits with ``status`` (PASS, WARN, FAIL, ERROR, SKIP)."""
        return [a for a in self._items if a.status == status]

    def __repr__(self) -> str:
        return "Audits(" + ", ".join(f"{a.name}={a.status}" for a in self._items) + ")"


@dataclass
class AuditRun:
    """A finished run: the ``results.json`` document and typed accessors.

    Attributes
    ----------
    results : dict
        The whole ``results.json`` document (also :meth:`to_dict`).
    """

    results: dict[str, Any]

    @property
    def verdict(self) -> str:
        """``"GO"``, ``"NO_GO"`` or ``"INCONCLUSIVE"``."""
        return self.results["verdict"]

    @property
    def verdict_reason(self) -> str:
        return str(self.results.get("verdict_reason", ""))

    @property
    def exit_code(self) -> int:
        """What ``audit run`` exits with: 0 GO, 1 NO_GO, 3 INCONCLUSIVE."""
        return int(self.results["exit_code"])

    @property
    def audits(self) -> Audits:
        """Every audit of the run, by position or by name."""
        return Audits(self.results["audits"])

    def audit(self, name: str) -> AuditSummary:
        """One audit by name (``KeyError`` naming the audits that ran if it did not)."""
        return self.audits[name]

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` document (schema: docs/RESULTS_SCHEMA.md)."""
        return self.results

    def write_report(self, out_dir: str | Path, *, strict: bool = True) -> dict[str, Path]:
        """Write results.json, report.html, junit.xml and summary.md into ``out_dir`` (atomically)."""
        from auditor.runner import write_outputs

        return write_outputs(self.results, out_dir, strict=strict)

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        r = self.results
        model = (r.get("model") or {}).get("spec", "?")
        dur = r.get("duration_s")
        head = (f"AuditRun(verdict={self.verdict}, exit_code={self.exit_code}, model={model!r}, "
                f"{len(r.get('audits') or [])} audits" + (f", {dur:.1f} s)" if isinstance(dur, (int, float)) else ")"))
        lines = [head, "  " + _cut(self.verdict_reason, _REPR_WIDTH - 2)]
        for a in self.audits:
            crit = "critical" if a.critical else "advisory"
            lines.append(f"  {a.name:<17} {a.status:<5} {crit:<8}  {_cut(a.summary, _REPR_WIDTH - 37)}")
        lines.append("  .audits['name'] for one audit; .to_dict() for results.json; .write_report(dir) for the reports")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The report's verdict card and audit table (Jupyter rich display; no scripts)."""
        from reports.notebook import render_summary_html

        return render_summary_html(self.results)
