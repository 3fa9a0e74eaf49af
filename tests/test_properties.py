"""Properties over generated valid specs and their mutations: declaration order does not
matter, the lmdb maps route as the model's resolve() says, and no input crashes the
compiler or gets a diagnostic that points outside it."""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import hypothesis
from conftest import examples, need_root, need_tool, write_tree
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from specgen import SPECS, addresses, render, render_files
from test_mysql_backend import answers_agree, lookup_keys
from test_real_tools import MAPS, assert_daemons_accept, assert_routes_like_the_model

from mailspec.emit import emit_all
from mailspec.pipeline import check, compile_files

SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]


def compiled(files: dict[str, str], directory) -> dict[str, str]:
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    result = check([str(directory / "spec.mailspec")])
    assert result.ok, [f"{d.code} {d.message}" for d in result.diagnostics]
    return compile_files(result)


@settings(max_examples=examples(60), suppress_health_check=SLOW)
@given(SPECS, st.integers(0, 2**32))
def test_declaration_order_does_not_change_the_output(tmp_path_factory, spec, seed):
    text, shuffled = render(spec), render(spec, seed)
    note(text)
    work = tmp_path_factory.mktemp("order")
    expected = compiled({"spec.mailspec": text}, work / "a")
    assert compiled({"spec.mailspec": shuffled}, work / "b") == expected
    # one file per domain, imported in a shuffled order: the same tree again
    assert compiled(render_files(spec, seed), work / "c") == expected


@settings(max_examples=examples(15), suppress_health_check=SLOW)
@given(SPECS)
def test_lmdb_maps_route_like_the_model(tmp_path_factory, spec):
    need_tool("postmap")
    text = render(spec)
    note(text)
    work = tmp_path_factory.mktemp("route")
    (work / "spec.mailspec").write_text(text)
    result = check([str(work / "spec.mailspec")])
    assert result.ok, [f"{d.code} {d.message}" for d in result.diagnostics]
    write_tree(emit_all(result.spec), work / "deploy")
    config = work / "deploy" / "postfix"
    for table in MAPS:
        subprocess.run(["postmap", f"lmdb:{config / table}"], check=True)
    assert_routes_like_the_model(result.spec, config, addresses(spec))


def assert_sound_diagnostics(text: str, tmp_path) -> None:
    """check() never raises, and every diagnostic points inside the text."""
    path = tmp_path / "fuzz.mailspec"
    path.write_text(text, encoding="utf-8")
    result = check([str(path)])
    for diagnostic in result.diagnostics:
        for label in diagnostic.labels:
            span = label.span
            if span.file == str(path):
                assert 0 <= span.start <= span.end <= len(text), (diagnostic.code, span)
                if span.end > span.start:
                    assert text[span.start:span.end].strip(" \t\r\n"), (diagnostic.code, span)
    if result.ok:
        compile_files(result)  # check and compile agree: a valid spec compiles


@settings(max_examples=examples(300, 100_000), suppress_health_check=SLOW)
@given(st.text(max_size=200))
def test_arbitrary_text_gets_diagnostics(tmp_path, text):
    assert_sound_diagnostics(text, tmp_path)


@settings(max_examples=examples(200, 100_000), suppress_health_check=SLOW)
@given(SPECS, st.data())
def test_mutated_specs_get_diagnostics(tmp_path, spec, data):
    tokens = render(spec).split(" ")
    chooser = random.Random(data.draw(st.integers(0, 2**32)))
    for _ in range(data.draw(st.integers(1, 4))):
        where = chooser.randrange(len(tokens))
        action = data.draw(st.sampled_from(["delete", "swap", "hostile"]))
        if action == "delete":
            del tokens[where]
        elif action == "swap":
            other = chooser.randrange(len(tokens))
            tokens[where], tokens[other] = tokens[other], tokens[where]
        else:
            tokens[where] = data.draw(st.sampled_from(
                ['"\\"', "\x00", "é@ü", "a" * 300, "{", "}", "->", '"unterminated', "@", "..",
                 "1" * 40, "[::1]", "#", "\\", "'; DROP TABLE x; --"]))
        if not tokens:
            tokens = ["server"]
    text = " ".join(tokens)
    note(text)
    assert_sound_diagnostics(text, tmp_path)


# Values that a careless or hostile user may write where a generated spec has a word:
# each either gets a diagnostic or compiles to files that every daemon reads.
HOSTILE_VALUES = ['"#x"', '"a b"', '"x\\ny"', "0 B", "1 B", "1024 TiB", "1025 TiB", '"/run/a b.sock"',
                  "0.0.0.0/0", "10.1.2.3/8", '"o\'neil"', '"a{b}c"', '"x%d"', "é.example", '"$"',
                  '"tab\\there"', "99999999999", "[::1]/128", '"\\"', '"; }"', "Junk/../x"]


@settings(max_examples=examples(12, 5000), suppress_health_check=SLOW)
@given(SPECS, st.data())
def test_every_spec_that_compiles_is_read_by_the_daemons(tmp_path_factory, spec, data):
    """Issue 11: values that reached a daemon's file and broke it (a huge size, a `#` at
    the start of a map key, a space in a socket path) compiled with exit 0."""
    for tool in ("postconf", "postfix", "postmap", "doveconf", "sievec", "script"):
        need_tool(tool)
    need_root()
    tokens = render(spec).split(" ")
    chooser = random.Random(data.draw(st.integers(0, 2**32)))
    for _ in range(data.draw(st.integers(0, 3))):
        tokens[chooser.randrange(len(tokens))] = data.draw(st.sampled_from(HOSTILE_VALUES))
    text = " ".join(tokens)
    note(text)
    work = tmp_path_factory.mktemp("daemons")
    (work / "spec.mailspec").write_text(text)
    result = check([str(work / "spec.mailspec")])
    if not result.ok:
        return
    short = Path(tempfile.mkdtemp(prefix="ms", dir="/tmp"))
    try:
        assert_daemons_accept(result.spec, work, short)
    finally:
        shutil.rmtree(short, ignore_errors=True)


def test_deep_alias_chains_are_generated():
    """The strategy reaches alias chains of depth 5 or more (alias4 -> … -> alias0)."""
    found = hypothesis.find(SPECS, lambda spec: any(
        len(d.aliases) >= 5 and all(f"alias{i - 1}" in d.aliases[i][1] for i in range(1, 5))
        for d in spec.domains), settings=hypothesis.settings(max_examples=5000, database=None,
                                                    suppress_health_check=SLOW))
    assert found


@settings(max_examples=examples(12), suppress_health_check=SLOW)
@given(SPECS)
def test_files_and_mysql_backends_agree(tmp_path_factory, mariadb, spec):
    """On generated specs, every mysql table answers what its lmdb map answers."""
    text = render(spec)
    note(text)
    work = tmp_path_factory.mktemp("backends")
    (work / "spec.mailspec").write_text(text)
    result = check([str(work / "spec.mailspec")])
    assert result.ok
    keys = sorted(set(addresses(spec)) | set(lookup_keys(result.spec)))
    answers_agree(result.spec, mariadb, work, "generated", keys)
