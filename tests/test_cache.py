"""The compile cache (mailspec/cache.py, mailspec/lower/units.py): it never changes the
output, it is used, and a corrupt, foreign or unsafe cache is ignored, never trusted."""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import examples, write_tree
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from specgen import SPECS, render_files

from mailspec import cache
from mailspec.diagnostics import render_all_text
from mailspec.lower import units
from mailspec.pipeline import check, compile_files

SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]


@pytest.fixture
def cache_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv("MAILSPEC_CACHE", raising=False)
    return home / "mailspec"


def outcome(root: Path, monkeypatch, use_cache: bool) -> tuple:
    """What a compile of `root` gives: the diagnostics as shown, and the tree."""
    with monkeypatch.context() as patch:
        if not use_cache:
            patch.setenv("MAILSPEC_CACHE", "off")
        result = check([str(root)])
    shown = render_all_text(result.diagnostics, result.sources)
    return result.ok, shown, compile_files(result) if result.ok else None


def made_units(monkeypatch) -> list[str]:
    """The files whose units are made (not found in the cache) from now on, in this process."""
    made, real = [], units.make
    monkeypatch.setattr(units, "make", lambda lowerer, display, text: made.append(display) or
                        real(lowerer, display, text))
    return made


EDITS = ["delete", "duplicate", "swap", "garble", "delimiter", "server_moves"]


def edit(files: dict[str, str], chance: random.Random) -> str:
    """One random edit, in place; what it was, for the failure report."""
    name = chance.choice(sorted(files))
    lines = files[name].splitlines() or [""]
    kind = chance.choice(EDITS)
    at = chance.randrange(len(lines))
    if kind == "delete":
        del lines[at]
    elif kind == "duplicate":
        lines.insert(at, lines[at])
    elif kind == "swap":
        other = chance.randrange(len(lines))
        lines[at], lines[other] = lines[other], lines[at]
    elif kind == "garble":
        lines[at] = lines[at].replace(chance.choice(["{", "}", "mailbox", "->", "a"]), chance.choice(["", "}", "-"]), 1)
    elif kind == "delimiter":  # a second round of lowering (pipeline.load_and_lower)
        name, lines = "spec.mailspec", files["spec.mailspec"].splitlines()
        lines.insert(1, f'  recipient_delimiter "{chance.choice(["-", "+", "_"])}"')
    elif kind == "server_moves":  # the server block from the root into an imported file
        root = files["spec.mailspec"]
        server, _, imports = root.partition("}\n")
        others = sorted(n for n in files if n != "spec.mailspec")
        if not others or "server" not in server:
            return "no server to move"
        name = chance.choice(others)
        files["spec.mailspec"] = imports
        lines = (server + "}\n" + files[name]).splitlines()
    files[name] = "\n".join(lines) + "\n"
    return f"{kind} in {name} at line {at + 1}"


@settings(max_examples=examples(25), suppress_health_check=SLOW)
@given(SPECS, st.integers(0, 2**32))
def test_compiling_with_the_cache_gives_what_compiling_without_it_gives(tmp_path_factory, monkeypatch, spec, seed):
    work = tmp_path_factory.mktemp("cached")
    monkeypatch.setenv("XDG_CACHE_HOME", str(work / "cache"))
    files, chance = render_files(spec, seed), random.Random(seed)
    for step in range(5):  # the cache fills up as a user's would, edit after edit
        write_tree(files, work / "spec")
        cached = outcome(work / "spec" / "spec.mailspec", monkeypatch, True)
        assert cached == outcome(work / "spec" / "spec.mailspec", monkeypatch, False), step
        note(edit(files, chance))
        for stale in (work / "spec").rglob("*.mailspec"):
            stale.unlink()


def test_an_unchanged_spec_is_read_from_the_cache(cache_home, tmp_path, monkeypatch):
    spec = write_spec(tmp_path / "spec", domains=12)
    first = outcome(spec, monkeypatch, True)
    made = made_units(monkeypatch)
    assert outcome(spec, monkeypatch, True) == first
    assert made == []
    (spec.parent / "domains" / "d3.example.mailspec").write_text(
        'domain d3.example {\n  mailbox changed { password "' + HASH + '" }\n}\n')
    changed = outcome(spec, monkeypatch, True)
    assert made == [str(spec.parent / "domains" / "d3.example.mailspec")]
    assert changed == outcome(spec, monkeypatch, False)
    assert "changed@d3.example" in changed[2]["postfix/virtual_mailboxes"]


def test_a_spec_with_its_own_delimiter_is_lowered_once_when_cached(cache_home, tmp_path, monkeypatch):
    spec = write_spec(tmp_path / "spec", domains=3)
    spec.write_text(spec.read_text().replace("  hostname", '  recipient_delimiter "-"\n  hostname'))
    first = outcome(spec, monkeypatch, True)
    made = made_units(monkeypatch)
    assert outcome(spec, monkeypatch, True) == first
    assert made == [], "the delimiter is remembered: no round with the default first"
    assert first == outcome(spec, monkeypatch, False)


def test_a_corrupt_or_foreign_pack_is_ignored(cache_home, tmp_path, monkeypatch):
    spec = write_spec(tmp_path / "spec", domains=4)
    expected = outcome(spec, monkeypatch, False)
    outcome(spec, monkeypatch, True)
    [pack] = cache_home.glob("units-*")
    good = pack.read_bytes()
    marker = tmp_path / "code-ran"
    planted = pickle.dumps(Exploit(str(marker)))
    foreign = cache._seal(os.urandom(cache.SECRET_BYTES), pack.name, planted) + planted
    for damaged in (good[:-1] + bytes([good[-1] ^ 1]), good[: len(good) // 2], b"", foreign,
                    good[:cache.SEAL_BYTES] + planted):
        pack.write_bytes(damaged)
        made = made_units(monkeypatch)
        assert outcome(spec, monkeypatch, True) == expected
        assert len(made) == 5  # every unit made again: nothing was taken from the bad pack
        assert not marker.exists()
        monkeypatch.undo()
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home.parent))


class Exploit:
    """What a planted pickle could do if mailspec unpickled entries it had not sealed."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_cache_directory_others_may_write_is_not_used(cache_home, tmp_path, monkeypatch):
    cache_home.mkdir(parents=True)
    cache_home.chmod(0o777)
    spec = write_spec(tmp_path / "spec", domains=2)
    outcome(spec, monkeypatch, True)
    assert list(cache_home.iterdir()) == []
    cache_home.chmod(0o700)
    outcome(spec, monkeypatch, True)
    assert sorted(p.stat().st_mode & 0o777 for p in cache_home.iterdir()) == [0o600, 0o600]


def test_a_password_file_is_read_every_time(cache_home, tmp_path, monkeypatch):
    spec = write_spec(tmp_path / "spec", domains=1)
    (spec.parent / "alice.hash").write_text(HASH + "\n")
    (spec.parent / "domains" / "d0.example.mailspec").write_text(
        'domain d0.example {\n  mailbox alice { password_file "../alice.hash" }\n}\n')
    assert HASH in outcome(spec, monkeypatch, True)[2]["dovecot/users"]
    (spec.parent / "alice.hash").write_text("plaintext\n")
    ok, shown, _ = outcome(spec, monkeypatch, True)
    assert not ok and "password" in shown


def test_a_corrupt_lexer_entry_is_ignored(cache_home, tmp_path):
    spec = write_spec(tmp_path / "spec", domains=1)
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home.parent))
    run = [sys.executable, "-m", "mailspec", "check", str(spec)]
    assert subprocess.run(run, env=env).returncode == 0
    [entry] = cache_home.glob("lexer-*")
    entry.write_bytes(entry.read_bytes()[:-5] + b'"x"}}')
    assert subprocess.run(run, env=env).returncode == 0


HASH = ("{SHA512-CRYPT}$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6Z"
        "DvuFWpUZ8hJTQ.ivwSwz4/Ebzn.eKM.Tddy1")


def write_spec(directory: Path, domains: int) -> Path:
    files = {"spec.mailspec": "server {\n  hostname mail.example.com\n}\n" +
             "".join(f'import "domains/d{d}.example.mailspec"\n' for d in range(domains))}
    for d in range(domains):
        files[f"domains/d{d}.example.mailspec"] = (
            f'domain d{d}.example {{\n  mailbox alice {{ password "{HASH}" }}\n  alias sales -> alice\n}}\n')
    write_tree(files, directory)
    return directory / "spec.mailspec"
