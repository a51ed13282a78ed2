"""The fast paths of `audit eval`: one-sort join with duplicate detection, streamed TREC reading, string hashing.

Each fast path is checked against a slow, obviously-correct reference: the line-by-line reader,
exact dictionary codes, or Python comparisons.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from auditor import loaders as Ld
from auditor.errors import DataError
from auditor.evaluate import eval_cmd, evaluate_run

TE = Path(__file__).resolve().parent / "data" / "trec_eval"
Q, R = TE / "qrels.test", TE / "results.test"
METRICS = ["ndcg@10", "map", "p@10", "recall@100", "mrr"]


def _same_eval(a, b) -> None:
    assert a.qids == b.qids and a.n_run_queries_without_qrels == b.n_run_queries_without_qrels
    for k in a.per_query:
        np.testing.assert_array_equal(a.per_query[k], b.per_query[k])


def _u64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.uint64)


# ----------------------------------------------------------------------------- _pair_candidates
def test_pair_candidates_simple_pairs_groups_and_duplicates():
    """nr = nq = 4: rows take 2 bits, the side 1 bit, so keys equal above bit 3 share a group."""
    g = 1 << 10  # a high-bit value
    kq = _u64([g, 2 * g, 3 * g + 1, 5 * g])  # qrels rows 0..3
    kr = _u64([2 * g, g, 3 * g + 2, 4 * g])  # run rows 0..3
    rr, qq, qd, rd = Ld._pair_candidates(_getter(kr), _getter(kq), 4, 4)
    got = sorted(zip(rr.tolist(), qq.tolist()))
    # run 0 ~ qrels 1, run 1 ~ qrels 0; run 2 / qrels 2 share high bits but differ in full key: still a
    # candidate (the caller confirms on strings); run 3 and qrels 3 are alone
    assert got == [(0, 1), (1, 0), (2, 2)]
    assert qd[0].size == 0 and rd[0].size == 0


def _getter(k: np.ndarray):
    """A key getter as _pair_candidates calls it: into ``out``, or just ``rows``."""
    def get(out: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        if rows is not None:
            return k[rows]
        if out is not None:
            out[:] = k
        return k
    return get


def test_pair_candidates_duplicates_and_three_row_groups():
    g = 1 << 10
    # qrels rows 0 and 1 duplicate each other (same full key); run rows 1 and 2 too, and qrels row 2 has
    # the same key as them: a full-key group of three -> hash collision unless the keys are exact
    kq = _u64([g, g, 7 * g, 9 * g])
    kr = _u64([3 * g, 7 * g, 7 * g, 9 * g])
    get_r, get_q = _getter(kr), _getter(kq)
    with pytest.raises(Ld._HashCollision):
        Ld._pair_candidates(get_r, get_q, 4, 4)
    rr, qq, qd, rd = Ld._pair_candidates(get_r, get_q, 4, 4, exact=True)
    assert sorted(zip(qd[0].tolist(), qd[1].tolist())) == [(0, 1)]
    assert sorted(zip(rd[0].tolist(), rd[1].tolist())) == [(1, 2)]
    assert sorted(zip(rr.tolist(), qq.tolist())) == [(3, 3)]


def test_pair_candidates_high_bit_group_of_three_resolved_on_full_keys():
    g = 1 << 10
    kq = _u64([g + 1, 5 * g, 6 * g, 8 * g])
    kr = _u64([g + 2, g + 1, 6 * g, 11 * g])  # rows 0, 1 and qrels 0 share high bits; run 1 == qrels 0 fully
    rr, qq, qd, rd = Ld._pair_candidates(_getter(kr), _getter(kq), 4, 4)
    assert sorted(zip(rr.tolist(), qq.tolist())) == [(1, 0), (2, 2)]
    assert qd[0].size == 0 and rd[0].size == 0


@pytest.mark.parametrize("seed", range(8))
def test_pair_candidates_random_against_brute_force(seed):
    """Random keys with many high-bit collisions: every true full-key match is found."""
    rng = np.random.default_rng(seed)
    nr, nq = int(rng.integers(1, 300)), int(rng.integers(1, 300))
    bits = max(1, (max(nr, nq) - 1).bit_length()) + 1
    kq = rng.permutation(max(nr, nq) * 2)[:nq].astype(np.uint64)  # unique full keys
    kr = rng.permutation(max(nr, nq) * 2)[:nr].astype(np.uint64)  # unique too, many hit a qrels key
    # few high-bit values: keys below 2**bits share high bits 0, above that a handful of groups
    kq, kr = kq * np.uint64(1 << max(bits - 3, 0)), kr * np.uint64(1 << max(bits - 3, 0))
    try:
        rr, qq, qd, rd = Ld._pair_candidates(_getter(kr), _getter(kq), nr, nq)
    except Ld._HashCollision:
        pytest.fail("unique full keys never form a full-key group of three")
    want = {(i, j) for i in range(nr) for j in range(nq) if kr[i] == kq[j]}
    got = set(zip(rr.tolist(), qq.tolist()))
    assert want <= got  # extra candidates are allowed (confirmed on strings by the caller)
    for i, j in got - want:  # ... but only when they share high bits
        assert (int(kr[i]) >> bits) == (int(kq[j]) >> bits)
    for (a, b), k in ((qd, kq), (rd, kr)):  # duplicate candidates: same high bits, never an equal full key here
        for i, j in zip(a.tolist(), b.tolist()):
            assert (int(k[i]) >> bits) == (int(k[j]) >> bits) and k[i] != k[j]


# ----------------------------------------------------------------------------- join with weak hashes
@pytest.mark.parametrize("weak", [
    lambda h: h & np.uint64(0xFFF),  # high bits all zero: one group, full keys of 12 bits (many collide)
    lambda h: (h % np.uint64(7)) << np.uint64(40) | (h & np.uint64(0xFFF)),  # 7 high-bit groups
    lambda h: (h % np.uint64(50_000)) << np.uint64(20),  # high-bit collisions between unrelated pairs
])
def test_join_results_do_not_depend_on_the_hash(monkeypatch, weak):
    want = evaluate_run(Q, R, METRICS)
    real_mix = Ld._mix
    monkeypatch.setattr(Ld, "_mix", lambda h: weak(real_mix(h)))
    _same_eval(evaluate_run(Q, R, METRICS), want)


def test_unjudged_and_unretrieved_rows_and_extra_queries(tmp_path):
    qrels = "1 0 a 1\n1 0 b 2\n1 0 z 1\n2 0 a 0\n3 0 q 1\n"
    run = ("1 Q0 b 1 3.0 t\n1 Q0 c 2 2.0 t\n1 Q0 a 3 2.0 t\n"
           "9 Q0 a 1 1.0 t\n2 Q0 a 1 1.0 t\n2 Q0 b 2 0.5 t\n")
    (tmp_path / "q").write_text(qrels)
    (tmp_path / "r").write_text(run)
    ev = evaluate_run(tmp_path / "q", tmp_path / "r", ["ndcg", "map", "recall@10"], no_relevant="zero")
    assert ev.qids == ["1", "2"] and ev.n_run_queries_without_qrels == 1
    # query 1: ranking b (2), a (1; tie with c broken by docno descending: c before a), so b, c, a
    dcg = 2 / np.log2(2) + 0 + 1 / np.log2(4)
    idcg = 2 / np.log2(2) + 1 / np.log2(3) + 1 / np.log2(4)  # z judged but not retrieved counts
    assert ev.per_query["ndcg"][0] == pytest.approx(dcg / idcg)
    assert ev.per_query["recall@10"][0] == pytest.approx(2 / 3)
    assert ev.per_query["ndcg"][1] == 0.0  # query 2 has no relevant document


# ----------------------------------------------------------------------------- duplicates found by the join
def _lines(p: Path) -> list[str]:
    return p.read_text().splitlines()


def _eval_cli(qrels: Path, run: Path):
    return CliRunner().invoke(eval_cmd, ["--qrels", str(qrels), "--run", str(run)])


@pytest.mark.parametrize("case", ["run_dup_judged", "run_dup_unjudged", "run_dup_query_without_qrels",
                                  "run_triple", "qrels_dup_retrieved", "qrels_dup_unretrieved", "both"])
def test_duplicates_are_named_with_both_lines(tmp_path, case):
    q, r = _lines(Q), _lines(R)
    q_extra: list[str] = []
    r_extra: list[str] = []
    if case == "run_dup_judged":
        r_extra = [r[0]]
    elif case == "run_dup_unjudged":
        r_extra = ["301 Q0 NOT-JUDGED 1 1.0 x", "301 Q0 NOT-JUDGED 2 0.5 x"]
    elif case == "run_dup_query_without_qrels":
        r_extra = ["nope Q0 d1 1 1.0 x", "nope Q0 d1 2 0.5 x"]
    elif case == "run_triple":
        r_extra = [r[5], r[5]]
    elif case == "qrels_dup_retrieved":
        q_extra = [q[0]]
    elif case == "qrels_dup_unretrieved":
        q_extra = ["301 0 NEVER-RETRIEVED 1", "301 0 NEVER-RETRIEVED 0"]
    elif case == "both":
        q_extra, r_extra = [q[3]], [r[3]]
    (tmp_path / "q").write_text("\n".join(q + q_extra) + "\n")
    (tmp_path / "r").write_text("\n".join(r + r_extra) + "\n")
    res = _eval_cli(tmp_path / "q", tmp_path / "r")
    assert res.exit_code == 2, res.output
    bad = "q" if case.startswith("qrels") or case == "both" else "r"
    assert f"{tmp_path / bad}" in res.output and "appears twice for query" in res.output, res.output
    assert "lines" in res.output and "Traceback" not in res.output
    with pytest.raises(DataError, match="appears twice"):  # the library path as well
        evaluate_run(tmp_path / "q", tmp_path / "r", ["ndcg"])


def test_duplicate_in_tables_not_backed_by_a_file_names_rows():
    t = Ld.TrecTable("<memory>", "run", pa.array(["1", "1", "1"]), pa.array(["a", "b", "a"]), np.zeros(3))
    q = Ld.TrecTable("<memory>", "qrels", pa.array(["1"]), pa.array(["a"]), np.ones(1))
    with pytest.raises(DataError, match=r"'a' appears twice for query '1' \(rows 1 and 3\)"):
        Ld.join_run_qrels(q, t)


# ----------------------------------------------------------------------------- streamed reading
def _slow(path: Path, kind: str) -> Ld.TrecTable:
    return Ld._read_trec_slow(str(path), kind)


def _same_table(a: Ld.TrecTable, b: Ld.TrecTable) -> None:
    assert a.qid.to_pylist() == b.qid.to_pylist()
    assert a.docno.to_pylist() == b.docno.to_pylist()
    np.testing.assert_array_equal(a.value, b.value)
    for x, y in zip(a.qid_runs[:2], b.qid_runs[:2]):
        np.testing.assert_array_equal(x, y)
    assert a.qid_runs[2].to_pylist() == b.qid_runs[2].to_pylist()


@pytest.mark.parametrize("block", [256, 1 << 10, 1 << 18])
def test_streamed_reader_equals_line_reader_across_blocks(tmp_path, monkeypatch, block):
    """Tiny blocks: qid runs continue across batches, buffers grow past the first batch's estimate."""
    monkeypatch.setattr(Ld, "_TREC_BLOCK", block)
    rng = np.random.default_rng(1)
    lines = []
    for qi, q in enumerate(["7", "7a", "10", "x" * 30, "7b", "é", "8"]):
        for j in range(int(rng.integers(1, 60))):
            # docnos short at first, then much longer (the first batch underestimates the bytes)
            d = f"d{j}" if qi < 2 else f"doc-{qi}-{j}-" + "y" * int(rng.integers(0, 40))
            lines.append(f"{q} Q0 {d} {j + 1} {rng.normal():.6f} tag")
    p = tmp_path / "x.run"
    p.write_text("\n".join(lines) + "\n")
    t = Ld._read_trec_fast(str(p), "run", False)
    assert t is not None  # the streamed path, not the fallback
    _same_table(t, _slow(p, "run"))
    assert t.qid_runs[0].size == 7
    qp = tmp_path / "x.qrels"
    qp.write_text("\n".join(f"{ln.split()[0]} 0 {ln.split()[2]} {i % 3}" for i, ln in enumerate(lines)) + "\n")
    tq = Ld._read_trec_fast(str(qp), "qrels")
    assert tq is not None
    _same_table(tq, _slow(qp, "qrels"))


def test_run_collector_matches_arrow_equality():
    """Equal-length qids are compared as raw bytes (NULs and trailing bytes count)."""
    vals = ["ab", "ab", "a\x00", "a\x00", "a", "ab", "ab", "abc", "abc", "ab"]
    col = Ld._RunCollector()
    for lo, hi in [(0, 3), (3, 4), (4, 7), (7, 10)]:
        col.add(pa.array(vals[lo:hi]))
    first, lens, strings = col.result(len(vals))
    assert first.tolist() == [0, 2, 4, 5, 7, 9]
    assert strings.to_pylist() == ["ab", "a\x00", "a", "ab", "abc", "ab"]
    sliced = Ld._RunCollector()
    sliced.add(pa.array(["zz"] + vals).slice(1))
    assert sliced.result(len(vals))[0].tolist() == first.tolist()


# ----------------------------------------------------------------------------- hashing
@pytest.mark.parametrize("width", [0, 1, 7, 8, 9, 11, 16, 23])
def test_fixed_width_hash_equals_general_path(width):
    """Equal-length strings take a strided fast path; the hashes equal the general path's."""
    rng = np.random.default_rng(width)
    vals = ["".join(chr(int(c)) for c in rng.integers(33, 127, width)) for _ in range(300)]
    fixed = Ld._hash_strings(pa.array(vals))
    mixed = Ld._hash_strings(pa.array(vals + ["-" * (width + 1)]))[:-1]  # one longer string: general path
    np.testing.assert_array_equal(fixed, mixed)
    for lo, hi in [(0, 1), (5, 9), (290, 300)]:  # slices (and the buffer's tail) agree
        np.testing.assert_array_equal(Ld._hash_strings(pa.array(vals).slice(lo, hi - lo)), fixed[lo:hi])
    out = np.empty(300, dtype=np.uint64)
    assert Ld._hash_strings(pa.array(vals), out=out) is out
    np.testing.assert_array_equal(out, fixed)


# ----------------------------------------------------------------------------- end to end against trec_eval
@pytest.mark.parametrize("shuffle", [False, True])
def test_random_files_with_ties_match_trec_eval(tmp_path, shuffle):
    """Ties (broken by docno), unjudged and unretrieved documents, queries in one file only, shuffled lines."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(7)
    run_lines, qrels_lines = [], []
    for q in range(60):
        qid = f"q{q}"
        docs = [f"D{int(x)}" for x in rng.choice(10_000, size=40, replace=False)]
        n_ret = int(rng.integers(1, 31))
        if q % 10 != 3:  # some queries only in the qrels
            for rank, d in enumerate(docs[:n_ret]):
                run_lines.append(f"{qid} Q0 {d} {rank + 1} {round(float(rng.random()) * 3, 1)} t")
        if q % 10 != 7:  # some only in the run
            for d in rng.choice(docs, size=int(rng.integers(1, 25)), replace=False):
                qrels_lines.append(f"{qid} 0 {d} {int(rng.choice(4, p=[0.5, 0.25, 0.15, 0.1]))}")
    if shuffle:
        run_lines = [run_lines[i] for i in rng.permutation(len(run_lines))]
    (tmp_path / "r").write_text("\n".join(run_lines) + "\n")
    (tmp_path / "q").write_text("\n".join(qrels_lines) + "\n")
    ev = evaluate_run(tmp_path / "q", tmp_path / "r", ["ndcg@10", "map", "p@10", "mrr", "ndcg"], no_relevant="zero")
    with open(tmp_path / "q") as f:
        qr = pytrec_eval.parse_qrel(f)
    with open(tmp_path / "r") as f:
        rn = pytrec_eval.parse_run(f)
    want = pytrec_eval.RelevanceEvaluator(qr, {"ndcg_cut_10", "map", "P_10", "recip_rank", "ndcg"}).evaluate(rn)
    assert sorted(want) == ev.qids
    for ours, theirs in [("ndcg@10", "ndcg_cut_10"), ("map", "map"), ("p@10", "P_10"), ("mrr", "recip_rank"),
                         ("ndcg", "ndcg")]:
        np.testing.assert_allclose(ev.per_query[ours], [want[q][theirs] for q in ev.qids], rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad", [b"\xff", b"\xc3", b"\xe9t\xc3\xa9"])
def test_invalid_utf8_after_the_sniffed_sample_is_named(tmp_path, bad):
    """The fast reader checks UTF-8 itself (ASCII batches for free); a bad byte far into the file
    sends it to the line reader, which names the line."""
    good = "".join(f"{q} Q0 d{q}-{j} {j + 1} {1.0 / (j + 1):.4f} t\n" for q in range(300) for j in range(10))
    assert len(good) > 1 << 16
    p = tmp_path / "u.run"
    p.write_bytes(good.encode() + b"300 Q0 doc" + bad + b" 1 1.0 t\n")
    with pytest.raises(DataError, match=r"u\.run, line 3001"):
        Ld.read_run(p)
    ok = tmp_path / "ok.run"  # valid non-ASCII UTF-8 far into the file is read by the fast path
    ok.write_bytes(good.encode() + "300 Q0 doc-é-€ 1 1.0 t\n".encode())
    t = Ld._read_trec_fast(str(ok), "run", False)
    assert t is not None and t.docno.type == pa.string() and t.docno[-1].as_py() == "doc-é-€"
    assert t.qid_runs[2].type == pa.string() and t.qid_runs[2][-1].as_py() == "300"


@pytest.mark.parametrize("kind,last,match", [
    ("run", "7 Q0 dx 1 nan t", r"line 3001, field 'score'.*not finite"),
    ("run", "7 Q0 dx 1 -inf t", r"line 3001, field 'score'.*not finite"),
    ("run", "7 Q0 dx 1 1e400 t", r"line 3001, field 'score'.*not finite"),
    ("qrels", "7 0 dx 2000", r"line 3001, field 'relevance'.*outside"),
    ("qrels", "7 0 dx -1024", r"line 3001, field 'relevance'.*outside"),
])
def test_bad_numbers_far_into_the_file_are_named(tmp_path, kind, last, match):
    """Values are checked once after the streamed read; a bad one sends the file to the line reader."""
    if kind == "run":
        body = "".join(f"{q} Q0 d{j} {j + 1} {j / 7:.5f} t\n" for q in range(300) for j in range(10))
    else:
        body = "".join(f"{q} 0 d{j} {j % 4}\n" for q in range(300) for j in range(10))
    p = tmp_path / f"x.{kind}"
    p.write_text(body + last + "\n")
    with pytest.raises(DataError, match=match):
        (Ld.read_run if kind == "run" else Ld.read_qrels)(p)


def test_pair_key_of_some_rows_equals_the_full_computation(tmp_path):
    """The rare high-bit groups hash just their rows; the keys must equal the full array's."""
    rng = np.random.default_rng(3)
    lines = [f"q{q} Q0 D{int(d)} 1 0.5 t" for q in range(40) for d in rng.choice(10**int(rng.integers(2, 9)), 30,
                                                                                  replace=False)]
    p = tmp_path / "k.run"
    p.write_text("\n".join(lines) + "\n")
    t = Ld.read_run(p, check_duplicates=False)
    full = t.compute_pair_key()
    rows = rng.choice(len(t), 200, replace=False)
    np.testing.assert_array_equal(t.compute_pair_key(rows=rows), full[rows])


def test_groups_of_three_or_more_give_the_same_results(tmp_path, monkeypatch):
    """A matched pair plus unrelated rows with the same high bits (by chance, about once per
    million-row run) are resolved on the full keys of just those rows; here every row shares its
    high bits, and full keys of 3 bits may also collide (then the exact join takes over)."""
    q = "1 0 a 1\n1 0 b 0\n2 0 a 2\n"
    r = "1 Q0 a 1 2.0 t\n1 Q0 b 2 1.0 t\n2 Q0 c 1 1.0 t\n2 Q0 a 2 0.5 t\n"
    (tmp_path / "q").write_text(q)
    (tmp_path / "r").write_text(r)
    want = evaluate_run(tmp_path / "q", tmp_path / "r", METRICS)
    real_mix = Ld._mix
    # keep 3 low bits of the real hash and zero the rest: high bits all equal, full keys mostly distinct
    monkeypatch.setattr(Ld, "_mix", lambda h: real_mix(h) & np.uint64(0x7))
    calls = []
    real_join = Ld._join
    monkeypatch.setattr(Ld, "_join", lambda qr, rn, exact: calls.append(exact) or real_join(qr, rn, exact))
    got = evaluate_run(tmp_path / "q", tmp_path / "r", METRICS)
    _same_eval(got, want)
    assert calls and calls[0] is False
