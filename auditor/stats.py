"""Paired statistics for per-query metric arrays.

Every function takes per-query arrays (ranx style) and returns numbers that state their null
hypothesis and method. Conventions:

- ``d = x - y`` are paired per-query differences (candidate minus baseline).
- ``alternative`` is ``"two-sided"``, ``"greater"`` (mean d > 0) or ``"less"``.
- Randomization p-values are ``(b + 1) / (B + 1)`` (never 0; Phipson & Smyth 2010).
- All resampling is seeded (``seed``) and chunked so memory stays bounded.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats as _st

__all__ = [
    "TestResult", "ConfidenceInterval", "paired_t_test", "sign_flip_test", "bootstrap_ci",
    "wilcoxon_test", "effect_size_dz", "win_tie_loss", "holm", "benjamini_hochberg",
    "power_paired", "mde_paired", "tost_paired", "clean_pairs",
]

Alternative = Literal["two-sided", "greater", "less"]


@dataclass(frozen=True)
class TestResult:
    """Outcome of a hypothesis test.

    Attributes
    ----------
    statistic : float
    p_value : float
    method : str
        E.g. ``"paired t-test"``, ``"sign-flip randomization (B=10000)"``.
    null : str
        The null hypothesis in words.
    alternative : str
    n : int
        Number of pairs used.
    extra : dict
        Method-specific values (``df``, ``n_resamples`` ...).
    """

    __test__ = False  # not a pytest class

    statistic: float
    p_value: float
    method: str
    null: str
    alternative: str
    n: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ConfidenceInterval:
    """``estimate`` with a ``level`` interval ``[low, high]`` from ``method``."""

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clean_pairs(x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Differences ``x - y`` with pairs containing NaN dropped (undefined queries), shape (m,)."""
    x = np.asarray(x, dtype=np.float64)
    d = x if y is None else x - np.asarray(y, dtype=np.float64)
    return d[np.isfinite(d)]


def _p_from_t(t: float, df: float, alternative: str) -> float:
    if alternative == "two-sided":
        return float(2 * _st.t.sf(abs(t), df))
    if alternative == "greater":
        return float(_st.t.sf(t, df))
    if alternative == "less":
        return float(_st.t.cdf(t, df))
    raise ValueError(f"alternative must be two-sided, greater or less, got {alternative!r}")


def paired_t_test(x: np.ndarray, y: np.ndarray | None = None, *, alternative: Alternative = "two-sided",
                  mu: float = 0.0) -> TestResult:
    """Paired t-test of mean(x - y) = mu (the primary test; Student 1908, as in Smucker et al. 2007)."""
    d = clean_pairs(x, y) - mu
    n = d.size
    if n < 2:
        return TestResult(float("nan"), 1.0, "paired t-test", f"mean difference = {mu}", alternative, n)
    sd = d.std(ddof=1)
    if sd == 0:
        t = 0.0 if d.mean() == 0 else np.sign(d.mean()) * np.inf
    else:
        t = d.mean() / (sd / np.sqrt(n))
    p = _p_from_t(t, n - 1, alternative) if np.isfinite(t) else (
        0.0 if (alternative == "two-sided" or (alternative == "greater") == (t > 0)) else 1.0)
    return TestResult(float(t), float(p), "paired t-test", f"mean difference = {mu}", alternative, n,
                      {"df": n - 1})


def sign_flip_test(d: np.ndarray, *, n_resamples: int = 10_000, alternative: Alternative = "two-sided",
                   seed: int = 0, chunk: int | None = None, return_null: bool = False) -> TestResult:
    """Sign-flip randomization test of mean(d) = 0 (Fisher's paired randomization test).

    Under H0 each query's difference is symmetric about 0, so flipping signs at random gives
    the null distribution of the mean. p = (b + 1) / (B + 1).
    """
    d = clean_pairs(d)
    n = d.size
    B = int(n_resamples)
    obs = float(d.mean()) if n else 0.0
    rng = np.random.default_rng(seed)
    if chunk is None:
        chunk = max(1, min(B, (32 * 2**20) // max(n, 1)))  # ~256 MB of float64 at most
    nulls = np.empty(B)
    for s in range(0, B, chunk):
        m = min(chunk, B - s)
        signs = rng.integers(0, 2, size=(m, n), dtype=np.int8) * 2 - 1
        nulls[s:s + m] = (signs @ d) / max(n, 1)
    tol = 1e-12 * max(1.0, abs(obs))
    if alternative == "two-sided":
        b = int(np.sum(np.abs(nulls) >= abs(obs) - tol))
    elif alternative == "greater":
        b = int(np.sum(nulls >= obs - tol))
    else:
        b = int(np.sum(nulls <= obs + tol))
    extra: dict[str, Any] = {"n_resamples": B, "seed": seed}
    if return_null:
        extra["null"] = nulls
    return TestResult(obs, (b + 1) / (B + 1), f"sign-flip randomization (B={B})",
                      "per-query differences are symmetric about 0", alternative, n, extra)


def bootstrap_ci(x: np.ndarray, *, n_resamples: int = 10_000, level: float = 0.95,
                 method: Literal["bca", "percentile"] = "bca", seed: int = 0,
                 return_distribution: bool = False) -> ConfidenceInterval:
    """Bootstrap CI of the mean of ``x`` (queries resampled with replacement).

    BCa uses the closed-form jackknife for the mean (Efron 1987).
    """
    x = clean_pairs(x)
    n = x.size
    est = float(x.mean()) if n else float("nan")
    if n < 2:
        return ConfidenceInterval(est, est, est, level, method, n)
    rng = np.random.default_rng(seed)
    B = int(n_resamples)
    chunk = max(1, min(B, (32 * 2**20) // n))
    boots = np.empty(B)
    for s in range(0, B, chunk):
        m = min(chunk, B - s)
        idx = rng.integers(0, n, size=(m, n))
        boots[s:s + m] = x[idx].mean(axis=1)
    a_lo, a_hi = (1 - level) / 2, 1 - (1 - level) / 2
    if method == "percentile":
        lo, hi = np.quantile(boots, [a_lo, a_hi])
    elif method == "bca":
        prop = np.mean(boots < est) + 0.5 * np.mean(boots == est)
        prop = min(max(prop, 1.0 / (B + 1)), B / (B + 1))
        z0 = _st.norm.ppf(prop)
        # jackknife of the mean in closed form: theta_(i) = (n*mean - x_i) / (n - 1)
        jack = (n * est - x) / (n - 1)
        u = jack.mean() - jack
        den = 6.0 * (np.sum(u ** 2) ** 1.5)
        acc = float(np.sum(u ** 3) / den) if den > 0 else 0.0
        za = _st.norm.ppf([a_lo, a_hi])
        adj = _st.norm.cdf(z0 + (z0 + za) / (1 - acc * (z0 + za)))
        lo, hi = np.quantile(boots, adj)
    else:
        raise ValueError(f"method must be 'bca' or 'percentile', got {method!r}")
    extra: dict[str, Any] = {"n_resamples": B, "seed": seed}
    if return_distribution:
        extra["distribution"] = boots
    return ConfidenceInterval(est, float(lo), float(hi), level, f"{method} bootstrap (B={B})", n, extra)


def wilcoxon_test(d: np.ndarray, *, alternative: Alternative = "two-sided") -> TestResult:
    """Wilcoxon signed-rank test (secondary only: it tests a location shift, not the mean)."""
    d = clean_pairs(d)
    if d.size < 1 or np.all(d == 0):
        return TestResult(float("nan"), 1.0, "Wilcoxon signed-rank", "median difference = 0", alternative, d.size)
    r = _st.wilcoxon(d, alternative=alternative, zero_method="wilcox")
    return TestResult(float(r.statistic), float(r.pvalue), "Wilcoxon signed-rank", "median difference = 0",
                      alternative, int(d.size))


def effect_size_dz(d: np.ndarray) -> float:
    """Cohen's d_z = mean(d) / sd(d) for paired differences (NaN when sd is 0)."""
    d = clean_pairs(d)
    if d.size < 2:
        return float("nan")
    sd = d.std(ddof=1)
    return float(d.mean() / sd) if sd > 0 else float("nan")


def win_tie_loss(d: np.ndarray, *, tol: float = 1e-12) -> tuple[int, int, int]:
    """Queries where the candidate wins (d > tol), ties, loses."""
    d = clean_pairs(d)
    return int(np.sum(d > tol)), int(np.sum(np.abs(d) <= tol)), int(np.sum(d < -tol))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (statsmodels ``multipletests(method="holm")``)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return p
    return multipletests(p, method="holm")[1]


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (``multipletests(method="fdr_bh")``)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return p
    return multipletests(p, method="fdr_bh")[1]


def power_paired(effect: float, sd: float, n: int, *, alpha: float = 0.05,
                 alternative: Alternative = "greater") -> float:
    """Power of the paired t-test to detect a mean difference ``effect`` given the sd of differences."""
    from statsmodels.stats.power import TTestPower

    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    alt = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
    return float(TTestPower().power(effect_size=effect / sd, nobs=n, alpha=alpha, alternative=alt))


def mde_paired(sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8,
               alternative: Alternative = "greater") -> float:
    """Minimum detectable mean difference (metric units) at ``power`` for the paired t-test."""
    from statsmodels.stats.power import TTestPower

    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    alt = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
    es = TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power, alternative=alt)
    return float(es * sd)


def tost_paired(d: np.ndarray, margin: float, *, alpha: float = 0.05) -> TestResult:
    """Two one-sided tests (Schuirmann 1987): H0 |mean d| >= margin. Small p => equivalent."""
    d = clean_pairs(d)
    n = d.size
    if n < 2:
        return TestResult(float("nan"), 1.0, "TOST (paired t)", f"|mean difference| >= {margin}", "equivalence", n)
    se = d.std(ddof=1) / np.sqrt(n)
    m = d.mean()
    if se == 0:
        p = 0.0 if abs(m) < margin else 1.0
        return TestResult(float("nan"), p, "TOST (paired t)", f"|mean difference| >= {margin}", "equivalence", n,
                          {"margin": margin})
    t_lo = (m + margin) / se
    t_hi = (m - margin) / se
    p = max(_st.t.sf(t_lo, n - 1), _st.t.cdf(t_hi, n - 1))
    return TestResult(float(min(abs(t_lo), abs(t_hi))), float(p), "TOST (paired t)",
                      f"|mean difference| >= {margin}", "equivalence", n, {"margin": margin})
