"""Run one function in a forked child process while the parent goes on.

The compiler uses it to emit and write the slowest backends while the parent checks
the spec: the child sees the parent's model through fork's copy-on-write, so nothing
large is ever serialised; only the small return value comes back, pickled, over a pipe.
Without os.fork (not a mail-server platform) the function runs at `result()`.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from collections.abc import Callable


class Background:
    def __init__(self, function: Callable[[], object]):
        self.function = function
        self.pid = None  # the child, until it is reaped
        self.forked = hasattr(os, "fork")
        if self.forked:
            self._start()

    def _start(self) -> None:
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: run, report, and leave without any of the parent's cleanup
            os.close(read_end)
            try:
                outcome = ("ok", self.function())
            except OSError as error:
                outcome = ("oserror", (error.errno, error.strerror, error.filename))
            except BaseException as error:  # noqa: BLE001  (reported by the parent as an internal error)
                outcome = ("bug", f"{type(error).__name__}: {error}")
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump(outcome, pipe)
            os._exit(0)
        os.close(write_end)
        self.pid, self.pipe = pid, os.fdopen(read_end, "rb")

    def result(self) -> object:
        """The function's return value; its OSError re-raised; RuntimeError for anything else."""
        if not self.forked:
            return self.function()
        try:
            data = self.pipe.read()
        finally:
            self._reap()
        if not data:
            raise RuntimeError("the background process died without a result")
        kind, value = pickle.loads(data)
        if kind == "oserror":
            raise OSError(*value)
        if kind == "bug":
            raise RuntimeError(value)
        return value

    def cancel(self) -> None:
        """Stop the child, if it still runs, and reap it."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            self._reap()

    def _reap(self) -> None:
        self.pipe.close()
        os.waitpid(self.pid, 0)
        self.pid = None
