"""Smoke test of the planted-defect and calibration benchmarks (``benchmarks/detection.py``,
``benchmarks/calibration.py``) at ``--smoke`` sizes.

It checks that each benchmark runs end to end, prints its table and command, and that the
known-answer rows go the right way even with one or two seeds: copied queries, label
proxies, a naive synthetic set and a subtle shift are caught; unstable training is flagged;
clean controls raise no FAIL; a real gain is demonstrated. The calibration benchmark reuses
the detection benchmark's clean runs through the shared cache (the same records, not rerun)
and reports a rejection rate for every gating test.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("detection"), importlib.import_module("calibration")
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("bench-cache"))


@pytest.fixture(scope="module")
def detection_out(bench, cache):
    detection, _ = bench
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        out = detection.main(["--smoke", "--cache", cache])
    out["stdout"] = buf.getvalue()
    return out


def rows(out, audit, defect_start, data_start=""):
    hits = [r for r in out["rows"] if r["audit"] == audit and r["defect"].startswith(defect_start)
            and r["data"].startswith(data_start)]
    assert hits, f"no row {audit} / {defect_start} / {data_start}"
    return hits


def test_detection_prints_table_and_command(detection_out):
    text = detection_out["stdout"]
    assert text.startswith("| audit | defect | size | data / model | runs | counted | rate [95% Wilson CI] |")
    assert "command: python benchmarks/detection.py --smoke" in text and "machine: " in text
    # one table line per row, each with its Wilson CI
    assert text.count("\n| ") == len(detection_out["rows"])  # the header line has no newline before it
    assert {"audit", "defect", "size", "n", "rate", "ci_low", "ci_high", "met"} <= set(detection_out["rows"][0])


@pytest.mark.parametrize("audit,defect,data", [
    ("random_label", "test queries copied", "LETOR"),
    ("isolation", "test queries copied", "LETOR"),
    ("random_label", "test queries copied", "generator"),
    ("isolation", "test queries copied", "generator"),
    ("isolation", "near-copies", "generator"),
    ("feature_ablation", "label-proxy", "LETOR"),
    ("feature_ablation", "label-proxy", "generator"),
    ("synthetic_shift", "naive synthetic", "LETOR"),
    ("synthetic_shift", "subtle shift", "generator"),
    ("stability", "unstable training", "generator"),
    ("significance", "real gain", "generator"),
])
def test_planted_defects_are_caught(detection_out, audit, defect, data):
    for r in rows(detection_out, audit, defect, data):
        assert r["n"] >= 1 and r["k"] == r["n"], r
        assert r["met"] is not False


def test_clean_controls_stay_quiet(detection_out):
    for r in rows(detection_out, "suite", "clean control"):
        assert r["k"] == 0, r
    for a in ("random_label", "feature_ablation", "isolation", "synthetic_shift", "significance", "stability"):
        for r in rows(detection_out, a, "clean control"):
            assert r["n"] >= 2 and r["k"] == 0, r


def test_wilson_interval_matches_a_known_value(bench):
    detection, _ = bench
    import _planting as P

    lo, hi = P.wilson(19, 20)
    assert lo == pytest.approx(0.7639, abs=1e-4) and hi == pytest.approx(0.9911, abs=1e-4)
    r = P.Rate("a", "d", "s", "x", 19, 20)
    assert r.met is True and P.Rate("a", "clean control", "s", "x", 2, 20, kind="false_alarm", target=0.05).met is False


def test_calibration_reuses_clean_runs_and_reports_every_gating_test(bench, cache, detection_out, capsys):
    _, calibration = bench
    out = calibration.main(["--smoke", "--cache", cache])
    text = capsys.readouterr().out
    assert "Suite false-alarm rate" in text and "| audit | test |" in text and "command:" in text
    suite = [r for r in out["suite"] if r["counted"] == "any critical FAIL"]
    assert suite and suite[0]["n"] == 3 and suite[0]["k"] == 0
    audits = {r["audit"] for r in out["tests"]}
    assert {"random_label", "isolation", "synthetic_shift", "significance"} <= audits
    for r in out["tests"]:
        assert r["n"] >= 3 and 0.0 <= r["p05"] <= 1.0 and r["ci_low"] - 1e-12 <= r["p05"] <= r["ci_high"] + 1e-12
    # the clean runs came from the detection benchmark's cache: reused, not run again
    import _planting as P

    f = Path(cache) / f"{P.task_key('clean', {'kind': 'generator'})}-{P.code_version()}.jsonl"
    assert len(f.read_text().splitlines()) == 3
    gating = [r for r in out["tests"] if r["audit"] == "random_label" and r["data"].endswith("(suite)")
              and r["test"].startswith("gating")]
    p = [r["audits"]["random_label"]["p"] for r in detection_out["records"][P.task_key("clean", {"kind": "generator"})]]
    assert gating[0]["k05"] == sum(x < 0.05 for x in p)


def test_shift_bound_redecides_stored_splits_with_the_audits_rule(bench, tmp_path, capsys):
    """benchmarks/shift_bound.py --rows: stored split numbers decided by the audit's own decide()
    at each rule-out size (known answers: bounds 0.567, 0.647 and 0.704, none significant)."""
    import json

    shift_bound = importlib.import_module("shift_bound")
    from auditor.audits.synthetic_shift import auc_upper_bound

    splits = [(0.50, 0.42, 0.58), (0.58, 0.50, 0.66), (0.62, 0.53, 0.72)]
    stored = tmp_path / "rows.jsonl"
    stored.write_text("\n".join(json.dumps({"seed": i, "auc": a, "lo": lo, "hi": hi, "p": 0.4,
                                            "ub": auc_upper_bound(a, hi)}) for i, (a, lo, hi) in enumerate(splits)))
    out = shift_bound.main(["--rows", str(stored)])
    assert out["decided"][0.70] == ["pass", "pass_medium_open", "inconclusive"]
    assert out["decided"][0.625] == ["pass", "inconclusive", "inconclusive"]
    text = capsys.readouterr().out
    assert "| 0.7 (default) | 1/3 = 33.3%" in text
    assert f"seed 2 (AUC 0.620, bound {auc_upper_bound(0.62, 0.72):.3f}" in text
