"""The Python API as a notebook user meets it, and the plugin-facing data API as documented."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# One notebook session, cell by cell, in a fresh interpreter (as a kernel would run it).
NOTEBOOK = r'''
import inspect, json, sys
import auditor
light = "numpy" not in sys.modules                      # `import auditor` stays cheap
signature = str(inspect.signature(auditor.run_audit))   # help(auditor.run_audit)
doc = auditor.run_audit.__doc__

from auditor.synthetic import make_synthetic_split
split = make_synthetic_split(n_train_queries=40, n_test_queries=20, seed=0)
run = auditor.run_audit(model="rankers:make_linear", train=split.train, test=split.test,
                        baseline="rankers:make_random", checks=["isolation", "significance"],
                        quick=True, out="nb-run")
run                                                      # the cell's text output
html = run._repr_html_()                                 # what Jupyter displays
sig = run.audits["significance"]
print(json.dumps({
    "light": light, "signature": signature, "doc": doc, "repr": repr(run), "html": html,
    "verdict": run.verdict, "exit_code": run.exit_code, "names": run.audits.names(),
    "iso_status": run.audits["isolation"].status, "by_position": run.audits[1].name,
    "sig_conditions": [[c.name, c.status, c.observed] for c in sig.conditions],
    "sig_p": sig.p_adjusted, "sig_measurement_keys": sorted(sig.measurements),
    "legacy": [run.audit("isolation")["status"], [a["name"] for a in run.audits]],
    "same_as_file": run.to_dict() == json.load(open("nb-run/results.json")),
}))
'''


def test_notebook_session(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", NOTEBOOK], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["light"]
    # help() shows the real signature and docstring, not (*args, **kwargs)
    assert out["signature"].startswith("(model: 'Any' = 'reference', *, train:") and "-> 'AuditRun'" in out["signature"]
    assert "Parameters" in out["doc"] and "baseline_run" in out["doc"]
    # typed results, same document as results.json
    results = json.loads((tmp_path / "nb-run" / "results.json").read_text())
    assert out["same_as_file"]
    assert out["verdict"] == results["verdict"] and out["exit_code"] == results["exit_code"]
    assert out["names"] == ["isolation", "significance"] and out["by_position"] == "significance"
    file_sig = next(a for a in results["audits"] if a["name"] == "significance")
    assert out["sig_conditions"] == [[c["name"], c["status"], c["observed"]] for c in file_sig["conditions"]]
    assert out["sig_p"] == file_sig["p_adjusted"]
    assert out["sig_measurement_keys"] == sorted(file_sig["measurements"])
    assert out["legacy"] == [out["iso_status"], ["isolation", "significance"]]
    # one screen of text
    lines = out["repr"].splitlines()
    assert len(lines) <= 12 and max(map(len, lines)) <= 110 and len(out["repr"]) < 1500, out["repr"]
    assert f"verdict={results['verdict']}" in lines[0]
    # the report's verdict card and audit table inline, with no scripts
    html = out["html"]
    assert "<script" not in html.lower() and "javascript:" not in html.lower()
    assert f'data-verdict="{results["verdict"]}"' in html and 'class="verdict-text">' + results["verdict"] in html
    assert "Audits at a glance" in html and all(a["summary"][:40] in html.replace("&#39;", "'")
                                                 for a in results["audits"])
    assert len(html) < 60_000
    # the report's stylesheet is confined to the fragment (nested under .ra-nb)
    assert re.match(r'<div class="ra-nb"><style>\.ra-nb \{', html)


def _protocol_table() -> dict[str, str]:
    import auditor.protocol

    doc = auditor.protocol.__doc__
    section = doc[doc.index("What a plugin may read"):doc.index("Rules checked by")]
    rows = re.findall(r"^``([a-z0-9_]+)(\([^`]*\))?``\s+(property|attribute|method)\s", section, flags=re.M)
    return {name: kind for name, _, kind in rows}


def test_protocol_table_lists_every_public_member_of_rankingdataset() -> None:
    from auditor.data import RankingDataset

    table = _protocol_table()
    fields = {f.name for f in dataclasses.fields(RankingDataset)}
    public = fields | {m for m in dir(RankingDataset) if not m.startswith("_")}
    assert set(table) == public
    for name, kind in table.items():
        member = inspect_attr(RankingDataset, name)
        if name in fields:
            assert kind == "attribute", name
        elif isinstance(member, property):
            assert kind == "property", name
        else:
            assert kind == "method" and callable(member), name


def inspect_attr(cls: type, name: str) -> object:
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def test_derived_values_are_properties_and_old_calls_still_work() -> None:
    from auditor.synthetic import make_synthetic_split

    d = make_synthetic_split(n_train_queries=3, n_test_queries=2, n_items=4, seed=0).train
    assert d.query_slices == [slice(0, 4), slice(4, 8), slice(8, 12)]
    assert d.feature_names[:2] == ["a.0", "a.1"] and len(d.feature_names) == d.n_features
    with pytest.warns(DeprecationWarning, match="property now"):
        assert d.feature_names() == d.feature_names
    with pytest.warns(DeprecationWarning, match="drop the parentheses"):
        assert d.query_slices() == d.query_slices
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [d.labels[s].size for s in d.query_slices] == d.query_sizes.tolist()


def test_init_plugin_scaffold_carries_the_protocol_table(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from auditor.cli import cli

    r = CliRunner().invoke(cli, ["init-plugin", str(tmp_path / "my_ranker")])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "my_ranker.py").read_text()
    for name in _protocol_table():
        assert f"``{name}" in text, name
