"""reports.svg: the hand-built SVG charts of the report (escaping, ticks, layout, well-formedness)."""
from __future__ import annotations

import doctest
import math
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reports.svg as svg
from auditor.audits.base import plot_bars, plot_hist, plot_intervals, plot_lines
from reports.plots import render_plot
from reports.svg import Chart, category_axis, esc, linear_axis, log_axis, nice_ticks, text_width, tick_labels

NS = "{http://www.w3.org/2000/svg}"
XSS = "<script>alert(1)</script>"


def test_doctests() -> None:
    assert doctest.testmod(svg).failed == 0


def test_esc_escapes_markup_quotes_and_xml_invalid_characters() -> None:
    assert esc('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert esc("it's") == "it&#x27;s"
    assert esc("a\x00b\x1fc") == "a\ufffdb\ufffdc"
    assert esc(3.5) == "3.5"


def test_text_width_is_roughly_dejavu() -> None:
    # DejaVu Sans: "0" is 0.64 em, "i" 0.28 em; unknown characters count as 0.7 em
    assert text_width("00", 10) == pytest.approx(12.8)
    assert text_width("i", 10) < text_width("m", 10)
    assert text_width("\u4e2d", 10) == pytest.approx(7.0)
    assert text_width("", 10) == 0


@pytest.mark.parametrize("lo,hi,n", [(0, 1, 6), (0.7, 12.3, 8), (-0.21, 0.013, 7), (1e-6, 3e-6, 5), (0.45, 0.85, 10),
                                     (-5e4, 3e5, 6), (100, 100.5, 4)])
def test_nice_ticks_are_round_inside_and_not_too_many(lo: float, hi: float, n: int) -> None:
    t = nice_ticks(lo, hi, n)
    assert 2 <= len(t) <= n
    assert all(lo - 1e-12 <= v <= hi + 1e-12 for v in t)
    steps = {round(b - a, 12) for a, b in zip(t, t[1:])}
    assert len(steps) == 1                                      # evenly spaced
    step = steps.pop()
    mant = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mant, m) for m in (1, 2, 2.5, 5))


def test_nice_ticks_integer_and_bad_ranges() -> None:
    assert all(float(v).is_integer() for v in nice_ticks(0.6, 10.4, 10, integer=True))
    for lo, hi in ((1, 1), (2, 1), (0, math.inf), (-1e308, 1e308)):
        with pytest.raises(ValueError):
            nice_ticks(lo, hi)


def test_tick_labels_share_decimals_and_use_a_real_minus() -> None:
    assert tick_labels([0.0, 0.25, 0.5]) == ["0.00", "0.25", "0.50"]
    assert tick_labels([-2.0, 0.0, 2.0]) == ["\u22122", "0", "2"]
    assert tick_labels([-0.0, 1.0]) == ["0", "1"]                      # no "-0"
    assert tick_labels([0.0, 5e-6, 1e-5]) == ["0", "5e\u221206", "1e\u221205"]
    assert tick_labels([0, 200_000, 400_000]) == ["0", "2e+05", "4e+05"]
    assert tick_labels([]) == []


def test_axes_fit_their_values() -> None:
    ax = linear_axis([0.2, 0.8])
    assert ax.lo < 0.2 and ax.hi > 0.8 and ax.ticks and len(ax.ticks) == len(ax.labels)
    bars = linear_axis([0.0, 3.0], sticky_zero=True)
    assert bars.lo == 0.0 and bars.hi > 3.0                          # bars stand on the axis
    one = linear_axis([5.0])                                         # one value: widened around it
    assert one.lo < 5.0 < one.hi
    lg = log_axis([1e-4, 0.5, 1.0, -1.0, math.nan])
    assert lg.log and lg.lo < 1e-4 and lg.hi > 1.0
    assert {"0.001", "0.01", "0.1", "1"} <= set(lg.labels)
    assert 0 < lg.frac(0.01) < 1
    cat = category_axis(["a", "b", "c"], reverse=True)
    assert cat.ticks == [2.0, 1.0, 0.0] and not cat.grid and cat.labels == ["a", "b", "c"]
    with pytest.raises(ValueError):
        log_axis([0.0, -1.0])


def _parse(s: str) -> ET.Element:
    root = ET.fromstring(s)                                          # well-formed XML
    assert root.tag == f"{NS}svg"
    return root


def test_chart_writes_wellformed_scaled_svg_with_every_text_escaped() -> None:
    ch = Chart(linear_axis([0, 10], title=f"x {XSS}"), linear_axis([0, 1], title='y "q" & <b>'), 120)
    ch.line([0, 5, 10], [0.1, math.nan, 0.9], color="#2563eb", label=XSS, marker=3)
    ch.ref(0.5, vertical=False, color="#374151", width=1.1, style="--", label="chance")
    s = ch.render("u1", f"title {XSS}")
    root = _parse(s)
    assert "<script" not in s and "&lt;script&gt;" in s
    assert root.get("width") == "100%" and root.get("role") == "img" and XSS in root.get("aria-label")
    vb = [float(v) for v in root.get("viewBox").split()]
    assert vb[:3] == [0, 0, svg.WIDTH] and 150 < vb[3] < 260
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert f"x {XSS}" in texts and 'y "q" & <b>' in texts and XSS in texts and "chance" in texts
    # the NaN breaks the line: two single points, no polyline through the gap; markers drawn
    assert not root.findall(f".//{NS}polyline") and len(root.findall(f".//{NS}circle")) >= 2
    assert root.find(f".//{NS}clipPath").get("id") == "u1-c"
    assert 'stroke-dasharray' in s                                   # the dashed reference line
    assert "font-family" not in s and "<style" not in s


def test_overlapping_numeric_ticks_are_thinned_and_category_labels_rotated() -> None:
    ch = Chart(linear_axis([0, 123456.7], max_ticks=20), linear_axis([0, 1]), 100)
    ch.render("a", "t")
    assert 2 <= len(ch.x.ticks) < 20 and not ch.rotate_x
    cats = Chart(category_axis([f"label{i:05d}" for i in range(8)]), linear_axis([0, 1]), 100)
    s = cats.render("b", "t")
    assert cats.rotate_x and "rotate(-30)" in s


def test_legend_goes_where_the_data_is_not() -> None:
    def legend_x(ys: list[float]) -> float:
        ch = Chart(linear_axis([0, 10]), linear_axis([0, 1]), 120)
        ch.line(list(range(11)), ys, color="#000", label="series")
        s = ch.render("l", "t")
        m = re.search(r'<text x="([\d.]+)"[^>]*>series</text>', s)
        return float(m.group(1))

    rising = legend_x([i / 10 for i in range(11)])                  # data in the upper right
    falling = legend_x([1 - i / 10 for i in range(11)])             # data in the upper left
    assert rising < svg.WIDTH / 2 < falling


@pytest.mark.parametrize("spec", [
    plot_lines("one point", [{"label": "loss", "x": [3], "y": [0.5]}]),
    plot_lines("refs only", [], hlines=[{"label": "chance", "y": 0.5}]),
    plot_lines("log x", [{"label": "a", "x": [1, 10, 100, 1000], "y": [1, 2, 3, 4]}]) | {"xscale": "log"},
    plot_lines("many", [{"label": f"s{i}", "y": [i, i + 1, i + 2]} for i in range(6)]),
    plot_hist("markers only", [], markers=[{"label": "observed", "x": 0.3}]),
    plot_hist("one value", [2.0, 2.0, 2.0], markers=[{"label": "obs", "x": 2.0}]),
    plot_intervals("no ci", [{"label": "a", "estimate": 0.2, "low": None, "high": None}], ref=None),
    plot_bars("negative", ["a", "b"], [-0.5, 0.25], hlines=[{"label": "zero-ish", "y": 0.1}]),
    plot_bars("long labels", ["a feature with a very long name indeed", "b"], [1.0, 2.0]),
], ids=lambda s: s["title"])
def test_edge_specs_draw_wellformed_svg(spec: dict) -> None:
    v = render_plot(spec, uid="e")
    assert v.kind == "svg", v.notes
    root = _parse(str(v.svg))
    assert root.findall(f".//{NS}text")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32),
                          st.floats(min_value=-1e300, max_value=1e300)), min_size=1, max_size=12),
       st.sampled_from(["lines", "hist", "bars", "intervals"]))
def test_any_numbers_give_wellformed_svg_or_a_note(values: list[float], kind: str) -> None:
    spec = {"lines": lambda: plot_lines("t", [{"label": "s", "y": values}]),
            "hist": lambda: {"type": "hist", "title": "t", "values": values,
                             "markers": [{"label": "m", "x": values[0]}]},
            "bars": lambda: {"type": "bars", "title": "t", "labels": [str(i) for i in range(len(values))],
                             "values": values},
            "intervals": lambda: {"type": "intervals", "title": "t", "ref": 0.0,
                                  "rows": [{"label": str(i), "estimate": v, "low": v - 1, "high": v + 1}
                                           for i, v in enumerate(values)]}}[kind]()
    v = render_plot(spec)
    assert v.kind in ("svg", "note")
    if v.kind == "svg":
        s = str(v.svg)
        _parse(s)
        assert "nan" not in s.lower().replace("nan-", "") and "inf" not in s
