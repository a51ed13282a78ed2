"""Calibration at scale: the suite's false-alarm rate and each gating test's rejection rate under the null.

Issue 7. Two kinds of null runs:

1. **Clean suite runs** (:func:`_planting.clean_suite_run`, the same runs ``detection.py``
   uses; share its ``--cache`` to compute them once): all six audits through ``run_audit``
   with Holm across the gating audits, on

   - ``generator``: :func:`auditor.synthetic.make_synthetic_split` (150 train / 60 test queries
     x 10 candidates) with a synthetic set drawn from the same generator, the ridge ranker,
     baseline = a random ranker (a real gain, so a clean run should be GO);
   - ``letor``: the LETOR sample re-split at random by query (150 train / 50 test, 49 other
     real queries as a perfectly faithful "synthetic" set), LightGBM (30 trees), baseline = a
     random ranker.

   The suite false-alarm rate is the share of these runs in which any critical audit FAILs
   (target <= 5%). Each run also records every gating audit's *raw* p-value (before Holm)
   and its components, and the significance audit on a no-gain pair (two ridge rankers with
   independent seeded score noise): the significance test's null.

2. **Audit-alone null runs at scale** on the generator (cheap, so many more): random_label
   (ridge, 1,000), isolation (ridge, 500), significance (the no-gain pair, 1,000) and
   synthetic_shift (a faithful synthetic set, 1,000; ~1 s CPU per run).

3. **Label-free priors** (issue 13; :func:`_planting.task_prior`, the same runs as
   ``detection.py``'s ``prior_*`` cases, shared through ``--cache``): random_label alone on
   clean splits whose models rank without labels -- a two-layer MLP and ridge on LETOR as
   shipped (no qids) and re-split (explicit qids), and on a simulated split where a fixed
   feature direction ranks well -- plus LightGBM-30 on LETOR re-splits. The table counts each
   decision (FAIL, PASS, INCONCLUSIVE, WARN) and the rejection rates of variant B's gating p,
   B's excess > 0 and variant A's (reported) t-test.

For every gating test the table gives the share of null runs with p < 0.01, < 0.05 (with a
Wilson 95% CI) and < 0.10; the target is a rejection rate within 4-6% at alpha = 0.05. A gating
p-value that is a Bonferroni combination (random_label: 2 x min over variants A and B;
synthetic_shift: 2 x min over the classifier and MMD tests) rejects at most 5% by
construction -- its components are listed so their own calibration can be read. random_label's
gating p is a minimum-effect test (H0: B's excess <= the floor, max(min_excess, min_excess_share x headroom)), below 5% by design where the
excess is 0; its plain "excess > 0" p is listed beside it. Variant A is reported, not gating:
its rate on models with a label-free prior is *expected* to be high (that is what it measures).

Run::

    python benchmarks/calibration.py                     # 2 x 100 suite runs + scale runs
    python benchmarks/calibration.py --cache /tmp/bench-cache --workers 2   # reuse detection.py's runs
    python benchmarks/calibration.py --smoke
"""
from __future__ import annotations

import argparse
import json
import resource
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _planting as P  # noqa: E402

ALPHA = 0.05
LOW, HIGH = 0.04, 0.06

#: every test: (audit, what, getter from a clean-suite record or None, key in an audit-alone record or None, design)
TESTS: list[tuple[str, str, Any, str | None, str]] = [
    ("random_label", "gating p (variant B, excess > floor)", lambda r: r["audits"]["random_label"]["p"], "p",
     "min-effect"),
    ("random_label", "variant B, excess > 0 (reported)", lambda r: r["audits"]["random_label"]["p_b"], "p_b",
     "exact"),
    ("random_label", "variant A, t-test over seed means (reported, not gating)",
     lambda r: r["audits"]["random_label"]["p_a"], "p_a", "one-sided"),
    ("isolation", "gating p (near-duplicate share, whole-query permutations)",
     lambda r: r["audits"]["isolation"]["p"], "p", "exact"),
    ("synthetic_shift", "gating p (2 x min of classifier, MMD)", lambda r: r["audits"]["synthetic_shift"]["p"], "p",
     "bonferroni"),
    ("synthetic_shift", "classifier (held-out split, membership shuffles)",
     lambda r: r["audits"]["synthetic_shift"]["p_clf"], "p_clf", "exact"),
    ("synthetic_shift", "MMD² (whole-query permutations)", lambda r: r["audits"]["synthetic_shift"]["p_mmd"], "p_mmd",
     "exact"),
    ("synthetic_shift", "label distribution (reported, not gating)",
     lambda r: r["audits"]["synthetic_shift"]["p_labels"], "p_labels", "labels"),
    ("significance", "gating p (paired t-test), no-gain pair", lambda r: r["significance_nogain"]["p_t"], "p_t",
     "exact"),
    ("significance", "sign-flip test (reported), no-gain pair", lambda r: r["significance_nogain"]["p_signflip"],
     "p_signflip", "exact"),
]

DESIGN_NOTE = {
    "exact": "~5% (permutation / randomization or t-test)",
    "bonferroni": "<= 5% by construction (Bonferroni over two tests)",
    "one-sided": "reported, not gating: label-free ranking strength, no target",
    "min-effect": "< 5% by design (H0: excess <= max(min_excess, min_excess_share x headroom); ~5% at an excess equal to it)",
    "labels": "~5%; p = 1 on the generator (every query has the same label multiset)",
}


def rejection_row(test: str, what: str, data: str, ps: Sequence[float | None], design: str) -> dict[str, Any]:
    """Rejection shares of one test's null p-values (None = not computed, dropped and counted)."""
    v = np.array([p for p in ps if p is not None], dtype=float)
    n = int(v.size)
    k = int(np.sum(v < ALPHA))
    lo, hi = P.wilson(k, n)
    rate = k / n if n else float("nan")
    return {"audit": test, "test": what, "data": data, "n": n, "missing": len(ps) - n,
            "p01": float(np.mean(v < 0.01)) if n else float("nan"), "k05": k, "p05": rate, "ci_low": lo,
            "ci_high": hi, "p10": float(np.mean(v < 0.10)) if n else float("nan"),
            "in_band": bool(LOW <= rate <= HIGH) if n else None,
            "ci_has_5": bool(lo <= ALPHA <= hi) if n else None, "design": design}


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of :func:`rejection_row` dicts."""
    out = ["| audit | test | null data | runs | p < 0.01 | p < 0.05 [95% Wilson CI] | p < 0.10 | in 4-6%? | "
           "CI holds 5%? | by design |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    yn = {True: "yes", False: "no", None: "--"}
    for r in rows:
        out.append(f"| {r['audit']} | {r['test']} | {r['data']} | {r['n']} | {r['p01']:.1%} | "
                   f"{r['k05']}/{r['n']} = {r['p05']:.1%} [{r['ci_low']:.1%}, {r['ci_high']:.1%}] | {r['p10']:.1%} | "
                   f"{yn[r['in_band']]} | {yn[r['ci_has_5']]} | {DESIGN_NOTE[r['design']]} |")
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--null-runs", type=int, default=100, help="clean suite runs per data kind (default 100)")
    ap.add_argument("--null-kinds", default="generator,letor", help="clean-run designs (generator, letor)")
    ap.add_argument("--scale-runs", type=int, default=1000,
                    help="audit-alone null runs for random_label and significance (default 1000)")
    ap.add_argument("--scale-runs-isolation", type=int, default=500, help="... for isolation (default 500)")
    ap.add_argument("--scale-runs-shift", type=int, default=1000,
                    help="... for synthetic_shift (default 1000; ~1 s CPU each)")
    ap.add_argument("--prior-runs", type=int, default=20,
                    help="random_label runs per label-free-prior design (default 20; 6 designs)")
    ap.add_argument("--prior-lgbm-runs", type=int, default=100,
                    help="random_label runs on clean LETOR re-splits with LightGBM-30 (default 100)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cache", default=None, help="directory reusing finished runs (shared with detection.py)")
    ap.add_argument("--json", default=None, help="write the rows to this file")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes for the smoke test")
    return ap


#: seeds of the audit-alone runs start here (the clean suite runs use 0..null_runs-1)
SCALE_SEED0 = 10_000

#: the label-free-prior designs: (data, model, variant-A seeds, label); the first six are
#: detection.py's ``prior_*`` cases (same task keys, so ``--cache`` shares their runs)
PRIOR_DESIGNS: list[tuple[str, str, int, str]] = [
    ("letor", "mlp", 3, "LETOR as shipped (no qids) / MLP"),
    ("letor", "ridge", 10, "LETOR as shipped (no qids) / ridge"),
    ("letor-resplit", "mlp", 3, "LETOR re-split (qids) / MLP"),
    ("letor-resplit", "ridge", 10, "LETOR re-split (qids) / ridge"),
    ("fixed-direction", "mlp", 10, "simulated fixed direction / MLP"),
    ("fixed-direction", "ridge", 3, "simulated fixed direction / ridge"),
]
LGBM_DESIGN = ("letor-resplit", "lgbm", 3, "LETOR re-split (qids) / LightGBM-30")


def decision_row(label: str, recs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """random_label's decisions and p-value rejection rates over null records ``{"random_label": rec}``."""
    rl = [r["random_label"] for r in recs]
    n = len(rl)

    def share(ps):
        v = np.array([p for p in ps if p is not None], dtype=float)
        return (int(np.sum(v < ALPHA)), int(v.size))

    return {"data": label, "n": n, "FAIL": sum(r["status"] == "FAIL" for r in rl),
            "INCONCLUSIVE": sum(bool(r["inconclusive"]) for r in rl),
            "WARN": sum(r["status"] == "WARN" and not r["inconclusive"] for r in rl),
            "PASS": sum(r["status"] == "PASS" for r in rl),
            "gating": share(r["p"] for r in rl), "b0": share(r["p_b"] for r in rl), "a": share(r["p_a"] for r in rl),
            "median_a": P.median(r["excess_a"] for r in rl), "median_b": P.median(r["excess_b"] for r in rl)}


def decision_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of :func:`decision_row` dicts."""
    out = ["| null design | runs | FAIL [95% Wilson CI] | INCONCLUSIVE | WARN | PASS | gating p < 0.05 | "
           "B excess > 0, p < 0.05 | A p < 0.05 (reported) | median A excess | median B excess |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = P.wilson(r["FAIL"], r["n"])
        f = lambda kn: f"{kn[0]}/{kn[1]}"  # noqa: E731
        ma = "--" if r["median_a"] is None else f"{r['median_a']:+.3f}"
        mb = "--" if r["median_b"] is None else f"{r['median_b']:+.3f}"
        out.append(f"| {r['data']} | {r['n']} | {r['FAIL']}/{r['n']} [{lo:.1%}, {hi:.1%}] | {r['INCONCLUSIVE']} | "
                   f"{r['WARN']} | {r['PASS']} | {f(r['gating'])} | {f(r['b0'])} | {f(r['a'])} | {ma} | {mb} |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the calibration benchmark; print the tables; return ``{"suite": [...], "tests": [...]}``."""
    args = build_parser().parse_args(argv)
    t0, c0 = time.perf_counter(), time.process_time()
    version0 = P.code_version()
    kinds = [k.strip() for k in args.null_kinds.split(",") if k.strip()]
    n_null, n_scale, n_iso, n_shift = args.null_runs, args.scale_runs, args.scale_runs_isolation, args.scale_runs_shift
    if args.smoke:
        kinds, n_null, n_scale, n_iso, n_shift = ["generator"], 3, 20, 5, 0  # shift: its 3 suite runs
        args.prior_runs, args.prior_lgbm_runs = 0, 0
    scale = {"random_label": n_scale, "significance": n_scale, "isolation": n_iso, "synthetic_shift": n_shift}
    jobs = [("clean", {"kind": k}, list(range(n_null))) for k in kinds]
    jobs += [("null_audit", {"audit": a}, list(range(SCALE_SEED0, SCALE_SEED0 + n))) for a, n in scale.items() if n]
    priors = [(d, args.prior_runs) for d in PRIOR_DESIGNS] + [(LGBM_DESIGN, args.prior_lgbm_runs)]
    priors = [(d, n) for d, n in priors if n]
    jobs += [("prior", {"data": d[0], "model": d[1], "n_seeds": d[2]}, list(range(n))) for d, n in priors]
    print(f"running {sum(len(j[2]) for j in jobs)} runs with {args.workers} worker(s)", file=sys.stderr, flush=True)
    recs = P.run_tasks(jobs, workers=args.workers, cache=args.cache,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    clean = {k: recs[P.task_key("clean", {"kind": k})] for k in kinds}
    desc = {"generator": "generator / ridge (suite)", "letor": "LETOR re-splits / LightGBM (suite)"}

    # the suite's false-alarm rate
    suite_rows: list[P.Rate] = []
    groups = [(desc[k], clean[k]) for k in kinds]
    if len(kinds) > 1:
        groups.append(("both (suite)", [r for k in kinds for r in clean[k]]))
    for label, rr in groups:
        k = sum(any(a["status"] == "FAIL" and a["critical"] for a in r["audits"].values()) for r in rr)
        suite_rows.append(P.Rate("suite", "clean runs", "--", label, k, len(rr), kind="false_alarm", target=0.05,
                                 counted="any critical FAIL"))
        k = sum(r["verdict"] != "GO" for r in rr)
        suite_rows.append(P.Rate("suite", "clean runs", "--", label, k, len(rr), kind="info",
                                 counted="verdict not GO (FAIL, ERROR or inconclusive)"))
        k = sum(any(a["status"] == "ERROR" for a in r["audits"].values()) for r in rr)
        suite_rows.append(P.Rate("suite", "clean runs", "--", label, k, len(rr), kind="info", counted="any ERROR"))

    # raw p-values of each gating test under the null: per design, audit alone at scale, pooled
    test_rows: list[dict[str, Any]] = []
    suite_n = sum(len(clean[k]) for k in kinds)
    for audit, what, get, key, design in TESTS:
        for label, rr in groups:
            data = label.replace("LightGBM", "ridge") if audit == "significance" else label
            test_rows.append(rejection_row(audit, what, data, [get(r) for r in rr], design))
        alone = recs[P.task_key("null_audit", {"audit": audit})] if scale[audit] else []
        if alone:
            test_rows.append(rejection_row(audit, what, "generator / ridge (audit alone)",
                                           [r[audit][key] for r in alone], design))
            if suite_n:
                test_rows.append(rejection_row(audit, what, "all null runs pooled",
                                               [get(r) for k in kinds for r in clean[k]]
                                               + [r[audit][key] for r in alone], design))

    # random_label's decisions on every null design (clean suite, audit alone, label-free priors)
    dec_rows = [decision_row(label, [r["audits"] for r in rr]) for label, rr in groups if rr]
    if scale["random_label"]:
        dec_rows.append(decision_row("generator / ridge (audit alone)",
                                     recs[P.task_key("null_audit", {"audit": "random_label"})]))
    for d, _n in priors:
        dec_rows.append(decision_row(d[3] + f" (A: {d[2]} seeds)",
                                     recs[P.task_key("prior", {"data": d[0], "model": d[1], "n_seeds": d[2]})]))
    if len([d for d, _ in priors if d in PRIOR_DESIGNS]) > 1:
        fam = [r for d, _n in priors if d in PRIOR_DESIGNS
               for r in recs[P.task_key("prior", {"data": d[0], "model": d[1], "n_seeds": d[2]})]]
        dec_rows.append(decision_row("label-free-prior family, pooled", fam))
    wall = time.perf_counter() - t0
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + ch.ru_utime + ch.ru_stime
    cmd = "python benchmarks/calibration.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    print("Suite false-alarm rate (clean runs, all six audits, Holm across gating audits):\n")
    print(P.markdown_table(suite_rows))
    print("\nRejection rates of each test's raw p-value under the null (alpha = 0.05; target 4-6%):\n")
    print(table(test_rows))
    if dec_rows:
        print("\nrandom_label decisions on null runs (raw p, no Holm, except the suite rows):\n")
        print(decision_table(dec_rows))
    errs = [f"{r['kind']}/{r['seed']}: {n}: {a.get('error', '')[:120]}" for k in kinds for r in clean[k]
            for n, a in r["audits"].items() if a["status"] == "ERROR"]
    if errs:
        print("\nERRORs:\n" + "\n".join(f"- {e}" for e in errs))
    if P.code_version() != version0:
        print(f"WARNING: the audited code changed during this run (code version {version0} at the start); "
              "runs may mix versions: rerun for a consistent table.")
    print(f"\ncommand: {cmd.strip()}")
    print(f"machine: {P.machine()}")
    print(f"time: {wall:.0f} s wall, {cpu:.0f} s CPU ({args.workers} worker(s)); code version {P.code_version()}")
    out = {"suite": [r.to_dict() for r in suite_rows], "tests": test_rows, "random_label": dec_rows,
           "command": cmd.strip(),
           "machine": P.machine(), "wall_s": wall}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return out


if __name__ == "__main__":
    main()
