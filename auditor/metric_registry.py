"""The metric registry: one :class:`MetricFamily` per measure family, read by every caller.

``audit eval -m``, ``audit run --metric``, the audits (through
:func:`auditor.metrics.evaluate_many` and :func:`auditor.metrics.expected_random`), ``audit
list`` and the help texts all read this registry; adding a measure is one entry.

A family carries its name and spellings, its parameter (an optional, required or fixed cutoff
``@k``), its per-query kernel on ranked queries, its tie-aware kernel (the expected value over
every order of tied items, what the audits use), its exact expected value under a random
ordering when it has a closed form (the random-label audit's chance level), its trec_eval name
and whether it depends on the order at all (the audits compare orderings, so they refuse a
measure that does not).

The built-in families are in :mod:`auditor.metric_builtins`. An installed package adds one
through the entry-point group ``auditor.metrics``: the entry point's name is the family's name
and its object a :class:`MetricFamily`. Plugins are loaded when a name is not built in (or when
``audit list`` lists them) and validated then, on a small fixture, before any use: a broken one
raises :class:`~auditor.errors.PluginError` naming the entry point and the rule it breaks
(exit 2), and only when it is asked for. docs/METRICS.md has a worked example
(``examples/metric_plugin``).

This module imports no numpy: ``audit`` builds its help from it at start-up.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from auditor.errors import PluginError

__all__ = ["ENTRY_POINT_GROUP", "MetricFamily", "MetricSpec", "parse_metric", "family", "families",
           "metric_names", "plugin_errors"]

ENTRY_POINT_GROUP = "auditor.metrics"
#: how a family takes its cutoff: "none" (no @k), "optional" (whole ranking without it),
#: "required" (p@k), "one" (only @1: compliance@1)
CUTOFFS = ("none", "optional", "required", "one")
_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*")  # no "_<digits>" part: that spells a cutoff
_SEPARATORS = ("@", "_cut_", "_")


@dataclass(frozen=True)
class MetricFamily:
    """One measure family (``ndcg`` covers ``ndcg`` and ``ndcg@k``).

    Parameters
    ----------
    name : str
        Canonical name, lower case (``[a-z][a-z0-9_]*``); values are reported as ``name`` or
        ``name@k``.
    kernel : callable
        ``kernel(view, k) -> ndarray (n_queries,)`` on a block of ranked queries
        (:class:`auditor.metrics.RankedView`); ``k`` is the cutoff or None. Return
        ``view.undefined`` where the measure is undefined (no relevant item).
    tie_kernel : callable, optional
        ``tie_kernel(view, k)`` on queries with tied scores (:class:`auditor.metrics.TiedView`):
        the expected value over every order of the tied items. Equal to ``kernel`` on a query
        without ties. Needed by the audits (``audit run``), which score ties this way; without
        it the family is usable in ``audit eval`` (ties broken by docno) only.
    chance : callable, optional
        ``chance(view, k) -> ndarray`` (:class:`auditor.metrics.ChanceView`): the exact
        expected value per non-empty query under a uniformly random ordering, or None to leave
        NaN. Without it :func:`auditor.metrics.expected_random` uses ``tie_kernel`` on constant
        scores (every item tied), which is the same expectation.
    cutoff : {"none", "optional", "required", "one"}, default "optional"
    aliases : tuple of str
        Other spellings of the name without a cutoff (``ap``, ``recip_rank``).
    prefixes : tuple of str
        Other spellings before a cutoff (``precision`` in ``precision@5``).
    trec_eval : str, optional
        trec_eval's name for the family without a cutoff (``recip_rank``, ``set_recall``).
    trec_eval_cut : str, optional
        trec_eval's name with a cutoff k, printed ``NAME_k`` (``ndcg_cut``, ``P``).
    rank_based : bool, default True
        Whether the value depends on the order of the items (the audits need it to).
    column : str, optional
        A per-row column the kernel needs besides labels (``compliance``); built-in only.
    description : str
        One line for ``audit list`` and the help.
    """

    name: str
    kernel: Callable[[Any, int | None], Any]
    tie_kernel: Callable[[Any, int | None], Any] | None = None
    chance: Callable[[Any, int | None], Any] | None = None
    cutoff: str = "optional"
    aliases: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    trec_eval: str | None = None
    trec_eval_cut: str | None = None
    rank_based: bool = True
    column: str | None = None
    description: str = ""

    def forms(self) -> list[str]:
        """How the family is written: ``["ndcg", "ndcg@k"]``, ``["p@k"]``, ``["compliance@1"]``."""
        return {"none": [self.name], "optional": [self.name, f"{self.name}@k"], "required": [f"{self.name}@k"],
                "one": [f"{self.name}@1"]}[self.cutoff]

    def trec_eval_name(self, k: int | None) -> str | None:
        """trec_eval's printed name for this family at cutoff ``k`` (``ndcg_cut_10``), or None."""
        if k is None:
            return self.trec_eval
        return None if self.trec_eval_cut is None else f"{self.trec_eval_cut}_{k}"


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric name: family ``kind`` (``ndcg``, ``map``, ...) and cutoff ``k``."""

    kind: str
    k: int | None = None

    @property
    def name(self) -> str:
        return self.kind if self.k is None else f"{self.kind}@{self.k}"

    @property
    def family(self) -> MetricFamily:
        return family(self.kind)


# ------------------------------------------------------------------------------- the registry
_BUILTIN: dict[str, MetricFamily] | None = None
_PLUGINS: dict[str, MetricFamily] | None = None
_BROKEN: dict[str, PluginError] = {}


def _builtins() -> dict[str, MetricFamily]:
    global _BUILTIN
    if _BUILTIN is None:
        from auditor.metric_builtins import FAMILIES

        _BUILTIN = {f.name: f for f in FAMILIES}
    return _BUILTIN


def _spellings(fams: dict[str, MetricFamily]) -> set[str]:
    out: set[str] = set()
    for f in fams.values():
        out |= {f.name, *f.aliases, *f.prefixes}
    return out


def _plugins() -> dict[str, MetricFamily]:
    """Installed ``auditor.metrics`` entry points, loaded and validated once per process."""
    global _PLUGINS
    if _PLUGINS is None:
        from importlib.metadata import entry_points

        _BROKEN.clear()
        loaded: dict[str, MetricFamily] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded[ep.name] = _load(ep, set(loaded))
            except PluginError as e:
                _BROKEN[ep.name] = e
        _PLUGINS = loaded
    return _PLUGINS


def reload_plugins() -> None:
    """Forget loaded plugins (tests; a package installed while the process runs)."""
    global _PLUGINS
    _PLUGINS = None
    _BROKEN.clear()


def _load(ep: Any, taken: set[str]) -> MetricFamily:
    from auditor.guard import exit_message, no_exit

    where = f"{ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value})"
    try:
        with no_exit():
            obj = ep.load()
    except SystemExit as e:
        raise PluginError(where, f"loading it {exit_message(e)}.") from None
    except Exception as e:  # untrusted code: report, never a traceback
        raise PluginError(where, f"loading it raised {type(e).__name__}: {e}",
                          "import the module in python to see the full error.") from e
    validate_family(obj, where, entry_name=ep.name, taken=taken)
    return obj


def _rule(where: str, rule: str, fix: str) -> PluginError:
    return PluginError(where, f"breaks the metric contract: {rule}", fix)


def validate_family(fam: Any, where: str, *, entry_name: str | None = None, taken: set[str] = frozenset()) -> None:
    """Check a plugin family's declaration, then run it on a small fixture (see docs/METRICS.md).

    Raises
    ------
    PluginError
        Naming ``where`` (the plugin) and the rule broken.
    """
    if not isinstance(fam, MetricFamily):
        raise _rule(where, f"it is a {type(fam).__name__}, not an auditor.metric_registry.MetricFamily.",
                    "point the entry point at a MetricFamily(...) object.")
    if not isinstance(fam.name, str) or not _NAME.fullmatch(fam.name):
        raise _rule(where, f"name {fam.name!r} is not lower-case letters, digits and '_' starting with a letter "
                    "(and no '_<digits>' part, which would read as a cutoff).", "rename it, e.g. 'err_ia'.")
    if entry_name is not None and fam.name != entry_name:
        raise _rule(where, f"its name {fam.name!r} differs from the entry point's name {entry_name!r}.",
                    "give both the same name.")
    reserved = _spellings(_builtins()) | set(taken)
    clash = sorted(({fam.name, *fam.aliases, *fam.prefixes}) & reserved)
    if clash:
        raise _rule(where, f"{', '.join(map(repr, clash))} is already a metric name or spelling.",
                    "choose names no built-in metric or other plugin uses.")
    bad = [a for a in (*fam.aliases, *fam.prefixes) if not isinstance(a, str) or not _NAME.fullmatch(a)]
    if bad:
        raise _rule(where, f"aliases/prefixes {bad!r} are not valid names.", "use lower-case names.")
    if fam.cutoff not in CUTOFFS:
        raise _rule(where, f"cutoff={fam.cutoff!r}, expected one of {CUTOFFS}.", "pick one of them.")
    for attr in ("kernel", "tie_kernel", "chance"):
        fn = getattr(fam, attr)
        if (attr == "kernel" or fn is not None) and not callable(fn):
            raise _rule(where, f"{attr} is a {type(fn).__name__}, not a function.",
                        f"pass a function {attr}(view, k) -> per-query array.")
    if not isinstance(fam.rank_based, bool):
        raise _rule(where, f"rank_based={fam.rank_based!r} is not True or False.", "pass a bool.")
    if fam.column is not None:
        raise _rule(where, f"column={fam.column!r}: plugin metrics read labels and scores only.",
                    "leave column unset.")
    from auditor.metrics import check_family

    problem = check_family(fam)
    if problem:
        raise _rule(where, problem[0], problem[1])


def families(*, plugins: bool = True) -> dict[str, MetricFamily]:
    """Every family by name: built-in first, then installed plugins that loaded."""
    out = dict(_builtins())
    if plugins:
        out.update(_plugins())
    return out


def plugin_errors() -> dict[str, PluginError]:
    """Installed ``auditor.metrics`` entry points that failed to load or validate, by name."""
    _plugins()
    return dict(_BROKEN)


def family(name: str) -> MetricFamily:
    """The family called ``name`` (built-in or plugin). Raises ValueError or PluginError."""
    fams = _builtins()
    if name in fams:
        return fams[name]
    plug = _plugins()
    if name in plug:
        return plug[name]
    if name in _BROKEN:
        raise _BROKEN[name]
    raise ValueError(f"unknown metric family {name!r}")


def metric_names(*, plugins: bool = True) -> list[str]:
    """The spellings to show a user: ``["ndcg", "ndcg@k", "map", ...]``."""
    return [form for f in families(plugins=plugins).values() for form in f.forms()]


def _match(low: str, fams: dict[str, MetricFamily], original: str) -> MetricSpec | None:
    for f in fams.values():
        if f.cutoff in ("none", "optional") and (low == f.name or low in f.aliases):
            return MetricSpec(f.name, None)
    for f in fams.values():
        if f.cutoff == "none":
            continue
        for p in (f.name, *f.prefixes):
            for sep in _SEPARATORS:
                rest = low[len(p) + len(sep):]
                if low.startswith(p + sep) and rest.isdigit() and rest.isascii():
                    k = int(rest)
                    if k < 1:
                        raise ValueError(f"metric {original!r}: cutoff must be >= 1")
                    if f.cutoff == "one" and k != 1:
                        raise ValueError(f"metric {original!r}: only {f.name}@1 is defined")
                    return MetricSpec(f.name, k)
    return None


def parse_metric(name: str) -> MetricSpec:
    """Parse ``ndcg@10``, ``ndcg_cut_10``, ``map``, ``mrr``, ``p@5``, ``P_5``, ``recall@100``, ``compliance@1``,
    or a plugin's name.

    ``recall`` without a cutoff is recall over everything retrieved (trec_eval ``set_recall``).

    Raises
    ------
    ValueError
        Unknown names, with the list of valid ones.
    PluginError
        The name is an installed plugin that failed to load or validate.
    """
    s = str(name).strip()
    low = s.lower()
    spec = _match(low, _builtins(), name)
    if spec is not None:
        return spec
    spec = _match(low, _plugins(), name)
    if spec is not None:
        return spec
    for broken, err in _BROKEN.items():
        if low == broken or low.startswith(tuple(broken + sep for sep in _SEPARATORS)):
            raise err
    plug = metric_names(plugins=True)[len(metric_names(plugins=False)):]
    raise ValueError(f"unknown metric {name!r}; valid: {', '.join(metric_names(plugins=False))} "
                     "(trec_eval spellings ndcg_cut_k, P_k, recip_rank, map_cut_k also accepted)"
                     + (f"; installed plugins: {', '.join(plug)}" if plug else ""))
