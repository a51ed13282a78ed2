"""Bad-input matrix through the CLI (issue 7): exit code 2 with a message naming the file, line
or field and the fix — never a traceback; a model failing mid-run makes that audit ERROR."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli

ROOT = Path(__file__).resolve().parents[1]
GOOD = str(ROOT / "tests/data/ltr/rank.test")

CASES = {
    "empty.txt": (b"", "has no data lines"),
    "binary.txt": (bytes(range(256)) * 3, "binary file"),
    "nan.txt": (b"1 qid:1 1:0.5 2:0.3\n0 qid:1 1:0.1 2:nan\n", "line 2"),
    "inf.txt": (b"1 qid:1 1:0.5 2:inf\n", "finite"),
    "label.txt": (b"x qid:1 1:0.5\n", "label 'x' is not a number"),
    "biglabel.txt": (b"99999 qid:1 1:0.5\n", "label"),
    "garbled.txt": (b"1 qid:1 1:0.5 2=3\n", "'2=3'"),
    "noncontig.txt": (b"1 qid:1 1:0.5\n0 qid:2 1:0.3\n1 qid:1 1:0.2\n", "not contiguous"),
    "noqid.txt": (b"1 1:0.5\n0 1:0.3\n", "no 'qid:' tokens"),
    "dup.txt": (b"1 qid:1 1:0.5 #docid = A\n0 qid:1 1:0.3 #docid = A\n", "appears twice"),
    "bad.csv": (b"qid,label,f.0\n1,1,0.5\n1,x,0.2\n", "'label'"),
    "noqid.csv": (b"label,f.0\n1,0.5\n", "qid"),
}


def _invoke(args):
    r = CliRunner().invoke(cli, args)
    assert "Traceback" not in r.output
    return r


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_training_file_exits_2_with_location(tmp_path, name):
    content, words = CASES[name]
    p = tmp_path / name
    p.write_bytes(content)
    r = _invoke(["run", "--model", "rankers:make_linear", "--train", str(p), "--test", GOOD,
                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    assert str(p) in r.output and words in r.output
    assert "Fix:" in r.output or "expected" in r.output


def test_missing_file_exits_2(tmp_path):
    r = _invoke(["run", "--model", "rankers:make_linear", "--train", str(tmp_path / "nope.txt"),
                 "--test", GOOD])
    assert r.exit_code == 2 and "not found" in r.output


def test_feature_groups_that_differ_between_train_and_test(tmp_path):
    (tmp_path / "tr.csv").write_text("qid,label,a.0,a.1\n1,1,0.5,0.1\n1,0,0.2,0.3\n")
    (tmp_path / "te.csv").write_text("qid,label,a.0,b.0\n2,1,0.5,0.1\n2,0,0.2,0.3\n")
    r = _invoke(["run", "--model", "rankers:make_linear", "--train", str(tmp_path / "tr.csv"),
                 "--test", str(tmp_path / "te.csv")])
    assert r.exit_code == 2 and "feature groups" in r.output


def test_bad_feature_group_spec(tmp_path):
    r = _invoke(["run", "--model", "rankers:make_linear", "--train", GOOD, "--test", GOOD,
                 "--feature-groups", "a=1-10;b=5-20"])
    assert r.exit_code == 2, r.output


@pytest.mark.parametrize("factory,words", [
    ("make_raises_in_fit", "planted failure in fit"),
    ("make_wrong_shape", "expected"),
    ("make_nan", "non-finite"),
])
def test_model_failing_mid_run_is_an_audit_error(tmp_path, factory, words):
    from auditor.synthetic import make_synthetic_split

    sp = make_synthetic_split(n_train_queries=40, n_test_queries=15, n_items=6, seed=1)
    for name, d in (("tr.csv", sp.train), ("te.csv", sp.test)):
        cols = ["qid", "label"] + [f"{g}.{i}" for g, x in d.features.items() for i in range(x.shape[1])]
        X = d.feature_matrix()
        lines = [",".join(cols)] + [",".join([str(int(d.qid[r])), str(d.labels[r])] + [str(float(v)) for v in X[r]])
                                    for r in range(d.n_rows)]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    r = _invoke(["run", "--model", f"plugins.bad_plugins:{factory}", "--train", str(tmp_path / "tr.csv"),
                 "--test", str(tmp_path / "te.csv"), "--checks", "random_label,isolation", "--quick", "--quiet",
                 "--out", str(out)])
    res = json.loads((out / "results.json").read_text())
    rl = next(a for a in res["audits"] if a["name"] == "random_label")
    assert rl["status"] == "ERROR" and words in rl["error"]
    assert r.exit_code in (1, 3)  # isolation may still decide; never a crash
    assert res["verdict"] in ("INCONCLUSIVE", "NO_GO")


# --------------------------------------------------------------------------- configuration values
CONFIG_CASES = {
    "seed_text": ('seed = "abc"', "seed: expected an integer"),
    "seed_negative": ("seed = -3", "seed: expected an integer from 0"),
    "quick_text": ('quick = "yes"', "quick must be true or false"),
    "min_gain_text": ('min_gain = "x"', "min_gain must be a finite number"),
    "alpha_text": ('alpha = "0.1"', "alpha must be a finite number"),
    "checks_unknown": ('checks = ["nope"]', "checks: unknown audit 'nope'"),
    "count_negative": ("[audits.random_label]\nn_seeds = -1", "[audits.random_label] n_seeds: expected an integer >= 1"),
    "count_float": ("[audits.random_label]\nn_seeds = 2.5", "n_seeds: expected an integer, got 2.5"),
    "bool_as_int": ("[audits.isolation]\nnear_duplicates = 1", "near_duplicates: expected true or false"),
    "number_as_text": ('[audits.synthetic_shift]\nfdr = "0.1"', "fdr: expected a number"),
    "audit_range": ("[audits.synthetic_shift]\nauc_warn = 0.9", "need 0.5 <= auc_warn <= auc_fail"),
    "audit_rule_out": ("[audits.synthetic_shift]\nauc_rule_out = 0.6", "need auc_rule_out >= auc_fail"),
    "audit_choice": ('[audits.synthetic_shift]\nclassifier = "svm"',
                     "classifier: expected one of 'hgb+logistic', 'hgb', 'logistic', got 'svm'"),
    "audit_items": ('[audits.isolation]\ndisjoint = ["qid", "url"]',
                    "disjoint: expected items from 'qid', 'group_id', 'item_id', got 'url'"),
    "share_above_1": ("[audits.random_label]\nmargin_share = 2", "margin_share: expected a number in [0, 1], got 2"),
    "open_bound": ("[audits.isolation]\nnear_dup_quantile = 1.0",
                   "near_dup_quantile: expected a number in [0.5, 1), got 1.0"),
    "zero_ok_count": ("[audits.synthetic_shift]\nquery_context = -1", "query_context: expected an integer >= 0"),
    "executor_choice": ('executor = "slurm"', "executor: expected one of 'serial', 'local', 'ray'"),
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_bad_config_value_exits_2_naming_file_and_key_before_any_work(tmp_path, name):
    body, words = CONFIG_CASES[name]
    cfg = tmp_path / "audit.toml"
    cfg.write_text(body + "\n")
    out = tmp_path / "run"
    r = _invoke(["run", "--model", "reference", "--config", str(cfg), "--out", str(out), "--quiet"])
    assert r.exit_code == 2, r.output
    assert words in r.output, r.output
    assert str(cfg) in r.output
    assert not out.exists()  # rejected before the run directory is created


def test_negative_seed_option_exits_2():
    r = _invoke(["run", "--model", "reference", "--seed", "-1"])
    assert r.exit_code == 2
    assert "Invalid value for '--seed'" in r.output


def test_api_rejects_bad_seed_and_param_types():
    from auditor import run_audit
    from auditor.errors import ConfigError

    with pytest.raises(ConfigError, match="seed: expected an integer"):
        run_audit("reference", seed=-1)
    with pytest.raises(ConfigError, match=r"\[audits.stability\] k: expected an integer"):
        run_audit("reference", config={"audits": {"stability": {"k": "5"}}})


@pytest.mark.parametrize("args,words", [
    (["--model", "reference", "--model-param", "preset=huge"], "unknown preset 'huge'"),
    (["--model", "reference", "--model-param", "nonsense=1"], "unknown parameter(s) ['nonsense']"),
    (["--model", "reference", "--baseline", "reference", "--baseline-param", "lr=abc"], "bad parameter value"),
])
def test_bad_model_param_exits_2_before_any_work(tmp_path, args, words):
    out = tmp_path / "run"
    r = _invoke(["run", *args, "--out", str(out), "--quiet"])
    assert r.exit_code == 2, r.output
    assert words in r.output
    assert not out.exists()


def test_factory_rejecting_its_params_is_a_plugin_error(tmp_path, small_split):
    from auditor import run_audit
    from auditor.errors import PluginError

    with pytest.raises(PluginError, match=r"plugins.bad_plugins:make_checks_params.*ValueError: alpha must be >= 0"):
        run_audit("plugins.bad_plugins:make_checks_params", train=small_split.train, test=small_split.test,
                  model_params={"alpha": -1}, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    run = run_audit("plugins.bad_plugins:make_checks_params", train=small_split.train, test=small_split.test,
                    model_params={"alpha": 2}, checks="isolation", quick=True)
    assert run.audit("isolation")["status"] in ("PASS", "WARN", "FAIL")


# =========================================================================== issue 14: hostile files
# Each class below was attacked with one example; the matrix tries several inputs per class.
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

LINEAR = "rankers:make_linear"
QRELS = str(ROOT / "tests/data/trec_eval/qrels.test")
RUN = str(ROOT / "tests/data/trec_eval/results.test")
ESC = "\x1b]0;pwned\x07\x1b[2J"


def _no_escape(*texts):
    for t in texts:
        assert "\x1b" not in t and "\x07" not in t and "\x9b" not in t and "\u202e" not in t, repr(t[:300])


@pytest.fixture
def fifo(tmp_path):
    """A named pipe. Should a reader block on it (the defect), a writer opens and closes it after
    a few seconds so the test fails instead of hanging."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    p = tmp_path / "pipe.txt"
    os.mkfifo(p)
    done = threading.Event()

    def unblock():
        while not done.wait(3):
            try:
                os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass  # no reader: nothing blocked

    threading.Thread(target=unblock, daemon=True).start()
    yield p
    done.set()


def _fifo_cases():
    g = GOOD
    return {
        "run --train": lambda f, d: ["run", "--model", LINEAR, "--train", f, "--test", g, "--out", d],
        "run --test": lambda f, d: ["run", "--model", LINEAR, "--train", g, "--test", f, "--out", d],
        "run --synthetic": lambda f, d: ["run", "--model", LINEAR, "--train", g, "--test", g, "--synthetic", f,
                                         "--out", d],
        "run --baseline-run": lambda f, d: ["run", "--model", LINEAR, "--train", g, "--test", g, "--baseline-run", f,
                                            "--out", d],
        "run --config": lambda f, d: ["run", "--model", LINEAR, "--config", f, "--out", d],
        "check-plugin --test": lambda f, d: ["check-plugin", LINEAR, "--train", g, "--test", f],
        "eval --qrels": lambda f, d: ["eval", "--qrels", f, "--run", RUN],
        "eval --run": lambda f, d: ["eval", "--qrels", QRELS, "--run", f],
        "eval --baseline-run": lambda f, d: ["eval", "--qrels", QRELS, "--run", RUN, "--baseline-run", f],
    }


@pytest.mark.parametrize("case", sorted(_fifo_cases()))
def test_fifo_input_is_refused_naming_option_and_path(tmp_path, fifo, case):
    r = _invoke(_fifo_cases()[case](str(fifo), str(tmp_path / "out")))
    assert r.exit_code == 2, r.output
    assert "FIFO" in r.output and "not a regular file" in r.output and str(fifo) in r.output, r.output
    assert case.split()[1] in r.output, r.output  # the option
    assert not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_device_input_is_refused(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    r = _invoke(["run", "--model", LINEAR, "--train", GOOD, "--test", device, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "character device" in r.output and "'--test'" in r.output, r.output
    r = _invoke(["eval", "--qrels", QRELS, "--run", device])
    assert r.exit_code == 2 and "character device" in r.output, r.output


def test_api_refuses_non_regular_files(fifo):
    from auditor.data import load_dataset
    from auditor.errors import DataError

    for fmt in ("letor", "csv", "npz", "parquet"):
        with pytest.raises(DataError, match="FIFO"):
            load_dataset(str(fifo), fmt)
    with pytest.raises(DataError, match="FIFO"):
        load_dataset(RUN, "trec", qrels=str(fifo))


def test_report_refuses_a_fifo_results_json(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs")
    os.mkfifo(tmp_path / "results.json")
    r = _invoke(["report", str(tmp_path)])
    assert r.exit_code == 2 and "FIFO" in r.output, r.output


@pytest.mark.parametrize("where", ["data", "query", "qrels"])
def test_a_line_past_the_limit_stops_the_read(tmp_path, where):
    from auditor.loaders import MAX_LINE_BYTES

    huge = b"1 qid:1 " + b"1:0.5 " * (MAX_LINE_BYTES // 6 + 10)  # no newline: one endless line
    if where == "data":
        p = tmp_path / "huge.txt"
        p.write_bytes(b"0 qid:1 1:0.1\n" + huge)
        r = _invoke(["run", "--model", LINEAR, "--train", str(p), "--test", GOOD, "--out", str(tmp_path / "o")])
        line, shown = "line 2", str(p)
    elif where == "query":
        p = tmp_path / "noqid.txt"
        p.write_text("1 1:0.5\n0 1:0.3\n")
        (tmp_path / "noqid.txt.query").write_bytes(b"2\n" + b"1" * (MAX_LINE_BYTES + 5))
        r = _invoke(["run", "--model", LINEAR, "--train", str(p), "--test", GOOD, "--out", str(tmp_path / "o")])
        line, shown = "line 2", str(p) + ".query"
    else:
        p = tmp_path / "huge.qrels"
        p.write_bytes(b"q1 0 d1 1\nq1 0 " + b"d" * (MAX_LINE_BYTES + 5) + b" 1\n")
        r = _invoke(["eval", "--qrels", str(p), "--run", RUN])
        line, shown = "line 2", str(p)
    assert r.exit_code == 2, r.output[:500]
    assert "longer than 8 MiB" in r.output and line in r.output and shown in r.output, r.output[:500]
    assert len(r.output) < 2000  # the line itself is not echoed


# --------------------------------------------------------------------------- terminal escape injection
def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def _npz_split(tmp_path, group):
    rng = np.random.default_rng(0)
    out = []
    for name, q0 in (("tr.npz", 0), ("te.npz", 100)):
        qid = np.repeat(np.arange(q0, q0 + 20), 5)
        out.append(_npz(tmp_path / name, qid=qid, labels=rng.integers(0, 3, qid.size),
                        **{f"features__{group}": rng.normal(size=(qid.size, 3)), "features__ok": rng.normal(size=(qid.size, 2))}))
    return out


@pytest.mark.parametrize("group", [ESC, "a\x9bb", "rtl\u202eevil", "tab\tname", "sp ace", "1starts_with_digit"])
def test_npz_group_names_are_checked_like_letor_names(tmp_path, group):
    tr, te = _npz_split(tmp_path, group)
    r = _invoke(["run", "--model", LINEAR, "--train", tr, "--test", te, "--checks", "isolation", "--quick",
                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert "not an identifier" in r.output and tr in r.output
    _no_escape(r.output)


ID_CASES = {
    "letor docid": ("x.txt", "1 qid:1 1:0.5 # docid = A\n0 qid:1 1:0.2 # docid = B{c}\n", "line 2"),
    "letor qid": ("x.txt", "1 qid:1 1:0.5\n0 qid:2{c} 1:0.2\n", "line 2"),
    "csv item_id": ("x.csv", "qid,label,item_id,f.1\n1,1,a,0.5\n1,0,b{c},0.2\n", "line 3"),
    "csv qid": ("x.csv", "qid,label,f.1\n1,1,0.5\nq{c},0,0.2\n", "line 3"),
    "csv column": ("x.csv", "qid,label,f.1,col{c}\n1,1,0.5,1\n1,0,0.2,1\n", "column"),
}


# (CR and U+2028 end a CSV line or separate LETOR tokens: they never land inside a value)
@pytest.mark.parametrize("char", ["\x1b", "\x07", "\x7f", "\x9b", "\u202e", "\u2066"])
@pytest.mark.parametrize("case", sorted(ID_CASES))
def test_ids_and_names_with_control_characters_are_refused_at_load(tmp_path, case, char):
    name, text, where = ID_CASES[case]
    p = tmp_path / name
    p.write_bytes(text.format(c=char).encode())
    r = _invoke(["check-plugin", LINEAR, "--train", str(p), "--test", str(p)])
    assert r.exit_code == 2, r.output
    assert "control character" in r.output and where in r.output and str(p) in r.output, r.output
    _no_escape(r.output)


@pytest.mark.parametrize("char", ["\x1b", "\x9b", "\u202e"])
def test_trec_ids_with_control_characters_are_refused(tmp_path, char):
    run = tmp_path / "r.run"
    lines = [f"{q} Q0 d{i} {i} {10 - i} t" for q in ("1", "2") for i in range(5)]
    lines[7] = f"2 Q0 d7{char} 7 3 t"
    run.write_text("\n".join(lines) + "\n")
    qrels = tmp_path / "q.qrels"
    qrels.write_text("".join(f"{q} 0 d{i} {i % 2}\n" for q in ("1", "2") for i in range(5)))
    r = _invoke(["eval", "--qrels", str(qrels), "--run", str(run)])
    assert r.exit_code == 2 and "line 8" in r.output and "control character" in r.output, r.output
    _no_escape(r.output)


EVIL_PLUGIN = '''
from rankers import LinearRanker

class Evil(LinearRanker):
    def fit(self, train):
        raise ValueError({msg!r})

def make_model(seed=0):
    return Evil(seed=seed)
'''


def test_plugin_strings_never_reach_the_terminal_or_markdown_raw(tmp_path):
    plugin = tmp_path / "evil.py"
    plugin.write_text(EVIL_PLUGIN.format(msg=f"boom {ESC} \x9b31m \u202eevil"))
    out = tmp_path / "o"
    r = _invoke(["run", "--model", f"{plugin}:make_model", "--train", GOOD, "--test", GOOD, "--checks", "random_label",
                 "--quick", "--out", str(out)])
    assert r.exit_code == 3, r.output
    assert "boom" in r.output and "\\x1b]0;pwned\\x07" in r.output  # shown, escaped
    _no_escape(r.output, (out / "summary.md").read_text(), (out / "junit.xml").read_text())
    r = _invoke(["report", str(out)])
    assert "boom" in r.output, r.output
    _no_escape(r.output)
    r = _invoke(["run", "--model", f"{plugin}:make_model", "--train", GOOD, "--test", GOOD, "--checks", "random_label",
                 "--quick", "--quiet", "--out", str(out)])
    assert r.exit_code == 3, r.output
    _no_escape(r.output)


def test_error_messages_escape_control_characters_in_paths(tmp_path):
    p = tmp_path / f"bad{ESC}.txt"
    p.write_text("x qid:1 1:0.5\n")
    r = _invoke(["run", "--model", LINEAR, "--train", str(p), "--test", GOOD, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "label 'x' is not a number" in r.output and "bad\\x1b]0;pwned" in r.output
    _no_escape(r.output)


# --------------------------------------------------------------------------- non-ASCII digits
DIGIT_CASES = {
    "query superscript": ("x.txt", "1 1:0.5\n0 1:0.3\n", "²\n", "'²' is not a positive integer"),
    "query arabic-indic": ("x.txt", "1 1:0.5\n0 1:0.3\n", "\u0662\n", "is not a positive integer"),
    "query fullwidth": ("x.txt", "1 1:0.5\n0 1:0.3\n", "\uff12\n", "is not a positive integer"),
    "label arabic-indic": ("x.txt", "\u0661 qid:1 1:0.5\n0 qid:1 1:0.3\n", None, "is not a number"),
    "label underscore": ("x.txt", "1_0 qid:1 1:0.5\n0 qid:1 1:0.3\n", None, "is not a number"),
    "value arabic-indic": ("x.txt", "1 qid:1 1:0.5\n0 qid:1 1:\u0660.3\n", None, "is not '<index>:<value>'"),
    "index superscript": ("x.txt", "1 qid:1 1:0.5\n0 qid:1 ²:0.3\n", None, "is not '<index>:<value>'"),
    "index devanagari": ("x.txt", "1 qid:1 1:0.5\n0 qid:1 \u0967:0.3\n", None, "is not '<index>:<value>'"),
}


@pytest.mark.parametrize("case", sorted(DIGIT_CASES))
def test_non_ascii_digits_are_a_clear_error_not_an_internal_one(tmp_path, case):
    name, text, query, words = DIGIT_CASES[case]
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    if query is not None:
        (tmp_path / (name + ".query")).write_text(query, encoding="utf-8")
    r = _invoke(["run", "--model", LINEAR, "--train", str(p), "--test", GOOD, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert "internal error" not in r.output and words in r.output, r.output
    assert ("line 1" if query is not None or "label" in case else "line 2") in r.output
    assert (str(p) + (".query" if query is not None else "")) in r.output


@pytest.mark.parametrize("score", ["\u0661\u0662", "1_5", "\uff13"])
def test_trec_scores_are_ascii_numbers(tmp_path, score):
    run = tmp_path / "r.run"
    run.write_text(f"1 Q0 d1 1 3 t\n1 Q0 d2 2 {score} t\n", encoding="utf-8")
    qrels = tmp_path / "q.qrels"
    qrels.write_text("1 0 d1 1\n1 0 d2 0\n")
    r = _invoke(["eval", "--qrels", str(qrels), "--run", str(run)])
    assert r.exit_code == 2 and "line 2" in r.output and "is not a number" in r.output, r.output


@pytest.mark.parametrize("spec", ["a=\u0661-\u0663", "a=1-²", "a=1-３"])
def test_feature_group_ranges_are_ascii(tmp_path, spec):
    r = _invoke(["check-plugin", LINEAR, "--train", GOOD, "--test", GOOD, "--feature-groups", spec])
    assert r.exit_code == 2 and "is not 'a-b' or 'a'" in r.output, r.output


# --------------------------------------------------------------------------- audit report: schema
def _sample(name="go"):
    return json.loads((ROOT / f"tests/data/results_sample_{name}.json").read_text())


def _set(d, path, value):
    keys = path.replace("]", "").replace("[", ".").split(".")
    for k in keys[:-1]:
        d = d[int(k)] if k.isdigit() else d[k]
    last = keys[-1]
    if value is _DELETE:
        del d[last]
    else:
        d[int(last) if last.isdigit() else last] = value


_DELETE = object()
SCHEMA_CASES = {
    "status number": ("audits[0].status", 12345, "audits[0].status"),
    "verdict null": ("verdict", None, "'verdict'"),
    "verdict word": ("verdict", "MAYBE", "'verdict'"),
    "verdict contradicts audits": ("audits[0].status", "FAIL", "the audits' statuses give NO_GO"),
    "exit code": ("exit_code", 1, "'exit_code'"),
    "schema version": ("schema_version", 2, "'schema_version'"),
    "schema version text": ("schema_version", "1", "'schema_version'"),
    "audits missing": ("audits", _DELETE, "'audits' is missing"),
    "audits empty": ("audits", [], "'audits' is empty"),
    "audit not object": ("audits[1]", "PASS", "'audits[1]'"),
    "critical text": ("audits[0].critical", "yes", "audits[0].critical"),
    "p above 1": ("audits[0].p_value", 1.5, "audits[0].p_value"),
    "p text": ("audits[0].p_adjusted", "0.01", "audits[0].p_adjusted"),
    "condition status": ("audits[0].conditions[0].status", "OK", "audits[0].conditions[0].status"),
    "summary list": ("audits[2].summary", ["x"], "audits[2].summary"),
    "alpha out of range": ("alpha", 5, "'alpha'"),
    "seed negative": ("seed", -1, "'seed'"),
    "whole file a list": (None, [1, 2], "(the whole file)"),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_report_validates_results_json_against_the_schema(tmp_path, case):
    path, value, words = SCHEMA_CASES[case]
    res = _sample()
    if path is None:
        res = value
    else:
        _set(res, path, value)
    (tmp_path / "results.json").write_text(json.dumps(res))
    r = _invoke(["report", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert words in r.output and "results.json" in r.output, r.output
    assert not (tmp_path / "report.html").exists()


def test_report_refuses_non_finite_numbers_anywhere(tmp_path):
    text = json.dumps(_sample()).replace('"measurements": {', '"measurements": {"x": NaN, ', 1)
    (tmp_path / "results.json").write_text(text)
    r = _invoke(["report", str(tmp_path)])
    assert r.exit_code == 2 and "measurements.x" in r.output and "internal error" not in r.output, r.output


def _store_with_results(d, res):
    from auditor.store import RunStore

    s = RunStore(d)
    s.set_meta("results", json.dumps(res))
    s.close()


@pytest.mark.parametrize("damage", ["truncated", "missing", "empty", "not utf-8"])
def test_report_rebuilds_a_missing_or_truncated_results_json_from_the_store(tmp_path, damage):
    res = _sample()
    _store_with_results(tmp_path, res)
    text = json.dumps(res)
    body = {"truncated": text[: len(text) // 2].encode(), "empty": b"", "not utf-8": b"\xff\xfe{"}.get(damage)
    if body is not None:
        (tmp_path / "results.json").write_bytes(body)
    r = _invoke(["report", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "rebuilt from the results stored in" in r.output and "run.sqlite" in r.output
    assert json.loads((tmp_path / "results.json").read_text())["verdict"] == res["verdict"]
    assert (tmp_path / "report.html").exists() and "Verdict: GO" in r.output


def test_report_on_an_edited_results_json_offers_rebuild_from_the_store(tmp_path):
    res = _sample()
    _store_with_results(tmp_path, res)
    bad = json.loads(json.dumps(res))
    bad["audits"][0]["status"] = 12345
    (tmp_path / "results.json").write_text(json.dumps(bad))
    r = _invoke(["report", str(tmp_path)])
    assert r.exit_code == 2 and "audits[0].status" in r.output and "--rebuild" in r.output, r.output
    r = _invoke(["report", str(tmp_path), "--rebuild"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "results.json").read_text())["audits"][0]["status"] == res["audits"][0]["status"]


def test_report_truncated_without_store_exits_2(tmp_path):
    (tmp_path / "results.json").write_text('{"schema_version": 1, "verd')
    r = _invoke(["report", str(tmp_path)])
    assert r.exit_code == 2 and "not valid JSON" in r.output and "no run.sqlite" in r.output, r.output


def test_compare_validates_both_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "results.json").write_text(json.dumps(_sample()))
    bad = _sample("nogo")
    bad["verdict"], bad["exit_code"] = "GO", 0
    (b / "results.json").write_text(json.dumps(bad))
    r = _invoke(["compare", str(a), str(b), "--html", str(tmp_path / "c.html")])
    assert r.exit_code == 2 and "'verdict'" in r.output and str(b) in r.output, r.output


def test_report_of_a_real_run_still_validates(tmp_path):
    out = tmp_path / "o"
    r = _invoke(["run", "--model", LINEAR, "--train", str(ROOT / "tests/data/ltr/rank.train"), "--test", GOOD,
                 "--checks", "isolation,random_label", "--quick", "--quiet", "--out", str(out)])
    assert r.exit_code in (0, 1, 3), r.output
    r = _invoke(["report", str(out)])
    assert r.exit_code == 0 and "Verdict:" in r.output, r.output


# --------------------------------------------------------------------------- very wide sparse inputs
def _wide_test_file(tmp_path, index, line_no=6):
    lines = Path(GOOD).read_text().splitlines()
    lines[line_no - 1] += f" {index}:0.5"
    p = tmp_path / "wide.txt"
    p.write_text("\n".join(lines) + "\n")
    (tmp_path / "wide.txt.query").write_text(Path(GOOD + ".query").read_text())
    return p


@pytest.mark.parametrize("index", [100_000, 10_001, 2_000_000_000])
def test_a_far_out_sparse_index_is_refused_quickly_with_the_way_to_raise_the_limit(tmp_path, index):
    p = _wide_test_file(tmp_path, index)
    t0 = time.perf_counter()
    r = _invoke(["run", "--model", LINEAR, "--train", str(ROOT / "tests/data/ltr/rank.train"), "--test", str(p),
                 "--out", str(tmp_path / "o")])
    assert time.perf_counter() - t0 < 20
    assert r.exit_code == 2, r.output
    assert f"feature index {index:,}" in r.output and "line 6" in r.output and str(p) in r.output, r.output
    assert "other lines reach index 300" in r.output
    if index <= 1 << 20:
        assert f"--max-features {index}" in r.output and "limit is 10,000 columns" in r.output
    else:
        assert "reduce the feature space" in r.output


def test_max_features_option_lowers_and_raises_the_limit(tmp_path):
    r = _invoke(["check-plugin", LINEAR, "--train", GOOD, "--test", GOOD, "--max-features", "100"])
    assert r.exit_code == 2 and "limit is 100 columns" in r.output, r.output
    # 12,000 columns are refused by default and accepted when raised (a cheap model: one column)
    plugin = tmp_path / "first.py"
    plugin.write_text("import numpy as np\n\nclass M:\n    def fit(self, train):\n        return self\n\n"
                      "    def score(self, data):\n        return np.asarray(data.features['all'][:, 0], dtype=float)\n\n"
                      "def make_model(seed=0):\n    return M()\n")
    f = tmp_path / "w.txt"
    f.write_text("".join(f"{i % 3} qid:{i // 4} 1:{i / 10} 12000:1\n" for i in range(16)))
    r = _invoke(["check-plugin", f"{plugin}:make_model", "--train", str(f), "--test", str(f)])
    assert r.exit_code == 2 and "--max-features 12000" in r.output, r.output
    r = _invoke(["check-plugin", f"{plugin}:make_model", "--train", str(f), "--test", str(f), "--max-features", "12000"])
    assert r.exit_code in (0, 1) and "passed" in r.output, r.output


def test_compare_escapes_control_characters_in_names_and_labels(tmp_path):
    a, b = tmp_path / f"v1{ESC}", tmp_path / "v2"
    a.mkdir()
    b.mkdir()
    ra, rb = _sample(), _sample()
    ra["audits"][0]["measurements"] = {f"k{ESC}": 1.0}
    rb["audits"][0]["measurements"] = {f"k{ESC}": 2.0}
    rb["config"]["metric"] = f"m{ESC}"
    # the terminal lists audits and conditions whose status changed (raw measurement keys only in the HTML)
    ra["audits"][0]["name"] = rb["audits"][0]["name"] = f"a{ESC}"
    ra["audits"][0]["conditions"] = [{"name": f"c{ESC}", "status": "PASS", "observed": "", "threshold": ""}]
    rb["audits"][0]["conditions"] = [{"name": f"c{ESC}", "status": "FAIL", "observed": "", "threshold": ""}]
    (a / "results.json").write_text(json.dumps(ra))
    (b / "results.json").write_text(json.dumps(rb))
    r = _invoke(["compare", str(a), str(b), "--html", str(tmp_path / "c.html")])
    assert r.exit_code == 0 and "c\\x1b]0;pwned" in r.output and "a\\x1b]0;pwned" in r.output, r.output
    _no_escape(r.output)
