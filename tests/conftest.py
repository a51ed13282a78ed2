import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
# worker processes (local executor, Ray, the CLI run as a subprocess) import test-support models
# such as rankers:make_linear from here too
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)

FAKE = {"fake_count": "fake_audits:CountingAudit", "fake_other": "fake_audits:OtherAudit",
        "fake_where": "fake_audits:WhereAudit"}


def install_audit_plugins(monkeypatch, site: Path, entry_points: dict[str, str], extra_path: Path = TESTS) -> None:
    """Register audits as an installed package would: a ``*.dist-info`` with entry points in the
    group ``auditor.audits`` on ``sys.path`` here and on ``PYTHONPATH`` for worker processes."""
    info = site / "audit_plugins_for_tests-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: audit-plugins-for-tests\nVersion: 0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[auditor.audits]\n{lines}")
    monkeypatch.syspath_prepend(str(extra_path))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(extra_path), os.environ.get("PYTHONPATH", "")]))


@pytest.fixture
def fake_audits(monkeypatch, tmp_path_factory):
    """Register the fake audits (entry points) in this process and in any subprocess / worker."""
    install_audit_plugins(monkeypatch, tmp_path_factory.mktemp("site"), FAKE)
    return ["fake_count", "fake_other"]


@pytest.fixture(scope="session")
def letor():
    """The LETOR sample (``tests/data/ltr``: LightGBM's lambdarank example, 201 train / 50 test queries,
    300 features in one group ``all``) read by the project's loader, as ``--format letor`` reads it.

    The loader numbers each file's queries from 0 (``meta["qid_generated"]``); the test ids are
    shifted past the training ones so the two files' queries never share an id.
    """
    from auditor.data import Split
    from auditor.loaders import load

    train = load(DATA / "ltr" / "rank.train", "letor", n_features=300)
    test = load(DATA / "ltr" / "rank.test", "letor", n_features=300)
    return Split(train=train, test=test._replace(qid=test.qid + int(train.qid.max()) + 1), name="letor")


@pytest.fixture
def small_split():
    from auditor.synthetic import make_synthetic_split

    return make_synthetic_split(n_train_queries=60, n_test_queries=25, n_items=8, seed=3)


@pytest.fixture(scope="session")
def trec_eval_bin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real trec_eval 10.0-rc3, built from tests/data's source tarball once per cache (the oracle)."""
    from auditor.trec_eval import reference

    if reference.c_compiler() is None:
        pytest.skip("no C compiler (gcc, cc or clang) on PATH: the reference trec_eval cannot be built")
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    where = Path(cache.mkdir("trec_eval_build")) if cache is not None else tmp_path_factory.mktemp("trec_eval_build")
    return reference.build(where)
