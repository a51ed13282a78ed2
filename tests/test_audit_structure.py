"""How an audit is built: it reads alone, and its conditions are named functions it lists.

Each audit module can be removed alone: what audits share (row identity, informative queries, the
baseline's per-query metric) lives in neutral modules under ``auditor/``, and
``auditor.audits.base`` is the one audit module all import. Each condition is a documented
function of the measurements that names the parameters it compares with.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import auditor.audits as audits_pkg
from auditor.audits import get_audit

AUDITS_DIR = Path(audits_pkg.__file__).parent


def imported_audits(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        mods = []
        if isinstance(node, ast.ImportFrom) and node.module:
            mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        for mod in mods:
            parts = mod.split(".")
            if parts[:2] == ["auditor", "audits"] and len(parts) > 2:
                found.add(parts[2])
    return found


def test_no_audit_imports_another_audit():
    modules = sorted(p for p in AUDITS_DIR.glob("*.py") if p.stem not in ("__init__", "base"))
    assert len(modules) >= 6
    crossings = {(p.stem, other) for p in modules for other in imported_audits(p) - {"base", p.stem}}
    assert not crossings, f"audits importing other audits: {sorted(crossings)}"


# settings every audit may compare with besides its own parameters
SUITE_SETTINGS = {"alpha", "min_gain"}


@pytest.mark.parametrize("name", ["isolation", "feature_ablation", "synthetic_shift", "significance", "stability"])
def test_conditions_are_named_documented_functions_with_declared_thresholds(name):
    audit = get_audit(name)
    assert audit.conditions, f"{name} lists no conditions"
    names = [c.__name__ for c in audit.conditions]
    assert len(set(names)) == len(names)
    for check in audit.conditions:
        assert check.__doc__, f"{name}.{check.__name__} has no docstring"
        undeclared = set(check.thresholds) - set(audit.defaults) - SUITE_SETTINGS
        assert not undeclared, f"{name}.{check.__name__} compares with unknown parameters {undeclared}"
