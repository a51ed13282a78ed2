"""One declaration per parameter (auditor.config): what `audit list`, the checks, `--set`, the method
texts and the docs tables read."""
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.audits import AUDIT_NAMES, get_audit
from auditor.cli import cli
from auditor.config import AuditConfig, ParamText, declare, param, parse_set
from auditor.errors import ConfigError

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def listed() -> dict:
    r = CliRunner().invoke(cli, ["list", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _tables(text: str) -> list[tuple[str, dict[str, dict[str, str]]]]:
    """Every markdown table whose first column is a `key` / `parameter`: (heading above it, rows by key)."""
    out, heading, lines = [], "", text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("## "):
            heading = lines[i]
        if lines[i].startswith("| parameter |") or lines[i].startswith("| key |"):
            cols = [c.strip() for c in lines[i].strip("|").split("|")]
            rows, i = {}, i + 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in re.split(r"(?<!\\)\|", lines[i].strip().strip("|"))]
                row = dict(zip(cols, cells))
                key = (row.get("section", ""), row[cols[0]].strip("`"))
                rows[key] = row
                i += 1
            out.append((heading, rows))
        i += 1
    return out


def _toml(v) -> str:
    from auditor.listing import toml_value

    return toml_value(v)


def test_docs_parameter_tables_agree_with_audit_list_json(listed) -> None:
    """docs/AUDITS.md and docs/CONFIG.md state each parameter's default and --quick value as
    `audit list --json` reports them (regenerate: python -m auditor.listing)."""
    audits = {a["name"]: a for a in listed["audits"]}
    seen = set()
    for heading, rows in _tables((DOCS / "AUDITS.md").read_text(encoding="utf-8")):
        name = next((n for n in AUDIT_NAMES if n in heading), None)
        if name is None or not any(k for _s, k in rows if k in audits[name]["params"]):
            continue
        seen.add(name)
        assert {k for _s, k in rows} == set(audits[name]["params"]), name
        for (_s, key), row in rows.items():
            p = audits[name]["params"][key]
            assert row["default"].strip("`") == _toml(p["default"]), (name, key)
            assert row["`--quick`"].strip("`") == (_toml(p["quick"]) if "quick" in p else ""), (name, key)
            assert row["values"].replace("\\|", "|") == p["values"], (name, key)
    assert seen == set(AUDIT_NAMES)  # every built-in audit has its table

    (_h, rows), = _tables((DOCS / "CONFIG.md").read_text(encoding="utf-8"))
    settings = {s["name"]: s for s in listed["settings"]}
    for (section, key), row in rows.items():
        if section == "top level":
            want = "all audits" if key == "checks" else _toml(settings[key]["default"])
            assert row["default"].strip("`") == want, key
            continue
        p = audits[section[len("[audits."):-1]]["params"][key]
        assert row["default"].strip("`") == _toml(p["default"]), (section, key)
        assert row["`--quick`"].strip("`") == (_toml(p["quick"]) if "quick" in p else ""), (section, key)
    assert len(rows) == len(settings) + sum(len(audits[n]["params"]) for n in AUDIT_NAMES)


def test_audits_md_tables_are_generated_from_the_code() -> None:
    from auditor.listing import update_audits_md

    committed = (DOCS / "AUDITS.md").read_text(encoding="utf-8")
    assert committed == update_audits_md(committed), "run: python -m auditor.listing --audits-md docs/AUDITS.md"


def test_list_json_describes_each_parameter_from_its_declaration(listed) -> None:
    for a in listed["audits"]:
        if a["name"] not in AUDIT_NAMES:
            continue
        audit = get_audit(a["name"])
        assert a["defaults"] == json.loads(json.dumps(dict(audit.defaults)))
        assert {k: p["quick"] for k, p in a["params"].items() if "quick" in p} == audit.quick_overrides
        assert all(p["help"] and p["values"] for p in a["params"].values()), a["name"]
    rl = {a["name"]: a for a in listed["audits"]}["random_label"]["params"]
    assert rl["n_seeds"] == {"default": 3, "quick": 2, "values": "integer >= 1",
                             "help": "variant-A models (each one fit); reported only"}


def test_method_texts_quote_the_declared_defaults() -> None:
    """The numbers in random_label's and synthetic_shift's method come from their declarations:
    a subclass with other defaults says the other numbers."""
    from auditor.audits.random_label import RandomLabelAudit
    from auditor.audits.synthetic_shift import SyntheticShiftAudit

    class Wider(RandomLabelAudit):
        defaults = declare(**{**RandomLabelAudit.defaults.declared,
                              "b_repeats": param(int, 7, min=1), "margin_share": param(float, 0.35)})

    assert "b_repeats (2)" in RandomLabelAudit.method and "margin_share (0.2)" in RandomLabelAudit.method
    assert "b_repeats (7)" in Wider.method and "margin_share (0.35)" in Wider.method
    assert "b_repeats (2)" not in Wider.method

    class Strict(SyntheticShiftAudit):
        defaults = declare(**{**SyntheticShiftAudit.defaults.declared, "auc_fail": param(float, 0.7),
                              "clf_permutations": param(int, 5000, min=1, quick=1000)})

    assert ">= 0.625 FAIL" in SyntheticShiftAudit.method and "against 2,000 shuffles" in SyntheticShiftAudit.method
    assert ">= 0.7 FAIL" in Strict.method and "against 5,000 shuffles" in Strict.method
    assert ParamText("K = {k}; --quick {quick_k}").render({"k": 5}, {"k": 3}) == "K = 5; --quick 3"


def test_set_reads_values_as_declared_and_the_checks_name_the_key() -> None:
    assert parse_set(["random_label.n_seeds=5", "isolation.disjoint=qid,group_id",
                      "synthetic_shift.classifier=hgb", "synthetic_shift.threads=none", "random_label.variant_b=false"],
                     {"random_label": {"bootstrap": 100}}) == {
        "random_label": {"bootstrap": 100, "n_seeds": 5, "variant_b": False},
        "isolation": {"disjoint": ["qid", "group_id"]},
        "synthetic_shift": {"classifier": "hgb", "threads": None}}
    for pair, words in [("random_label.n_seeds", "expected AUDIT.KEY=VALUE"),
                        ("nope.k=1", "unknown audit 'nope'"),
                        ("stability.kk=3", "stability has no parameter 'kk'; valid: ci_level, k, n_seeds")]:
        with pytest.raises(ConfigError, match=re.escape(words)):
            parse_set([pair])
    cfg = AuditConfig(audits={"stability": {"k": 4}})
    with pytest.raises(ConfigError, match=re.escape("[audits.stability] k: expected an integer >= 2, got 1")):
        cfg.replace(audits=parse_set(["stability.k=1"], cfg.audits))
    assert cfg.replace(audits=parse_set(["stability.n_seeds=2"], cfg.audits)).audits == {
        "stability": {"k": 4, "n_seeds": 2}}


def test_set_on_the_command_line_exits_2_naming_the_key(tmp_path) -> None:
    for args, words in [(["--set", "random_label.n_seeds=abc"], "[audits.random_label] n_seeds: expected an integer"),
                        (["--set", "stability.kk=3"], "--set 'stability.kk=3': stability has no parameter 'kk'")]:
        r = CliRunner().invoke(cli, ["run", "--model", "reference", *args, "--out", str(tmp_path / "o")])
        assert r.exit_code == 2 and words in r.output, r.output
        assert not (tmp_path / "o").exists()


def test_config_is_checked_when_built_and_once() -> None:
    with pytest.raises(ConfigError, match=re.escape("[audits.isolation] near_dup_quantile: expected a number in "
                                                    "[0.5, 1), got 1.0")):
        AuditConfig(audits={"isolation": {"near_dup_quantile": 1.0}})
    with pytest.raises(ConfigError, match=re.escape("[audits.nope]: unknown audit")):
        AuditConfig(audits={"nope": {}})
    with pytest.raises(ConfigError, match=re.escape("alpha must be in (0, 1), got 1.5")):
        AuditConfig(alpha=1.5)
    ok = AuditConfig(audits={"synthetic_shift": {"threads": None, "query_context": 0}})
    assert ok.replace(metric="map").metric == "map" and ok.metric == "ndcg@10"
