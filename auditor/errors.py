"""Error types. The user-facing ones (:class:`AuditorError` and its subclasses) the CLI maps to
exit code 2 with their message and no traceback.

Every message says *where* (file, line or column, field), *what was expected* and *how to fix
it*, in one paragraph.

:class:`ModelFailure` is not the user's input but the audited model misbehaving inside a trial:
the audit that hit it becomes ERROR and the run goes on. It lives here, beside the other error
types, so that the context (which raises it) and the audits and executors (which catch it) all
import it from one place below them.
"""
from __future__ import annotations

__all__ = ["AuditorError", "DataError", "PluginError", "ConfigError", "StoreError", "ModelFailure",
           "ModelNotRefittable"]


class AuditorError(Exception):
    """Base class of errors that are the user's to fix (exit code 2)."""

    exit_code = 2


class DataError(AuditorError):
    """Bad input data.

    Parameters
    ----------
    message : str
        What is wrong and what was expected.
    path : str, optional
        The file (or ``"<array>"`` for in-memory data).
    line : int, optional
        1-based line number (text formats) or row index (columnar formats).
    field : str, optional
        Column, token or array name.
    fix : str, optional
        How to fix it.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.path, self.line, self.field, self.fix = path, line, field, fix
        self.detail = message
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        text = (", ".join(where) + ": " if where else "") + message
        if fix:
            text += f" Fix: {fix}"
        super().__init__(text)


class PluginError(AuditorError):
    """A model plugin that cannot be loaded or breaks the contract.

    The message names the plugin spec, the rule broken and the fix.
    """

    def __init__(self, spec: str, message: str, fix: str | None = None) -> None:
        self.spec = spec
        text = f"plugin {spec!r}: {message}"
        if fix:
            text += f" Fix: {fix}"
        super().__init__(text)


class ConfigError(AuditorError):
    """Bad configuration (audit.toml, option values, unknown audit names)."""


class StoreError(AuditorError):
    """The run store refuses an operation (e.g. ``--resume`` with another configuration)."""


class ModelFailure(RuntimeError):
    """The audited model misbehaved during a trial (raised, wrong shape, NaN ...).

    The audit that hit it becomes ERROR with this message; the run goes on.
    """


class ModelNotRefittable(ModelFailure):
    """An audit asked to retrain a model that cannot be retrained (``refittable = False`` on the
    factory or model, or ``fit`` raised ``NotImplementedError``; see :mod:`auditor.protocol`).

    Its message starts with ``"model cannot be retrained"``: the runner turns the audit into a
    SKIP with that reason and narrows the verdict's scope, instead of an ERROR.
    """
