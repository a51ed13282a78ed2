"""Benchmark: `audit eval` end to end on 20,000 queries x 100 candidates TREC files, ours vs ranx and pytrec_eval.

    python benchmarks/bench_eval.py [--queries 20000] [--candidates 100] [--reps 3] [--dir DIR]

Generates (once, seeded, in ``--dir`` or a temp dir) a run file ``qid Q0 docno rank score tag``
with 100 retrieved documents per query (scores with 9 decimals, so rankings agree between
tools) and a qrels file judging 100 documents per query: 70 of the retrieved ones and 30 that
were not retrieved (those count in the ideal DCG), labels 0-3.

Timed, each including reading both files (every contender ``--reps`` times, taking turns so
that load hits them alike; best and median wall, best CPU; same process, warm caches):

- ours: the ``audit eval`` click command (``auditor.evaluate.eval_cmd``) invoked in-process with
  ``--qrels Q --run R -m ndcg@10 --json``: reading, joining, nDCG@10, JSON output.
- ranx: ``Qrels.from_file(Q, kind="trec")`` + ``Run.from_file(R, kind="trec")`` +
  ``evaluate(qrels, run, "ndcg@10")`` (numba compiled beforehand on a small file).
- pytrec_eval: ``parse_qrel`` + ``parse_run`` + ``RelevanceEvaluator(...).evaluate``.
- ranx's reading and ``Qrels``/``Run`` construction alone, and its ``evaluate`` alone, as rows of
  their own (where ranx's time goes).

Per-query values are checked against pytrec_eval (trec_eval's C code) before any time is
printed.

``--suite trec-eval`` (also part of the default ``--suite all``): ``audit trec-eval -c -m all_trec``
against the C trec_eval 10.0-rc3 (built from tests/data/trec_eval's source tarball in the
benchmark's setup; skipped with a note where no C compiler exists), pytrec_eval (all its
measures) and ranx (the all_trec measures it has: map, mrr, ndcg, ndcg@10, precision@10,
recall@100, r-precision, bpref). Ours and C are timed as processes (``audit trec-eval ...``, the console script,
or ``python -m auditor.cli trec-eval ...`` where the package is not installed, vs ``trec_eval ...``;
output to a file, start-up included); our output must be
byte-identical to C's. Ours also runs in-process, to compare like with like against the
in-process peers, through ``auditor.trec_eval.main`` (what the ``audit trec-eval`` command calls:
cycle collection off during the run, the process's malloc settings; the private
``command.main`` leaves both as the calling process has them, and measured 0.1-0.2 s slower
in this process, which by then holds the peers' objects). The tools are interleaved: each of ``--reps`` rounds runs every tool once, in
turn, and the table gives the best and median of the rounds (CPU: best). The CLI's start-up (``audit trec-eval --version``) is
timed on its own. Our peak memory is measured in a fresh child process: tracemalloc peak (numpy and
Python objects) plus pyarrow's memory-pool peak, and the growth of the peak RSS.
Needs the ``[bench]`` extra (``pip install ranx pytrec-eval-terrier``).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from _common import best_of, interleaved  # noqa: E402
from bench_metrics import machine  # noqa: E402


def generate(dirpath: Path, nq: int, m: int, seed: int = 0) -> tuple[Path, Path]:
    """Write run and qrels files (skipped when they exist with the same parameters)."""
    run_p, qrels_p = dirpath / f"run_{nq}x{m}.txt", dirpath / f"qrels_{nq}x{m}.txt"
    if run_p.exists() and qrels_p.exists():
        return run_p, qrels_p
    rng = np.random.default_rng(seed)
    n_unret = max(1, int(0.3 * m))
    n_judged_ret = int(0.7 * m)
    qids = np.arange(1, nq + 1) + 100_000
    with open(run_p, "w") as fr, open(qrels_p, "w") as fq:
        for q in qids:
            docs = rng.choice(10_000_000, size=m + n_unret, replace=False)
            scores = np.sort(rng.random(m))[::-1] * 20
            names = [f"DOC{d:08d}" for d in docs]
            fr.write("".join(f"{q} Q0 {names[j]} {j + 1} {scores[j]:.9f} bench\n" for j in range(m)))
            judged = list(rng.choice(m, size=n_judged_ret, replace=False)) + list(range(m, m + n_unret))
            labels = rng.choice(4, size=len(judged), p=[0.6, 0.2, 0.12, 0.08])
            fq.write("".join(f"{q} 0 {names[j]} {lab}\n" for j, lab in zip(judged, labels)))
    return run_p, qrels_p


def ours(qrels: Path, run: Path) -> dict:
    from click.testing import CliRunner

    from auditor.evaluate import eval_cmd

    r = CliRunner().invoke(eval_cmd, ["--qrels", str(qrels), "--run", str(run), "-m", "ndcg@10", "--json"])
    if r.exit_code != 0:
        raise RuntimeError(r.output)
    return json.loads(r.stdout)




def _row(t: tuple) -> tuple[float, float, float]:
    """(best wall, median wall, best CPU) of an :func:`interleaved` entry."""
    return t[0], t[1], t[3]


def _reset_peak_rss() -> float:
    """Collect garbage, reset the kernel's high-water mark (VmHWM) and return the current RSS in MB.

    The peak RSS of this process so far (ru_maxrss even carries the forking parent's peak over
    exec) would hide the run's own peak; the caller reads VmHWM back after the run.
    """
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _vm("VmRSS")


def _vm(key: str) -> float:
    """A /proc/self/status memory figure in MB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child_memory(qrels: str, run: str, small: tuple[str, str], traced: bool) -> None:
    """In a fresh process: peak memory of one `audit eval` run on the big files (prints JSON).

    The process first evaluates a small pair of files, so code and library pages are already
    resident; ``rss_peak_growth_mb`` is then the growth of the peak resident set during the big
    run: all data (numpy, Arrow, Python objects), allocator slack included. With ``traced``,
    tracemalloc's peak (numpy and Python allocations) is reported instead (it perturbs RSS).
    """
    import pyarrow as pa

    ours(Path(small[0]), Path(small[1]))
    rss0 = _reset_peak_rss()
    if traced:
        tracemalloc.start()
    ours(Path(qrels), Path(run))
    out = {"arrow_pool_peak_mb": max(pa.default_memory_pool().max_memory(),
                                     getattr(pa, "jemalloc_memory_pool", pa.default_memory_pool)().max_memory()) / 2**20}
    if traced:
        out["tracemalloc_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    else:
        out["rss_peak_growth_mb"] = _vm("VmHWM") - rss0
    print(json.dumps(out))


def _proc(cmd: list[str], out_path: Path) -> tuple[float, float]:
    """(wall s, CPU s of the child) of one process writing its stdout to ``out_path``."""
    r0 = os.times()
    t = time.perf_counter()
    with open(out_path, "w") as f:
        subprocess.run(cmd, stdout=f, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    r1 = os.times()
    return wall, (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)


def _best_proc(cmd: list[str], out_path: Path, reps: int) -> tuple[float, float, float]:
    runs = [_proc(cmd, out_path) for _ in range(reps)]
    walls = sorted(w for w, _ in runs)
    return walls[0], float(np.median(walls)), min(c for _, c in runs)


def _steal_seconds() -> float | None:
    """CPU time the hypervisor gave to other guests since boot (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _trec_eval_inproc(argv: list[str]) -> None:
    """``audit trec-eval ARGV`` in this process, output discarded: :func:`auditor.trec_eval.main`, what the
    ``audit trec-eval`` command calls (cycle collection off during the run, the process's malloc settings)."""
    import contextlib
    import io

    from auditor.trec_eval import main as te_main

    with contextlib.redirect_stdout(io.StringIO()):
        rc = te_main(argv)
    if rc != 0:
        raise RuntimeError(f"audit trec-eval {' '.join(argv)} exited {rc}")


def child_rss_trec_eval(qrels: str, run: str, sq: str, sr: str) -> None:
    """In a fresh process: growth of the peak RSS during one `audit trec-eval -c -m all_trec` run."""
    _trec_eval_inproc(["-c", "-m", "all_trec", sq, sr])
    rss0 = _reset_peak_rss()
    _trec_eval_inproc(["-c", "-m", "all_trec", qrels, run])
    print(json.dumps({"rss_peak_growth_mb": _vm("VmHWM") - rss0}))


C_STOCK, C_O2 = "C trec_eval 10.0-rc3 (process)", "C trec_eval 10.0-rc3, -O2 build (process)"
RANX_ALL_TREC = ["map", "mrr", "ndcg", "ndcg@10", "precision@10", "recall@100", "r-precision", "bpref"]


def bench_trec_eval(qrels_p: Path, run_p: Path, d: Path, reps: int, skip_peers: bool) -> int:
    """`audit trec-eval -c -m all_trec` vs the C trec_eval, pytrec_eval and ranx (prints a table)."""
    from auditor.trec_eval import reference

    print(f"# trec-eval suite: -c -m all_trec on {qrels_p.name} / {run_p.name}; {reps} rounds, each tool once "
          "per round in turn (interleaved), best and median of the rounds")
    # Byte-compile our sources first, as the C trec_eval is built first: pip compiles them at
    # install and Python caches them on first import, so a user's run does not recompile. Where
    # PYTHONDONTWRITEBYTECODE is set (as on the development machine) nothing is cached, and every
    # start would pay ~0.03-0.04 s of compiling that no installed copy pays.
    import compileall

    compileall.compile_dir(str(ROOT / "auditor"), quiet=1)
    print("# auditor's sources byte-compiled before timing (compileall), as the C binary is built before timing")
    # what a user types: the `audit` console script beside this interpreter (installed with the
    # package); `python -m auditor.cli` where the package is not installed
    exe = Path(sys.executable).with_name("audit")
    py = [str(exe), "trec-eval"] if exe.exists() else [sys.executable, "-m", "auditor.cli", "trec-eval"]
    print(f"# ours as a process: {' '.join(Path(py[0]).name if i == 0 else a for i, a in enumerate(py))} ...")
    start = _best_proc([*py, "--version"], d / "startup.out", max(reps, 5))
    ours_cmd = [*py, "-c", "-m", "all_trec", str(qrels_p), str(run_p)]
    binary = binary_o2 = None
    try:
        binary = reference.build(d / "trec_eval_build")
        # the Makefile builds without optimisation; -O2 is what a user who rebuilds it may run
        binary_o2 = reference.build(d / "trec_eval_build", optimize=True)
    except RuntimeError as e:
        print(f"# C trec_eval{' -O2 build' if binary is not None else ''} skipped: {e}")
    tools: dict[str, Any] = {"audit trec-eval (ours, process)": lambda: _proc(ours_cmd, d / "ours.out")}
    if binary is not None:
        c_cmd = [str(binary), "-c", "-m", "all_trec", str(qrels_p), str(run_p)]
        tools[C_STOCK] = lambda: _proc(c_cmd, d / "c.out")
    if binary_o2 is not None:
        c2_cmd = [str(binary_o2), *c_cmd[1:]]
        tools[C_O2] = lambda: _proc(c2_cmd, d / "c_o2.out")

    def inproc(fn: Any) -> Any:
        def timed() -> tuple[float, float]:
            gc.collect()
            c, t = time.process_time(), time.perf_counter()
            fn()
            return time.perf_counter() - t, time.process_time() - c
        return timed

    # like with like for the in-process peers: ours in this process too (imports done once)
    small_r, small_q = generate(d, 20, 10)
    _trec_eval_inproc(["-c", "-m", "all_trec", str(small_q), str(small_r)])
    tools["audit trec-eval (ours, in-process)"] = inproc(
        lambda: _trec_eval_inproc(["-c", "-m", "all_trec", str(qrels_p), str(run_p)]))
    if not skip_peers:
        import pytrec_eval
        from ranx import Qrels, Run, evaluate

        def pte() -> Any:
            with open(qrels_p) as f:
                qr = pytrec_eval.parse_qrel(f)
            with open(run_p) as f:
                rn = pytrec_eval.parse_run(f)
            return pytrec_eval.RelevanceEvaluator(qr, pytrec_eval.supported_measures).evaluate(rn)

        evaluate(Qrels.from_file(str(small_q), kind="trec"), Run.from_file(str(small_r), kind="trec"), RANX_ALL_TREC)

        def rx() -> Any:
            return evaluate(Qrels.from_file(str(qrels_p), kind="trec"), Run.from_file(str(run_p), kind="trec"),
                            RANX_ALL_TREC)

        tools["pytrec_eval parse + evaluate (all its measures, in-process)"] = inproc(pte)
        tools["ranx from_file + evaluate (8 all_trec measures, in-process)"] = inproc(rx)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in tools}
    steal0 = _steal_seconds()
    for _ in range(reps):
        for name, fn in tools.items():
            times[name].append(fn())
    steal = None if steal0 is None else _steal_seconds() - steal0
    if binary is not None:
        same = (d / "ours.out").read_bytes() == (d / "c.out").read_bytes()
        n_lines = len((d / "c.out").read_text().splitlines())
        print(f"# output identical to C trec_eval: {same} ({n_lines} lines)")
        if not same:
            print("ERROR: ours and the C trec_eval disagree; timings are meaningless", file=sys.stderr)
            return 1
    if binary_o2 is not None:
        # rbp reads two uninitialised doubles in trec_eval (see `audit trec-eval --help`): its
        # line depends on the build; every other line must be the same
        o2_diff = sorted(set((d / "c_o2.out").read_text().splitlines()) ^ set((d / "c.out").read_text().splitlines()))
        if any(not ln.startswith("rbp ") for ln in o2_diff):
            print(f"ERROR: the -O2 build of trec_eval prints other values: {o2_diff[:4]}", file=sys.stderr)
            return 1
        print(f"# -O2 build's output: the same lines, rbp's {'aside (uninitialised reads)' if o2_diff else 'too'}")
    rows = []
    for name, ts in times.items():
        walls = sorted(w for w, _ in ts)
        rows.append((name, walls[0], float(np.median(walls)), min(c for _, c in ts)))
    o = rows[0][1:]
    oi = next(r for r in rows if r[0].startswith("audit trec-eval (ours, in-process)"))[1:]
    small_r, small_q = generate(d, 20, 10)
    mem = subprocess.run([sys.executable, __file__, "--child-rss-trec-eval", str(qrels_p), str(run_p), str(small_q),
                          str(small_r)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    rss = json.loads(mem.stdout.strip().splitlines()[-1])["rss_peak_growth_mb"]
    print()
    print("| -m all_trec, end to end | best wall s | median wall s | best CPU s | ours faster (wall) | ours faster (CPU) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, b, med, cpu in rows:
        mine = name.startswith("audit")
        ref = oi if "in-process" in name else o  # processes against our process, in-process against in-process
        print(f"| {name} | {b:.3f} | {med:.3f} | {cpu:.3f} | {'-' if mine else f'{b / ref[0]:.1f}x'} | "
              f"{'-' if mine else f'{cpu / ref[2]:.1f}x'} |")
    print()
    med = {k: float(np.median([w for w, _ in times[k]])) for k in times}
    oc = med["audit trec-eval (ours, process)"]
    builds = [f"{med[k] / oc:.1f}x ({what})" for k, what in ((C_STOCK, "Makefile build"), (C_O2, "-O2 build")) if k in med]
    if builds:
        print(f"ratio of the medians, C / ours (processes, wall): {', '.join(builds)}")
    if steal is not None:  # time the hypervisor gave this machine's CPUs to others: the host's load
        print(f"CPU time stolen by the host during the rounds: {steal:.1f} s (of {os.cpu_count()} CPUs)")
    print(f"audit trec-eval: CLI start-up ({Path(py[0]).name} ... trec-eval --version) best {start[0]:.3f} s, "
          f"median {start[1]:.3f} s; peak RSS growth during the run {rss:.0f} MB")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=20_000)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--suite", choices=["all", "eval", "trec-eval"], default="all")
    ap.add_argument("--child-memory", nargs=5, metavar=("QRELS", "RUN", "SQ", "SR", "TRACED"), help=argparse.SUPPRESS)
    ap.add_argument("--child-rss-trec-eval", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child_rss_trec_eval:
        child_rss_trec_eval(*a.child_rss_trec_eval)
        return 0
    if a.child_memory:
        q, r, sq, sr, tr = a.child_memory
        child_memory(q, r, (sq, sr), tr == "1")
        return 0
    d = a.dir or Path(tempfile.gettempdir()) / "rank_auditor_bench_eval"
    d.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    run_p, qrels_p = generate(d, a.queries, a.candidates)
    gen = time.perf_counter() - t
    mb = (run_p.stat().st_size + qrels_p.stat().st_size) / 2**20
    print(f"# bench_eval: {a.queries:,} queries x {a.candidates} candidates; run + qrels = {mb:.0f} MB "
          f"in {d} (generated/reused in {gen:.1f} s)")
    print(f"# machine: {machine()}")
    print(f"# load average at start: {os.getloadavg()[0]:.2f} (1 min), on {os.cpu_count()} cores")
    print(f"# command: python benchmarks/bench_eval.py --queries {a.queries} --candidates {a.candidates} --reps {a.reps}")

    if a.suite in ("all", "trec-eval"):
        rc = bench_trec_eval(qrels_p, run_p, d, a.reps, a.skip_peers)
        if rc or a.suite == "trec-eval":
            return rc
    if a.skip_peers:
        o = best_of(lambda: ours(qrels_p, run_p), a.reps)
        rows = [("audit eval (ours)", o[0], o[1], o[3])]
    else:
        import pytrec_eval
        from ranx import Qrels, Run, evaluate

        small_r, small_q = generate(d, 20, 10)
        evaluate(Qrels.from_file(str(small_q), kind="trec"), Run.from_file(str(small_r), kind="trec"), "ndcg@10")

        def ranx_read():
            return Qrels.from_file(str(qrels_p), kind="trec"), Run.from_file(str(run_p), kind="trec")

        built = ranx_read()

        def ranx_e2e():
            qr, rn = ranx_read()
            return evaluate(qr, rn, "ndcg@10", return_mean=False), list(rn.keys())

        def pte_e2e():
            with open(qrels_p) as f:
                qr = pytrec_eval.parse_qrel(f)
            with open(run_p) as f:
                rn = pytrec_eval.parse_run(f)
            return pytrec_eval.RelevanceEvaluator(qr, {"ndcg_cut_10"}).evaluate(rn)

        # every contender the same number of times, taking turns: load hits them alike
        t = interleaved({"ours": lambda: ours(qrels_p, run_p), "ranx": ranx_e2e, "pytrec_eval": pte_e2e,
                         "ranx read": ranx_read,
                         "ranx evaluate": lambda: evaluate(built[0], built[1], "ndcg@10", return_mean=False)},
                        a.reps)
        o, rx, pt = t["ours"], t["ranx"], t["pytrec_eval"]
        rows = [("audit eval (ours)", o[0], o[1], o[3]),
                ("ranx from_file + evaluate", rx[0], rx[1], rx[3]),
                ("pytrec_eval parse + evaluate", pt[0], pt[1], pt[3]),
                ("ranx `Qrels.from_file` + `Run.from_file` alone (reading and construction)", *_row(t["ranx read"])),
                ("ranx `evaluate` alone (Qrels/Run built)", *_row(t["ranx evaluate"]))]
        # agreement
        ev = __import__("auditor.evaluate", fromlist=["evaluate_run"]).evaluate_run(str(qrels_p), str(run_p), ["ndcg@10"])
        mine = dict(zip(ev.qids, ev.per_query["ndcg@10"]))
        d_pte = max(abs(mine[q] - v["ndcg_cut_10"]) for q, v in pt[2].items())
        rvals, rkeys = rx[2]
        d_rx = np.abs(np.array([mine[q] for q in rkeys]) - np.asarray(rvals))
        print(f"# agreement nDCG@10 per query: max |ours - pytrec_eval| = {d_pte:.1e}; "
              f"max |ours - ranx| = {d_rx.max():.1e} ({int((d_rx > 1e-9).sum())} queries differ)")
        print(f"# mean nDCG@10: ours {np.mean(list(mine.values())):.6f}, {json.dumps(o[2]['metrics'])}")
        print(f"# every contender timed {a.reps} times, taking turns (best and median reported)")
        if d_pte > 1e-9:
            print("ERROR: ours and trec_eval (pytrec_eval) disagree; timings are meaningless", file=sys.stderr)
            return 1
    small_r, small_q = generate(d, 20, 10)
    m = {}
    for traced in ("0", "1"):
        mem = subprocess.run([sys.executable, __file__, "--child-memory", str(qrels_p), str(run_p), str(small_q),
                              str(small_r), traced], capture_output=True, text=True, check=True)
        m.update(json.loads(mem.stdout.strip().splitlines()[-1]))
    print()
    print("| end to end (reading included) | best wall s | median wall s | best CPU s | ours faster (wall) | ours faster (CPU) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, b, med, cpu in rows:
        part = name.startswith("audit") or "alone" in name  # ours, or a part of a peer's time: no ratio
        ratio = "-" if part else f"{b / o[0]:.1f}x"
        cratio = "-" if part else f"{cpu / o[3]:.1f}x"
        print(f"| {name} | {b:.3f} | {med:.3f} | {cpu:.3f} | {ratio} | {cratio} |")
    print()
    print(f"ours peak memory (fresh process, after a small warm-up run): peak RSS grew {m['rss_peak_growth_mb']:.0f} MB "
          f"during the run (tracemalloc peak {m['tracemalloc_mb']:.0f} MB, Arrow pool peak {m['arrow_pool_peak_mb']:.0f} MB)")
    print(f"# load average at end: {os.getloadavg()[0]:.2f} (1 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
