"""`audit trec-eval`'s fast paths agree with what they stand for.

- the hashed (query, docno) join gives the output of the unweakened one when the docno hash is
  cut to a few bits (so candidates fail, high-bit groups of three occur and the exact fallback
  runs), duplicates included (the unweakened join is checked against trec_eval by the fuzz test);
- the qrels and the run, read at once (two threads), report the qrels' error first, the run's
  when only it is bad;
- the streamed block reader refuses lines with an empty field as trec_eval does (a doubled
  delimiter hides a field: 'Malformed line'), in the columns trec_eval ignores too (Q0, rank, run
  tag), wherever its blocks cut the file, and gives the last line's run id and reads files it hands to the line parser (CR,
  comments, mixed delimiters, a NUL) as the line parser does;
- ``seqsum`` adds each row left to right (a C loop's order), for every shape;
- G with the default gains, computed at the documents with a positive level only, gives the
  general path's per-query values bit for bit;
- a run imports none of pandas, scipy, pyarrow.compute, numpy.ma (slow imports);
- the process entry (``python -m auditor.cli trec-eval``, no click, no teardown) prints what
  the click command prints, with the same exit codes.
"""
from __future__ import annotations

import io
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from auditor.errors import DataError
from auditor.trec_eval import command, measures, ranked
from auditor.trec_eval.measures import seqsum

ROOT = Path(__file__).resolve().parents[1]


def _case(seed: int, dup: str | None = None, width: int | None = None) -> tuple[str, str]:
    """Random qrels and run; ``width``: every docno and every qid that many bytes (the fixed-width paths)."""
    rng = random.Random(seed)
    qrels, run = [], []
    names = ["1", "2", "7", "30", "q9", "b"] if width is None else [f"q{i:0{width - 1}d}" for i in (1, 2, 7, 30, 9)]
    for q in rng.sample(names, rng.randint(1, 5)):
        if width is None:
            docs = [f"d{rng.randrange(400)}" for _ in range(rng.randint(20, 150))]
        else:  # docnos differing in their first, middle or last bytes
            docs = [f"{rng.choice('DE')}{rng.randrange(400):0{width - 2}d}{rng.choice('xy')}"
                    for _ in range(rng.randint(20, 150))]
        for d in dict.fromkeys(docs[: len(docs) // 2]):
            qrels.append(f"{q} 0 {d} {rng.choice([-1, 0, 1, 2])}")
        for r, d in enumerate(dict.fromkeys(docs[len(docs) // 4:]), 1):
            run.append(f"{q} Q0 {d} {r} {rng.choice([1, 2, 3, rng.random()])} tag")
    rng.shuffle(run)
    if dup == "qrels":
        qrels.append(qrels[0].rsplit(" ", 1)[0] + " 1")
    if dup == "run":
        q, _, d = run[0].split()[:3]
        run.append(f"{q} Q0 {d} 9 0.5 tag")
    return "\n".join(qrels) + "\n", "\n".join(run) + "\n"


def _run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = command.main(args, out, err)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("seed,width", [(s, None) for s in range(12)] + [(s, w) for s, w in enumerate((3, 7, 8, 9,
                                                                                                   11, 15, 16, 17))])
def test_hashed_join_output_does_not_depend_on_the_hash(tmp_path: Path, monkeypatch, seed: int,
                                                         width: int | None) -> None:
    dup = [None, "qrels", "run"][seed % 3]
    qrels, run = _case(seed, dup, width)
    (tmp_path / "q").write_text(qrels)
    (tmp_path / "r").write_text(run)
    for flags in (["-q", "-c", "-m", "all_trec"], ["-q", "-c", "-J", "-M", "15", "-m", "all_trec"]):
        args = [*flags, str(tmp_path / "q"), str(tmp_path / "r")]
        want = _run(args)
        if dup is None:
            assert want[0] == 0 and want[1], want[2]
        elif "-M" not in flags:  # (with -M, a duplicate past the cut is not looked at, as in trec_eval)
            assert want[0] == 2 and "twice" in want[2], want
        # docno hashes cut to 13-16 low bits (rows share high bits: candidates fail, groups of three
        # are resolved on the full keys) or to 2 bits above the row numbers (keys shared by three
        # rows: the exact join)
        for mask in (0x1FFF, 0x3FFF, 0xFFFF, 0x3 << 44):
            monkeypatch.setattr(ranked, "_HASH_MASK", mask)
            assert _run(args) == want, (flags, hex(mask))
            monkeypatch.setattr(ranked, "_HASH_MASK", None)


@pytest.mark.parametrize("what", ["qrels", "run"])
def test_a_doubled_delimiter_hiding_a_field_is_malformed(tmp_path: Path, what: str) -> None:
    good_q, good_r = "1 0 a 1\n1 0 b 0\n", "1 Q0 a 1 2.0 r\n1 Q0 b 2 1.0 r\n"
    # one line with an empty second field: trec_eval splits on runs of blanks and sees a field fewer
    q = "1 0 a 1\n1  b 0\n" if what == "qrels" else good_q
    r = "1 Q0 a 1 2.0 r\n1  b 2 1.0 r\n" if what == "run" else good_r
    (tmp_path / "q").write_text(q)
    (tmp_path / "r").write_text(r)
    rc, out, err = _run([str(tmp_path / "q"), str(tmp_path / "r")])
    assert rc == 2 and out == "" and "line 2" in err and "Malformed line 2" in err, err


@pytest.mark.parametrize("sep", [" ", "\t"])
@pytest.mark.parametrize("bad_line", ["1{s}Q0{s}b{s}{s}1.0{s}r", "1{s}Q0{s}b{s}2{s}1.0{s}", "1{s}{s}b{s}2{s}1.0{s}r",
                                      "1{s}Q0{s}b{s}2{s}1.0{s}r{s}"])
@pytest.mark.parametrize("newline_at_end", [True, False])
def test_an_empty_field_in_a_column_trec_eval_ignores_is_malformed(tmp_path: Path, sep: str, bad_line: str,
                                                                    newline_at_end: bool) -> None:
    # an empty rank, Q0 or run tag (a doubled delimiter, or one before the line break or the end
    # of the file), columns trec_eval does not use, is still trec_eval's 'Malformed line' (five
    # fields); a trailing delimiter after six fields is fine
    line = bad_line.format(s=sep)
    (tmp_path / "q").write_text(f"1{sep}0{sep}a{sep}1\n1{sep}0{sep}b{sep}0\n")
    (tmp_path / "r").write_text(f"1{sep}Q0{sep}a{sep}1{sep}2.0{sep}r\n{line}" + ("\n" if newline_at_end else ""))
    rc, out, err = _run(["-m", "runid", "-m", "num_ret", str(tmp_path / "q"), str(tmp_path / "r")])
    if line.count(sep) == 6:  # seven fields, the last empty: trec_eval reads six
        assert rc == 0 and out == "runid                 \tall\tr\nnum_ret               \tall\t2\n", (out, err)
    else:
        assert rc == 2 and out == "" and "line 2" in err and "Malformed line 2" in err, err


def test_the_block_reader_finds_an_empty_field_and_the_run_id_at_every_block_boundary(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    from auditor.trec_eval import reader

    good = [f"1 Q0 d{i} {i} {10 - i / 8:.3f} tag{i}" for i in range(12)]
    for cut in range(len(good[0]) + 8, 3 * len(good[0])):  # blocks ending at every byte of a few lines
        monkeypatch.setattr(reader, "_BLOCK", cut)
        for end in ("\n", ""):
            p = tmp_path / f"good{cut}{len(end)}"
            p.write_text("\n".join(good) + end)
            run = reader.read_run(p)
            assert not isinstance(run.qid, np.ndarray), "the fast reader must have read it"  # the line parser's are numpy
            assert run.runid == "tag11" and run.docno.to_pylist() == [f"d{i}".encode() for i in range(12)]
        for k in range(1, 12):  # a doubled delimiter (empty rank) in line k + 1, wherever the blocks cut it
            lines = list(good)
            lines[k] = lines[k].replace(f" {k} ", "  ", 1)
            p = tmp_path / f"bad{cut}_{k}"
            p.write_text("\n".join(lines) + "\n")
            with pytest.raises(DataError, match=f"line {k + 1}:"):
                reader.read_run(p)


@pytest.mark.parametrize("bad", ["qrels", "run", "both", "missing run"])
def test_the_two_files_read_at_once_report_the_qrels_error_first(tmp_path: Path, bad: str) -> None:
    # the run is read in a second thread while the qrels are read: its error must still reach
    # the user, and when both files are bad the qrels' error comes first (trec_eval reads them first)
    (tmp_path / "q").write_text("1 0 a 1\n1 b 0\n" if bad in ("qrels", "both") else "1 0 a 1\n1 0 b 0\n")
    if bad != "missing run":
        (tmp_path / "r").write_text("1 Q0 a 1 2.0 r\n1 b 2\n" if bad in ("run", "both") else "1 Q0 a 1 2.0 r\n")
    rc, out, err = _run([str(tmp_path / "q"), str(tmp_path / "r")])
    assert rc == 2 and out == "", err
    want = {"qrels": "qrels file", "both": "qrels file", "run": "run file", "missing run": "run file"}[bad]
    assert want in err and ("line 2" in err or "cannot read" in err), err


def test_a_qrels_error_does_not_wait_for_the_run_to_be_read(tmp_path: Path, monkeypatch) -> None:
    import threading
    import time

    release = threading.Event()
    real = command.read_run

    def slow_read_run(path, threads=True):  # a run that takes long to read
        release.wait(30)
        return real(path, threads)

    monkeypatch.setattr(command, "read_run", slow_read_run)
    (tmp_path / "q").write_text("1 0 a 1\n1 b 0\n")
    (tmp_path / "r").write_text("1 Q0 a 1 2.0 r\n")
    t0 = time.perf_counter()
    rc, out, err = _run([str(tmp_path / "q"), str(tmp_path / "r")])
    took = time.perf_counter() - t0
    release.set()
    assert rc == 2 and "qrels file" in err and "line 2" in err, err
    assert took < 10, took  # the run's reader was still waiting: the error did not wait for it


@pytest.mark.parametrize("run_ok", [True, False])
def test_a_qrels_query_that_cannot_be_evaluated_is_reported_after_the_runs_own_error(tmp_path: Path,
                                                                                  run_ok: bool) -> None:
    # query 2 is judged only below -1 (found when the files are joined): a malformed run is still
    # reported first, as trec_eval reads both files before it evaluates; alone, the qrels' problem
    (tmp_path / "q").write_text("1 0 a 1\n2 0 b -3\n")
    (tmp_path / "r").write_text("1 Q0 a 1 2.0 r\n2 Q0 b 1 1.0 r\n" if run_ok else "1 Q0 a 1 2.0 r\n2 b 1\n")
    rc, out, err = _run(["-c", str(tmp_path / "q"), str(tmp_path / "r")])
    assert rc == 2 and out == "", err
    if run_ok:
        assert "qrels file" in err and "query '2'" in err and "below -1" in err, err
    else:
        assert "run file" in err and "line 2" in err and "below -1" not in err, err


def test_files_the_block_reader_hands_over_read_as_the_line_parser_reads_them(tmp_path: Path) -> None:
    qrels, run = _case(3)
    (tmp_path / "q").write_text(qrels)
    (tmp_path / "r").write_text(run)
    args = ["-q", "-c", "-m", "all_trec"]
    want = _run([*args, str(tmp_path / "q"), str(tmp_path / "r")])
    assert want[0] == 0
    lines = run.splitlines()
    variants = {
        "crlf": "\r\n".join(lines) + "\r\n",
        "comment": "# header\n" + run,
        "tab line": run.replace(" ", "\t", 5),
        "nul": run + "\x00garbage that is not read\n",
        "no final newline": run.rstrip("\n"),
        "extra column": "\n".join(ln + " more" for ln in lines) + "\n",
    }
    for name, text in variants.items():
        (tmp_path / "r2").write_text(text)
        assert _run([*args, str(tmp_path / "q"), str(tmp_path / "r2")]) == want, name


def test_relevance_labels_widen_across_blocks_without_changing_a_value(tmp_path: Path) -> None:
    """The block reader keeps labels in the narrowest integer type so far: labels that need 16,
    32 and 64 bits, first met blocks into the file, come back exact, and the output equals the
    line parser's (a leading comment line sends the file there)."""
    from auditor.trec_eval.reader import read_qrels

    rng = random.Random(5)
    n = 60_000  # about 1.1 MB: several 512 KB blocks
    labels = [rng.randint(0, 3) for _ in range(n)]
    labels[30_000], labels[40_000] = 200, -5

    def write(name: str, values: list[int], head: str = "") -> Path:
        (tmp_path / name).write_text(head + "".join(f"{1 + i // 100} 0 d{i % 100:03d} {v}\n"
                                                    for i, v in enumerate(values)))
        return tmp_path / name

    q = write("q", labels)
    assert read_qrels(q).rel.tolist() == labels
    for wide in (-70_000, 2 ** 40):  # 32 and 64 bits, in the last block (labels this large: reader only)
        assert read_qrels(write("qw", labels[:-1] + [wide])).rel.tolist() == labels[:-1] + [wide]

    (tmp_path / "r").write_text("".join(f"{q} Q0 d{d:03d} {d} {1.0 / (d + 1)} t\n"
                                        for q in range(1, 601) for d in range(0, 100, 7)))
    args = ["-q", "-c", "-m", "all_trec"]
    want = _run([*args, str(write("q_lines", labels, "# read by the line parser\n")), str(tmp_path / "r")])
    assert want[0] == 0 and want[1], want[2]
    assert _run([*args, str(q), str(tmp_path / "r")]) == want


@pytest.mark.parametrize("q", [1, 2, 3, 9, 64])
@pytest.mark.parametrize("depth", [0, 1, 2, 8, 9, 130, 1000])
def test_seqsum_adds_left_to_right(q: int, depth: int) -> None:
    rng = np.random.default_rng(q * 1000 + depth)
    x = rng.random((q, depth)) * rng.choice([1e-9, 1e-3, 1.0, 1e5, 1e12], size=(q, depth))
    want = []
    for row in x.tolist():
        s = 0.0
        for v in row:
            s += v
        want.append(s)
    got = seqsum(x)
    assert got.shape == (q,) and [math.copysign(1, v) for v in got] == [math.copysign(1, v) for v in want]
    assert got.tolist() == want


def test_a_run_imports_none_of_the_slow_imports() -> None:
    # pandas, scipy: 0.3-0.5 s each; pyarrow.compute (its wrappers; the kernels are called
    # without it) 30-45 ms; numpy.ma (np.unique asks for it) 20 ms
    data = ROOT / "tests" / "data" / "trec_eval"
    code = ("import io, sys\nfrom auditor.trec_eval import main\n"
            f"rc = main(['-q', '-c', '-m', 'all_trec', {str(data / 'qrels.test')!r}, {str(data / 'results.test')!r}])\n"
            "heavy = sorted(m for m in ('pandas', 'scipy', 'torch', 'sklearn', 'pyarrow.compute', 'numpy.ma') "
            "if m in sys.modules)\n"
            "sys.stderr.write(f'rc={rc} heavy={heavy}')\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert "rc=0 heavy=[]" in p.stderr, p.stderr[-2000:]


@pytest.mark.parametrize("what", ["qrels", "run"])
def test_a_byte_order_mark_stays_in_the_first_qid_as_in_trec_eval(trec_eval_bin: Path, tmp_path: Path,
                                                                    what: str) -> None:
    # pyarrow's CSV reader drops a UTF-8 BOM; trec_eval reads it as part of the first qid
    q, r = "1 0 a 1\n1 0 b 0\n2 0 c 1\n", "1 Q0 a 1 2.0 r\n1 Q0 b 2 1.0 r\n2 Q0 c 1 1.0 r\n"
    (tmp_path / "q").write_bytes((b"\xef\xbb\xbf" if what == "qrels" else b"") + q.encode())
    (tmp_path / "r").write_bytes((b"\xef\xbb\xbf" if what == "run" else b"") + r.encode())
    for flags in (["-q", "-m", "num_rel"], ["-q", "-c", "-m", "num_rel"]):
        args = [*flags, str(tmp_path / "q"), str(tmp_path / "r")]
        c = subprocess.run([str(trec_eval_bin), *args], capture_output=True)
        rc, out, err = _run(args)
        if c.returncode == 0:
            assert rc == 0 and out == c.stdout.decode("utf-8", "surrogateescape"), (flags, err)
        else:
            assert rc == 2 and out == "", (flags, out)


@pytest.mark.parametrize("flags", [["-c"], ["-c", "-l", "2"], ["-c", "-J", "-M", "9"]])
def test_g_default_gains_fast_path_equals_the_general_path(tmp_path: Path, monkeypatch, flags: list[str]) -> None:
    # with the default gains G is computed at the documents with a positive level only (whole-number
    # running sums); the per-query values must be the general path's to the last bit
    rng = random.Random(7)
    qrels, run = [], []
    for q in range(40):
        docs = [f"d{rng.randrange(300)}" for _ in range(rng.randint(1, 60))]
        for d in dict.fromkeys(docs[: len(docs) // 2 + 1]):
            qrels.append(f"q{q} 0 {d} {rng.choice([-1, 0, 1, 2, 3, 3, 7])}")
        for r, d in enumerate(dict.fromkeys(docs[len(docs) // 4:]), 1):
            run.append(f"q{q} Q0 {d} {r} {rng.choice([1, 2, 3, rng.random()])} tag")
    (tmp_path / "q").write_text("\n".join(qrels) + "\n")
    (tmp_path / "r").write_text("\n".join(run) + "\n")
    args = [*flags, "-q", "-m", "G", str(tmp_path / "q"), str(tmp_path / "r")]
    fast = command.evaluate(command.parse_args(args))[2]["G"]
    monkeypatch.setattr(measures, "_g_default", lambda c, g: None)
    general = command.evaluate(command.parse_args(args))[2]["G"]
    assert fast.size == 40 and (fast > 0).any()
    assert fast.tobytes() == general.tobytes()


@pytest.mark.parametrize("args, rc, needle", [
    (["-q", "-c", "-m", "all_trec", "QRELS", "RUN"], 0, None),
    (["--version"], 0, None),
    (["-m", "no_such_measure", "QRELS", "RUN"], 2, "unknown measure"),
    (["-c", "-m", "map", "QRELS", "/no/such/run"], 2, "cannot read it"),
])
def test_the_process_entry_prints_what_the_click_command_prints(args, rc, needle) -> None:
    # `python -m auditor.cli trec-eval` skips click and the interpreter's teardown: same output,
    # same messages, same exit codes as the command through click
    from click.testing import CliRunner

    from auditor.cli import cli

    data = ROOT / "tests" / "data" / "trec_eval"
    args = [{"QRELS": str(data / "qrels.test"), "RUN": str(data / "results.test")}.get(a, a) for a in args]
    via_click = CliRunner().invoke(cli, ["trec-eval", *args])
    p = subprocess.run([sys.executable, "-m", "auditor.cli", "trec-eval", *args], capture_output=True, text=True,
                       cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert p.returncode == via_click.exit_code == rc, (p.stderr[-1000:], via_click.output[-1000:])
    if needle is None:
        assert p.stdout == via_click.stdout and p.stdout and not p.stderr
    else:
        assert needle in p.stderr and p.stderr == via_click.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("entry", [["-m", "auditor.cli"], ["-c", "from auditor.console import main; main()"]])
@pytest.mark.parametrize("command", [["trec-eval", "QRELS", "RUN"], ["list"]])
def test_a_reader_that_leaves_early_ends_the_command_quietly_with_141(entry, command) -> None:
    # `audit ... | head`: the output's reader is gone before the first write. trec_eval is killed
    # by SIGPIPE (141 in the shell); ours ends the same way, with no message and no traceback
    # (it said "internal error: BrokenPipeError ... a bug" before). `-c ...` is the `audit` script's entry.
    data = ROOT / "tests" / "data" / "trec_eval"
    args = [{"QRELS": str(data / "qrels.test"), "RUN": str(data / "results.test")}.get(a, a) for a in command]
    p = subprocess.Popen([sys.executable, *entry, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    p.stdout.close()  # before the child writes anything: its first write fails with EPIPE
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141, err
    assert err == "", err
