"""Model discovery: entry points, ``package.module:attr`` and ``path/to/file.py:attr``.

The bundled ``reference`` model is found exactly like a user's plugin: through the entry-point
group ``auditor.models`` declared in ``pyproject.toml``.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from auditor.errors import PluginError

__all__ = ["ENTRY_POINT_GROUP", "ModelSpec", "resolve_factory", "available_models", "parse_params",
           "parse_value"]

ENTRY_POINT_GROUP = "auditor.models"


def parse_value(v: str) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"`` -> True; anything else stays a string."""
    low = v.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def parse_params(pairs: tuple[str, ...] | list[str], *, option: str = "--model-param") -> dict[str, Any]:
    """Parse ``key=value`` pairs. Raises :class:`~auditor.errors.ConfigError` on a malformed pair."""
    from auditor.errors import ConfigError

    out: dict[str, Any] = {}
    for p in pairs:
        if "=" not in p or not p.split("=", 1)[0].strip():
            raise ConfigError(f"{option} {p!r}: expected key=value (e.g. {option} scenario=leaky).")
        k, v = p.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def available_models() -> dict[str, str]:
    """Installed entry points: ``{name: "module:attr"}``."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load_file(spec: str, path_s: str, attr: str) -> Any:
    path = Path(path_s).expanduser()
    if not path.is_file():
        raise PluginError(spec, f"file {str(path)!r} does not exist.",
                          "give a path to a .py file, e.g. ./plugins/my_ranker.py:make_model.")
    mod_name = f"_auditor_plugin_{abs(hash(str(path.resolve())))}"
    if mod_name in sys.modules:
        module = sys.modules[mod_name]
    else:
        ispec = importlib.util.spec_from_file_location(mod_name, path)
        if ispec is None or ispec.loader is None:
            raise PluginError(spec, f"cannot import {str(path)!r} as Python.", "the file must end in .py.")
        module = importlib.util.module_from_spec(ispec)
        sys.modules[mod_name] = module
        try:
            ispec.loader.exec_module(module)
        except Exception as e:  # user code: report, never a traceback
            del sys.modules[mod_name]
            raise PluginError(spec, f"importing {str(path)!r} raised {type(e).__name__}: {e}",
                              "run the file with python to see the full error.") from e
    if not hasattr(module, attr):
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise PluginError(spec, f"{str(path)!r} has no attribute {attr!r} (callables there: {names}).",
                          "name the factory after the colon.")
    return getattr(module, attr)


def _load_module_attr(spec: str, mod: str, attr: str) -> Any:
    try:
        module = importlib.import_module(mod)
    except ModuleNotFoundError as e:
        raise PluginError(spec, f"module {mod!r} not found ({e}).",
                          "install the package, or use path/to/file.py:factory for a file.") from e
    except Exception as e:
        raise PluginError(spec, f"importing {mod!r} raised {type(e).__name__}: {e}") from e
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PluginError(spec, f"{mod!r} has no attribute {attr!r}.", "check the name after the colon.")
        obj = getattr(obj, part)
    return obj


def resolve_factory(spec: str) -> Callable[..., Any]:
    """Turn a model spec into its factory.

    ``spec`` is an entry-point name (``reference``), ``package.module:attr``, or
    ``path/to/file.py:attr``. Raises :class:`~auditor.errors.PluginError` naming the spec,
    the cause and the fix.
    """
    spec = spec.strip()
    if not spec:
        raise PluginError(spec, "empty model name.", "pass --model reference or --model pkg.mod:factory.")
    if ":" in spec:
        left, attr = spec.rsplit(":", 1)
        if left.endswith(".py") or "/" in left or "\\" in left:
            obj = _load_file(spec, left, attr)
        else:
            obj = _load_module_attr(spec, left, attr)
    else:
        eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        if spec not in eps:
            raise PluginError(spec, f"no model named {spec!r} is installed (found: {sorted(eps) or 'none'}).",
                              "use an installed name, package.module:factory, or path/to/file.py:factory.")
        try:
            obj = eps[spec].load()
        except Exception as e:
            raise PluginError(spec, f"loading entry point {eps[spec].value!r} raised {type(e).__name__}: {e}") from e
    if not callable(obj):
        raise PluginError(spec, f"{spec!r} resolves to a {type(obj).__name__}, not a factory.",
                          "point at a function or class that returns an unfitted model.")
    return obj


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    # only an explicitly named parameter: **kwargs factories often forward to strict constructors
    return name in sig.parameters


@dataclass
class ModelSpec:
    """A model named on the command line plus its parameters; picklable (workers re-resolve it).

    Parameters
    ----------
    spec : str
    params : dict
        ``--model-param`` values, passed to the factory.
    device : str
        Passed as ``device=`` only when the factory accepts it.
    """

    spec: str
    params: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def __post_init__(self) -> None:
        self._factory: Callable[..., Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "params": self.params, "device": self.device}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._factory = None

    @property
    def factory(self) -> Callable[..., Any]:
        if self._factory is None:
            self._factory = resolve_factory(self.spec)
        return self._factory

    def make(self, seed: int = 0) -> Any:
        """A fresh, unfitted model. Raises PluginError when the factory fails."""
        kw = dict(self.params)
        if "device" not in kw and _accepts(self.factory, "device"):
            kw["device"] = self.device
        try:
            return self.factory(seed=seed, **kw)
        except TypeError as e:
            raise PluginError(self.spec, f"factory(seed={seed}, **{kw}) raised TypeError: {e}",
                              "the factory must accept seed= and the --model-param keys.") from e

    def describe(self) -> dict[str, Any]:
        return {"spec": self.spec, "params": self.params, "device": self.device}
