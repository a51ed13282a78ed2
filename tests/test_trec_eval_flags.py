"""`audit trec-eval -D`: ``-D 0.QID`` (evaluate one query) against the real trec_eval 10.0-rc3;
debug traces (``-D N``, N > 0) refused with a message saying what to use."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.trec_eval import reference

DATA = Path(__file__).resolve().parent / "data" / "trec_eval"
QRELS, RUN = str(DATA / "qrels.test"), str(DATA / "results.test")




def _qids() -> list[str]:
    return sorted({line.split()[0] for line in Path(QRELS).read_text().splitlines() if line.strip()})


@pytest.mark.parametrize("flags", [["-q", "-m", "all_trec"], ["-q", "-c", "-m", "all_trec"], ["-c", "-m", "official"]])
def test_debug_query_filter_matches_trec_eval(trec_eval_bin, flags):
    for qid in _qids()[:3]:
        args = [*flags, "-D", f"0.{qid}", QRELS, RUN]
        want = subprocess.run([str(trec_eval_bin), *args], capture_output=True, text=True, check=True).stdout
        got = CliRunner().invoke(cli, ["trec-eval", *args])
        assert got.exit_code == 0, got.output
        assert got.output == want, (qid, flags)
    # -D 0 without a query changes nothing
    want = subprocess.run([str(trec_eval_bin), "-D", "0", QRELS, RUN], capture_output=True, text=True).stdout
    assert CliRunner().invoke(cli, ["trec-eval", "-D", "0", QRELS, RUN]).output == want


@pytest.mark.parametrize("args, needle", [
    (["-D", "1"], "debug levels above 0"),
    (["-D", "0.no_such_query"], "'no_such_query' is not in"),
])
def test_unsupported_debug_and_zscores_say_what_to_use(args, needle):
    r = CliRunner().invoke(cli, ["trec-eval", *args, QRELS, RUN])
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, r.output
