"""Variant B's gating decision recomputed from cached records at a new floor (issue 13 (b)).

Each record holds B's mean excess, the one-sided p of excess > 0 (p_b) and of excess > 0.01 (p),
and the margin (0.2 x headroom). The t-test's df (informative queries - 1) is recovered as the value
that reproduces the recorded p at 0.01 from p_b, then the p at floor max(0.01, share x headroom) is
recomputed exactly from the same t statistic's standard error."""
import json, glob, sys
import numpy as np
from scipy import stats as st
share = float(sys.argv[1]); cache = sys.argv[2]
for f in sorted(glob.glob(cache + "/*.jsonl")):
    R = [json.loads(l) for l in open(f)]
    rl = [r["random_label"] for r in R if "random_label" in r]
    if not rl: continue
    fac = 4 if "copies" in f else 1
    k = kk = k0 = 0; ps = []; dferr = 0.0
    for r in rl:
        e, pb, p01, mb = r["excess_b"], r["p_b"], r["p"], r.get("margin_b")
        if None in (e, pb, p01, mb): continue
        kk += 1
        best = None
        for n in range(5, 200):
            t0 = st.t.isf(pb, n - 1)
            if t0 == 0 or not np.isfinite(t0): continue
            se = e / t0
            err = abs(st.t.sf((e - 0.01) / se, n - 1) - p01)
            if best is None or err < best[0]: best = (err, n, se)
        err, n, se = best; dferr = max(dferr, err)
        fl = max(0.01, share * mb / 0.2)
        p = st.t.sf((e - fl) / se, n - 1); ps.append(p)
        k += min(1, p * fac) < 0.05; k0 += min(1, p01 * fac) < 0.05
    name = f.split("/")[-1].rsplit("-", 1)[0]
    print(f"{name}: FAIL {k0}/{kk} at 0.01 -> {k}/{kk} at max(0.01, {share} x headroom) (x{fac}); "
          f"min p {min(ps):.3f}; max |p reproduced - recorded| at 0.01: {dferr:.1e}")
