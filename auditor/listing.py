"""What ``audit list`` shows: the audits with their parameters and defaults, and the installed
models with the ``--model-param`` keys they take. Everything is read from the code (the audits'
declared ``defaults``, :data:`auditor.config.SETTINGS`, a factory's ``params`` declaration or
its signature), never restated.

``python -m auditor.listing`` prints docs/CONFIG.md; ``python -m auditor.listing --audits-md
docs/AUDITS.md`` rewrites the parameter tables there (between ``<!-- parameters: NAME -->``
and ``<!-- end parameters -->``). Tests fail when either is out of date."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

__all__ = ["describe_audits", "describe_params", "describe_models", "factory_params", "config_rows",
           "config_markdown", "toml_value", "parameter_table", "update_audits_md"]


def describe_params(audit: Any) -> dict[str, dict[str, Any]]:
    """``{name: {"default", "quick"?, "values", "help"}}`` of an audit, from its declaration."""
    from auditor.config import describe_param, params_of

    out = {}
    for k, p in params_of(audit).items():
        out[k] = {"default": p.default, **({"quick": p.quick} if p.has_quick else {}),
                  "values": describe_param(p), "help": p.help}
    return out


def describe_audits() -> list[dict[str, Any]]:
    """``[{"name", "critical", "question", "defaults", "quick", "params"}]`` in report order
    (every registered audit: the built-ins, then plugins)."""
    from auditor.audits import audit_names, get_audit

    out = []
    for n in audit_names():
        try:
            a = get_audit(n)
            out.append({"name": n, "critical": a.critical, "question": a.question, "defaults": dict(a.defaults),
                        "quick": dict(getattr(a, "quick_overrides", {}) or {}), "params": describe_params(a)})
        except Exception as e:  # noqa: BLE001 - a broken audit module must not hide the others
            out.append({"name": n, "critical": None, "question": f"(unavailable: {e})", "defaults": {}, "quick": {},
                        "params": {}})
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


# --------------------------------------------------------------------------- audit.toml reference
def config_rows() -> list[dict[str, str]]:
    """Every ``audit.toml`` key: ``{"key", "section", "default", "quick", "values", "meaning"}``, top
    level first (:data:`auditor.config.SETTINGS`), then each built-in audit's ``[audits.NAME]``
    parameters (its declared ``defaults``)."""
    from auditor.audits import AUDIT_NAMES, get_audit
    from auditor.config import SETTINGS, describe_param

    rows = []
    for key, p in SETTINGS.items():
        rows.append({"key": key, "section": "top level",
                     "default": "all audits" if key == "checks" else toml_value(p.default), "quick": "",
                     "values": describe_param(p), "meaning": p.help})
    for name in AUDIT_NAMES:
        for key, d in describe_params(get_audit(name)).items():
            rows.append({"key": key, "section": f"[audits.{name}]", "default": toml_value(d["default"]),
                         "quick": toml_value(d["quick"]) if "quick" in d else "", "values": d["values"],
                         "meaning": d["help"]})
    return rows


def toml_value(v: Any) -> str:
    """A value as written in audit.toml (None: unset, the code decides)."""
    import json

    if v is None:
        return "(unset)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return str(v)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def config_markdown() -> str:
    """docs/CONFIG.md: the one table of audit.toml keys (regenerate: python -m auditor.listing)."""
    lines = ["# audit.toml: every key", "",
             "Generated from the code by `python -m auditor.listing > docs/CONFIG.md` (a test fails when it",
             "is out of date). Command-line options win over the file (`--set AUDIT.KEY=VALUE` sets an audit",
             "parameter). Every value is checked before any data are loaded: an unknown key, a value of the",
             "wrong type or outside the values column exits 2 naming the file and the key. `--quick` uses the",
             "`--quick` column where it has a value, unless the file sets the key.", "",
             "| key | section | default | `--quick` | values | meaning |", "|---|---|---|---|---|---|"]
    for r in config_rows():
        lines.append(f"| `{r['key']}` | {r['section']} | `{r['default']}` | "
                     f"{'`' + r['quick'] + '`' if r['quick'] else ''} | {_cell(r['values'])} | {_cell(r['meaning'])} |")
    return "\n".join(lines) + "\n"


_TABLE_START = "<!-- parameters: {name} (generated: python -m auditor.listing --audits-md docs/AUDITS.md) -->"
_TABLE_END = "<!-- end parameters -->"


def parameter_table(name: str) -> str:
    """The parameter table of audit ``name`` for docs/AUDITS.md, from its declaration."""
    from auditor.audits import get_audit

    lines = ["| parameter | default | `--quick` | values | meaning |", "|---|---|---|---|---|"]
    for key, d in describe_params(get_audit(name)).items():
        quick = f"`{toml_value(d['quick'])}`" if "quick" in d else ""
        lines.append(f"| `{key}` | `{toml_value(d['default'])}` | {quick} | {_cell(d['values'])} | "
                     f"{_cell(d['help'])} |")
    return "\n".join(lines)


def update_audits_md(text: str) -> str:
    """``text`` (docs/AUDITS.md) with every generated parameter table rewritten from the code."""
    import re

    from auditor.audits import AUDIT_NAMES

    for name in AUDIT_NAMES:
        start = _TABLE_START.format(name=name)
        pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(_TABLE_END), re.S)
        text = pattern.sub(lambda _m: f"{start}\n{parameter_table(name)}\n{_TABLE_END}", text)
    return text


if __name__ == "__main__":  # pragma: no cover
    import sys
    from pathlib import Path

    if sys.argv[1:2] == ["--audits-md"]:
        path = Path(sys.argv[2])
        path.write_text(update_audits_md(path.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(config_markdown(), end="")
