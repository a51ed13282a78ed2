"""What ``audit list`` shows: the audits with their parameters and defaults, and the installed
models with the ``--model-param`` keys they take. Everything is read from the code (the audits'
``defaults``, a factory's ``params`` declaration or its signature), never restated."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

__all__ = ["describe_audits", "describe_models", "factory_params"]


def describe_audits() -> list[dict[str, Any]]:
    """``[{"name", "critical", "question", "defaults", "quick"}]`` in report order."""
    from auditor.audits import AUDIT_NAMES, get_audit

    out = []
    for n in AUDIT_NAMES:
        try:
            a = get_audit(n)
            out.append({"name": n, "critical": a.critical, "question": a.question, "defaults": dict(a.defaults),
                        "quick": dict(getattr(a, "quick_overrides", {}) or {})})
        except Exception as e:  # noqa: BLE001 - a broken audit module must not hide the others
            out.append({"name": n, "critical": None, "question": f"(unavailable: {e})", "defaults": {}, "quick": {}})
    return out


def factory_params(factory: Callable[..., Any]) -> tuple[dict[str, dict[str, Any]], bool]:
    """The factory's ``--model-param`` keys: its ``params`` declaration, else its keyword
    arguments (without ``seed``). Returns ``(params, accepts_more)``; ``accepts_more`` is True
    when the signature takes ``**params`` that the declaration does not enumerate."""
    try:
        sig = inspect.signature(factory)
        var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    except (TypeError, ValueError):
        sig, var_kw = None, True
    declared = getattr(factory, "params", None)
    if isinstance(declared, Mapping):
        params = {str(k): dict(v) if isinstance(v, Mapping) else {"default": v} for k, v in declared.items()}
        return params, False
    params = {}
    if sig is not None:
        for name, p in sig.parameters.items():
            if name == "seed" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            params[name] = {"default": None if p.default is p.empty else p.default,
                            **({"required": True} if p.default is p.empty else {})}
    return params, var_kw


def describe_models() -> list[dict[str, Any]]:
    """Installed models (entry points ``auditor.models``) with their parameters."""
    from auditor.registry import ModelSpec, available_models

    out = []
    for name, target in sorted(available_models().items()):
        entry: dict[str, Any] = {"name": name, "target": target}
        try:
            factory = ModelSpec(name).factory
            params, more = factory_params(factory)
            entry.update(params=params, accepts_more=more, has_default_data=hasattr(factory, "default_data"),
                         default_baseline=getattr(factory, "default_baseline", None))
        except Exception as e:  # noqa: BLE001 - one broken plugin must not hide the others
            entry.update(params={}, accepts_more=False, error=f"{type(e).__name__}: {e}")
        out.append(entry)
    return out
