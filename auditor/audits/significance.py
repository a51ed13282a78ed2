"""Significance audit: is the candidate's gain over its baseline real, and could this test set tell?

The candidate (the audited model, trained normally: ``ctx.fit(seed)``) and the baseline
(``--baseline`` model fitted with the same seeds, or ``--baseline-run`` scores) are scored on
the same test queries; the per-query metric differences ``d = candidate - baseline`` are the
evidence (queries are the replicates; Smucker et al. 2007). With ``n_seeds > 1`` each query's
metric is first averaged over the seeds (training noise averaged out, queries still the units).

- Primary test: one-sided paired t-test of ``mean d > min_gain`` (``min_gain`` from the
  suite config, 0 by default); its p-value joins the suite's Holm correction. Here the null
  is "no real gain", so a *small* p is what a PASS needs.
- Sign-flip randomization (B = 10,000; Fisher's paired randomization test), reported beside
  it: when the two disagree, the per-query differences are skewed enough to distrust t.
- BCa bootstrap CI of the mean difference (Efron 1987), effect size d_z, wins/ties/losses.
- Power of the paired t-test at the declared (``min_gain``) or observed gain, and the minimum
  detectable effect at 80% power (Cohen 1988; Sakai 2016).

Decision: PASS only when the CI's lower bound is above ``min_gain`` *and* the Holm-adjusted
p < alpha. Otherwise the gain is not demonstrated, and the question is whether the test set
could have shown it: with a declared ``min_gain`` the comparison is underpowered when the MDE
exceeds it (INCONCLUSIVE, MDE stated) and adequately powered otherwise (FAIL: "no
demonstrated gain"); without one, an observed gain that is positive but not demonstrated is
judged against the observed gain itself (the MDE is then practically always larger:
INCONCLUSIVE), and an observed gain <= 0 is a FAIL (the candidate is not better on these
queries). When the CI and the Holm-adjusted t-test disagree about a positive gain the result is
INCONCLUSIVE, naming the test that withheld it.

Nothing is decided on a test set that cannot carry the comparison: fewer than ``min_queries``
queries with a defined metric, or fewer than ``min_queries`` whose metric can change with the
ordering at all (one candidate, all labels equal: d = 0 there whatever the models do), is
INCONCLUSIVE with the reason and the number of queries that would decide it; so is a
per-query difference that is the same non-zero value on every query (zero variance: a
zero-width CI is no evidence), and a test set whose features are constant within every query
(no model can order its candidates). A difference of exactly 0 on every query is a FAIL (no
query shows a gain). Every summary states the absolute metric of both models; a PASS states the
gain's lower bound and the MDE, a FAIL the power it had at the target gain, an INCONCLUSIVE
the queries that would give ``power`` at it (:func:`queries_needed`).
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np

from auditor.audits.base import (Audit, Condition, Decision, Evidence, Facts, Trial, condition, judge, jsonable,
                                 plot_bars, plot_hist, plot_lines)
from auditor.baseline import baseline_metric_values
from auditor.config import ParamText, declare, param
from auditor.errors import ConfigError
from auditor.informative import constant_within_queries, informative_queries
from auditor.seeds import derive_seed
from auditor.stats import (bootstrap_ci, effect_size_dz, mde_paired, paired_t_test, power_paired,
                           sign_flip_test, win_tie_loss)

__all__ = ["SignificanceAudit", "queries_needed"]


def queries_needed(effect: float, sd: float, *, alpha: float = 0.05, power: float = 0.8,
                   n_max: int = 10_000_000) -> int | None:
    """Smallest number of queries at which the one-sided paired t-test has ``power`` at ``effect``.

    ``sd`` is the per-query sd of the differences, taken as known (the current test set's).
    None when it cannot be computed (effect <= 0, sd not positive) or exceeds ``n_max``.
    """
    if not (np.isfinite(effect) and effect > 0 and np.isfinite(sd) and sd > 0):
        return None

    def ok(n: int) -> bool:
        return power_paired(effect, sd, n, alpha=alpha) >= power

    lo, hi = 2, 2
    while not ok(hi):
        lo, hi = hi, hi * 2
        if hi > n_max:
            return None
    while lo < hi:  # smallest n in (lo, hi] with enough power (power grows with n)
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return int(hi)


def _fmt(x: float, nd: int = 4) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:+.{nd}f}" if x < 0 else f"{x:.{nd}f}"


# --------------------------------------------------------------------------- conditions
# Functions of the measurements (:class:`Facts`), listed on SignificanceAudit.conditions. The first
# three are preconditions: a Condition only when the test set cannot carry the comparison (the first
# that applies is the only condition); the other four judge the gain.
def _too_few_queries(f: Facts) -> bool:
    m, need = f.measurements, max(int(f.params["min_queries"]), 2)
    return m["n_queries"] < need or int(m.get("n_informative", m["n_queries"])) < need


def _features_flat(f: Facts) -> bool:
    return not _too_few_queries(f) and bool(f.measurements.get("features_constant_within_queries"))


def _gain_constant(f: Facts) -> bool:
    m = f.measurements
    return not _too_few_queries(f) and not _features_flat(f) and bool(m.get("sd_is_zero")) \
        and abs(m["mean_delta"]) > 1e-12


def _blocked(f: Facts) -> bool:
    return _too_few_queries(f) or _features_flat(f) or _gain_constant(f)


def _ci_txt(m: Mapping[str, Any]) -> str:
    return (f"mean Δ {_fmt(m['mean_delta'])}, {m['ci_level']:.0%} BCa CI [{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}] "
            f"over {m['n_queries']} queries")


def _abs_txt(m: Mapping[str, Any]) -> str:
    if not m["n_queries"]:
        return ""
    return f"{m['metric']} {_fmt(m['candidate_mean'])} (candidate) vs {_fmt(m['baseline_mean'])} (baseline)"


def _wtl(m: Mapping[str, Any]) -> str:
    return f"{m['wins']}/{m['ties']}/{m['losses']} W/T/L"


def _floor_txt(m: Mapping[str, Any]) -> str:
    return f"{m['min_gain']:g} (declared min_gain)" if m["min_gain"] > 0 else "0"


def _gain(f: Facts) -> dict[str, Any]:
    """Which of the two tests shows the gain, the target effect for the power judgement (declared
    gain, else the observed positive gain) and why a miss is inconclusive rather than a FAIL."""
    m = f.measurements
    alpha, min_gain, delta, mde = m["alpha"], m["min_gain"], m["mean_delta"], m["mde"]
    p_adj = f.p_adjusted if f.p_adjusted is not None else f.p_value
    ci_ok = np.isfinite(m["ci_low"]) and m["ci_low"] > min_gain
    t_ok = p_adj is not None and p_adj < alpha
    demonstrated = ci_ok and t_ok
    if min_gain > 0:
        target, target_src = min_gain, "declared min_gain"
    elif delta > 0:
        target, target_src = delta, "observed gain (post-hoc)"
    else:
        target, target_src = None, ""
    underpowered = (not demonstrated) and target is not None and (not np.isfinite(mde) or mde > target)
    # the two tests disagree: the CI clears the floor but the (Holm-adjusted) t-test does not,
    # or the reverse; neither a gain nor its absence is shown
    split_tests = (not demonstrated) and (ci_ok != t_ok) and delta > min_gain
    return {"p_adj": p_adj, "ci_ok": ci_ok, "t_ok": t_ok, "demonstrated": demonstrated, "target": target,
            "target_src": target_src, "underpowered": underpowered, "split_tests": split_tests,
            "miss": "WARN" if underpowered or split_tests else "FAIL",
            "agree": (m["signflip_p_value"] < alpha) == (m["t_p_value"] < alpha)}


@condition("min_queries")
def enough_queries(f: Facts) -> Condition | None:
    """WARN (inconclusive) when fewer than min_queries test queries can change their metric."""
    if not _too_few_queries(f):
        return None
    m = f.measurements
    n, n_inf = m["n_queries"], int(m.get("n_informative", m["n_queries"]))
    got = f"{n} queries" if n_inf >= n else f"{n_inf} informative queries"
    return Condition(f"at least {int(f.params['min_queries'])} test queries whose {m['metric']} depends on the "
                     "ordering", "WARN", got, "min_queries (audit.toml [audits.significance]); n >= 2 for any variance")


@condition()
def features_vary(f: Facts) -> Condition | None:
    """WARN (inconclusive) when every test feature is constant within each query."""
    if not _features_flat(f):
        return None
    return Condition("some test feature varies within a query", "WARN",
                     "every feature column is constant inside every test query",
                     "a ranking needs features that differ between a query's candidates")


@condition()
def gain_varies(f: Facts) -> Condition | None:
    """WARN (inconclusive) when the per-query gain is the same non-zero value on every query."""
    if not _gain_constant(f):
        return None
    m = f.measurements
    return Condition("the per-query gain varies across queries (a t-test and a CI need variance)", "WARN",
                     f"Δ = {_fmt(m['mean_delta'])} on every one of {m['n_queries']} queries", "sd(Δ) > 0")


@condition("min_gain")
def ci_above_floor(f: Facts) -> Condition | None:
    """The BCa CI of the mean per-query gain lies above min_gain (else FAIL, WARN when inconclusive)."""
    if _blocked(f):
        return None
    m, g = f.measurements, _gain(f)
    floor = _floor_txt(m)
    return Condition(f"the {m['ci_level']:.0%} CI of the mean per-query gain lies above {floor}",
                     "PASS" if g["ci_ok"] else g["miss"], _ci_txt(m),
                     f"CI lower bound > {floor} (BCa bootstrap, Efron 1987)")


@condition("alpha", "min_gain")
def t_test_shows_gain(f: Facts) -> Condition | None:
    """The one-sided paired t-test rejects after Holm (else FAIL, WARN when inconclusive)."""
    if _blocked(f):
        return None
    m, g = f.measurements, _gain(f)
    p_adj = g["p_adj"]
    return Condition("the paired t-test shows a gain after Holm correction across audits",
                     "PASS" if g["t_ok"] else g["miss"],
                     f"t = {m['t_statistic']:.3f}, p = {m['t_p_value']:.3g}, Holm-adjusted p = "
                     f"{(p_adj if p_adj is not None else float('nan')):.3g}",
                     f"adjusted p < α = {m['alpha']:g} (one-sided; Smucker et al. 2007)")


@condition("alpha")
def signflip_agrees(f: Facts) -> Condition | None:
    """WARN when the sign-flip randomization test and the t-test reach different conclusions."""
    if _blocked(f):
        return None
    m = f.measurements
    return Condition("the sign-flip randomization test agrees with the t-test",
                     "PASS" if _gain(f)["agree"] else "WARN",
                     f"sign-flip p = {m['signflip_p_value']:.3g} (B = {m['signflip_resamples']}), "
                     f"t-test p = {m['t_p_value']:.3g}",
                     f"same conclusion at α = {m['alpha']:g} (Fisher 1935; Smucker et al. 2007)")


@condition("min_gain", "power")
def power_at_target(f: Facts) -> Condition | None:
    """WARN when the test set's MDE exceeds the target gain and the gain is not demonstrated."""
    if _blocked(f):
        return None
    m, g = f.measurements, _gain(f)
    if g["target"] is None:
        return None
    return Condition(f"the test set can detect the {g['target_src']} ({g['target']:.4f}) with "
                     f"{m['mde_power']:.0%} power",
                     "PASS" if g["demonstrated"] or not g["underpowered"] else "WARN",
                     f"MDE {_fmt(m['mde'])} (sd(Δ) {_fmt(m['sd_delta'])}, n = {m['n_queries']})",
                     f"MDE <= {g['target_src']} (paired t-test power; Cohen 1988)")


class SignificanceAudit(Audit):
    """Paired per-query comparison of candidate and baseline (see the module docstring)."""

    name = "significance"
    title = "Significance of the gain over the baseline"
    question = ("Is the candidate's gain over its baseline real -- larger than zero (or the declared minimum "
                "meaningful gain) beyond the query-to-query noise -- and does the test set have enough queries "
                "to show a gain of that size?")
    method = ParamText("Candidate and baseline are scored on the same test queries (baseline model fitted with the same "
              "seed, or --baseline-run scores); per-query differences d = candidate - baseline of the suite metric. "
              "Primary: one-sided paired t-test of mean d > min_gain (Holm-adjusted across audits). Beside it: "
              "sign-flip randomization test (B = {n_signflip:,}), BCa bootstrap {ci_level:.0%} CI of mean d (B = {n_bootstrap:,}, queries "
              "resampled), effect size d_z = mean(d)/sd(d), wins/ties/losses, power of the paired t-test and "
              "the minimum detectable effect at {power:.0%} power. PASS only when the CI's lower bound > min_gain and "
              "the adjusted p < alpha; otherwise FAIL (no demonstrated gain) when the test set had the power to "
              "show the declared gain (or the observed gain is <= 0), INCONCLUSIVE when it did not (MDE stated).")
    citations = [
        "Smucker, Allan & Carterette (2007). A comparison of statistical significance tests for information "
        "retrieval evaluation. CIKM.",
        "Urbano, Lima & Hanjalic (2019). Statistical significance testing in information retrieval: an "
        "empirical analysis of type I, type II and type III errors. SIGIR.",
        "Efron (1987). Better bootstrap confidence intervals. JASA 82(397).",
        "Fisher (1935). The Design of Experiments (randomization test).",
        "Phipson & Smyth (2010). Permutation p-values should never be zero. SAGMB 9(1).",
        "Cohen (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed.",
        "Lakens (2013). Calculating and reporting effect sizes ... t-tests and ANOVAs. Front. Psychol. 4:863.",
        "Sakai (2016). Statistical significance, power, and sample sizes: a systematic review of SIGIR and "
        "TOIS, 2006-2015. SIGIR.",
        "Holm (1979). A simple sequentially rejective multiple test procedure. Scand. J. Stat. 6(2).",
    ]
    blind_spots = [
        "It compares the two models on this test set only: a test set that leaks (see the isolation and "
        "random-label audits) can make a spurious gain significant.",
        "Queries are treated as a random sample of the queries that matter; a gain on an unrepresentative "
        "test set does not transfer.",
        "Power is that of the paired t-test; post-hoc power at the observed gain is shown for orientation only "
        "-- declare min_gain to judge power against the gain that matters.",
        "With n_seeds = 1 the candidate's training-seed variance is not in the comparison; use n_seeds > 1 or "
        "the stability audit to see it.",
    ]
    critical = True
    gating = True
    defaults = declare(
        n_seeds=param(int, 1, min=1, help="model seeds 0..n_seeds-1; per-query metric averaged over seeds"),
        n_signflip=param(int, 10_000, min=1, quick=2000, help="sign-flip randomization resamples"),
        n_bootstrap=param(int, 10_000, min=1, quick=2000, help="BCa bootstrap resamples"),
        ci_level=param(float, 0.95, min=0, max=1, min_open=True, max_open=True,
                       help="level of the CI of the mean gain"),
        power=param(float, 0.8, min=0, max=1, min_open=True, max_open=True,
                    help="power for the minimum detectable effect"),
        min_queries=param(int, 10, min=1, help="fewer usable query pairs: INCONCLUSIVE"),
    )

    # ------------------------------------------------------------------ plan / run
    def skip_reason(self, ctx: Any) -> str | None:
        if ctx.baseline is None and ctx.baseline_scores is None:
            return ("No baseline was given (--baseline MODEL or --baseline-run FILE), so there is no gain to test; "
                    "a gain claimed without a baseline comparison cannot be checked.")
        return None

    def _params(self, ctx: Any) -> dict[str, Any]:
        p = ctx.params(self)
        for k in ("n_seeds", "n_signflip", "n_bootstrap", "min_queries"):
            if int(p[k]) < 1:
                raise ConfigError(f"[audits.significance] {k} must be >= 1, got {p[k]}.")
        if not 0 < float(p["ci_level"]) < 1 or not 0 < float(p["power"]) < 1:
            raise ConfigError("[audits.significance] ci_level and power must be in (0, 1).")
        return p

    def plan(self, ctx: Any) -> list[Trial]:
        p = self._params(ctx)
        return [Trial(self.name, f"seed{s}", {"seed": s}) for s in range(int(p["n_seeds"]))]

    def run_trial(self, ctx: Any, trial: Trial) -> dict[str, Any]:
        seed = int(trial.params["seed"])
        cand = ctx.fit(seed)  # cached: the model trained normally, shared with other audits
        m_c = ctx.metric_values(ctx.test, ctx.score(cand, ctx.test))
        m_b, source = baseline_metric_values(ctx, seed)
        return jsonable({"seed": seed, "candidate": m_c, "baseline": m_b, "baseline_source": source})

    # ------------------------------------------------------------------ measure
    def measure(self, ctx: Any, results: Mapping[str, dict[str, Any]]) -> Evidence:
        p = self._params(ctx)
        alpha = float(ctx.config.alpha)
        min_gain = float(ctx.config.min_gain)
        keys = sorted(results, key=lambda k: results[k]["seed"])
        C = np.array([[np.nan if v is None else v for v in results[k]["candidate"]] for k in keys], dtype=float)
        Bm = np.array([[np.nan if v is None else v for v in results[k]["baseline"]] for k in keys], dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN queries: nanmean warns, gives NaN
            c = np.nanmean(C, axis=0) if C.shape[0] > 1 else C[0]
            b = np.nanmean(Bm, axis=0) if Bm.shape[0] > 1 else Bm[0]
        d_all = c - b
        ok = np.isfinite(d_all)
        d = d_all[ok]
        n = int(d.size)
        n_total = int(d_all.size)
        seed_t = derive_seed(ctx.seed, self.name, "signflip")
        seed_b = derive_seed(ctx.seed, self.name, "bootstrap")
        level = float(p["ci_level"])
        mean_c = float(np.mean(c[ok])) if n else float("nan")
        mean_b = float(np.mean(b[ok])) if n else float("nan")
        delta = float(d.mean()) if n else float("nan")
        t = paired_t_test(d, alternative="greater", mu=min_gain)
        sf = sign_flip_test(d - min_gain, n_resamples=int(p["n_signflip"]), alternative="greater",
                            seed=seed_t % (2**63))
        ci = bootstrap_ci(d, n_resamples=int(p["n_bootstrap"]), level=level, method="bca", seed=seed_b,
                          return_distribution=True)
        sd = float(d.std(ddof=1)) if n >= 2 else float("nan")
        dz = effect_size_dz(d)
        w, ti, lo = win_tie_loss(d)
        # the same difference on every query, up to float noise (a sd of 1e-17 gives d_z ~ 1e16 and a
        # t-test p of 1e-175: no evidence about queries beyond these)
        flat = bool(n >= 2 and float(np.ptp(d)) <= 1e-12 * max(1.0, float(np.max(np.abs(d)))))
        if flat:
            mde = 0.0  # identical differences on every query: any gain is detectable
        else:
            mde = mde_paired(sd, n, alpha=alpha, power=float(p["power"]))
        power_obs = power_paired(delta, sd, n, alpha=alpha) if n >= 2 and delta > 0 else float("nan")
        power_min = power_paired(min_gain, sd, n, alpha=alpha) if n >= 2 and min_gain > 0 else float("nan")
        per_seed = [float(np.nanmean(C[i] - Bm[i])) if np.isfinite(C[i] - Bm[i]).any() else float("nan")
                    for i in range(C.shape[0])]
        # queries whose metric cannot change with the ordering (one candidate, all labels equal)
        # give d = 0 whatever the two models do: they carry no evidence about a gain
        informative = informative_queries(ctx.metric, ctx.test.labels, ctx.test.query_offsets,
                                          gain=ctx.config.gain, no_relevant=ctx.config.no_relevant)
        n_informative = int(np.sum(informative[ok])) if informative.shape == ok.shape else n
        # no feature varies inside any query (e.g. all zero): no model can order the candidates
        flat_features = bool(n and np.all(constant_within_queries(ctx.test.feature_matrix(), ctx.test.query_offsets)))
        target = min_gain if min_gain > 0 else (delta if n and delta > 0 else float("nan"))
        need = queries_needed(target, sd, alpha=alpha, power=float(p["power"])) if n >= 2 else None
        m = {
            "metric": ctx.metric, "n_queries": n, "n_excluded": n_total - n, "n_seeds": len(keys),
            "baseline_source": results[keys[0]]["baseline_source"] if keys else None,
            "candidate_mean": mean_c, "baseline_mean": mean_b, "mean_delta": delta,
            "sd_delta": sd, "ci_low": ci.low, "ci_high": ci.high, "ci_level": level,
            "ci_method": ci.method, "t_statistic": t.statistic, "t_p_value": t.p_value,
            "signflip_p_value": sf.p_value, "signflip_resamples": int(p["n_signflip"]),
            "d_z": dz, "wins": w, "ties": ti, "losses": lo, "min_gain": min_gain, "alpha": alpha,
            "mde": mde, "mde_power": float(p["power"]), "power_at_observed": power_obs,
            "power_at_min_gain": power_min, "per_seed_mean_delta": per_seed,
            "n_informative": n_informative, "sd_is_zero": flat, "features_constant_within_queries": flat_features,
            # queries at which the t-test reaches mde_power at min_gain (else the observed gain),
            # with this test set's sd(d): the number that would decide an underpowered comparison
            "queries_needed": need,
        }
        plots = []
        dist = ci.extra.get("distribution") if ci.extra else None
        if dist is not None and n >= 2:
            markers = [{"label": f"mean Δ {_fmt(delta)}", "x": delta},
                       {"label": f"{level:.0%} CI low", "x": ci.low}, {"label": f"{level:.0%} CI high", "x": ci.high},
                       {"label": "0 (no gain)", "x": 0.0}]
            if min_gain > 0:
                markers.append({"label": f"min_gain {min_gain:g}", "x": min_gain})
            plots.append(plot_hist(f"Bootstrap distribution of mean Δ{ctx.metric} (candidate − baseline)", dist,
                                   xlabel=f"mean Δ {ctx.metric}", markers=markers))
        plots.append(plot_bars(f"Per-query outcome on {ctx.metric} ({n} queries)", ["wins", "ties", "losses"],
                               [w, ti, lo], ylabel="queries"))
        if n >= 2 and np.isfinite(sd) and sd > 0:
            top = max(2 * (mde if np.isfinite(mde) else 0), 1.5 * abs(delta), 1.5 * min_gain, 1e-6)
            xs = np.linspace(0, top, 41)
            ys = [power_paired(float(x), sd, n, alpha=alpha) for x in xs]
            series = [{"label": "power of the paired t-test", "x": xs, "y": ys}]
            if np.isfinite(mde):
                series.append({"label": f"MDE {mde:.4f}", "x": [mde, mde], "y": [0, 1]})
            if delta > 0:
                series.append({"label": f"observed Δ {delta:.4f}", "x": [delta, delta], "y": [0, 1]})
            if min_gain > 0:
                series.append({"label": f"min_gain {min_gain:g}", "x": [min_gain, min_gain], "y": [0, 1]})
            plots.append(plot_lines(f"Power vs true gain ({n} queries, sd(Δ) = {sd:.4f}, α = {alpha:g})", series,
                                    xlabel=f"true mean Δ {ctx.metric}", ylabel="power",
                                    hlines=[{"label": f"{float(p['power']):.0%} power", "y": float(p["power"])}]))
        notes = []
        if n_total - n:
            notes.append(f"{n_total - n} of {n_total} test queries have an undefined {ctx.metric} (no relevant item) "
                         f"and are excluded (policy no_relevant={ctx.config.no_relevant!r}).")
        if len(keys) > 1:
            notes.append(f"Per-query metrics averaged over {len(keys)} model seeds; per-seed mean Δ: "
                         + ", ".join(_fmt(x) for x in per_seed) + ".")
        if m["baseline_source"] == "run":
            notes.append("Baseline scores come from --baseline-run (a fixed run file): its training variance is not "
                         "part of the comparison.")
        return Evidence(measurements=m, p_value=float(t.p_value) if n >= 2 else None,
                        null_hypothesis=(f"the candidate's mean per-query gain in {ctx.metric} over the baseline is "
                                         f"<= {min_gain:g} (no real gain); one-sided paired t-test"),
                        plots=plots, notes=notes)

    # ------------------------------------------------------------------ decide
    conditions = (enough_queries, features_vary, gain_varies, ci_above_floor, t_test_shows_gain, signflip_agrees,
                  power_at_target)

    def _cannot_compare(self, f: Facts, found: Mapping[str, Condition]) -> Decision | None:
        """INCONCLUSIVE when the test set cannot carry the comparison, saying why and what would (None otherwise)."""
        m = f.measurements
        conditions = list(found.values())
        min_gain, metric = m["min_gain"], m["metric"]
        n, delta = m["n_queries"], m["mean_delta"]
        min_q = int(f.params["min_queries"])
        ci_txt = _ci_txt(m)
        if "enough_queries" in found:
            need = m.get("queries_needed")
            n_inf = int(m.get("n_informative", n))
            if n_inf >= n:
                why = f"only {n} test quer{'y has' if n == 1 else 'ies have'} a defined {metric}"
                if m.get("n_excluded"):
                    why += f" ({m['n_excluded']} of {n + m['n_excluded']} have no relevant item)"
            else:
                why = (f"only {n_inf} of the {n} test queries can change their {metric} with the ordering (the others "
                       "have one candidate or equal labels, so Δ = 0 there whatever the models do)")
            want = max(min_q, need or 0)
            summary = (f"Inconclusive: {why}, too few to test a gain"
                       + (f" ({ci_txt}; a single query gives no variance, so its CI has no width and is no "
                          "evidence)" if n == 1 else f" ({ci_txt})" if n_inf >= 2 and not m.get("sd_is_zero") else "")
                       + f". About {want} informative test queries would decide it"
                       + (f" (the paired t-test reaches {m['mde_power']:.0%} power at a gain of "
                          f"{(min_gain if min_gain > 0 else delta):.4f} with {need})" if need else "") + ".")
            return Decision(conditions, summary, [f"Evaluate on at least {want} test queries with graded labels and "
                                                  "several candidates each before claiming a gain."],
                            status="WARN", inconclusive=True)
        if "features_vary" in found:
            return Decision(conditions, (f"Inconclusive: every test feature is constant within each query (for example "
                                         f"all zero), so neither model can order the candidates ({_abs_txt(m)}): the "
                                         "comparison says nothing about a gain."),
                            ["Check how the test features were exported (all-zero or constant columns usually mean a "
                             "failed join or a wrong column mapping)."], status="WARN", inconclusive=True)
        if "gain_varies" in found:
            return Decision(conditions, (f"Inconclusive: Δ{metric} is exactly {_fmt(delta)} on all {n} queries "
                                         f"({_wtl(m)}): with zero variance neither the t-test nor a confidence interval "
                                         "says anything about queries beyond these, and a zero-width CI is no "
                                         "evidence."),
                            ["Check the scores: identical per-query differences usually mean a degenerate test set "
                             "or a constant offset between the two runs.",
                             f"Evaluate on a test set whose queries differ (at least {min_q})."],
                            status="WARN", inconclusive=True)
        return None

    def decide(self, ctx: Any, evidence: Evidence, p_adjusted: float | None) -> Decision:
        f = Facts.of(ctx, evidence, p_adjusted, self._params(ctx))
        found = judge(self.conditions, f)
        blocked = self._cannot_compare(f, found)
        if blocked is not None:
            return blocked
        m = f.measurements
        conditions = list(found.values())
        min_gain, metric = m["min_gain"], m["metric"]
        n, delta, mde = m["n_queries"], m["mean_delta"], m["mde"]
        lvl = f"{m['ci_level']:.0%}"
        ci_txt, abs_txt, wtl = _ci_txt(m), _abs_txt(m), _wtl(m)
        floor = _floor_txt(m)
        mde_txt = _fmt(mde)
        need = m.get("queries_needed")
        g = _gain(f)
        p_adj, target, target_src = g["p_adj"], g["target"], g["target_src"]
        p_txt = f"{(p_adj if p_adj is not None else float('nan')):.3g}"
        if g["demonstrated"]:
            summary = (f"The candidate beats the baseline on {metric} ({abs_txt}): the gain is at least "
                       f"{_fmt(m['ci_low'])} ({lvl} lower bound) > {floor}; {ci_txt} (t-test adjusted p = {p_adj:.3g}, "
                       f"d_z = {_fmt(m['d_z'], 2)}, {wtl}; MDE at {m['mde_power']:.0%} power {mde_txt}).")
            steps = [] if g["agree"] else ["The randomization test disagrees with the t-test: inspect the per-query "
                                           "differences for outliers before quoting the p-value."]
            return Decision(conditions, summary, steps)
        more = (f" About {need} test queries (now {n}) would give {m['mde_power']:.0%} power at "
                f"{target:.4f}." if need and target else "")
        if g["split_tests"]:
            which = ("the CI lies above " + floor + f" but the Holm-adjusted t-test does not reject (p = {p_txt})"
                     if g["ci_ok"] else f"the t-test rejects (adjusted p = {p_txt}) but the CI reaches down to "
                     f"{_fmt(m['ci_low'])} <= {floor}")
            summary = f"Inconclusive: the gain is not demonstrated -- {which}; {ci_txt} ({abs_txt}).{more}"
            return Decision(conditions, summary,
                            ["More queries would settle it; meanwhile do not quote the gain as significant."],
                            status="WARN", inconclusive=True)
        if g["underpowered"]:
            summary = (f"Inconclusive: no demonstrated gain ({ci_txt}; {abs_txt}), but with {n} queries the smallest "
                       f"gain this test set can detect at {m['mde_power']:.0%} power is {mde_txt} > the {target_src} "
                       f"{target:.4f}.{more}")
            steps = [f"Evaluate on more queries: about {need} would bring the MDE down to {target:.4f}." if need else
                     "Evaluate on more queries.",
                     "Declare the smallest gain that matters (--min-gain / min_gain in audit.toml) so power is judged "
                     "against it rather than against the observed gain."]
            return Decision(conditions, summary, steps, status="WARN", inconclusive=True)
        if m["ties"] == n:
            why = (f"candidate and baseline have the same {metric} on every one of the {n} queries, so no query shows "
                   "a gain")
        elif delta <= min_gain:
            why = ("the candidate is not better on average" + (" than the declared min_gain" if min_gain > 0 else "")
                   + f"; the gain is at most {_fmt(m['ci_high'])} ({lvl} upper bound)")
        else:
            why = "the gain is within the query-to-query noise"
        if target is not None and np.isfinite(mde):
            power_txt = (f"; a true gain of {target:.4f} ({target_src}) would have shown with at least "
                         f"{m['mde_power']:.0%} power (MDE {mde_txt})")
        elif np.isfinite(mde):
            power_txt = f"; a true gain of {mde_txt} or more would have shown with {m['mde_power']:.0%} power (MDE)"
        else:
            power_txt = ""
        summary = (f"No demonstrated gain on {metric} ({abs_txt}): {ci_txt} ({why}; t-test adjusted p = {p_txt}, "
                   f"{wtl}){power_txt}.")
        steps = ["Do not report the gain: on these queries the candidate is not shown to beat the baseline.",
                 "Check that the baseline is the right one and was trained as carefully as the candidate."]
        return Decision(conditions, summary, steps)
