"""What ``audit list`` shows: the audits with their parameters and defaults, and the installed
models with the ``--model-param`` keys they take. Everything is read from the code (the audits'
``defaults``, a factory's ``params`` declaration or its signature), never restated."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

__all__ = ["describe_audits", "describe_models", "factory_params", "config_rows", "config_markdown", "toml_value"]


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


# --------------------------------------------------------------------------- audit.toml reference
def _source_comments(cls: type, attr: str = "defaults") -> dict[str, str]:
    """``{key: comment}`` from the trailing comments of ``cls.<attr> = {...}`` in its source, so
    the meaning of a parameter is written once, next to its default."""
    import io
    import tokenize

    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    inside, depth, key = False, 0, None
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if not inside:
            if tok.type == tokenize.NAME and tok.string == attr:
                inside = True
            continue
        if tok.type == tokenize.OP and tok.string in "{[(":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in "}])":
            depth -= 1
            if depth == 0:
                break
        elif tok.type == tokenize.STRING and depth == 1 and key is None:
            key = tok.string.strip("'\"")
        elif tok.type == tokenize.COMMENT and key is not None:
            out[key] = tok.string.lstrip("#").strip()
        if tok.type in (tokenize.NL, tokenize.NEWLINE):
            key = None
    return out


def _configfile_comments() -> dict[str, str]:
    """Meanings of the top-level keys: the comments of the example in auditor/configfile.py."""
    import re

    import auditor.configfile as cf

    out = {}
    for line in (cf.__doc__ or "").splitlines():
        m = re.match(r"\s*([a-z_]+)\s*=\s*[^#]*#\s*(.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def config_rows() -> list[dict[str, str]]:
    """Every ``audit.toml`` key: ``{"key", "section", "default", "quick", "meaning"}``, top level
    first (defaults of :class:`~auditor.context.AuditConfig` and :func:`~auditor.runner.run_audit`),
    then each audit's ``[audits.NAME]`` parameters (its ``defaults``)."""
    import dataclasses

    from auditor.audits import AUDIT_NAMES, get_audit
    from auditor.configfile import TOP_LEVEL_KEYS
    from auditor.context import AuditConfig
    from auditor.runner import run_audit

    cfg_defaults = {f.name: f.default for f in dataclasses.fields(AuditConfig)
                    if f.default is not dataclasses.MISSING}
    run_defaults = {k: p.default for k, p in inspect.signature(run_audit).parameters.items()}
    comments = _configfile_comments()
    rows = []
    for key in TOP_LEVEL_KEYS:
        if key == "audits":
            continue
        if key in cfg_defaults:
            default = toml_value(cfg_defaults[key])
        elif key == "checks":
            default = "all audits"
        else:
            default = toml_value(run_defaults.get(key))
        rows.append({"key": key, "section": "top level", "default": default, "quick": "",
                     "meaning": comments.get(key, "")})
    for name in AUDIT_NAMES:
        audit = get_audit(name)
        notes = _source_comments(type(audit))
        quick = getattr(audit, "quick_overrides", {}) or {}
        for key, value in audit.defaults.items():
            rows.append({"key": key, "section": f"[audits.{name}]", "default": toml_value(value),
                         "quick": toml_value(quick[key]) if key in quick else "",
                         "meaning": notes.get(key) or f"see docs/AUDITS.md, {name}"})
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


def config_markdown() -> str:
    """docs/CONFIG.md: the one table of audit.toml keys (regenerate: python -m auditor.listing)."""
    lines = ["# audit.toml: every key", "",
             "Generated from the code by `python -m auditor.listing > docs/CONFIG.md` (a test fails when it",
             "is out of date). Command-line options win over the file. Every value is checked before any",
             "data are loaded: an unknown key, a value of the wrong type (a parameter takes its default's",
             "type) or a count below 1 exits 2 naming the file and the key. `--quick` uses the `--quick`",
             "column where it has a value, unless the file sets the key.", "",
             "| key | section | default | `--quick` | meaning |", "|---|---|---|---|---|"]
    for r in config_rows():
        meaning = r["meaning"].replace("|", "\\|")
        lines.append(f"| `{r['key']}` | {r['section']} | `{r['default']}` | "
                     f"{'`' + r['quick'] + '`' if r['quick'] else ''} | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(config_markdown(), end="")
