"""SQLite run store: every finished trial is committed the moment it finishes.

One file, ``DIR/run.sqlite``, in WAL mode (stdlib :mod:`sqlite3`). A run that dies (Ctrl-C,
SIGKILL, power loss of the process) keeps every committed trial; ``audit run --resume``
re-plans, skips the committed trials and runs only the rest, after checking that the
configuration hash matches.

Tables
------
``meta(key, value)``
    ``config_hash``, ``config`` (JSON), ``created_at``, ``results`` (the final results JSON).
``trials(audit, key, ok, result, error, duration_s, finished_at)``
    One row per finished trial; ``result`` is JSON, ``error`` the failure message.
"""
from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from auditor.errors import StoreError

__all__ = ["RunStore", "STORE_NAME", "atomic_write_text"]

STORE_NAME = "run.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    audit TEXT NOT NULL, key TEXT NOT NULL, ok INTEGER NOT NULL, result TEXT, error TEXT,
    duration_s REAL, finished_at TEXT, PRIMARY KEY (audit, key));
"""


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``.

    Readers see the old file or the new one, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the usual umask-based mode so reports are shareable
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


class RunStore:
    """The store of one run directory.

    Parameters
    ----------
    out_dir : str or Path
        The run directory (created if needed).
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        self.path = self.dir / STORE_NAME
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the output directory {str(self.dir)!r}: {e}. "
                             "Fix: choose a writable --out directory.") from e
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a readable run store ({e}). "
                             "Fix: move the file away or choose another --out directory.") from e

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                          (key, value))

    def n_trials(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0])

    def begin(self, config_hash: str, config: dict[str, Any], *, resume: bool) -> int:
        """Start or resume a run. Returns the number of trials already committed.

        Without ``resume``, an existing store is archived (renamed, never deleted) and a fresh
        one is started. With ``resume``, the stored configuration hash must match.

        Raises
        ------
        StoreError
            ``resume`` with a different configuration, or nothing to resume.
        """
        old = self.get_meta("config_hash")
        if resume:
            if old is None:
                raise StoreError(f"--resume: {self.dir} holds no run to resume. "
                                 "Fix: drop --resume to start a new run, or point --out at the run directory.")
            if old != config_hash:
                stored = json.loads(self.get_meta("config") or "{}")
                diff = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
                raise StoreError(f"--resume: the run in {self.dir} was made with a different configuration "
                                 f"(differs in: {', '.join(diff) or 'unknown'}). Fix: resume with the same options, "
                                 "or start a new run in another --out directory.")
            return self.n_trials()
        if old is not None:
            self.archive()
        self.set_meta("config_hash", config_hash)
        self.set_meta("config", json.dumps(config, sort_keys=True, default=str))
        self.set_meta("created_at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        return 0

    def archive(self) -> Path:
        """Rename the current store to ``run-<time>.sqlite`` and open a fresh one."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()
        dst = self.dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.sqlite"
        os.replace(self.path, dst)
        for suffix in ("-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                p.unlink()
        self.__init__(self.dir)
        return dst

    # ------------------------------------------------------------------ trials
    def done(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Committed trials: ``{(audit, key): {"ok", "result", "error", "duration_s"}}``."""
        out = {}
        for audit, key, ok, result, error, dur in self.conn.execute(
                "SELECT audit, key, ok, result, error, duration_s FROM trials"):
            out[(audit, key)] = {"ok": bool(ok), "result": json.loads(result) if result else None,
                                 "error": error, "duration_s": dur}
        return out

    def commit_trial(self, audit: str, key: str, *, result: dict[str, Any] | None = None,
                     error: str | None = None, duration_s: float = 0.0) -> None:
        """Commit one finished trial at once (autocommit: durable when this returns)."""
        self.conn.execute(
            "INSERT OR REPLACE INTO trials(audit, key, ok, result, error, duration_s, finished_at) VALUES(?,?,?,?,?,?,?)",
            (audit, key, int(error is None), None if result is None else json.dumps(result, allow_nan=False),
             error, float(duration_s), time.strftime("%Y-%m-%dT%H:%M:%S%z")))

    def iter_trials(self, audit: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, result in self.conn.execute("SELECT key, result FROM trials WHERE audit = ? AND ok = 1", (audit,)):
            yield key, json.loads(result)

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:
            pass
