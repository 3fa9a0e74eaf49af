"""`mailspec fmt`: idempotent, meaning-preserving (same syntax tree, so the same model)
and comment-keeping, on every fixture and on generated text; and its command line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter

import pytest
from conftest import ROOT, VALID, checked, examples, valid_spec
from hypothesis import HealthCheck, given, note, settings
from specgen import SPECS, render
from strategies import SPEC, joined

from mailspec.diagnostics import SpecError
from mailspec.fmt import comments, format_text
from mailspec.syntax import Entry, SieveNode, Text, Value, parse

FILES = sorted((ROOT / "fixtures").rglob("*.mailspec"))


def shape(node):
    """A syntax tree without its spans: what the lowering reads."""
    if isinstance(node, Text):
        return (node.value, node.quoted)
    if isinstance(node, Value):
        return tuple(shape(w) for w in node.words)
    if isinstance(node, Entry):
        return (node.key, shape(node.values), shape(node.targets), shape(node.body))
    if isinstance(node, SieveNode):
        return (node.kind, shape(node.texts), shape(node.children))
    if isinstance(node, tuple):
        return tuple(shape(n) for n in node)
    return node


def assert_formats_well(text: str) -> None:
    try:
        tree = parse("t", text)
    except SpecError:
        return
    formatted = format_text("t", text)
    assert format_text("t", formatted) == formatted, "not idempotent"
    assert shape(parse("t", formatted)) == shape(tree), "meaning changed"
    assert Counter(c.text for c in comments(formatted)) == Counter(c.text for c in comments(text))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_fixture_file(path):
    assert_formats_well(path.read_text("utf-8"))


@pytest.mark.parametrize("name", VALID)
def test_formatted_fixtures_compile_to_the_same_model(name, tmp_path):
    copy = tmp_path / name
    shutil.copytree(valid_spec(name).parent, copy, ignore=shutil.ignore_patterns("expected"))
    for path in copy.rglob("*.mailspec"):
        path.write_text(format_text(str(path), path.read_text("utf-8")))
    assert checked(copy / "spec.mailspec").spec == checked(valid_spec(name)).spec


@settings(max_examples=examples(300, 100_000), suppress_health_check=[HealthCheck.too_slow])
@given(SPEC.flatmap(joined))
def test_generated_text(text):
    assert_formats_well(text)


@settings(max_examples=examples(50), suppress_health_check=[HealthCheck.too_slow,
                                                             HealthCheck.function_scoped_fixture])
@given(SPECS)
def test_formatted_generated_specs_compile_to_the_same_model(tmp_path_factory, spec):
    text = render(spec)
    note(text)
    written, formatted = tmp_path_factory.mktemp("written"), tmp_path_factory.mktemp("formatted")
    (written / "spec.mailspec").write_text(text)
    (formatted / "spec.mailspec").write_text(format_text("spec.mailspec", text))
    assert_formats_well(text)
    assert checked(formatted / "spec.mailspec").spec == checked(written / "spec.mailspec").spec


def run_fmt(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailspec", "fmt", *args], capture_output=True, text=True)


def test_command_line(tmp_path):
    messy = tmp_path / "messy.mailspec"
    messy.write_text("server {hostname mail.example.com}  # the server\n")
    assert run_fmt("--check", str(messy)).returncode == 1
    assert messy.read_text() == "server {hostname mail.example.com}  # the server\n"  # untouched
    assert run_fmt(str(messy)).returncode == 0
    assert messy.read_text() == "server {\n  hostname mail.example.com\n}  # the server\n"
    assert run_fmt("--check", str(messy)).returncode == 0
    broken = tmp_path / "broken.mailspec"
    broken.write_text("server { hostname\n")
    run = run_fmt(str(broken))
    assert run.returncode == 1 and "E0102" in run.stderr and "Traceback" not in run.stderr
    assert broken.read_text() == "server { hostname\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mailspec", "messy.mailspec"]
