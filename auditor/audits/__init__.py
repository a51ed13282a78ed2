"""The audits, in report order: the six built-ins, then third-party audits registered in the
entry-point group ``auditor.audits`` (docs/AUDITS.md, "Add an audit"). Loaded lazily so one
broken module cannot take down the CLI; a third-party audit is checked when it is loaded and a
broken one is a :class:`~auditor.errors.PluginError` naming it and the rule it breaks.
"""
from __future__ import annotations

import importlib
import os
import sys
import warnings
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from auditor.errors import PluginError

if TYPE_CHECKING:  # pragma: no cover
    from auditor.audits.base import Audit

__all__ = ["AUDIT_NAMES", "ENTRY_POINT_GROUP", "audit_names", "get_audit", "all_audits", "check_audit_class"]

ENTRY_POINT_GROUP = "auditor.audits"

_BUILTIN = {
    "random_label": "auditor.audits.random_label:RandomLabelAudit",
    "feature_ablation": "auditor.audits.feature_ablation:FeatureAblationAudit",
    "isolation": "auditor.audits.isolation:IsolationAudit",
    "synthetic_shift": "auditor.audits.synthetic_shift:SyntheticShiftAudit",
    "significance": "auditor.audits.significance:SignificanceAudit",
    "stability": "auditor.audits.stability:StabilityAudit",
}
AUDIT_NAMES = tuple(_BUILTIN)  # the built-ins, in report order: the suite a plain `audit run` runs

_ENV = "AUDITOR_EXTRA_AUDITS"
_cache: dict[Any, dict[str, str]] = {}


def _from_env() -> dict[str, str]:
    """Deprecated: ``AUDITOR_EXTRA_AUDITS="name=pkg.mod:Class,..."``, still read (with a warning)."""
    raw = os.environ.get(_ENV, "")
    out = {}
    for part in raw.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    if out:
        warnings.warn(f"{_ENV} is deprecated: register third-party audits in the entry-point group "
                      f"{ENTRY_POINT_GROUP!r} (docs/AUDITS.md, 'Add an audit').", FutureWarning, stacklevel=3)
    return out


def _registry() -> dict[str, str]:
    """``{name: "module:Class"}``: built-ins, then entry points, then the deprecated variable.
    Re-read when ``sys.path`` or the variable changes (an install in a running notebook, tests)."""
    key = (tuple(sys.path), os.environ.get(_ENV, ""))
    if key not in _cache:
        found = dict(_BUILTIN)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in _BUILTIN:
                raise PluginError(f"{ep.name}={ep.value}", f"entry point {ep.name!r} in group {ENTRY_POINT_GROUP!r} "
                                  "has the name of a built-in audit.",
                                  "give the audit (its entry point and its class's `name`) a name of its own.")
            found.setdefault(ep.name, ep.value)
        for name, target in _from_env().items():
            found.setdefault(name, target)
        _cache.clear()
        _cache[key] = found
    return _cache[key]


def audit_names() -> tuple[str, ...]:
    """Every registered audit: the built-ins, then third-party ones."""
    return tuple(_registry())


def _load_class(name: str, target: str) -> type:
    spec = f"{name}={target}"
    mod, _, attr = target.partition(":")
    if not mod or not attr:
        raise PluginError(spec, f"the entry point's value {target!r} is not 'module:Class'.",
                          "point it at the audit class, e.g. my_pkg.my_audit:MyAudit.")
    try:
        module = importlib.import_module(mod)
    except Exception as e:  # noqa: BLE001 -- plugin code: its failure is the plugin's, exit 2
        raise PluginError(spec, f"importing {mod!r} raised {type(e).__name__}: {e}",
                          "run `python -c 'import " + mod + "'` to see the full error.") from e
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PluginError(spec, f"{mod!r} has no attribute {attr!r}.", "check the name after the colon.")
        obj = getattr(obj, part)
    return obj


def check_audit_class(name: str, cls: Any, spec: str | None = None) -> "Audit":
    """The rules a third-party audit must keep, checked when it is loaded; returns an instance.

    A class derived from :class:`~auditor.audits.base.Audit`, whose ``name`` is the name it is
    registered under, that implements plan/run_trial/measure/decide, says what it does (title,
    question, method), and whose declared defaults and ``--quick`` values fit their own
    declarations (:mod:`auditor.config`). Raises :class:`PluginError` naming the rule broken.
    """
    from auditor.audits.base import Audit
    from auditor.config import check_param, params_of
    from auditor.errors import ConfigError

    spec = spec or name
    if not (isinstance(cls, type) and issubclass(cls, Audit)):
        raise PluginError(spec, f"{cls!r} is not a class derived from auditor.audits.base.Audit.",
                          "point the entry point at the audit class (docs/AUDITS.md, 'Add an audit').")
    if cls.name != name:
        raise PluginError(spec, f"the class's name is {cls.name!r}, but it is registered as {name!r}.",
                          "set `name` on the class to the entry point's name: --checks and [audits.NAME] use it.")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise PluginError(spec, f"{cls.__name__} does not implement {', '.join(missing)}.",
                          "an audit implements plan, run_trial, measure and decide (auditor.audits.base.Audit).")
    for attr in ("title", "question", "method"):
        if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr).strip():
            raise PluginError(spec, f"{cls.__name__}.{attr} is empty.",
                              f"set {attr} to a sentence: the report card shows it.")
    for attr in ("critical", "gating"):
        if not isinstance(getattr(cls, attr, None), bool):
            raise PluginError(spec, f"{cls.__name__}.{attr} must be True or False, got {getattr(cls, attr)!r}.")
    defaults = getattr(cls, "defaults", None)
    if not isinstance(defaults, dict) or not all(isinstance(k, str) and k.isidentifier() for k in defaults):
        raise PluginError(spec, f"{cls.__name__}.defaults must map parameter names to defaults, got {defaults!r}.",
                          "declare them with auditor.config.declare(name=param(type, default, ...)).")
    quick = getattr(cls, "quick_overrides", {}) or {}
    extra = sorted(set(quick) - set(defaults))
    if extra:
        raise PluginError(spec, f"{cls.__name__}.quick_overrides names {extra}, which are not parameters.",
                          "give --quick values only for declared parameters.")
    try:
        declared = params_of(cls)
        for key, p in declared.items():
            check_param(f"default {key}", key, p.default, p)
            if key in quick:
                check_param(f"--quick value of {key}", key, quick[key], p)
    except ConfigError as e:
        raise PluginError(spec, f"{cls.__name__}: {e}".split(" Fix:")[0],
                          "make the defaults fit their own declarations.") from None
    try:
        return cls()
    except Exception as e:  # noqa: BLE001 -- plugin code
        raise PluginError(spec, f"{cls.__name__}() raised {type(e).__name__}: {e}",
                          "an audit is built without arguments and holds no state.") from e


def get_audit(name: str) -> "Audit":
    """An instance of the audit called ``name``. Raises KeyError listing the valid names, or
    PluginError when a third-party audit breaks the rules (:func:`check_audit_class`)."""
    registry = _registry()
    if name not in registry:
        raise KeyError(f"unknown audit {name!r}; valid: {', '.join(registry)}")
    if name in _BUILTIN:
        mod, cls = _BUILTIN[name].split(":")
        return getattr(importlib.import_module(mod), cls)()
    return check_audit_class(name, _load_class(name, registry[name]), f"{name}={registry[name]}")


def all_audits() -> list["Audit"]:
    return [get_audit(n) for n in AUDIT_NAMES]
