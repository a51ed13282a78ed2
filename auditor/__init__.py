"""rank-auditor: is this ranking result real?

Python API (the CLI is a thin layer over it)::

    import auditor
    run = auditor.run_audit(model="reference", checks=["random_label", "isolation"])
    run                      # one screen: verdict and one line per audit (a table in Jupyter)
    run.verdict              # "GO" / "NO_GO" / "INCONCLUSIVE"
    run.audits["isolation"].status, run.audits["isolation"].conditions
    run.to_dict()            # the results.json document
    run.write_report("audit-out")

``run_audit`` and the result classes are imported on first use, so ``import auditor`` stays
cheap; ``help(auditor.run_audit)`` shows the real signature and docstring.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["run_audit", "AuditRun", "AuditSummary", "Condition", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from auditor.results import AuditRun, AuditSummary, Condition
    from auditor.runner import run_audit

_LAZY = {"run_audit": "auditor.runner", "AuditRun": "auditor.results", "AuditSummary": "auditor.results",
         "Condition": "auditor.results"}


def __getattr__(name: str) -> Any:
    # PEP 562: the real objects (signature, docstring) without importing numpy & co. at `import auditor`
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'auditor' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
