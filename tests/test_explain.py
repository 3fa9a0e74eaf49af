"""`mailspec explain CODE`: one long form for every code the compiler can give, none for a
code it cannot, and each example, checked by the real checker, gives its own code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mailspec.explain import explanations
from mailspec.pipeline import check

ROOT = Path(__file__).parents[1]
# Codes whose example cannot be shown as text (invisible characters) or would be long;
# each has a test of its own (fixtures/invalid, tests/test_trust.py).
NO_EXAMPLE = {"E0105", "E0106", "E0107", "E0207", "E0420", "W0523"}


def emitted_codes() -> set[str]:
    found = set()
    for directory in ("mailspec", "backends"):
        for path in (ROOT / directory).rglob("*.py"):
            found |= set(re.findall(r"\"([EW]\d{4})\"", path.read_text()))
    return found


def test_every_code_the_compiler_gives_is_explained_and_no_other():
    assert set(explanations()) == emitted_codes()


def test_only_the_listed_codes_go_without_an_example():
    assert {code for code, e in explanations().items() if not e.files} == NO_EXAMPLE


@pytest.mark.parametrize("code", sorted(c for c, e in explanations().items() if e.files))
def test_the_example_gives_its_code(tmp_path, code):
    for name, text in explanations()[code].files:
        (tmp_path / name).write_text(text)
    result = check([str(tmp_path / explanations()[code].files[0][0])])
    assert code in {d.code for d in result.diagnostics}, [(d.code, d.message) for d in result.diagnostics]


def explain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailspec", "explain", *args], capture_output=True, text=True)


def test_the_command_prints_the_long_form_and_lists_the_codes():
    shown = explain("e0406")
    assert shown.returncode == 0 and shown.stdout.startswith("E0406: aliases that form a cycle\n"), shown.stdout
    assert "    alias a -> b\n" in shown.stdout and "```" not in shown.stdout
    listed = explain()
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == len(explanations())
    assert "E0423  an SPF record over ten DNS lookups\n" in listed.stdout


def test_an_unknown_code_is_a_usage_error():
    shown = explain("E9999")
    assert shown.returncode == 2 and "there is no diagnostic E9999" in shown.stderr and not shown.stdout
