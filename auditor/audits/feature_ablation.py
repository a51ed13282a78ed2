"""Feature-ablation audit: which inputs does the model's score actually depend on?

Three measurements on the held-out set, all by *within-query permutation* of feature values
(each row of a query receives another row's values of the same query): the values stay on
the data's own distribution -- unlike zero-masking, which feeds the model inputs it has
never seen and measures its reaction to garbage rather than its use of the feature -- and
the query-level part of a feature (shared by every candidate of a query) is left intact,
so only its power to *order* candidates is removed.

1. **Per feature group** (modalities for multimodal data): ``n_repeats`` permutations, the
   per-query change ``metric(permuted) - metric(original)`` averaged over repeats, a paired
   bootstrap CI over queries, and TOST equivalence (margin 0.005) to show a group whose
   removal changes nothing (a non-significant drop is not evidence of no effect).
2. **Label-proxy scan**: every single feature column is used alone as the ranking score. A
   column is a label-proxy suspect when it alone ranks nearly perfectly (its gain over chance
   reaches ``proxy_solo_share`` of the ideal's), far above every other (not near-identical)
   column (by ``proxy_gap``), *and* the model depends on it (permuting it within query removes
   at least ``proxy_dependence`` of the model's gain over chance). Solo strength alone is
   never enough: strong single features are normal in real ranking data (on the shared
   LETOR sample one feature alone reaches 0.978x the boosted model's nDCG@10).
3. **Random half**: a random half of all columns permuted within query (``half_mask_repeats``
   draws), reproducing the seed project's "mask 50% of features" check as a measurement with
   its CI instead of a pass/fail threshold.

A PASS is earned, not assumed: the label-proxy condition clears a column only when it is not
strong alone, not isolated, or when the 95% upper bound of the share of the model's gain that
permuting it removes stays below ``proxy_dependence``; a strong, isolated column whose
dependence the test set cannot bound makes the audit INCONCLUSIVE. A group "changes the
ranking" only when its CI excludes 0, is "unused" only by TOST, and is "undetermined"
otherwise. A test set the audit cannot measure -- fewer than 2 queries whose metric can change
with the ordering (no relevant item, all labels equal, one candidate), or features constant
within every query (e.g. all zero) -- is INCONCLUSIVE with the reason, never ERROR or PASS.

Optional ``loco``: drop-and-retrain per group (the group is permuted within query in train and
test, then the model is refit), which measures whether the information is *replaceable* by
other groups rather than whether this fitted model uses it.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from auditor.audits.base import (Audit, Condition, Decision, Evidence, Facts, Trial, condition, judge, jsonable,
                                 plot_bars, plot_intervals, plot_table)
from auditor.config import ParamText, declare, param
from auditor.data import RankingDataset
from auditor.informative import constant_within_queries, informative_queries
from auditor.metrics import evaluate, expected_random
from auditor.stats import benjamini_hochberg, bootstrap_ci, tost_paired

__all__ = ["FeatureAblationAudit", "within_query_permutation", "permute_columns"]


def within_query_permutation(offsets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A row permutation that only moves rows inside their own query, shape (n,)."""
    n = int(offsets[-1])
    qidx = np.repeat(np.arange(offsets.shape[0] - 1), np.diff(offsets))
    return np.lexsort((rng.random(n), qidx))


def permute_columns(data: RankingDataset, columns: Mapping[str, np.ndarray | None],
                    perm: np.ndarray, scratch: dict[str, np.ndarray] | None = None) -> RankingDataset:
    """Copy of ``data`` with the given columns of each group moved along row permutation ``perm``.

    ``columns``: ``{group: column indices}`` (``None`` = the whole group). The selected columns
    of one row all move together (the row's group vector is kept intact).

    ``scratch`` (``{group: buffer}``, filled on first use) lets a caller that permutes many
    times reuse one buffer per group instead of allocating two full copies per permutation:
    the permuted values are gathered straight into the buffer, and the returned dataset is a
    read-only view of it, valid until the next call with the same ``scratch``.
    """
    new = {}
    for g, cols in columns.items():
        src = data.features[g]
        keep = None
        if cols is not None:
            c = np.asarray(cols, dtype=np.int64)
            if c.size == 0:
                continue
            keep = np.ones(src.shape[1], dtype=bool)
            keep[c] = False
        buf = None if scratch is None else scratch.get(g)
        if buf is None or buf.shape != src.shape or buf.dtype != src.dtype:
            buf = np.empty(src.shape, dtype=src.dtype)
            if scratch is not None:
                scratch[g] = buf
        np.take(src, perm, axis=0, out=buf)
        if keep is not None and keep.any():
            np.copyto(buf, src, where=keep[None, :])  # the columns not chosen stay in place
        new[g] = buf
    # the buffers hold this dataset's own rows, permuted: finite and of the same shape by construction
    return data._with_trusted_features(new) if new else data


def _solo_metrics(metric: str, labels: np.ndarray, X: np.ndarray, cols: np.ndarray, offsets: np.ndarray,
                  kw: Mapping[str, Any], max_rows: int = 1 << 19) -> Any:
    """Yield ``(j, metric per query with X[:, j] as the score, ... with -X[:, j])`` for ``j`` in ``cols``.

    One :func:`~auditor.metrics.evaluate` call covers many columns: each column (and its
    negation) is a copy of the queries, stacked one after another. Per-query values do not
    depend on the other queries of a call, so they equal one call per column.
    """
    n, nq = int(offsets[-1]), offsets.size - 1
    per = max(1, max_rows // (2 * n))  # columns per call
    item_id = kw.get("item_id")
    rest = {k: v for k, v in kw.items() if k != "item_id"}
    for c0 in range(0, cols.size, per):
        cb = cols[c0:c0 + per]
        m = 2 * cb.size
        S = X[:, cb].T  # (b, n)
        scores = np.concatenate([S, -S], axis=0).reshape(-1)  # columns, then their negations
        big_off = (np.arange(m)[:, None] * n + offsets[None, :-1]).reshape(-1)
        big_off = np.append(big_off, m * n)
        v = evaluate(metric, np.tile(labels, m), scores, big_off,
                     item_id=None if item_id is None else np.tile(item_id, m), **rest).reshape(m, nq)
        for i, j in enumerate(cb.tolist()):
            yield j, v[i], v[cb.size + i]


def _arr(x: Any) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in x] if isinstance(x, (list, tuple)) else x,
                    dtype=np.float64)


def _num(x: Any) -> float:
    """A trial number as float: JSON turned NaN into None."""
    return float("nan") if x is None else float(x)


# --------------------------------------------------------------------------- conditions
# Functions of the measurements (:class:`Facts`), listed on FeatureAblationAudit.conditions. The
# first two are preconditions (a Condition only when the test set cannot show what the model relies
# on; the first that applies is the only condition).
def _too_few_queries(m: Mapping[str, Any]) -> bool:
    return int(m.get("n_queries", 0)) < 2


def _flat_features(m: Mapping[str, Any]) -> bool:
    return not _too_few_queries(m) and bool(m.get("features_constant_within_queries"))


@condition()
def enough_queries(f: Facts) -> Condition | None:
    """WARN (inconclusive) when fewer than 2 test queries can change their metric with the ordering."""
    m = f.measurements
    if not _too_few_queries(m):
        return None
    return Condition(f"at least 2 test queries whose {f.metric} depends on the ordering", "WARN",
                     f"{int(m.get('n_queries', 0))} such queries of {int(m.get('n_test_queries', 0))}",
                     "permutation deltas need queries the ordering can change")


@condition()
def features_vary(f: Facts) -> Condition | None:
    """WARN (inconclusive) when every feature is constant within every test query."""
    if not _flat_features(f.measurements):
        return None
    return Condition("some feature varies within a test query", "WARN",
                     "every feature column is constant inside every test query",
                     "within-query permutation can only move values that differ within a query")


def _proxy(f: Facts) -> dict[str, Any]:
    """The label-proxy scan read against its thresholds: suspects (FAIL), strong isolated columns whose
    dependence the test set cannot bound below proxy_dependence (undecided), and the cleared text."""
    pr, p = f.measurements["proxy"], f.params
    dep_min = float(p["proxy_dependence"])
    sus = [c for c in pr["candidates"] if c["suspect"]]
    # a strong, isolated column clears only when the model demonstrably does not depend on it:
    # the 95% upper bound of the share of the gain its permutation removes stays below proxy_dependence
    undecided = []
    for c in pr["candidates"]:
        if c["suspect"] or not (c["strong"] and c["isolated"]):
            continue
        hi = _num(c.get("dependence_high"))
        if not (np.isfinite(hi) and hi < dep_min):
            undecided.append(c)
    proxy_txt = ""
    if sus:
        c = sus[0]
        obs = (f"column {c['name']} alone reaches {c['solo_share']:.2f} of the ideal gain over chance "
               f"(lead {c['gap']:.2f} over the next column); permuting it removes {c['dependence']:.0%} "
               f"(95% CI {c['dependence_low']:.0%}-{c['dependence_high']:.0%}) of the model's gain")
        st = "FAIL"
    elif undecided:
        c = undecided[0]
        dep = (f"permuting it removes {c['dependence']:.0%} (95% CI {c['dependence_low']:.0%}-"
               f"{c['dependence_high']:.0%}) of the model's gain" if np.isfinite(_num(c["dependence"])) else
               "the model is not above chance, so its dependence on it cannot be measured")
        obs = (f"column {c['name']} alone reaches {c['solo_share']:.2f} of the ideal gain over chance (lead "
               f"{c['gap']:.2f}); {dep}")
        st = "WARN"
    elif pr["candidates"]:
        c = pr["candidates"][0]
        if not c["strong"]:
            proxy_txt = (f"the strongest single column, {c['name']}, alone reaches {c['solo_share']:.2f} of the "
                         f"ideal gain over chance (a proxy needs >= {p['proxy_solo_share']:g})")
        elif not c["isolated"]:
            proxy_txt = (f"the strongest single column, {c['name']} (solo share {c['solo_share']:.2f}), leads "
                         f"the next non-duplicate column by only {c['gap']:.2f} (a proxy stands out by >= "
                         f"{p['proxy_gap']:g})")
        else:
            proxy_txt = (f"column {c['name']} ranks well alone (solo share {c['solo_share']:.2f}) but permuting "
                         f"it removes at most {c['dependence_high']:.0%} of the model's gain (95% upper bound; "
                         f"a proxy the model depends on removes >= {dep_min:.0%})")
        obs, st = proxy_txt, "PASS"
    else:
        obs, st = "no columns scanned", "PASS"
        proxy_txt = "no column was scanned"
    return {"suspects": sus, "undecided": undecided, "text": proxy_txt, "observed": obs, "status": st}


@condition("proxy_solo_share", "proxy_gap", "proxy_dependence")
def no_label_proxy(f: Facts) -> Condition | None:
    """FAIL when a column alone ranks almost perfectly, stands out from the others and the model loses
    at least proxy_dependence of its gain without it; WARN (inconclusive) when that loss cannot be bounded."""
    if _too_few_queries(f.measurements) or _flat_features(f.measurements) or f.measurements.get("proxy") is None:
        return None
    p, r = f.params, _proxy(f)
    dep_min = float(p["proxy_dependence"])
    return Condition(
        "no single feature is a label proxy the model depends on", r["status"], r["observed"],
        f"FAIL when solo share >= {p['proxy_solo_share']:g}, lead >= {p['proxy_gap']:g} and the model "
        f"loses >= {dep_min:.0%} of its gain without it (all three; solo strength alone never fails); cleared "
        f"when one of the first two fails or the 95% upper bound of the loss is < {dep_min:.0%}; "
        "inconclusive otherwise")


def _groups(m: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """Feature groups shown unused (TOST), shown to change the ranking (CI excludes 0), undetermined."""
    groups = m.get("groups", {})
    unused = [g for g, v in groups.items() if v.get("unused")]
    used = [g for g, v in groups.items() if v.get("changes_ranking") and g not in unused]
    return unused, used, [g for g in groups if g not in unused and g not in used]


def _ignored_groups(m: Mapping[str, Any]) -> list[str]:
    """Groups shown unused while the model is above chance (a WARN); [] otherwise."""
    return _groups(m)[0] if m.get("gain_over_chance", {}).get("ci_low", 0) > 0 else []


@condition("alpha", "equivalence_margin")
def no_ignored_group(f: Facts) -> Condition | None:
    """WARN when TOST shows a feature group's permutation changes the metric by less than
    equivalence_margin while the model is above chance (it does not reach or is ignored by the model)."""
    m = f.measurements
    groups = m.get("groups", {})
    if _too_few_queries(m) or _flat_features(m) or not groups:
        return None
    unused, used, _ = _groups(m)
    margin = float(f.params["equivalence_margin"])

    def one(g: str) -> str:
        v = groups[g]
        if v.get("identically_zero"):
            return f"{g}: unused, permuting it changes {f.metric} on no query"
        kind = ("unused" if g in unused else "changes the ranking" if g in used else "undetermined")
        return (f"{g}: {kind}, Δ {v['delta']:+.4f} [{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]"
                + (f", TOST p = {v['tost_p_bh']:.3g}" if g in unused else ""))
    return Condition(
        "no feature group is shown to be ignored by the model (permuted within query)",
        "WARN" if _ignored_groups(m) else "PASS", "; ".join(one(g) for g in groups),
        f"WARN when TOST shows |delta| < {margin:g} (Benjamini-Hochberg-adjusted p < {f.alpha:g}); a group "
        "'changes the ranking' when its 95% CI excludes 0, else it is undetermined")


class FeatureAblationAudit(Audit):
    """Within-query permutation ablation, label-proxy scan and the random-half measurement."""

    name = "feature_ablation"
    title = "Feature ablation"
    question = ("Does the model's score depend on its features the way a genuine ranker's should -- "
                "no single feature acting as a copy of the label, no input group that it silently ignores?")
    method = ParamText("Held-out data only, model fitted once. Per feature group: permute the group's vectors among the "
              "rows of each query (n_repeats = {n_repeats}), per-query delta of the metric averaged over repeats, BCa "
              "bootstrap CI over queries, TOST equivalence with margin {equivalence_margin} (Benjamini-Hochberg across groups) "
              "to show a group is unused. Label-proxy scan: each column alone as the score; a column is a "
              "suspect when its gain over chance is >= {proxy_solo_share} of the ideal's, it leads every other (non-duplicate) "
              "column by >= {proxy_gap} of that scale, and permuting it within query removes >= {proxy_dependence:.0%} of the model's gain "
              "over chance (CI of the drop above 0). A random half of the columns permuted within query "
              "({half_mask_repeats} draws) is reported with its CI. No zero-masking; optional drop-and-retrain (loco). A strong, "
              "isolated column clears only when the 95% upper bound of the gain its permutation removes is < {proxy_dependence:.0%}; "
              "otherwise INCONCLUSIVE. Test sets with < 2 queries the ordering can change, or features constant "
              "within every query: INCONCLUSIVE with the reason.")
    citations = [
        "Breiman (2001), Random forests, Machine Learning 45 -- permutation importance.",
        "Fisher, Rudin & Dominici (2019), All models are wrong, but many are useful: learning a variable's "
        "importance by studying an entire class of prediction models simultaneously, JMLR 20 -- model reliance.",
        "Hooker, Mentch & Zhou (2021), Unrestricted permutation forces extrapolation, Statistics and "
        "Computing 31 -- why permutations should stay on the data distribution (here: within query).",
        "Lei, G'Sell, Rinaldo, Tibshirani & Wasserman (2018), Distribution-free predictive inference for "
        "regression, JASA 113 -- leave-one-covariate-out (LOCO).",
        "Schuirmann (1987), A comparison of the two one-sided tests procedure and the power approach for "
        "assessing the equivalence of average bioavailability, J. Pharmacokinet. Biopharm. 15 -- TOST.",
        "Kaufman, Rosset, Perlich & Stitelman (2012), Leakage in data mining: formulation, detection, and "
        "avoidance, ACM TKDD 6(4) -- label-proxy features.",
    ]
    blind_spots = [
        "A proxy spread over several columns (each weak alone, strong together) is not found by the "
        "single-column scan; the per-group deltas show the group's importance but do not call it a leak.",
        "A proxy that only orders candidates through its interaction with another column is scored by "
        "its solo strength, which may be modest.",
        "Permutation measures reliance of this fitted model, not whether the information is available "
        "elsewhere: correlated groups can each look unimportant (use loco = true to see replaceability).",
        "Features constant within every query cannot change any ranking when permuted within query: "
        "their deltas are 0 by construction and they are reported as unused.",
    ]
    critical = True
    gating = False  # decisions are effect sizes with CIs, not one suite-level hypothesis test
    defaults = declare(
        n_repeats=param(int, 20, min=1, quick=10, help="permutations per group and per proxy candidate"),
        equivalence_margin=param(float, 0.005, min=0, help="TOST margin (metric units) for \"unused\""),
        bootstrap=param(int, 2000, min=1, quick=1000, help="BCa resamples (queries)"),
        groups=param((list, str), None, help="groups to ablate (unset: all)"),
        half_mask=param(bool, True, help="the random-half measurement"),
        half_mask_repeats=param(int, 10, min=1, quick=5, help="random halves drawn"),
        proxy_scan=param(bool, True, help="single-column label-proxy scan"),
        proxy_solo_share=param(float, 0.8, min=0, max=1, help="\"nearly perfect\": solo gain over chance >= "
                                                              "this share of the ideal's"),
        proxy_gap=param(float, 0.3, min=0, max=1, help="lead over every other (non-duplicate) column"),
        proxy_dependence=param(float, 0.5, min=0, max=1, help="share of the model's gain removed by permuting "
                                                              "the column"),
        proxy_check_top=param(int, 3, min=1, help="strongest columns considered"),
        proxy_duplicate_corr=param(float, 0.95, min=0, max=1, help="columns this correlated with a candidate are "
                                                                   "near-copies, not competitors"),
        loco=param(bool, False, help="drop-and-retrain per group (one fit per group)"),
    )

    # ------------------------------------------------------------------ plan / trials
    def _groups(self, ctx) -> list[str]:
        p = ctx.params(self)
        gs = p["groups"]
        if gs is None:
            return list(ctx.test.features)
        if isinstance(gs, str):
            gs = [g.strip() for g in gs.split(",") if g.strip()]
        bad = [g for g in gs if g not in ctx.test.features]
        if bad:
            from auditor.errors import ConfigError

            raise ConfigError(f"[audits.feature_ablation] groups: unknown feature group(s) {bad}; the data has "
                              f"{list(ctx.test.features)}.")
        return list(gs)

    def plan(self, ctx) -> list[Trial]:
        p = ctx.params(self)
        if int(p["n_repeats"]) < 1:
            from auditor.errors import ConfigError

            raise ConfigError(f"[audits.feature_ablation] n_repeats must be >= 1, got {p['n_repeats']}.")
        groups = self._groups(ctx)
        trials = [Trial(self.name, "permute", {"groups": groups, "n_repeats": int(p["n_repeats"]),
                                               "half_mask_repeats": int(p["half_mask_repeats"]) if p["half_mask"] else 0})]
        if p["proxy_scan"]:
            trials.append(Trial(self.name, "proxy", {"n_repeats": int(p["n_repeats"]),
                                                     "check_top": int(p["proxy_check_top"]),
                                                     "dup_corr": float(p["proxy_duplicate_corr"]),
                                                     "solo_min": float(p["proxy_solo_share"]),
                                                     "gap_min": float(p["proxy_gap"])}))
        if p["loco"]:
            trials += [Trial(self.name, f"loco:{g}", {"group": g}) for g in groups]
        return trials

    def run_trial(self, ctx, trial: Trial) -> dict[str, Any]:
        test = ctx.test
        if trial.key == "permute":
            model = ctx.fit(0)  # the model trained normally (cached, shared with other audits)
            base = ctx.metric_values(test, ctx.score(model, test))
            out: dict[str, Any] = {"base": base, "groups": {}}
            scratch = ctx.memo(("feature_ablation", "scratch"), dict)  # one buffer per group, reused
            for g in trial.params["groups"]:
                acc = np.zeros(test.n_queries)
                for r in range(int(trial.params["n_repeats"])):
                    perm = within_query_permutation(test.query_offsets, ctx.rng("feature_ablation", "group", g, r))
                    m = ctx.metric_values(test, ctx.score(model, permute_columns(test, {g: None}, perm, scratch)))
                    acc += m - base
                out["groups"][g] = acc / int(trial.params["n_repeats"])
            R = int(trial.params["half_mask_repeats"])
            if R:
                names = [(g, j) for g in test.features for j in range(test.features[g].shape[1])]
                acc = np.zeros(test.n_queries)
                for r in range(R):
                    rng = ctx.rng("feature_ablation", "half", r)
                    pick = rng.choice(len(names), size=len(names) // 2, replace=False) if len(names) > 1 else np.zeros(0, int)
                    cols: dict[str, list[int]] = {}
                    for i in pick.tolist():
                        cols.setdefault(names[i][0], []).append(names[i][1])
                    perm = within_query_permutation(test.query_offsets, rng)
                    m = ctx.metric_values(test, ctx.score(model, permute_columns(test, cols, perm, scratch)))
                    acc += m - base
                out["half"] = acc / R
                out["half_columns"] = len(names) // 2
            return jsonable(out)
        if trial.key == "proxy":
            return jsonable(self._proxy_trial(ctx, **trial.params))
        if trial.key.startswith("loco:"):
            g = trial.params["group"]
            model = ctx.fit(0)
            base = ctx.metric_values(test, ctx.score(model, test))
            tr = ctx.train
            ptr = permute_columns(tr, {g: None}, within_query_permutation(tr.query_offsets, ctx.rng("feature_ablation", "loco", g, "train")))
            pte = permute_columns(test, {g: None}, within_query_permutation(test.query_offsets, ctx.rng("feature_ablation", "loco", g, "test")))
            m2 = ctx.fit(0, train=ptr)
            return jsonable({"delta": ctx.metric_values(test, ctx.score(m2, pte)) - base})
        raise KeyError(trial.key)

    def _proxy_trial(self, ctx, n_repeats: int, check_top: int, dup_corr: float, solo_min: float,
                     gap_min: float) -> dict[str, Any]:
        test = ctx.test
        X = test.feature_matrix()
        names = test.feature_names
        off = test.query_offsets
        kw = dict(item_id=test.item_id, gain=ctx.config.gain, no_relevant=ctx.config.no_relevant)
        ideal = evaluate(ctx.metric, test.labels, test.labels, off, **kw)
        chance = expected_random(ctx.metric, test.labels, off, gain=ctx.config.gain, no_relevant=ctx.config.no_relevant)
        ok = np.isfinite(ideal) & np.isfinite(chance) & (ideal - chance > 1e-12)
        scale = float(np.mean(ideal[ok] - chance[ok])) if ok.any() else float("nan")
        solo = np.full(X.shape[1], np.nan)
        sign = np.ones(X.shape[1])
        const = np.all(X == X[:1], axis=0)
        solo[const] = 0.0
        live = np.flatnonzero(~const)
        chance_ok = chance[ok]
        if not ok.any():
            live = live[:0]  # no query where an ordering can beat chance: no column's lead is defined (NaN)
        for j, up_q, dn_q in _solo_metrics(ctx.metric, test.labels, X, live, off, kw):
            up = float(np.mean(up_q[ok] - chance_ok))
            dn = float(np.mean(dn_q[ok] - chance_ok))
            solo[j], sign[j] = (up, 1.0) if up >= dn else (dn, -1.0)
        share = solo / scale if scale and np.isfinite(scale) else solo * np.nan
        order = np.argsort(-np.nan_to_num(share, nan=-np.inf), kind="stable")
        top = order[: max(0, int(check_top))]
        # gap: lead over the best column that is not a near-copy of the candidate
        gaps = {}
        for j in top.tolist():
            others = [i for i in order.tolist() if i != j][: max(50, int(check_top) + 1)]
            best_other = -np.inf
            for i in others:
                c = np.corrcoef(X[:, j], X[:, i])[0, 1] if np.std(X[:, i]) > 0 and np.std(X[:, j]) > 0 else 0.0
                if abs(c) >= dup_corr:
                    continue
                best_other = share[i]
                break
            gaps[j] = float(share[j] - best_other) if np.isfinite(best_other) else float(share[j])
        # model dependence on each top column
        model = ctx.fit(0)
        base = ctx.metric_values(test, ctx.score(model, test))
        dep = {}
        scratch = ctx.memo(("feature_ablation", "scratch"), dict)
        gidx = {n: (n.rsplit(".", 1)[0], int(n.rsplit(".", 1)[1])) for n in (names[j] for j in top.tolist())}
        for rank, j in enumerate(top.tolist()):
            # scoring is the expensive part: the strongest column is always measured (evidence for
            # the report), the others only when they already pass the solo and lead criteria
            if rank > 0 and not (share[j] >= solo_min and gaps[j] >= gap_min):
                continue
            g, c = gidx[names[j]]
            acc = np.zeros(test.n_queries)
            for r in range(int(n_repeats)):
                perm = within_query_permutation(off, ctx.rng("feature_ablation", "proxy", names[j], r))
                m = ctx.metric_values(test, ctx.score(model, permute_columns(test, {g: [c]}, perm, scratch)))
                acc += m - base
            dep[names[j]] = acc / int(n_repeats)
        return {"names": names, "solo_share": share, "solo_excess": solo, "sign": sign, "scale": scale,
                "top": [names[j] for j in top.tolist()], "gap": {names[j]: gaps[j] for j in top.tolist()},
                "delta": dep, "base": base, "chance": chance, "ideal": ideal}

    # ------------------------------------------------------------------ measure
    def measure(self, ctx, results: Mapping[str, dict[str, Any]]) -> Evidence:
        p = ctx.params(self)
        test = ctx.test
        alpha = float(ctx.config.alpha)
        margin = float(p["equivalence_margin"])
        B = int(p["bootstrap"])
        kw = dict(gain=ctx.config.gain, no_relevant=ctx.config.no_relevant)
        chance = expected_random(ctx.metric, test.labels, test.query_offsets, **kw)
        informative = informative_queries(ctx.metric, test.labels, test.query_offsets, **kw)
        res = results["permute"]
        base = _arr(res["base"])
        ok = informative & np.isfinite(base)
        seed0 = int(ctx.rng("feature_ablation", "measure").integers(2**31))
        meas: dict[str, Any] = {"metric": ctx.metric, "n_queries": int(ok.sum()),
                                "excluded_no_relevant": int(np.sum(~np.isfinite(chance))),
                                "excluded_uninformative": int(np.sum(np.isfinite(chance) & ~informative)),
                                "base_metric": float(np.mean(base[ok])) if ok.any() else float("nan"),
                                "chance": float(np.mean(chance[ok])) if ok.any() else float("nan")}
        sizes = np.diff(test.query_offsets)
        meas["n_test_queries"] = int(test.n_queries)
        # counted among queries with a defined metric, so the reasons below do not overlap
        meas["single_candidate_queries"] = int(np.sum((sizes < 2) & np.isfinite(chance)))
        X = test.feature_matrix()
        meas["features_constant_within_queries"] = bool(np.all(constant_within_queries(X, test.query_offsets)))
        gain = base - chance
        gci = bootstrap_ci(gain[ok], n_resamples=B, method="bca", seed=seed0)
        meas["gain_over_chance"] = {"estimate": gci.estimate, "ci_low": gci.low, "ci_high": gci.high}
        notes: list[str] = []
        if meas["excluded_no_relevant"] or meas["excluded_uninformative"]:
            notes.append(f"{meas['excluded_no_relevant']} test queries without a relevant item and "
                         f"{meas['excluded_uninformative']} whose metric cannot change with the ordering are excluded.")
        groups: dict[str, Any] = {}
        tost_p = []
        for i, (g, d) in enumerate(res["groups"].items()):
            dd = _arr(d)[ok]
            ci = bootstrap_ci(dd, n_resamples=B, method="bca", seed=seed0 + 1 + i)
            t = tost_paired(dd, margin, alpha=alpha)
            # "changes the ranking" needs the CI to exclude 0; an identically-zero delta (the group
            # cannot move any ranking, e.g. constant within every query) is a deterministic "unused"
            groups[g] = {"delta": ci.estimate, "ci_low": ci.low, "ci_high": ci.high, "tost_p": t.p_value,
                         "changes_ranking": bool(dd.size >= 2 and (ci.high < 0 or ci.low > 0)),
                         "identically_zero": bool(dd.size >= 1 and np.all(dd == 0)),
                         "share_of_gain": (-ci.estimate / gci.estimate) if gci.estimate > 0 else float("nan"),
                         "n_columns": int(test.features[g].shape[1])}
            tost_p.append(t.p_value)
        if tost_p:
            adj = benjamini_hochberg(np.array(tost_p))
            for g, a in zip(groups, adj.tolist()):
                groups[g]["tost_p_bh"] = a
                groups[g]["unused"] = bool(a < alpha)
        meas["groups"] = groups
        plots = []
        if groups:
            rows = [{"label": f"{g} ({v['n_columns']} cols)", "estimate": v["delta"], "low": v["ci_low"],
                     "high": v["ci_high"]} for g, v in groups.items()]
            if "half" in res:
                dh = _arr(res["half"])[ok]
                ci = bootstrap_ci(dh, n_resamples=B, method="bca", seed=seed0 + 99)
                t = tost_paired(dh, margin, alpha=alpha)
                meas["half_mask"] = {"columns": res["half_columns"], "delta": ci.estimate, "ci_low": ci.low,
                                     "ci_high": ci.high, "tost_p": t.p_value,
                                     "masked_metric": meas["base_metric"] + ci.estimate,
                                     "ratio": ((meas["base_metric"] + ci.estimate) / meas["base_metric"])
                                     if meas["base_metric"] else float("nan"),
                                     "share_of_gain": (-ci.estimate / gci.estimate) if gci.estimate > 0 else float("nan")}
                rows.append({"label": f"random half ({res['half_columns']} cols)", "estimate": ci.estimate,
                             "low": ci.low, "high": ci.high})
            plots.append(plot_intervals(f"Change in {ctx.metric} when permuted within query (95% CI)", rows,
                                        xlabel=f"delta {ctx.metric} (negative = the model uses it)", ref=0.0))
        loco = {k.split(":", 1)[1]: v for k, v in results.items() if k.startswith("loco:")}
        if loco:
            meas["loco"] = {}
            for i, (g, r) in enumerate(loco.items()):
                ci = bootstrap_ci(_arr(r["delta"])[ok], n_resamples=B, method="bca", seed=seed0 + 200 + i)
                meas["loco"][g] = {"delta": ci.estimate, "ci_low": ci.low, "ci_high": ci.high}
        if "proxy" in results:
            pr = self._proxy_measure(ctx, p, results["proxy"], ok, gci.estimate, B, seed0)
            meas["proxy"] = pr
            names = results["proxy"]["names"]
            share = _arr(results["proxy"]["solo_share"])
            top = np.argsort(-np.nan_to_num(share, nan=-np.inf))[:15]
            plots.append(plot_bars("Single-column ranking strength (share of the ideal's gain over chance)",
                                   [names[j] for j in top], [float(share[j]) for j in top], ylabel="solo share",
                                   hlines=[{"label": "proxy_solo_share", "y": float(p["proxy_solo_share"])}]))
            plots.append(plot_table("Label-proxy candidates", ["column", "solo share", "lead over next",
                                                               "model's gain removed", "95% CI"],
                                    [[c["name"], round(c["solo_share"], 3), round(c["gap"], 3),
                                      round(c["dependence"], 3) if c["drop"] is not None else "not measured",
                                      f"{c['dependence_low']:.3f} to {c['dependence_high']:.3f}"
                                      if c["drop"] is not None else ""]
                                     for c in pr["candidates"]]))
        if meas["gain_over_chance"]["ci_low"] <= 0:
            notes.append("the model is not significantly above chance on this test set: permutation deltas "
                         "cannot show what it relies on.")
        return Evidence(measurements=meas, p_value=None, null_hypothesis="", plots=plots, notes=notes)

    def _proxy_measure(self, ctx, p, pr, ok, gain, B, seed0) -> dict[str, Any]:
        cands = []
        for i, name in enumerate(pr["top"]):
            j = pr["names"].index(name)
            g = gain if gain > 0 else float("nan")
            solo = _num(pr["solo_share"][j])
            cand = {"name": name, "solo_share": solo, "solo_excess": _num(pr["solo_excess"][j]),
                    "direction": "descending" if (pr["sign"][j] or 1) > 0 else "ascending",
                    "gap": _num(pr["gap"][name])}
            if name in pr["delta"]:
                d = _arr(pr["delta"][name])[ok]
                ci = bootstrap_ci(-d, n_resamples=B, method="percentile", seed=seed0 + 300 + i)
                cand.update({"drop": ci.estimate, "drop_low": ci.low, "drop_high": ci.high,
                             "dependence": ci.estimate / g, "dependence_low": ci.low / g,
                             "dependence_high": ci.high / g})
            else:  # not measured: fails the solo or lead criterion already
                ci = None
                cand.update({"drop": None, "drop_low": None, "drop_high": None, "dependence": float("nan"),
                             "dependence_low": float("nan"), "dependence_high": float("nan")})
            cand["strong"] = bool(np.isfinite(solo) and solo >= float(p["proxy_solo_share"]))
            cand["isolated"] = bool(np.isfinite(cand["gap"]) and cand["gap"] >= float(p["proxy_gap"]))
            cand["relied_on"] = bool(ci is not None and np.isfinite(cand["dependence"])
                                     and cand["dependence"] >= float(p["proxy_dependence"]) and ci.low > 0)
            cand["suspect"] = cand["strong"] and cand["isolated"] and cand["relied_on"]
            cands.append(cand)
        best = cands[0] if cands else None
        return {"candidates": cands, "suspects": [c["name"] for c in cands if c["suspect"]],
                "best_column": best["name"] if best else None,
                "best_solo_share": best["solo_share"] if best else None,
                "best_solo_vs_model": ((_num(pr["scale"]) * best["solo_share"] + float(np.mean(_arr(pr["chance"])[ok])))
                                       / float(np.mean(_arr(pr["base"])[ok]))) if best and ok.any() else None,
                "scale": _num(pr["scale"])}

    # ------------------------------------------------------------------ decide
    conditions = (enough_queries, features_vary, no_label_proxy, no_ignored_group)

    def _cannot_run(self, f: Facts, found: Mapping[str, Condition]) -> Decision | None:
        """INCONCLUSIVE when the test set cannot show what the model relies on (None otherwise)."""
        m, metric = f.measurements, f.metric
        if "enough_queries" in found:
            n, nq = int(m.get("n_queries", 0)), int(m.get("n_test_queries", 0))
            parts = []
            if m.get("excluded_no_relevant"):
                parts.append(f"{m['excluded_no_relevant']} have no relevant item ({metric} undefined)")
            if m.get("single_candidate_queries"):
                parts.append(f"{m['single_candidate_queries']} have a single candidate")
            rest = int(m.get("excluded_uninformative", 0)) - int(m.get("single_candidate_queries", 0))
            if rest > 0:
                parts.append(f"{rest} have all labels equal")
            why = f" (of the {nq} test queries, " + ", ".join(parts) + ")" if parts else ""
            return Decision(list(found.values()),
                            (f"Inconclusive: the feature-ablation audit cannot run on this test set: {n} of its "
                             f"queries can change their {metric} with the ordering{why}, so permuting features "
                             "cannot show what the model relies on."),
                            ["Audit on a test set with graded labels: queries with several candidates, at least one "
                             "relevant item and differing labels (at least 2 such queries; 30 or more give usable CIs)."],
                            status="WARN", inconclusive=True)
        if "features_vary" in found:
            return Decision(list(found.values()),
                            ("Inconclusive: every feature is constant within each test query (for example all "
                             "zero), so permuting features within a query cannot change any ranking: the audit "
                             "cannot measure what the model relies on."),
                            ["Check how the test features were exported (all-zero or constant columns usually mean a "
                             "failed join or a wrong column mapping)."], status="WARN", inconclusive=True)
        return None

    def decide(self, ctx, evidence: Evidence, p_adjusted: float | None) -> Decision:
        f = Facts.of(ctx, evidence, p_adjusted, ctx.params(self))
        found = judge(self.conditions, f)
        blocked = self._cannot_run(f, found)
        if blocked is not None:
            return blocked
        m, p, metric = f.measurements, f.params, f.metric
        conds = list(found.values())
        margin, dep_min = float(p["equivalence_margin"]), float(p["proxy_dependence"])
        steps: list[str] = []
        proxy = _proxy(f) if m.get("proxy") is not None else None
        undecided = proxy["undecided"] if proxy else []
        if proxy and proxy["suspects"]:
            steps.append(f"Find how column {proxy['suspects'][0]['name']} is computed: a feature that reproduces the "
                         "label (a post-outcome signal, an aggregate over labels) must be removed and the model refit.")
        groups = m.get("groups", {})
        unused, used, unknown = _groups(m)
        group_txt = ""
        if groups:
            ignored = _ignored_groups(m)
            if ignored:
                steps.append(f"Groups {ignored} do not change the ranking: check they reach the model (a loading or "
                             "preprocessing bug), or drop them and say so.")
            bound = max(max(abs(v["ci_low"]), abs(v["ci_high"])) for v in groups.values())
            if used and not unknown and not unused:
                group_txt = (f" Every feature group changes the ranking (each 95% CI excludes 0); permuting any one "
                             f"changes {metric} by at most {bound:.4f} (95% bound).")
            else:
                bits = []
                if used:
                    bits.append(f"{', '.join(used)} change{'s' if len(used) == 1 else ''} the ranking")
                if unused:
                    bits.append(f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} shown unused (|Δ| < {margin:g})")
                if unknown:
                    bits.append(f"{', '.join(unknown)}: effect undetermined (the CI includes 0 but not only values "
                                f"within ±{margin:g})")
                group_txt = (" Feature groups: " + "; ".join(bits) + f"; permuting any one changes {metric} by at "
                             f"most {bound:.4f} (95% bound).")
        h = m.get("half_mask")
        half_txt = ""
        if h and np.isfinite(_num(h.get("ratio"))):
            half_txt = (f" Permuting a random half of the columns changes {metric} by {h['delta']:+.4f} "
                        f"(95% CI {h['ci_low']:+.4f} to {h['ci_high']:+.4f}; {h['ratio']:.3f}x).")
        if any(c.status == "FAIL" for c in conds):
            summary = (f"Label-proxy suspect: the model depends on column {m['proxy']['suspects'][0]}, which alone "
                       "ranks almost perfectly." + group_txt + half_txt)
            return Decision(conditions=conds, summary=summary, next_steps=steps)
        if undecided:
            c = undecided[0]
            more = ""
            hi, lo = _num(c.get("dependence_high")), _num(c.get("dependence_low"))
            if np.isfinite(hi) and np.isfinite(lo) and hi > lo:
                # the CI narrows like 1/sqrt(queries): how many would put its upper bound under the floor
                est = _num(c["dependence"])
                if est < dep_min:
                    k = ((hi - est) / (dep_min - est)) ** 2
                    more = f" About {int(np.ceil(m['n_queries'] * k))} test queries (now {m['n_queries']}) would decide it."
            summary = (f"Inconclusive: column {c['name']} alone ranks almost perfectly (solo share "
                       f"{c['solo_share']:.2f}, lead {c['gap']:.2f}), and the test set cannot show whether the model "
                       f"depends on it ({found['no_label_proxy'].observed.split('; ', 1)[-1]}; a proxy removes >= "
                       f"{dep_min:.0%})." + more + group_txt)
            steps.insert(0, f"Find out how column {c['name']} is computed; evaluate on more test queries to measure "
                            "the model's dependence on it.")
            return Decision(conditions=conds, summary=summary, next_steps=steps, status="WARN", inconclusive=True)
        proxy_txt = proxy["text"] if proxy else ""
        summary = ("No label proxy the model depends on: " + proxy_txt + "." if proxy_txt
                   else "No label proxy scan was run (proxy_scan = false).") + group_txt + half_txt
        return Decision(conditions=conds, summary=summary, next_steps=steps)
