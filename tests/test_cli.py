"""The `audit` CLI: exit codes and messages (CliRunner), no tracebacks for user errors."""
import json
import os

import pytest
from click.testing import CliRunner

from auditor.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


def test_version_and_help(runner):
    r = runner.invoke(cli, ["--version"])
    assert r.exit_code == 0 and "rank-auditor" in r.output
    r = runner.invoke(cli, ["--help"])
    assert r.exit_code == 0
    for cmd in ("run", "eval", "list", "check-plugin", "report", "compare", "init-plugin"):
        assert cmd in r.output


def test_list_shows_audits_and_reference_model(runner):
    r = runner.invoke(cli, ["list", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert [a["name"] for a in data["audits"]][:6] == ["random_label", "feature_ablation", "isolation",
                                                       "synthetic_shift", "significance", "stability"]
    assert data["models"]["reference"] == "reference_model.plugin:make_model"


def test_check_plugin_good_and_bad(runner, tmp_path, monkeypatch):
    r = runner.invoke(cli, ["check-plugin", "rankers:make_linear"])
    assert r.exit_code == 0, r.output
    assert "0 failed" in r.output and "PASS  score_ignores_labels" in r.output
    r = runner.invoke(cli, ["check-plugin", "plugins.bad_plugins:make_reads_labels"])
    assert r.exit_code == 1
    assert "FAIL  score_ignores_labels: scores change when the test labels" in r.output


def test_check_plugin_that_cannot_load_exits_2(runner, tmp_path):
    r = runner.invoke(cli, ["check-plugin", str(tmp_path / "missing.py") + ":make_model"])
    assert r.exit_code == 2
    assert "does not exist" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, ["check-plugin", "no_such_pkg.mod:make"])
    assert r.exit_code == 2 and "not found" in r.output


def test_init_plugin_scaffold_passes_check_plugin(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(cli, ["init-plugin", "my_ranker"])
    assert r.exit_code == 0, r.output
    assert os.path.isfile("my_ranker.py")
    r = runner.invoke(cli, ["check-plugin", "./my_ranker.py:make_model"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["init-plugin", "my_ranker"])
    assert r.exit_code == 2 and "already exists" in r.output


@pytest.mark.parametrize("args,words", [
    (["run", "--model", "rankers:make_linear", "--checks", "random_label,bogus"], "valid: random_label"),
    (["run", "--model", "not-installed"], "no model named 'not-installed'"),
    (["run", "--model", "rankers:make_linear"], "ships no default data"),
    (["run", "--model", "rankers:make_linear", "--model-param", "oops"], "expected key=value"),
    (["run", "--model", "reference", "--device", "gpu"], "Invalid value for '--device'"),
    (["run", "--model", "rankers:make_linear", "--train", "x.txt"], "pass both --train and --test"),
])
def test_run_usage_errors_exit_2(runner, args, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.txt").write_text("1 qid:1 1:0.5\n")  # exists: the missing --test is what is tested
    r = runner.invoke(cli, args)
    assert r.exit_code == 2, r.output
    assert words in r.output
    assert "Traceback" not in r.output


def test_run_bad_config_file(runner, tmp_path):
    cfg = tmp_path / "audit.toml"
    cfg.write_text('metric = "ndcg@10"\nalpah = 0.05\n')
    r = runner.invoke(cli, ["run", "--model", "reference", "--config", str(cfg)])
    assert r.exit_code == 2 and "unknown key(s) alpah" in r.output
    cfg.write_text('metric = ndcg\n')
    r = runner.invoke(cli, ["run", "--model", "reference", "--config", str(cfg)])
    assert r.exit_code == 2 and "not valid TOML" in r.output


def test_report_on_empty_dir_exits_2(runner, tmp_path):
    r = runner.invoke(cli, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "no results.json" in r.output


# --------------------------------------------------------------------------- what a verdict establishes
LINEAR = "rankers:make_linear"
RANDOM = "rankers:make_random"


def _write_csv_split(tmp_path, n_train_queries: int, n_test_queries: int) -> list[str]:
    from auditor.synthetic import make_synthetic_split

    sp = make_synthetic_split(n_train_queries=n_train_queries, n_test_queries=n_test_queries, n_items=6, seed=1)
    paths = []
    for name, d in (("tr.csv", sp.train), ("te.csv", sp.test)):
        cols = ["qid", "label"] + [f"{g}.{i}" for g, x in d.features.items() for i in range(x.shape[1])]
        X = d.feature_matrix()
        lines = [",".join(cols)] + [",".join([str(int(d.qid[r])), str(d.labels[r])] + [repr(float(v)) for v in X[r]])
                                    for r in range(d.n_rows)]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        paths.append(str(tmp_path / name))
    return paths


@pytest.fixture
def csv_split(tmp_path):
    """A clean split written as CSV files: (train path, test path). 100 test queries of 6 rows,
    enough for isolation's near-duplicate test to earn its PASS (power at a 1% excess)."""
    return _write_csv_split(tmp_path, 120, 100)


@pytest.fixture
def small_csv_split(tmp_path):
    """15 test queries: too few to show a +0.05 gain (the underpowered case)."""
    return _write_csv_split(tmp_path, 40, 15)


def _run(runner, tmp_path, *args):
    out = tmp_path / "out"
    r = runner.invoke(cli, ["run", *args, "--quick", "--out", str(out)])
    assert "Traceback" not in r.output, r.output
    res = json.loads((out / "results.json").read_text())
    files = {f: (out / f).read_text(encoding="utf-8") for f in ("report.html", "junit.xml", "summary.md")}
    return r, res, files


def test_no_baseline_is_inconclusive_and_names_the_input_to_add(runner, tmp_path, csv_split):
    tr, te = csv_split
    r, res, _ = _run(runner, tmp_path, "--model", LINEAR, "--train", tr, "--test", te)
    assert r.exit_code == 3, r.output
    assert res["verdict"] == "INCONCLUSIVE" and "audits that ran passed" not in r.output
    assert "--baseline MODEL or --baseline-run FILE" in r.output
    sig = next(a for a in res["audits"] if a["name"] == "significance")
    assert sig["status"] == "SKIP" and sig["skip_cause"] == "missing_input"
    assert res["scope"]["skipped"] == [{"audit": "significance", "critical": True, "cause": "missing_input",
                                        "reason": sig["summary"], "fix": sig["skip_fix"]}]
    assert res["scope"]["complete"] is False and res["claim"] is None


def test_checks_scope_is_named_in_every_output(runner, tmp_path, csv_split):
    tr, te = csv_split
    r, res, files = _run(runner, tmp_path, "--model", LINEAR, "--train", tr, "--test", te, "--checks", "isolation")
    # on this small split isolation may be GO or (earned-PASS rule) INCONCLUSIVE; the scope is named either way
    verdict = res["verdict"]
    assert verdict in ("GO", "INCONCLUSIVE") and r.exit_code == {"GO": 0, "INCONCLUSIVE": 3}[verdict], r.output
    label = f"{verdict} for isolation only \u2014 1 of 6 audits"
    assert res["verdict_label"] == label
    assert label in " ".join(r.output.split())                        # terminal (rich may wrap the line)
    assert "all 1 audits" not in r.output
    if verdict == "GO":
        assert "the only one that ran" in r.output
    assert res["scope"]["ran"] == ["isolation"]
    assert res["scope"]["left_out"] == ["random_label", "feature_ablation", "synthetic_shift", "significance",
                                        "stability"]
    assert "for isolation only \u2014 1 of 6 audits" in files["report.html"]
    assert f"**{verdict}** for isolation only \u2014 1 of 6 audits" in files["summary.md"]
    assert f'name="verdict_label" value="{label}"' in files["junit.xml"]
    r = runner.invoke(cli, ["run", "--model", LINEAR, "--train", tr, "--test", te, "--checks", "isolation", "--quick",
                            "--quiet", "--out", str(tmp_path / "q")])
    assert r.exit_code == {"GO": 0, "INCONCLUSIVE": 3}[verdict] and r.output.startswith(label + ": ")


@pytest.mark.parametrize("factory", ["make_frozen", "make_flagged"])
def test_model_that_cannot_be_retrained_gets_a_scoped_verdict(runner, tmp_path, csv_split, factory):
    """fit raising NotImplementedError, or the factory's refittable = False (fit never called):
    the audits that retrain are SKIPPED, the others use the model as delivered."""
    tr, te = csv_split
    r, res, files = _run(runner, tmp_path, "--model", f"plugins.pretrained:{factory}", "--train", tr, "--test", te,
                         "--baseline", RANDOM)
    status = {a["name"]: a["status"] for a in res["audits"]}
    assert status["random_label"] == status["stability"] == "SKIP"
    for name in ("random_label", "stability"):
        a = next(a for a in res["audits"] if a["name"] == name)
        assert "model cannot be retrained" in a["summary"] and a["skip_cause"] == "not_refittable"
    assert {s: status[s] for s in ("feature_ablation", "isolation", "synthetic_shift", "significance")} == \
        dict.fromkeys(("feature_ablation", "isolation", "synthetic_shift", "significance"), "PASS")
    assert r.exit_code == 0, r.output
    label = "GO for 4 of 6 audits \u2014 not run: random_label, stability"
    assert res["verdict_label"] == label and label in " ".join(r.output.split())
    assert "cannot be retrained: random_label, stability" in res["verdict_reason"]
    assert "not a plain GO" in files["report.html"]
    r = runner.invoke(cli, ["check-plugin", f"plugins.pretrained:{factory}"])     # the contract holds as delivered
    assert r.exit_code == 0 and " passed, 0 failed" in r.output, r.output


def test_min_gain_on_the_command_line_is_the_claim_tested(runner, tmp_path, small_csv_split):
    r = runner.invoke(cli, ["list"])
    assert "min_gain = 0.0 (--min-gain)" in r.output
    tr, te = small_csv_split
    r, res, files = _run(runner, tmp_path, "--model", LINEAR, "--train", tr, "--test", te, "--checks", "significance",
                         "--baseline", RANDOM, "--min-gain", "0.05")
    sig = res["audits"][0]
    assert res["config"]["min_gain"] == 0.05 and sig["measurements"]["min_gain"] == 0.05
    assert "--min-gain 0.05" in res["command"]
    claim = res["claim"]
    m = sig["measurements"]
    assert claim["candidate"] == m["candidate_mean"] and claim["baseline"] == m["baseline_mean"]
    line = (f"ndcg@10 baseline {m['baseline_mean']:.4f} \u2192 candidate {m['candidate_mean']:.4f}: "
            f"\u0394 {m['mean_delta']:+.4f}, 95% CI [{m['ci_low']:+.4f}, {m['ci_high']:+.4f}] over 15 queries; "
            "claimed gain (min_gain) 0.05")
    text = " ".join(r.output.split())
    assert line in text and line in files["summary.md"].replace("\\[", "[").replace("\\]", "]")
    assert line in files["report.html"].replace("&gt;", ">")
    # 15 queries cannot show +0.05: inconclusive, with the queries that could
    assert r.exit_code == 3 and sig["inconclusive"]
    from auditor.stats import power_paired

    k = claim["queries_needed"]
    assert power_paired(0.05, m["sd_delta"], k) >= 0.8 > power_paired(0.05, m["sd_delta"], k - 1)
    assert f"Underpowered: about {k:,} test queries (here 15)" in text
    assert f"inconclusive (about {k:,} test queries, here 15, would give 80% power" in res["verdict_reason"]


def test_min_gain_must_be_a_number(runner, csv_split):
    tr, te = csv_split
    r = runner.invoke(cli, ["run", "--model", LINEAR, "--train", tr, "--test", te, "--min-gain", "lots"])
    assert r.exit_code == 2 and "--min-gain" in r.output


@pytest.mark.slow
def test_no_go_leads_with_the_most_direct_evidence(runner, tmp_path):
    """The leaky reference scenario (small, quick): the copied rows and the proxy column come first,
    not random_label, the first failed audit in table order; isolation's FAIL shows no permutation p."""
    r, res, files = _run(runner, tmp_path, "--model", "reference", "--model-param", "scenario=leaky",
                         "--model-param", "preset=quick", "--model-param", "n_train_queries=60",
                         "--model-param", "n_test_queries=24", "--checks", "random_label,feature_ablation,isolation")
    assert r.exit_code == 1 and res["verdict"] == "NO_GO", r.output
    status = {a["name"]: a["status"] for a in res["audits"]}
    assert status["feature_ablation"] == status["isolation"] == "FAIL"   # table order: feature_ablation first
    iso = next(a for a in res["audits"] if a["name"] == "isolation")
    dup = iso["measurements"]["exact_duplicates"]["same_query_rows"]
    n = iso["measurements"]["n_test_rows"]
    copies = f"{dup / n:.1%} of test rows ({dup} of {n}) are exact copies of training rows"
    proxy = next(a for a in res["audits"] if a["name"] == "feature_ablation")["measurements"]["proxy"]["suspects"][0]
    reason = res["verdict_reason"]
    assert reason.startswith(copies) and reason.index(copies) < reason.index(f"column {proxy} is a label proxy")
    assert iso["headline"]["directness"] == 1
    text = " ".join(r.output.split())
    assert text.index(f"1. {copies}") < text.index(f"2. Column {proxy} is a label proxy")
    if status["random_label"] == "FAIL":                             # a model-behaviour test comes after
        assert text.index(f"2. Column {proxy}") < text.index("3. ")
    md = files["summary.md"]
    assert md.index(f"1. {copies}") < md.index(f"2. Column {proxy}")
    assert f"<li>{copies}" in files["report.html"]
    # the permutation p is shown beside isolation's FAIL only when its near-duplicate test took part in it
    iso_row = next(line for line in md.splitlines() if line.startswith("| Train/test isolation"))
    near_dup_failed = any(c["status"] == "FAIL" and "p <" in c["threshold"] for c in iso["conditions"])
    assert iso_row.endswith("| exact check |") != near_dup_failed


def test_report_checks_the_verdict_against_the_skip_causes(runner, tmp_path, csv_split):
    """A stored INCONCLUSIVE (no baseline) edited to GO is refused; a run written before skip
    causes were recorded (no scope: a SKIP did not block then) still re-renders."""
    tr, te = csv_split
    r, res, _ = _run(runner, tmp_path, "--model", LINEAR, "--train", tr, "--test", te)
    assert res["verdict"] == "INCONCLUSIVE"
    edited = dict(res, verdict="GO", exit_code=0)
    (tmp_path / "edited").mkdir()
    (tmp_path / "edited" / "results.json").write_text(json.dumps(edited))
    r = runner.invoke(cli, ["report", str(tmp_path / "edited")])
    assert r.exit_code == 2 and "is GO but the audits' statuses give INCONCLUSIVE" in r.output
    older = {k: v for k, v in edited.items() if k not in ("scope", "verdict_label", "claim")}
    older["audits"] = [{k: v for k, v in a.items() if k not in ("skip_cause", "skip_fix", "headline")}
                       for a in res["audits"]]
    (tmp_path / "older").mkdir()
    (tmp_path / "older" / "results.json").write_text(json.dumps(older))
    r = runner.invoke(cli, ["report", str(tmp_path / "older")])
    assert r.exit_code == 0, r.output
