"""The ``audit`` command line: a thin layer over :func:`auditor.run_audit` and friends.

Exit codes (public, stable):

====  =====================================================================
0     GO (``run``), all checks passed (``check-plugin``), success
1     NO_GO (``run``), a conformance check failed (``check-plugin``)
2     usage, configuration, plugin or data error (one clear paragraph, no traceback)
3     INCONCLUSIVE: an audit errored or the evidence is underpowered
130   interrupted (Ctrl-C); finished trials are kept, ``--resume`` continues
143   terminated (SIGTERM); as 130
141   standard output closed before everything was written (``audit list | head``), quietly, as
      a C tool killed by SIGPIPE
====  =====================================================================

``run`` never exits 0, 1 or 3 without the verdict it wrote: plugin code that calls
``sys.exit`` during a run is that trial's ERROR, and if anything else ends the command early
with such a code, :func:`main` turns it into exit 2 with a message.

``--debug`` (or ``AUDITOR_DEBUG=1``) shows tracebacks for unexpected errors.
"""
from __future__ import annotations

import sys

if __name__ == "__main__" and sys.argv[1:2] == ["trec-eval"]:  # pragma: no cover - process entry
    # `python -m auditor.cli trec-eval ...`: trec_eval's drop-in starts without click and this
    # module's imports (a third of its start-up) and ends without the interpreter's teardown
    from auditor.trec_eval import run_as_process

    run_as_process(sys.argv[2:])

import functools
import json
import math
import os
import shlex
from pathlib import Path
from typing import Any, Callable

import click

from auditor import __version__
from auditor.console import quiet_stdout
from auditor.errors import AuditorError, ConfigError, PluginError
from auditor.guard import exit_message
from auditor.inputfiles import InputFile
from auditor.loaders.formats import FEATURE_FORMATS, FORMATS
from auditor.safetext import printable

__all__ = ["cli", "main"]


class _ExitError(click.ClickException):
    """A ClickException with our exit code (2 for user errors, 130 for interrupts)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(printable(message))  # user strings inside must not drive the terminal
        self.exit_code = exit_code


class _Terminated(BaseException):
    """SIGTERM outside a run's trial loop (which handles it itself, keeping trials)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


#: set by ``run`` once a verdict is written (``main`` checks it; see the module docstring)
_RUN_STATE: dict[str, Any] = {"started": False, "verdict": None}


class AuditGroup(click.Group):
    """Maps our errors to clean messages and exit codes, never a traceback (unless --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AuditorError as e:
            raise _ExitError(str(e), getattr(e, "exit_code", 2)) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            raise _ExitError("interrupted.", 130) from None
        except _Terminated:
            raise _ExitError("terminated (SIGTERM).", 143) from None
        except BrokenPipeError:
            quiet_stdout()
            raise SystemExit(141) from None
        except Exception as e:
            if (ctx.obj or {}).get("debug") or os.environ.get("AUDITOR_DEBUG"):
                raise
            raise _ExitError(f"internal error: {type(e).__name__}: {e}. This is a bug in rank-auditor or a plugin; "
                             "rerun with `audit --debug ...` for the traceback and report it.", 2) from None


# --------------------------------------------------------------------------- shared options
def _kv_option(name: str, help_: str) -> Callable:
    return click.option(name, "model_params" if name == "--model-param" else "baseline_params",
                        multiple=True, metavar="KEY=VALUE", help=help_)


def _no_trec_run(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A TREC run file (.run/.trec/.res) holds scores, not features: nothing for the audits to train on."""
    if value is not None and Path(value).suffix.lower() in FORMATS["trec"].suffixes:
        raise click.BadParameter(
            f"{value!r} looks like a TREC run file: audit run/check-plugin read features and labels "
            "(letor, parquet, csv, npz). Evaluate a run with `audit eval --qrels Q --run R` or "
            "`audit trec-eval Q R`, or compare it to the model with `audit run --baseline-run`.")
    return value


def data_options(f: Callable) -> Callable:
    """--train/--test/--format/--feature-groups, shared by run and check-plugin."""
    for dec in reversed([
        click.option("--train", type=InputFile(), callback=_no_trec_run, help="Training data file."),
        click.option("--test", type=InputFile(), callback=_no_trec_run,
                     help="Held-out test data file."),
        click.option("--format", "fmt", type=click.Choice(FEATURE_FORMATS),
                     help="Data format (default: guessed from the file suffix)."),
        click.option("--feature-groups", metavar="SPEC",
                     help="Named groups of 1-based feature columns, e.g. 'image=1-512;text=513-1024' (every column "
                          "in one group; syntax: README 'Audit your own model', reference in "
                          "auditor/loaders/__init__.py)."),
        click.option("--max-features", type=click.IntRange(min=1), default=None,
                     help="Widest feature matrix a sparse (LETOR/svmlight) file may expand to, in columns "
                          "[default: 10000]."),
    ]):
        f = dec(f)
    return f


def model_options(f: Callable) -> Callable:
    f = _kv_option("--model-param", "Parameter passed to the model factory (repeatable).")(f)
    return f


def _params(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    from auditor.registry import parse_params

    return parse_params(pairs, option=option)


@click.group(cls=AuditGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rank-auditor")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """rank-auditor: is this ranking result real? GO / NO_GO verdicts backed by sound statistics."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# --------------------------------------------------------------------------- run
def _reconstruct(cmd: str, params: dict[str, Any]) -> str:
    parts = ["audit", cmd]
    for k, v in params.items():
        if v in (None, False, ()) or k in ("quiet",):
            continue
        opt = "--" + k.replace("_", "-")
        opt = {"--fmt": "--format", "--model-params": "--model-param", "--baseline-params": "--baseline-param",
               "--config-path": "--config", "--set-values": "--set"}.get(opt, opt)
        if v is True:
            parts.append(opt)
        elif isinstance(v, tuple):
            for item in v:
                parts += [opt, str(item)]
        else:
            parts += [opt, str(v)]
    return shlex.join(parts)


@cli.command("run")
@click.option("--model", "model", required=True, help="reference | pkg.module:factory | path/file.py:factory")
@model_options
@data_options
@click.option("--synthetic", type=InputFile(), help="Synthetic training set to compare with real data.")
@click.option("--baseline", help="Baseline model for the significance audit.")
@_kv_option("--baseline-param", "Parameter passed to the baseline factory (repeatable).")
@click.option("--baseline-run", type=InputFile(), help="TREC run file with baseline scores for the test rows.")
@click.option("--checks", help="Comma-separated audits (default: all). See `audit list`.")
@click.option("--config", "config_path", type=InputFile(), help="audit.toml configuration.")
@click.option("--set", "set_values", multiple=True, metavar="AUDIT.KEY=VALUE",
              help="An audit parameter, over audit.toml (repeatable), e.g. --set random_label.n_seeds=5; "
                   "`audit list` shows each audit's parameters.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Run directory [default: audit-out].")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Run seed, a non-negative integer [default: 0].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="[default: cpu]")
@click.option("--executor", type=click.Choice(["serial", "local", "ray"]), default=None, help="[default: serial]")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Trials at a time for --executor local (this process + N-1 workers) or ray.")
@click.option("--ray-address", default=None, help="Ray cluster address (with --executor ray).")
@click.option("--resume", is_flag=True, help="Continue the run in --out, skipping finished trials.")
@click.option("--quick", is_flag=True, default=None, help="Fewer repeats and resamples: a fast first look.")
@click.option("--metric", default=None, help="Metric every audit reports [default: ndcg@10].")
@click.option("--min-gain", "min_gain", type=float, default=None, metavar="GAIN",
              help="The gain over the baseline you claim, in metric units (e.g. 0.01 = +0.01 nDCG@10): the "
                   "significance audit tests mean gain > GAIN and judges the test set's power at it "
                   "[default: 0, or min_gain in audit.toml].")
@click.option("--trial-timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="A trial running longer fails (ERROR) and its worker is replaced [default: no limit].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars; one summary line (for CI logs).")
def run_cmd(model: str, model_params: tuple[str, ...], train: str | None, test: str | None, fmt: str | None,
            feature_groups: str | None, max_features: int | None, synthetic: str | None, baseline: str | None,
            baseline_params: tuple[str, ...], baseline_run: str | None, checks: str | None,
            config_path: str | None, set_values: tuple[str, ...], out: str | None, seed: int | None,
            device: str | None,
            executor: str | None, workers: int | None, ray_address: str | None, resume: bool,
            quick: bool | None, metric: str | None, min_gain: float | None, trial_timeout: float | None,
            quiet: bool) -> None:
    """Audit a model: GO / NO_GO / INCONCLUSIVE and the reports.

    Writes results.json, report.html, junit.xml and summary.md into --out. Exit code 0 GO,
    1 NO_GO, 3 INCONCLUSIVE, 2 bad input.
    """
    _RUN_STATE.update(started=True, verdict=None)
    from auditor.config import AuditConfig, parse_set
    from auditor.loaders import feature_width_limit
    from auditor.runner import run_audit

    params = click.get_current_context().params
    click.get_current_context().with_resource(feature_width_limit(max_features))  # for the loads in run_audit
    command = _reconstruct("run", dict(params))
    file_cfg: dict[str, Any] = {}
    if config_path:
        from auditor.config import load_config_file

        file_cfg = load_config_file(config_path)  # every value checked, naming the file
    config = file_cfg.get("config") or AuditConfig()
    changes: dict[str, Any] = {}
    if metric is not None:
        changes["metric"] = metric
    if min_gain is not None:
        if not math.isfinite(min_gain):
            raise ConfigError(f"--min-gain {min_gain}: expected a finite number (the claimed gain in metric "
                              "units, e.g. --min-gain 0.01).")
        changes["min_gain"] = min_gain
    if quick:
        changes["quick"] = True
    if set_values:
        changes["audits"] = parse_set(set_values, config.audits)
    config = config.replace(**changes)  # checks the command-line values only
    checks_v = checks if checks is not None else file_cfg.get("checks")
    seed_v = seed if seed is not None else file_cfg.get("seed", 0)  # validated by run_audit
    device_v = device or file_cfg.get("device", "cpu")
    executor_v = executor or file_cfg.get("executor", "serial")
    out_v = out or "audit-out"
    progress = not quiet and sys.stderr.isatty()
    preparing = _preparing(model, model_params, train, test, resume) if progress else None
    try:
        run = run_audit(model, train=train, test=test, synthetic=synthetic, checks=checks_v, config=config,
                        model_params=_params(model_params, "--model-param"), baseline=baseline,
                        baseline_params=_params(baseline_params, "--baseline-param"), baseline_run=baseline_run,
                        seed=seed_v, device=device_v, out=out_v, executor=executor_v, workers=workers,
                        ray_address=ray_address, resume=resume, fmt=fmt, feature_groups=feature_groups,
                        progress=progress, command=command, trial_timeout=trial_timeout,
                        heartbeat_s=None if quiet else _heartbeat_s(),
                        on_event=(lambda kind, _: preparing.stop() if kind == "planned" else None) if preparing else None)
    except SystemExit as e:  # plugin code outside a trial (trials turn it into their ERROR)
        raise PluginError(model, f"{exit_message(e)}; the run ended before a verdict (no results were written).",
                          "run `audit check-plugin` on it.") from None
    except ConfigError as e:
        # an audit rejecting one of its [audits.NAME] parameters, which only the file sets: name the file
        if config_path and str(e).startswith("[audits."):
            raise ConfigError(f"{config_path}: {e}") from e
        raise
    finally:
        if preparing is not None:
            preparing.stop()
    _print_results(run.results, quiet)
    click.echo(f"Reports: {printable(Path(out_v) / 'report.html')} (results.json, junit.xml, summary.md beside it)",
               err=quiet)
    _RUN_STATE["verdict"] = run.verdict
    sys.exit(run.exit_code)


def _preparing(model: str, model_params: tuple[str, ...], train: str | None, test: str | None,
               resume: bool) -> Any:
    """A spinner on stderr saying what is being prepared, from the first moment until the trial
    bars appear (loading a model and generating or reading data can take seconds)."""
    from rich.console import Console
    from rich.text import Text

    params = f" ({', '.join(model_params)})" if model_params else ""
    data = f"reading {train} and {test}" if train and test else "generating its default data"
    what = f"loading model {model}{params}, {data}, hashing the data and planning the trials"
    if resume:
        what += " (resuming: finished trials are skipped)"
    status = Console(stderr=True).status(Text(printable(f"Preparing: {what}")), spinner="dots")
    status.start()
    return status


def _heartbeat_s() -> float:
    """Seconds a trial runs before ``still running`` lines appear (AUDITOR_HEARTBEAT_S, default 30)."""
    try:
        v = float(os.environ.get("AUDITOR_HEARTBEAT_S", "30"))
    except ValueError:
        v = 30.0
    return v if v > 0 else 30.0


def _print_results(results: dict[str, Any], quiet: bool) -> None:
    if quiet:
        n = {s: sum(a["status"] == s for a in results["audits"]) for s in ("PASS", "WARN", "FAIL", "ERROR", "SKIP")}
        counts = ", ".join(f"{v} {k}" for k, v in n.items() if v)
        label = results.get("verdict_label") or results["verdict"]
        click.echo(printable(f"{label}: {results['verdict_reason']} [{counts}; {results['duration_s']:.1f}s]"))
        return
    try:
        from reports.render import print_summary

        print_summary(results)
    except ImportError:
        for a in results["audits"]:
            click.echo(printable(f"{a['status']:<6} {a['name']:<18} {a['summary']}"))
        click.echo(printable(f"{results.get('verdict_label') or results['verdict']}: {results['verdict_reason']}"))


# --------------------------------------------------------------------------- list
@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(as_json: bool) -> None:
    """Audits, installed models and metrics, with their parameters."""
    from auditor.listing import describe_audits, describe_models
    from auditor.metric_registry import metric_names, plugin_errors

    audits, models = describe_audits(), describe_models()
    settings = _suite_settings()
    if as_json:
        # "models" keeps its earlier shape (name -> factory); the details are under "model_details"
        click.echo(json.dumps({"audits": audits, "models": {m["name"]: m["target"] for m in models},
                               "model_details": {m["name"]: m for m in models}, "metrics": metric_names(),
                               "settings": settings}, indent=2, default=str))
        return
    click.echo("Suite settings (audit.toml top level; the command-line option wins):")
    for st in settings:
        opt = f" ({st['option']})" if st["option"] else ""
        default = "all audits" if st["name"] == "checks" else _toml(st["default"])
        _echo_wrapped(f"{st['name']} = {default}{opt}: {st['meaning']}", indent=2, subsequent=6)
    click.echo("Audits (--checks NAME,...; parameters: [audits.NAME] key = value in audit.toml, or --set NAME.key=value):")
    for a in audits:
        crit = {True: "critical", False: "advisory"}.get(a["critical"], "unavailable")
        _echo_wrapped(f"{a['name']:<18} [{crit}] {a['question']}", indent=2, subsequent=6)
        for k, p in a["params"].items():
            quick = f" (--quick: {_toml(p['quick'])})" if "quick" in p else ""
            _echo_wrapped(f"{k} = {_toml(p['default'])}{quick} [{p['values']}] {p['help']}".rstrip(), indent=6,
                          subsequent=10)
    click.echo("Models (--model NAME; parameters: --model-param KEY=VALUE):")
    for m in models:
        extra = []
        if m.get("has_default_data"):
            extra.append("ships its own data")
        if m.get("default_baseline"):
            extra.append(f"default baseline {m['default_baseline']}")
        click.echo(f"  {m['name']:<18} {m['target']}" + (f" ({'; '.join(extra)})" if extra else ""))
        if m.get("error"):
            click.echo(f"      (cannot be loaded: {m['error']})")
        _echo_model_params(m)
    click.echo("  or any pkg.module:factory / path/to/file.py:factory: its keyword arguments are its parameters")
    click.echo("Metrics (--metric, audit eval -m): " + ", ".join(metric_names()))
    for name, err in plugin_errors().items():
        _echo_wrapped(f"{name} (cannot be loaded: {err})", indent=6)


def _echo_wrapped(text: str, indent: int, subsequent: int | None = None) -> None:
    import textwrap

    if text:
        click.echo(textwrap.fill(text, width=110, initial_indent=" " * indent,
                                 subsequent_indent=" " * (indent if subsequent is None else subsequent),
                                 break_on_hyphens=False, break_long_words=False))


def _toml(v: Any) -> str:
    from auditor.listing import toml_value

    return toml_value(v)


def _echo_model_params(m: dict[str, Any]) -> None:
    """Parameters with allowed values one per line; the rest grouped (model / training / data)."""
    params: dict[str, dict[str, Any]] = m.get("params") or {}
    groups: dict[str, list[str]] = {}
    for k, p in params.items():
        if p.get("choices"):
            line = f"{k + ' = ' + str(p.get('default')):<18} one of {', '.join(map(str, p['choices']))}"
            _echo_wrapped(line + (f" ({p['help']})" if p.get("help") else ""), indent=6, subsequent=25)
        else:
            shown = "(required)" if p.get("required") else repr(p.get("default"))
            if isinstance(p.get("default"), str) and " / " in p["default"]:
                shown = p["default"]          # per-preset defaults, already readable
            groups.setdefault(p.get("group", ""), []).append(f"{k}={shown}")
    for g, items in groups.items():
        _echo_wrapped((f"{g}: " if g else "") + ", ".join(items), indent=6)
    if m.get("accepts_more"):
        click.echo("      (also takes other keyword parameters: see the factory's docstring)")

def _suite_settings() -> list[dict[str, Any]]:
    """The suite-wide settings as :data:`auditor.config.SETTINGS` declares them, for `audit list`."""
    from auditor.config import SETTINGS, describe_param

    return [{"name": k, "default": p.default, "option": p.option, "values": describe_param(p), "meaning": p.help}
            for k, p in SETTINGS.items()]


# --------------------------------------------------------------------------- check-plugin
@cli.command("check-plugin")
@click.argument("model")
@model_options
@data_options
def check_plugin_cmd(model: str, model_params: tuple[str, ...], train: str | None, test: str | None,
                     fmt: str | None, feature_groups: str | None, max_features: int | None) -> None:
    """Check that a plugin keeps the contract (one line per check).

    Exit 0 if all checks pass, 1 if any fails. Without --train/--test the checks run on the
    model's own default data (subsampled) or on a small synthetic split; the first line says which.
    """
    from auditor.conformance import check_ranking_model
    from auditor.data import Split, load_dataset
    from auditor.registry import ModelSpec

    spec = ModelSpec(model, _params(model_params, "--model-param"))
    split = None
    if train or test:
        if not (train and test):
            raise ConfigError("pass both --train and --test, or neither.")
        from auditor.loaders import feature_width_limit

        click.get_current_context().with_resource(feature_width_limit(max_features))
        split = Split(load_dataset(train, fmt, feature_groups=feature_groups),
                      load_dataset(test, fmt, feature_groups=feature_groups))
    from auditor.guard import no_exit

    try:
        with no_exit():  # os._exit in plugin code -> PluginExit, a SystemExit, handled below
            if split is None:
                from auditor.conformance import default_check_data

                spec.factory  # noqa: B018 - a plugin that cannot load is exit 2
                try:
                    split = default_check_data(spec)
                except AuditorError:
                    raise
                except Exception as e:  # noqa: BLE001 - the plugin's default_data is untrusted code
                    raise PluginError(spec.spec, f"default_data raised {type(e).__name__}: {e}") from e
                where = ("the model's own default_data, subsampled" if "default_data" in split.name
                         else "a small synthetic split from auditor.synthetic.make_synthetic_split")
                click.echo(printable(f"Data: {where} — {_describe_split(split)}. Pass --train/--test to check on your data."))
            else:
                click.echo(printable(f"Data: {_describe_split(split)}."))
            results = check_ranking_model(spec, split)
    except SystemExit as e:  # sys.exit in plugin code must not read as "all checks passed"
        raise PluginError(model, f"{exit_message(e)}; the conformance checks could not finish.",
                          "raise an exception in fit/score instead of exiting.") from None
    for r in results:
        status = "PASS" if r.passed else "FAIL"
        line = f"{status}  {r.name}"
        if not r.passed:
            line += f": {r.message}"
        click.echo(printable(line))
    n_fail = sum(not r.passed for r in results)
    click.echo(f"{len(results) - n_fail} passed, {n_fail} failed")
    sys.exit(1 if n_fail else 0)


def _describe_split(split: Any) -> str:
    groups = ", ".join(f"{g}:{x.shape[1]}" for g, x in split.train.features.items())
    return (f"train {split.train.n_queries} queries / {split.train.n_rows} rows, "
            f"test {split.test.n_queries} queries / {split.test.n_rows} rows, feature groups {groups}")


# --------------------------------------------------------------------------- report / compare
_MAX_RESULTS_BYTES = 256 << 20  # a results.json is a few MB at most


def _stored_results(d: Path) -> dict[str, Any] | None:
    """The results the run store kept for this run (meta key ``results``), or None."""
    store = d / "run.sqlite"
    if not store.is_file():
        return None
    from auditor.store import RunStore

    s = RunStore(d)
    try:
        raw = s.get_meta("results")
    finally:
        s.close()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ConfigError(f"{store}: the stored results are not valid JSON ({e}). "
                          "Fix: rerun `audit run`.") from None


def _read_results(run_dir: str, *, rewrites: bool = False, rebuild: bool = False) -> dict[str, Any]:
    """The validated results of RUN_DIR; from run.sqlite when results.json is missing or unreadable
    (or always, with ``rebuild``). ``rewrites``: the caller writes results.json anew (wording only)."""
    from auditor.errors import DataError
    from auditor.loaders import check_input_file
    from auditor.results_schema import validate_results_schema

    d = Path(run_dir)
    p = d / "results.json"
    problem = None
    if rebuild:
        problem = "--rebuild"
    elif p.exists() or p.is_symlink():
        try:
            check_input_file(p)
        except DataError as e:
            raise ConfigError(str(e)) from None
        if p.stat().st_size > _MAX_RESULTS_BYTES:
            raise ConfigError(f"{p}: {p.stat().st_size:,} bytes is not a results.json (at most "
                              f"{_MAX_RESULTS_BYTES:,}). Fix: point at a directory written by `audit run --out`.")
        try:
            results = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            problem = f"is not valid JSON ({str(e)[:120]}; truncated?)"
        else:
            try:
                validate_results_schema(results, str(p))
            except ConfigError as e:
                if _stored_results(d) is not None:
                    raise ConfigError(f"{e} Fix: `audit report {d} --rebuild` rewrites it from this run's "
                                      "run.sqlite.") from None
                raise ConfigError(f"{e} Fix: rerun `audit run` or restore the file.") from None
            return results
    else:
        problem = "is missing"
    stored = _stored_results(d)
    if stored is None:
        if (d / "run.sqlite").is_file():
            lead = f"{d}:" if problem in ("is missing", "--rebuild") else f"{p} {problem};"
            raise ConfigError(f"{lead} the run did not finish (run.sqlite holds no results yet). "
                              f"Fix: `audit run ... --out {d} --resume`.")
        if problem == "is missing":
            raise ConfigError(f"{d}: no results.json or run.sqlite here. "
                              "Fix: point at a directory written by `audit run --out`.")
        if problem == "--rebuild":
            raise ConfigError(f"{d}: --rebuild needs the run's run.sqlite, and there is none here.")
        raise ConfigError(f"{p} {problem}, and there is no run.sqlite holding the results to rebuild it from. "
                          "Fix: rerun `audit run`.")
    validate_results_schema(stored, str(d / "run.sqlite"))
    what = "rebuilt" if rebuild else f"{problem}; {'rebuilt' if rewrites else 'using the results'}"
    click.echo(printable(f"note: {p} {what} from the results stored in {d / 'run.sqlite'}."), err=True)
    return stored


@cli.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--rebuild", is_flag=True,
              help="Rewrite results.json from the results kept in RUN_DIR/run.sqlite, then render.")
def report_cmd(run_dir: str, rebuild: bool) -> None:
    """Re-render the reports of a stored run.

    Writes report.html, junit.xml and summary.md of RUN_DIR from its results.json, checked
    against its schema first (exit 2 naming the field). When it is missing or unreadable, the
    copy kept in run.sqlite is used and results.json rewritten.
    """
    from auditor.runner import write_outputs

    results = _read_results(run_dir, rewrites=True, rebuild=rebuild)  # write_outputs writes results.json
    paths = write_outputs(results, run_dir)
    _print_results(results, quiet=False)
    click.echo(printable("Wrote " + ", ".join(str(p) for p in paths.values())))


@cli.command("compare", short_help="Compare two runs: what changed between them.")
@click.argument("dir_a", type=click.Path(file_okay=False))
@click.argument("dir_b", type=click.Path(file_okay=False))
@click.option("--out", "out", type=click.Path(), default=None,
              help="Where to write the HTML comparison: a .html file or a directory "
                   "[default: compare-A-vs-B.html next to DIR_B].")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None, hidden=True,
              help="Same as --out FILE.html (older name).")
def compare_cmd(dir_a: str, dir_b: str, out: str | None, html_path: str | None) -> None:
    """Compare two runs (DIR_A the older, DIR_B the newer, e.g. V1 and V2).

    Prints both verdicts, the headline numbers, the audits and conditions whose status changed;
    writes the full side-by-side table (every shared measurement and its delta) as HTML.
    """
    from auditor.store import atomic_write_text
    from reports.compare import print_compare, render_compare_html

    a, b = _read_results(dir_a), _read_results(dir_b)
    pa, pb = Path(dir_a).resolve(), Path(dir_b).resolve()
    labels = (pa.name or "A", pb.name or "B")
    if labels[0] == labels[1]:
        labels = ("A", "B")
    target = out or html_path
    default_name = f"compare-{labels[0]}-vs-{labels[1]}.html"
    if target is None:
        path = pb.parent / default_name
    elif target.endswith((".html", ".htm")):
        path = Path(target)
    else:
        path = Path(target) / default_name
    print_compare(a, b, labels=labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, render_compare_html(a, b, labels=labels))
    click.echo(printable(f"Full comparison: {path}"))


# --------------------------------------------------------------------------- init-plugin
_PLUGIN_TEMPLATE = '''"""{name}: a rank-auditor plugin (generated by `audit init-plugin`).

Check it:  audit check-plugin {path}:make_model
Audit it:  audit run --model {path}:make_model --train train.txt --test test.txt

The contract (auditor/protocol.py): make_model(seed, **params) returns an unfitted model;
fit(train) returns self; score(data) returns one finite float per row and never reads labels.
Replace the ridge regression below with your ranker.

{reads}"""
from __future__ import annotations

import numpy as np


class {cls}:
    """Pointwise ridge regression on all feature groups (a starting point)."""

    def __init__(self, seed: int = 0, alpha: float = 1.0) -> None:
        self.seed = seed      # constructors only store parameters
        self.alpha = alpha

    def fit(self, train) -> "{cls}":
        X = train.feature_matrix()                      # (n_rows, n_features)
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0) + 1e-9
        Z = (X - self.mean_) / self.scale_
        y = train.labels - train.labels.mean()          # (n_rows,)
        self.coef_ = np.linalg.solve(Z.T @ Z + self.alpha * np.eye(Z.shape[1]), Z.T @ y)
        return self

    def score(self, data) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise RuntimeError("call fit() before score()")
        return ((data.feature_matrix() - self.mean_) / self.scale_) @ self.coef_   # (n_rows,)


def make_model(seed: int = 0, alpha: float = 1.0) -> {cls}:
    """Factory: a fresh, unfitted model."""
    return {cls}(seed=seed, alpha=float(alpha))
'''


def _protocol_table() -> str:
    """The "What a plugin may read" section of auditor/protocol.py, so the scaffold never drifts from it."""
    import auditor.protocol

    doc = auditor.protocol.__doc__ or ""
    start = doc.index("What a plugin may read")
    end = doc.index("Rules checked by")
    return doc[start:end].rstrip() + "\n"


@cli.command("init-plugin")
@click.argument("name")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_plugin_cmd(name: str, force: bool) -> None:
    """Write NAME.py, a plugin that passes check-plugin as written."""
    path = Path(name if name.endswith(".py") else f"{name}.py")
    stem = path.stem
    if not stem.isidentifier():
        raise ConfigError(f"init-plugin {name!r}: the file name must be a Python identifier (e.g. my_ranker).")
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists. Fix: choose another name or pass --force.")
    cls = "".join(p.capitalize() for p in stem.split("_")) or "Ranker"
    if not cls[0].isalpha():
        cls = "Ranker" + cls
    shown = str(path) if path.is_absolute() or str(path).startswith(".") else f"./{path}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_PLUGIN_TEMPLATE.format(name=stem, cls=cls, path=shown, reads=_protocol_table()),
                    encoding="utf-8")
    click.echo(f"Wrote {path}. Next: audit check-plugin {shown}:make_model")


# --------------------------------------------------------------------------- eval
try:
    from auditor.evaluate import eval_cmd as _eval_cmd

    _eval_cmd.short_help = _eval_cmd.short_help or "trec_eval-compatible metrics of a TREC run."
    cli.add_command(_eval_cmd, "eval")
except ImportError:  # pragma: no cover - module under construction
    pass


# --------------------------------------------------------------------------- trec-eval
@cli.command("trec-eval", add_help_option=False, short_help="trec_eval 10.0-rc3 as a drop-in (same options, output).",
             context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def trec_eval_cmd(args: tuple[str, ...]) -> None:
    """trec_eval 10.0-rc3 as a drop-in: same options, same output lines (--help lists the measures)."""
    from auditor.trec_eval import main as _trec_eval_main  # lazy: keeps start-up light

    sys.exit(_trec_eval_main(list(args)))


def main() -> None:
    """The click CLI as a process (the ``audit`` script enters through :mod:`auditor.console`, which
    hands ``trec-eval`` over first).

    SIGTERM is handled like Ctrl-C (exit 143; a run keeps its trials and says how to resume).
    A ``run`` that ends with exit 0, 1 or 3 but wrote no verdict (something called
    ``sys.exit`` past every guard) exits 2 instead: those codes mean GO / NO_GO / INCONCLUSIVE.
    """
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli(prog_name="audit")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if _RUN_STATE["started"] and _RUN_STATE["verdict"] is None and code in (0, 1, 3):
            print(f"Error: the run ended with exit code {code} but wrote no verdict (something called sys.exit); "
                  "no results were written. This is a bug in rank-auditor or a plugin: rerun with "
                  "`audit --debug run ...` to see where.", file=sys.stderr)
            sys.exit(2)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
