"""Planted-defect benchmark: does each audit catch its defect, and stay quiet on clean data?

Issue 4's proof. Every defect is planted into real data (the LETOR sample in ``tests/data/ltr``,
audited with the LightGBM example plugin, 30 trees, one thread) and into simulated data
(:func:`auditor.synthetic.make_synthetic_split`, audited with the ridge ranker), over many seeds,
and a small number of runs on the reference model's own scenarios:

==========================  ================================================  =====================
defect                      plant                                             audit (counted)
==========================  ================================================  =====================
copied test queries         ``plant_copied_queries``: a share of test         random_label (FAIL),
                            queries copied into train under new ids           isolation (FAIL)
near-copies                 ``plant_near_duplicates``: copies with new ids    isolation (FAIL)
                            and Gaussian noise on every feature
label proxy                 ``plant_label_proxy``: ``label + N(0, 1/s^2)``    feature_ablation (FAIL)
naive synthetic set         ``naive_synthetic``: independent Gaussians per    synthetic_shift (FAIL)
                            feature matching the real marginals
subtle shift                a faithful synthetic set + 0.25 SD on 3 columns   synthetic_shift (WARN
                                                                              or FAIL, significant)
no real gain                two ridge rankers with independent score noise    significance (no gain
                                                                              demonstrated)
real gain                   ridge (LightGBM on LETOR) vs a random ranker;     significance (gain
                            ridge vs ridge + score noise (modest gain)        demonstrated)
unstable training           ``make_unstable_linear`` (coefficients jittered   stability (WARN)
                            per training set)
label-free priors (clean)   :func:`_planting.task_prior`: a two-layer MLP or  random_label (FAIL;
                            ridge on LETOR (as shipped, no qids; re-split     INCONCLUSIVE)
                            with explicit qids) and on a simulated split
                            where a fixed feature direction ranks well
clean controls              :func:`_planting.clean_suite_run`: the whole      every audit (FAIL;
                            suite on clean splits (100 simulated, 100 LETOR   stability: WARN);
                            re-splits with real queries as the synthetic set) the suite (any
                                                                              critical FAIL)
==========================  ================================================  =====================

Power rows judge an audit alone with its raw gating p-value multiplied by 4 -- the largest
factor Holm can apply across the 4 gating audits of a full run -- so they are lower bounds on
the power of a full run; ``copies_letor_suite`` measures that power itself (the whole suite on a
LETOR re-split with copies planted, Holm as ``audit run``). Clean controls run the whole suite
through ``run_audit`` (Holm as in production). The significance no-gain row uses the raw p
(factor 1): an upper bound on the false-PASS rate. Targets (issue 4): power >= 95% at the documented defect sizes, false alarms
<= 5% per audit and for the suite. Rows at sizes not documented elsewhere, and the reference
model's few runs, are reported without a target (``info``).

Resample counts that only feed reported numbers are lowered (``_planting.BENCH_PARAMS``);
every count that enters a decision keeps its default.

Run::

    python benchmarks/detection.py                       # full: 20 seeds per defect, 2 x 100 clean runs
    python benchmarks/detection.py --workers 2 --cache /tmp/bench-cache   # 2 processes, resumable
    python benchmarks/detection.py --smoke               # seconds: tiny sizes (the smoke test)
    python benchmarks/detection.py --size proxy_letor=1.5 --cases proxy_letor --seeds 40

The table goes to stdout (Markdown), with the command, the machine and the time taken;
``--json FILE`` writes the rows and every run's record.
"""
from __future__ import annotations

import argparse
import json
import resource
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _planting as P  # noqa: E402

#: defect sizes (``--size name=value``); the documented ones are those of docs/AUDITS.md
SIZES: dict[str, float] = {
    "copy_frac": 0.3,            # share of test queries copied into train
    "near_copy_frac": 0.1,       # share of test queries near-copied
    "near_copy_noise_gen": 0.1,  # noise, x column SD (generator)
    "near_copy_noise_letor": 0.01,
    "proxy_letor": 2.0,          # proxy strength (noise SD 1/strength label units)
    "proxy_gen": 1.25,
    "naive_queries": 40,         # queries in the naive synthetic set
    "shift_sd": 0.25,            # subtle shift, in column SDs
    "shift_columns": 3,
    "shift_sd_letor_large": 0.5,  # LETOR continuous columns: the size that is detected
    "gain_noise": 1.0,           # modest gain: baseline = candidate + this x score-SD noise
    "unstable_jitter": 0.5,
    "lgbm_trees": 30,
}


@dataclass
class Case:
    """A planted defect: which task to run, what to count, and the row(s) it yields.

    ``rows`` is a list of ``(audit, counted label, predicate on that audit's record)``.
    """

    name: str
    task: str
    params: Callable[[Mapping[str, float]], dict[str, Any]]
    defect: str
    size: Callable[[Mapping[str, float]], str]
    data: str
    rows: Sequence[tuple[str, str, Callable[[Mapping[str, Any]], bool]]]
    documented: bool = True
    smoke_seeds: int = 0          # 0: not part of --smoke
    extra: Callable[[list[Mapping[str, Any]]], dict[str, Any]] | None = None


def _fail(r: Mapping[str, Any]) -> bool:
    return r["status"] == "FAIL"


def _flagged(r: Mapping[str, Any]) -> bool:
    """Synthetic-shift flagged a shift: WARN or FAIL with significance (not the inconclusive WARN)."""
    return r["status"] in ("WARN", "FAIL") and not r["inconclusive"]


def _warn(r: Mapping[str, Any]) -> bool:
    return r["status"] == "WARN"


def _inconclusive(r: Mapping[str, Any]) -> bool:
    return bool(r["inconclusive"])


def _prior_extra(recs):
    n = max(len(recs), 1)
    return {"median A excess (label-free strength)": _med(recs, "random_label", "excess_a"),
            "median B excess": _med(recs, "random_label", "excess_b"),
            "median B upper bound / margin": _med(recs, "random_label", "upper_b"),
            "A WARN share": sum(r["random_label"]["status"] == "WARN" and not r["random_label"]["inconclusive"]
                                for r in recs) / n}


def _prior_case(name: str, data: str, model: str, n_seeds: int, data_desc: str) -> Case:
    model_desc = {"mlp": "2-layer MLP (MSE, 15 epochs)", "ridge": "ridge (init-plugin scaffold)"}[model]
    return Case(name, "prior", lambda s: {"data": data, "model": model, "n_seeds": n_seeds},
                "clean control: label-free prior", lambda s: f"variant A with {n_seeds} seeds",
                f"{data_desc} / {model_desc}",
                [("random_label", "FAIL", _fail), ("random_label", "INCONCLUSIVE", _inconclusive)],
                smoke_seeds=2 if (model == "ridge" and data == "fixed-direction") else 0, extra=_prior_extra)


#: the clean label-free-prior family (issue 13): models that rank without labels, no leak
PRIOR_CASES: list[Case] = [
    _prior_case("prior_letor_mlp", "letor", "mlp", 3, "LETOR as shipped (no qids)"),
    _prior_case("prior_letor_ridge", "letor", "ridge", 10, "LETOR as shipped (no qids)"),
    _prior_case("prior_resplit_mlp", "letor-resplit", "mlp", 3, "LETOR re-split (explicit qids)"),
    _prior_case("prior_resplit_ridge", "letor-resplit", "ridge", 10, "LETOR re-split (explicit qids)"),
    _prior_case("prior_sim_mlp", "fixed-direction", "mlp", 10, "simulated, fixed direction ranks"),
    _prior_case("prior_sim_ridge", "fixed-direction", "ridge", 3, "simulated, fixed direction ranks"),
]


def _not_demonstrated(r: Mapping[str, Any]) -> bool:
    return not P.demonstrated(r)


def _med(recs: list[Mapping[str, Any]], audit: str, key: str, nd: int = 3) -> float | None:
    v = P.median(r.get(audit, {}).get(key) for r in recs)
    return None if v is None else round(v, nd)


def _shift_extra(recs):
    return {"median AUC": _med(recs, "synthetic_shift", "auc"),
            "FAIL share": sum(r["synthetic_shift"]["status"] == "FAIL" for r in recs) / max(len(recs), 1)}


def _gain_extra(recs):
    return {"median delta": _med(recs, "significance", "delta", 4), "median d_z": _med(recs, "significance", "d_z", 2),
            "median MDE": _med(recs, "significance", "mde", 4)}


def _trees(s):
    return int(s["lgbm_trees"])


CASES: list[Case] = [
    Case("copies_letor", "copies", lambda s: {"data": "letor", "frac": s["copy_frac"], "trees": _trees(s)},
         "test queries copied into train (new ids)", lambda s: f"{s['copy_frac']:.0%} of 50 test queries",
         "LETOR / LightGBM",
         [("random_label", "FAIL", _fail), ("isolation", "FAIL", _fail)], smoke_seeds=1,
         extra=lambda recs: {"median B excess": _med(recs, "random_label", "excess_b"),
                             "median B p": _med(recs, "random_label", "p_b", 6)}),
    Case("copies_letor_suite", "copies_suite", lambda s: {"frac": s["copy_frac"], "trees": _trees(s)},
         "test queries copied into train (new ids), full run (Holm as `audit run`)",
         lambda s: f"{s['copy_frac']:.0%} of 50 test queries", "LETOR re-split / LightGBM",
         [("random_label", "FAIL", _fail), ("isolation", "FAIL", _fail),
          ("suite", "NO_GO", lambda r: r["status"] == "NO_GO")], documented=False,
         extra=lambda recs: {"median B excess": _med(recs, "random_label", "excess_b"),
                             "median B p_adj": _med(recs, "random_label", "p_adj", 6)}),
    Case("copies_gen", "copies", lambda s: {"data": "generator", "frac": s["copy_frac"]},
         "test queries copied into train (new ids)", lambda s: f"{s['copy_frac']:.0%} of 60 test queries",
         "generator / memorising ridge",
         [("random_label", "FAIL", _fail), ("isolation", "FAIL", _fail)], smoke_seeds=2),
    Case("near_copies_gen", "near_copies",
         lambda s: {"data": "generator", "frac": s["near_copy_frac"], "noise": s["near_copy_noise_gen"]},
         "near-copies (new query and item ids, noise)",
         lambda s: f"{s['near_copy_frac']:.0%} of queries, noise {s['near_copy_noise_gen']:g} SD",
         "generator / ridge", [("isolation", "FAIL", _fail)], smoke_seeds=2),
    Case("near_copies_letor", "near_copies",
         lambda s: {"data": "letor", "frac": s["near_copy_frac"], "noise": s["near_copy_noise_letor"],
                    "trees": _trees(s)},
         "near-copies (new query ids, noise)",
         lambda s: f"{s['near_copy_frac']:.0%} of queries, noise {s['near_copy_noise_letor']:g} SD",
         "LETOR / LightGBM", [("isolation", "FAIL", _fail)]),
    Case("proxy_letor", "proxy", lambda s: {"data": "letor", "strength": s["proxy_letor"], "trees": _trees(s)},
         "label-proxy feature", lambda s: f"strength {s['proxy_letor']:g} (noise SD {1 / s['proxy_letor']:.2f})",
         "LETOR / LightGBM", [("feature_ablation", "FAIL", _fail)], smoke_seeds=1,
         extra=lambda recs: {"median solo share": _med(recs, "feature_ablation", "best_solo_share")}),
    Case("proxy_gen", "proxy", lambda s: {"data": "generator", "strength": s["proxy_gen"]},
         "label-proxy feature", lambda s: f"strength {s['proxy_gen']:g} (noise SD {1 / s['proxy_gen']:.2f})",
         "generator / ridge", [("feature_ablation", "FAIL", _fail)], smoke_seeds=2,
         extra=lambda recs: {"median solo share": _med(recs, "feature_ablation", "best_solo_share")}),
    Case("naive_letor", "naive", lambda s: {"data": "letor", "n_queries": int(s["naive_queries"])},
         "naive synthetic set (independent Gaussians per feature)",
         lambda s: f"{int(s['naive_queries'])} synthetic queries vs 201 real", "LETOR",
         [("synthetic_shift", "FAIL", _fail)], smoke_seeds=1, extra=_shift_extra),
    Case("naive_gen", "naive", lambda s: {"data": "generator", "n_queries": int(s["naive_queries"])},
         "naive synthetic set (independent Gaussians per feature)",
         lambda s: f"{int(s['naive_queries'])} synthetic queries vs 150 real", "generator",
         [("synthetic_shift", "FAIL", _fail)], documented=False, extra=_shift_extra),
    Case("shift_gen", "shift",
         lambda s: {"data": "generator", "shift": s["shift_sd"], "n_columns": int(s["shift_columns"])},
         "subtle shift of a faithful synthetic set",
         lambda s: f"+{s['shift_sd']:g} SD on {int(s['shift_columns'])} of 12 columns, 300 vs 300 queries",
         "generator", [("synthetic_shift", "WARN or FAIL (significant)", _flagged)], smoke_seeds=1,
         extra=_shift_extra),
    Case("shift_letor", "shift",
         lambda s: {"data": "letor", "shift": s["shift_sd"], "n_columns": int(s["shift_columns"])},
         "subtle shift of real queries (any columns)",
         lambda s: f"+{s['shift_sd']:g} SD on {int(s['shift_columns'])} of 218 non-constant columns, 99 vs 150 queries",
         "LETOR", [("synthetic_shift", "WARN or FAIL (significant)", _flagged)], documented=False,
         extra=_shift_extra),
    Case("shift_letor_cont", "shift",
         lambda s: {"data": "letor", "shift": s["shift_sd"], "n_columns": int(s["shift_columns"]),
                    "columns": "continuous"},
         "subtle shift of real queries (continuous columns)",
         lambda s: f"+{s['shift_sd']:g} SD on {int(s['shift_columns'])} of 18 continuous columns, 99 vs 150 queries",
         "LETOR", [("synthetic_shift", "WARN or FAIL (significant)", _flagged)], documented=False,
         extra=_shift_extra),
    Case("shift_letor_cont_large", "shift",
         lambda s: {"data": "letor", "shift": s["shift_sd_letor_large"], "n_columns": int(s["shift_columns"]),
                    "columns": "continuous"},
         "shift of real queries (continuous columns)",
         lambda s: f"+{s['shift_sd_letor_large']:g} SD on {int(s['shift_columns'])} of 18 continuous columns, "
                   "99 vs 150 queries",
         "LETOR", [("synthetic_shift", "WARN or FAIL (significant)", _flagged)], documented=False,
         extra=_shift_extra),
    Case("gain_gen", "gain", lambda s: {"data": "generator", "noise": s["gain_noise"]},
         "modest real gain (ridge vs ridge + score noise)", lambda s: f"baseline noise {s['gain_noise']:g} x score SD",
         "generator / ridge", [("significance", "gain demonstrated", P.demonstrated)], documented=False,
         smoke_seeds=2, extra=_gain_extra),
    Case("gain_letor", "gain", lambda s: {"data": "letor-resplit", "noise": s["gain_noise"]},
         "modest real gain (ridge vs ridge + score noise)", lambda s: f"baseline noise {s['gain_noise']:g} x score SD",
         "LETOR re-split / ridge", [("significance", "gain demonstrated", P.demonstrated)], documented=False,
         extra=_gain_extra),
    Case("unstable_gen", "unstable", lambda s: {"jitter": s["unstable_jitter"]},
         "unstable training (coefficients jittered per training set)",
         lambda s: f"jitter {s['unstable_jitter']:g}, claimed gain 0.05", "generator (200 train queries)",
         [("stability", "WARN", _warn)], smoke_seeds=2),
    Case("stable_gen", "stable", lambda s: {},
         "clean control (plain ridge)", lambda s: "claimed gain 0.05", "generator (200 train queries)",
         [("stability", "WARN", _warn)], smoke_seeds=2),
    *PRIOR_CASES,
]

#: reference-model scenarios: (scenario, checks, [(audit, counted, predicate, kind)])
REFERENCE: list[tuple[str, str, list[tuple[str, str, Callable[[Mapping[str, Any]], bool], str]]]] = [
    ("leaky", "random_label,feature_ablation,isolation,synthetic_shift",
     [("isolation", "FAIL", _fail, "power"), ("feature_ablation", "FAIL", _fail, "power"),
      ("synthetic_shift", "FAIL", _fail, "power"), ("random_label", "FAIL", _fail, "power")]),
    ("shifted", "synthetic_shift", [("synthetic_shift", "WARN (train vs test, capped)", _warn, "power")]),
    ("no_gain", "significance", [("significance", "no gain demonstrated", _not_demonstrated, "power")]),
    ("clean", "random_label,feature_ablation,isolation,synthetic_shift,significance",
     [("random_label", "FAIL", _fail, "false_alarm"), ("feature_ablation", "FAIL", _fail, "false_alarm"),
      ("isolation", "FAIL", _fail, "false_alarm"), ("synthetic_shift", "FAIL", _fail, "false_alarm"),
      ("significance", "gain demonstrated", P.demonstrated, "power")]),
]
_REF_DEFECT = {"leaky": "V2.0 pattern: 30% test queries re-logged, label proxy, naive synthetic set",
               "shifted": "test set +0.5 SD on 16 visual columns", "no_gain": "relevance = V1.0's cosine",
               "clean": "clean scenario (faithful synthetic set, real gain over V1.0)"}


# --------------------------------------------------------------------------- clean-run rows
def clean_rows(records: Mapping[str, list[Mapping[str, Any]]]) -> list[P.Rate]:
    """False-alarm rows from the clean suite runs, per data kind and pooled, plus the
    significance rows that the same runs give (real gain vs a random ranker; no-gain twins)."""
    rows: list[P.Rate] = []
    kinds = [k for k in records if records[k]]
    pooled = [r for k in kinds for r in records[k]]
    desc = {"generator": "generator / ridge", "letor": "LETOR re-splits / LightGBM"}
    groups = [(desc[k], records[k]) for k in kinds]
    if len(kinds) > 1:
        groups.append(("both", pooled))
    for label, recs in groups:
        n = len(recs)
        for a in ("random_label", "feature_ablation", "isolation", "synthetic_shift", "significance", "stability"):
            flag = "WARN" if a == "stability" else "FAIL"
            k = sum(r["audits"][a]["status"] == flag or (flag == "WARN" and r["audits"][a]["status"] == "FAIL")
                    for r in recs)
            rows.append(P.Rate(a, "clean control", "--", label, k, n, kind="false_alarm", target=0.05,
                               counted=flag))
            if a == "random_label":
                k = sum(bool(r["audits"][a]["inconclusive"]) for r in recs)
                rows.append(P.Rate(a, "clean control", "--", label, k, n, kind="false_alarm", target=0.05,
                                   counted="INCONCLUSIVE"))
        k = sum(any(r["audits"][a]["status"] == "FAIL" and r["audits"][a]["critical"] for a in r["audits"])
                for r in recs)
        rows.append(P.Rate("suite", "clean control", "--", label, k, n, kind="false_alarm", target=0.05,
                           counted="any critical FAIL"))
        k = sum(r["verdict"] != "GO" for r in recs)
        rows.append(P.Rate("suite", "clean control", "--", label, k, n, kind="info", counted="verdict not GO"))
    for label, recs in groups:
        k = sum(P.demonstrated(r["audits"]["significance"]) for r in recs)
        rows.append(P.Rate("significance", "real gain (vs a random ranker)", "as drawn", label, k, len(recs),
                           counted="gain demonstrated (full suite, Holm)",
                           extra={"median delta": round(P.median(r["audits"]["significance"]["delta"] for r in recs), 4)}))
    for label, recs in groups:
        k = sum(not P.demonstrated(r["significance_nogain"]) for r in recs)
        rows.append(P.Rate("significance", "no real gain (twin rankers, independent score noise)", "0",
                           label.replace("LightGBM", "ridge"), k, len(recs),
                           counted="no gain demonstrated (raw p)"))
    return rows


# --------------------------------------------------------------------------- main
def parse_sizes(items: Sequence[str]) -> dict[str, float]:
    """:data:`SIZES` with the ``--size NAME=VALUE`` overrides applied (unknown names exit with a message)."""
    sizes = dict(SIZES)
    for it in items:
        k, _, v = it.partition("=")
        if k not in SIZES or not v:
            raise SystemExit(f"--size {it!r}: expected NAME=VALUE with NAME in {', '.join(SIZES)}")
        sizes[k] = float(v)
    return sizes


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="runs per planted defect (default 20)")
    ap.add_argument("--null-runs", type=int, default=100, help="clean suite runs per data kind (default 100)")
    ap.add_argument("--null-kinds", default="generator,letor", help="clean-run designs (generator, letor)")
    ap.add_argument("--reference-seeds", type=int, default=2,
                    help="runs per reference-model scenario (default 2; 0 to skip; ~1 min CPU each)")
    ap.add_argument("--cases", default="all", help=f"comma-separated subset of: {', '.join(c.name for c in CASES)}")
    ap.add_argument("--size", action="append", default=[], metavar="NAME=VALUE",
                    help=f"defect size override; names: {', '.join(SIZES)}")
    ap.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    ap.add_argument("--cache", default=None, help="directory reusing finished runs (keyed by the code's hash)")
    ap.add_argument("--json", default=None, help="write rows and run records to this file")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: a few seconds, for the smoke test")
    return ap


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print the table; return ``{"rows": [...], "records": {...}, ...}``."""
    args = build_parser().parse_args(argv)
    sizes = parse_sizes(args.size)
    t0, c0 = time.perf_counter(), time.process_time()
    version0 = P.code_version()
    wanted = [c.name for c in CASES] if args.cases == "all" else [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in wanted if c not in {x.name for x in CASES}]
    if bad:
        raise SystemExit(f"--cases: unknown {bad}; valid: {', '.join(c.name for c in CASES)}")
    cases = [c for c in CASES if c.name in wanted]
    null_kinds = [k.strip() for k in args.null_kinds.split(",") if k.strip()]
    ref_seeds = args.reference_seeds
    if args.smoke:
        cases = [c for c in cases if c.smoke_seeds]
        null_kinds, ref_seeds = ["generator"], 0
    jobs: list[tuple[str, dict[str, Any], list[int]]] = []
    for c in cases:
        n = c.smoke_seeds if args.smoke else args.seeds
        jobs.append((c.task, c.params(sizes), list(range(n))))
    n_null = 3 if args.smoke else args.null_runs
    for k in null_kinds:
        jobs.append(("clean", {"kind": k}, list(range(n_null))))
    for scen, checks, _ in REFERENCE:
        if ref_seeds:
            jobs.append(("reference", {"scenario": scen, "checks": checks}, list(range(ref_seeds))))
    print(f"running {sum(len(j[2]) for j in jobs)} runs ({len(jobs)} groups) with {args.workers} worker(s)",
          file=sys.stderr, flush=True)
    recs = P.run_tasks(jobs, workers=args.workers, cache=args.cache,
                       log=lambda m: print(m, file=sys.stderr, flush=True))

    rows: list[P.Rate] = []
    for c in cases:
        rr = recs[P.task_key(c.task, c.params(sizes))]
        extra = c.extra(rr) if c.extra else {}
        for i, (audit, counted, pred) in enumerate(c.rows):
            is_control = c.defect.startswith("clean control")
            kind = "false_alarm" if is_control else ("power" if c.documented else "info")
            rows.append(P.Rate(audit, c.defect, c.size(sizes), c.data, sum(bool(pred(r[audit])) for r in rr), len(rr),
                               kind=kind, target=0.05 if is_control else 0.95, counted=counted,
                               extra=extra if i == 0 else {}))
    rows += clean_rows({k: recs[P.task_key("clean", {"kind": k})] for k in null_kinds})
    for scen, checks, checks_rows in REFERENCE:
        if not ref_seeds:
            continue
        rr = recs[P.task_key("reference", {"scenario": scen, "checks": checks})]
        for audit, counted, pred, _kind in checks_rows:
            rows.append(P.Rate(audit, _REF_DEFECT[scen], "as generated", f"reference `{scen}` / CoTRR-Pro (quick)",
                               sum(bool(pred(r[audit])) for r in rr), len(rr), kind="info", counted=counted))
    wall = time.perf_counter() - t0
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + ch.ru_utime + ch.ru_stime
    cmd = "python benchmarks/detection.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    print(P.markdown_table(rows))
    print()
    notes = [f"{r.audit} / {r.defect} / {r.data}: " + ", ".join(f"{k} {v}" for k, v in r.extra.items())
             for r in rows if r.extra]
    for line in dict.fromkeys(notes):
        print(f"- {line}")
    missed = [r for r in rows if r.met is False]
    print()
    print(f"targets missed: {len(missed)}" + "".join(f"\n  - {r.audit} / {r.defect} / {r.data}: {r.k}/{r.n}"
                                                        for r in missed))
    if P.code_version() != version0:
        print(f"WARNING: the audited code changed during this run (code version {version0} at the start); "
              "runs may mix versions: rerun for a consistent table.")
    print(f"command: {cmd.strip()}")
    print(f"machine: {P.machine()}")
    print(f"time: {wall:.0f} s wall, {cpu:.0f} s CPU ({args.workers} worker(s)); "
          f"code version {P.code_version()}")
    out = {"rows": [r.to_dict() for r in rows], "records": recs, "sizes": sizes, "command": cmd.strip(),
           "machine": P.machine(), "wall_s": wall}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return out


if __name__ == "__main__":
    main()
