"""The run's configuration: every setting and audit parameter is declared once, here or next to
its audit, and everything else reads the declaration.

A declaration is a :class:`Param` (type, default, bounds, ``--quick`` value, one line of help).
The suite-wide settings (``audit.toml`` top level) are :data:`SETTINGS`; each audit declares its
own parameters as its ``defaults``::

    defaults = declare(
        n_seeds=param(int, 3, min=1, quick=2, help="models trained on permuted labels"),
        margin_share=param(float, 0.2, min=0, max=1, help="PASS needs the bound below this share"),
    )

``declare`` returns a plain mapping of name -> default (what :meth:`AuditContext.params` merges)
that also carries the declarations; :func:`params_of` gives them for any audit (an audit whose
``defaults`` is a plain dict gets declarations inferred from its default values). Readers:
:class:`AuditConfig` (validation, once, when it is built), :func:`load_config_file`
(``audit.toml``), :func:`parse_set` (``audit run --set``), ``audit list`` and docs/CONFIG.md
(:mod:`auditor.listing`), and an audit's ``method`` text (:class:`ParamText`).

``audit.toml`` example::

    metric = "ndcg@10"
    min_gain = 0.01
    checks = ["random_label", "isolation"]

    [audits.random_label]
    n_seeds = 5

Unknown keys are errors that list the valid ones, so a typo never silently does nothing.
"""
from __future__ import annotations

import copy
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from auditor.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Param", "param", "declare", "Params", "ParamText", "params_of", "check_param", "check_audit_params",
           "check_seed", "resolve_checks", "SETTINGS", "TOP_LEVEL_KEYS", "AuditConfig", "load_config_file",
           "parse_set", "describe_param"]

_UNSET: Any = object()


@dataclass(frozen=True)
class Param:
    """One tunable: its type, default, bounds, ``--quick`` value and meaning.

    ``type`` is ``bool``, ``int``, ``float``, ``str`` or ``list`` (or a tuple of them); an
    integer is accepted for a float. ``min``/``max`` bound numbers (inclusive); ``choices``
    lists the allowed strings (or list items, for a list); ``none_ok`` lets ``None`` stand
    for "unset: the code decides".
    """

    type: Any
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    none_ok: bool = False
    quick: Any = _UNSET
    option: str | None = None  # the command-line option that sets it (suite settings)
    min_open: bool = False  # the bound itself is excluded
    max_open: bool = False

    @property
    def has_quick(self) -> bool:
        return self.quick is not _UNSET

    def types(self) -> tuple[type, ...]:
        return self.type if isinstance(self.type, tuple) else (self.type,)


def param(type: Any, default: Any = None, *, help: str = "", min: float | None = None,  # noqa: A002
          max: float | None = None, choices: Sequence[Any] | None = None, none_ok: bool = False,  # noqa: A002
          quick: Any = _UNSET, option: str | None = None, min_open: bool = False,
          max_open: bool = False) -> Param:
    """Declare a parameter (see :class:`Param`)."""
    return Param(type, default, help, min, max, tuple(choices) if choices is not None else None,
                 none_ok or default is None, quick, option, min_open, max_open)


class Params(dict):
    """``{name: default}`` of an audit, carrying each parameter's :class:`Param` in ``.declared``."""

    def __init__(self, declared: Mapping[str, Param]) -> None:
        super().__init__({k: p.default for k, p in declared.items()})
        self.declared: dict[str, Param] = dict(declared)

    @property
    def quick(self) -> dict[str, Any]:
        """The ``--quick`` values (what the audit's ``quick_overrides`` are)."""
        return {k: p.quick for k, p in self.declared.items() if p.has_quick}

    def __reduce__(self) -> Any:  # pickles with its declarations (workers of the local / ray executors)
        return (Params, (self.declared,))


def declare(**declared: Param) -> Params:
    """An audit's ``defaults``: ``declare(n_seeds=param(int, 3, min=1, help=...), ...)``."""
    bad = [k for k, p in declared.items() if not isinstance(p, Param)]
    if bad:
        raise TypeError(f"declare(): {bad} are not param(...) declarations")
    return Params(declared)


class ParamText(str):
    """A text (an audit's ``method``) with ``{name}`` placeholders filled from the audit's declared
    defaults and ``{quick_name}`` from its ``--quick`` values when the class is defined, so the
    numbers it quotes are the ones the code uses (format specs work: ``{n_bootstrap:,}``)."""

    def render(self, defaults: Mapping[str, Any], quick: Mapping[str, Any]) -> str:
        values = dict(defaults)
        values.update({f"quick_{k}": v for k, v in quick.items()})
        return self.format_map(values)


def _inferred(default: Any) -> Param:
    """The declaration an undeclared default implies: its type; an integer count at least 1
    (at least 0 when the default is 0, unbounded when it is negative, e.g. -1 for "off")."""
    if default is None:
        return Param(object, None, none_ok=True)
    if isinstance(default, bool):
        return Param(bool, default)
    if isinstance(default, int):
        return Param(int, default, min=1 if default >= 1 else 0 if default == 0 else None)
    if isinstance(default, float):
        return Param(float, default)
    if isinstance(default, (list, tuple)):
        return Param(list, default)
    return Param(type(default), default)


def params_of(audit: Any) -> dict[str, Param]:
    """Every parameter of ``audit`` (instance or class) with its declaration."""
    d = getattr(audit, "defaults", {}) or {}
    if isinstance(d, Params):
        return dict(d.declared)
    quick = getattr(audit, "quick_overrides", {}) or {}
    out = {}
    for k, v in d.items():
        p = _inferred(v)
        out[k] = Param(p.type, p.default, p.help, p.min, p.max, p.choices, p.none_ok,
                       quick[k] if k in quick else _UNSET)
    return out


# --------------------------------------------------------------------------- checking one value
_WANT = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}


def _number(x: Any) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _bounds(p: Param) -> str:
    """`` in [0, 1)``, `` >= 1``, `` > 0`` or ``""``."""
    if p.min is not None and p.max is not None:
        return f" in {'(' if p.min_open else '['}{_number(p.min)}, {_number(p.max)}{')' if p.max_open else ']'}"
    if p.min is not None:
        return f" {'>' if p.min_open else '>='} {_number(p.min)}"
    if p.max is not None:
        return f" {'<' if p.max_open else '<='} {_number(p.max)}"
    return ""


def describe_param(p: Param) -> str:
    """What values ``p`` takes, in words: ``integer >= 1``, ``number in [0, 1]``, ``"a" | "b"``."""
    if p.choices is not None and p.types() == (str,):
        s = " | ".join(f'"{c}"' for c in p.choices)
    elif p.choices is not None:
        s = "list of " + " | ".join(f'"{c}"' for c in p.choices)
    else:
        names = {bool: "true | false", int: "integer", float: "number", str: "string", list: "list"}
        s = " or ".join(names.get(t, "any") for t in p.types())
        s += _bounds(p)
    return s + (" or unset" if p.none_ok and p.default is not None else "")


def _type_ok(t: type, value: Any) -> bool:
    if t is bool:
        return isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if t is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t is list:
        return isinstance(value, (list, tuple))
    if t is object:
        return True
    return isinstance(value, t)


def check_param(where: str, key: str, value: Any, p: Param) -> None:
    """Raise ConfigError unless ``value`` fits ``p``; the message names ``where``, the key, what was
    expected and the fix (checked before any work: a typo is an exit-2 error, not an audit that
    errors minutes later)."""
    fix = f"Fix: set {key} to a value like the default ({p.default!r}), or remove it to use the default."
    if value is None and p.none_ok:
        return
    types = p.types()
    if not any(_type_ok(t, value) for t in types):
        want = " or ".join(_WANT.get(t, t.__name__) for t in types)
        raise ConfigError(f"{where}: expected {want}, got {value!r} ({type(value).__name__}). {fix}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}. {fix}")
        kind = "an integer" if int in types and float not in types else "a number"
        low_bad = p.min is not None and (value <= p.min if p.min_open else value < p.min)
        high_bad = p.max is not None and (value >= p.max if p.max_open else value > p.max)
        if low_bad or high_bad:
            raise ConfigError(f"{where}: expected {kind}{_bounds(p)}, got {value}. {fix}")
    if p.choices is not None:
        many = isinstance(value, (list, tuple))
        bad = [v for v in (value if many else [value]) if v not in p.choices]
        if bad:
            valid = ", ".join(repr(c) for c in p.choices)
            got = ", ".join(repr(b) for b in bad)
            raise ConfigError(f"{where}: expected {'items from' if many else 'one of'} {valid}, got {got}. {fix}")


def check_audit_params(audits: Any) -> None:
    """``[audits.NAME]`` tables: known audits, known parameters, each value as declared."""
    from auditor.audits import audit_names, get_audit

    if not isinstance(audits, Mapping):
        raise ConfigError(f"audits must map audit names to tables of parameters, got {audits!r}.")
    for name, params in audits.items():
        if name not in audit_names():
            raise ConfigError(f"[audits.{name}]: unknown audit; valid: {', '.join(audit_names())}.")
        if not isinstance(params, Mapping):
            raise ConfigError(f"[audits.{name}]: expected a table of parameters, got {params!r}.")
        declared = params_of(get_audit(name))
        bad = sorted(set(params) - set(declared))
        if bad:
            raise ConfigError(f"[audits.{name}]: unknown parameter(s) {', '.join(bad)}; "
                              f"valid: {', '.join(sorted(declared)) or 'none'}.")
        for key, value in params.items():
            check_param(f"[audits.{name}] {key}", key, value, declared[key])


def check_seed(seed: Any) -> int:
    """The run seed: an integer from 0 to 2**63 - 1."""
    import numpy as np

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**63:
        raise ConfigError(f"seed: expected an integer from 0 to 2**63 - 1, got {seed!r}. "
                          "Fix: pass --seed 0 (or any non-negative integer).")
    return int(seed)


def resolve_checks(checks: Sequence[str] | str | None) -> list[str]:
    """Validate ``--checks``; None or "all" -> every built-in audit, in report order."""
    from auditor.audits import AUDIT_NAMES, audit_names, get_audit

    if checks is None or checks == "all" or checks == ["all"]:
        return list(AUDIT_NAMES)
    valid = audit_names()
    if isinstance(checks, str):
        checks = [c for c in checks.split(",")]
    names = [c.strip() for c in checks if c.strip()]
    bad = [c for c in names if c not in valid]
    if bad or not names:
        raise ConfigError(f"--checks: unknown audit {', '.join(repr(b) for b in bad) or '(empty)'}; "
                          f"valid: {', '.join(valid)} (comma-separated).")
    for n in names:
        if n not in AUDIT_NAMES:
            get_audit(n)  # a third-party audit is checked now, before any data are read
    return [n for n in valid if n in names]


# --------------------------------------------------------------------------- the suite settings
#: ``audit.toml`` top level; the first six are :class:`AuditConfig` fields, the others arguments of ``run_audit``
SETTINGS: dict[str, Param] = {
    "metric": param(str, "ndcg@10", option="--metric",
                    help="the metric every audit reports (ndcg@k, map, mrr, p@k, recall@k ...)"),
    "alpha": param(float, 0.05, min=0, max=1, min_open=True, max_open=True,
                   help="suite significance level; gating p-values are Holm-adjusted across audits"),
    "gain": param(str, "linear", choices=("linear", "exp"), help="graded gain in DCG: linear (rel) or exp (2^rel - 1)"),
    "no_relevant": param(str, "exclude", choices=("exclude", "zero"),
                         help="queries without a relevant item: exclude (counted) or zero"),
    "min_gain": param(float, 0.0, option="--min-gain",
                      help="the gain over the baseline you claim (metric units): significance PASSes only when the "
                           "CI's lower bound is above it; above 0 the MDE is judged against it (underpowered: "
                           "INCONCLUSIVE)"),
    "quick": param(bool, False, option="--quick", help="fewer repeats and resamples (the --quick column): a fast "
                                                       "first look"),
    "seed": param(int, 0, min=0, option="--seed", help="run seed: every random stream derives from it"),
    "checks": param((list, str), None, option="--checks", help="audits to run (default: all)"),
    "executor": param(str, "serial", choices=("serial", "local", "ray"), option="--executor",
                      help="serial, local (N processes) or ray"),
    "device": param(str, "cpu", option="--device", help="passed to the model factory: cpu, cuda, cuda:N or auto"),
}
TOP_LEVEL_KEYS = (*SETTINGS, "audits")
_CONFIG_FIELDS = ("metric", "alpha", "gain", "no_relevant", "min_gain", "quick", "audits")


def _check_setting(key: str, value: Any) -> None:
    """One :class:`AuditConfig` field, checked as :data:`SETTINGS` declares it."""
    import numpy as np

    if key == "audits":
        check_audit_params(value)
    elif key == "quick":
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"quick must be true or false, got {value!r} ({type(value).__name__}).")
    elif SETTINGS[key].type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r} ({type(value).__name__}).")
        if key == "alpha" and not 0 < float(value) < 1:
            raise ConfigError(f"alpha must be in (0, 1), got {value}.")
    else:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}.")
        choices = SETTINGS[key].choices
        if choices and value not in choices:
            raise ConfigError(f"{key} must be {' or '.join(repr(c) for c in choices)}, got {value!r}.")
        if key == "metric":
            from auditor.metrics import parse_metric

            try:
                fam = parse_metric(value).family
            except ValueError as e:
                raise ConfigError(f"metric: {e}") from e
            if not fam.rank_based:
                raise ConfigError(f"metric {value!r} does not depend on the order of the items, and every audit "
                                  "compares orderings; choose a rank-based metric (audit list).")
            if fam.tie_kernel is None:
                raise ConfigError(f"metric {value!r} has no tie-aware kernel (tie_kernel): the audits score tied "
                                  "items by their expected value over every order; it can be used with audit eval only.")


@dataclass
class AuditConfig:
    """Suite-wide settings (``audit.toml`` top level, :data:`SETTINGS`) and per-audit overrides
    (``[audits.NAME]``), validated when built: a value of the wrong type or out of range raises
    :class:`~auditor.errors.ConfigError` naming the key.

    ``audits`` maps ``{audit_name: {param: value}}`` over each audit's declared defaults.
    """

    metric: str = SETTINGS["metric"].default
    alpha: float = SETTINGS["alpha"].default
    gain: str = SETTINGS["gain"].default
    no_relevant: str = SETTINGS["no_relevant"].default
    min_gain: float = SETTINGS["min_gain"].default
    quick: bool = SETTINGS["quick"].default
    audits: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in _CONFIG_FIELDS:
            _check_setting(key, getattr(self, key))

    def replace(self, **changes: Any) -> "AuditConfig":
        """A copy with ``changes`` (command-line values over the file's), checking only what changed."""
        new = copy.copy(self)
        for key, value in changes.items():
            if key not in _CONFIG_FIELDS:
                raise ConfigError(f"{key}: not a configuration key; valid: {', '.join(_CONFIG_FIELDS)}.")
            if key == "audits" and isinstance(value, Mapping):
                old = self.audits
                check_audit_params({n: {k: v for k, v in t.items() if (old.get(n) or {}).get(k, _UNSET) != v}
                                    if isinstance(t, Mapping) else t for n, t in value.items()})
            else:
                _check_setting(key, value)
            setattr(new, key, value)
        return new

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- audit.toml
_MAX_BYTES = 1 << 20  # a configuration is a few lines; anything this large is the wrong file


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read ``audit.toml`` and check every value, naming the file. Returns the file's keys, with
    ``"config"`` holding the :class:`AuditConfig` built from them (validated once, here)."""
    from auditor.errors import DataError
    from auditor.loaders import check_input_file

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found. Fix: pass an existing audit.toml to --config.")
    try:
        check_input_file(p, "--config")  # a FIFO or a device would block or never end
    except DataError as e:
        raise ConfigError(str(e)) from None
    if p.stat().st_size > _MAX_BYTES:
        raise ConfigError(f"{p}: {p.stat().st_size:,} bytes is not an audit.toml (at most {_MAX_BYTES:,}). "
                          "Fix: pass the configuration file to --config.")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid TOML ({e}). Fix: check the syntax, e.g. strings in quotes.") from e
    bad = sorted(set(data) - set(TOP_LEVEL_KEYS))
    if bad:
        raise ConfigError(f"{p}: unknown key(s) {', '.join(bad)}; valid: {', '.join(TOP_LEVEL_KEYS)}.")
    audits = data.get("audits", {})
    if not isinstance(audits, dict) or not all(isinstance(v, dict) for v in audits.values()):
        raise ConfigError(f"{p}: [audits.NAME] sections must be tables of parameters.")
    if "checks" in data and not (isinstance(data["checks"], list) or isinstance(data["checks"], str)):
        raise ConfigError(f"{p}: checks must be a list of audit names.")
    try:
        data["config"] = AuditConfig(**{k: data[k] for k in _CONFIG_FIELDS if k in data})
        if "seed" in data:
            check_seed(data["seed"])
        if "checks" in data:
            resolve_checks(data["checks"])
        for key in ("executor", "device"):
            if key in data:
                check_param(key, key, data[key], SETTINGS[key])
    except ConfigError as e:
        raise ConfigError(f"{p}: {str(e).replace('--checks:', 'checks:')}") from e
    return data


def _parse_typed(text: str, p: Param) -> Any:
    """A ``--set`` value read as the parameter's declared type (strings stay strings)."""
    from auditor.registry import parse_value

    types = p.types()
    if list in types and (str not in types or "," in text):
        return [parse_value(x) for x in text.split(",") if x.strip()]
    if str in types:
        return None if p.none_ok and text.strip().lower() in ("none", "null") else text
    return parse_value(text)


def parse_set(pairs: Sequence[str], base: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """``--set AUDIT.KEY=VALUE`` pairs merged over ``base`` (the file's ``[audits.*]``): each value
    is read as its declared type; the result is checked when :class:`AuditConfig` is built."""
    from auditor.audits import audit_names, get_audit

    out = {k: dict(v) for k, v in (base or {}).items()}
    for pair in pairs:
        head, sep, text = pair.partition("=")
        name, dot, key = head.strip().partition(".")
        if not sep or not dot or not name or not key:
            raise ConfigError(f"--set {pair!r}: expected AUDIT.KEY=VALUE (e.g. --set random_label.n_seeds=5); "
                              "`audit list` shows every audit's parameters.")
        if name not in audit_names():
            raise ConfigError(f"--set {pair!r}: unknown audit {name!r}; valid: {', '.join(audit_names())}.")
        declared = params_of(get_audit(name))
        if key not in declared:
            raise ConfigError(f"--set {pair!r}: {name} has no parameter {key!r}; "
                              f"valid: {', '.join(sorted(declared)) or 'none'}.")
        out.setdefault(name, {})[key] = _parse_typed(text, declared[key])
    return out
