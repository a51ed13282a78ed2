"""What every audit is: plan trials, run each, measure, then let named conditions decide.

An audit never runs anything itself. The runner asks it for a *plan* (a list of
:class:`Trial`), runs each trial anywhere (in this process, a process pool or Ray) through
:meth:`Audit.run_trial`, commits each result to the run store, and then calls
:meth:`Audit.measure` on the finished trial results (a pure function of them). Measuring
yields :class:`Evidence` whose hypothesis tests are named :class:`SubTest` s, each with its
raw p and whether it gates; :func:`adjust_p_values` Holm-adjusts every gating sub-test of the
suite at once and hands each its adjusted p, and :func:`conclude` lets the audit decide on
that (:meth:`Audit.decide` reads adjusted p-values, it never computes one). :func:`run_inline`
is the same path for one audit in this process; :func:`skipped` and :func:`errored` build the
result of an audit that has nothing to decide.

Trials are deterministic functions of ``(config, seed, trial.params)`` and their results are
JSON-serialisable dicts, which is what makes ``--resume`` and the executors interchangeable.

Evidence for the report is data, not pictures: :class:`Evidence` carries ``plots`` as plain
dicts built by :func:`plot_lines`, :func:`plot_hist`, :func:`plot_intervals`,
:func:`plot_bars` and :func:`plot_table`; ``reports/`` draws them.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from auditor.config import Params, ParamText
from auditor.errors import ModelFailure, ModelNotRefittable  # re-exported: audits catch them from here
from auditor.stats import holm

__all__ = [
    "Trial", "Condition", "SubTest", "Evidence", "Decision", "AuditResult", "Audit", "ModelFailure",
    "ModelNotRefittable", "STATUSES", "worst_status", "jsonable",
    "plot_lines", "plot_hist", "plot_intervals", "plot_bars", "plot_table",
    "run_inline", "adjust_p_values", "conclude", "skipped", "errored",
    "Facts", "ConditionCheck", "condition", "judge",
]

STATUSES = ("PASS", "WARN", "FAIL", "ERROR", "SKIP")
_RANK = {"SKIP": 0, "PASS": 1, "WARN": 2, "FAIL": 3, "ERROR": 4}


def worst_status(statuses: Sequence[str]) -> str:
    """Most severe of PASS < WARN < FAIL (ERROR above all); PASS for an empty list."""
    return max(statuses, key=lambda s: _RANK[s]) if statuses else "PASS"


def jsonable(obj: Any) -> Any:
    """Convert numpy scalars / arrays (recursively) into JSON-safe Python values.

    Non-finite floats become ``None`` (JSON has no NaN), so consumers never parse ``NaN``.
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (str, int)) or obj is None:
        return obj
    if hasattr(obj, "to_dict"):
        return jsonable(obj.to_dict())
    return str(obj)


@dataclass(frozen=True)
class Trial:
    """One unit of work: ``(audit, key)`` is unique within a run; ``params`` are JSON-able.

    ``resources`` may ask the executor for e.g. ``{"num_gpus": 1}``.
    """

    audit: str
    key: str
    params: Mapping[str, Any] = field(default_factory=dict)
    resources: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.audit}/{self.key}"


@dataclass
class Condition:
    """A named rule and what it found.

    Parameters
    ----------
    name : str
        The rule as a sentence that is true when it passes, e.g.
        ``"held-out nDCG@10 under random labels is not above chance"``.
    status : {"PASS", "WARN", "FAIL"}
    observed : str
        The measured value(s), formatted with their uncertainty.
    threshold : str
        The limit and its source ("Holm-adjusted p < 0.05", "AUC >= 0.625 (Lopez-Paz & Oquab 2017)").
    """

    name: str
    status: str
    observed: str = ""
    threshold: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Facts:
    """What a condition judges: one audit's measurements and the thresholds that apply to them.

    Parameters
    ----------
    measurements : mapping
        :attr:`Evidence.measurements`.
    params : mapping
        The audit's parameters for this run (``ctx.params(audit)``): the thresholds.
    alpha : float
        The suite's significance level.
    p_value, p_adjusted : float or None
        The raw gating p-value and its Holm-adjusted value (``p_adjusted`` is None when the
        caller gave none).
    metric : str
        The suite metric, for the texts.
    """

    measurements: Mapping[str, Any]
    params: Mapping[str, Any]
    alpha: float
    p_value: float | None = None
    p_adjusted: float | None = None
    metric: str = ""

    @classmethod
    def of(cls, ctx: "AuditContext", evidence: "Evidence", p_adjusted: float | None,  # noqa: F821
           params: Mapping[str, Any]) -> "Facts":
        """The facts of one :meth:`Audit.decide` call."""
        return cls(evidence.measurements, params, float(ctx.config.alpha), evidence.p_value, p_adjusted, ctx.metric)


#: A condition: a small named function of the facts; None when it does not apply to them (a
#: column the data lacks, a precondition that holds).
ConditionCheck = Callable[[Facts], "Condition | None"]


def condition(*thresholds: str) -> Callable[[ConditionCheck], ConditionCheck]:
    """Mark a function as a condition and name the audit parameters it compares with
    (``"alpha"`` for the suite's level); :attr:`Audit.conditions` lists them."""
    def mark(fn: ConditionCheck) -> ConditionCheck:
        fn.thresholds = tuple(thresholds)  # type: ignore[attr-defined]
        return fn
    return mark


def judge(checks: Sequence[ConditionCheck], facts: Facts) -> dict[str, Condition]:
    """Apply ``checks`` in order: ``{function name: Condition}`` for those that apply."""
    out: dict[str, Condition] = {}
    for check in checks:
        c = check(facts)
        if c is not None:
            out[check.__name__] = c
    return out


@dataclass
class SubTest:
    """One hypothesis test inside an audit's evidence (H0 = "no defect").

    Parameters
    ----------
    name : str
        Unique within the audit, e.g. ``"variant_b"``.
    p_value : float or None
        The raw p-value; ``None`` when the test could not be computed.
    gates : bool, default True
        True: the test can decide the audit, and joins the suite's Holm correction when the
        audit's ``gating`` is set. False: reported only, never adjusted.
    null_hypothesis : str
        What ``p_value`` tests, in words.
    p_adjusted : float or None
        Set by :func:`adjust_p_values`, never by the audit: Holm-adjusted across the suite for
        a test that joins the correction, the raw p for a gating test of an audit that does not
        join it, ``None`` for a test that does not gate (and before adjustment).
    """

    name: str
    p_value: float | None
    gates: bool = True
    null_hypothesis: str = ""
    p_adjusted: float | None = None


#: the name of the one sub-test of an audit that passes only ``Evidence(p_value=...)``
ONLY_TEST = "p_value"


@dataclass
class Evidence:
    """What :meth:`Audit.measure` returns.

    Parameters
    ----------
    measurements : dict
        Named numbers (JSON-able): estimates with CIs, counts, rates.
    p_value : float or None
        The audit's raw gating p-value: the smallest raw p of its gating sub-tests (``None``
        when none has one, e.g. a decision that is not a hypothesis test). An audit with a
        single test may pass just this; it becomes the one sub-test, named ``"p_value"``.
    null_hypothesis : str
        What ``p_value`` tests, in words.
    plots : list of dict
        Plot specs from the ``plot_*`` helpers.
    notes : list of str
        Caveats worth showing (excluded queries, reduced repeats in ``--quick`` ...).
    tests : list of SubTest
        The audit's hypothesis tests, gating and reported, each with its raw p;
        :func:`adjust_p_values` fills in their adjusted p-values.
    """

    measurements: dict[str, Any]
    p_value: float | None = None
    null_hypothesis: str = ""
    plots: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tests: list[SubTest] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.tests:
            if self.p_value is not None:
                self.tests = [SubTest(ONLY_TEST, self.p_value, null_hypothesis=self.null_hypothesis)]
            return
        names = [t.name for t in self.tests]
        if len(set(names)) < len(names):
            raise ValueError(f"Evidence: sub-test names must be unique, got {names}.")
        p = _smallest([t.p_value for t in self.gating_tests])
        if self.p_value is None:
            self.p_value = p
        elif not _same(self.p_value, p):
            raise ValueError(f"Evidence: p_value {self.p_value!r} is not the smallest p of its gating sub-tests "
                             f"({p!r}); pass the sub-tests only.")

    @property
    def gating_tests(self) -> list[SubTest]:
        """The sub-tests that can decide the audit and have a p-value."""
        return [t for t in self.tests if t.gates and t.p_value is not None]

    @property
    def p_adjusted(self) -> float | None:
        """The audit's adjusted gating p: the smallest adjusted p of its gating sub-tests."""
        return _smallest([t.p_adjusted for t in self.gating_tests])

    def test(self, name: str) -> SubTest:
        """The sub-test called ``name``; KeyError naming the ones there are."""
        for t in self.tests:
            if t.name == name:
                return t
        raise KeyError(f"no sub-test {name!r} in this evidence; it has {[t.name for t in self.tests]}")


def _smallest(ps: Sequence[float | None]) -> float | None:
    """The smallest p, NaN only when every p is NaN; None for none (one p is returned as is)."""
    ps = [p for p in ps if p is not None]
    if len(ps) <= 1:
        return ps[0] if ps else None
    finite = [p for p in ps if not math.isnan(p)]
    return min(finite) if finite else ps[0]


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


@dataclass
class Decision:
    """What :meth:`Audit.decide` returns: conditions, a one-sentence summary, next steps.

    ``status`` defaults to the worst condition status. ``inconclusive`` marks evidence too weak
    to decide (e.g. an underpowered significance test): the suite verdict becomes INCONCLUSIVE.
    """

    conditions: list[Condition]
    summary: str
    next_steps: list[str] = field(default_factory=list)
    status: str | None = None
    inconclusive: bool = False


@dataclass
class AuditResult:
    """One audit's entry in ``results.json`` (``audits[i]``)."""

    name: str
    status: str
    critical: bool
    summary: str
    measurements: dict[str, Any] = field(default_factory=dict)
    p_value: float | None = None
    p_adjusted: float | None = None
    null_hypothesis: str = ""
    conditions: list[Condition] = field(default_factory=list)
    title: str = ""
    question: str = ""
    method: str = ""
    citations: list[str] = field(default_factory=list)
    blind_spots: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    plots: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    inconclusive: bool = False
    error: str | None = None
    n_trials: int = 0
    duration_s: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["conditions"] = [c.to_dict() if isinstance(c, Condition) else c for c in self.conditions]
        return jsonable(d)


class Audit(ABC):
    """Base class of the six audits.

    Subclasses set the class attributes and implement :meth:`plan`, :meth:`run_trial`,
    :meth:`measure` and :meth:`decide`. Instances hold no state: the same instance may be
    used by several runs and workers.

    Class attributes
    ----------------
    name : str
        Identifier used by ``--checks`` and in ``audit.toml`` (``[audits.<name>]``).
    title, question, method : str
        Shown on the report card. ``method`` names the test and its defaults.
    citations : list of str
    blind_spots : list of str
        What this audit cannot detect.
    critical : bool
        A FAIL of a critical audit makes the verdict NO_GO.
    gating : bool
        Its gating sub-tests (:attr:`Evidence.tests`) join the suite's Holm correction.
    defaults : dict
        Every tunable, overridable in ``audit.toml``: ``declare(name=param(type, default, min=...,
        quick=..., help=...), ...)`` (:mod:`auditor.config`), or a plain ``{name: default}`` whose
        types and bounds are then inferred from the defaults.
    quick_overrides : dict
        Values used with ``--quick`` (fewer repeats), unless the user set them explicitly; taken
        from the declarations' ``quick=`` when ``defaults`` is declared.

    A ``method`` written as ``ParamText("... n_seeds ({n_seeds}) ...")`` is filled from the
    declared defaults (``{quick_NAME}`` for a ``--quick`` value) when the class is defined.
    conditions : tuple of functions
        The audit's named conditions (:func:`condition`), in report order; :meth:`decide`
        applies them with :func:`judge` and composes the verdict and its texts.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    question: ClassVar[str] = ""
    method: ClassVar[str] = ""
    citations: ClassVar[list[str]] = []
    blind_spots: ClassVar[list[str]] = []
    critical: ClassVar[bool] = True
    gating: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {}
    quick_overrides: ClassVar[dict[str, Any]] = {}
    conditions: ClassVar[tuple[ConditionCheck, ...]] = ()
    _method_text: ClassVar[ParamText | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("defaults"), Params) and "quick_overrides" not in cls.__dict__:
            cls.quick_overrides = cls.defaults.quick
        # a subclass with other defaults re-renders the text it inherits
        text = cls.__dict__.get("method", getattr(cls, "_method_text", None))
        if isinstance(text, ParamText):
            cls._method_text = text
            cls.method = text.render(cls.defaults, cls.quick_overrides)

    def skip_reason(self, ctx: "AuditContext") -> str | None:  # noqa: F821
        """Return a reason to SKIP this audit for this run (e.g. no baseline), else None."""
        return None

    @abstractmethod
    def plan(self, ctx: "AuditContext") -> list[Trial]:  # noqa: F821
        """Trials to run. Deterministic given ``ctx.config`` and ``ctx.seed``."""

    @abstractmethod
    def run_trial(self, ctx: "AuditContext", trial: Trial) -> dict[str, Any]:  # noqa: F821
        """Run one trial; return a JSON-able dict (use :func:`jsonable`)."""

    @abstractmethod
    def measure(self, ctx: "AuditContext", results: Mapping[str, dict[str, Any]]) -> Evidence:  # noqa: F821
        """Combine trial results (``{trial.key: result}``) into measurements and a raw p-value."""

    @abstractmethod
    def decide(self, ctx: "AuditContext", evidence: Evidence, p_adjusted: float | None) -> Decision:  # noqa: F821
        """Apply the named conditions.

        ``p_adjusted`` is ``evidence.p_adjusted``: the adjusted p of the audit's gating test (the
        smallest over its gating sub-tests). An audit with several sub-tests reads each one's
        ``evidence.test(name).p_adjusted``. Neither is ever recomputed here.
        """


# --------------------------------------------------------------------------- plot specs
def plot_lines(title: str, series: Sequence[Mapping[str, Any]], *, xlabel: str = "", ylabel: str = "",
               hlines: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Line chart. ``series``: ``[{"label": str, "x": [...], "y": [...]}]``;
    ``hlines``: ``[{"label": str, "y": float}]`` reference lines (e.g. chance)."""
    return jsonable({"type": "lines", "title": title, "xlabel": xlabel, "ylabel": ylabel,
                     "series": list(series), "hlines": list(hlines)})


def plot_hist(title: str, values: Sequence[float], *, xlabel: str = "",
              markers: Sequence[Mapping[str, Any]] = (), max_values: int = 2000) -> dict[str, Any]:
    """Histogram of a distribution (null, bootstrap) with vertical ``markers``
    ``[{"label": "observed", "x": 0.63}]``. Values are thinned to ``max_values`` to keep reports small."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size > max_values:
        v = np.quantile(v, np.linspace(0, 1, max_values))
    return jsonable({"type": "hist", "title": title, "xlabel": xlabel, "values": np.round(v, 6),
                     "markers": list(markers)})


def plot_intervals(title: str, rows: Sequence[Mapping[str, Any]], *, xlabel: str = "",
                   ref: float | None = 0.0) -> dict[str, Any]:
    """Point estimates with intervals, one row each: ``[{"label", "estimate", "low", "high"}]``."""
    return jsonable({"type": "intervals", "title": title, "xlabel": xlabel, "rows": list(rows), "ref": ref})


def plot_bars(title: str, labels: Sequence[str], values: Sequence[float], *, ylabel: str = "",
              hlines: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Bar chart (e.g. KS statistic per feature, wins/ties/losses)."""
    return jsonable({"type": "bars", "title": title, "ylabel": ylabel, "labels": list(labels),
                     "values": list(values), "hlines": list(hlines)})


def plot_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """A small table (e.g. example duplicate pairs); keep it under ~20 rows."""
    return jsonable({"type": "table", "title": title, "columns": list(columns), "rows": [list(r) for r in rows]})


def run_inline(audit: Audit, ctx: "AuditContext", p_adjusted: float | None = None) -> AuditResult:  # noqa: F821
    """Plan, run every trial in this process, measure and conclude: one audit, no store.

    The runner does the same with a store, an executor and Holm across the audits of the
    suite; this is for tests and notebooks. The sub-tests are adjusted as a suite of one
    audit; ``p_adjusted``, when given, stands for the audit's gating p as adjusted in a larger
    suite (only for an audit with one gating sub-test). Trial errors propagate (the runner
    turns them into ERROR).
    """
    import time

    t0 = time.perf_counter()
    reason = audit.skip_reason(ctx)
    if reason:
        return skipped(audit, ctx, reason)
    trials = audit.plan(ctx)
    results = {t.key: audit.run_trial(ctx, t) for t in trials}
    ev = audit.measure(ctx, results)
    adjust_p_values({audit.name: audit}, {audit.name: ev})
    if p_adjusted is not None:
        if len(ev.gating_tests) != 1:
            raise ValueError(f"run_inline(p_adjusted=...): {audit.name} has {len(ev.gating_tests)} gating "
                             "sub-tests; the override stands for exactly one.")
        ev.gating_tests[0].p_adjusted = p_adjusted
    return conclude(audit, ctx, ev, n_trials=len(trials), duration_s=time.perf_counter() - t0)


def adjust_p_values(audits: Mapping[str, Audit], evidence: Mapping[str, Evidence]) -> dict[str, list[Any]]:
    """Holm-adjust every gating sub-test of the suite at once and hand each its adjusted p.

    ``audits`` and ``evidence`` are keyed by audit name; the family is every gating sub-test with
    a p-value of every audit whose ``gating`` is set, in the order of ``evidence``. A gating
    sub-test of an audit that does not join the correction keeps its raw p as its adjusted p.
    Returns the record ``results.json`` keeps under ``holm``: ``audits`` (the audit's name, or
    ``"audit: sub-test"`` for an audit with several gating sub-tests), ``p_raw``, ``p_adjusted``.
    """
    family = [(n, t) for n, ev in evidence.items() if audits[n].gating for t in ev.gating_tests]
    p_raw = [float(t.p_value) for _, t in family]
    p_adj = holm(np.array(p_raw)).tolist() if family else []
    for (_, t), p in zip(family, p_adj):
        t.p_adjusted = p
    for n, ev in evidence.items():
        if not audits[n].gating:
            for t in ev.gating_tests:
                t.p_adjusted = t.p_value
    labels = [n if len(evidence[n].gating_tests) == 1 else f"{n}: {t.name}" for n, t in family]
    return {"audits": labels, "p_raw": p_raw, "p_adjusted": p_adj}


def conclude(audit: Audit, ctx: "AuditContext", ev: Evidence, *, n_trials: int,  # noqa: F821
             duration_s: float) -> AuditResult:
    """Let the audit decide on its evidence (sub-tests already adjusted) and build its result."""
    p_adjusted = ev.p_adjusted
    dec = audit.decide(ctx, ev, p_adjusted)
    status = dec.status or worst_status([c.status for c in dec.conditions])
    return AuditResult(
        name=audit.name, status=status, critical=audit.critical, summary=dec.summary,
        measurements=jsonable(ev.measurements), p_value=ev.p_value, p_adjusted=p_adjusted,
        null_hypothesis=ev.null_hypothesis, conditions=dec.conditions, title=audit.title,
        question=audit.question, method=audit.method, citations=list(audit.citations),
        blind_spots=list(audit.blind_spots), next_steps=dec.next_steps, plots=ev.plots,
        notes=ev.notes, inconclusive=dec.inconclusive, n_trials=n_trials, duration_s=duration_s,
        config=jsonable(ctx.params(audit)))


def skipped(audit: Audit, ctx: "AuditContext", summary: str, *, n_trials: int = 0,  # noqa: F821
            duration_s: float = 0.0) -> AuditResult:
    """The result of an audit that did not run (its skip reason, or a model it cannot retrain)."""
    return _undecided(audit, ctx, "SKIP", summary, n_trials=n_trials, duration_s=duration_s)


def errored(audit: Audit, ctx: "AuditContext", message: str, *, n_trials: int = 0,  # noqa: F821
            duration_s: float = 0.0) -> AuditResult:
    """The result of an audit that could not finish: its first line as the summary, all of it as the error."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return _undecided(audit, ctx, "ERROR", f"The audit could not finish: {first}", error=message,
                      next_steps=["Fix the error above (often the model's fit/score), then rerun with --resume."],
                      n_trials=n_trials, duration_s=duration_s)


def _undecided(audit: Audit, ctx: "AuditContext", status: str, summary: str, *, n_trials: int,  # noqa: F821
               duration_s: float, error: str | None = None, next_steps: Sequence[str] = ()) -> AuditResult:
    return AuditResult(name=audit.name, status=status, critical=audit.critical, summary=summary, title=audit.title,
                       question=audit.question, method=audit.method, citations=list(audit.citations),
                       blind_spots=list(audit.blind_spots), error=error, next_steps=list(next_steps),
                       n_trials=n_trials, duration_s=duration_s, config=jsonable(ctx.params(audit)))
