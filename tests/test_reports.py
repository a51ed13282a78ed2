"""Reports: every output (HTML, JUnit, Markdown, terminal, comparison) from the results dict alone.

The samples in tests/data/results_sample_*.json are hand-made, internally consistent results
dicts (see their ``_provenance``): a NO_GO run (the leaky V2.0 pattern), a GO run and an
INCONCLUSIVE run with an ERROR, a SKIP, an underpowered test, unknown and malformed plots and
missing optional keys.
"""
from __future__ import annotations

import copy
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from auditor.audits.base import plot_bars, plot_hist, plot_intervals, plot_lines, plot_table
from auditor.errors import DataError
from reports.compare import compare_results, print_compare, render_compare_html
from reports.plots import MAX_BARS, MAX_POINTS, MAX_TABLE_ROWS, fmt_value, render_plot
from reports.render import (build_view, flatten_measurements, fmt_p, numeric_measurements, print_summary,
                            render_all, render_html, render_junit, render_markdown)

DATA = Path(__file__).parent / "data"
SAMPLES = ("nogo", "go", "edge")
XSS = "<script>alert(1)</script>"
XSS_IMG = '<img src=x onerror="alert(2)">'


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"results_sample_{name}.json").read_text())


@pytest.fixture(scope="module")
def html_by_sample() -> dict[str, str]:
    # One render per sample for the whole module.
    return {n: render_html(load(n)) for n in SAMPLES}


class TagCollector(HTMLParser):
    """Every start tag with its attributes, and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> TagCollector:
    p = TagCollector()
    p.feed(html)
    p.close()
    return p


def assert_no_active_content(html: str) -> None:
    """No script element, no event-handler attribute, no javascript: URL, no external resource."""
    p = parse(html)
    for tag, attrs in p.tags:
        assert tag not in ("script", "iframe", "object", "embed", "foreignobject"), tag
        for k, v in attrs.items():
            assert not k.lower().startswith("on"), (tag, k, v)
            if k in ("href", "src", "xlink:href", "action", "formaction"):
                v = (v or "").strip().lower()
                assert v.startswith(("#", "data:")), (tag, k, v)   # in-page anchors and data: only
    assert "@import" not in html and not re.search(r"url\((?![\"']?(?:data:|#))", html)


# --------------------------------------------------------------------------- formatting
def test_fmt_value_and_fmt_p() -> None:
    assert fmt_value(0.0307) == "0.0307"
    assert fmt_value(0.63) == "0.6300"
    assert fmt_value(2.3e-5) == "2.30e-05"
    assert fmt_value(0.00123) == "0.00123"
    assert fmt_value(95.25) == "95.25"
    assert fmt_value(12000) == "12,000" and fmt_value(12) == "12"
    assert fmt_value(None) == "n/a" and fmt_value(float("nan")) == "n/a"
    assert fmt_value(True) == "yes" and fmt_value(0.0) == "0"
    assert fmt_p(None) == "\u2014" and fmt_p(5e-5) == "< 0.0001" and fmt_p(0.0199) == "0.0199"
    assert fmt_p(0.35182) == "0.352" and fmt_p(1.0) == "1"


def test_flatten_and_numeric_measurements() -> None:
    m = {"auc": {"estimate": 0.9, "low": 0.8, "high": 0.95}, "n": 12, "ok": True, "none": None,
         "nested": {"a": {"b": 1.5}, "lst": [1, 2]}, "names": ["x", "y"]}
    flat = dict(flatten_measurements(m))
    assert flat["auc"] == {"estimate": 0.9, "low": 0.8, "high": 0.95}        # intervals stay whole
    assert flat["nested.a.b"] == 1.5 and flat["nested.lst"] == [1, 2]
    num = numeric_measurements(m)
    assert num == {"auc": 0.9, "n": 12, "nested.a.b": 1.5}                  # no bools, lists, None
    assert isinstance(num["n"], int)


# --------------------------------------------------------------------------- plots
def _svg_ids(svg: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', svg))


@pytest.mark.parametrize("spec", [
    plot_lines("loss", [{"label": "true", "x": [1, 2, 3], "y": [0.9, 0.5, 0.2]}], xlabel="epoch", ylabel="loss",
               hlines=[{"label": "chance", "y": 0.3}]),
    plot_hist("null", [0.1, 0.2, 0.2, 0.3, 0.25], xlabel="metric", markers=[{"label": "observed", "x": 0.6}]),
    plot_intervals("delta", [{"label": "image", "estimate": -0.01, "low": -0.02, "high": 0.0}], xlabel="d"),
    plot_bars("wtl", ["wins", "ties", "losses"], [40, 20, 36], ylabel="queries"),
], ids=["lines", "hist", "intervals", "bars"])
def test_each_plot_type_draws_a_clean_inline_svg(spec: dict[str, Any]) -> None:
    v = render_plot(spec, uid="t1")
    assert v.kind == "svg", v.notes
    s = str(v.svg)
    assert s.startswith("<svg") and s.endswith("</svg>")
    assert "<?xml" not in s and "<!DOCTYPE" not in s and "<metadata" not in s and "<style" not in s
    assert 'width="100%"' in s and "viewBox=" in s
    assert "font-family" not in s                  # one font rule in the page CSS, no per-text lists
    assert "<text" in s                            # text stays text (no glyph paths)
    assert len(s) < 40_000


def test_table_spec_becomes_formatted_rows() -> None:
    v = render_plot(plot_table("pairs", ["qid", "cos"], [["q1", 0.99987], ["q2", None]]))
    assert v.kind == "table" and v.columns == ["qid", "cos"]
    assert v.rows == [["q1", "0.9999"], ["q2", "n/a"]]


@pytest.mark.parametrize("spec,why", [
    ({"type": "heatmap", "title": "new", "z": [[1]]}, "not known"),
    ({"type": "lines", "title": "empty"}, "no data"),
    ({"type": "hist", "values": [None, "x"]}, "no values"),
    ({"type": "intervals", "rows": [{"label": "a"}]}, "finite estimate"),
    ({"type": "bars", "labels": ["a"], "values": [None]}, "no finite"),
    ({"type": "table"}, "empty table"),
    ("not a plot", "not an object"),
    ({"title": "no type"}, "not known"),
    ({"type": ["lines"]}, "not known"),
])
def test_bad_or_unknown_plots_become_notes_not_crashes(spec: Any, why: str) -> None:
    v = render_plot(spec)
    assert v.kind == "note"
    assert any(why in n for n in v.notes), v.notes


def test_large_plots_are_thinned_with_a_note() -> None:
    n = 10_000
    v = render_plot(plot_lines("long", [{"label": "s", "x": list(range(n)), "y": [1.0 / (i + 1) for i in range(n)]}]))
    assert v.kind == "svg" and any(f"thinned to {MAX_POINTS}" in x for x in v.notes)
    assert any("log scale" in x for x in v.notes)          # 1 .. 1e-4 spans 4 decades
    assert "mathdefault" not in str(v.svg)                  # plain tick labels, mathtext is off
    assert len(str(v.svg)) < 60_000
    bars = render_plot(plot_bars("ks", [f"f{i}" for i in range(300)], [i / 300 for i in range(300)]))
    assert bars.kind == "svg" and any(f"{MAX_BARS} largest of 300" in x for x in bars.notes)
    assert "f299" in str(bars.svg) and "f0<" not in str(bars.svg)     # the largest kept, smallest dropped
    t = render_plot(plot_table("t", ["a"], [[i] for i in range(120)]))
    assert len(t.rows) == MAX_TABLE_ROWS and any("of 120 rows" in x for x in t.notes)


def test_plot_text_is_escaped_and_math_is_not_parsed() -> None:
    spec = plot_bars(XSS, [XSS, "$\\frac{", "a&b"], [1.0, 2.0, 3.0], ylabel=XSS_IMG)
    v = render_plot(spec)
    assert v.kind == "svg", v.notes
    s = str(v.svg)
    assert "<script" not in s.lower() and "<img" not in s.lower()
    assert "&lt;script&gt;" in s and "$\\frac{" in s and "a&amp;b" in s
    assert_no_active_content(s)


def test_svg_ids_are_unique_per_plot() -> None:
    spec = plot_lines("x", [{"label": "a", "x": [1, 2], "y": [1, 2]}])
    a, b = render_plot(spec, uid="a0p0"), render_plot(spec, uid="a0p1")
    assert _svg_ids(str(a.svg)) and not (_svg_ids(str(a.svg)) & _svg_ids(str(b.svg)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(
    st.sampled_from(["type", "title", "series", "values", "rows", "labels", "markers", "hlines", "x", "y", "ref",
                     "columns", "xlabel", "ylabel"]),
    st.one_of(st.sampled_from(["lines", "hist", "intervals", "bars", "table", "pie"]), st.none(),
              st.floats(allow_nan=True), st.text(max_size=8),
              st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.text(max_size=4),
                                 st.dictionaries(st.sampled_from(["label", "x", "y", "estimate", "low", "high"]),
                                                 st.one_of(st.floats(), st.none(), st.text(max_size=3)),
                                                 max_size=6),
                                 st.lists(st.integers(), max_size=3)), max_size=6))))
def test_render_plot_never_raises_on_arbitrary_specs(spec: dict[str, Any]) -> None:
    v = render_plot(spec)
    assert v.kind in ("svg", "table", "note")
    if v.kind == "svg":
        assert str(v.svg).startswith("<svg")


# --------------------------------------------------------------------------- HTML
def test_html_has_verdict_first_then_one_card_per_audit(html_by_sample: dict[str, str]) -> None:
    for name in SAMPLES:
        r, html = load(name), html_by_sample[name]
        sections = [a for t, a in parse(html).tags if t == "section"]
        assert sections[0]["id"] == "verdict" and sections[0]["data-verdict"] == r["verdict"]
        cards = [(a["data-audit"], a["data-status"]) for a in sections if "data-audit" in a]
        assert cards == [(a["name"], a["status"]) for a in r["audits"]]
        assert r["verdict_reason"] in parse(html).text.__str__() or r["verdict_reason"].replace("'", "&#39;") in html
        assert html.index('id="verdict"') < html.index('class="card')


def test_html_shows_every_part_of_each_card(html_by_sample: dict[str, str]) -> None:
    r, html = load("nogo"), html_by_sample["nogo"]
    text = " ".join(parse(html).text)
    for a in r["audits"]:
        for s in [a["title"], a["question"], a["summary"], a["method"], *a["citations"], *a["blind_spots"],
                  *a["next_steps"], *a["notes"], *(c["name"] for c in a["conditions"]),
                  *(c["observed"] for c in a["conditions"]), *(c["threshold"] for c in a["conditions"]),
                  *(p["title"] for p in a["plots"])]:
            assert s in text, s
        for key in a["measurements"]:
            assert key in text
    # Passes show their evidence too: the PASS significance card has all its plots drawn.
    sig = html.split('data-audit="significance"')[1].split("</section>")[0]
    assert sig.count("<svg") == 3
    # audit-specific partials add their guide; the footer has what is needed to reproduce.
    assert "The loss curves show whether the model can memorise shuffled labels" in text
    for s in [r["command"], r["data"]["train_sha256"], r["data"]["test_sha256"], r["environment"]["torch"],
              r["environment"]["numpy"], r["environment"]["device"], r["started_at"], r["finished_at"], "13 min 39 s",
              '"scenario": "leaky"']:
        assert s in text, s
    assert re.search(r"Seed\s*0", text)


def test_html_is_self_contained_small_and_scriptless(html_by_sample: dict[str, str]) -> None:
    for name in SAMPLES:
        html = html_by_sample[name]
        assert_no_active_content(html)
        assert "Content-Security-Policy" in html and "default-src 'none'" in html
        assert len(html.encode()) < 1_000_000
        assert "@media print" in html


def _hostile(results: dict[str, Any]) -> dict[str, Any]:
    """Script payloads in every user-controlled string the report shows."""
    r = copy.deepcopy(results)
    r["model"]["spec"] = f"./plugins/{XSS}.py:make"
    r["model"]["params"] = {XSS: XSS_IMG}
    r["verdict_reason"] = XSS
    r["command"] = f"audit run --model '{XSS}'"
    r["environment"][XSS] = XSS_IMG
    r["data"]["train"]["feature_groups"] = {XSS: 3}
    for a in r["audits"]:
        a["summary"] = XSS_IMG + a["summary"]
        a["title"] = XSS
        a["notes"] = [XSS]
        a["citations"] = ["javascript:alert(1)", XSS]
        a["measurements"][XSS] = XSS_IMG
        for c in a["conditions"]:
            c["name"], c["observed"], c["threshold"] = XSS, XSS_IMG, XSS
        for p in a["plots"]:
            p["title"] = XSS
            if p["type"] == "intervals":
                p["rows"][0]["label"] = XSS
            if p["type"] == "bars":
                p["labels"][0] = XSS
            if p["type"] == "table":
                p["rows"].append([f"query text {XSS}"] + [XSS_IMG] * (len(p["columns"]) - 1))
            if p["type"] == "lines":
                p["series"][0]["label"] = XSS
    r["audits"][0]["name"] = 'x" onmouseover="alert(3)'
    r["audits"][1]["status"] = '"><script>alert(4)</script>'
    return r


def test_user_strings_are_escaped_everywhere() -> None:
    r = _hostile(load("nogo"))
    html = render_html(r)
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert_no_active_content(html)
    text = " ".join(parse(html).text)
    assert XSS in text and XSS_IMG in text                   # shown as text, not dropped
    assert f"./plugins/{XSS}.py:make" in text
    # compare page and the text outputs are safe too
    cmp_html = render_compare_html(load("nogo"), r)
    assert "<script" not in cmp_html.lower()
    assert_no_active_content(cmp_html)
    md = render_markdown(r)
    # fenced code is shown verbatim by every Markdown renderer (the command must stay copyable)
    outside_code = re.sub(r"(`{3,})\n.*?\n\1", "", md, flags=re.S)
    assert f"```\naudit run --model '{XSS}'\n```" in md
    assert "<script" not in outside_code.lower() and "<img" not in outside_code.lower()
    root = ET.fromstring(render_junit(r))
    assert root.find(".//testcase").get("name") == 'x" onmouseover="alert(3)'  # XML-escaped, round-trips


def test_html_degrades_gracefully_on_minimal_and_odd_results() -> None:
    minimal = {"schema_version": 1, "verdict": "GO", "audits": []}
    html = render_html(minimal)
    assert "No audit results were recorded" in html and 'data-verdict="GO"' in html
    bare = {"audits": [{"name": "custom_check"}, {"status": "PASS"}], "verdict": "WEIRD", "schema_version": 2}
    html = render_html(bare)
    text = " ".join(parse(html).text)
    assert "schema_version 2" in text and "WEIRD" in text and "custom_check" in text
    assert "No summary was recorded." in text and "not recorded" in text
    assert 'class="verdict verdict-unknown"' in html
    edge = render_html(load("edge"))
    assert "not known to this version of the report" in edge        # unknown plot type: a note
    assert "ModelFailure: score() returned shape (2999,)" in edge     # the ERROR's text is shown
    assert "Skipped: no synthetic data was given" in edge
    assert "inconclusive" in edge


@pytest.mark.parametrize("bad,field", [([], None), ("x", None), ({"audits": "no"}, "audits"),
                                       ({"audits": [1, 2]}, "audits")])
def test_unrenderable_results_raise_data_error(bad: Any, field: str | None) -> None:
    with pytest.raises(DataError) as e:
        render_html(bad)
    assert "results.json" in str(e.value)


# --------------------------------------------------------------------------- JUnit
@pytest.mark.parametrize("name", SAMPLES)
def test_junit_is_valid_xml_with_one_testcase_per_audit(name: str) -> None:
    r = load(name)
    root = ET.fromstring(render_junit(r))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    st_ = [a["status"] for a in r["audits"]]
    assert [c.get("name") for c in cases] == [a["name"] for a in r["audits"]]
    assert all(c.get("classname") == "rank_auditor.audits" for c in cases)
    for attr, s in (("failures", "FAIL"), ("errors", "ERROR"), ("skipped", "SKIP")):
        assert int(suite.get(attr)) == int(root.get(attr)) == st_.count(s)
    assert int(suite.get("tests")) == len(r["audits"])
    for c, a in zip(cases, r["audits"]):
        kids = {k.tag for k in c} - {"system-out"}
        expected = {"FAIL": {"failure"}, "ERROR": {"error"}, "SKIP": {"skipped"}}.get(a["status"], set())
        assert kids == expected, (a["name"], kids)
        if expected:
            assert c.find(next(iter(expected))).get("message") == a["summary"]
        if a["status"] == "WARN":
            assert c.find("system-out").text.startswith("WARN:")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["verdict"] == r["verdict"]


def test_junit_unknown_status_is_an_error_not_a_pass() -> None:
    r = {"schema_version": 1, "verdict": "GO", "audits": [{"name": "a", "status": "MAYBE", "summary": "s"},
                                                          {"name": "b", "status": "PASS", "summary": "t"}]}
    suite = ET.fromstring(render_junit(r)).find("testsuite")
    assert suite.get("errors") == "1" and suite.find("testcase/error").get("type") == "UNKNOWN_STATUS"


def test_junit_survives_control_characters() -> None:
    r = load("go")
    r["audits"][0]["summary"] = "bad \x00 bytes \x1b[31m and \ud800"
    root = ET.fromstring(render_junit(r))
    assert "bad" in root.find(".//system-out").text


# --------------------------------------------------------------------------- Markdown
@pytest.mark.parametrize("name", SAMPLES)
def test_markdown_summary_fits_a_pr_comment(name: str) -> None:
    r = load(name)
    md = render_markdown(r)
    first = md.splitlines()[0]
    assert first.startswith("## rank-auditor verdict:") and f"**{r['verdict']}**" in first
    lines = md.splitlines()
    start = lines.index("| Audit | Status | Critical | Answer | p (Holm) |") + 2
    rows = lines[start:lines.index("", start)]
    assert len(rows) == len(r["audits"])
    for ln, a in zip(rows, r["audits"]):
        cells = re.split(r"(?<!\\)\|", ln)[1:-1]           # unescaped pipes only
        assert len(cells) == 5 and a["status"] in cells[1]
    assert f"```\n{r['command']}\n```" in md
    # key numbers: one line per audit with conditions, the worst condition's observed value
    key = lines[lines.index("**Key numbers** (the condition that decided each audit)") + 2:]
    key = key[:key.index("")]
    assert len(key) == sum(bool(a.get("conditions")) for a in r["audits"])
    for ln, a in zip(key, [a for a in r["audits"] if a.get("conditions")]):
        assert ln.startswith(f"- {a['name']} \u2014 {a['status']}:")
    assert len(md) < 20_000


def test_markdown_escapes_table_breakers_and_fences() -> None:
    r = load("go")
    r["audits"][0]["summary"] = "a | b\nc [x](javascript:alert(1)) <b>"
    r["command"] = "audit run ```\nrm -rf /"
    md = render_markdown(r)
    row = [ln for ln in md.splitlines() if "a \\| b" in ln][0]
    assert len(re.split(r"(?<!\\)\|", row)) == 7 and "\\[x\\]" in row and "&lt;b&gt;" in row
    assert "````\naudit run ```\nrm -rf /\n````" in md


# --------------------------------------------------------------------------- files
def test_render_all_writes_three_files_atomically(tmp_path: Path) -> None:
    out = tmp_path / "run"
    paths = render_all(load("nogo"), out)
    assert set(paths) == {"report.html", "junit.xml", "summary.md"}
    assert sorted(os.listdir(out)) == ["junit.xml", "report.html", "summary.md"]   # no temp files, no results.json
    assert paths["report.html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    mask = os.umask(0)
    os.umask(mask)
    assert all((p.stat().st_mode & 0o777) == (0o666 & ~mask) for p in paths.values())   # not mkstemp's 0600
    # re-rendering replaces the files
    paths2 = render_all(load("go"), out)
    assert 'data-verdict="GO"' in paths2["report.html"].read_text(encoding="utf-8")
    # a results dict that cannot be rendered writes nothing
    empty = tmp_path / "bad"
    with pytest.raises(DataError):
        render_all({"audits": "nope"}, empty)
    assert not empty.exists()


# --------------------------------------------------------------------------- terminal
def test_print_summary_readable_without_colour() -> None:
    r = load("edge")
    r["audits"][0]["summary"] = "[bold red]not markup[/] " + r["audits"][0]["summary"]
    buf = io.StringIO()
    print_summary(r, Console(file=buf, width=140, color_system=None, force_terminal=False))
    out = buf.getvalue()
    assert "\x1b[" not in out
    for a in r["audits"]:
        assert a["name"] in out and a["status"] in out
    assert "[bold red]not markup[/]" in out
    assert "(inconclusive)" in out
    assert re.search(r"Verdict: INCONCLUSIVE — 1 audit errored", out)
    assert "0.352 / 1" in out                                  # p / Holm p of random_label


def test_outputs_never_disagree(html_by_sample: dict[str, str]) -> None:
    """The verdict and each audit's status are the same in HTML, JUnit, Markdown and terminal."""
    for name in SAMPLES:
        r = load(name)
        expected = [(a["name"], a["status"]) for a in r["audits"]]
        html = html_by_sample[name]
        assert [(a["data-audit"], a["data-status"]) for t, a in parse(html).tags
                if t == "section" and "data-audit" in a] == expected
        junit = ET.fromstring(render_junit(r))
        got = []
        for c in junit.iter("testcase"):
            kind = next((k.tag for k in c if k.tag != "system-out"), None)
            got.append((c.get("name"), {"failure": "FAIL", "error": "ERROR", "skipped": "SKIP"}.get(
                kind, c.find("system-out").text.split(":")[0])))
        assert got == expected
        md = render_markdown(r)
        assert f"**{r['verdict']}**" in md.splitlines()[0]
        buf = io.StringIO()
        print_summary(r, Console(file=buf, width=200, color_system=None))
        lines = buf.getvalue().splitlines()
        for n, s in expected:
            assert any(re.match(rf"\s*{n}\s+{s}\b", ln) for ln in lines), (n, s)
        assert f"Verdict: {r['verdict']}" in buf.getvalue()


# --------------------------------------------------------------------------- compare
def test_compare_results_statuses_and_deltas() -> None:
    a, b = load("nogo"), load("go")
    c = compare_results(a, b)
    assert c["a"]["verdict"] == "NO_GO" and c["b"]["verdict"] == "GO" and c["verdict_changed"]
    by = {x["name"]: x for x in c["audits"]}
    assert [x["name"] for x in c["audits"]] == [x["name"] for x in a["audits"]]
    assert (by["isolation"]["status_a"], by["isolation"]["status_b"], by["isolation"]["changed"]) == ("FAIL", "WARN", True)
    assert not by["significance"]["changed"]
    rows = {m["key"]: m for m in by["synthetic_shift"]["measurements"]}
    auc_a = a["audits"][3]["measurements"]["classifier_auc"]["estimate"]
    auc_b = b["audits"][3]["measurements"]["classifier_auc"]["estimate"]
    assert rows["classifier_auc"]["delta"] == pytest.approx(auc_b - auc_a)
    assert rows["classifier_auc"]["rel_delta"] == pytest.approx((auc_b - auc_a) / auc_a)
    assert rows["ks_significant"]["delta"] == 3 - 287 and isinstance(rows["ks_significant"]["delta"], int)
    tiny = compare_results({"audits": [{"name": "x", "measurements": {"p": 7.77e-30, "m": 0.0307}}]},
                           {"audits": [{"name": "x", "measurements": {"p": 2.05e-154, "m": 0.0307 + 3e-18}}]})
    d = {r["key"]: r["delta"] for r in tiny["audits"][0]["measurements"]}
    assert d["p"] == pytest.approx(-7.77e-30) and d["m"] == 0          # scale-relative round-off only
    iso = {m["key"] for m in by["isolation"]["measurements"]}
    assert "ndcg_contaminated" not in iso                    # null in the GO run: not shared
    assert c["warnings"] == []                                # same seed, data hashes and metric
    json.dumps(c)                                             # JSON-able for the CLI


def test_compare_with_itself_and_with_a_different_run() -> None:
    a = load("nogo")
    same = compare_results(a, a)
    assert not same["verdict_changed"] and not any(x["changed"] for x in same["audits"])
    assert all(m["delta"] == 0 for x in same["audits"] for m in x["measurements"])
    edge = compare_results(a, load("edge"), labels=("v2.0", "v2.1"))
    by = {x["name"]: x for x in edge["audits"]}
    assert by["stability"]["status_b"] is None and edge["only_in_a"] == ["feature_ablation", "stability"]
    assert by["isolation"]["status_b"] == "ERROR" and by["isolation"]["measurements"] == []
    assert any("different test data" in w for w in edge["warnings"])
    assert any("different seeds" in w for w in edge["warnings"])
    with pytest.raises(DataError):
        compare_results(a, [])


def test_compare_html_and_terminal() -> None:
    a, b = load("nogo"), load("go")
    html = render_compare_html(a, b, labels=("audit-v2.0", "audit-v2.1"))
    assert_no_active_content(html)
    text = " ".join(parse(html).text)
    assert "NO_GO" in text and "GO" in text and "audit-v2.0" in text and "Verdict changed: NO_GO → GO." in text
    assert "classifier_auc" in text and "-0.3850" in text
    buf = io.StringIO()
    print_compare(a, b, Console(file=buf, width=160, color_system=None), labels=("v2.0", "v2.1"))
    out = buf.getvalue()
    # the terminal says what changed: verdicts, audits and their conditions; raw deltas stay in the HTML
    assert out.startswith("Verdict: v2.0 NO_GO -> v2.1 GO (changed)")
    assert re.search(r"isolation\s+FAIL\s+WARN\s+FAIL -> PASS: no \(query, item\) pair of the test set appears", out)
    assert "Unchanged: significance PASS." in out
    assert "classifier_auc" not in out and "p_value" not in out
    assert re.search(r"51 shared measurements, \d+ of them different", out)
    assert len(out.splitlines()) < 40


def test_compare_headline_numbers_from_real_measurement_keys() -> None:
    a = load("nogo")
    b = json.loads(json.dumps(a))
    sig = next(x for x in b["audits"] if x["name"] == "significance")
    sig["measurements"].update({"candidate_mean": 0.80, "baseline_mean": 0.75, "mean_delta": 0.05})
    sig2 = next(x for x in a["audits"] if x["name"] == "significance")
    sig2["measurements"].update({"candidate_mean": 0.78, "baseline_mean": 0.75, "mean_delta": 0.03})
    c = compare_results(a, b)
    rows = {r["key"]: r for r in c["headline"]}
    assert rows["mean_delta"]["a"] == 0.03 and rows["mean_delta"]["b"] == 0.05
    assert rows["candidate_mean"]["label"].startswith("candidate ")
    buf = io.StringIO()
    print_compare(a, b, Console(file=buf, width=160, color_system=None))
    assert re.search(r"gain over the baseline \(mean per-query Δ\)\s+significance\s+0\.0300\s+0\.0500\s+\+0\.0200",
                     buf.getvalue())


# --------------------------------------------------------------------------- measurements view
def test_flat_confidence_intervals_join_their_estimate() -> None:
    m = {"metric": "ndcg@10", "base": 0.75,
         "variant_a": {"n": 50, "excess": 0.0702, "ci_low": 0.0358, "ci_high": 0.1031, "p_value": 7.6e-5,
                       "per_seed": [{"seed": 0, "excess": 0.06}]},
         "gain": {"estimate": 0.0955, "ci_low": 0.0554, "ci_high": 0.1372},
         "odd": {"n": 3, "ci_low": 0.1, "ci_high": 0.2}}        # a CI with no estimate before it stays apart
    results = copy.deepcopy(load("go"))
    results["audits"][0]["measurements"] = m
    card = build_view(results, plots=False)["audits"][0]
    top, groups, hidden = card["measurements"], card["measurement_groups"], card["measurements_more"]
    assert top == [{"key": "metric", "value": "ndcg@10"}, {"key": "base", "value": "0.7500"},
                   {"key": "gain", "value": "0.0955 [0.0554, 0.1372]"}]
    rows = {r["key"]: r["value"] for r in groups[0]["rows"]}
    assert groups[0]["name"] == "variant_a"
    assert rows["excess"] == "0.0702 [0.0358, 0.1031]" and "ci_low" not in rows
    assert rows["per_seed"] == "1 records (in results.json)"
    odd = {r["key"]: r["value"] for r in groups[1]["rows"]}
    assert odd == {"n": "3", "ci_low": "0.1000", "ci_high": "0.2000"}
    assert hidden == 0


# --------------------------------------------------------------------------- real results
@pytest.mark.slow
def test_reports_render_real_runner_results(tmp_path: Path) -> None:
    """All six real audits on small planted-free data: every plot they emit draws (none
    degrades to a note), and the outputs agree with results.json."""
    import auditor
    from auditor.synthetic import make_synthetic_split

    split = make_synthetic_split(n_train_queries=60, n_test_queries=30, seed=0)
    synthetic = make_synthetic_split(n_train_queries=30, n_test_queries=2, seed=1).train
    run = auditor.run_audit(model="rankers:make_linear", train=split.train, test=split.test,
                            synthetic=synthetic, baseline="rankers:make_random", quick=True)
    results = json.loads(json.dumps(run.results))          # exactly what results.json holds
    assert {a["name"] for a in results["audits"]} >= {"random_label", "feature_ablation", "isolation"}
    paths = render_all(results, tmp_path)
    view = build_view(results)
    for a in view["audits"]:
        notes = [p.notes for p in a["plots"] if p.kind == "note"]
        assert not notes, (a["name"], notes)
    assert sum(len(a["plots"]) for a in view["audits"]) >= 10
    html = paths["report.html"].read_text(encoding="utf-8")
    assert_no_active_content(html)
    assert len(html.encode()) < 1_000_000
    cards = [(x["data-audit"], x["data-status"]) for t, x in parse(html).tags if t == "section" and "data-audit" in x]
    assert cards == [(a["name"], a["status"]) for a in results["audits"]]
    suite = ET.fromstring(paths["junit.xml"].read_text(encoding="utf-8")).find("testsuite")
    assert int(suite.get("tests")) == len(results["audits"])
    assert f"**{results['verdict']}**" in paths["summary.md"].read_text(encoding="utf-8")


# --------------------------------------------------------------------------- verdict card: scope, evidence, claim
def test_p_value_is_not_shown_beside_a_fail_decided_by_exact_checks() -> None:
    r = load("nogo")
    iso = next(a for a in r["audits"] if a["name"] == "isolation")
    iso["p_value"], iso["p_adjusted"] = 0.048, 0.048                  # the near-duplicate permutation test
    near = next(c for c in iso["conditions"] if c["name"].startswith("near-duplicate"))
    near["status"], near["threshold"] = "WARN", "FAIL when Holm-adjusted p < 0.05 and the excess share >= 1%"
    md = render_markdown(r)
    row = next(line for line in md.splitlines() if line.startswith(f"| {iso['title']} "))
    assert row.endswith("| exact check |") and "0.048" not in row
    buf = io.StringIO()
    print_summary(r, Console(file=buf, width=200, color_system=None))
    line = next(x for x in buf.getvalue().splitlines() if x.strip().startswith("isolation"))
    assert "exact check" in line and "0.048" not in line
    html = render_html(r)
    assert "decided by exact checks" in html
    near["status"] = "FAIL"                                           # now the p-value took part in the FAIL
    row = next(line for line in render_markdown(r).splitlines() if line.startswith(f"| {iso['title']} "))
    assert row.endswith("| 0.0480 |")


def test_p_value_is_shown_beside_a_fail_decided_by_a_test() -> None:
    """random_label's gating condition is worded 'the Holm-adjusted one-sided p of excess > ...':
    its FAIL was decided by the p-value, which must then stand in the P column."""
    r = load("nogo")
    rl = next(a for a in r["audits"] if a["name"] == "random_label")
    rl["status"], rl["p_value"], rl["p_adjusted"] = "FAIL", 1.9e-08, 5.8e-08
    rl["conditions"] = [{"name": "held-out ndcg@10 under shared label shuffles is not above chance (variant B)",
                         "status": "FAIL", "observed": "excess +0.091",
                         "threshold": "FAIL when the Holm-adjusted one-sided p of excess > min_excess (0.01) "
                                      "is < 0.05; otherwise inconclusive"}]
    row = next(line for line in render_markdown(r).splitlines() if line.startswith(f"| {rl['title']} "))
    assert "exact check" not in row
    assert "decided by exact checks" not in render_html(r).split(f'data-audit="random_label"')[1].split("</section>")[0]


def test_no_go_lists_evidence_most_direct_first_in_every_output() -> None:
    r = json.loads((Path(__file__).parents[1] / "docs/example-report/results.json").read_text())
    r.pop("scope", None)
    for a in r["audits"]:
        a.pop("headline", None)                                       # computed from the measurements
    v = build_view(r, plots=False)
    assert [e["audit"] for e in v["evidence"]][:2] == ["isolation", "feature_ablation"]
    assert v["evidence"][0]["text"].endswith("are exact copies of training rows, and 36 of 120 test queries also "
                                             "occur in training")
    assert v["evidence"][1]["text"].startswith("Column visual.26 is a label proxy")
    md = render_markdown(r)
    assert md.index("1. " + v["evidence"][0]["text"][:20]) < md.index("2. Column visual.26")
    html = render_html(r)
    assert html.index(v["evidence"][0]["text"][:20]) < html.index("Column visual.26 is a label proxy")


def test_claim_is_shown_in_absolute_terms_with_its_ci() -> None:
    r = json.loads((Path(__file__).parents[1] / "docs/example-report/results.json").read_text())
    r.pop("claim", None)                                              # rebuilt from significance's measurements
    m = next(a for a in r["audits"] if a["name"] == "significance")["measurements"]
    v = build_view(r, plots=False)
    assert f"baseline {m['baseline_mean']:.4f} \u2192 candidate {m['candidate_mean']:.4f}" in v["claim"]
    assert f"[{m['ci_low']:+.4f}, {m['ci_high']:+.4f}]" in v["claim"]
    for text in (render_markdown(r), render_html(r)):
        assert f"candidate {m['candidate_mean']:.4f}" in text


def test_scope_label_reaches_every_output() -> None:
    from auditor.verdict import build_scope, verdict_label

    r = load("go")
    r["audits"] = [a for a in r["audits"] if a["name"] == "isolation"]
    r["scope"] = build_scope(r["audits"], left_out=["random_label", "feature_ablation", "synthetic_shift",
                                                    "significance", "stability"],
                             suite=["random_label", "feature_ablation", "isolation", "synthetic_shift",
                                    "significance", "stability"])
    r["verdict_label"] = verdict_label("GO", r["scope"])
    assert r["verdict_label"] == "GO for isolation only \u2014 1 of 6 audits"
    assert "for isolation only \u2014 1 of 6 audits" in render_html(r)
    assert "**GO** for isolation only" in render_markdown(r)
    assert ET.fromstring(render_junit(r)).find(".//property[@name='verdict_label']").get("value") == r["verdict_label"]
    buf = io.StringIO()
    print_summary(r, Console(file=buf, width=200, color_system=None))
    assert "Verdict: GO for isolation only \u2014 1 of 6 audits" in buf.getvalue()
