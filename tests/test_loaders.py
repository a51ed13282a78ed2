"""Loaders: every format on real and hand-made files, every bad input as a DataError naming where and how to fix."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor import loaders as Ld
from auditor.data import RankingDataset, load_dataset
from auditor.errors import DataError

DATA = Path(__file__).resolve().parent / "data"
LTR = DATA / "ltr"
TE = DATA / "trec_eval"


def _w(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def _err(fn, *args, match: str | None = None, line: int | None = None, field: str | None = None, **kw) -> DataError:
    """Call ``fn`` expecting a DataError; check its message names path, line, field and a fix."""
    with pytest.raises(DataError) as ei:
        fn(*args, **kw)
    e = ei.value
    text = str(e)
    if match is not None:
        assert re.search(match, text), text
    if line is not None:
        assert e.line == line and f"line {line}" in text, text
    if field is not None:
        assert e.field == field, (e.field, text)
    assert e.path is not None
    return e


# =========================================================================== LETOR on the real sample
def test_lightgbm_sample_with_query_files():
    train = Ld.load(LTR / "rank.train", n_features=300)
    test = Ld.load(LTR / "rank.test", n_features=300)
    assert (train.n_rows, train.n_queries, train.n_features) == (3005, 201, 300)
    assert (test.n_rows, test.n_queries) == (768, 50)
    sizes = [int(x) for x in (LTR / "rank.train.query").read_text().split()]
    assert train.query_sizes.tolist() == sizes
    vals, counts = np.unique(train.labels, return_counts=True)
    assert dict(zip(vals.tolist(), counts.tolist())) == {0.0: 645, 1.0: 1211, 2.0: 858, 3.0: 222, 4.0: 69}
    vals, counts = np.unique(test.labels, return_counts=True)
    assert dict(zip(vals.tolist(), counts.tolist())) == {0.0: 206, 1.0: 256, 2.0: 252, 3.0: 44, 4.0: 10}
    X = train.features["all"]
    # first line: "0 10:0.89 11:0.75 12:0.01 ..." (1-based indices, the rest 0)
    assert X[0, 9] == 0.89 and X[0, 10] == 0.75 and X[0, 0] == 0.0
    nz = (X > 0).sum(axis=1)
    assert 60 < nz.mean() < 130  # about 95 nonzero per row (PROVENANCE.md)
    assert train.item_id is None and train.qid.dtype == np.int64
    assert load_dataset(str(LTR / "rank.test"), n_features=300).sha256() == test.sha256()


def test_letor_feature_groups_on_the_sample():
    d = Ld.load(LTR / "rank.test", n_features=300, feature_groups="a=1-100;b=101-250,c=251-300")
    assert {g: x.shape[1] for g, x in d.features.items()} == {"a": 100, "b": 150, "c": 50}
    full = Ld.load(LTR / "rank.test", n_features=300).features["all"]
    np.testing.assert_array_equal(d.features["b"], full[:, 100:250])


# =========================================================================== LETOR hand-made
LETOR4 = """\
2 qid:10 1:0.5 3:1.5 #docid = GX000-00 inc = 1 prob = 0.8
0 qid:10 2:0.25 #docid = GX000-01 inc = 0.2
# a comment line

1 qid:11 1:1 2:2 3:3 # docid = GX001-00
"""


def test_letor_qid_docid_comments_and_sparse_rows(tmp_path):
    d = Ld.load(_w(tmp_path, "a.txt", LETOR4))
    assert d.qid.tolist() == [10, 10, 11]
    assert d.item_id.tolist() == ["GX000-00", "GX000-01", "GX001-00"]
    np.testing.assert_array_equal(d.features["all"], [[0.5, 0, 1.5], [0, 0.25, 0], [1, 2, 3]])
    assert d.labels.tolist() == [2.0, 0.0, 1.0]
    wide = Ld.load(_w(tmp_path, "b.svm", LETOR4), n_features=5)
    assert wide.features["all"].shape == (3, 5)


def test_letor_string_qids_and_unsorted_indices(tmp_path):
    d = Ld.load(_w(tmp_path, "a.letor", "1 qid:q-a 3:1 1:2\n0 qid:q-a 2:1\n1 qid:007 1:1\n"))
    assert d.qid.tolist() == ["q-a", "q-a", "007"]
    assert d.features["all"][0].tolist() == [2.0, 0.0, 1.0]


def test_letor_query_file_and_group_file(tmp_path):
    p = _w(tmp_path, "rank.x", "1 1:1\n0 1:2\n2 2:1\n")
    _w(tmp_path, "rank.x.group", "2\n1\n")
    d = Ld.load(p)
    assert d.qid.tolist() == [0, 0, 1]


@pytest.mark.parametrize("text, match, line, field", [
    ("a qid:1 1:1\n", r"label 'a' is not a number", 1, "label"),
    ("nan qid:1 1:1\n", r"not a finite number", 1, "label"),
    ("5000 qid:1 1:1\n", r"within ±1023", 1, "label"),
    ("1 qid:1 1:1\n1 qid:1 3:abc\n", r"token '3:abc'", 2, "3:abc"),
    ("1 qid:1 1:1 7\n", r"token '7'", 1, "7"),
    ("1 qid:1 x:1\n", r"token 'x:1'", 1, "x:1"),
    ("1 qid:1 2::1\n", r"token '2::1'", 1, "2::1"),
    ("1 qid:1 0:1\n", r"1-based", 1, "0"),
    ("1 qid:1 2:1 2:3\n", r"appears twice", 1, "2"),
    ("1 qid:1 2:inf\n", r"must be finite", 1, "2"),
    ("1 qid:1 1:1\n1 1:1\n", r"some lines have 'qid:'", 2, "qid"),
    ("1 qid: 1:1\n", r"empty qid", 1, "qid"),
    ("1 qid:1 1:1\n0 qid:2 1:1\n1 qid:1 1:2\n", r"query 1 are not contiguous.*line 1.*line 3", 3, "qid"),
    ("1 qid:1 1:1 # docid = a\n0 qid:1 1:1 # docid = a\n", r"item 'a' appears twice", 2, "item_id"),
    ("1 qid:1 1:1 # docid = a\n0 qid:1 1:1\n", r"'# docid", 2, "docid"),
])
def test_letor_bad_lines(tmp_path, text, match, line, field):
    e = _err(Ld.load, _w(tmp_path, "bad.txt", text), match=match, line=line, field=field)
    assert "Fix:" in str(e) and "bad.txt" in str(e)


def test_letor_first_bad_line_is_reported_across_deferred_checks(tmp_path):
    """Feature values are checked in batches; a later bad label must not hide an earlier bad value."""
    text = "1 qid:1 1:1\n1 qid:1 2:inf\nx qid:1 1:1\n"
    _err(Ld.load, _w(tmp_path, "order.txt", text), match="must be finite", line=2)
    many = "".join(f"{i % 3} qid:{i // 10} 1:{i} 2:0.5\n" for i in range(5000)) + "1 qid:9999 3:1 3:2\n"
    _err(Ld.load, _w(tmp_path, "big.txt", many), match="appears twice", line=5001)


def test_letor_width_errors(tmp_path):
    p = _w(tmp_path, "w.txt", "1 qid:1 1:1 9:1\n")
    _err(Ld.load, p, n_features=5, match=r"index 9 is above n_features=5", line=1)
    _err(Ld.load, _w(tmp_path, "nf.txt", "1 qid:1\n0 qid:1\n"), match="no line has any feature")
    _err(Ld.load, _w(tmp_path, "huge.txt", "1 qid:1 99999999999:1\n"), match="dense")


def test_letor_missing_qid_and_query_file_problems(tmp_path):
    _err(Ld.load, _w(tmp_path, "noq.txt", "1 1:1\n0 1:1\n"), match=r"noq.txt.query", field="qid")
    p = _w(tmp_path, "r.txt", "1 1:1\n0 1:1\n")
    _w(tmp_path, "r.txt.query", "3\n")
    e = _err(Ld.load, p, match="sum to 3 but", field="size")
    assert e.path.endswith("r.txt.query")
    _w(tmp_path, "r.txt.query", "2\nx\n")
    _err(Ld.load, p, match="'x' is not a positive integer", line=2)
    p2 = _w(tmp_path, "s.txt", "1 qid:1 1:1\n0 qid:2 1:1\n")
    _w(tmp_path, "s.txt.query", "2\n")
    _err(Ld.load, p2, match="disagree")


def test_file_level_errors(tmp_path):
    _err(Ld.load, tmp_path / "nope.txt", match="file not found")
    _err(Ld.load, tmp_path, "letor", match="directory")
    _err(Ld.load, _w(tmp_path, "empty.txt", ""), match="no data lines")
    _err(Ld.load, _w(tmp_path, "comments.txt", "# only\n\n   \n"), match="no data lines")
    _err(Ld.load, _w(tmp_path, "bin.txt", b"1 qid:1 1:1\n\x00\x01\x02garbage"), match="binary", line=2)
    _err(Ld.load, _w(tmp_path, "latin.txt", b"1 qid:1 1:1 # docid = caf\xe9\n"), match="not UTF-8", line=1)
    _err(Ld.load, _w(tmp_path, "x.txt", "1 qid:1 1:1\n"), "xml", match="unknown format")
    _err(Ld.load, _w(tmp_path, "y.csv", "qid,label,f\n1,1,1\n"), n_features=3, match="only applies to LETOR")


# =========================================================================== feature-group spec
def test_feature_group_spec_syntax():
    g = Ld.parse_feature_groups("image=1-3;text=4-5,visual=6,8-9;rest=7", 9)
    assert {k: v.tolist() for k, v in g.items()} == {"image": [0, 1, 2], "text": [3, 4], "visual": [5, 7, 8],
                                                     "rest": [6]}
    g2 = Ld.parse_feature_groups(" a = 1 - 2 , b=3 ", None)
    assert list(g2) == ["a", "b"]


@pytest.mark.parametrize("spec, width, match", [
    ("", 3, "empty"),
    ("a=1-2;;b=3", 3, "empty item"),
    ("1-3", 3, "before any NAME"),
    ("a=1-2;a=3", 3, "named twice"),
    ("9a=1-3", 3, "not an identifier"),
    ("a=x-3", 3, "not 'a-b'"),
    ("a=0-3", 3, "1-based"),
    ("a=3-1", 3, "reversed"),
    ("a=1-3;b=3-4", 4, "overlap at column 3"),
    ("a=1-5", 3, "names column 5 but the data has 3"),
    ("a=1-2", 5, r"columns 3-5 are in no group"),
])
def test_feature_group_spec_errors(spec, width, match):
    _err(Ld.parse_feature_groups, spec, width, match=match)


# =========================================================================== TREC
def test_trec_dataset_from_run_and_qrels():
    d = Ld.load(TE / "results.test", qrels=TE / "qrels.test")
    assert (d.n_rows, d.n_queries) == (1500, 3)
    assert d.feature_groups == ["score"] and d.features["score"].shape == (1500, 1)
    assert d.qid.tolist()[:1] == [301] and d.item_id[0] == "FR940202-2-00150"
    assert d.features["score"][0, 0] == pytest.approx(2.129133)
    # labels from qrels, unjudged = 0; 71 relevant retrieved for 301 (out.test.aq num_rel_ret)
    assert int((d.labels[d.qid == 301] >= 1).sum()) == 71
    assert d.meta["n_run_queries_without_qrels"] == 0 and d.meta["n_judged_unretrieved"] > 0
    _err(Ld.load, TE / "results.test", "trec", match="needs its qrels")


def test_trec_whitespace_variants_and_comments_read_identically(tmp_path):
    lines = ["1 Q0 d1 1 2.5 run", "1 Q0 d2 2 1.5 run", "2 Q0 d3 1 0.5 run"]
    variants = {
        "space": "\n".join(lines) + "\n",
        "tab": "\n".join(x.replace(" ", "\t") for x in lines),
        "mixed": "\r\n".join("  " + x.replace(" ", " \t  ") + "  " for x in lines) + "\r\n",
        "comment": "# run header\n" + "\n".join(lines) + "\n\n",
        "extra": "\n".join(x + " trailing junk" for x in lines),
    }
    ref = None
    for name, text in variants.items():
        t = Ld.read_run(_w(tmp_path, f"{name}.run", text))
        got = (t.qid.to_pylist(), t.docno.to_pylist(), t.value.tolist())
        assert got == (["1", "1", "2"], ["d1", "d2", "d3"], [2.5, 1.5, 0.5]), name
        ref = ref or got
    slow = Ld.read_trec_lines(tmp_path / "space.run", "run")
    assert (slow.qid.to_pylist(), slow.value.tolist()) == (ref[0], ref[2])


@pytest.mark.parametrize("kind, text, match, line, field", [
    ("run", "1 Q0 d1 1 2.5 run\n1 Q0 d2 2 run\n", r"has 5 fields", 2, "5 fields"),
    ("run", "1 0 d1 1\n", r"looks like a qrels line", 1, "4 fields"),
    ("qrels", "1 Q0 d1 1 2.5 run\n", r"looks like a run line", 1, "6 fields"),
    ("run", "1 Q0 d1 1 high run\n", r"score 'high' is not a number", 1, "score"),
    ("run", "1 Q0 d1 1 2 r\n1 Q0 d2 2 nan r\n", r"score 'nan' is not finite", 2, "score"),
    ("qrels", "1 0 d1 1\n1 0 d1 0\n", r"'d1' appears twice for query '1' \(lines 1 and 2\)", 2, "docno"),
    ("run", "1 Q0 d1 1 2 r\n1 Q0 d1 2 1 r\n", r"appears twice", 2, "docno"),
    ("qrels", "1 0 d1 99999\n", r"outside", 1, "relevance"),
])
def test_trec_bad_lines(tmp_path, kind, text, match, line, field):
    fn = Ld.read_run if kind == "run" else Ld.read_qrels
    _err(fn, _w(tmp_path, f"bad.{kind}", text), match=match, line=line, field=field)


def test_trec_file_level_errors(tmp_path):
    q = _w(tmp_path, "q", "1 0 d1 1\n")
    _err(Ld.read_run, _w(tmp_path, "empty.run", ""), match="no data lines")
    _err(Ld.read_run, _w(tmp_path, "bin.run", bytes(range(256)) * 4), match="binary|UTF-8")
    _err(Ld.read_qrels, tmp_path / "missing.qrels", match="not found")
    _err(Ld.load, _w(tmp_path, "other.run", "9 Q0 d1 1 1 r\n"), qrels=q, match="no query of the run has qrels")


# =========================================================================== align_run_to_dataset
def test_align_run_to_dataset(tmp_path):
    d = Ld.load(TE / "results.test", qrels=TE / "qrels.test")
    s = Ld.align_run_to_dataset(TE / "results.test", d)
    np.testing.assert_array_equal(s, d.features["score"][:, 0])
    # rows in another order; int qids in data match string qids in the run
    perm = np.concatenate([np.arange(1000, 1500), np.arange(0, 1000)])
    d2 = d.take(perm)
    np.testing.assert_array_equal(Ld.align_run_to_dataset(TE / "results.test", d2), d.features["score"][perm, 0])
    # a run missing rows
    lines = (TE / "results.test").read_text().splitlines()
    short = _w(tmp_path, "short.run", "\n".join(lines[:-3]) + "\n")
    _err(Ld.align_run_to_dataset, short, d, match=r"3 of 1500 dataset rows have no line in the run, e.g. query")
    no_ids = RankingDataset(qid=d.qid, labels=d.labels, features=d.features)
    _err(Ld.align_run_to_dataset, TE / "results.test", no_ids, match="no item ids")


# =========================================================================== CSV / Parquet
CSV = """\
qid,label,item_id,query_text,timestamp,group_id,compliance,image.2,image.1,text.1,note
q1,2,a,red shoes,2024-01-01T00:00:00,u1,1,0.2,0.1,5,x
q1,0,b,red shoes,2024-01-01T00:00:10,u1,0,0.4,0.3,6,y
q2,1,a,blue hat,2024-01-02T00:00:00,u2,1,0.6,0.5,7,z
"""


def test_csv_named_groups_and_reserved_columns(tmp_path):
    d = Ld.load(_w(tmp_path, "a.csv", CSV))
    assert set(d.features) == {"image", "text"}
    np.testing.assert_array_equal(d.features["image"], [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])  # ordered by index
    assert d.item_id.tolist() == ["a", "b", "a"] and d.query_text[2] == "blue hat"
    assert d.timestamp[1] - d.timestamp[0] == 10.0
    assert d.extra["compliance"].tolist() == [1, 0, 1] and d.extra["note"].tolist() == ["x", "y", "z"]
    assert d.group_id.tolist() == ["u1", "u1", "u2"]


def test_csv_plain_columns_with_spec_and_parquet_roundtrip(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = "qid,label,f1,f2,f3\n1,0,1,2,3\n1,1,4,5,6\n2,2,7,8,9\n"
    d = Ld.load(_w(tmp_path, "p.csv", text), feature_groups="x=1-2;y=3")
    assert d.features["x"].tolist() == [[1, 2], [4, 5], [7, 8]] and d.features["y"].shape == (3, 1)
    assert Ld.load(_w(tmp_path, "p.tsv", text.replace(",", "\t"))).features["all"].shape == (3, 3)
    t = pa.table({"qid": [1, 1, 2], "label": [0.0, 1.0, 2.0], "f1": [1.0, 4.0, 7.0], "f2": [2, 5, 8]})
    pq.write_table(t, tmp_path / "p.parquet")
    dp = Ld.load(tmp_path / "p.parquet")
    assert dp.features["all"].tolist() == [[1, 2], [4, 5], [7, 8]] and dp.qid.tolist() == [1, 1, 2]


@pytest.mark.parametrize("text, match, field", [
    ("qid,f1\n1,2\n", "required column 'label'", "label"),
    ("label,f1\n1,2\n", "required column 'qid'", "qid"),
    ("qid,label,f1\n1,,2\n", "column 'label' is empty at line 2", "label"),
    ("qid,label,f1\n1,1,2\n2,1,2\n1,0,3\n", "query 1 are not contiguous", "qid"),
    ("qid,label,f1\n1,1,2\n1,0,n/a\n", "column 'f1' is not numeric .value 'n/a' in data row 2", "f1"),
    ("qid,label,f1\n1,1,inf\n", "must be finite", "f1"),
    ("qid,label,f1\n1,abc,1\n", "holds string, expected numbers", "label"),
    ("qid,label,item_id,f1\n1,1,a,1\n1,0,a,2\n", "item 'a' appears twice", "item_id"),
    ("qid,label\n1,1\n", "no numeric feature columns", "features"),
    ("qid,label,f1\n", "no rows", None),
    ("qid,label,f1,f1\n1,1,1,1\n", "appears twice", "f1"),
    ("qid,label,a.1,a.1x,b\n1,1,1,1,1\n", None, None),
])
def test_csv_errors(tmp_path, text, match, field):
    p = _w(tmp_path, "bad.csv", text)
    if match is None:  # 'a.1x' is not a group column: it is extra data next to named groups
        d = Ld.load(p)
        assert list(d.features) == ["a"] and set(d.extra) == {"a.1x", "b"}
        return
    _err(Ld.load, p, match=match, field=field)


def test_csv_and_parquet_file_errors(tmp_path):
    _err(Ld.load, _w(tmp_path, "e.csv", ""), match="is empty")
    _err(Ld.load, _w(tmp_path, "b.csv", b"\x00\x01\x02\x03"), match="binary")
    _err(Ld.load, _w(tmp_path, "b.parquet", b"PAR1 not really"), match="cannot be read as PARQUET")
    _err(Ld.load, _w(tmp_path, "g.csv", CSV), feature_groups="a=1", match="names its groups")


# =========================================================================== NPZ
def test_npz_groups_and_single_matrix(tmp_path):
    n = 4
    np.savez(tmp_path / "a.npz", qid=np.array([1, 1, 2, 2]), labels=np.array([0, 1, 2, 0]),
             features__image=np.ones((n, 3)), features__text=np.zeros((n, 2)), item_id=np.array(list("abcd")),
             extra__compliance=np.array([1, 0, 1, 1]))
    d = Ld.load(tmp_path / "a.npz")
    assert {g: x.shape for g, x in d.features.items()} == {"image": (4, 3), "text": (4, 2)}
    assert d.extra["compliance"].tolist() == [1, 0, 1, 1] and d.item_id.tolist() == list("abcd")
    np.savez(tmp_path / "b.npz", qid=np.array([1, 1]), labels=np.array([0.0, 1.0]), features=np.arange(8.0).reshape(2, 4))
    d2 = Ld.load(tmp_path / "b.npz", feature_groups="u=1-3;v=4")
    assert d2.features["u"].tolist() == [[0, 1, 2], [4, 5, 6]]


def test_npz_errors(tmp_path):
    def save(name, **arrays):
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    ok = dict(qid=np.array([1, 1]), labels=np.array([0.0, 1.0]), features=np.ones((2, 2)))
    _err(Ld.load, save("u.npz", **ok, lables=np.ones(2)), match="unexpected array 'lables'", field="lables")
    _err(Ld.load, save("m.npz", qid=ok["qid"], features=ok["features"]), match="required array 'labels'")
    _err(Ld.load, save("o.npz", **{**ok, "item_id": np.array(["a", None], dtype=object)}), match="fixed-width unicode")
    _err(Ld.load, save("s.npz", **{**ok, "labels": np.ones(3)}), match=r"labels has shape \(3,\)")
    _err(Ld.load, save("n.npz", **{**ok, "features": np.array([[1.0, np.nan], [0, 0]])}), match="must be finite")
    _err(Ld.load, save("c.npz", **{**ok, "qid": np.array([1, 2, 1]), "labels": np.ones(3),
                                     "features": np.ones((3, 1))}), match="not contiguous")
    _err(Ld.load, _w(tmp_path, "z.npz", b"PK\x03\x04 broken zip"), match="cannot be read as NPZ")
    np.save(tmp_path / "single.npy", np.ones(3))
    _err(Ld.load, tmp_path / "single.npy", "npz", match="single .npy array")


def test_guess_format():
    assert Ld.guess_format("x.parquet") == "parquet" and Ld.guess_format("x.TSV") == "csv"
    assert Ld.guess_format("rank.train") == "letor" and Ld.guess_format("a.svm") == "letor"
    assert Ld.guess_format("a.run") == "trec" and Ld.guess_format("a.txt", qrels="q") == "trec"


# =========================================================================== fuzz
_LETOR_TOKENS = st.sampled_from(["1", "0", "qid:1", "qid:2", "3:0.5", "1:1", "0:1", "2:x", ":", "#", "docid", "=",
                                 "nan", "4:inf", "-1", "2:1e400", "\t", "qid:", "5:-0"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes_give_dataset_or_data_error(tmp_path, blob):
    for name, fmt, kw in [("f.txt", "letor", {}), ("f.run", "trec", {"qrels": str(TE / "qrels.test")}),
                          ("f.csv", "csv", {}), ("f.npz", "npz", {}), ("f.parquet", "parquet", {})]:
        p = tmp_path / name
        p.write_bytes(blob)
        try:
            d = Ld.load(p, fmt, **kw)
        except DataError:
            continue
        assert isinstance(d, RankingDataset) and d.n_rows > 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(_LETOR_TOKENS, max_size=7).map(" ".join), min_size=1, max_size=6))
def test_fuzz_letor_token_soup(tmp_path, lines):
    p = tmp_path / "soup.txt"
    p.write_text("\n".join(lines))
    try:
        d = Ld.load(p)
    except DataError as e:
        assert "soup.txt" in str(e)
        return
    assert np.isfinite(d.features["all"]).all() and np.isfinite(d.labels).all()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.sampled_from(["1", "2", "Q0", "d1", "d2", "0.5", "x", "-3", "nan", "#"]),
                         max_size=7).map(" ".join), min_size=1, max_size=6))
def test_fuzz_trec_token_soup(tmp_path, lines):
    p = tmp_path / "soup.run"
    p.write_text("\n".join(lines))
    for fn in (Ld.read_run, Ld.read_qrels):
        try:
            t = fn(p)
        except DataError:
            continue
        assert len(t) > 0 and np.isfinite(t.value).all()


def test_hash_collisions_fall_back_to_exact_join(monkeypatch):
    """Joins run on 64-bit string hashes, confirmed on the strings; if every hash collides, results are unchanged."""
    from auditor.evaluate import evaluate_run
    from auditor.loaders._trec_join import join

    want = evaluate_run(TE / "qrels.test", TE / "results.test", ["ndcg@10", "map"])
    monkeypatch.setattr(Ld, "join_run_qrels", lambda q, r: join(q, r, key_mask=0))  # every key collides
    got = evaluate_run(TE / "qrels.test", TE / "results.test", ["ndcg@10", "map"])
    assert got.qids == want.qids
    for k in want.per_query:
        np.testing.assert_array_equal(got.per_query[k], want.per_query[k])
    d = Ld.load(TE / "results.test", qrels=TE / "qrels.test")
    assert d.n_rows == 1500 and int((d.labels[d.qid == 301] >= 1).sum()) == 71


def test_docnos_differing_only_in_length_or_late_bytes_are_distinct(tmp_path):
    """The join hashes strings 8 bytes at a time: ids equal but for their length, a trailing NUL-free
    byte or a byte past the first word must still be told apart (as the dictionary join does)."""
    ids = ["", "a", "ab", "abcdefgh", "abcdefghi", "abcdefgi", "abcdefghij", "abcdefghiJ", "é", "q1", "q10", "x" * 17]
    ids = [i for i in ids if i]
    run = _w(tmp_path, "r.run", "".join(f"1 Q0 {d} {k} {k % 3} t\n" for k, d in enumerate(ids)))
    qrels = _w(tmp_path, "q.qrels", "".join(f"1 0 {d} {k % 4}\n" for k, d in enumerate(ids[::2])))
    r, q = Ld.read_run(run), Ld.read_qrels(qrels)
    got, want = Ld.join_run_qrels(q, r), Ld.reference_join(q, r)
    np.testing.assert_array_equal(got.run_labels, want.run_labels)
    np.testing.assert_array_equal(got.unret_rows, want.unret_rows)


def test_utf8_byte_order_mark_is_not_data(tmp_path):
    """Windows editors and Excel's "UTF-8" export start files with a BOM: read as if absent."""
    from auditor.evaluate import evaluate_run

    body = "1 qid:1 1:0.5 2:0.3\n0 qid:1 1:0.1 2:0.2\n2 qid:2 1:0.5 2:0.3\n"
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + body.encode())
    (tmp_path / "plain.txt").write_text(body)
    a, b = load_dataset(str(tmp_path / "bom.txt")), load_dataset(str(tmp_path / "plain.txt"))
    assert a.sha256() == b.sha256()
    files = {"qrels": "1 0 d1 1\n1 0 d2 0\n2 0 d3 2\n", "run": "1 Q0 d2 1 2.0 r\n1 Q0 d1 2 1.0 r\n2 Q0 d3 1 1.0 r\n"}
    for name, text in files.items():
        (tmp_path / f"{name}.bom").write_bytes(b"\xef\xbb\xbf" + text.encode())
        (tmp_path / f"{name}.plain").write_text(text)
    x = evaluate_run(str(tmp_path / "qrels.bom"), str(tmp_path / "run.bom"), ["ndcg@10"])
    y = evaluate_run(str(tmp_path / "qrels.plain"), str(tmp_path / "run.plain"), ["ndcg@10"])
    assert x.qids == y.qids == ["1", "2"]
    np.testing.assert_array_equal(x.per_query["ndcg@10"], y.per_query["ndcg@10"])
    for kind in ("qrels", "run"):  # the line-by-line reader too (the one that finds bad lines)
        t1 = Ld.read_trec_lines(tmp_path / f"{kind}.bom", kind)
        t2 = Ld.read_trec_lines(tmp_path / f"{kind}.plain", kind)
        assert t1.qid_runs[2].to_pylist() == t2.qid_runs[2].to_pylist() == ["1", "2"]
        assert t1.docno.to_pylist() == t2.docno.to_pylist()
        np.testing.assert_array_equal(t1.value, t2.value)


# --------------------------------------------------------------------------- issue 14: hostile text
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8", blacklist_characters=" \t\n\r\x0b\x0c"), max_size=6),
                min_size=1, max_size=8))
def test_fast_control_scan_agrees_with_the_name_rule(tmp_path, strings):
    """The TREC reader refuses a docno exactly when the name rule finds a control character in it."""
    from auditor.safetext import first_control

    p = _w(tmp_path, "c.run", "".join(f"1 Q0 d{k}{s}x {k} 1.0 t\n" for k, s in enumerate(strings)).encode())
    try:
        Ld.read_run(p)
        refused = False
    except DataError:
        refused = True
    assert refused == any(first_control(s) is not None for s in strings)


@pytest.mark.parametrize("char", ["\x1b", "\x1f", "\x85", "\u202e", "\u2069"])
def test_trec_control_characters_named_on_both_paths(tmp_path, char):
    body = "".join(f"q1 Q0 d{i} {i} {9 - i} t\n" for i in range(400))  # long enough for the fast path
    p = _w(tmp_path, "r.run", body + f"q1 Q0 x{char}y 400 0 t\n")
    _err(Ld.read_run, p, match="control character", line=401)


@pytest.mark.parametrize("space", ["", "\u00a0", "\u3000"])
def test_trec_non_ascii_ids_load_alike_on_both_paths(tmp_path, space):
    """A no-break or ideographic space is part of a docno (trec_eval splits on ASCII whitespace only)."""
    body = "".join(f"q\u00e9 Q0 d\u00fc{space}{i} {i} {9 - i} t\n" for i in range(50))
    fast = Ld.read_run(_w(tmp_path, "r.run", body))
    slow = Ld.read_trec_lines(tmp_path / "r.run", "run")
    for t in (fast, slow):
        assert len(t) == 50
    assert fast.docno.to_pylist() == slow.docno.to_pylist() and fast.value.tolist() == slow.value.tolist()


def test_width_limit_context_and_argument(tmp_path):
    p = _w(tmp_path, "w.txt", "1 qid:1 1:0.5 20000:1\n0 qid:1 2:0.5\n")
    _err(Ld.load, p, match=r"limit is 10,000 columns", line=1, field="20000")
    assert Ld.load(p, max_features=20000).n_features == 20000
    with Ld.feature_width_limit(20000):
        assert load_dataset(str(p)).n_features == 20000
        with Ld.feature_width_limit(50):
            _err(Ld.load, _w(tmp_path, "n.txt", "1 qid:1 60:1\n"), match="limit is 50 columns")
    assert Ld.max_features_limit() == Ld.DEFAULT_MAX_FEATURES
    _err(Ld.load, p, n_features=30000, match="n_features=30,000", field="n_features")


@pytest.mark.parametrize("tok", ["\u0663", "1_000", "\uff11", "\u00b2"])
def test_numbers_are_plain_ascii(tmp_path, tok):
    """Python's float reads other scripts' digits and '1_000': in a ranking file they are errors."""
    _err(Ld.load, _w(tmp_path, "n.txt", f"{tok} qid:1 1:0.5\n"), match="not a number", line=1, field="label")
    _err(Ld.load, _w(tmp_path, "v.txt", f"1 qid:1 1:{tok}\n"), match="not '<index>:<value>'", line=1)
    _err(Ld.read_run, _w(tmp_path, "s.run", f"1 Q0 d 1 {tok} t\n"), match="not a number", line=1, field="score")
    assert Ld.load(_w(tmp_path, "ok.txt", "-1.5e2 qid:1 1:2.5e-1\n")).labels.tolist() == [-150.0]


def test_dataset_group_and_extra_names_are_printable():
    X = np.zeros((2, 1))
    with pytest.raises(DataError, match="control character"):
        RankingDataset(qid=np.array([1, 1]), labels=np.array([1.0, 0.0]), features={"a\x1b[2J": X})
    with pytest.raises(DataError, match="control character"):
        RankingDataset(qid=np.array([1, 1]), labels=np.array([1.0, 0.0]), features={"a": X},
                       extra={"c\u202e": np.zeros(2)})


def test_an_index_beyond_int64_is_named_not_wrapped(tmp_path):
    p = _w(tmp_path, "o.txt", "1 qid:1 1:0.5\n0 qid:1 99999999999999999999:1\n")
    _err(Ld.load, p, match="above 1,048,576", line=2, field="99999999999999999999")


def test_letor_matrix_equals_a_plain_parse_across_batches_and_widths(tmp_path):
    """Rows are read a batch at a time into dense segments, a new one when a batch is wider: a file
    whose width grows (and shrinks) over 10,000 rows, some without features, loads as a plain parse."""
    rng = np.random.default_rng(5)
    lines, want = [], []
    for i in range(10_000):
        width = 10 if i < 4000 else (5 if i < 7000 else 40)
        cols = sorted(rng.choice(width, size=int(rng.integers(0, min(width, 6) + 1)), replace=False).tolist())
        vals = {c + 1: round(float(rng.normal()), 4) for c in cols}
        want.append(vals)
        lines.append(f"{i % 3} qid:{i // 50} " + " ".join(f"{c}:{v}" for c, v in vals.items()))
    p = _w(tmp_path, "grow.txt", "\n".join(lines) + "\n")
    d = Ld.load(p)
    X = np.zeros((len(want), max(max(v, default=0) for v in want)))
    for r, vals in enumerate(want):
        for c, v in vals.items():
            X[r, c - 1] = v
    np.testing.assert_array_equal(d.features["all"], X)
    np.testing.assert_array_equal(d.labels, np.arange(10_000) % 3)
    assert d.n_queries == 200
