"""Draw the generic plot specs of ``results.json`` as small inline SVG (or HTML tables).

Audits describe their evidence as data (``auditor.audits.base.plot_*``): ``lines``,
``hist``, ``intervals``, ``bars`` and ``table``. This module turns one spec into a
:class:`PlotView` that the HTML template can place directly:

- ``kind == "svg"``: ``svg`` holds a sanitised ``<svg>`` element (no XML prolog, no metadata,
  no fonts, ``width="100%"`` with a ``viewBox`` so it scales with the card);
- ``kind == "table"``: ``columns`` / ``rows`` are formatted strings (autoescaped by jinja);
- ``kind == "note"``: the spec could not be drawn; ``note`` says why (rendering never fails
  because of one bad plot).

Matplotlib is used through its object API (:class:`matplotlib.figure.Figure` and the SVG
canvas) and never through ``pyplot``: nothing here touches the global backend, so rendering
is headless-safe (no display, no GUI toolkit) and cannot disturb the backend of a notebook
that imports this package. Style settings are applied with ``rc_context`` for the same reason.

Size: text stays text (``svg.fonttype = 'none'``; the page CSS picks the font), line series
are thinned to :data:`MAX_POINTS` points, bar charts keep the :data:`MAX_BARS` largest
values, interval plots :data:`MAX_INTERVAL_ROWS` rows and tables :data:`MAX_TABLE_ROWS` rows,
each with a note saying what was left out. A plot is typically 8-25 kB.
"""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
from markupsafe import Markup, escape

__all__ = ["PlotView", "render_plot", "fmt_value", "MAX_POINTS", "MAX_BARS",
           "MAX_INTERVAL_ROWS", "MAX_TABLE_ROWS", "PLOT_TYPES"]

PLOT_TYPES = ("lines", "hist", "intervals", "bars", "table")
MAX_POINTS = 400          # per line series; loss curves of 10k steps look the same thinned
MAX_BARS = 30             # a 300-feature KS ranking shows its 30 largest
MAX_INTERVAL_ROWS = 40
MAX_TABLE_ROWS = 50
MAX_LABEL_CHARS = 48
FIG_WIDTH = 5.2           # inches; at a half-card width (~500 px) 9 pt text reads as ~12 px      # tick labels longer than this are cut (full text stays in the table/notes)

# Calm, colour-blind-friendly palette (blue, orange, teal, purple, red, grey): series order.
PALETTE = ("#2563eb", "#d97706", "#0d9488", "#7c3aed", "#dc2626", "#6b7280", "#db2777", "#65a30d")
REF_COLOR = "#374151"

_RC: dict[str, Any] = {
    "svg.fonttype": "none",          # text as <text>, no embedded glyphs: small and selectable
    "text.parse_math": False,        # a "$" in a feature name must not be parsed as mathtext
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9.0,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9.0,
    "axes.edgecolor": "#9ca3af",
    "axes.labelcolor": "#374151",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.6,
    "xtick.color": "#4b5563",
    "ytick.color": "#4b5563",
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "path.simplify": True,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


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
_PLAIN_LOG = FuncFormatter(lambda v, _pos: f"{v:g}")


def _new_fig(height: float) -> tuple[Figure, Any]:
    fig = Figure(figsize=(FIG_WIDTH, height), layout="constrained")
    ax = fig.add_subplot()
    return fig, ax


def _legend(fig: Figure, ax: Any, *, outside: bool = False) -> None:
    """A legend inside the axes when small, below them when it has more than three entries
    (or ``outside``): a big legend over a histogram hides the very bars it explains."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if outside or len(handles) > 3:
        fig.legend(handles, labels, loc="outside lower center", ncols=2 if len(handles) > 1 else 1)
    else:
        ax.legend(handles, labels, loc="best")


def _ref_lines(ax: Any, hlines: Sequence[Any], *, vertical: bool = False) -> int:
    """Draw reference lines ``[{"label", "y"}]`` (dashed); vertical for horizontal bar charts."""
    drawn = 0
    styles = ("--", ":", "-.")
    for i, h in enumerate(_seq(hlines)):
        if not isinstance(h, Mapping):
            continue
        v = _num(h.get("y", h.get("x")))
        if not math.isfinite(v):
            continue
        kw = dict(color=REF_COLOR, linestyle=styles[i % 3], linewidth=1.1, label=_short(h.get("label", "")) or None)
        (ax.axvline if vertical else ax.axhline)(v, **kw)
        drawn += 1
    return drawn


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


def _draw_lines(spec: Mapping[str, Any], notes: list[str]) -> Figure:
    fig, ax = _new_fig(2.7)
    n_drawn = 0
    all_y: list[float] = []
    all_x: list[float] = []
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
        ax.plot(x, y, color=PALETTE[i % len(PALETTE)], label=_short(s.get("label", "")) or None,
                marker="o" if len(y) <= 30 else None, markersize=3.0)
        n_drawn += 1
        all_x += x
        all_y += y
    n_ref = _ref_lines(ax, spec.get("hlines", []))
    all_y += [_num(h.get("y")) for h in _seq(spec.get("hlines")) if isinstance(h, Mapping)]
    if n_drawn:
        if _axis_scale(spec, "yscale", all_y, notes) == "log":
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(_PLAIN_LOG)      # mathtext is off: no "$10^{-3}$" labels
            ax.yaxis.set_minor_formatter(NullFormatter())
        if all_x and all(math.isfinite(v) and float(v).is_integer() for v in all_x):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs, folds: no "2.5"
        if spec.get("xscale") == "log":
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(_PLAIN_LOG)
            ax.xaxis.set_minor_formatter(NullFormatter())
    if n_drawn == 0 and n_ref == 0:
        raise ValueError("no data to draw")
    ax.set_xlabel(_short(spec.get("xlabel", ""), 80))
    ax.set_ylabel(_short(spec.get("ylabel", ""), 60))
    if len(set(all_x)) == 1:                    # one point (e.g. a single training loss): centre it
        ax.set_xlim(all_x[0] - 1, all_x[0] + 1)
    _legend(fig, ax)
    return fig


def _draw_hist(spec: Mapping[str, Any], notes: list[str]) -> Figure:
    vals = [v for v in (_num(v) for v in _seq(spec.get("values"))) if math.isfinite(v)]
    markers = [m for m in _seq(spec.get("markers")) if isinstance(m, Mapping) and math.isfinite(_num(m.get("x")))]
    if not vals and not markers:
        raise ValueError("no values to draw")
    fig, ax = _new_fig(2.5)
    if vals:
        n_unique = len(set(vals))
        bins = max(1, min(40, n_unique, int(math.sqrt(len(vals))) * 2))
        ax.hist(vals, bins=bins, color="#93c5fd", edgecolor="#60a5fa", linewidth=0.5,
                label=f"distribution (n={len(vals):,})")
    else:
        notes.append("no distribution values; markers only")
    for i, m in enumerate(markers):
        label, value = _short(m.get("label", "")), fmt_value(_num(m.get("x")))
        if value not in label:          # "observed 0.63" already says it
            label = f"{label} = {value}" if label else value
        ax.axvline(_num(m.get("x")), color=(PALETTE[4], REF_COLOR, PALETTE[1], PALETTE[2])[i % 4],
                   linestyle=("-", "--", ":", "-.")[i % 4], linewidth=1.6, label=label)
    ax.set_xlabel(_short(spec.get("xlabel", ""), 80))
    ax.set_ylabel("count")
    _legend(fig, ax, outside=True)
    return fig


def _draw_intervals(spec: Mapping[str, Any], notes: list[str]) -> Figure:
    rows = [r for r in _seq(spec.get("rows")) if isinstance(r, Mapping)]
    rows = [r for r in rows if math.isfinite(_num(r.get("estimate")))]
    if not rows:
        raise ValueError("no rows with a finite estimate")
    if len(rows) > MAX_INTERVAL_ROWS:
        notes.append(f"showing the first {MAX_INTERVAL_ROWS} of {len(rows)} rows")
        rows = rows[:MAX_INTERVAL_ROWS]
    n = len(rows)
    fig, ax = _new_fig(min(9.0, 0.9 + 0.3 * n))
    ys = list(range(n))[::-1]          # first row on top, as in the table it mirrors
    for y, r in zip(ys, rows):
        est, lo, hi = _num(r.get("estimate")), _num(r.get("low")), _num(r.get("high"))
        if math.isfinite(lo) and math.isfinite(hi):
            ax.plot([lo, hi], [y, y], color=PALETTE[0], linewidth=2.0, solid_capstyle="butt")
            ax.plot([lo, lo], [y - 0.15, y + 0.15], color=PALETTE[0], linewidth=1.0)
            ax.plot([hi, hi], [y - 0.15, y + 0.15], color=PALETTE[0], linewidth=1.0)
        ax.plot([est], [y], marker="o", color=PALETTE[0], markersize=5, markeredgecolor="white",
                markeredgewidth=0.8)
    ref = spec.get("ref", None)
    if ref is not None and math.isfinite(_num(ref)):
        ax.axvline(_num(ref), color=REF_COLOR, linestyle="--", linewidth=1.0)
    ax.set_yticks(ys)
    ax.set_yticklabels([_short(r.get("label", "")) for r in rows])
    ax.set_ylim(-0.7, n - 0.3)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(_short(spec.get("xlabel", ""), 80))
    return fig


def _draw_bars(spec: Mapping[str, Any], notes: list[str]) -> Figure:
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
    colors = [PALETTE[0] if v >= 0 else PALETTE[1] for _, v in pairs]
    if horizontal:
        fig, ax = _new_fig(min(9.0, 0.9 + 0.24 * n))
        ys = list(range(n))[::-1]
        ax.barh(ys, [v for _, v in pairs], color=colors, height=0.65)
        ax.set_yticks(ys)
        ax.set_yticklabels([p[0] for p in pairs])
        ax.set_ylim(-0.6, n - 0.4)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(_short(spec.get("ylabel", ""), 80))
        _ref_lines(ax, spec.get("hlines", []), vertical=True)
    else:
        fig, ax = _new_fig(2.5)
        xs = list(range(n))
        ax.bar(xs, [v for _, v in pairs], color=colors, width=0.65)
        ax.set_xticks(xs)
        ax.set_xticklabels([p[0] for p in pairs])
        ax.grid(axis="x", visible=False)
        ax.set_ylabel(_short(spec.get("ylabel", ""), 60))
        _ref_lines(ax, spec.get("hlines", []))
    _legend(fig, ax)
    return fig


_DRAW = {"lines": _draw_lines, "hist": _draw_hist, "intervals": _draw_intervals, "bars": _draw_bars}

_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_GLOBAL_STYLE = re.compile(r"<style[^>]*>.*?</style>\s*", re.S)
_FONT_FAMILY = re.compile(r"font-family: [^;\"]*;? ?")
_ROOT = re.compile(r"<svg\b[^>]*>")
# Only markup counts: in matplotlib's output every "<" in text is escaped, so a "<" starts a tag.
_UNSAFE = re.compile(r"<\s*(?:script|foreignObject|iframe|object|embed)\b"
                     r"|<[^>]*\son[a-z]+\s*="
                     r"|<[^>]*=\s*[\"']?\s*javascript:", re.I)


_ID_ATTR = re.compile(r'\sid="([^"]*)"')
_ID_REF = re.compile(r'(href="#|url\(#)([^")]+)')


def _scope_ids(s: str, uid: str) -> str:
    """Make element ids unique on the page: drop the ids nothing references (matplotlib names
    every group "figure_1", "axes_1", ... in every figure) and prefix the referenced ones
    (clip paths, markers) with ``uid``."""
    used = {m.group(2) for m in _ID_REF.finditer(s)}
    s = _ID_ATTR.sub(lambda m: f' id="{uid}-{m.group(1)}"' if m.group(1) in used else "", s)
    return _ID_REF.sub(lambda m: f"{m.group(1)}{uid}-{m.group(2)}" if m.group(2) in used else m.group(0), s)


def _to_svg(fig: Figure, uid: str, title: str) -> Markup:
    """Serialise a figure to an inline-ready ``<svg>`` element.

    ``uid`` salts matplotlib's element ids so several SVGs on one page never share ids.
    """
    buf = io.StringIO()
    with mpl.rc_context({**_RC, "svg.hashsalt": uid}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    s = buf.getvalue()
    s = _PROLOG.sub("", s, count=1)
    s = _METADATA.sub("", s)
    s = _GLOBAL_STYLE.sub("", s)      # "*{stroke-linejoin}" would leak into the page; CSS has it
    s = _FONT_FAMILY.sub("", s)       # one font rule in the page CSS instead of one per <text>
    s = s.replace("<defs>\n  </defs>", "")
    s = _scope_ids(s, uid)
    vb = re.search(r'viewBox="([^"]*)"', s)
    root = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'version="1.1" viewBox="{vb.group(1) if vb else "0 0 460.8 216"}" width="100%" '
            f'role="img" aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">')
    s = _ROOT.sub(lambda _m: root, s, count=1)
    # Matplotlib escapes every text it writes; this is a second line of defence so a future
    # change there can never put live script into a report.
    if _UNSAFE.search(s):
        raise ValueError("SVG output contained script-like content; refused")
    return Markup(s.strip())


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
        with mpl.rc_context({**_RC, "svg.hashsalt": uid}):
            fig = draw(spec, notes)
            svg = _to_svg(fig, uid, title)
    except Exception as e:  # noqa: BLE001 - one bad plot becomes a note, never a crash
        return PlotView(kind="note", title=title, notes=[f"{ptype} plot could not be drawn: {e}"])
    return PlotView(kind="svg", title=title, svg=svg, notes=notes)
