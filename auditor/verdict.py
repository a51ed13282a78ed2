"""The suite verdict: what was established, over which audits, led by the most direct evidence.

Three things a reader needs before the table of audits, all computed here from the per-audit
dicts (``results.json`` ``audits``) so every output tells the same story:

- **Scope** (:func:`build_scope`): which audits ran, which the user left out with ``--checks``,
  which were skipped and why. A plain GO means every audit of the suite ran and every critical
  one passed; a GO over fewer audits names them ("GO for isolation only -- 1 of 6 audits").
  A critical audit skipped for a missing input (no baseline) or because the data cannot
  support it makes the verdict INCONCLUSIVE, naming what to add; one the user left out, or
  skipped because the model cannot be retrained, narrows the scope instead.
- **Headlines** (:func:`headline`): one short evidence sentence per failed audit with a
  *directness* rank, so a NO_GO leads with what a reader can check by hand ("29.1% of test
  rows are exact copies of training rows") rather than with the first failure in table order.
  1 = rows seen in both splits, 2 = a named label-proxy column, 3 = a model's behaviour under
  a controlled intervention (shuffled labels, a domain classifier), 4 = a statistical
  comparison of two models, 5 = anything else (the audit's own summary).
- **Claim** (:func:`build_claim`): the gain under test in absolute terms -- candidate and
  baseline metric, the difference with its CI, the declared ``min_gain``, the test that
  decided a gain was not demonstrated, and the queries that would be needed when the test
  set is underpowered -- from the significance audit's measurements.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

__all__ = ["decide_verdict", "build_scope", "scope_label", "headline", "build_claim", "SKIP_CAUSES",
           "NOT_REFITTABLE"]

#: why an audit did not run: left out by --checks is recorded in scope["left_out"], not here
SKIP_CAUSES = ("missing_input", "not_refittable", "not_applicable")
#: the start of every "cannot retrain" model failure (auditor.context raises it; the runner
#: turns an audit whose trials hit it into a SKIP)
NOT_REFITTABLE = "model cannot be retrained"
_BLOCKING_CAUSES = ("missing_input", "not_applicable")


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _names(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# --------------------------------------------------------------------------- scope
def build_scope(audits: Sequence[Mapping[str, Any]], *, left_out: Sequence[str] = (),
                suite: Sequence[str] | None = None) -> dict[str, Any]:
    """The ``scope`` object of ``results.json``.

    Parameters
    ----------
    audits : list of dict
        Per-audit dicts of the audits that were requested (SKIPs included).
    left_out : list of str
        Audits of the suite the user did not request (``--checks``).
    suite : list of str, optional
        Every audit of the suite, in report order (default: the requested ones plus ``left_out``).

    Returns
    -------
    dict
        ``{"n_suite", "ran", "left_out", "skipped": [{"audit", "critical", "cause", "reason",
        "fix"}], "complete", "label"}``; ``complete`` is true when every audit of the suite ran.
    """
    requested = [str(a.get("name")) for a in audits]
    suite = list(suite) if suite is not None else requested + [n for n in left_out if n not in requested]
    suite += [n for n in requested if n not in suite]
    ran = [str(a.get("name")) for a in audits if a.get("status") != "SKIP"]
    skipped = [{"audit": str(a.get("name")), "critical": bool(a.get("critical", True)),
                "cause": a.get("skip_cause") or "not_applicable", "reason": str(a.get("summary") or ""),
                "fix": a.get("skip_fix")}
               for a in audits if a.get("status") == "SKIP"]
    left = [n for n in left_out if n not in requested]
    complete = not left and not skipped
    scope = {"n_suite": len(suite), "ran": ran, "left_out": left, "skipped": skipped, "complete": complete}
    scope["label"] = scope_label(scope)
    return scope


def scope_label(scope: Mapping[str, Any]) -> str:
    """``"all 6 audits"`` or ``"isolation only — 1 of 6 audits"`` / ``"4 of 6 audits — not run: a, b"``."""
    ran, n = list(scope.get("ran") or []), int(scope.get("n_suite") or 0)
    if scope.get("complete"):
        return f"all {_plural(n, 'audit')}"
    if not ran:
        return f"no audit \u2014 0 of {_plural(n, 'audit')} ran"
    if len(ran) <= 2:
        return f"{_names(ran)} only \u2014 {len(ran)} of {_plural(n, 'audit')}"
    not_run = list(scope.get("left_out") or []) + [s["audit"] for s in scope.get("skipped") or []]
    return f"{len(ran)} of {_plural(n, 'audit')} \u2014 not run: {', '.join(not_run)}"


def verdict_label(verdict: str, scope: Mapping[str, Any] | None) -> str:
    """The verdict as every output shows it: ``"GO"`` or ``"GO for isolation only — 1 of 6 audits"``."""
    if not scope or scope.get("complete"):
        return verdict
    return f"{verdict} for {scope.get('label') or scope_label(scope)}"


# --------------------------------------------------------------------------- headlines
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")


def _first_sentence(s: str) -> str:
    s = " ".join(str(s or "").split())
    return _SENTENCE_END.split(s, maxsplit=1)[0].rstrip(".") if s else ""


def _isolation_headline(m: Mapping[str, Any]) -> str | None:
    n_rows = m.get("n_test_rows")
    dup = (m.get("exact_duplicates") or {}).get("same_query_rows")
    overlap = m.get("query_overlap") or {}
    n_q = m.get("n_test_queries")
    q = sum(int(overlap.get(k) or 0) for k in ("by_qid", "by_text", "by_content"))
    contam = m.get("contamination") or {}
    near = (m.get("near_duplicates") or {}).get("copy_rows")
    parts = []
    if _is_num(n_rows) and n_rows and _is_num(dup) and dup > 0:
        parts.append(f"{dup / n_rows:.1%} of test rows ({int(dup):,} of {int(n_rows):,}) are exact copies of "
                     "training rows")
    if q and _is_num(n_q):
        rows = contam.get("rows")
        share = (f" ({rows / n_rows:.1%} of test rows)" if not parts and _is_num(rows) and _is_num(n_rows)
                 and n_rows else "")
        parts.append(f"{q:,} of {int(n_q):,} test queries{share} also occur in training")
    if not parts and _is_num(near) and near > 0:
        parts.append(f"{int(near):,} test rows are near-copies of training rows")
    return ", and ".join(parts) if parts else None


def _proxy_headline(m: Mapping[str, Any]) -> str | None:
    proxy = m.get("proxy") or {}
    suspects = [str(s) for s in proxy.get("suspects") or []]
    if not suspects:
        return None
    cand = {str(c.get("name")): c for c in proxy.get("candidates") or [] if isinstance(c, Mapping)}
    c = cand.get(suspects[0], {})
    text = f"column {suspects[0]} is a label proxy"
    details = []
    if _is_num(c.get("solo_share")):
        details.append(f"alone it ranks {'almost perfectly' if c['solo_share'] >= 0.95 else 'nearly as well as the labels'} "
                       f"({c['solo_share']:.2f} of the ideal gain over chance)")
    if _is_num(c.get("dependence")):
        details.append(f"permuting it removes {c['dependence']:.0%} of the model's gain")
    if details:
        text += ": " + " and ".join(details)
    if len(suspects) > 1:
        text += f" (also suspected: {', '.join(suspects[1:])})"
    return text


def headline(audit: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"text", "directness"}`` for a FAILed audit (see the module docstring), else None."""
    if audit.get("status") != "FAIL":
        return None
    name, m = audit.get("name"), audit.get("measurements") or {}
    text, rank = None, 5
    try:
        if name == "isolation":
            text, rank = _isolation_headline(m), 1
        elif name == "feature_ablation":
            text, rank = _proxy_headline(m), 2
        elif name in ("random_label", "synthetic_shift"):
            rank = 3
        elif name == "significance":
            claim = build_claim([audit])
            text, rank = (claim or {}).get("decided_by"), 4
    except Exception:  # noqa: BLE001 -- measurements from an older or odd run: fall back to the summary
        text = None
    if not text:  # the audit's own first sentence, up to its first clause break
        text = _first_sentence(audit.get("summary") or "").split("; ")[0]
        text += ")" * max(0, text.count("(") - text.count(")"))  # a clause cut inside a parenthesis
        if name not in ("random_label", "synthetic_shift", "significance"):
            rank = 5
    return {"text": text, "directness": rank} if text else None


# --------------------------------------------------------------------------- claim
def _queries_needed(target: float, sd: float, alpha: float, power: float) -> int | None:
    """Smallest number of query pairs at which the one-sided paired t-test reaches ``power``
    for a true gain ``target`` (noncentral t; statsmodels' TTestPower)."""
    if not (_is_num(target) and _is_num(sd) and target > 0 and sd > 0):
        return None
    from statsmodels.stats.power import TTestPower

    from auditor.stats import power_paired

    try:
        n = float(TTestPower().solve_power(effect_size=target / sd, nobs=None, alpha=alpha, power=power,
                                           alternative="larger"))
    except Exception:  # noqa: BLE001 -- no finite solution
        return None
    if not math.isfinite(n):
        return None
    k = max(2, int(math.ceil(n - 1e-9)))
    while power_paired(target, sd, k, alpha=alpha) < power and k < 10**7:  # solve_power stops at ~1e-6
        k += 1
    return k


def build_claim(audits: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The gain under test, from the significance audit's measurements (None when it did not run).

    Keys: ``metric, candidate, baseline, delta, ci_low, ci_high, ci_level, n_queries,
    min_gain, min_gain_declared, status, demonstrated, decided_by, target_gain, target_source,
    mde, queries_needed``.
    """
    sig = next((a for a in audits if a.get("name") == "significance"), None)
    if sig is None or sig.get("status") in ("SKIP", "ERROR"):
        return None
    m = sig.get("measurements") or {}
    if not _is_num(m.get("mean_delta")):
        return None
    alpha = float(m["alpha"]) if _is_num(m.get("alpha")) else 0.05
    min_gain = float(m["min_gain"]) if _is_num(m.get("min_gain")) else 0.0
    level = float(m["ci_level"]) if _is_num(m.get("ci_level")) else 0.95
    p_adj = sig.get("p_adjusted") if _is_num(sig.get("p_adjusted")) else sig.get("p_value")
    n = int(m.get("n_queries") or 0)
    delta, lo, hi = float(m["mean_delta"]), m.get("ci_low"), m.get("ci_high")
    ci_ok = _is_num(lo) and lo > min_gain
    t_ok = _is_num(p_adj) and p_adj < alpha
    floor = f"the declared min_gain {min_gain:g}" if min_gain > 0 else "0"
    lvl = f"{level:.0%} CI"
    p_txt = f"Holm-adjusted t-test p = {p_adj:.3g}" if _is_num(p_adj) else "no t-test p-value"
    demonstrated = sig.get("status") == "PASS" and not sig.get("inconclusive")
    decided_by = None
    if not demonstrated:
        min_q = (sig.get("config") or {}).get("min_queries")
        if sig.get("inconclusive") and _is_num(min_q) and n < min_q:
            decided_by = f"only {n} test queries have a defined {m.get('metric', 'metric')}"
        elif ci_ok and not t_ok:
            decided_by = (f"the {lvl} excludes {floor} (lower bound {lo:+.4f}) but the {p_txt} is not below "
                          f"\u03b1 = {alpha:g}")
        elif t_ok and not ci_ok:
            decided_by = (f"the {p_txt} is below \u03b1 = {alpha:g} but the {lvl} reaches "
                          f"{'down to ' + format(lo, '+.4f') if _is_num(lo) else 'an undefined bound'}, "
                          f"not above {floor}")
        elif not ci_ok and not t_ok and delta <= min_gain:
            decided_by = (f"the candidate is not better than the baseline on average "
                          f"(Δ {delta:+.4f}{'' if min_gain <= 0 else f' <= the declared min_gain {min_gain:g}'}; "
                          f"{p_txt})")
        elif not ci_ok and not t_ok:
            decided_by = (f"neither the {lvl} (lower bound "
                          f"{format(lo, '+.4f') if _is_num(lo) else 'undefined'}) nor the {p_txt} shows a gain "
                          f"above {floor}")
        else:
            decided_by = _first_sentence(sig.get("summary") or "") or None
        decided_by = f"no demonstrated gain: {decided_by}" if decided_by else None
    if min_gain > 0:
        target, target_src = min_gain, "declared min_gain"
    elif delta > 0:
        target, target_src = delta, "observed gain"
    else:
        target, target_src = None, None
    sd = m.get("sd_delta")
    power = float(m["mde_power"]) if _is_num(m.get("mde_power")) else 0.8
    needed = None
    if target is not None and not demonstrated and _is_num(sd):
        needed = _queries_needed(target, float(sd), alpha, power)
    return {"metric": m.get("metric"), "candidate": m.get("candidate_mean"), "baseline": m.get("baseline_mean"),
            "delta": delta, "ci_low": lo, "ci_high": hi, "ci_level": level, "n_queries": n,
            "min_gain": min_gain, "min_gain_declared": min_gain > 0, "status": sig.get("status"),
            "inconclusive": bool(sig.get("inconclusive")), "demonstrated": demonstrated, "decided_by": decided_by,
            "target_gain": target, "target_source": target_src, "mde": m.get("mde"), "power": power,
            "queries_needed": needed if needed is not None and needed > n else None}


def claim_sentence(claim: Mapping[str, Any] | None) -> str:
    """One line: ``ndcg@10 0.7616 → 0.9999: Δ +0.2383, 95% CI [+0.2118, +0.2693] over 120 queries``."""
    if not claim:
        return ""

    def f(x: Any, signed: bool = False) -> str:
        return "n/a" if not _is_num(x) else (f"{x:+.4f}" if signed else f"{x:.4f}")

    s = (f"{claim.get('metric') or 'metric'} baseline {f(claim.get('baseline'))} \u2192 candidate "
         f"{f(claim.get('candidate'))}: \u0394 {f(claim.get('delta'), True)}, "
         f"{float(claim.get('ci_level') or 0.95):.0%} CI [{f(claim.get('ci_low'), True)}, "
         f"{f(claim.get('ci_high'), True)}] over {claim.get('n_queries')} queries")
    s += (f"; claimed gain (min_gain) {claim['min_gain']:g}" if claim.get("min_gain_declared")
          else "; no gain declared (--min-gain): tested against 0")
    return s


def claim_followups(claim: Mapping[str, Any] | None) -> list[str]:
    """The sentences after the claim line: what decided a missing gain, and the queries needed."""
    if not claim:
        return []
    out = []
    if claim.get("decided_by"):
        out.append(claim["decided_by"][0].upper() + claim["decided_by"][1:] + ".")
    if claim.get("queries_needed"):
        out.append(f"Underpowered: about {claim['queries_needed']:,} test queries (here {claim['n_queries']}) would "
                   f"give {claim.get('power', 0.8):.0%} power to detect the {claim.get('target_source')} "
                   f"{claim['target_gain']:.4f}.")
    return out


# --------------------------------------------------------------------------- verdict
def decide_verdict(audits: Sequence[Mapping[str, Any]], scope: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """``(verdict, reason)`` from per-audit dicts and the run's scope.

    NO_GO when a critical audit FAILs (the reason leads with the most direct evidence); else
    INCONCLUSIVE when an audit is ERROR or inconclusive, or a critical audit was skipped for a
    missing input or data it cannot use (the reason names what to add); else GO, over the scope
    that ran (a plain GO only when every audit of the suite ran).
    """
    scope = scope or build_scope(audits)
    failed = [a for a in audits if a.get("status") == "FAIL" and a.get("critical", True)]
    if failed:
        heads = []
        for a in failed:
            h = a.get("headline") or headline(a)
            heads.append((h["directness"] if h else 9, [x["name"] for x in failed].index(a["name"]),
                          a["name"], (h or {}).get("text") or _first_sentence(a.get("summary") or "")))
        heads.sort()
        lead = "; ".join(f"{text} ({name})" for _, _, name, text in heads[:2] if text)
        names = ", ".join(name for _, _, name, _ in heads)
        return "NO_GO", (f"{lead[0].upper() + lead[1:]}. " if lead else "") + \
            f"Critical audit{'s' if len(failed) > 1 else ''} failed: {names}."
    errored = [a for a in audits if a.get("status") == "ERROR"]
    weak = [a for a in audits if a.get("inconclusive") and a.get("status") != "ERROR"]
    blocked = [s for s in scope.get("skipped") or [] if s["critical"] and s["cause"] in _BLOCKING_CAUSES]
    ran = [a for a in audits if a.get("status") != "SKIP"]
    if errored or weak or blocked:
        parts = ([f"the {a['name']} audit errored" for a in errored]
                 + [f"the {a['name']} audit is inconclusive{_what_would_decide(a)}" for a in weak])
        for s in blocked:
            if s["cause"] == "missing_input" and s.get("fix"):
                parts.append(f"the critical {s['audit']} audit did not run: {s['fix']}")
            else:
                parts.append(f"the critical {s['audit']} audit could not run ({_first_sentence(s['reason'])})")
        reason = "; ".join(parts)
        reason = reason[0].upper() + reason[1:]
        if errored or weak:
            return "INCONCLUSIVE", reason + " — the evidence cannot support GO or NO_GO."
        others = [a for a in ran if a.get("status") in ("PASS", "WARN")]
        if not others:
            return "INCONCLUSIVE", f"{reason}."
        tail = _passed_phrase(others)
        return "INCONCLUSIVE", f"{reason}. {tail[0].upper() + tail[1:]}, but GO needs every critical audit."
    warns = [a["name"] for a in audits if a.get("status") in ("WARN", "FAIL")]
    if scope.get("complete"):
        reason = f"All {_plural(len(ran), 'audit')} ran and passed their critical conditions"
    else:
        reason = _passed_phrase(ran)
        reason = reason[0].upper() + reason[1:]
        if scope.get("left_out"):
            reason += f"; left out by --checks: {', '.join(scope['left_out'])}"
        refit = [s["audit"] for s in scope.get("skipped") or [] if s["cause"] == "not_refittable"]
        if refit:
            reason += f"; skipped because the model cannot be retrained: {', '.join(refit)}"
        other = [s["audit"] for s in scope.get("skipped") or [] if s["cause"] != "not_refittable"]
        if other:
            reason += f"; skipped: {', '.join(other)}"
        reason += ". Nothing is established about the audits that did not run"
    if warns:
        reason += f" (warnings: {', '.join(warns)})"
    return "GO", reason + "."


def _what_would_decide(audit: Mapping[str, Any]) -> str:
    """For an underpowered significance audit: the test queries that would decide it."""
    if audit.get("name") != "significance":
        return ""
    try:
        c = build_claim([audit])
    except Exception:  # noqa: BLE001 -- odd measurements: say nothing rather than guess
        return ""
    if not c or not c.get("queries_needed"):
        return ""
    return (f" (about {c['queries_needed']:,} test queries, here {c['n_queries']}, would give {c['power']:.0%} "
            f"power to detect the {c['target_source']} {c['target_gain']:.4f})")


def _passed_phrase(ran: Sequence[Mapping[str, Any]]) -> str:
    if not ran:
        return "no audit ran"
    if len(ran) == 1:
        return f"the {ran[0]['name']} audit, the only one that ran, passed its critical conditions"
    return f"the {len(ran)} audits that ran ({', '.join(a['name'] for a in ran)}) passed their critical conditions"
