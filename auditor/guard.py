"""Keeping untrusted plugin code from ending, hanging or silently corrupting a run.

A plugin is arbitrary Python. Three things it can do would otherwise read as a result:

* ``sys.exit(0)`` / ``raise SystemExit`` inside ``fit`` or ``score``: ``SystemExit`` is not an
  ``Exception``, so it would unwind the whole run and the process would end with the plugin's
  code (0 is the GO code). Every place that calls plugin code catches it and turns it into
  that trial's ERROR (or, while the plugin is being loaded, an exit-2 plugin error).
* ``os._exit(0)``: ends the process at once, no handler runs. While plugin code runs (a trial,
  loading the factory, ``check-plugin``) :func:`no_exit` replaces ``os._exit`` with a function
  that raises :class:`PluginExit` (a ``SystemExit``), handled like ``sys.exit``. A plugin that
  goes around it (``posix._exit``, ``ctypes``, a signal to itself) can still end the process:
  with ``--executor local`` the trials run in worker processes, where such a death is that
  trial's ERROR ("worker died"); under ``serial`` nothing in-process can catch it, which is
  why the CLI's ``main`` and ``run`` never exit 0 without a verdict they wrote.
* running forever: :func:`alarm` raises :class:`TrialTimeout` in the main thread after
  ``--trial-timeout`` seconds (a ``BaseException``, so a plugin's ``except Exception`` does not
  swallow it). It interrupts Python code and interruptible waits (``time.sleep``), not a call
  stuck inside native code; the ``local`` executor's workers are stopped by the parent instead,
  which is the hard limit.
"""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["PluginExit", "TrialTimeout", "no_exit", "alarm", "exit_message"]


class PluginExit(SystemExit):
    """Plugin code called ``os._exit(code)`` while :func:`no_exit` was active."""

    def __init__(self, code: object) -> None:
        super().__init__(code)
        self.how = "os._exit"


class TrialTimeout(BaseException):
    """A trial ran past ``--trial-timeout`` (raised in the main thread by :func:`alarm`)."""


def exit_message(e: SystemExit) -> str:
    """``"called sys.exit(0)"`` / ``"called os._exit(3)"``: what the plugin did, for messages."""
    how = getattr(e, "how", "sys.exit")
    return f"called {how}({e.code!r}), which would end the whole run; a plugin must raise an exception instead"


_depth = 0
_real_exit = os._exit
_lock = threading.Lock()


def _refuse_exit(code: int = 0) -> None:
    raise PluginExit(code)


@contextmanager
def no_exit() -> Iterator[None]:
    """While the block runs, ``os._exit`` raises :class:`PluginExit` instead of ending the process.

    Re-entrant; restores the real ``os._exit`` when the outermost block ends.
    """
    global _depth
    with _lock:
        _depth += 1
        os._exit = _refuse_exit
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                os._exit = _real_exit


@contextmanager
def alarm(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TrialTimeout` in this (main) thread when the block runs past ``seconds``.

    No-op for ``None``. Raises ``RuntimeError`` off the main thread (signals only reach it).
    """
    if not seconds:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("a trial timeout in this process needs the main thread")
    armed = [True]

    def fire(signum: int, frame: object) -> None:
        if armed[0]:  # the block may have just ended: never raise outside it
            armed[0] = False
            raise TrialTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
