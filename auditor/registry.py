"""Model discovery: entry points, ``package.module:attr`` and ``path/to/file.py:attr``.

The bundled ``reference`` model is found exactly like a user's plugin: through the entry-point
group ``auditor.models`` declared in ``pyproject.toml``.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from auditor.errors import PluginError
from auditor.guard import exit_message, no_exit

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


def _load_file(spec: str, path_s: str, attr: str, base: str | None = None) -> Any:
    shown = Path(path_s).expanduser()
    path = Path(base) / shown if base is not None and not shown.is_absolute() else shown
    if not path.is_file():
        where = f" (looked in {base})" if path is not shown and Path(base) != Path.cwd() else ""
        raise PluginError(spec, f"file {str(shown)!r} does not exist{where}.",
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
            with no_exit():
                ispec.loader.exec_module(module)
        except SystemExit as e:  # importing the plugin must not end the run (with exit 0)
            del sys.modules[mod_name]
            raise PluginError(spec, f"importing {str(path)!r} {exit_message(e)}.") from None
        except Exception as e:  # user code: report, never a traceback
            del sys.modules[mod_name]
            raise PluginError(spec, f"importing {str(path)!r} raised {type(e).__name__}: {e}",
                              "run the file with python to see the full error.") from e
    if not hasattr(module, attr):
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise PluginError(spec, f"{str(path)!r} has no attribute {attr!r} (callables there: {names}).",
                          "name the factory after the colon, e.g. path/to/file.py:my_factory "
                          f"(a bare path means :{DEFAULT_FACTORY}).")
    return getattr(module, attr)


def _load_module_attr(spec: str, mod: str, attr: str) -> Any:
    try:
        with no_exit():
            module = importlib.import_module(mod)
    except SystemExit as e:
        raise PluginError(spec, f"importing {mod!r} {exit_message(e)}.") from None
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


#: the factory a bare ``path/to/file.py`` names: the one ``audit init-plugin`` writes and the examples use
DEFAULT_FACTORY = "make_model"


def with_default_factory(spec: str) -> str:
    """``path/to/file.py`` -> ``path/to/file.py:make_model``; any other spec unchanged."""
    spec = spec.strip()
    if ":" not in spec and spec.endswith(".py"):
        return f"{spec}:{DEFAULT_FACTORY}"
    return spec


def resolve_factory(spec: str, *, base: str | None = None) -> Callable[..., Any]:
    """Turn a model spec into its factory.

    ``spec`` is an entry-point name (``reference``), ``package.module:attr``, or
    ``path/to/file.py[:attr]`` (``attr`` defaults to :data:`DEFAULT_FACTORY`; a relative path is
    taken from ``base`` when given, else from the current directory). Raises
    :class:`~auditor.errors.PluginError` naming the spec, the cause and the fix.
    """
    spec = with_default_factory(spec)
    if not spec:
        raise PluginError(spec, "empty model name.", "pass --model reference or --model pkg.mod:factory.")
    if ":" in spec:
        left, attr = spec.rsplit(":", 1)
        if left.endswith(".py") or "/" in left or "\\" in left:
            obj = _load_file(spec, left, attr, base)
        else:
            obj = _load_module_attr(spec, left, attr)
    else:
        eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        if spec not in eps:
            raise PluginError(spec, f"no model named {spec!r} is installed (found: {sorted(eps) or 'none'}).",
                              "use an installed name, package.module:factory, or path/to/file.py:factory.")
        try:
            with no_exit():
                obj = eps[spec].load()
        except SystemExit as e:
            raise PluginError(spec, f"loading entry point {eps[spec].value!r} {exit_message(e)}.") from None
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
        # where a relative plugin path was named: a worker whose directory differs (a Ray worker
        # starts in its session directory) finds the file from here
        try:
            self._cwd: str | None = os.getcwd()
        except OSError:  # the directory was removed
            self._cwd = None

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "params": self.params, "device": self.device, "cwd": self._cwd}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        cwd = state.pop("cwd", None)
        self.__dict__.update(state)
        self._factory = None
        self._cwd = cwd

    @property
    def factory(self) -> Callable[..., Any]:
        if self._factory is None:
            self._factory = resolve_factory(self.spec, base=getattr(self, "_cwd", None))
        return self._factory

    def make(self, seed: int = 0) -> Any:
        """A fresh, unfitted model. Raises PluginError when the factory fails."""
        kw = dict(self.params)
        if "device" not in kw and _accepts(self.factory, "device"):
            kw["device"] = self.device
        try:
            with no_exit():
                return self.factory(seed=seed, **kw)
        except SystemExit as e:
            raise PluginError(self.spec, f"factory(seed={seed}) {exit_message(e)}.") from None
        except TypeError as e:
            raise PluginError(self.spec, f"factory(seed={seed}, **{kw}) raised TypeError: {e}",
                              "the factory must accept seed= and the --model-param keys.") from e

    def describe(self) -> dict[str, Any]:
        return {"spec": self.spec, "params": self.params, "device": self.device}

    def code_fingerprint(self) -> dict[str, Any]:
        """What identifies the plugin's code, for ``--resume``: ``{"files": {path: sha256}, "distribution"}``.

        ``file.py:attr`` -> that file; ``pkg.mod:attr`` -> every ``.py`` file of the top-level
        package ``pkg`` (a module's helpers usually live in its package), or only the module's
        own file plus its distribution's version when the package has more than
        :data:`MAX_HASHED_FILES` files (an installed library such as scikit-learn); an entry
        point -> its distribution's name and version plus its module's package files as for
        ``pkg.mod:attr`` (an editable install changes code without changing the version). A
        single-file plugin's helpers imported from elsewhere are not covered.
        """
        return code_fingerprint(self.spec)


#: above this many .py files a package is fingerprinted by its module file and version only
MAX_HASHED_FILES = 2000


def _sha256_file(path: Path) -> str:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        return f"unreadable ({e.strerror or e})"


def _distribution_of(top: str) -> str | None:
    from importlib.metadata import packages_distributions, version

    names = packages_distributions().get(top) or []
    for name in names:
        try:
            return f"{name}=={version(name)}"
        except Exception:  # noqa: BLE001 -- broken metadata: no version to record
            continue
    return None


def _module_files(mod: str) -> tuple[list[Path], str | None]:
    """Source files that stand for module ``mod`` (see :meth:`ModelSpec.code_fingerprint`)."""
    top = mod.split(".")[0]
    module = sys.modules.get(top)
    roots = list(getattr(module, "__path__", []) or [])
    origin = getattr(module, "__file__", None)
    if module is None:
        try:
            found = importlib.util.find_spec(top)  # a top-level name: locates without importing
        except (ImportError, ValueError):
            found = None
        if found is None:
            return [], None
        roots = list(found.submodule_search_locations or [])
        origin = found.origin
    if not roots:
        return ([Path(origin)] if origin and Path(origin).is_file() else []), None
    files = sorted({p for r in roots for p in Path(r).rglob("*.py") if "__pycache__" not in p.parts})
    if len(files) <= MAX_HASHED_FILES:
        return files, None
    own = getattr(sys.modules.get(mod), "__file__", None)
    return ([Path(own)] if own else []), _distribution_of(top)


def code_fingerprint(spec: str) -> dict[str, Any]:
    """See :meth:`ModelSpec.code_fingerprint`."""
    spec = with_default_factory(spec)
    dist = None
    if ":" in spec:
        left, _attr = spec.rsplit(":", 1)
        if left.endswith(".py") or "/" in left or "\\" in left:
            files = [Path(left).expanduser().resolve()]
        else:
            files, dist = _module_files(left)
    else:
        ep = {e.name: e for e in entry_points(group=ENTRY_POINT_GROUP)}.get(spec)
        if ep is None:
            return {"files": {}, "distribution": None}
        files, _ = _module_files(ep.module)
        d = getattr(ep, "dist", None)
        dist = f"{d.name}=={d.version}" if d is not None else None
    return {"files": {str(p): _sha256_file(p) for p in files}, "distribution": dist}
