"""How often the synthetic-shift audit can earn a PASS on clean LETOR re-splits (issue 13 (a)).

The audit PASSes only when the domain classifier's one-sided 95% upper AUC bound
(:func:`auditor.audits.synthetic_shift.auc_upper_bound`) lies below ``auc_fail`` (0.625); a clean
pair whose bound reaches it is INCONCLUSIVE unless the shift test is significant. This runs the
classifier test alone (the part that decides the bound; MMD only enters the p-value) on the
clean-suite design -- ``_planting.letor_resplit(seed)``: 49 held-out real queries as a perfectly
faithful "synthetic" set against 150 real training queries -- and reports, over the splits:

- the out-of-fold AUC's mean, median and SD across splits, against the query bootstrap's SE
  (the CI holds the fitted classifiers fixed);
- the share of splits whose bound reaches 0.625, 0.65, 0.675 and 0.70 while the classifier's
  held-out test is not significant (p >= 0.025, its Bonferroni half of alpha), with Wilson CIs.

Run::

    python benchmarks/shift_bound.py --seeds 27          # ~5 s CPU per split
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _planting as P  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=27, help="re-splits (seeds 0..N-1)")
    ap.add_argument("--first-seed", type=int, default=0)
    args = ap.parse_args(argv)
    from auditor import twosample as T
    from auditor.audits.synthetic_shift import auc_upper_bound

    t0, c0 = time.perf_counter(), time.process_time()
    rows = []
    for s in range(args.first_seed, args.first_seed + args.seeds):
        sp = P.letor_resplit(s)
        r = T.classifier_test(T.TwoSample.from_datasets(sp.synthetic, sp.train), seed=1000 + s)
        rows.append({"seed": s, "auc": r.auc, "lo": r.ci_low, "hi": r.ci_high, "p": r.p_value,
                     "ub": auc_upper_bound(r.auc, r.ci_high), "chosen": r.chosen})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    a = np.array([r["auc"] for r in rows])
    ub = np.array([r["ub"] for r in rows])
    ns = np.array([r["p"] >= 0.025 for r in rows])
    se = np.mean([(r["hi"] - r["lo"]) / 3.92 for r in rows])
    print(f"{len(rows)} clean LETOR re-splits (49 vs 150 queries), seeds {args.first_seed}-{args.first_seed + args.seeds - 1}")
    print(f"out-of-fold AUC: mean {a.mean():.3f}, median {np.median(a):.3f}, SD across splits {a.std(ddof=1):.3f} "
          f"(min {a.min():.3f}, max {a.max():.3f}); query-bootstrap SE {se:.3f}")
    print("| bound reaches | not significant | share [95% Wilson CI] |\n|---|---|---|")
    for m in (0.625, 0.65, 0.675, 0.70):
        k = int(np.sum((ub >= m) & ns))
        lo, hi = P.wilson(k, len(rows))
        print(f"| {m} | {k}/{len(rows)} | {k / len(rows):.1%} [{lo:.1%}, {hi:.1%}] |")
    print(f"machine: {P.machine()}; {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU")
    return {"rows": rows}


if __name__ == "__main__":
    main()
