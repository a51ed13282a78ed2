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

The run directory's guarantees (lock, archives, resume checks) are listed in one place in
``docs/RUN_DIRECTORY.md``: a writer holds an exclusive lock on ``DIR/.audit.lock`` for the
whole run; a new run moves the previous run's store and reports to ``DIR/archive/<time>-<pid>/``;
a full disk is a :class:`~auditor.errors.StoreError` naming the path (exit 2), never a crash.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from auditor.errors import StoreError

__all__ = ["RunStore", "STORE_NAME", "LOCK_NAME", "ARCHIVE_DIR", "REPORT_FILES", "atomic_write_text", "is_disk_full"]

STORE_NAME = "run.sqlite"
LOCK_NAME = ".audit.lock"
ARCHIVE_DIR = "archive"
#: what a finished run writes beside its store (reports.render.OUTPUT_FILES plus results.json)
REPORT_FILES = ("results.json", "report.html", "junit.xml", "summary.md")

_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def is_disk_full(e: BaseException) -> bool:
    """True for "no space left" / quota / "database or disk is full" errors."""
    if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
        return True
    return isinstance(e, sqlite3.OperationalError) and "full" in str(e).lower()

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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        if is_disk_full(e):
            raise StoreError(f"{path}: cannot be written, the device is full ({e.strerror or e}). "
                             "Fix: free space and rerun.") from None
        raise
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
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if is_disk_full(e):
            raise StoreError(f"{path}: cannot be written, the device is full ({e}). Fix: free space and rerun; "
                             "the previous version of the file is unchanged.") from None
        raise
    return path


def _changed_code(old: Any, new: Any) -> str:
    """``"changed: a.py; removed: b.py"`` between two code fingerprints (registry.code_fingerprint)."""
    old, new = old or {}, new or {}
    fo, fn = old.get("files") or {}, new.get("files") or {}
    parts = []
    for label, names in (("changed", [f for f in fn if f in fo and fo[f] != fn[f]]),
                         ("added", [f for f in fn if f not in fo]), ("removed", [f for f in fo if f not in fn])):
        if names:
            parts.append(f"{label}: {', '.join(names[:3])}" + (f" and {len(names) - 3} more" if len(names) > 3 else ""))
    if old.get("distribution") != new.get("distribution"):
        parts.append(f"installed {old.get('distribution')} -> {new.get('distribution')}")
    return "; ".join(parts) or "its fingerprint differs"


class RunStore:
    """The store of one run directory.

    Parameters
    ----------
    out_dir : str or Path
        The run directory (created if needed).
    lock : bool, default False
        Take the directory's exclusive run lock (``audit run`` does; readers such as
        ``audit report`` do not). A second writer gets a :class:`StoreError` naming the holder's
        pid. The lock is an ``flock`` on ``DIR/.audit.lock``, released by the kernel when the
        holder exits however it exits, so a lock left by a killed run is simply taken over.
    """

    def __init__(self, out_dir: str | Path, *, lock: bool = False) -> None:
        self.dir = Path(out_dir)
        self.path = self.dir / STORE_NAME
        self._lock_fd: int | None = None
        self.archived: tuple[Path, list[str]] | None = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the output directory {str(self.dir)!r}: {e}. "
                             "Fix: choose a writable --out directory.") from e
        if lock:
            self._take_lock()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            if is_disk_full(e):
                raise self._full_error(e) from None
            raise StoreError(f"{self.path}: not a readable run store ({e}). "
                             "Fix: move the file away or choose another --out directory.") from e

    # ------------------------------------------------------------------ lock
    def _take_lock(self) -> None:
        path = self.dir / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"cannot create the run lock {path}: {e}. Fix: choose a writable --out directory.") from e
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no flock; a pid file is checked instead
            fcntl = None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:  # pragma: no cover
                holder = _read_holder(path)
                if holder and _pid_alive(holder.get("pid")):
                    raise BlockingIOError(errno.EWOULDBLOCK, "locked")
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreError(f"cannot lock {path}: {e}.") from e
            holder = _read_holder(path) or {}
            who = (f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
                   if holder else "another process")
            raise StoreError(f"{self.dir} is in use by another `audit run` ({who}). Two runs in one directory "
                             "would mix their trials and reports. Fix: wait for that run to finish, or choose "
                             "another --out directory.") from None
        self._lock_fd = fd  # held from here: close() releases it
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
        except OSError as e:
            self.close()
            if is_disk_full(e):
                raise StoreError(f"{path}: cannot be written, the device is full ({e.strerror or e}). "
                                 "Fix: free space and rerun (with --resume to keep finished trials).") from None
            raise

    # ------------------------------------------------------------------ errors
    def _full_error(self, e: BaseException) -> StoreError:
        try:
            n = self.n_trials()
            kept = f"The {n} finished trials already committed are kept; free space"
        except Exception:  # noqa: BLE001 -- the store may be unreadable too
            kept = "Free space"
        return StoreError(f"{self.path}: the device is full ({e}). {kept} and rerun the same command with "
                          "--resume to continue.")

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, args)
        except sqlite3.OperationalError as e:
            if is_disk_full(e):
                raise self._full_error(e) from None
            raise

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self._exec("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                   (key, value))

    def n_trials(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0])

    def begin(self, config_hash: str, config: dict[str, Any], *, resume: bool) -> int:
        """Start or resume a run. Returns the number of trials already committed.

        Without ``resume``, the previous run's store and reports are archived (moved to
        ``archive/<time>-<pid>/``, never deleted; :attr:`archived` says where) and a fresh store
        is started. With ``resume``, the stored configuration hash must match.

        Raises
        ------
        StoreError
            ``resume`` with a different configuration or changed plugin code, or nothing to resume.
        """
        old = self.get_meta("config_hash")
        if resume:
            if old is None:
                raise StoreError(f"--resume: {self.dir} holds no run to resume. "
                                 "Fix: drop --resume to start a new run, or point --out at the run directory.")
            if old != config_hash:
                stored = json.loads(self.get_meta("config") or "{}")
                now = json.loads(json.dumps(config, sort_keys=True, default=str))
                diff = sorted(k for k in set(stored) | set(now) if stored.get(k) != now.get(k))
                code = [k for k in ("model_code", "baseline_code") if k in diff]
                if code:
                    changed = _changed_code(stored.get(code[0]), now.get(code[0]))
                    raise StoreError(f"--resume: the {code[0].split('_')[0]} plugin's code changed since the run in "
                                     f"{self.dir} started ({changed}); its finished trials came from the old code and "
                                     "cannot be mixed with new ones. Fix: restore the code to resume, or drop --resume "
                                     "to start a new run (the old one is archived).")
                raise StoreError(f"--resume: the run in {self.dir} was made with a different configuration "
                                 f"(differs in: {', '.join(diff) or 'unknown'}). Fix: resume with the same options, "
                                 "or start a new run in another --out directory.")
            return self.n_trials()
        if old is not None or any((self.dir / f).exists() for f in REPORT_FILES):
            self.archive()
        self.set_meta("config_hash", config_hash)
        self.set_meta("config", json.dumps(config, sort_keys=True, default=str))
        self.set_meta("created_at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        return 0

    def archive(self) -> Path:
        """Move the current store (if it holds a run) and reports to ``archive/<time>-<pid>/``; open a fresh store.

        Sets :attr:`archived` to ``(directory, names moved)``.
        """
        had_run = self.get_meta("config_hash") is not None or self.n_trials() > 0
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as e:
            if is_disk_full(e):
                raise self._full_error(e) from None
            raise
        self.conn.close()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        dst = self.dir / ARCHIVE_DIR / f"{stamp}-{os.getpid()}"
        k = 1
        while dst.exists():
            dst = self.dir / ARCHIVE_DIR / f"{stamp}-{os.getpid()}-{k}"
            k += 1
        moved = []
        try:
            dst.mkdir(parents=True)
            for name in ((STORE_NAME,) if had_run else ()) + REPORT_FILES:
                if (self.dir / name).exists():
                    os.replace(self.dir / name, dst / name)
                    moved.append(name)
        except OSError as e:
            if is_disk_full(e):
                raise StoreError(f"{dst}: cannot archive the previous run, the device is full ({e}). "
                                 "Fix: free space and rerun.") from None
            raise
        for suffix in ("-wal", "-shm"):  # emptied by the checkpoint; this process held the only connection
            p = Path(str(self.path) + suffix)
            if p.exists() and had_run:
                p.unlink()
        self._open()
        self.archived = (dst, moved)
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
        self._exec(
            "INSERT OR REPLACE INTO trials(audit, key, ok, result, error, duration_s, finished_at) VALUES(?,?,?,?,?,?,?)",
            (audit, key, int(error is None), None if result is None else json.dumps(result, allow_nan=False),
             error, float(duration_s), time.strftime("%Y-%m-%dT%H:%M:%S%z")))

    def iter_trials(self, audit: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, result in self.conn.execute("SELECT key, result FROM trials WHERE audit = ? AND ok = 1", (audit,)):
            yield key, json.loads(result)

    def close(self) -> None:
        """Close the database and release the run lock (the lock file stays: removing it would race)."""
        conn = getattr(self, "conn", None)
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        if self._lock_fd is not None:
            try:
                os.close(self._lock_fd)
            except OSError:
                pass
            self._lock_fd = None


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None


def _pid_alive(pid: Any) -> bool:  # pragma: no cover - used where flock is missing
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True
