"""Tests that need a tool or root: in CI a missing one fails the test; elsewhere it skips."""

from __future__ import annotations

import os
import shutil

import pytest


def need_tool(name: str) -> str:
    """The tool's path. In CI a missing tool fails the test; elsewhere it skips."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"`{name}` is required in CI; .ci/run installs it")
        pytest.skip(f"`{name}` is not installed")
    return path


def need_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("this test needs root in CI")
        pytest.skip("needs root")
