"""The audits, in report order. Loaded lazily so one broken module cannot take down the CLI."""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from auditor.audits.base import Audit

__all__ = ["AUDIT_NAMES", "audit_names", "get_audit", "all_audits"]

_WHERE = {
    "random_label": "auditor.audits.random_label:RandomLabelAudit",
    "feature_ablation": "auditor.audits.feature_ablation:FeatureAblationAudit",
    "isolation": "auditor.audits.isolation:IsolationAudit",
    "synthetic_shift": "auditor.audits.synthetic_shift:SyntheticShiftAudit",
    "significance": "auditor.audits.significance:SignificanceAudit",
    "stability": "auditor.audits.stability:StabilityAudit",
}


def _extra() -> dict[str, str]:
    """Extra audits from ``AUDITOR_EXTRA_AUDITS="name=pkg.mod:Class,..."`` (third-party audits, tests).

    Read from the environment so worker processes of the ``local`` and ``ray`` executors see
    the same audits as the parent.
    """
    out = {}
    for part in os.environ.get("AUDITOR_EXTRA_AUDITS", "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


AUDIT_NAMES = tuple(_WHERE)  # the built-ins, in report order
_WHERE.update(_extra())


def audit_names() -> tuple[str, ...]:
    """Every registered audit: the built-ins, then extras."""
    return tuple(_WHERE)


def get_audit(name: str) -> "Audit":
    """An instance of the audit called ``name``. Raises KeyError listing the valid names."""
    if name not in _WHERE:
        raise KeyError(f"unknown audit {name!r}; valid: {', '.join(_WHERE)}")
    mod, cls = _WHERE[name].split(":")
    return getattr(importlib.import_module(mod), cls)()


def all_audits() -> list["Audit"]:
    return [get_audit(n) for n in AUDIT_NAMES]
