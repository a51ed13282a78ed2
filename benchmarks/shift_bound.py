"""How often the synthetic-shift audit can earn a PASS on clean LETOR re-splits (issue 13 part 3).

The audit PASSes only when the domain classifier's one-sided 95% upper AUC bound
(:func:`auditor.audits.synthetic_shift.auc_upper_bound`) lies below ``auc_rule_out`` (0.70) and
the AUC itself below ``auc_fail`` (0.625); a PASS whose bound lies in [0.625, 0.70) says that a
medium shift is not ruled out. This runs the classifier test alone (the part that decides the
bound; MMD only enters the p-value) on the clean-suite design -- ``_planting.letor_resplit(seed)``:
49 held-out real queries as a perfectly faithful "synthetic" set against 150 real training
queries -- and reports, over the splits:

- the out-of-fold AUC's mean, median and SD across splits, against the query bootstrap's SE
  (the CI holds the fitted classifiers fixed);
- each split decided by the audit's own ``decide`` at ``auc_rule_out`` = 0.625 (the former rule),
  0.65, 0.675 and 0.70 (the default), with gating p = 2 x the classifier's p (the Bonferroni
  pair without the MMD test, whose smaller p could only make a run significant): how many are
  INCONCLUSIVE and how many PASS with a medium shift not ruled out, with Wilson CIs.

Each split's numbers are printed on stderr as one JSON line; ``--rows FILE`` re-decides such
lines (e.g. a saved stderr) without rerunning the classifier.

Run::

    python benchmarks/shift_bound.py --seeds 27          # ~5 s CPU per split
    python benchmarks/shift_bound.py --seeds 60 2> rows.jsonl
    python benchmarks/shift_bound.py --rows rows.jsonl   # re-decide, seconds
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _planting as P  # noqa: E402

RULE_OUT = (0.625, 0.65, 0.675, 0.70)


def _classify(rows: list[dict[str, Any]], rule_out: float) -> list[str]:
    """Each split decided by SyntheticShiftAudit.decide: "inconclusive", "pass_medium_open" or
    "pass" (or the condition's status when the classifier test alone is significant)."""
    from auditor.audits.base import Evidence
    from auditor.audits.synthetic_shift import SyntheticShiftAudit
    from auditor.context import AuditConfig, AuditContext
    from auditor.synthetic import make_synthetic_split

    audit = SyntheticShiftAudit()
    # decide() reads only the measurements, the parameters and alpha: any small split serves
    ctx = AuditContext(make_synthetic_split(n_train_queries=4, n_test_queries=2, n_items=4, seed=0),
                       P.ModelSpec("rankers:make_linear"),
                       AuditConfig(audits={"synthetic_shift": {"auc_rule_out": rule_out}}))
    p_fail = float(audit.defaults["auc_fail"])
    out = []
    for r in rows:
        m = {"alpha": float(ctx.config.alpha), "auc": r["auc"], "auc_ci_low": r["lo"], "auc_ci_high": r["hi"],
             "auc_upper_one_sided": r["ub"], "auc_warn": float(audit.defaults["auc_warn"]), "auc_fail": p_fail,
             "auc_rule_out": rule_out, "mode": "synthetic", "sample_a": "synthetic", "sample_b": "train",
             "label_shift": None, "ks_n_rejected_bh": 0, "ks_n_features": 0, "mmd_p_value": 1.0,
             "queries_a": r.get("queries_a", 49), "queries_b": r.get("queries_b", 150)}
        p = min(1.0, 2.0 * float(r["p"]))
        d = audit.decide(ctx, Evidence(m, p_value=p), p)
        status = d.status or d.conditions[0].status
        if d.inconclusive:
            out.append("inconclusive")
        elif status == "PASS":
            out.append("pass_medium_open" if r["ub"] >= p_fail else "pass")
        else:
            out.append(status.lower())
    return out


def _read_rows(path: str) -> list[dict[str, Any]]:
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith('{"seed"'):
            rows.append(json.loads(line))
    if not rows:
        raise SystemExit(f"{path}: no split rows (JSON lines starting with {{\"seed\"...) found")
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=27, help="re-splits (seeds first-seed .. first-seed + N - 1)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--rows", help="re-decide the split rows (stderr JSON lines) of an earlier run instead")
    args = ap.parse_args(argv)
    from auditor import twosample as T
    from auditor.audits.synthetic_shift import auc_upper_bound

    t0, c0 = time.perf_counter(), time.process_time()
    if args.rows:
        rows = _read_rows(args.rows)
    else:
        rows = []
        for s in range(args.first_seed, args.first_seed + args.seeds):
            sp = P.letor_resplit(s)
            r = T.classifier_test(T.TwoSample.from_datasets(sp.synthetic, sp.train), seed=1000 + s)
            rows.append({"seed": s, "auc": r.auc, "lo": r.ci_low, "hi": r.ci_high, "p": r.p_value,
                         "ub": auc_upper_bound(r.auc, r.ci_high), "chosen": r.chosen,
                         "queries_a": sp.synthetic.n_queries, "queries_b": sp.train.n_queries})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    seeds = [r["seed"] for r in rows]
    a = np.array([r["auc"] for r in rows])
    se = np.mean([(r["hi"] - r["lo"]) / 3.92 for r in rows])
    n = len(rows)
    print(f"{n} clean LETOR re-splits (49 vs 150 queries), seeds {min(seeds)}-{max(seeds)}"
          + (f" (re-decided from {args.rows})" if args.rows else ""))
    sd = f"{a.std(ddof=1):.3f}" if n > 1 else "n/a"
    print(f"out-of-fold AUC: mean {a.mean():.3f}, median {np.median(a):.3f}, SD across splits {sd} "
          f"(min {a.min():.3f}, max {a.max():.3f}); query-bootstrap SE {se:.3f}")
    print("| auc_rule_out | INCONCLUSIVE [95% Wilson CI] | PASS, medium shift not ruled out | PASS, FAIL size ruled out "
          "| other |\n|---|---|---|---|---|")
    decided = {}
    for x in RULE_OUT:
        c = _classify(rows, x)
        decided[x] = c
        k = c.count("inconclusive")
        lo, hi = P.wilson(k, n)
        other = n - k - c.count("pass_medium_open") - c.count("pass")
        print(f"| {x}{' (default)' if x == 0.70 else ''} | {k}/{n} = {k / n:.1%} [{lo:.1%}, {hi:.1%}] | "
              f"{c.count('pass_medium_open')}/{n} | {c.count('pass')}/{n} | {other}/{n} |")
    inc = [s for s, c in zip(seeds, decided[0.70]) if c == "inconclusive"]
    if inc:
        print("INCONCLUSIVE at the default: " + ", ".join(
            f"seed {r['seed']} (AUC {r['auc']:.3f}, bound {r['ub']:.3f}, p {r['p']:.3g})"
            for r in rows if r["seed"] in inc))
    print(f"machine: {P.machine()}; {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU")
    return {"rows": rows, "decided": decided}


if __name__ == "__main__":
    main()
