import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

FAKE = ("fake_count=fake_audits:CountingAudit,fake_other=fake_audits:OtherAudit,"
        "fake_where=fake_audits:WhereAudit")


@pytest.fixture
def fake_audits(monkeypatch):
    """Register the fake audits in this process and in any subprocess / worker."""
    import auditor.audits as A

    for part in FAKE.split(","):
        k, v = part.split("=")
        monkeypatch.setitem(A._WHERE, k, v)
    monkeypatch.setenv("AUDITOR_EXTRA_AUDITS", FAKE)
    monkeypatch.setenv("PYTHONPATH", str(TESTS) + os.pathsep + os.environ.get("PYTHONPATH", ""))
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
    from auditor.testing import make_synthetic_split

    return make_synthetic_split(n_train_queries=60, n_test_queries=25, n_items=8, seed=3)
