"""The deploy directory: what compile may replace, the modes it writes, and the one
atomic step (issue 11, items 1, 4 and 13)."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import need_root, valid_spec
from test_cli import mailspec, tree

from mailspec.emit import emit_all
from mailspec.pipeline import check, check_and_write, load_and_lower


def compiled(tmp_path: Path, *extra: str, target: str = "deploy", spec: str = "minimal"):
    return mailspec("compile", str(valid_spec(spec)), "-o", target, *extra, cwd=tmp_path)


def copy_spec(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / "site.mailspec"
    spec.write_text(valid_spec("minimal").read_text())
    (directory / "notes.txt").write_text("mine")
    (directory / ".git").mkdir()
    (directory / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return spec


@pytest.mark.parametrize("target", [".", "..", "", "repo", "repo/.."])
def test_compile_never_replaces_a_directory_holding_the_spec(tmp_path, target):
    spec = copy_spec(tmp_path / "repo")
    before = tree(tmp_path)
    run = mailspec("compile", str(spec), "-o", target, cwd=tmp_path / "repo" if target in (".", "..", "") else tmp_path)
    assert run.returncode == 2, run.stderr
    assert "error:" in run.stderr and "help:" in run.stderr and "Traceback" not in run.stderr
    assert tree(tmp_path) == before


def test_compile_refuses_a_non_empty_directory_that_is_not_a_deploy(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "photo.jpg").write_bytes(b"\xff\xd8")
    run = compiled(tmp_path, target="other")
    assert run.returncode == 2 and "not a mailspec deploy" in run.stderr
    assert tree(tmp_path / "other") == {"photo.jpg": b"\xff\xd8"}
    (tmp_path / "empty").mkdir()
    assert compiled(tmp_path, target="empty").returncode == 0


def test_unlisted_files_are_kept_unless_removal_is_asked_for(tmp_path):
    assert compiled(tmp_path).returncode == 0
    (tmp_path / "deploy" / "notes.txt").write_text("keep me")
    refused = compiled(tmp_path)
    assert refused.returncode == 2 and "notes.txt" in refused.stderr
    assert (tmp_path / "deploy" / "notes.txt").read_text() == "keep me"
    removed = compiled(tmp_path, "--remove-unlisted")
    assert removed.returncode == 0 and "removed deploy/notes.txt" in removed.stderr
    assert not (tmp_path / "deploy" / "notes.txt").exists()


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode) for p in sorted(root.rglob("*"))}


def test_modes_are_explicit_recorded_and_independent_of_the_umask(tmp_path):
    found = []
    for umask in (0o000, 0o077, 0o022):
        old = os.umask(umask)
        try:
            assert check_and_write(load_and_lower([str(valid_spec("mysql"))]), str(tmp_path / f"u{umask}")).ok
        finally:
            os.umask(old)
        found.append(modes(tmp_path / f"u{umask}"))
    assert found[0] == found[1] == found[2]
    assert found[0]["dovecot/users" if "dovecot/users" in found[0] else "sql/seed.sql"] == 0o600
    assert found[0]["postfix/main.cf"] == 0o644 and found[0]["postfix"] == 0o755
    manifest = (tmp_path / "u0" / "MANIFEST").read_text().splitlines()[1:]
    recorded = {line.split("  ")[2]: int(line.split("  ")[1], 8) for line in manifest}
    assert recorded == {path: mode for path, mode in found[0].items() if path in recorded}
    assert set(recorded) == {p for p, m in found[0].items() if not stat.S_ISDIR(
        (tmp_path / "u0" / p).stat().st_mode)} - {"MANIFEST"}


def test_a_private_deploy_stays_private(tmp_path):
    assert compiled(tmp_path).returncode == 0
    (tmp_path / "deploy").chmod(0o700)
    assert compiled(tmp_path, spec="classic").returncode == 0
    assert stat.S_IMODE((tmp_path / "deploy").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "deploy" / "dovecot" / "users").stat().st_mode) == 0o600


def test_a_symlinked_target_stays_a_link(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    assert compiled(tmp_path, target="link").returncode == 0
    assert compiled(tmp_path, target="link", spec="classic").returncode == 0
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / "MANIFEST").is_file()


def test_a_mount_point_target(tmp_path):
    need_root()
    target = tmp_path / "mnt"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(target)], check=True)
    try:
        for name in ("sieve", "minimal", "sieve"):
            assert compiled(tmp_path, target="mnt", spec=name).returncode == 0
            assert tree(target) == {p: t.encode() for p, t in emit_all(check([str(valid_spec(name))]).spec).items()}
        assert not [e for e in os.listdir(target) if e.startswith(".")]
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_sigkill_at_random_moments_leaves_the_old_tree_or_the_new(tmp_path):
    """200 compiles killed at random moments, with a reader that must always find the
    deploy whole; then the next compile cleans up what the killed ones left."""
    specs = [str(valid_spec("sieve")), str(valid_spec("classic"))]
    trees = [{p: t.encode() for p, t in emit_all(check([s]).spec).items()} for s in specs]
    target = tmp_path / "deploy"
    assert check_and_write(load_and_lower([specs[0]]), str(target)).ok
    bound = forked_compile_time(specs[1], target) * 1.5  # kills land before and after the step
    missing, stop = [], threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                (target / "MANIFEST").read_bytes()
                (target / "postfix" / "main.cf").read_bytes()
            except FileNotFoundError as error:
                missing.append(error.filename)

    reader = threading.Thread(target=read)
    reader.start()
    rng = random.Random(11)
    outcomes = []  # whether the killed run's tree was in place
    try:
        for run in range(200):
            pid = os.fork()
            if pid == 0:
                try:
                    check_and_write(load_and_lower([specs[run % 2]]), str(target))
                finally:
                    os._exit(0)
            time.sleep(rng.uniform(0, bound))
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            found = tree(target)
            assert found in trees, f"run {run}: a mix of two trees"
            outcomes.append(trees.index(found) == run % 2)
            if run % 20 == 19 and sum(outcomes) < 2:  # a slow machine: the step comes later
                bound *= 1.5
    finally:
        stop.set()
        reader.join()
    assert not missing, f"the reader found no deploy {len(missing)} times"
    assert 0 < sum(outcomes) < len(outcomes)  # kills landed both before and after the step
    assert check_and_write(load_and_lower([specs[0]]), str(target)).ok
    time.sleep(0.5)  # orphaned background writers of killed runs finish on their own
    assert check_and_write(load_and_lower([specs[0]]), str(target)).ok
    assert sorted(os.listdir(tmp_path)) == [".deploy.lock", "deploy"]


def forked_compile_time(spec: str, target: Path) -> float:
    """How long a forked compile takes here, from fork to exit."""
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            check_and_write(load_and_lower([spec]), str(target))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return time.monotonic() - started


def test_concurrent_compiles_both_succeed(tmp_path):
    runs = [subprocess.Popen([sys.executable, "-m", "mailspec", "compile", str(valid_spec(name)), "-o", "deploy"],
                             cwd=tmp_path, stderr=subprocess.PIPE, text=True)
            for name in ("sieve", "classic", "sieve", "classic")]
    for run in runs:
        assert run.wait() == 0, run.stderr.read()
    trees = [{p: t.encode() for p, t in emit_all(check([str(valid_spec(name))]).spec).items()}
             for name in ("sieve", "classic")]
    assert tree(tmp_path / "deploy") in trees


def inodes(directory: Path) -> dict[str, int]:
    """Every file's inode, but the MANIFEST's (written every time: it does not list itself)."""
    return {str(p.relative_to(directory)): p.stat().st_ino for p in directory.rglob("*")
            if p.is_file() and p.name != "MANIFEST"}


def test_a_recompile_links_unchanged_files_and_writes_changed_ones(tmp_path):
    """Writing only what changed: a file whose bytes and mode the old tree has is a hard
    link to the old one, so the inode survives the swap; a changed file is new."""
    spec = tmp_path / "spec.mailspec"
    spec.write_text(valid_spec("classic").read_text())
    target = tmp_path / "deploy"
    assert check_and_write(load_and_lower([str(spec)]), str(target)).ok
    before = inodes(target)
    assert check_and_write(load_and_lower([str(spec)]), str(target)).ok
    assert inodes(target) == before  # nothing changed: every file linked
    spec.write_text(spec.read_text().replace("server {", "server {\n  message_size_limit 30 MiB", 1))
    assert check_and_write(load_and_lower([str(spec)]), str(target)).ok
    after = inodes(target)
    changed = {path for path in after if after[path] != before.get(path)}
    assert changed == {"postfix/main.cf"}
    assert tree(target) == {p: t.encode() for p, t in emit_all(check([str(spec)]).spec).items()}


def test_a_hand_edited_file_is_written_again_not_linked(tmp_path):
    """The MANIFEST is not trusted: a file edited in place (same size, so its MANIFEST
    line still looks right) is replaced by what the spec says."""
    spec = tmp_path / "spec.mailspec"
    spec.write_text(valid_spec("classic").read_text())
    target = tmp_path / "deploy"
    assert check_and_write(load_and_lower([str(spec)]), str(target)).ok
    main_cf = target / "postfix" / "main.cf"
    original = main_cf.read_bytes()
    main_cf.write_bytes(original.replace(b"biff = no", b"biff = NO"))
    assert check_and_write(load_and_lower([str(spec)]), str(target)).ok
    assert main_cf.read_bytes() == original
