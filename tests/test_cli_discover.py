"""What a newcomer reads first: `audit --help`, `audit list`, `check-plugin`'s data line and
`audit compare`'s output and file location."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from auditor.cli import cli

DATA = Path(__file__).parent / "data"


def test_help_lists_every_command_without_cutting_a_sentence() -> None:
    r = CliRunner().invoke(cli, ["--help"], terminal_width=80)
    assert r.exit_code == 0
    commands = r.output.split("Commands:")[1]
    assert "..." not in commands and "(e.g." not in commands, commands
    for name in ("run", "eval", "list", "check-plugin", "report", "compare", "init-plugin"):
        assert f"  {name} " in commands
    run_help = CliRunner().invoke(cli, ["run", "--help"], terminal_width=100).output
    assert "(see docs)" not in run_help and "auditor/loaders/__init__.py" in " ".join(run_help.split())


def test_list_shows_model_parameters_with_allowed_values_and_audit_defaults() -> None:
    from auditor.audits import AUDIT_NAMES, get_audit
    from reference_model.synthetic import SCENARIOS

    r = CliRunner().invoke(cli, ["list"])
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())
    assert f"scenario = clean one of {', '.join(SCENARIOS)}" in flat
    assert "preset = auto one of auto, full, quick" in flat
    assert "hidden=256 (full) / 48 (quick)" in flat
    for n in AUDIT_NAMES:
        a = get_audit(n)
        assert f" {n} " in flat
        for k in a.defaults:
            assert f"{k} = " in flat, (n, k)
    assert "n_seeds = 3 (--quick: 2)" in flat     # random_label's default and quick value, from the code

    j = json.loads(CliRunner().invoke(cli, ["list", "--json"]).output)
    assert j["models"]["reference"] == "reference_model.plugin:make_model"
    ref = j["model_details"]["reference"]
    assert ref["params"]["scenario"]["choices"] == list(SCENARIOS)
    assert ref["has_default_data"] and ref["default_baseline"]
    by_name = {a["name"]: a for a in j["audits"]}
    for n in AUDIT_NAMES:
        assert by_name[n]["defaults"] == json.loads(json.dumps(get_audit(n).defaults, default=str))


def test_list_falls_back_to_the_factory_signature() -> None:
    from auditor.listing import factory_params

    def make(seed: int = 0, alpha: float = 1.0, depth: int = 3, **extra):  # noqa: ANN003, ANN202
        return None

    params, more = factory_params(make)
    assert params == {"alpha": {"default": 1.0}, "depth": {"default": 3}} and more


def test_check_plugin_says_which_data_it_used(tmp_path: Path) -> None:
    plugin = tmp_path / "ridge.py"
    assert CliRunner().invoke(cli, ["init-plugin", str(plugin)]).exit_code == 0
    r = CliRunner().invoke(cli, ["check-plugin", f"{plugin}:make_model"])
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    assert first.startswith("Data: a small synthetic split") and "train 120 queries" in first
    assert "Pass --train/--test" in first
    train, test = Path(__file__).parent / "data" / "ltr" / "rank.train", Path(__file__).parent / "data" / "ltr" / "rank.test"
    r = CliRunner().invoke(cli, ["check-plugin", f"{plugin}:make_model", "--train", str(train), "--test", str(test),
                                 "--format", "letor"])
    assert r.output.splitlines()[0].startswith("Data: train 201 queries"), r.output


def test_compare_prints_changes_and_writes_html_next_to_the_runs(tmp_path: Path, monkeypatch) -> None:
    runs = tmp_path / "runs"
    for name, sample in (("v2.0", "nogo"), ("v2.1", "go")):
        (runs / name).mkdir(parents=True)
        shutil.copy(DATA / f"results_sample_{sample}.json", runs / name / "results.json")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    r = CliRunner().invoke(cli, ["compare", str(runs / "v2.0"), str(runs / "v2.1")])
    assert r.exit_code == 0, r.output
    assert "Verdict: v2.0 NO_GO -> v2.1 GO (changed)" in r.output
    assert len(r.output.splitlines()) < 40
    html = runs / "compare-v2.0-vs-v2.1.html"
    assert html.is_file() and f"Full comparison: {html}" in r.output
    assert list(cwd.iterdir()) == []                      # nothing in the current directory
    r = CliRunner().invoke(cli, ["compare", str(runs / "v2.0"), str(runs / "v2.1"), "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 0 and (tmp_path / "cmp" / "compare-v2.0-vs-v2.1.html").is_file()
    r = CliRunner().invoke(cli, ["compare", str(runs / "v2.0"), str(runs / "v2.1"), "--out", str(tmp_path / "x.html")])
    assert r.exit_code == 0 and (tmp_path / "x.html").is_file()


def test_config_reference_is_generated_from_the_code() -> None:
    """docs/CONFIG.md lists every audit.toml key with the default the code uses; regenerate it
    with `python -m auditor.listing > docs/CONFIG.md` when a key or default changes."""
    from auditor.audits import AUDIT_NAMES, get_audit
    from auditor.config import TOP_LEVEL_KEYS
    from auditor.listing import config_markdown

    committed = (Path(__file__).parent.parent / "docs" / "CONFIG.md").read_text(encoding="utf-8")
    assert committed == config_markdown()
    for key in TOP_LEVEL_KEYS:
        assert key == "audits" or f"| `{key}` | top level |" in committed
    assert "| `min_gain` | top level | `0.0` |" in committed
    for n in AUDIT_NAMES:
        for k in get_audit(n).defaults:
            assert f"| `{k}` | [audits.{n}] |" in committed, (n, k)
