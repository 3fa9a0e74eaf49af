"""Shared test helpers: fixture discovery, compiling into temp dirs, and real tools."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mailspec.pipeline import check, compile_files

ROOT = Path(__file__).resolve().parent.parent
VALID = sorted(p.name for p in (ROOT / "fixtures" / "valid").iterdir() if p.is_dir())
INVALID = sorted(p.name for p in (ROOT / "fixtures" / "invalid").glob("*.mailspec"))


def valid_spec(name: str) -> Path:
    return ROOT / "fixtures" / "valid" / name / "spec.mailspec"


def checked(path: Path | str):
    result = check([str(path)])
    assert result.ok, [d.message for d in result.diagnostics]
    return result


def compile_fixture(name: str) -> dict[str, str]:
    return compile_files(checked(valid_spec(name)))


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


def write_tree(files: dict[str, str], target: Path) -> None:
    for path, text in files.items():
        full = target / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(text, encoding="utf-8")
