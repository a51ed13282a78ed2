"""Benchmark: nDCG@10 (and a 4-metric set) over 50,000 queries x 100 candidates, ours vs ranx and pytrec_eval.

    python benchmarks/bench_metrics.py [--queries 50000] [--candidates 100] [--reps 5] [--ties-compare]

All three evaluate the same generated data in this one process: graded labels 0-4 (60% zeros),
continuous scores (so no ties and identical rankings everywhere), string doc ids for the peers
and the same ids as integers for us (our tie-break path runs, but never fires).

What is timed (every contender ``--reps`` times, taking turns, best and median reported, with
the CPU time of this process beside the wall time: ours uses two threads from 1M rows, the peers
one):

- **kernel only**: ours, ``auditor.metrics.evaluate_many`` on flat numpy arrays (labels, scores,
  query offsets), i.e. what every audit calls (``ties="average"``); ranx,
  ``ranx.evaluate(qrels, run, ...)`` with ``Qrels`` / ``Run`` built beforehand and numba
  compiled; pytrec_eval, ``RelevanceEvaluator.evaluate(run)`` with the evaluator built
  beforehand (its input is the run's nested dict, so this already includes reading it).
- **same dicts**: both sides start from the nested dicts pytrec_eval takes: ours converts them to
  flat arrays (judged-but-unretrieved documents as ``retrieved=False`` rows, docnos for the
  trec_eval tie-break) and evaluates; pytrec_eval builds its evaluator from the qrels dict and
  evaluates the run dict. This is the ratio a caller holding dicts sees.
- **ranx's ``Qrels(qrels)`` + ``Run(run)`` construction** on its own row: every ranx call on data
  in memory pays it once.

The values compared with the peers are ours with ``ties="trec_eval"`` (their convention), which
differ from the timed ones only on the few queries with exactly tied scores; they are checked
to agree (max per-query difference) before any time is printed. Peak memory of our call is
measured separately with ``tracemalloc`` (numpy reports its buffers). Needs the ``[bench]``
extra (``pip install ranx pytrec-eval-terrier``).

``--ties-compare`` (no peers needed) times the cost of tie-aware evaluation: our default
``ties="average"`` (expected value over every order of tied items, what the audits use) against
``ties="trec_eval"`` (ties broken by item id: the code path every call took before tie-aware
evaluation existed), interleaved repeat by repeat so machine load hits both alike, on the data
above (continuous scores: almost no ties) and on the same data with scores rounded to 1/20
(every query heavily tied). The issue-13 budget: at most 1.5x slower on data without ties.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
import tracemalloc

import numpy as np

from auditor import metrics as M

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import best_of, cpu_model, interleaved  # noqa: E402


def machine() -> str:
    return f"{cpu_model()}, Python {platform.python_version()}, numpy {np.__version__}"


def generate(nq: int, m: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(5, size=nq * m, p=[0.6, 0.2, 0.1, 0.06, 0.04]).astype(np.float64)
    # float32-representable scores: pytrec_eval keeps scores in single precision, so near-equal
    # doubles would tie there and not here; the rare exact ties are broken the same way by all
    # (doc ids compared as zero-padded strings = as numbers), except ranx (arbitrary order)
    scores = rng.random(nq * m, dtype=np.float32).astype(np.float64)
    offsets = np.arange(0, nq * m + 1, m, dtype=np.int64)
    item = np.tile(np.arange(m, dtype=np.int64), nq)
    return labels, scores, offsets, item




def n_tied_queries(scores: np.ndarray, nq: int, m: int) -> int:
    """Queries holding at least two equal scores."""
    S = np.sort(scores.reshape(nq, m), axis=1)
    return int((S[:, 1:] == S[:, :-1]).any(axis=1).sum())


def ties_compare(labels, scores, offsets, item, reps: int) -> None:
    """Interleaved repeats: ties='average' vs ties='trec_eval' on untied and tied scores."""
    nq, m = offsets.size - 1, int(offsets[1])
    cases = [("continuous scores", scores), ("scores rounded to 1/20", np.round(scores * 20) / 20)]
    sets = [("nDCG@10", ["ndcg@10"]), ("nDCG@10+MAP+MRR+P@10", ["ndcg@10", "map", "mrr", "p@10"])]
    print()
    print("| data | queries with ties | metric set | ties='average' wall best (median) / CPU median s | "
          "ties='trec_eval' wall best (median) / CPU median s | ratio wall best (median) / CPU |")
    print("|---|---:|---|---:|---:|---:|")
    for cname, sc in cases:
        nt = n_tied_queries(sc, nq, m)
        for sname, ms in sets:
            t: dict[str, list[float]] = {"average": [], "trec_eval": []}
            c: dict[str, list[float]] = {"average": [], "trec_eval": []}
            for mode in t:  # warm-up (first-touch page faults, caches)
                M.evaluate_many(ms, labels, sc, offsets, item_id=item, ties=mode)
            for _ in range(reps):
                for mode in ("average", "trec_eval"):
                    gc.collect()
                    c0, t0 = time.process_time(), time.perf_counter()
                    M.evaluate_many(ms, labels, sc, offsets, item_id=item, ties=mode)
                    t[mode].append(time.perf_counter() - t0)
                    c[mode].append(time.process_time() - c0)
            a, b = np.array(t["average"]), np.array(t["trec_eval"])
            ca, cb = np.median(c["average"]), np.median(c["trec_eval"])
            print(f"| {cname} | {nt:,} of {nq:,} | {sname} | {a.min():.4f} ({np.median(a):.4f}) / {ca:.4f} | "
                  f"{b.min():.4f} ({np.median(b):.4f}) / {cb:.4f} | {a.min() / b.min():.2f}x "
                  f"({np.median(a) / np.median(b):.2f}x) / {ca / cb:.2f}x |")


def peak_mb(fn) -> float:
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=50_000)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--reps", type=int, default=5, help="repeats of every contender, interleaved")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--ties-compare", action="store_true",
                    help="only time ties='average' against ties='trec_eval' (interleaved; no peers)")
    a = ap.parse_args(argv)
    nq, m = a.queries, a.candidates
    labels, scores, offsets, item = generate(nq, m)
    print(f"# bench_metrics: {nq:,} queries x {m} candidates = {nq * m:,} rows")
    print(f"# machine: {machine()}")
    print(f"# command: python benchmarks/bench_metrics.py --queries {nq} --candidates {m} --reps {a.reps}"
          + (" --ties-compare" if a.ties_compare else ""))
    print(f"# queries with tied scores: {n_tied_queries(scores, nq, m):,} of {nq:,}")
    print(f"# load average (1 min) at start: {os.getloadavg()[0]:.2f}, on {len(os.sched_getaffinity(0))} cores")
    if a.ties_compare:
        ties_compare(labels, scores, offsets, item, a.reps)
        return 0

    four = ["ndcg@10", "map", "mrr", "p@10"]
    sets = [("nDCG@10", ["ndcg@10"], ["ndcg@10"], {"ndcg_cut_10"}),
            ("nDCG@10+MAP+MRR+P@10", four, ["ndcg@10", "map", "mrr", "precision@10"],
             {"ndcg_cut_10", "map", "recip_rank", "P_10"})]
    mem = {name: peak_mb(lambda ms=ms: M.evaluate_many(ms, labels, scores, offsets, item_id=item))
           for name, ms, _, _ in sets}
    if a.skip_peers:
        print()
        print("| metric set | ours best (median) wall s | ours best CPU s | ours peak MB |")
        print("|---|---:|---:|---:|")
        for name, ms, _, _ in sets:
            o = best_of(lambda ms=ms: M.evaluate_many(ms, labels, scores, offsets, item_id=item), a.reps)
            print(f"| {name} | {o[0]:.4f} ({o[1]:.4f}) | {o[3]:.4f} | {mem[name]:.0f} |")
        return 0

    import pytrec_eval
    from ranx import Qrels, Run, evaluate

    qrels, run = peer_dicts(labels, scores, nq, m)
    rq, rr = Qrels(qrels), Run(run)
    evaluate(rq, rr, "ndcg@10")  # numba compile, not timed
    evaluate(rq, rr, sets[1][2])
    # ranx's Qrels/Run construction: its own row (every ranx call from data in memory pays it)
    build = interleaved({"ranx Qrels(qrels) + Run(run)": lambda: (Qrels(qrels), Run(run))}, a.reps)
    rows: list[tuple[str, str, tuple, tuple]] = []
    agree: list[str] = []
    for name, ms, ranx_ms, pte_ms in sets:
        ev = pytrec_eval.RelevanceEvaluator(qrels, pte_ms)
        t = interleaved({
            "ours": lambda ms=ms: M.evaluate_many(ms, labels, scores, offsets, item_id=item),
            "ranx": lambda r=ranx_ms: evaluate(rq, rr, r, return_mean=False),
            "pytrec_eval": lambda ev=ev: ev.evaluate(run),
            "ours from dicts": lambda ms=ms: ours_from_dicts(ms, qrels, run),
            "pytrec_eval from dicts": lambda p=pte_ms: pytrec_eval.RelevanceEvaluator(qrels, p).evaluate(run),
        }, a.reps)
        rows += [(name, "kernel only: ranx `evaluate` (Qrels/Run built beforehand)", t["ours"], t["ranx"]),
                 (name, "kernel only: pytrec_eval `evaluate(run)` (evaluator built beforehand)", t["ours"],
                  t["pytrec_eval"]),
                 (name, "same dicts: pytrec_eval `RelevanceEvaluator(qrels)` + `evaluate(run)` vs ours: dicts to "
                  "arrays + `evaluate_many`", t["ours from dicts"], t["pytrec_eval from dicts"])]
        agree.append(check_agreement(name, ms, pte_ms, ranx_ms, labels, scores, offsets, item, nq, t, rr))
    for line in agree:
        print(line)
    if any(line.startswith("ERROR") for line in agree):
        print("ERROR: values disagree; timings are meaningless", file=sys.stderr)
        return 1
    b = build["ranx Qrels(qrels) + Run(run)"]
    print(f"# every contender timed {a.reps} times, taking turns (best reported; CPU = this process, all threads)")
    print()
    print("| metric set | comparison | ours best (median) wall s | ours best CPU s | peer best (median) wall s | "
          "peer best CPU s | peer / ours, wall | peer / ours, CPU |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, what, o, p in rows:
        print(f"| {name} | {what} | {o[0]:.4f} ({o[1]:.4f}) | {o[3]:.4f} | {p[0]:.3f} ({p[1]:.3f}) | {p[3]:.3f} | "
              f"{p[0] / o[0]:.1f}x | {p[3] / o[3]:.1f}x |")
    print(f"| (any) | ranx `Qrels(qrels)` + `Run(run)` construction alone | - | - | {b[0]:.2f} ({b[1]:.2f}) | "
          f"{b[3]:.2f} | - | - |")
    print()
    print("ours peak memory (tracemalloc): " + ", ".join(f"{k} {v:.0f} MB" for k, v in mem.items()))
    return 0


def peer_dicts(labels: np.ndarray, scores: np.ndarray, nq: int, m: int
               ) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    """The nested dicts pytrec_eval and ranx take: qrels (relevant documents only) and run."""
    docs = [f"d{j:05d}" for j in range(m)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    L = labels.reshape(nq, m).astype(int).tolist()
    S = scores.reshape(nq, m).tolist()
    for q in range(nq):
        qrels[f"q{q}"] = {d: v for d, v in zip(docs, L[q]) if v > 0}
        run[f"q{q}"] = dict(zip(docs, S[q]))
    return qrels, run


def ours_from_dicts(metrics: list[str], qrels: dict, run: dict) -> dict[str, np.ndarray]:
    """What a caller holding pytrec_eval's dicts does to use ours: flat arrays, then one call.

    Judged documents the run lacks become ``retrieved=False`` rows (they count in the ideal DCG
    and in R); ties are broken by docno as trec_eval does (``ties="trec_eval"``)."""
    scores: list[float] = []
    labels: list[int] = []
    docids: list[str] = []
    sizes: list[int] = []
    extra: list[tuple[int, int]] = []  # (position in the flat arrays, label) of judged, unretrieved documents
    for q, ranked in run.items():
        judged = qrels.get(q, {})
        scores.extend(ranked.values())
        labels.extend(judged.get(d, 0) for d in ranked)
        docids.extend(ranked)
        missing = [v for d, v in judged.items() if d not in ranked]
        scores.extend([0.0] * len(missing))
        labels.extend(missing)
        docids.extend([""] * len(missing))
        extra.extend((len(scores) - len(missing) + i, v) for i, v in enumerate(missing))
        sizes.append(len(ranked) + len(missing))
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    retrieved = None
    if extra:
        retrieved = np.ones(len(scores), dtype=bool)
        retrieved[[i for i, _ in extra]] = False
    return M.evaluate_many(metrics, np.array(labels, dtype=np.float64), np.array(scores), offsets,
                           item_id=np.array(docids), retrieved=retrieved, ties="trec_eval")


def check_agreement(name, ms, pte_ms, ranx_ms, labels, scores, offsets, item, nq, t, rr) -> str:
    """Per-query agreement of every contender (the peers' convention: ties broken by doc id)."""
    ours_v = M.evaluate_many(ms, labels, scores, offsets, item_id=item, ties="trec_eval")
    to_pte = {"ndcg@10": "ndcg_cut_10", "map": "map", "mrr": "recip_rank", "p@10": "P_10"}
    to_ranx = dict(zip(ms, ranx_ms))
    pte = t["pytrec_eval"][2]
    ranx_keys = np.array([int(k[1:]) for k in rr.keys()])
    worst_pte = worst_dicts = 0.0
    n_ranx = 0
    for k in ms:
        pv = np.array([pte[f"q{q}"][to_pte[k]] for q in range(nq)])
        worst_pte = max(worst_pte, float(np.nanmax(np.abs(ours_v[k] - pv))))
        worst_dicts = max(worst_dicts, float(np.nanmax(np.abs(t["ours from dicts"][2][k] - ours_v[k]))))
        rv = np.full(nq, np.nan)
        res = t["ranx"][2]
        rv[ranx_keys] = np.asarray(res if len(ms) == 1 else res[to_ranx[k]], dtype=float)
        n_ranx = max(n_ranx, int((np.abs(ours_v[k] - rv) > 1e-9).sum()))
    ok = max(worst_pte, worst_dicts) <= 1e-9
    return (f"{'#' if ok else 'ERROR:'} {name}: max |ours - pytrec_eval| = {worst_pte:.1e}, ours from dicts vs "
            f"ours from arrays {worst_dicts:.1e}; ours and ranx differ on {n_ranx} of {nq} queries "
            "(exact score ties, which ranx orders arbitrarily)")


if __name__ == "__main__":
    sys.exit(main())
