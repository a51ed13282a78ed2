"""A bare ``path/to/file.py`` names its ``make_model`` factory (the first-hour path)."""
from pathlib import Path

from click.testing import CliRunner

from auditor.cli import cli
from auditor.registry import resolve_factory, with_default_factory

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugins" / "sklearn_pointwise.py"


def test_bare_py_path_means_make_model():
    assert with_default_factory(f"{EXAMPLE}") == f"{EXAMPLE}:make_model"
    assert with_default_factory("reference") == "reference"
    assert with_default_factory("pkg.mod:factory") == "pkg.mod:factory"
    assert resolve_factory(str(EXAMPLE)) is resolve_factory(f"{EXAMPLE}:make_model")


def test_bare_py_path_without_make_model_names_the_fix(tmp_path):
    plugin = tmp_path / "ranker.py"
    plugin.write_text("def build(seed=0):\n    return None\n")
    r = CliRunner().invoke(cli, ["check-plugin", str(plugin)])
    assert r.exit_code == 2, r.output
    assert "has no attribute 'make_model'" in r.output
    assert "build" in r.output and "a bare path means :make_model" in r.output

