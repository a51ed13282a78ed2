"""Render one run's ``results.json`` dict as HTML, JUnit XML, Markdown and a terminal table.

Every output is a pure function of the results dict (docs/RESULTS_SCHEMA.md), through one
view model (:func:`build_view`), so the report, the CI test results, the pull-request comment
and the terminal can never disagree.

Robustness: the results dict may come from an older or newer run, a crashed audit or a
third-party plugin. Missing optional keys render as "not recorded", unknown plot types as a
short note, and every user-controlled string (model spec, feature names, query text, paths,
summaries, plot titles) is escaped: jinja2 autoescape for HTML (plus a Content-Security-Policy
that forbids scripts and network loads, as a second line of defence), ElementTree for XML, and
explicit escaping for Markdown.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Mapping

from jinja2 import Environment, PackageLoader, StrictUndefined

from auditor.errors import DataError
from auditor.safetext import printable
from auditor.verdict import build_claim, claim_followups, claim_sentence, headline, verdict_label
from reports.plots import PlotView, fmt_value, render_plot

__all__ = ["render_all", "render_html", "render_junit", "render_markdown", "print_summary",
           "build_view", "validate_results", "flatten_measurements", "numeric_measurements",
           "fmt_value", "fmt_p", "OUTPUT_FILES"]

OUTPUT_FILES = ("report.html", "junit.xml", "summary.md")
STATUS_ORDER = ("FAIL", "ERROR", "WARN", "PASS", "SKIP")
STATUS_ICON = {"PASS": "\u2713", "WARN": "!", "FAIL": "\u2717", "ERROR": "\u26a0", "SKIP": "\u2013"}
VERDICT_ICON = {"GO": "\u2713", "NO_GO": "\u2717", "INCONCLUSIVE": "?"}
VERDICT_MEANING = {
    "GO": "No critical audit failed: the measured result can be believed, within the blind spots listed for each audit.",
    "NO_GO": "At least one critical audit failed: do not believe or ship the reported result until the failure is explained and fixed.",
    "INCONCLUSIVE": "The evidence cannot decide: an audit errored or is underpowered. Fix that and run again.",
}
SCOPED_GO_MEANING = ("No critical audit that ran failed. The verdict covers only the audits that ran: nothing is "
                     "established about those left out or skipped (listed below), so this is not a plain GO.")
MAX_MEASUREMENTS = 60   # per card; the rest are counted, and all stay in results.json
NOT_RECORDED = "not recorded"


# --------------------------------------------------------------------------- small helpers
def fmt_p(p: Any) -> str:
    """Format a p-value: ``—`` when absent, ``< 0.0001`` below 1e-4, else 2-4 significant digits."""
    if p is None or isinstance(p, bool):
        return "\u2014"
    try:
        f = float(p)
    except (TypeError, ValueError):
        return str(p)
    if not math.isfinite(f):
        return "n/a"
    if f < 1e-4:
        return "< 0.0001"
    if f < 0.1:
        return f"{f:.4f}"
    return f"{f:.3f}".rstrip("0").rstrip(".") if f < 1 else "1"


def _text(x: Any) -> str:
    """A display string: ``""`` for None, whitespace runs kept (templates decide layout)."""
    if x is None:
        return ""
    return x if isinstance(x, str) else str(x)


def _texts(x: Any) -> list[str]:
    """A list of non-empty strings from a list, a single string or None."""
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return [_text(v) for v in x if v is not None and _text(v).strip()]
    s = _text(x)
    return [s] if s.strip() else []


def _mapping(x: Any) -> dict[str, Any]:
    return dict(x) if isinstance(x, Mapping) else {}


def _status(x: Any) -> str:
    return _text(x).strip().upper() or "UNKNOWN"


def _css(s: str) -> str:
    """A CSS-class / anchor-safe token (user strings never reach class names raw)."""
    return re.sub(r"[^a-z0-9_-]+", "-", s.lower()).strip("-") or "x"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_CI_KEYS = (("low", "high"), ("ci_low", "ci_high"))
_ESTIMATE_KEYS = ("estimate", "mean", "value")


def _interval_keys(v: Any) -> tuple[str, str, str] | None:
    """``(estimate_key, low_key, high_key)`` when ``v`` is an interval dict, else None."""
    if not isinstance(v, Mapping):
        return None
    est = next((k for k in _ESTIMATE_KEYS if k in v), None)
    if est is None:
        return None
    for lo, hi in _CI_KEYS:
        if lo in v and hi in v:
            if len(v) <= 6:       # a small record, not a big dict that happens to hold a CI
                return est, lo, hi
    return None


def _is_interval(v: Any) -> bool:
    return _interval_keys(v) is not None


def _fmt_ci(est: Any, lo: Any, hi: Any) -> str:
    s = fmt_value(est)
    if lo is not None or hi is not None:
        s += f" [{fmt_value(lo)}, {fmt_value(hi)}]"
    return s


def _fmt_measurement(v: Any) -> str:
    keys = _interval_keys(v)
    if keys:
        return _fmt_ci(v.get(keys[0]), v.get(keys[1]), v.get(keys[2]))
    if isinstance(v, (list, tuple)):
        if not v:
            return "none"
        if all(_is_number(e) or e is None for e in v):
            return "[" + ", ".join(fmt_value(e) for e in v) + "]" if len(v) <= 8 else f"{len(v):,} values"
        if any(isinstance(e, (Mapping, list, tuple)) for e in v):
            return f"{len(v):,} records (in results.json)"
        if len(v) <= 10:
            return ", ".join(_text(e) for e in v)
        return ", ".join(_text(e) for e in v[:10]) + f", \u2026 ({len(v):,} in all)"
    if isinstance(v, Mapping):
        s = json.dumps(v, sort_keys=True, default=str)
        return s if len(s) <= 120 else s[:119] + "\u2026"
    return fmt_value(v)


def _measurement_rows(d: Mapping[str, Any], prefix: str = "", depth: int = 0) -> list[dict[str, str]]:
    """Display rows for a measurements (sub)dict, in input order.

    A confidence interval stored flat beside its estimate (``"excess": 0.07, "ci_low": 0.04,
    "ci_high": 0.10`` -- the CI keys right after the estimate, which lies inside them) is shown
    as one value ``0.0700 [0.0400, 0.1000]``. Nested dicts get dotted keys (two levels).
    """
    items = list(d.items())
    rows: list[dict[str, str]] = []
    skip: set[str] = set()
    for i, (k, v) in enumerate(items):
        if k in skip:
            continue
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and not _is_interval(v):
            if depth < 2 and v:
                rows.extend(_measurement_rows(v, key + ".", depth + 1))
            else:
                rows.append({"key": key, "value": _fmt_measurement(v)})
            continue
        nxt = items[i + 1][0] if i + 1 < len(items) else None
        value = None
        for lo, hi in _CI_KEYS:
            if nxt == lo and _is_number(v) and _is_number(d.get(lo)) and _is_number(d.get(hi)):
                tol = 1e-9 * max(1.0, abs(float(v)))
                if float(d[lo]) - tol <= float(v) <= float(d[hi]) + tol:
                    value = _fmt_ci(v, d[lo], d[hi])
                    skip |= {lo, hi}
                    break
        rows.append({"key": key, "value": value if value is not None else _fmt_measurement(v)})
    return rows


def _measurement_view(m: Any) -> tuple[list[dict[str, str]], list[dict[str, Any]], int]:
    """``(top_rows, groups, n_hidden)``: scalars of the top level, then one group per nested
    dict (``{"name", "rows"}``), at most :data:`MAX_MEASUREMENTS` rows in all."""
    top: list[dict[str, str]] = []
    groups: list[dict[str, Any]] = []
    scalars: dict[str, Any] = {}
    for k, v in _mapping(m).items():
        if isinstance(v, Mapping) and not _is_interval(v) and v:
            groups.append({"name": _text(k), "rows": _measurement_rows(v)})
        else:
            scalars[k] = v
    top = _measurement_rows(scalars)
    budget, hidden = MAX_MEASUREMENTS, 0
    if len(top) > budget:
        hidden += len(top) - budget
        top = top[:budget]
    budget -= len(top)
    for g in groups:
        if len(g["rows"]) > budget:
            hidden += len(g["rows"]) - budget
            g["rows"] = g["rows"][:max(budget, 0)]
        budget -= len(g["rows"])
    return top, [g for g in groups if g["rows"]], hidden


def flatten_measurements(m: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    """Flatten an audit's ``measurements`` dict into ``[(dotted_key, value)]`` in input order.

    Interval dicts (``{"estimate", "low", "high"}``) stay whole; other dicts are expanded up to
    two levels deep; lists stay as values.
    """
    out: list[tuple[str, Any]] = []
    for k, v in _mapping(m).items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and not _is_interval(v) and depth < 2:
            out.extend(flatten_measurements(v, key + ".", depth + 1))
        else:
            out.append((key, v))
    return out


def numeric_measurements(m: Any) -> dict[str, int | float]:
    """Numeric scalars of a ``measurements`` dict, keyed by dotted path.

    Intervals contribute their estimate under their own key; booleans, lists and ``None``
    (non-finite) are left out. Used by :mod:`reports.compare`.
    """
    out: dict[str, int | float] = {}
    for key, v in flatten_measurements(m):
        if _is_interval(v):
            v = v.get("estimate")
        if _is_number(v) and math.isfinite(float(v)):
            out[key] = v          # ints stay ints (counts), so deltas of counts print as counts
    return out


def validate_results(results: Any) -> None:
    """Raise :class:`auditor.errors.DataError` when ``results`` cannot be rendered at all.

    Only the shape needed to render is required (a dict whose ``audits`` is a list of dicts);
    everything else is optional and degrades to "not recorded".
    """
    if not isinstance(results, Mapping):
        raise DataError(f"results must be a JSON object (dict), got {type(results).__name__}.",
                        path="results.json", fix="Pass the dict read from DIR/results.json.")
    audits = results.get("audits", [])
    if not isinstance(audits, list) or not all(isinstance(a, Mapping) for a in audits):
        raise DataError("'audits' must be a list of objects.", path="results.json", field="audits",
                        fix="Re-run `audit run` to regenerate results.json (schema_version 1).")


# --------------------------------------------------------------------------- view model
_P_MENTION = re.compile(r"(?<![\w.])p(?:[ _-]?value)?\s*(?:<|<=|\u2264|>|=)|adjusted (?:one-sided )?p\b|"
                        r"(?<![\w.])p of\b|p-value|p_adj", re.I)


def _decided_by_test(status: str, conditions: list[dict[str, Any]]) -> bool:
    """False when the conditions that set a FAIL/WARN are all deterministic checks (no p-value in
    their threshold): a permutation p shown beside such a FAIL would read as its evidence."""
    if status not in ("FAIL", "WARN"):
        return True
    deciding = [c for c in conditions if c["status"] == status]
    if not deciding:
        return True
    return any(_P_MENTION.search(f"{c['threshold']} {c['name']}") for c in deciding)


def _audit_view(a: Mapping[str, Any], index: int, plots: bool) -> dict[str, Any]:
    name = _text(a.get("name")) or f"audit_{index + 1}"
    status = _status(a.get("status"))
    top, groups, hidden = _measurement_view(a.get("measurements"))
    conditions = []
    for c in a.get("conditions") or []:
        if isinstance(c, Mapping):
            cs = _status(c.get("status"))
            conditions.append({"name": _text(c.get("name")), "status": cs, "status_class": _css(cs),
                               "icon": STATUS_ICON.get(cs, "?"), "observed": _text(c.get("observed")),
                               "threshold": _text(c.get("threshold"))})
        else:
            conditions.append({"name": _text(c), "status": "UNKNOWN", "status_class": "unknown", "icon": "?",
                               "observed": "", "threshold": ""})
    plots_raw = a.get("plots") or []
    if not isinstance(plots_raw, list):
        plots_raw = [plots_raw]
    # Only the HTML shows plots (~0.5 ms each, reports.svg): the text outputs skip them.
    views: list[PlotView] = [render_plot(p, uid=f"a{index}p{j}") for j, p in enumerate(plots_raw)] if plots else []
    config = a.get("config")
    p_adj = a.get("p_adjusted")
    return {
        "name": name,
        "anchor": "audit-" + _css(name),
        "partial": re.sub(r"[^a-z0-9_]", "", name.lower()) or "audit",
        "title": _text(a.get("title")) or name.replace("_", " ").capitalize(),
        "status": status,
        "status_class": _css(status),
        "icon": STATUS_ICON.get(status, "?"),
        "critical": bool(a.get("critical", True)),
        "summary": _text(a.get("summary")) or "No summary was recorded.",
        "question": _text(a.get("question")),
        "method": _text(a.get("method")),
        "citations": _texts(a.get("citations")),
        "blind_spots": _texts(a.get("blind_spots")),
        "next_steps": _texts(a.get("next_steps")),
        "notes": _texts(a.get("notes")),
        "conditions": conditions,
        "measurements": top,
        "measurement_groups": groups,
        "measurements_more": hidden,
        "p_value": fmt_p(a.get("p_value")),
        "p_adjusted": fmt_p(p_adj),
        "has_p": a.get("p_value") is not None or p_adj is not None,
        # the table's p column: a FAIL decided by exact checks shows no p (its p belongs to another test)
        "p_decides": _decided_by_test(status, conditions),
        "null_hypothesis": _text(a.get("null_hypothesis")),
        "plots": views,
        "inconclusive": bool(a.get("inconclusive", False)),
        "error": _text(a.get("error")),
        "n_trials": a.get("n_trials") if _is_number(a.get("n_trials")) else None,
        "duration": _fmt_duration(a.get("duration_s")),
        "config": json.dumps(config, sort_keys=True, default=str) if config else "",
    }


def _fmt_duration(s: Any) -> str:
    if not _is_number(s) or not math.isfinite(float(s)):
        return ""
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _data_rows(data: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = []
    for split in ("train", "test", "synthetic"):
        summ = _mapping(data.get(split))
        sha = _text(data.get(f"{split}_sha256") or summ.get("sha256"))
        if not summ and not sha:
            continue
        groups = _mapping(summ.get("feature_groups"))
        rows.append({
            "split": split,
            "sha256": sha or NOT_RECORDED,
            "n_rows": fmt_value(summ.get("n_rows")) if "n_rows" in summ else "",
            "n_queries": fmt_value(summ.get("n_queries")) if "n_queries" in summ else "",
            "groups": ", ".join(f"{g} ({w})" for g, w in groups.items()),
            "labels": ", ".join(_text(v) for v in summ.get("label_values") or []),
        })
    return rows


def _spec_view(m: Any) -> dict[str, str] | None:
    if not isinstance(m, Mapping):
        return None
    params = m.get("params")
    spec = _text(m.get("spec"))
    if not spec and m.get("source"):
        spec = f"run file {_text(m.get('source'))}"      # --baseline-run: scores, not a model
    return {"spec": spec or NOT_RECORDED,
            "params": json.dumps(params, sort_keys=True, default=str) if params else "{}",
            "device": _text(m.get("device"))}


def build_view(results: Mapping[str, Any], *, plots: bool = True) -> dict[str, Any]:
    """The view model every output is rendered from (all keys always present).

    Parameters
    ----------
    results : dict
        The results dict (docs/RESULTS_SCHEMA.md, schema_version 1).
    plots : bool, default True
        Draw the plots (HTML); the text outputs pass False and skip them.

    Returns
    -------
    dict
        ``verdict``, ``verdict_class``, ``verdict_reason``, ``audits`` (list of per-audit
        dicts with formatted strings and :class:`reports.plots.PlotView` plots), ``counts``,
        ``holm``, ``model``, ``baseline``, ``data``, ``environment``, ``config``, ``command``,
        timestamps and ``warnings``.

    Raises
    ------
    auditor.errors.DataError
        When ``results`` is not a dict with a list of audit dicts.
    """
    validate_results(results)
    warnings: list[str] = []
    sv = results.get("schema_version")
    if sv != 1:
        warnings.append(f"results.json has schema_version {sv!r}; this renderer knows version 1 and shows "
                        "what it recognises.")
    alpha_raw = results.get("alpha", _mapping(results.get("config")).get("alpha"))
    alpha = float(alpha_raw) if _is_number(alpha_raw) else None
    audits = [_audit_view(a, i, plots) for i, a in enumerate(results.get("audits") or [])]
    verdict = _status(results.get("verdict"))
    counts = [{"status": s, "n": sum(a["status"] == s for a in audits), "status_class": _css(s)}
              for s in STATUS_ORDER]
    counts = [c for c in counts if c["n"]]
    others = sum(a["status"] not in STATUS_ORDER for a in audits)
    if others:
        counts.append({"status": "OTHER", "n": others, "status_class": "unknown"})
    holm = _mapping(results.get("holm"))
    holm_rows = []
    names, raw, adj = holm.get("audits") or [], holm.get("p_raw") or [], holm.get("p_adjusted") or []
    if isinstance(names, list) and isinstance(raw, list) and isinstance(adj, list):
        for i, n in enumerate(names):
            holm_rows.append({"audit": _text(n), "p_raw": fmt_p(raw[i] if i < len(raw) else None),
                              "p_adjusted": fmt_p(adj[i] if i < len(adj) else None),
                              "rejects": _is_number(adj[i] if i < len(adj) else None) and alpha is not None
                              and float(adj[i]) < alpha})
    raw_audits = [a for a in results.get("audits") or []]
    # results written before the scope was recorded show none: their verdict followed older rules
    scope = _mapping(results.get("scope")) or None
    label = _text(results.get("verdict_label")) or (verdict_label(verdict, scope) if scope else verdict)
    evidence = []
    if verdict == "NO_GO":
        for a in raw_audits:
            if _status(a.get("status")) == "FAIL" and a.get("critical", True):
                h = a.get("headline") if isinstance(a.get("headline"), Mapping) else None
                try:
                    h = h or headline(a)
                except Exception:  # noqa: BLE001
                    h = None
                if h and h.get("text"):
                    evidence.append({"audit": _text(a.get("name")), "text": _text(h["text"]),
                                     "directness": h.get("directness") if _is_number(h.get("directness")) else 9})
        evidence.sort(key=lambda e: e["directness"])
        for e in evidence:
            e["text"] = e["text"][:1].upper() + e["text"][1:]
    claim = results.get("claim") if isinstance(results.get("claim"), Mapping) else None
    if claim is None and "claim" not in results:
        try:
            claim = build_claim(raw_audits)
        except Exception:  # noqa: BLE001
            claim = None
    tool = _mapping(results.get("tool"))
    env = _mapping(results.get("environment"))
    data = _mapping(results.get("data"))
    config = results.get("config")
    model = _spec_view(results.get("model"))
    return {
        "verdict": verdict,
        "verdict_class": _css(verdict) if verdict in VERDICT_ICON else "unknown",
        "verdict_icon": VERDICT_ICON.get(verdict, "?"),
        "verdict_meaning": (SCOPED_GO_MEANING if verdict == "GO" and scope and not scope.get("complete")
                            else VERDICT_MEANING.get(verdict, "The run did not record a known verdict.")),
        "verdict_reason": _text(results.get("verdict_reason")),
        "verdict_label": label,
        # with the evidence listed, the banner states what failed and lists why (most direct first)
        "verdict_lead": (f"Critical audit{'s' if len(evidence) > 1 else ''} failed: "
                         f"{', '.join(e['audit'] for e in evidence)}. Evidence, most direct first:"
                         if evidence else _text(results.get("verdict_reason"))),
        "scope": _text(scope.get("label")) if scope and not scope.get("complete") else "",
        "scope_complete": bool(scope.get("complete")) if scope else True,
        "evidence": evidence,
        "claim": claim_sentence(claim),
        "claim_notes": claim_followups(claim),
        "exit_code": _text(results.get("exit_code")),
        "audits": audits,
        "counts": counts,
        "n_audits": len(audits),
        "alpha": f"{alpha:g}" if alpha is not None else NOT_RECORDED,
        "holm": holm_rows,
        "model": model or {"spec": NOT_RECORDED, "params": "{}", "device": ""},
        "baseline": _spec_view(results.get("baseline")),
        "data_source": _text(data.get("source")),
        "data": _data_rows(data),
        "environment": [{"key": _text(k), "value": _text(v) if v is not None else "\u2014"} for k, v in env.items()],
        "device": _text(env.get("device") or _mapping(results.get("model")).get("device")),
        "config": [{"key": _text(k), "value": val if isinstance(val, str) else json.dumps(val, default=str)}
                   for k, val in _mapping(config).items()],
        "metric": _text(_mapping(config).get("metric")),
        "command": _text(results.get("command")),
        "seed": _text(results.get("seed")) if results.get("seed") is not None else NOT_RECORDED,
        "started_at": _text(results.get("started_at")) or NOT_RECORDED,
        "finished_at": _text(results.get("finished_at")) or NOT_RECORDED,
        "duration": _fmt_duration(results.get("duration_s")) or NOT_RECORDED,
        "tool": f"{_text(tool.get('name')) or 'rank-auditor'} {_text(tool.get('version'))}".strip(),
        "schema_version": _text(sv),
        "warnings": warnings,
    }


# --------------------------------------------------------------------------- HTML
_ENV: Environment | None = None


def _env() -> Environment:
    """The jinja2 environment: autoescape on for every template, StrictUndefined so a
    template bug fails loudly in tests instead of printing an empty string in a report."""
    global _ENV
    if _ENV is None:
        env = Environment(loader=PackageLoader("reports", "templates"), autoescape=True,
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                          keep_trailing_newline=True)
        env.filters["fmt"] = fmt_value
        env.filters["fmt_p"] = fmt_p
        _ENV = env
    return _ENV


def partial_names(view_audit: Mapping[str, Any]) -> list[str]:
    """Templates tried for an audit card: its own partial, then the generic card."""
    return [f"_partials/{view_audit['partial']}.html.j2", "_partials/audit.html.j2"]


def render_html(results: Mapping[str, Any]) -> str:
    """The self-contained HTML report (no scripts, no network, inline SVG plots).

    Parameters
    ----------
    results : dict
        The results dict (schema_version 1).

    Returns
    -------
    str
        A complete HTML5 document.
    """
    view = build_view(results)
    return _env().get_template("report.html.j2").render(v=view, partial_names=partial_names)


# --------------------------------------------------------------------------- JUnit
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _x(s: Any) -> str:
    """Text safe for XML 1.0 and for the terminals CI prints it to: control characters shown as
    visible escapes (ElementTree escapes markup, not them), lone surrogates replaced."""
    return _XML_BAD.sub("\ufffd", printable(_text(s)))


def _conditions_text(a: Mapping[str, Any]) -> str:
    lines = []
    for c in a["conditions"]:
        lines.append(f"[{c['status']}] {c['name']}: observed {c['observed'] or '-'}; threshold {c['threshold'] or '-'}")
    return "\n".join(lines)


def render_junit(results: Mapping[str, Any]) -> str:
    """JUnit XML: one ``<testcase classname="rank_auditor.audits" name=AUDIT>`` per audit.

    FAIL -> ``<failure message=summary>``, ERROR -> ``<error message=summary>`` (with the error
    text), SKIP -> ``<skipped message=summary>``; PASS and WARN pass (a WARN says so in
    ``<system-out>``); an unknown status is an ``<error>``. Suite properties carry the
    verdict, seed and model.

    Returns
    -------
    str
        An XML document (UTF-8 declaration included).
    """
    view = build_view(results, plots=False)
    audits = view["audits"]
    n_fail = sum(a["status"] == "FAIL" for a in audits)
    n_err = sum(a["status"] not in ("PASS", "WARN", "FAIL", "SKIP") for a in audits)
    n_skip = sum(a["status"] == "SKIP" for a in audits)
    total = sum(float(a.get("duration_s") or 0) for a in results.get("audits") or []
                if _is_number(a.get("duration_s")))
    attrs = {"name": "rank_auditor", "tests": str(len(audits)), "failures": str(n_fail), "errors": str(n_err),
             "skipped": str(n_skip), "time": f"{total:.3f}"}
    root = ET.Element("testsuites", attrs)
    suite_attrs = dict(attrs)
    if view["started_at"] != NOT_RECORDED:
        suite_attrs["timestamp"] = _x(view["started_at"])
    suite = ET.SubElement(root, "testsuite", suite_attrs)
    props = ET.SubElement(suite, "properties")
    for k, v in (("verdict", view["verdict"]), ("verdict_label", view["verdict_label"]),
                 ("verdict_scope", view["scope"] or "all audits"), ("verdict_reason", view["verdict_reason"]),
                 ("model", view["model"]["spec"]), ("seed", view["seed"]), ("command", view["command"])):
        ET.SubElement(props, "property", {"name": k, "value": _x(v)})
    raw_audits = results.get("audits") or []
    for a, raw in zip(audits, raw_audits):
        dur = raw.get("duration_s")
        tc = ET.SubElement(suite, "testcase", {"classname": "rank_auditor.audits", "name": _x(a["name"]),
                                               "time": f"{float(dur):.3f}" if _is_number(dur) and math.isfinite(dur) else "0"})
        detail = _x(_conditions_text(a))
        if a["status"] == "FAIL":
            el = ET.SubElement(tc, "failure", {"message": _x(a["summary"]), "type": "FAIL"})
            el.text = detail
        elif a["status"] == "ERROR":
            el = ET.SubElement(tc, "error", {"message": _x(a["summary"]), "type": "ERROR"})
            el.text = _x(a["error"]) or detail
        elif a["status"] == "SKIP":
            ET.SubElement(tc, "skipped", {"message": _x(a["summary"])})
        elif a["status"] not in ("PASS", "WARN"):
            # A status this renderer does not know must not pass CI silently.
            ET.SubElement(tc, "error", {"message": _x(f"unknown status {a['status']!r}: {a['summary']}"),
                                        "type": "UNKNOWN_STATUS"})
        out = f"{a['status']}: {a['summary']}"
        if a["inconclusive"]:
            out += "\n(inconclusive: the evidence is too weak to decide)"
        if detail:
            out += "\n" + detail
        ET.SubElement(tc, "system-out").text = _x(out)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --------------------------------------------------------------------------- Markdown
_MD_SPECIAL = re.compile(r"([\\`*\[\]|<>])")


def _md(s: Any) -> str:
    """Escape text for a Markdown table cell / paragraph: markdown punctuation, HTML, newlines."""
    s = printable(" ".join(_text(s).split()), newlines=False)  # no escape sequence reaches a reader's terminal
    s = s.replace("&", "&amp;")
    s = _MD_SPECIAL.sub(lambda m: {"<": "&lt;", ">": "&gt;", "|": "\\|"}.get(m.group(1), "\\" + m.group(1)), s)
    if s.startswith(("#", "-", "+", "=")):
        s = "\\" + s          # would start a heading or a list at the start of a line
    return s


def _md_code(s: str) -> str:
    """A fenced code block that the text cannot close early (control characters escaped)."""
    s = printable(s)
    fence = "```"
    while fence in s:
        fence += "`"
    return f"{fence}\n{s}\n{fence}"


MD_ICON = {"PASS": "\u2705", "WARN": "\u26a0\ufe0f", "FAIL": "\u274c", "ERROR": "\U0001f4a5", "SKIP": "\u23ed\ufe0f"}
MD_VERDICT_ICON = {"GO": "\u2705", "NO_GO": "\u274c", "INCONCLUSIVE": "\u2754"}


def render_markdown(results: Mapping[str, Any]) -> str:
    """``summary.md``: verdict line, a table of audits, key numbers and the reproduce command,
    sized for a pull-request comment. Status is spelled out (icons are decoration only)."""
    v = build_view(results, plots=False)
    icon = MD_VERDICT_ICON.get(v["verdict"])
    verdict = v["verdict"] if icon else _md(v["verdict"])
    scope = f" for {_md(v['scope'])}" if v["scope"] else ""
    lines = [f"## rank-auditor verdict: {icon + ' ' if icon else ''}**{verdict}**{scope}", ""]
    if v["verdict_lead"]:
        lines += [_md(v["verdict_lead"]), ""]
    if v["evidence"]:
        lines += [f"{i}. {_md(e['text'])} ({_md(e['audit'])})" for i, e in enumerate(v["evidence"], 1)] + [""]
    if v["claim"]:
        lines += ["**The claim:** " + _md(v["claim"]) + "".join(" " + _md(n) for n in v["claim_notes"]), ""]
    meta = [f"model {_md(v['model']['spec'])}"]
    if v["metric"]:
        meta.append(f"metric {_md(v['metric'])}")
    meta.append(f"seed {_md(v['seed'])}")
    if v["duration"] != NOT_RECORDED:
        meta.append(f"duration {v['duration']}")
    lines += [" · ".join(meta), ""]
    lines += ["| Audit | Status | Critical | Answer | p (Holm) |", "|---|---|---|---|---|"]
    for a in v["audits"]:
        status = f"{MD_ICON.get(a['status'], '')} {_md(a['status'])}".strip()
        if a["inconclusive"]:
            status += " (inconclusive)"
        p_adj = (a["p_adjusted"] if a["p_decides"] else "exact check") if a["has_p"] else "\u2014"
        crit = "yes" if a["critical"] else "no"
        lines.append(f"| {_md(a['title'])} | {status} | {crit} | {_md(a['summary'])} | {_md(p_adj)} |")
    lines.append("")
    rank = {"ERROR": 4, "FAIL": 3, "WARN": 2, "PASS": 1}
    deciding = []
    for a in v["audits"]:
        if a["conditions"]:
            # the condition that set the audit's status (its worst), with what was observed
            deciding.append((a, max(a["conditions"], key=lambda c: rank.get(c["status"], 0))))
    if deciding:
        lines += ["**Key numbers** (the condition that decided each audit)", ""]
        for a, c in deciding:
            lines.append(f"- {_md(a['name'])} \u2014 {_md(c['status'])}: {_md(c['name'])}: {_md(c['observed']) or '-'}")
        lines.append("")
        n_all = sum(len(a["conditions"]) for a in v["audits"])
        lines += [f"<details><summary>All {n_all} conditions with thresholds</summary>", "",
                  "| Audit | Status | Condition | Observed | Threshold |", "|---|---|---|---|---|"]
        for a in v["audits"]:
            for c in a["conditions"]:
                lines.append(f"| {_md(a['name'])} | {_md(c['status'])} | {_md(c['name'])} | {_md(c['observed'])} | "
                             f"{_md(c['threshold'])} |")
        lines += ["", "</details>", ""]
    if v["command"]:
        lines += ["Reproduce:", "", _md_code(v["command"]), ""]
    lines.append(f"<sub>{_md(v['tool'])} · results.json schema {_md(v['schema_version']) or '?'} · "
                 f"full report: report.html</sub>")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- terminal
def print_summary(results: Mapping[str, Any], console: Any = None) -> None:
    """Print a table of audits (name, status, critical, summary, p / Holm p) and the verdict.

    Readable without colour: status is always spelled out. ``console`` defaults to a new
    :class:`rich.console.Console` on stdout.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    v = build_view(results, plots=False)
    if console is None:
        console = Console()
        if not console.is_terminal:
            # CI logs do not wrap: 80 columns would squeeze the summaries into a thin column.
            console.width = max(console.width, 120)
    styles = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "ERROR": "bold magenta", "SKIP": "dim"}
    table = Table(title=f"rank-auditor: {len(v['audits'])} audit{'' if len(v['audits']) == 1 else 's'}", box=box.SIMPLE_HEAD, show_lines=False,
                  title_justify="left")
    table.add_column("audit", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("crit.", no_wrap=True)
    table.add_column("summary", ratio=1, overflow="fold", min_width=30)
    table.add_column("p / p_adj", no_wrap=True, justify="right")
    for a in v["audits"]:
        ps = ((f"{a['p_value']} / {a['p_adjusted']}" if a["p_decides"] else "exact check") if a["has_p"]
              else "\u2014")
        flag = a["inconclusive"] and not a["summary"].lower().startswith("inconclusive")   # not said twice
        summary = ("(inconclusive) " if flag else "") + a["summary"]
        # rich passes escape sequences inside Text through to the terminal: escape them first
        table.add_row(Text(printable(a["name"])), Text(printable(a["status"]), style=styles.get(a["status"], "")),
                      "yes" if a["critical"] else "no", Text(printable(summary)), printable(ps))
    console.print(table)
    vstyle = {"GO": "bold green", "NO_GO": "bold red", "INCONCLUSIVE": "bold yellow"}.get(v["verdict"], "bold")
    line = Text("Verdict: ")
    line.append(printable(v["verdict"]), style=vstyle)
    if v["scope"]:
        line.append(printable(" for " + v["scope"]), style=vstyle)
    # Text objects are never parsed as rich markup, so user strings cannot inject styles.
    if v["verdict_lead"]:
        line.append(" \u2014 " + printable(v["verdict_lead"]))
    for i, e in enumerate(v["evidence"], 1):
        line.append(f"\n  {i}. " + printable(f"{e['text']} ({e['audit']})"))
    console.print(line)
    if v["claim"]:
        console.print(Text(printable("Claim: " + " ".join([v["claim"] + "."] + v["claim_notes"]))))


# --------------------------------------------------------------------------- files
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory and ``os.replace``,
    so a reader never sees a half-written report."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file 0600; a report is meant to be shared: use the usual umask mode.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def render_all(results: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Render ``report.html``, ``junit.xml`` and ``summary.md`` into ``out_dir`` atomically.

    All three are rendered in memory first, so a rendering error writes nothing.
    ``results.json`` itself is written by the runner, not here.

    Parameters
    ----------
    results : dict
        The results dict (schema_version 1).
    out_dir : str or Path
        Created if missing.

    Returns
    -------
    dict
        ``{"report.html": Path, "junit.xml": Path, "summary.md": Path}`` (keyed by file name,
        like the runner's ``"results.json"``).
    """
    out = Path(out_dir)
    texts = dict(zip(OUTPUT_FILES, (render_html(results), render_junit(results), render_markdown(results))))
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in texts.items():
        p = out / name
        _atomic_write(p, text)
        paths[name] = p
    return paths
