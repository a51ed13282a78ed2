"""Draw the generic plot specs of ``results.json`` as small inline SVG (or HTML tables).

Audits describe their evidence as data (``auditor.audits.base.plot_*``): ``lines``,
``hist``, ``intervals``, ``bars`` and ``table``. This module turns one spec into a
:class:`PlotView` that the HTML template can place directly:

- ``kind == "svg"``: ``svg`` holds a sanitised ``<svg>`` element (no XML prolog, no metadata,
  no fonts, ``width="100%"`` with a ``viewBox`` so it scales with the card);
- ``kind == "table"``: ``columns`` / ``rows`` are formatted strings (autoescaped by jinja);
- ``kind == "note"``: the spec could not be drawn; ``note`` says why (rendering never fails
  because of one bad plot).

The charts are written by hand as SVG (:mod:`reports.svg`), not with matplotlib: the report
needs four simple chart kinds, and building their few dozen elements directly takes a few
milliseconds per report where matplotlib took ~1.5 s (its import included). Every text is
XML-escaped there; a last check here refuses anything script-like.

Size: text stays text (the page CSS picks the font), line series are thinned to
:data:`MAX_POINTS` points, bar charts keep the :data:`MAX_BARS` largest values, interval plots
:data:`MAX_INTERVAL_ROWS` rows and tables :data:`MAX_TABLE_ROWS` rows, each with a note saying
what was left out. A plot is typically 2-8 kB.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from markupsafe import Markup

from reports.svg import Chart, category_axis, linear_axis, log_axis

__all__ = ["PlotView", "render_plot", "fmt_value", "MAX_POINTS", "MAX_BARS",
           "MAX_INTERVAL_ROWS", "MAX_TABLE_ROWS", "PLOT_TYPES"]

PLOT_TYPES = ("lines", "hist", "intervals", "bars", "table")
MAX_POINTS = 400          # per line series; loss curves of 10k steps look the same thinned
MAX_BARS = 30             # a 300-feature KS ranking shows its 30 largest
MAX_INTERVAL_ROWS = 40
MAX_TABLE_ROWS = 50
MAX_LABEL_CHARS = 48      # tick labels longer than this are cut (full text stays in the table/notes)

# Calm, colour-blind-friendly palette (blue, orange, teal, purple, red, grey): series order.
PALETTE = ("#2563eb", "#d97706", "#0d9488", "#7c3aed", "#dc2626", "#6b7280", "#db2777", "#65a30d")
REF_COLOR = "#374151"



@dataclass
class PlotView:
    """One plot ready for the template (every field always present, for StrictUndefined).

    Attributes
    ----------
    kind : {"svg", "table", "note"}
    title : str
        The spec's title (shown as the HTML caption; autoescaped there).
    svg : markupsafe.Markup
        The ``<svg>`` element for ``kind == "svg"``, else empty.
    columns : list of str
    rows : list of list of str
        Formatted cells for ``kind == "table"``.
    notes : list of str
        What was thinned or left out, or why the plot could not be drawn.
    """

    kind: str
    title: str = ""
    svg: Markup = field(default_factory=lambda: Markup(""))
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- formatting
def fmt_value(x: Any) -> str:
    """Format one value for humans: 4 decimals for metric-sized floats, 3 significant
    digits for small ones, scientific below 1e-4, ``n/a`` for ``None`` (a non-finite number
    in results.json), ``yes``/``no`` for booleans; anything else as ``str``.

    Examples
    --------
    >>> fmt_value(0.0307), fmt_value(2.3e-05), fmt_value(None), fmt_value(12000), fmt_value(95.25)
    ('0.0307', '2.30e-05', 'n/a', '12,000', '95.25')
    """
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 1000 else str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return "n/a"
        a = abs(x)
        if a == 0:
            return "0"
        if a >= 10_000:
            return f"{x:,.0f}"
        if a >= 1:
            return f"{x:.4g}" if a < 1000 else f"{x:.1f}"
        if a >= 0.01:
            return f"{x:.4f}"
        if a >= 1e-4:
            return f"{x:.3g}"
        return f"{x:.2e}"
    return str(x)


def _short(label: Any, n: int = MAX_LABEL_CHARS) -> str:
    s = " ".join(str(label).split())
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def _num(x: Any) -> float:
    """A float or NaN (``None``, strings and other junk become NaN, never an exception)."""
    if isinstance(x, bool):
        return float(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return math.nan
    return f


def _seq(x: Any) -> list:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _thin(x: list[float], y: list[float], n: int) -> tuple[list[float], list[float]]:
    """Keep at most ``n`` points at evenly spaced indices, always keeping the last one."""
    if len(x) <= n:
        return x, y
    step = (len(x) - 1) / (n - 1)
    idx = sorted({round(i * step) for i in range(n)})
    return [x[i] for i in idx], [y[i] for i in idx]


# --------------------------------------------------------------------------- drawing
# Each _draw_* turns a spec into a reports.svg.Chart (data in, marks in data coordinates);
# plot-area heights in points mirror the old matplotlib figure sizes.
LINES_HEIGHT = 140.0
HIST_HEIGHT = 120.0
BARS_HEIGHT = 130.0
ROW_PITCH_INTERVALS = 21.6    # 0.3 in per interval row
ROW_PITCH_BARS = 17.3         # 0.24 in per horizontal bar
MAX_PLOT_HEIGHT = 600.0
MIN_ROWS_HEIGHT = 45.0         # a one-row interval plot still has room to read


def _ref_lines(chart: Chart, hlines: Sequence[Any], *, vertical: bool = False) -> list[float]:
    """Draw reference lines ``[{"label", "y"}]`` (dashed, then dotted, then dash-dot) across the
    axes; vertical for horizontal bar charts. Returns the values drawn."""
    drawn = []
    styles = ("--", ":", "-.")
    for h in _seq(hlines):
        if not isinstance(h, Mapping):
            continue
        v = _num(h.get("y", h.get("x")))
        if not math.isfinite(v):
            continue
        chart.ref(v, vertical=vertical, color=REF_COLOR, width=1.1, style=styles[len(drawn) % 3],
                  label=_short(h.get("label", "")))
        drawn.append(v)
    return drawn


def _ref_values(hlines: Any) -> list[float]:
    return [v for h in _seq(hlines) if isinstance(h, Mapping)
            for v in [_num(h.get("y", h.get("x")))] if math.isfinite(v)]


def _axis_scale(spec: Mapping[str, Any], key: str, values: list[float], notes: list[str]) -> str:
    """``"log"`` if the spec asks for it, or (unasked) if positive values span > 3 decades:
    a loss curve from 0.9 to 2e-5 is a flat line at zero on a linear axis."""
    asked = spec.get(key)
    if asked in ("log", "linear"):
        return asked
    v = [x for x in values if math.isfinite(x)]
    if v and min(v) > 0 and max(v) / min(v) > 1e3:
        notes.append(f"{key[0]} axis on a log scale: values span {math.log10(max(v) / min(v)):.0f} orders of magnitude")
        return "log"
    return "linear"


def _draw_lines(spec: Mapping[str, Any], notes: list[str]) -> Chart:
    series: list[tuple[str, list[float], list[float], str]] = []     # (label, x, y, colour)
    for i, s in enumerate(_seq(spec.get("series"))):
        if not isinstance(s, Mapping):
            notes.append(f"series {i + 1} is not an object; skipped")
            continue
        y = [_num(v) for v in _seq(s.get("y"))]
        x_raw = s.get("x")
        x = [_num(v) for v in _seq(x_raw)] if x_raw is not None else [float(j) for j in range(len(y))]
        if len(x) != len(y):
            notes.append(f"series {_short(s.get('label', i + 1))!r}: x and y differ in length; truncated")
            m = min(len(x), len(y))
            x, y = x[:m], y[:m]
        if not y:
            continue
        n0 = len(y)
        x, y = _thin(x, y, MAX_POINTS)
        if n0 > len(y):
            notes.append(f"{_short(s.get('label', 'series'))}: {n0:,} points thinned to {len(y)} for display")
        series.append((_short(s.get("label", "")), x, y, PALETTE[i % len(PALETTE)]))
    refs = _ref_values(spec.get("hlines"))
    if not series and not refs:
        raise ValueError("no data to draw")
    _note_unequal_lengths(series, notes)
    all_x = [v for _, x, _, _ in series for v in x if math.isfinite(v)]
    all_y = [v for _, _, y, _ in series for v in y] + refs
    xlabel, ylabel = _short(spec.get("xlabel", ""), 80), _short(spec.get("ylabel", ""), 60)
    ylog = bool(series) and _axis_scale(spec, "yscale", all_y, notes) == "log"
    ylog = ylog and any(v > 0 for v in all_y if math.isfinite(v))
    yax = log_axis(all_y, title=ylabel) if ylog else linear_axis(all_y, title=ylabel, max_ticks=6)
    if series and spec.get("xscale") == "log" and any(v > 0 for v in all_x):
        xax = log_axis(all_x, title=xlabel)
    else:
        integer = bool(all_x) and all(float(v).is_integer() for v in all_x)     # epochs, folds: no "2.5"
        one = (all_x[0] - 1, all_x[0] + 1) if len(set(all_x)) == 1 else None  # one point (a single loss): centred
        xax = linear_axis(all_x, title=xlabel, integer=integer, limits=one)
    legend_n = sum(1 for s in series if s[0]) + sum(1 for h in _seq(spec.get("hlines"))
                                                    if isinstance(h, Mapping) and _short(h.get("label", "")))
    chart = Chart(xax, yax, LINES_HEIGHT, legend="below" if legend_n > 3 else "best")
    for label, x, y, color in series:
        chart.line(x, y, color=color, label=label, marker=3.0 if len(y) <= 30 else 0.0)
    _ref_lines(chart, spec.get("hlines", []))
    return chart


def _note_unequal_lengths(series: list[tuple[str, list[float], list[float], str]], notes: list[str]) -> None:
    """Curves that end at different x (a fit that stopped early) get a note, so a short curve is
    not read as missing data or as a plotting error."""
    ends = [(label or f"series {i + 1}", max((v for v in x if math.isfinite(v)), default=math.nan))
            for i, (label, x, _, _) in enumerate(series)]
    ends = [(label, e) for label, e in ends if math.isfinite(e)]
    if len({e for _, e in ends}) < 2:
        return
    by_end: dict[float, list[str]] = {}
    for label, e in ends:
        by_end.setdefault(e, []).append(label)
    parts = []
    for e in sorted(by_end, reverse=True):
        names = by_end[e]
        who = names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"
        parts.append(f"{who} {'runs' if len(names) == 1 else 'run'} to {fmt_value(e)}")
    notes.append("Curves end where each fit stopped (the model's own stopping rule, e.g. early stopping on "
                 "a validation loss): " + "; ".join(parts[:5]) + ".")


def _hist_counts(vals: list[float], bins: int) -> tuple[list[float], list[int]]:
    """Equal-width bins over ``[min, max]`` (numpy's rule: the last bin is closed; one distinct
    value gets the range value ± 0.5). Returns ``(edges, counts)``, ``len(edges) == bins + 1``."""
    lo, hi = min(vals), max(vals)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    w = (hi - lo) / bins
    if not (math.isfinite(w) and w > 0):
        raise ValueError("values too large to bin")
    counts = [0] * bins
    for v in vals:
        counts[min(int((v - lo) / w), bins - 1)] += 1
    return [lo + i * w for i in range(bins)] + [hi], counts


def _draw_hist(spec: Mapping[str, Any], notes: list[str]) -> Chart:
    vals = [v for v in (_num(v) for v in _seq(spec.get("values"))) if math.isfinite(v)]
    markers = [m for m in _seq(spec.get("markers")) if isinstance(m, Mapping) and math.isfinite(_num(m.get("x")))]
    if not vals and not markers:
        raise ValueError("no values to draw")
    edges: list[float] = []
    counts: list[int] = []
    if vals:
        bins = max(1, min(40, len(set(vals)), int(math.sqrt(len(vals))) * 2))
        edges, counts = _hist_counts(vals, bins)
    else:
        notes.append("no distribution values; markers only")
    xs = edges + [_num(m.get("x")) for m in markers]
    chart = Chart(linear_axis(xs, title=_short(spec.get("xlabel", ""), 80)),
                  linear_axis([0.0] + counts, title="count", sticky_zero=True, max_ticks=6, integer=True),
                  HIST_HEIGHT, legend="below")
    if vals:
        for a, b, c in zip(edges, edges[1:], counts):
            if c:
                chart.rect(a, 0.0, b, float(c), fill="#93c5fd", edge="#60a5fa", edge_width=0.5)
        chart.patch_entry(f"distribution (n={len(vals):,})", "#93c5fd", "#60a5fa")
    for i, m in enumerate(markers):
        label, value = _short(m.get("label", "")), fmt_value(_num(m.get("x")))
        if value not in label:          # "observed 0.63" already says it
            label = f"{label} = {value}" if label else value
        chart.ref(_num(m.get("x")), vertical=True, color=(PALETTE[4], REF_COLOR, PALETTE[1], PALETTE[2])[i % 4],
                  style=("-", "--", ":", "-.")[i % 4], width=1.6, label=label)
    return chart


def _draw_intervals(spec: Mapping[str, Any], notes: list[str]) -> Chart:
    rows = [r for r in _seq(spec.get("rows")) if isinstance(r, Mapping)]
    rows = [r for r in rows if math.isfinite(_num(r.get("estimate")))]
    if not rows:
        raise ValueError("no rows with a finite estimate")
    if len(rows) > MAX_INTERVAL_ROWS:
        notes.append(f"showing the first {MAX_INTERVAL_ROWS} of {len(rows)} rows")
        rows = rows[:MAX_INTERVAL_ROWS]
    n = len(rows)
    ref = _num(spec.get("ref", None)) if spec.get("ref", None) is not None else math.nan
    xs = [_num(r.get(k)) for r in rows for k in ("estimate", "low", "high")] + [ref]
    yax = category_axis([_short(r.get("label", "")) for r in rows], reverse=True)   # first row on top
    chart = Chart(linear_axis(xs, title=_short(spec.get("xlabel", ""), 80)), yax,
                  min(MAX_PLOT_HEIGHT, max(MIN_ROWS_HEIGHT, ROW_PITCH_INTERVALS * n)))
    if math.isfinite(ref):
        chart.ref(ref, vertical=True, color=REF_COLOR, width=1.0, style="--")
    for y, r in zip(yax.ticks, rows):
        est, lo, hi = _num(r.get("estimate")), _num(r.get("low")), _num(r.get("high"))
        if math.isfinite(lo) and math.isfinite(hi):
            chart.segment(lo, y, hi, y, color=PALETTE[0], width=2.0)
            chart.segment(lo, y - 0.15, lo, y + 0.15, color=PALETTE[0], width=1.0)
            chart.segment(hi, y - 0.15, hi, y + 0.15, color=PALETTE[0], width=1.0)
        chart.dot(est, y, size=5.0, color=PALETTE[0], edge="white", edge_width=0.8)
    return chart


def _draw_bars(spec: Mapping[str, Any], notes: list[str]) -> Chart:
    labels = [_short(v) for v in _seq(spec.get("labels"))]
    values = [_num(v) for v in _seq(spec.get("values"))]
    if len(labels) != len(values):
        notes.append("labels and values differ in length; truncated")
        m = min(len(labels), len(values))
        labels, values = labels[:m], values[:m]
    pairs = [(lab, v) for lab, v in zip(labels, values) if math.isfinite(v)]
    if not pairs:
        raise ValueError("no finite values")
    if len(pairs) > MAX_BARS:
        notes.append(f"showing the {MAX_BARS} largest of {len(pairs)} values")
        keep = sorted(range(len(pairs)), key=lambda i: -abs(pairs[i][1]))[:MAX_BARS]
        pairs = [pairs[i] for i in sorted(keep)]
    n = len(pairs)
    horizontal = n > 8 or max(len(p[0]) for p in pairs) > 12
    refs = _ref_values(spec.get("hlines"))
    vals = [v for _, v in pairs]
    title = _short(spec.get("ylabel", ""), 80 if horizontal else 60)
    value_axis = linear_axis([0.0] + vals + refs, title=title, sticky_zero=True, max_ticks=10 if horizontal else 6)
    cats = [p[0] for p in pairs]
    if horizontal:
        cat_axis = category_axis(cats, reverse=True, pad=0.6)
        chart = Chart(value_axis, cat_axis, min(MAX_PLOT_HEIGHT, max(MIN_ROWS_HEIGHT, ROW_PITCH_BARS * n)))
    else:
        cat_axis = category_axis(cats, pad=0.6)
        chart = Chart(cat_axis, value_axis, BARS_HEIGHT)
    for pos, v in zip(cat_axis.ticks, vals):
        color = PALETTE[0] if v >= 0 else PALETTE[1]
        if horizontal:
            chart.rect(0.0, pos - 0.325, v, pos + 0.325, fill=color)
        else:
            chart.rect(pos - 0.325, 0.0, pos + 0.325, v, fill=color)
    _ref_lines(chart, spec.get("hlines", []), vertical=horizontal)
    return chart


_DRAW = {"lines": _draw_lines, "hist": _draw_hist, "intervals": _draw_intervals, "bars": _draw_bars}

# Every text is escaped by reports.svg.esc; this is a second line of defence so a future
# change there can never put live script into a report. Only markup counts: every "<" in
# text is escaped, so a "<" starts a tag.
_UNSAFE = re.compile(r"<\s*(?:script|foreignObject|iframe|object|embed)\b"
                     r"|<[^>]*\son[a-z]+\s*="
                     r"|<[^>]*=\s*[\"']?\s*javascript:", re.I)


def _to_svg(chart: Chart, uid: str, title: str) -> Markup:
    """Serialise a chart to an inline-ready ``<svg>`` element (``uid`` scopes its ids)."""
    s = chart.render(uid, title)
    if _UNSAFE.search(s):
        raise ValueError("SVG output contained script-like content; refused")
    return Markup(s)


def _table(spec: Mapping[str, Any], notes: list[str]) -> tuple[list[str], list[list[str]]]:
    columns = [str(c) for c in _seq(spec.get("columns"))]
    rows_in = _seq(spec.get("rows"))
    if len(rows_in) > MAX_TABLE_ROWS:
        notes.append(f"showing the first {MAX_TABLE_ROWS} of {len(rows_in)} rows")
        rows_in = rows_in[:MAX_TABLE_ROWS]
    rows = []
    for r in rows_in:
        cells = [fmt_value(c) if not isinstance(c, (list, dict)) else _short(c, 200) for c in _seq(r)]
        rows.append(cells)
    width = max([len(columns)] + [len(r) for r in rows])
    if not width:
        raise ValueError("empty table")
    columns = columns + [""] * (width - len(columns))
    rows = [r + [""] * (width - len(r)) for r in rows]
    if not rows:
        notes.append("no rows")
    return columns, rows


def render_plot(spec: Any, uid: str = "p0") -> PlotView:
    """Turn one plot spec into a :class:`PlotView`; never raises.

    Parameters
    ----------
    spec : dict
        A ``PLOT`` dict from results.json (``{"type": "lines" | "hist" | "intervals" | "bars" |
        "table", "title": ..., ...}``). Missing optional keys take defaults; an unknown type,
        a malformed spec or a drawing error gives ``kind="note"`` with the reason.
    uid : str, default "p0"
        Unique per plot on a page (salts SVG element ids).

    Returns
    -------
    PlotView
    """
    if not isinstance(spec, Mapping):
        return PlotView(kind="note", title="", notes=[f"plot spec is a {type(spec).__name__}, not an object; skipped"])
    title = " ".join(str(spec.get("title", "") or "").split())
    ptype = spec.get("type")
    notes: list[str] = []
    if ptype == "table":
        try:
            columns, rows = _table(spec, notes)
        except Exception as e:  # noqa: BLE001 - a bad table must not sink the report
            return PlotView(kind="note", title=title, notes=[f"table could not be shown: {e}"])
        return PlotView(kind="table", title=title, columns=columns, rows=rows, notes=notes)
    draw = _DRAW.get(ptype) if isinstance(ptype, str) else None
    if draw is None:
        return PlotView(kind="note", title=title,
                        notes=[f"plot type {str(ptype)!r} is not known to this version of the report "
                               f"(known: {', '.join(PLOT_TYPES)}); skipped"])
    try:
        svg = _to_svg(draw(spec, notes), uid, title)
    except Exception as e:  # noqa: BLE001 - one bad plot becomes a note, never a crash
        return PlotView(kind="note", title=title, notes=[f"{ptype} plot could not be drawn: {e}"])
    return PlotView(kind="svg", title=title, svg=svg, notes=notes)
