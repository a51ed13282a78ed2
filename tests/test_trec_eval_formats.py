"""`audit trec-eval -R prefs|qrels_prefs|qrels_jg` and `-Z`: bad input exits 2 with a message naming
the file, the line and the form expected; trec_eval's stranger behaviours reproduced (checked
against the real binary where one can be built)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli

RUN = "1 Q0 a 1 2.0 r\n1 Q0 b 2 1.0 r\n2 Q0 a 1 1.0 r\n"


def _invoke(tmp_path: Path, args: list[str], files: dict[str, str]) -> tuple[int, str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    args = [str(tmp_path / a) if a in files else a for a in args]
    r = CliRunner().invoke(cli, ["trec-eval", *args])
    assert "Traceback" not in r.output
    return r.exit_code, r.output


@pytest.mark.parametrize("fmt, text, needles", [
    ("prefs", "1 u1 s1 a 2\n1 u1 a 1\n", ["line 2", "'qid jg jsg docno rel_level'", "found 4 field(s)"]),
    ("prefs", "1 u1 s1 a 2\n\n1 u1 s1 b 1\n", ["line 2", "blank lines are not allowed"]),
    ("prefs", "1 u1 s1 a 2\n# trailing comment\n", ["ends with a comment line (line 2)"]),
    ("qrels_prefs", "1 0 a 1\n1 0 b 1 extra\n", ["line 2", "'qid jg docno rel_level'", "found 5"]),
    ("qrels_jg", "1 u1 a\n", ["line 1", "'qid jg docno rel'", "found 3"]),
    ("qrels_jg", "1 u1 a 1\n1 u1 a 0\n", ["judged twice", "judgment group 'u1'"]),
    ("prefs", "", ["is empty"]),
])
def test_malformed_judgment_files_name_file_line_and_form(tmp_path: Path, fmt: str, text: str,
                                                          needles: list[str]) -> None:
    nick = "qrels_jg" if fmt == "qrels_jg" else "all_prefs"
    rc, out = _invoke(tmp_path, ["-m", nick, "-R", fmt, "j", "r"], {"j": text, "r": RUN})
    assert rc == 2, out
    assert str(tmp_path / "j") in out and all(n in out for n in needles), out


@pytest.mark.parametrize("ztext, needles", [
    ("1 map 0.5 0.1\n1 P_5 0.2\n", ["line 2", "'qid measure mean stddev'", "found 3 field(s)"]),
    ("1 map 0.5 0.1\n\n", ["line 2", "Blank and comment lines are not allowed"]),
    ("# comment 0 1\n1 map 0.5\n", ["line 2", "found 3"]),
    ("", ["is empty", "'qid measure mean stddev'"]),
    # query 2 sorts after every qid of the file: trec_eval reads outside its table (and crashes)
    ("1 map 0.5 0.1\n", ["no line for query '2'", "crashes", "Add lines for query '2'"]),
    # P_5 sorts after map for query 2, the file's last qid: same
    ("1 map 0.5 0.1\n1 P_5 0.5 0.1\n2 P_5 0.5 0.1\n", ["no line for measure 'map' of query '2'",
                                                      "'2 map MEAN STDDEV'"]),
])
def test_bad_zscore_files_exit_2_naming_file_line_and_form(tmp_path: Path, ztext: str, needles: list[str]) -> None:
    rc, out = _invoke(tmp_path, ["-q", "-m", "map", "-m", "P.5", "-Z", "z", "q", "r"],
                      {"z": ztext, "q": "1 0 a 1\n2 0 a 1\n", "r": RUN})
    assert rc == 2, out
    assert str(tmp_path / "z") in out and all(n in out for n in needles), out


@pytest.mark.parametrize("text, needle", [
    # d1 > d2 in one sub-group, d2 > d1 in another: trec_eval aborts on the cycle
    ("1 u1 s1 a 2\n1 u1 s1 b 1\n1 u1 s2 b 2\n1 u1 s2 a 1\n", "and the reverse"),
    ("1 u1 s1 a 2\n1 u1 s1 b 0\n1 u1 s2 b 3\n1 u1 s2 c 1\n", "rel_level 0 and a positive rel_level"),
    ("1 u1 s1 a 2\n1 u1 s1 a 1\n", "two different rel_levels"),
])
def test_inconsistent_preferences_are_refused(tmp_path: Path, text: str, needle: str) -> None:
    rc, out = _invoke(tmp_path, ["-m", "all_prefs", "-R", "prefs", "j", "r"], {"j": text, "r": RUN})
    assert rc == 2 and needle in out, out


def test_measure_needing_another_format_is_refused(tmp_path: Path) -> None:
    rc, out = _invoke(tmp_path, ["-m", "map_avgjg", "j", "r"], {"j": "1 0 a 1\n", "r": RUN})
    assert rc == 2 and "-m map_avgjg needs -R qrels_jg" in out, out


def _both(binary: Path, tmp_path: Path, args: list[str], files: dict[str, str]) -> tuple[str, str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    args = [str(tmp_path / a) if a in files else a for a in args]
    want = subprocess.run([str(binary), *args], capture_output=True, text=True, check=True).stdout
    got = CliRunner().invoke(cli, ["trec-eval", *args])
    assert got.exit_code == 0, got.output
    return want, got.output


def test_zscore_lookup_spills_into_next_query_like_trec_eval(trec_eval_bin: Path, tmp_path: Path) -> None:
    # query 1 has no 'map' line; trec_eval's search window reaches query 2's first line, which is
    # 'map', and uses its mean and deviation (8.0 = (1 - 0.2) / 0.1); query 2 lacks P_5: -1000000
    files = {"z": "1 P_5 0.5 0.1\n2 map 0.2 0.1\n", "q": "1 0 a 1\n2 0 a 1\n", "r": RUN}
    want, got = _both(trec_eval_bin, tmp_path, ["-q", "-m", "map", "-m", "P.5", "-Z", "z", "q", "r"], files)
    assert got == want
    assert "Zmap                   \t1\t8.0000" in got and "ZP_5                   \t2\t-1000000.0000" in got


def test_debug_query_and_zscores_with_prefs_match_trec_eval(trec_eval_bin: Path, tmp_path: Path) -> None:
    prefs = "1 u1 s1 a 2\n1 u1 s1 b 1\n1 u2 s1 b 3\n1 u2 s1 c 0\n2 u1 s1 a 1\n2 u1 s1 c 0\n"
    z = "1 prefs_simp 0.5 0.25\n1 prefs_pair 0.5 0\n2 prefs_simp 1 0\n~ ~ 0 1\n"
    files = {"p": prefs, "r": RUN, "z": z}
    for args in (["-q", "-m", "all_prefs", "-R", "prefs", "-D", "0.2", "-c", "p", "r"],
                 ["-q", "-m", "prefs", "-R", "prefs", "-Z", "z", "p", "r"]):
        want, got = _both(trec_eval_bin, tmp_path, args, files)
        assert got == want, args


def test_rnonrel_recount_reads_the_next_groups_classes_like_trec_eval(trec_eval_bin: Path, tmp_path: Path) -> None:
    # group u1: 2 relevant, 3 non-relevant (levels 0 and -1): its recount takes R = 2 documents from
    # its lowest class (1 document) onwards, the second one from u2's first class, as trec_eval does
    prefs = "1 u1 s a 1\n1 u1 s b 1\n1 u1 s c 0\n1 u1 s d 0\n1 u1 s e -1\n1 u2 s a 3\n1 u2 s e 1\n1 u2 s f 0\n"
    run = "1 Q0 a 1 5 r\n1 Q0 c 2 4 r\n1 Q0 e 3 3 r\n1 Q0 f 4 2 r\n1 Q0 x 5 1 r\n"
    want, got = _both(trec_eval_bin, tmp_path, ["-q", "-m", "all_prefs", "-R", "prefs", "p", "r"],
                      {"p": prefs, "r": run})
    assert got == want and "prefs_avgjg_Rnonrel   \t1\t0.6429" in got
    # the same group last: the read runs past the query's classes (stale memory in trec_eval)
    rc, out = _invoke(tmp_path, ["-m", "prefs_avgjg_Rnonrel", "-R", "prefs", "p2", "r"],
                      {"p2": prefs.replace("u2", "u0"), "r": run})
    assert rc == 2 and "stale memory" in out and "prefs_avgjg_Rnonrel" in out, out


def test_group_topped_by_level_minus_3_loses_a_class_like_trec_eval(trec_eval_bin: Path, tmp_path: Path) -> None:
    # trec_eval starts its count of levels from -3.0: group u1 (levels -3, -4, -5) is counted with
    # two classes, its -5 class left out (2 preferences, not 5)
    prefs = "1 u1 s a -3\n1 u1 s b -3\n1 u1 s c -4\n1 u1 s d -5\n1 u2 s a 2\n1 u2 s c 0\n1 u2 s e 1\n1 u3 s a -3\n"
    run = "1 Q0 a 1 5 r\n1 Q0 c 2 4 r\n1 Q0 e 3 3 r\n1 Q0 d 4 2 r\n"
    want, got = _both(trec_eval_bin, tmp_path, ["-q", "-m", "all_prefs", "-R", "prefs", "p", "r"],
                      {"p": prefs, "r": run})
    assert got == want and "prefs_num_prefs_poss  \t1\t5\n" in got
