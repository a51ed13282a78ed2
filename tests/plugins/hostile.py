"""A plugin that misbehaves on request, for the run-directory / hostile-plugin tests.

``make_model(seed, act="none", where="score")``: ``act`` is what it does in ``where`` ("fit" or
"score"; "worker" acts only inside a ``local`` worker process):

* ``sys_exit`` / ``os_exit``: end the process with code 0
* ``sleep``: sleep ``HOSTILE_SLEEP`` seconds (default 30)
* ``unfreeze``: make its input features writeable and zero them (the issue's attack)
* ``labels``: write into the (hidden) labels it is given
* ``ctypes``: overwrite its input features through a raw pointer (past any numpy flag)
* ``sigkill``: kill its own process (a worker death the plugin cannot be stopped from)

It ships ``default_data`` (a small synthetic split), so no data files are needed.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from rankers import LinearRanker, make_synthetic_split


def _in_worker() -> bool:
    import multiprocessing

    return multiprocessing.current_process().name == "auditor-worker"


class Hostile(LinearRanker):
    def __init__(self, seed: int = 0, act: str = "none", where: str = "score") -> None:
        super().__init__(seed)
        self.act, self.where = act, where

    def _maybe(self, here: str, data) -> None:
        if self.where == "worker":
            if not _in_worker():
                return
        elif self.where != here:
            return
        act = self.act
        if act == "sys_exit":
            sys.exit(0)
        if act == "os_exit":
            os._exit(0)
        if act == "sleep":
            time.sleep(float(os.environ.get("HOSTILE_SLEEP", "30")))
        if act == "unfreeze":
            for x in data.features.values():
                x.flags.writeable = True
                x[:] = 0.0
        if act == "labels":
            lab = data.labels
            lab.flags.writeable = True
            lab[:] = 0.0
        if act == "ctypes":
            import ctypes

            x = next(iter(data.features.values()))
            ctypes.memset(x.ctypes.data, 0, x.nbytes)
        if act == "sigkill":
            import signal

            os.kill(os.getpid(), signal.SIGKILL)

    def fit(self, train):
        self._maybe("fit", train)
        return super().fit(train)

    def score(self, data):
        self._maybe("score", data)
        return super().score(data)


def make_model(seed: int = 0, act: str = "none", where: str = "score") -> Hostile:
    return Hostile(seed, act, where)


def _default_data(seed: int = 0, **params) -> object:
    return make_synthetic_split(n_train_queries=40, n_test_queries=20, n_items=6, seed=3)


make_model.default_data = _default_data


def make_exits_in_factory(seed: int = 0) -> Hostile:
    sys.exit(0)
