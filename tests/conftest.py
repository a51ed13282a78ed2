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


@pytest.fixture
def small_split():
    from auditor.testing import make_synthetic_split

    return make_synthetic_split(n_train_queries=60, n_test_queries=25, n_items=8, seed=3)
