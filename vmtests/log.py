"""Nested, timed log blocks and the one retry helper every wait goes through."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_depth = 0


def info(message: str) -> None:
    print(f"{'  ' * _depth}{message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    """Log `message`, run the block indented under it, then log how long it took."""
    global _depth
    info(message)
    started = time.monotonic()
    _depth += 1
    outcome = "failed"
    try:
        yield
        outcome = "done"
    finally:
        _depth -= 1
        info(f"({outcome} in {time.monotonic() - started:.2f} s)")


class Timeout(Exception):
    pass


def retry(attempt: Callable[[bool], T | None], timeout: float, what: str, pause: float = 0.2) -> T:
    """Call attempt(last_try) until it returns something other than None or False.

    `last_try` is True on the final call, so the attempt can raise with its own detail
    instead of returning None. Raises Timeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last_try = time.monotonic() + pause >= deadline
        result = attempt(last_try)
        if result is not None and result is not False:
            return result
        if last_try:
            raise Timeout(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(pause)
