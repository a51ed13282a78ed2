"""``audit.toml``: the run configuration file (stdlib ``tomllib``), merged under command-line options.

Example::

    metric = "ndcg@10"        # the metric every audit reports
    alpha = 0.05              # suite alpha (Holm across gating audits)
    gain = "linear"           # or "exp" (2^rel - 1)
    no_relevant = "exclude"   # queries without a relevant item: "exclude" (counted) or "zero"
    min_gain = 0.0            # smallest meaningful gain over the baseline
    quick = false
    seed = 0
    checks = ["random_label", "isolation"]
    executor = "serial"

    [audits.random_label]
    n_seeds = 5

Unknown keys are errors that list the valid ones, so a typo never silently does nothing.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from auditor.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["load_config_file", "TOP_LEVEL_KEYS"]

_MAX_BYTES = 1 << 20  # a configuration is a few lines; anything this large is the wrong file

TOP_LEVEL_KEYS = ("metric", "alpha", "gain", "no_relevant", "min_gain", "quick", "seed", "checks", "executor",
                  "device", "audits")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read and validate the top level of ``audit.toml``. Raises ConfigError with file and key."""
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
    _check_values(p, data)
    return data


def _check_values(p: Path, data: dict[str, Any]) -> None:
    """Each value's type and range, with the file named (the same checks ``run_audit`` makes)."""
    from auditor.context import AuditConfig
    from auditor.runner import _check_seed, _validate_audit_params, resolve_checks

    keys = ("metric", "alpha", "gain", "no_relevant", "min_gain", "quick", "audits")
    try:
        config = AuditConfig(**{k: data[k] for k in keys if k in data})
        _validate_audit_params(config)
        if "seed" in data:
            _check_seed(data["seed"])
        if "checks" in data:
            resolve_checks(data["checks"])
    except ConfigError as e:
        raise ConfigError(f"{p}: {str(e).replace('--checks:', 'checks:')}") from e
