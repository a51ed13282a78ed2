"""rank-auditor: is this ranking result real?

Python API (the CLI is a thin layer over it)::

    import auditor
    run = auditor.run_audit(model="reference", checks=["random_label", "isolation"])
    run.verdict, run.audits, run.to_dict(), run.write_report("audit-out")
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["run_audit", "__version__"]


def run_audit(*args, **kwargs):
    """See :func:`auditor.runner.run_audit`."""
    from auditor.runner import run_audit as _run

    return _run(*args, **kwargs)
