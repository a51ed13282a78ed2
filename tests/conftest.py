import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

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


@pytest.fixture
def small_split():
    from auditor.testing import make_synthetic_split

    return make_synthetic_split(n_train_queries=60, n_test_queries=25, n_items=8, seed=3)
