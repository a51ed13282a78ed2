"""Benchmark: isolation's near-duplicate search at scale, and the candidate search's recall.

    python benchmarks/bench_near_dup.py recall [--n-train 60000] [--seeds 3] [--first-seed 0] [--noise 0.01,0.1]
    python benchmarks/bench_near_dup.py scale  [--sizes 100000,300000,1000000] [--exact-max-rows N]

``recall`` -- on MSLR-shaped synthetic data (below) with planted near-copies
(``tests/planting.py``'s ``plant_near_duplicates``: 10% of test queries copied into training with
Gaussian noise of ``noise`` x each column's SD, new ids), the isolation audit's near-duplicate
trial is run twice on the same split: exact (``near_dup_exact_max_rows`` above the training
size) and through the candidate forest (threshold 0). Printed per seed and noise: the share of
planted test rows whose nearest training row the forest found (the planted copy, or an equally
close row: the exact search is the oracle), the planted rows flagged by each (similarity above the
threshold learned from the reference), the near-copy rows of each, the exact-search rows that
the forest flags or misses, and both verdict-relevant figures (flagged share, copies) on the
clean split (false alarms).

``scale`` -- the isolation audit alone (its ``ids`` and ``near_dup`` trials and ``measure``; no
model fit) at each training size (test a third), each in a fresh child process: wall and CPU
seconds and peak RSS, and the growth exponent between consecutive sizes. Run it against another
checkout with ``PYTHONPATH=/path/to/checkout`` to compare before/after; ``--exact-max-rows``
forces the exact search everywhere (a large value) in this checkout.

Data (``mslr_like``): 136 dense features, the first 40 integer counts (Poisson with query- and
row-level log-rates), the rest continuous with MSLR-like heterogeneous scales and signs, all driven
by a few shared latent factors; labels 0-4 in MSLR-WEB30K proportions from a weak, fixed signal;
~120 items per query. Deterministic by seed, generated query block by query block.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path and not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(ROOT))
if str(ROOT / "tests") not in sys.path:  # the planting helpers live with the tests
    sys.path.insert(0, str(ROOT / "tests"))

#: MSLR-WEB30K label shares for grades 0-4
LABEL_SHARES = (0.514, 0.325, 0.134, 0.019, 0.008)
N_FEATURES, N_COUNTS, N_LATENT = 136, 40, 6


def mslr_like(n_rows: int, *, seed: int = 0, qid_start: int = 0):
    """An MSLR-shaped RankingDataset of about ``n_rows`` rows (whole queries of ~120 items)."""
    from auditor.data import RankingDataset

    fixed = np.random.default_rng(12345)  # the feature "schema": the same for every seed and split
    load_q = fixed.normal(size=(N_LATENT, N_FEATURES)) * 0.6
    load_r = fixed.normal(size=(N_LATENT, N_FEATURES)) * 0.4
    base = np.r_[fixed.uniform(0.0, 5.0, N_COUNTS), fixed.uniform(-1.0, 3.0, N_FEATURES - N_COUNTS)]
    sign = np.where(fixed.random(N_FEATURES - N_COUNTS) < 0.15, -1.0, 1.0)  # LMIR-like negative scores
    w = fixed.normal(size=N_LATENT)
    rng = np.random.default_rng(seed)
    sizes = []
    total = 0
    while total < n_rows:
        s = int(np.clip(rng.normal(120, 30), 5, 250))
        s = min(s, n_rows - total) if n_rows - total >= 5 else s
        sizes.append(s)
        total += s
    sizes = np.array(sizes)
    X = np.empty((total, N_FEATURES))
    labels = np.empty(total, dtype=np.int64)
    qid = np.repeat(np.arange(qid_start, qid_start + sizes.size), sizes)
    cuts = np.quantile(np.arange(1000), np.cumsum(LABEL_SHARES)[:-1]) / 1000
    start = 0
    for b0 in range(0, sizes.size, 500):
        bs = sizes[b0:b0 + 500]
        n = int(bs.sum())
        zq = np.repeat(rng.normal(size=(bs.size, N_LATENT)), bs, axis=0)
        zr = rng.normal(size=(n, N_LATENT))
        eta = zq @ load_q + zr @ load_r + base   # log-scale of each feature
        blk = np.empty((n, N_FEATURES))
        blk[:, :N_COUNTS] = rng.poisson(np.exp(np.minimum(eta[:, :N_COUNTS], 9.0)))
        cont = eta[:, N_COUNTS:] + 0.3 * rng.normal(size=(n, N_FEATURES - N_COUNTS))
        blk[:, N_COUNTS:] = sign * np.exp(np.minimum(cont, 12.0))
        X[start:start + n] = np.round(blk, 6)
        # a weak signal: relevance rank within the block from one latent direction plus much noise
        sig = zr @ w * 0.5 + rng.normal(size=n) * 2.0
        u = np.argsort(np.argsort(sig)) / max(n - 1, 1)
        labels[start:start + n] = np.searchsorted(cuts, u, side="right")
        start += n
    return RankingDataset(qid=qid, labels=labels, features={"f": X}, name=f"mslr-like({total})")


def mslr_split(n_train: int, seed: int = 0):
    from auditor.data import Split

    tr = mslr_like(n_train, seed=2 * seed)
    te = mslr_like(n_train // 3, seed=2 * seed + 1, qid_start=10_000_000)
    return Split(train=tr, test=te, name=f"mslr-like {tr.n_rows}/{te.n_rows}")


def _context(split, params: dict):
    from auditor.context import AuditConfig, AuditContext, ModelSpec

    return AuditContext(split, ModelSpec("rankers:make_linear"), AuditConfig(audits={"isolation": params}))


def isolation_alone(split, params: dict) -> tuple[dict, dict]:
    """Run isolation's ``ids`` and ``near_dup`` trials and ``measure`` (no model); seconds per step."""
    from auditor.audits.isolation import IsolationAudit

    a = IsolationAudit()
    ctx = _context(split, params)
    res, secs = {}, {}
    for t in a.plan(ctx):
        if t.key == "model":
            continue
        t0 = time.perf_counter()
        res[t.key] = a.run_trial(ctx, t)
        secs[t.key] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev = a.measure(ctx, res)
    secs["measure"] = time.perf_counter() - t0
    return {"measurements": ev.measurements, "near_dup": res.get("near_dup")}, secs


# --------------------------------------------------------------------------- recall
def recall(args) -> None:
    from planting import plant_near_duplicates

    print(f"recall: MSLR-like, {args.n_train} train rows (test a third), 10% of test queries near-copied; "
          f"candidate forest (threshold 0) vs exact search (oracle)")
    print("| seed | noise | planted rows | NN found | planted flagged exact / forest | copies exact / forest "
          "| flagged exact, missed by forest | extra by forest | clean: flagged share exact / forest, copies |")
    print("|---|---|---|---|---|---|---|---|---|")
    found_all = planted_all = 0
    for seed in range(getattr(args, "first_seed", 0), getattr(args, "first_seed", 0) + args.seeds):
        clean = mslr_split(args.n_train, seed)
        rep_clean = {}
        for mode, thr in (("exact", 10**12), ("forest", 0)):
            out, _ = isolation_alone(clean, {"near_dup_exact_max_rows": thr, "near_dup_permutations": 199})
            nd = out["measurements"]["near_duplicates"]
            rep_clean[mode] = (nd["rate"], nd["copy_rows"], nd["p_value"])
        for noise in args.noise:
            split = plant_near_duplicates(clean, frac=0.1, noise=noise, seed=seed)
            te = split.test
            n_orig = clean.train.n_rows
            # the planted copy of test row r: copies are appended to train in test-row order of the picked queries
            pick = np.random.default_rng(seed).choice(te.n_queries, size=max(1, int(round(0.1 * te.n_queries))),
                                                      replace=False)
            pick_rows = np.flatnonzero(np.isin(te.query_index, pick))
            runs = {}
            for mode, thr in (("exact", 10**12), ("forest", 0)):
                out, _ = isolation_alone(split, {"near_dup_exact_max_rows": thr, "near_dup_permutations": 199})
                runs[mode] = out
            ex, fo = runs["exact"], runs["forest"]
            s_ex = np.asarray(ex["near_dup"]["s_test"], float)
            s_fo = np.asarray(fo["near_dup"]["s_test"], float)
            i_ex = np.asarray(ex["near_dup"]["nn_train_row"])
            assert (i_ex[pick_rows] >= n_orig).mean() > 0.5, "planted copies should be the exact neighbours"
            found = np.isclose(s_fo[pick_rows], s_ex[pick_rows], rtol=0, atol=1e-12)
            tau_ex = ex["measurements"]["near_duplicates"]["threshold"]
            tau_fo = fo["measurements"]["near_duplicates"]["threshold"]
            fl_ex, fl_fo = s_ex > tau_ex, s_fo > tau_fo
            cex = ex["measurements"]["near_duplicates"]["copy_rows"]
            cfo = fo["measurements"]["near_duplicates"]["copy_rows"]
            found_all += int(found.sum())
            planted_all += pick_rows.size
            print(f"| {seed} | {noise:g} | {pick_rows.size} | {found.mean():.2%} | {fl_ex[pick_rows].sum()} / "
                  f"{fl_fo[pick_rows].sum()} | {cex} / {cfo} | {int((fl_ex & ~fl_fo).sum())} | "
                  f"{int((fl_fo & ~fl_ex).sum())} | {rep_clean['exact'][0]:.3%} / {rep_clean['forest'][0]:.3%}, "
                  f"{rep_clean['exact'][1]} / {rep_clean['forest'][1]} |")
    print(f"planted rows whose nearest training row the forest found: {found_all}/{planted_all} "
          f"({found_all / max(planted_all, 1):.3%})")


# --------------------------------------------------------------------------- scale
def _child(n_train: int, params: dict) -> None:
    t0 = time.perf_counter()
    split = mslr_split(n_train, 0)
    gen = time.perf_counter() - t0
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    c0 = time.process_time()
    t0 = time.perf_counter()
    out, secs = isolation_alone(split, params)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    nd = out["measurements"].get("near_duplicates", {})
    data_mb = (split.train.n_rows + split.test.n_rows) * N_FEATURES * 8 / 2**20
    print(json.dumps({"n_train": split.train.n_rows, "n_test": split.test.n_rows, "gen_s": gen, "wall": wall,
                      "cpu": cpu, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_after_data_mb": rss0, "data_mb": data_mb, "steps": secs,
                      "backend": nd.get("backend"), "flagged": nd.get("flagged_rows")}))


def scale(args) -> None:
    params = {"near_dup_permutations": 199}
    if args.exact_max_rows is not None:
        params["near_dup_exact_max_rows"] = args.exact_max_rows
    rows = []
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, cpus {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}, PYTHONPATH={os.environ.get('PYTHONPATH', '')}")
    print("| train rows | test rows | wall s | CPU s | ids s | near_dup s | measure s | peak RSS MB | data MB | search |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        cmd = [sys.executable, __file__, "_child", str(n), json.dumps(params)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        if r.returncode:
            print(f"| {n} | failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode} |")
            continue
        d = json.loads(r.stdout.strip().splitlines()[-1])
        rows.append(d)
        st = d["steps"]
        print(f"| {d['n_train']} | {d['n_test']} | {d['wall']:.1f} | {d['cpu']:.1f} | {st.get('ids', 0):.1f} | "
              f"{st.get('near_dup', 0):.1f} | {st.get('measure', 0):.1f} | {d['peak_rss_mb']:.0f} | "
              f"{d['data_mb']:.0f} | {d['backend']} |", flush=True)
    for a, b in zip(rows, rows[1:]):
        e = np.log(b["wall"] / a["wall"]) / np.log(b["n_train"] / a["n_train"])
        print(f"growth {a['n_train']} -> {b['n_train']}: wall ~ n^{e:.2f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        _child(int(sys.argv[2]), json.loads(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recall")
    r.add_argument("--n-train", type=int, default=60000)
    r.add_argument("--seeds", type=int, default=3)
    r.add_argument("--first-seed", type=int, default=0)
    r.add_argument("--noise", type=lambda s: [float(x) for x in s.split(",")], default=[0.01, 0.1])
    s = sub.add_parser("scale")
    s.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100000, 300000, 1000000])
    s.add_argument("--exact-max-rows", type=int, default=None)
    s.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args()
    recall(args) if args.cmd == "recall" else scale(args)


if __name__ == "__main__":
    main()
