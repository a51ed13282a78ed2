"""Two runs side by side (e.g. V1 vs V2, or before and after a leak fix).

:func:`compare_results` is the single source: a JSON-able dict of both verdicts, each audit's
status in A and B, and every numeric measurement the two runs share with its delta (B - A).
:func:`render_compare_html` and :func:`print_compare` only format it.

A comparison is only apples to apples when both runs used the same test data and metric;
``warnings`` says so when the data hashes, the metric or the seed differ.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from auditor.safetext import printable
from reports.plots import fmt_value
from reports.render import (NOT_RECORDED, STATUS_ICON, _css, _env, _mapping, _status, _text, fmt_p,
                            numeric_measurements, validate_results)

__all__ = ["compare_results", "render_compare_html", "print_compare", "HEADLINE"]

#: The numbers a reader of two runs asks about first, ``(audit, measurement key, label)``; each
#: is shown when both runs measured it. Everything else is in compare.html.
HEADLINE = (
    ("significance", "candidate_mean", "candidate {metric}"),
    ("significance", "baseline_mean", "baseline {metric}"),
    ("significance", "mean_delta", "gain over the baseline (mean per-query Δ)"),
    ("significance", "mde", "smallest gain the test set can detect"),
    ("random_label", "variant_a.excess", "random labels, within-query shuffle: excess over chance"),
    ("random_label", "variant_b.excess", "random labels, shared keys: excess over chance"),
    ("feature_ablation", "proxy.best_solo_share", "best single feature: share of the model's gain"),
    ("isolation", "contamination.rate", "share of test rows overlapping training"),
    ("synthetic_shift", "auc", "domain-classifier AUC (0.5 = indistinguishable)"),
    ("stability", "sd", "fold-to-fold sd of the metric"),
)


def _run_info(r: Mapping[str, Any], label: str) -> dict[str, Any]:
    model = _mapping(r.get("model"))
    data = _mapping(r.get("data"))
    return {
        "label": label,
        "model": _text(model.get("spec")) or NOT_RECORDED,
        "model_params": model.get("params") or {},
        "verdict": _status(r.get("verdict")),
        "verdict_reason": _text(r.get("verdict_reason")),
        # what the verdict covers when not every audit ran ("isolation only — 1 of 6 audits")
        "verdict_scope": ("" if _mapping(r.get("scope")).get("complete", True)
                          else _text(_mapping(r.get("scope")).get("label"))),
        "started_at": _text(r.get("started_at")) or NOT_RECORDED,
        "command": _text(r.get("command")),
        "seed": r.get("seed"),
        "metric": _text(_mapping(r.get("config")).get("metric")),
        "test_sha256": _text(data.get("test_sha256") or _mapping(data.get("test")).get("sha256")),
        "train_sha256": _text(data.get("train_sha256") or _mapping(data.get("train")).get("sha256")),
    }


def _num_or_none(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(float(x)) else None


def compare_results(a: Mapping[str, Any], b: Mapping[str, Any], *,
                    labels: tuple[str, str] = ("A", "B")) -> dict[str, Any]:
    """Compare two results dicts.

    Parameters
    ----------
    a, b : dict
        Results dicts (schema_version 1); ``b`` is the newer / candidate run.
    labels : (str, str), default ("A", "B")
        Display names (e.g. the two run directories).

    Returns
    -------
    dict
        ``{"a": RUN, "b": RUN, "verdict_changed": bool, "audits": [AUDIT, ...],
        "only_in_a": [names], "only_in_b": [names], "warnings": [str]}`` where ``RUN`` has
        ``label, model, verdict, verdict_reason, started_at, command, seed, metric,
        test_sha256, train_sha256`` and ``AUDIT`` has ``name, title, status_a, status_b``
        (``None`` when absent from that run), ``changed``, ``critical``, ``summary_a``,
        ``summary_b``, ``p_adjusted_a``, ``p_adjusted_b`` and ``measurements``: a list of
        ``{"key", "a", "b", "delta", "rel_delta"}`` for every numeric measurement present
        in both (dotted keys, intervals by their estimate; ``delta = b - a``, ``rel_delta``
        ``None`` when ``a == 0``). Audits keep A's order, then B's new ones.

    Raises
    ------
    auditor.errors.DataError
        When either input is not a results dict.
    """
    validate_results(a)
    validate_results(b)
    ra, rb = _run_info(a, labels[0]), _run_info(b, labels[1])
    aud_a = {_text(x.get("name")): x for x in a.get("audits") or []}
    aud_b = {_text(x.get("name")): x for x in b.get("audits") or []}
    names = list(aud_a) + [n for n in aud_b if n not in aud_a]
    audits = []
    for n in names:
        xa, xb = aud_a.get(n), aud_b.get(n)
        sa = _status(xa.get("status")) if xa is not None else None
        sb = _status(xb.get("status")) if xb is not None else None
        ma = numeric_measurements(xa.get("measurements")) if xa is not None else {}
        mb = numeric_measurements(xb.get("measurements")) if xb is not None else {}
        rows = []
        for key in [k for k in ma if k in mb]:
            va, vb = ma[key], mb[key]
            delta = vb - va
            if isinstance(delta, float) and abs(delta) <= 1e-9 * max(abs(va), abs(vb)):
                delta = 0.0       # float round-off of the same number, not a change
            rows.append({"key": key, "a": va, "b": vb, "delta": delta,
                         "rel_delta": delta / abs(va) if va != 0 else None})
        src = xb if xb is not None else xa
        cond_changes = _condition_changes(xa, xb)
        audits.append({
            "name": n, "title": _text(src.get("title")) or n.replace("_", " ").capitalize(),
            "critical": bool(src.get("critical", True)),
            "status_a": sa, "status_b": sb, "changed": sa != sb,
            "summary_a": _text(xa.get("summary")) if xa is not None else "",
            "summary_b": _text(xb.get("summary")) if xb is not None else "",
            "p_adjusted_a": _num_or_none(xa.get("p_adjusted")) if xa is not None else None,
            "p_adjusted_b": _num_or_none(xb.get("p_adjusted")) if xb is not None else None,
            "measurements": rows,
            "condition_changes": cond_changes,
        })
    warnings = []
    if ra["test_sha256"] and rb["test_sha256"] and ra["test_sha256"] != rb["test_sha256"]:
        warnings.append("The two runs used different test data (test SHA-256 differ): measurement deltas "
                        "compare different query sets.")
    if ra["metric"] and rb["metric"] and ra["metric"] != rb["metric"]:
        warnings.append(f"The runs report different metrics ({ra['metric']} vs {rb['metric']}): "
                        "metric deltas are not comparable.")
    if ra["seed"] is not None and rb["seed"] is not None and ra["seed"] != rb["seed"]:
        warnings.append(f"The runs used different seeds ({ra['seed']} vs {rb['seed']}): part of each delta is "
                        "seed noise (see the stability audit).")
    headline = []
    for audit, key, label in HEADLINE:
        x = next((y for y in audits if y["name"] == audit), None)
        row = next((m for m in (x["measurements"] if x else []) if m["key"] == key), None)
        if row is not None:
            headline.append({"audit": audit, "key": key, "label": label.format(metric=ra["metric"] or "metric"),
                             "a": row["a"], "b": row["b"], "delta": row["delta"]})
    return {
        "a": ra, "b": rb,
        "verdict_changed": ra["verdict"] != rb["verdict"],
        "headline": headline,
        "audits": audits,
        "only_in_a": [n for n in aud_a if n not in aud_b],
        "only_in_b": [n for n in aud_b if n not in aud_a],
        "warnings": warnings,
    }


def _condition_changes(xa: Mapping[str, Any] | None, xb: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Conditions whose status differs between the runs: ``[{"name", "a", "b"}]`` (None: absent).

    Conditions are paired by name; names that carry run-specific text (a data set's name, the
    observed gain) are then paired by their order among the unpaired ones, as each audit writes
    its conditions in a fixed order. The name shown is B's."""
    def conds(x: Mapping[str, Any] | None) -> list[tuple[str, str]]:
        return [(_text(c.get("name")), _status(c.get("status"))) for c in (x or {}).get("conditions") or []
                if isinstance(c, Mapping)]

    ca, cb = conds(xa), conds(xb)
    names_b = {n for n, _ in cb}
    names_a = {n for n, _ in ca}
    pairs = [(n, sa, next(sb for m, sb in cb if m == n)) for n, sa in ca if n in names_b]
    left_a = [(n, s) for n, s in ca if n not in names_b]
    left_b = [(n, s) for n, s in cb if n not in names_a]
    for (_, sa), (nb, sb) in zip(left_a, left_b):
        pairs.append((nb, sa, sb))
    pairs += [(n, s, None) for n, s in left_a[len(left_b):]]
    pairs += [(n, None, s) for n, s in left_b[len(left_a):]]
    return [{"name": n, "a": sa, "b": sb} for n, sa, sb in pairs if sa != sb]


def _fmt_delta(x: float | None) -> str:
    if x is None:
        return "\u2014"
    if x == 0:
        return "0"
    s = fmt_value(x)
    return s if s.startswith("-") else "+" + s


def _fmt_rel(x: float | None) -> str:
    if x is None:
        return "\u2014"
    if x == 0:
        return "0%"
    if abs(x) >= 10:                 # "+167641.9%" reads worse than a ratio
        return f"\u00d7{1 + x:.3g}"
    return f"{x * 100:+.1f}%"


def _view(c: dict[str, Any]) -> dict[str, Any]:
    """Formatted strings for the template (all keys present, for StrictUndefined)."""
    def status_view(s: str | None) -> dict[str, str]:
        if s is None:
            return {"status": "absent", "cls": "skip", "icon": ""}
        return {"status": s, "cls": _css(s), "icon": STATUS_ICON.get(s, "?")}

    audits = []
    for x in c["audits"]:
        audits.append({
            "name": x["name"], "title": x["title"], "critical": x["critical"], "changed": x["changed"],
            "anchor": "cmp-" + _css(x["name"]),
            "a": status_view(x["status_a"]), "b": status_view(x["status_b"]),
            "summary_a": x["summary_a"], "summary_b": x["summary_b"],
            "p_a": fmt_p(x["p_adjusted_a"]), "p_b": fmt_p(x["p_adjusted_b"]),
            "rows": [{"key": m["key"], "a": fmt_value(m["a"]), "b": fmt_value(m["b"]),
                      "delta": _fmt_delta(m["delta"]), "rel": _fmt_rel(m["rel_delta"]),
                      "dir": "up" if m["delta"] > 0 else "down" if m["delta"] < 0 else "same"}
                     for m in x["measurements"]],
        })
    runs = []
    for r in (c["a"], c["b"]):
        runs.append({**{k: _text(v) for k, v in r.items() if k not in ("seed", "model_params")},
                     "seed": _text(r["seed"]) if r["seed"] is not None else NOT_RECORDED,
                     "verdict_class": _css(r["verdict"]) if r["verdict"] in ("GO", "NO_GO", "INCONCLUSIVE") else "unknown",
                     "verdict_icon": {"GO": "\u2713", "NO_GO": "\u2717"}.get(r["verdict"], "?")})
    return {"runs": runs, "audits": audits, "verdict_changed": c["verdict_changed"],
            "only_in_a": c["only_in_a"], "only_in_b": c["only_in_b"], "warnings": c["warnings"]}


def render_compare_html(a: Mapping[str, Any], b: Mapping[str, Any], *,
                        labels: tuple[str, str] = ("A", "B")) -> str:
    """A self-contained HTML page: both verdicts, audit statuses A/B, measurement deltas.

    Parameters
    ----------
    a, b : dict
        Results dicts; ``b`` is the newer run.
    labels : (str, str), default ("A", "B")

    Returns
    -------
    str
        A complete HTML5 document (no scripts, no external resources).
    """
    view = _view(compare_results(a, b, labels=labels))
    return _env().get_template("compare.html.j2").render(c=view)


def print_compare(a: Mapping[str, Any], b: Mapping[str, Any], console: Any = None, *,
                  labels: tuple[str, str] = ("A", "B")) -> None:
    """Print what changed between two runs: both verdicts, the headline numbers (:data:`HEADLINE`),
    the audits whose status changed and, inside them, the conditions whose status changed. The
    full measurement table is compare.html's. Readable without colour."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    c = compare_results(a, b, labels=labels)
    if console is None:
        console = Console()
        if not console.is_terminal:
            console.width = max(console.width, 120)
    # strings from results.json and directory names: escape control characters (rich passes them on)
    la, lb = printable(c["a"]["label"]), printable(c["b"]["label"])
    for w in c["warnings"]:
        console.print(Text("note: " + printable(w), style="yellow"))
    line = Text(f"Verdict: {la} ")
    for key, name in (("a", la), ("b", lb)):
        if key == "b":
            line.append(f" -> {name} ")
        scope = c[key]["verdict_scope"]
        line.append(printable(c[key]["verdict"] + (f" for {scope}" if scope else "")), style="bold")
    line.append(" (changed)" if c["verdict_changed"] else " (unchanged)")
    console.print(line)
    if c["headline"]:
        h = Table(title="headline numbers", box=box.SIMPLE_HEAD, title_justify="left")
        for col, just in (("measure", "left"), ("audit", "left"), (la, "right"), (lb, "right"),
                          (f"{lb} - {la}", "right")):
            h.add_column(col, justify=just, overflow="fold")
        for r in c["headline"]:
            h.add_row(Text(r["label"]), Text(r["audit"]), printable(fmt_value(r["a"])), printable(fmt_value(r["b"])),
                      _fmt_delta(r["delta"]))
        console.print(h)
    changed = [x for x in c["audits"] if x["changed"] or x["condition_changes"]]
    if changed:
        t = Table(title="audits that changed", box=box.SIMPLE_HEAD, title_justify="left")
        t.add_column("audit", no_wrap=True)
        t.add_column(la, no_wrap=True)
        t.add_column(lb, no_wrap=True)
        t.add_column(f"conditions that changed ({la} -> {lb})", overflow="fold")
        for x in changed:
            conds = "\n".join(printable(f"{d['a'] or 'absent'} -> {d['b'] or 'absent'}: {d['name']}")
                               for d in x["condition_changes"])
            t.add_row(Text(printable(x["name"])), Text(printable(x["status_a"] or "absent")),
                      Text(printable(x["status_b"] or "absent")), Text(conds))
        console.print(t)
    same = [f"{x['name']} {x['status_a']}" for x in c["audits"] if x not in changed]
    if same:
        console.print(Text(printable(f"Unchanged: {', '.join(same)}.")))
    n_meas = sum(len(x["measurements"]) for x in c["audits"])
    n_moved = sum(1 for x in c["audits"] for r in x["measurements"] if r["delta"] != 0)
    console.print(f"{n_meas} shared measurements, {n_moved} of them different: every one is in the HTML comparison.")
