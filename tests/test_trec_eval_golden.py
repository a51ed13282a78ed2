"""`audit trec-eval` reproduces trec_eval's own test suite (the Makefile's ``quicktest`` target).

The inputs and expected outputs come from the trec_eval 10.0-rc3 source archive kept in
tests/data/trec_eval/ (read with tarfile: no compiler needed), every case of the target: the
qrels measures, the prefs / qrels_prefs / qrels_jg formats and z-scores (-Z).
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.trec_eval import command, reference

# (arguments, expected output file), from the archive's Makefile quicktest target
QUICKTEST = [
    ([], "qrels.test", "results.test", "out.test"),
    ([], "qrels.test.with-comments", "results.test", "out.test"),
    ([], "qrels.comment.test", "results.comment.test", "out.comment.test"),
    (["-m", "all_trec"], "qrels.test", "results.test", "out.test.a"),
    (["-m", "all_trec", "-q"], "qrels.test", "results.test", "out.test.aq"),
    (["-m", "all_trec", "-q", "-c"], "qrels.test", "results.trunc", "out.test.aqc"),
    (["-m", "all_trec", "-q", "-c", "-M100"], "qrels.test", "results.trunc", "out.test.aqcM"),
    (["-m", "all_trec", "-mrelstring.20", "-q", "-l2"], "qrels.rel_level", "results.test", "out.test.aql"),
    (["-q", "-miprec_at_recall..10,.20,.25,.75,.50", "-m", "P.5,7,3", "-m", "recall.20,2000",
      "-m", "Rprec_mult.5.0,0.2,0.35", "-mutility.2,-1,0,0", "-m", "11pt_avg..25,.5,.75", "-mndcg.1=3,2=9,4=4.5",
      "-mndcg_cut.10,20,23.4", "-msuccess.2,5,20"], "qrels.test", "results.test", "out.test.meas_params"),
    (["-m", "all_prefs", "-q", "-R", "prefs"], "prefs.test", "prefs.results.test", "out.test.prefs"),
    (["-m", "all_prefs", "-q", "-R", "prefs"], "prefs.comment.test", "prefs.results.test", "out.test.prefs"),
    (["-m", "all_prefs", "-q", "-R", "qrels_prefs"], "qrels.test", "results.test", "out.test.qrels_prefs"),
    (["-m", "qrels_jg", "-q", "-R", "qrels_jg"], "qrels.123", "results.test", "out.test.qrels_jg"),
    (["-m", "qrels_jg", "-q", "-R", "qrels_jg"], "qrels.comments.123", "results.test", "out.test.qrels_jg"),
    (["-q", "-m", "all_trec", "-Z", "{dir}/zscores_file"], "qrels.test", "results.test", "out.test.aqZ"),
]


@pytest.fixture(scope="module")
def archive_test_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("trec_eval_archive")
    with tarfile.open(reference.TARBALL) as tar:
        members = [m for m in tar.getmembers() if "/test/" in m.name and m.isfile()]
        for m in members:
            f = tar.extractfile(m)
            assert f is not None
            (d / Path(m.name).name).write_bytes(f.read())
    return d


@pytest.mark.parametrize("args,qrels,run,expected", QUICKTEST, ids=[c[3] + "/" + c[1] for c in QUICKTEST])
def test_quicktest_output_is_identical(archive_test_dir: Path, args: list[str], qrels: str, run: str,
                                       expected: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    args = [a.replace("{dir}", str(archive_test_dir)) for a in args]
    rc = command.main([*args, str(archive_test_dir / qrels), str(archive_test_dir / run)], out, err)
    assert rc == 0, err.getvalue()
    assert out.getvalue() == (archive_test_dir / expected).read_text()


def test_cli_command_prints_the_same_lines(archive_test_dir: Path) -> None:
    res = CliRunner().invoke(cli, ["trec-eval", "-m", "all_trec", "-q",
                                   str(archive_test_dir / "qrels.test"), str(archive_test_dir / "results.test")])
    assert res.exit_code == 0, res.output
    assert res.output == (archive_test_dir / "out.test.aq").read_text()


@pytest.mark.parametrize("args,needle", [
    (["-m", "all_prefs"], "needs -R prefs or -R qrels_prefs judgments"),
    (["-m", "qrels_jg"], "needs -R qrels_jg judgments"),
    (["-R", "prefs"], "the default measures (-m official) need -R qrels"),
    (["-R", "qrels_jg", "-m", "map"], "-m map needs -R qrels"),
    (["-R", "nonsense"], "unknown relevance format"),
    (["-m", "nonsense"], "unknown measure"),
    (["-m", "P."], "empty parameter"),
    (["-m", "P.0,5"], "positive"),
    (["-m", "ndcg.1=3,2"], "malformed pair"),
    (["-m", "utility.1,2"], "4 coefficients"),
    (["-l", "-1"], "negative relevance level"),
])
def test_unsupported_or_invalid_options_exit_2_with_a_message(archive_test_dir: Path, args: list[str],
                                                              needle: str) -> None:
    res = CliRunner().invoke(cli, ["trec-eval", *args, str(archive_test_dir / "qrels.test"),
                                   str(archive_test_dir / "results.test")])
    assert res.exit_code == 2
    assert needle in res.output and "Traceback" not in res.output


def test_help_lists_every_measure_and_the_version_matched() -> None:
    res = CliRunner().invoke(cli, ["trec-eval", "--help"])
    assert res.exit_code == 0
    assert "10.0-rc3" in res.output and "--float32-scores" in res.output
    from auditor.trec_eval.measures import MEASURES

    for m in MEASURES:
        assert f"  {m.name} " in res.output, m.name


@pytest.mark.parametrize("args,needle", [
    (["--train", "a.run", "--test", "b.run"], "looks like a TREC run file"),
    (["--train", "a.txt", "--test", "b.txt", "--format", "trec"], "'trec' is not one of"),
])
def test_audit_run_refuses_trec_inputs_clearly(tmp_path: Path, args: list[str], needle: str) -> None:
    for name in ("a.run", "b.run", "a.txt", "b.txt"):
        (tmp_path / name).write_text("1 Q0 d 1 1.0 r\n")
    args = [str(tmp_path / a) if a[0] in "ab" else a for a in args]
    res = CliRunner().invoke(cli, ["run", "--model", "rankers:make_linear", *args])
    assert res.exit_code == 2 and needle in res.output
