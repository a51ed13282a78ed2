"""A small, dependency-free SVG chart writer for the report's plots.

The report draws four simple kinds of chart (lines, histograms, intervals, bars). Drawing
them with matplotlib cost ~1.5 s per report (figure creation, layout, SVG serialisation and
the import itself); writing the few dozen elements each needs by hand costs a few
milliseconds. This module is the generic part: one :class:`Chart` (a single axes) that takes
marks in data coordinates, lays out fixed margins from the tick-label widths, and writes an
inline ``<svg>`` element. :mod:`reports.plots` turns results.json plot specs into charts.

Conventions
-----------
- Units are points (1/72 in), as in matplotlib's SVG: a chart is :data:`WIDTH` = 374.4 pt
  wide (5.2 in), and the page scales it to the card with ``width="100%"`` and a ``viewBox``.
- Every piece of text goes through :func:`esc` (XML escaping, quotes included, and XML-invalid
  characters replaced), so a feature name like ``<script>`` stays text.
- Text stays ``<text>`` with no ``font-family`` (the page CSS sets it once); widths are
  estimated from DejaVu Sans advance widths (:func:`text_width`), which is what the page asks
  for first, to size margins and legends.
- Styling follows the previous matplotlib style: grey spines on the left and bottom only, a
  light grid behind the data, tick marks outside, no legend frame.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Sequence

__all__ = ["WIDTH", "Axis", "Chart", "esc", "text_width", "linear_axis", "log_axis", "category_axis",
           "nice_ticks", "tick_labels"]

WIDTH = 374.4                 # pt; 5.2 in, the old figure width: 9 pt text reads as ~12 px in a card
FONT = 9.0                    # axis labels
TICK_FONT = 8.0               # tick labels
LEGEND_FONT = 7.5
TICK_LEN = 3.5
PAD = 3.5                     # between tick mark and tick label
MARGIN = 0.05                 # share of the data range added on each side (matplotlib's default)

SPINE = "#9ca3af"
GRID = "#e5e7eb"
TICK = "#4b5563"
LABEL = "#374151"

# DejaVu Sans advance widths (em) of ASCII 32..126, measured with FreeType; other characters
# count as 0.7 em (most are letters of similar width; CJK is wider, but rare in feature names).
_EM = (0.318, 0.4, 0.47, 0.84, 0.64, 0.96, 0.78, 0.28, 0.39, 0.39, 0.5, 0.85, 0.32, 0.36, 0.32, 0.34,
       0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.34, 0.34, 0.84, 0.85, 0.84, 0.53,
       1.0, 0.68, 0.69, 0.7, 0.77, 0.63, 0.58, 0.78, 0.75, 0.29, 0.29, 0.65, 0.56, 0.86, 0.75, 0.79,
       0.6, 0.79, 0.7, 0.64, 0.62, 0.73, 0.68, 0.99, 0.69, 0.61, 0.68, 0.39, 0.34, 0.39, 0.84, 0.5,
       0.5, 0.62, 0.63, 0.56, 0.64, 0.62, 0.35, 0.64, 0.63, 0.28, 0.28, 0.58, 0.28, 0.97, 0.63, 0.61,
       0.63, 0.64, 0.42, 0.52, 0.39, 0.63, 0.59, 0.82, 0.59, 0.59, 0.52, 0.63, 0.34, 0.64, 0.84)
_EM_OTHER = 0.7
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MINUS = "\u2212"              # typographic minus in tick labels, as matplotlib writes them


# --------------------------------------------------------------------------- text
def esc(s: object) -> str:
    """Escape any value for SVG text or a quoted attribute.

    Examples
    --------
    >>> esc('<b x="1">&\\x00')
    '&lt;b x=&quot;1&quot;&gt;&amp;\\ufffd'
    """
    return html.escape(_XML_BAD.sub("\ufffd", str(s)), quote=True)


def text_width(s: str, size: float) -> float:
    """Estimated rendered width of ``s`` in points at font ``size`` (DejaVu Sans)."""
    w = 0.0
    for ch in s:
        o = ord(ch) - 32
        w += _EM[o] if 0 <= o < len(_EM) else _EM_OTHER
    return w * size


def _n(v: float) -> str:
    """A coordinate: 2 decimals, trailing zeros dropped (``12.5``, ``3``)."""
    s = f"{v:.2f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


# --------------------------------------------------------------------------- ticks
def nice_ticks(lo: float, hi: float, max_ticks: int = 6, *, integer: bool = False) -> list[float]:
    """Round tick values inside ``[lo, hi]``: a step of 1, 2, 2.5 or 5 times a power of ten,
    the smallest one giving at most ``max_ticks`` ticks (integer steps only if ``integer``).

    Examples
    --------
    >>> nice_ticks(0.0, 1.0)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(0.7, 12.3, integer=True)
    [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    """
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        raise ValueError("axis range is not finite")
    mag = 10.0 ** math.floor(math.log10(span / max(max_ticks, 1)))
    step = mag
    for m in (1.0, 2.0, 2.5, 5.0, 10.0, 20.0):
        step = m * mag
        if integer and (step < 1 or step != math.floor(step)):
            continue
        if math.floor(hi / step + 1e-9) - math.ceil(lo / step - 1e-9) + 1 <= max_ticks:
            break
    k0, k1 = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    # k * step, rounded to a few decimals below the step, so that 0.1 * 3 is 0.3 and not
    # 0.30000000000000004 (and 499995 * 2e-6 is 0.99999, not 0.9999899999999999)
    digits = max(0, 3 - math.floor(math.log10(step)))
    return [round(k * step, digits) if digits < 300 else k * step for k in range(k0, k1 + 1)]


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Labels for evenly spaced linear ticks, all with the same number of decimals (the fewest
    that tell them apart); ``3g`` notation for very large or very small values.

    The decimals follow the *step*, not the values, so ticks close together near a large value
    stay distinct (0.9996 ... 1.0000, not "1 1 1 1").

    Examples
    --------
    >>> tick_labels([-0.5, 0.0, 0.5])
    ['\u22120.5', '0.0', '0.5']
    >>> tick_labels([0, 2.5, 5])
    ['0.0', '2.5', '5.0']
    >>> tick_labels([0.9996, 0.9998, 1.0])
    ['0.9996', '0.9998', '1.0000']
    """
    if not ticks:
        return []
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(ticks[0]) or 1.0
    top = max(abs(t) for t in ticks)
    if top >= 1e5 or 0 < top < 1e-3:
        # scientific notation with as many significant digits as neighbouring ticks need
        sig = max(1, math.floor(math.log10(top)) - math.floor(math.log10(step)) + 1) if step > 0 else 3
        out = [f"{t:.{sig}g}" for t in ticks]
        while len(set(out)) < len(out) and sig < 15:
            sig += 1
            out = [f"{t:.{sig}g}" for t in ticks]
    else:
        d = 0
        while d < 12 and abs(round(step, d) - step) > step * 1e-6:
            d += 1
        out = [f"{t:.{d}f}" for t in ticks]
    return [s.replace("-", MINUS) if s.lstrip("-").strip("0.") else s.lstrip("-") for s in out]


# --------------------------------------------------------------------------- axes
@dataclass
class Axis:
    """One axis: view limits, tick positions and labels (data units), scale and title.

    Attributes
    ----------
    lo, hi : float
        View limits; for a log axis both are positive.
    ticks : list of float
    labels : list of str
        One label per tick (plain text; escaped when written).
    log : bool
        Logarithmic scale.
    grid : bool
        Draw grid lines at the ticks.
    title : str
        The axis label.
    refit : {"", "linear", "integer"}
        How a chart may re-tick this axis with fewer ticks when its labels would overlap
        (``""``: never, e.g. categories).
    """

    lo: float
    hi: float
    ticks: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    log: bool = False
    grid: bool = True
    title: str = ""
    refit: str = ""

    def retick(self, max_ticks: int) -> None:
        """Round linear ticks, at most ``max_ticks`` (integer ones if ``refit == "integer"``
        and at least two fit)."""
        ticks = nice_ticks(self.lo, self.hi, max_ticks, integer=self.refit == "integer")
        if len(ticks) < 2:
            ticks = nice_ticks(self.lo, self.hi, max_ticks)
        self.ticks, self.labels = ticks, tick_labels(ticks)

    def frac(self, v: float) -> float:
        """Position of ``v`` as a fraction of the axis (0 at ``lo``, 1 at ``hi``)."""
        if self.log:
            return (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        return (v - self.lo) / (self.hi - self.lo)


def _limits(values: Sequence[float], *, sticky_zero: bool = False, margin: float = MARGIN) -> tuple[float, float]:
    """Data limits plus ``margin`` of the range on each side; a side that ends at 0 stays at 0
    when ``sticky_zero`` (bars and histograms stand on the axis)."""
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return 0.0, 1.0
    lo, hi = min(v), max(v)
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi)):          # one value: widen around it
        if sticky_zero and lo == 0:
            return 0.0, 1.0                                 # nothing counted: an empty 0..1 axis
        d = 0.05 * abs(lo) if lo else 0.05
        lo, hi = lo - d, hi + d
    pad = margin * (hi - lo)
    lo2 = lo if sticky_zero and lo == 0 else lo - pad
    hi2 = hi if sticky_zero and hi == 0 else hi + pad
    return lo2, hi2


def linear_axis(values: Sequence[float], *, title: str = "", integer: bool = False, sticky_zero: bool = False,
                max_ticks: int = 10, grid: bool = True, limits: tuple[float, float] | None = None) -> Axis:
    """A linear axis fitted to ``values`` (non-finite ones ignored) with round ticks.

    Parameters
    ----------
    values : sequence of float
        Everything that must be visible (data, reference lines, 0 for bars).
    integer : bool
        Integer ticks only (epochs, folds).
    sticky_zero : bool
        No margin beyond 0 (bars, histogram counts).
    limits : (float, float), optional
        Fixed view limits instead of fitting.
    """
    lo, hi = limits if limits is not None else _limits(values, sticky_zero=sticky_zero)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError("values too large to draw")
    ax = Axis(lo, hi, grid=grid, title=title, refit="integer" if integer else "linear")
    ax.retick(max_ticks)
    return ax


def log_axis(values: Sequence[float], *, title: str = "", grid: bool = True) -> Axis:
    """A log axis fitted to the positive finite ``values``: ticks at powers of ten (every
    k-th when there are many decades; 1-2-5 when fewer than two fit), labelled plainly."""
    v = [math.log10(x) for x in values if math.isfinite(x) and x > 0]
    if not v:
        raise ValueError("no positive values for a log axis")
    a, b = _limits(v)
    lo, hi = 10.0 ** a, 10.0 ** b
    decades = [10.0 ** k for k in range(math.floor(a), math.ceil(b) + 1) if a - 1e-9 <= k <= b + 1e-9]
    if len(decades) < 2:
        ticks = [m * 10.0 ** k for k in range(math.floor(a), math.ceil(b) + 1) for m in (1, 2, 5)
                 if lo <= m * 10.0 ** k <= hi]
    else:
        stride = math.ceil(len(decades) / 7)
        ticks = decades[::stride]
    return Axis(lo, hi, ticks, [f"{t:g}".replace("-", MINUS) for t in ticks], log=True, grid=grid, title=title)


def category_axis(labels: Sequence[str], *, title: str = "", reverse: bool = False, pad: float = 0.5) -> Axis:
    """A categorical axis: category ``i`` at position ``i`` (or ``n-1-i`` when ``reverse``, so the
    first row is on top of a vertical axis), limits ``pad`` beyond the outer categories."""
    n = len(labels)
    pos = [float(n - 1 - i) if reverse else float(i) for i in range(n)]
    return Axis(-pad, n - 1 + pad, pos, list(labels), grid=False, title=title)


# --------------------------------------------------------------------------- marks
DASHES = {"-": None, "--": (3.7, 1.6), ":": (1.0, 1.65), "-.": (6.4, 1.6, 1.0, 1.6)}   # x linewidth


def _stroke(color: str, width: float, style: str = "-") -> str:
    d = DASHES.get(style)
    s = f' stroke="{esc(color)}" stroke-width="{_n(width)}"'
    if d:
        s += f' stroke-dasharray="{",".join(_n(x * width) for x in d)}"'
    return s


@dataclass
class _Entry:
    """A legend entry: a line sample (with an optional marker) or a filled patch."""

    label: str
    color: str
    kind: str = "line"           # "line" | "patch"
    width: float = 1.6
    style: str = "-"
    marker: bool = False
    edge: str = ""


class Chart:
    """One axes in an SVG of fixed width; marks are given in data coordinates.

    Parameters
    ----------
    x, y : Axis
    plot_height : float
        Height of the plotting area in points (the margins are added around it).
    legend : {"best", "below"}
        Where the legend goes: inside the axes at the corner covering the fewest data points,
        or centred under the x axis in two columns.

    Notes
    -----
    Layout (all in points)::

        +-------------------------------------------------+
        | top                                             |
        | ylabel | ytick labels | plot area (data) | right |
        |        |              | xtick labels     |       |
        |        |              | xlabel           |       |
        |        |              | legend (below)   |       |
        +-------------------------------------------------+
    """

    def __init__(self, x: Axis, y: Axis, plot_height: float, *, legend: str = "best") -> None:
        self.x, self.y, self.plot_height, self.legend_loc = x, y, plot_height, legend
        # ("poly", xs, ys, stroke, marker, colour) | ("rect", x0, y0, x1, y1, fill, edge, width)
        # | ("dot", x, y, size, colour, edge, width) | ("hline" | "vline", value, stroke)
        self._marks: list[tuple] = []
        self.entries: list[_Entry] = []
        self.rotate_x = False

    # ---- adding marks (data coordinates)
    def line(self, xs: Sequence[float], ys: Sequence[float], *, color: str, width: float = 1.6, style: str = "-",
             marker: float = 0.0, label: str = "") -> None:
        """A polyline broken at non-finite points (and at non-positive ones on a log axis),
        with round markers of diameter ``marker`` at every point when > 0."""
        self._marks.append(("poly", list(xs), list(ys), _stroke(color, width, style), marker, color))
        if label:
            self.entries.append(_Entry(label, color, width=width, style=style, marker=marker > 0))

    def segment(self, x0: float, y0: float, x1: float, y1: float, *, color: str, width: float) -> None:
        """A straight stroke with butt caps (interval whiskers and caps)."""
        self._marks.append(("poly", [x0, x1], [y0, y1], _stroke(color, width), 0.0, color))

    def rect(self, x0: float, y0: float, x1: float, y1: float, *, fill: str, edge: str = "",
             edge_width: float = 0.0) -> None:
        """A filled rectangle between two data corners (bars, histogram bins)."""
        self._marks.append(("rect", x0, y0, x1, y1, fill, edge, edge_width))

    def dot(self, x: float, y: float, *, size: float, color: str, edge: str = "", edge_width: float = 0.0) -> None:
        """A round marker of diameter ``size`` points."""
        self._marks.append(("dot", x, y, size, color, edge, edge_width))

    def ref(self, value: float, *, vertical: bool, color: str, width: float, style: str, label: str = "") -> None:
        """A reference line across the whole axes (``vertical``: at x = value, else y = value)."""
        self._marks.append(("vline" if vertical else "hline", value, _stroke(color, width, style)))
        if label:
            self.entries.append(_Entry(label, color, width=width, style=style))

    def patch_entry(self, label: str, fill: str, edge: str = "") -> None:
        """A legend entry for filled marks (histogram bins)."""
        self.entries.append(_Entry(label, fill, kind="patch", edge=edge))

    # ---- layout
    def _legend_size(self, ncols: int) -> tuple[float, float, list[float]]:
        """(width, height, column widths) of the legend laid out column-major in ``ncols``."""
        f = LEGEND_FONT
        nrows = math.ceil(len(self.entries) / ncols)
        cols = [self.entries[c * nrows:(c + 1) * nrows] for c in range(ncols)]
        widths = [2.8 * f + max(text_width(e.label, f) for e in col) for col in cols if col]
        return sum(widths) + 2.0 * f * (len(widths) - 1), nrows * 1.5 * f, widths

    def render(self, uid: str, title: str) -> str:
        """The ``<svg>`` element (``uid`` prefixes the clip-path id; ``title`` is the aria-label)."""
        x, y = self.x, self.y
        ytw = max((text_width(s, TICK_FONT) for s in y.labels), default=0.0)
        left = 4.0 + (FONT * 1.2 + 4.0 if y.title else 0.0) + ytw + PAD + TICK_LEN
        pw = WIDTH - left - 10.0

        def overlap() -> bool:
            if len(x.ticks) < 2:
                return False
            gap = min(abs(x.frac(b) - x.frac(a)) for a, b in zip(x.ticks, x.ticks[1:])) * pw
            return max(text_width(s, TICK_FONT) for s in x.labels) + 1.5 * TICK_FONT > gap

        # numeric x ticks that would overlap: fewer ticks; other labels are drawn at 30 degrees
        while x.refit and len(x.ticks) > 2 and overlap():
            x.retick(len(x.ticks) - 1)
        self.rotate_x = overlap()
        xtw = [text_width(s, TICK_FONT) for s in x.labels]
        right = max(10.0, (xtw[-1] / 2 + 4.0) if xtw and not self.rotate_x and x.frac(x.ticks[-1]) > 0.97 else 0.0)
        pw = WIDTH - left - right
        xlab_h = TICK_FONT * 1.15 if not self.rotate_x else max(xtw) * 0.5 + TICK_FONT
        top = 6.0
        below = [TICK_LEN + PAD + xlab_h]
        if x.title:
            below.append(FONT * 1.5)
        leg_w = leg_h = 0.0
        cols: list[float] = []
        below_legend = bool(self.entries) and (self.legend_loc == "below")
        ncols = 2 if below_legend and len(self.entries) > 1 else 1
        if self.entries:
            leg_w, leg_h, cols = self._legend_size(ncols)
            if below_legend and leg_w > WIDTH - 8 and ncols == 2:
                ncols = 1
                leg_w, leg_h, cols = self._legend_size(1)
        if below_legend:
            below.append(leg_h + 4.0)
        ph = self.plot_height
        height = top + ph + sum(below) + 4.0

        def px(v: float) -> float:
            return left + x.frac(v) * pw

        def py(v: float) -> float:
            return top + (1.0 - y.frac(v)) * ph

        def ok(v: float, ax: Axis) -> bool:
            return math.isfinite(v) and (v > 0 if ax.log else True)

        out: list[str] = [f'<rect width="{_n(WIDTH)}" height="{_n(height)}" fill="#ffffff"/>',
                          f'<clipPath id="{uid}-c"><rect x="{_n(left)}" y="{_n(top)}" width="{_n(pw)}" '
                          f'height="{_n(ph)}"/></clipPath>']
        # grid (behind the data)
        grid = []
        if x.grid:
            grid += [f"M{_n(px(t))} {_n(top)}V{_n(top + ph)}" for t in x.ticks]
        if y.grid:
            grid += [f"M{_n(left)} {_n(py(t))}H{_n(left + pw)}" for t in y.ticks]
        if grid:
            out.append(f'<path d="{"".join(grid)}" fill="none" stroke="{GRID}" stroke-width="0.6"/>')
        # data, clipped to the plot area; boxes (x0, y0, x1, y1) kept for legend placement
        pts: list[tuple[float, float, float, float]] = []
        data: list[str] = []
        for m in self._marks:
            kind = m[0]
            if kind == "poly":
                _, xs, ys, stroke, marker, color = m
                runs: list[list[tuple[float, float]]] = [[]]
                for a, b in zip(xs, ys):
                    if ok(a, x) and ok(b, y):
                        runs[-1].append((px(a), py(b)))
                    elif runs[-1]:
                        runs.append([])
                for run in runs:
                    if len(run) > 1:
                        pts_s = " ".join(f"{_n(p)},{_n(q)}" for p, q in run)
                        data.append(f'<polyline points="{pts_s}" fill="none"{stroke}/>')
                    if marker:
                        data += [f'<circle cx="{_n(p)}" cy="{_n(q)}" r="{_n(marker / 2)}" fill="{esc(color)}"/>'
                                 for p, q in run]
                    pts += [(p, q, p, q) for p, q in run]
            elif kind == "rect":
                _, x0, y0, x1, y1, fill, edge, ew = m
                if not all(map(math.isfinite, (x0, y0, x1, y1))):
                    continue
                if x.log or y.log:
                    continue            # bars are only drawn on linear axes
                a, b = sorted((px(x0), px(x1)))
                c, d = sorted((py(y0), py(y1)))
                e = f' stroke="{esc(edge)}" stroke-width="{_n(ew)}"' if edge and ew else ""
                data.append(f'<rect x="{_n(a)}" y="{_n(c)}" width="{_n(b - a)}" height="{_n(d - c)}" '
                            f'fill="{esc(fill)}"{e}/>')
                pts.append((a, c, b, d))
            elif kind == "dot":
                _, a, b, size, color, edge, ew = m
                if ok(a, x) and ok(b, y):
                    e = f' stroke="{esc(edge)}" stroke-width="{_n(ew)}"' if edge and ew else ""
                    data.append(f'<circle cx="{_n(px(a))}" cy="{_n(py(b))}" r="{_n(size / 2)}" '
                                f'fill="{esc(color)}"{e}/>')
                    pts.append((px(a), py(b), px(a), py(b)))
            else:
                _, v, stroke = m
                if kind == "hline" and ok(v, y):
                    q = py(v)
                    data.append(f'<path d="M{_n(left)} {_n(q)}H{_n(left + pw)}" fill="none"{stroke}/>')
                    pts += [(left + pw * i / 8, q, left + pw * i / 8, q) for i in range(9)]
                elif kind == "vline" and ok(v, x):
                    p = px(v)
                    data.append(f'<path d="M{_n(p)} {_n(top)}V{_n(top + ph)}" fill="none"{stroke}/>')
                    pts += [(p, top + ph * i / 8, p, top + ph * i / 8) for i in range(9)]
        out.append(f'<g clip-path="url(#{uid}-c)">{"".join(data)}</g>')
        # spines, ticks, tick labels
        out.append(f'<path d="M{_n(left)} {_n(top)}V{_n(top + ph)}H{_n(left + pw)}" fill="none" '
                   f'stroke="{SPINE}" stroke-width="0.8"/>')
        ticks = [f"M{_n(px(t))} {_n(top + ph)}v{_n(TICK_LEN)}" for t in x.ticks]
        ticks += [f"M{_n(left)} {_n(py(t))}h{_n(-TICK_LEN)}" for t in y.ticks]
        if ticks:
            out.append(f'<path d="{"".join(ticks)}" stroke="{TICK}" stroke-width="0.8"/>')
        txt: list[str] = []
        ty = top + ph + TICK_LEN + PAD
        for t, s in zip(x.ticks, x.labels):
            if self.rotate_x:
                txt.append(f'<text transform="translate({_n(px(t))},{_n(ty + TICK_FONT * 0.3)}) rotate(-30)" '
                           f'text-anchor="end" dominant-baseline="hanging">{esc(s)}</text>')
            else:
                txt.append(f'<text x="{_n(px(t))}" y="{_n(ty + TICK_FONT * 0.8)}" text-anchor="middle">{esc(s)}</text>')
        for t, s in zip(y.ticks, y.labels):
            txt.append(f'<text x="{_n(left - TICK_LEN - PAD)}" y="{_n(py(t) + TICK_FONT * 0.35)}" '
                       f'text-anchor="end">{esc(s)}</text>')
        out.append(f'<g font-size="{_n(TICK_FONT)}" fill="{TICK}">{"".join(txt)}</g>')
        # axis titles
        cur = top + ph + below[0]
        if x.title:
            out.append(f'<text x="{_n(left + pw / 2)}" y="{_n(cur + FONT * 1.1)}" text-anchor="middle" '
                       f'font-size="{_n(FONT)}" fill="{LABEL}">{esc(x.title)}</text>')
            cur += below[1]
        if y.title:
            cx, cy = 4.0 + FONT * 0.85, top + ph / 2
            out.append(f'<text transform="translate({_n(cx)},{_n(cy)}) rotate(-90)" text-anchor="middle" '
                       f'font-size="{_n(FONT)}" fill="{LABEL}">{esc(y.title)}</text>')
        # legend
        if self.entries:
            if below_legend:
                x0, y0 = left + (pw - leg_w) / 2, cur + 4.0
                if x0 + leg_w > WIDTH - 2:
                    x0 = max(2.0, WIDTH - 2 - leg_w)
            else:
                x0, y0 = self._best(pts, left, top, pw, ph, leg_w, leg_h)
                out.append(f'<rect x="{_n(x0 - 2)}" y="{_n(y0 - 1)}" width="{_n(leg_w + 4)}" '
                           f'height="{_n(leg_h + 2)}" fill="#ffffff" fill-opacity="0.8"/>')
            out.append(self._legend(x0, y0, ncols, cols))
        root = (f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 {_n(WIDTH)} {_n(height)}" '
                f'width="100%" role="img" aria-label="{esc(title)}" preserveAspectRatio="xMidYMid meet">')
        return root + "\n".join(out) + "</svg>"      # one line per layer: readable diffs

    def _best(self, boxes: list[tuple[float, float, float, float]], left: float, top: float, pw: float,
              ph: float, w: float, h: float) -> tuple[float, float]:
        """Top-left corner of the legend: the candidate spot (corners first, then edge middles)
        overlapping the fewest data boxes (line vertices, bars, points along reference lines),
        like matplotlib's ``loc="best"``."""
        m = 4.0
        xs = (left + pw - w - m, left + m, left + (pw - w) / 2)
        ys = (top + m, top + ph - h - m, top + (ph - h) / 2)
        cands = [(xs[0], ys[0]), (xs[1], ys[0]), (xs[1], ys[1]), (xs[0], ys[1]), (xs[0], ys[2]),
                 (xs[1], ys[2]), (xs[2], ys[1]), (xs[2], ys[0])]
        best, score = cands[0], math.inf
        for cx, cy in cands:
            s = sum(1 for a, b, c, d in boxes if a <= cx + w + 2 and c >= cx - 2 and b <= cy + h + 2 and d >= cy - 2)
            if s < score:
                best, score = (cx, cy), s
        return best

    def _legend(self, x0: float, y0: float, ncols: int, cols: list[float]) -> str:
        f = LEGEND_FONT
        nrows = math.ceil(len(self.entries) / ncols)
        parts: list[str] = []
        cx = x0
        for c in range(ncols):
            for r, e in enumerate(self.entries[c * nrows:(c + 1) * nrows]):
                yc = y0 + (r + 0.5) * 1.5 * f
                if e.kind == "patch":
                    edge = f' stroke="{esc(e.edge)}" stroke-width="0.5"' if e.edge else ""
                    parts.append(f'<rect x="{_n(cx)}" y="{_n(yc - 0.35 * f)}" width="{_n(2 * f)}" '
                                 f'height="{_n(0.7 * f)}" fill="{esc(e.color)}"{edge}/>')
                else:
                    parts.append(f'<path d="M{_n(cx)} {_n(yc)}h{_n(2 * f)}" fill="none"'
                                 f'{_stroke(e.color, e.width, e.style)}/>')
                    if e.marker:
                        parts.append(f'<circle cx="{_n(cx + f)}" cy="{_n(yc)}" r="1.5" fill="{esc(e.color)}"/>')
                parts.append(f'<text x="{_n(cx + 2.8 * f)}" y="{_n(yc + 0.35 * f)}">{esc(e.label)}</text>')
            if c < len(cols):
                cx += cols[c] + 2.0 * f
        return f'<g font-size="{_n(f)}" fill="{LABEL}">{"".join(parts)}</g>'
