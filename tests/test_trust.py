"""Nothing a user types or points mailspec at can hurt them: the bad-input findings of
issue 11, one named test each (the deploy directory's are in test_deploydir.py, the
compiled server's in test_host_security.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest
from conftest import need_root
from test_cli import mailspec

SERVER = "server { hostname mail.example.com }\n"


def spec(directory, text: str, name: str = "site.mailspec"):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------- item 2: what may be read


@pytest.mark.parametrize("target", ["/proc/self/environ", "/etc/shadow", "../outside.mailspec"])
def test_imports_stay_inside_the_spec_tree_and_are_not_echoed(tmp_path, target):
    (tmp_path / "outside.mailspec").write_text("SECRET=hunter2\n")
    root = spec(tmp_path / "repo", f'import "{target}"\n' + SERVER)
    run = mailspec("check", str(root))
    assert run.returncode == 1 and "E0205" in run.stderr and "--import-root" in run.stderr
    assert "SECRET" not in run.stderr and "root:" not in run.stderr and "PATH=" not in run.stderr


def test_import_root_allows_another_tree(tmp_path):
    spec(tmp_path / "shared", "domain shared.example { mailbox a { } }\n", "domains.mailspec")
    root = spec(tmp_path / "repo", 'import "../shared/domains.mailspec"\n' + SERVER)
    assert mailspec("check", str(root)).returncode == 1
    allowed = mailspec("check", "--import-root", str(tmp_path / "shared"), str(root))
    assert "E0205" not in allowed.stderr, allowed.stderr


def test_a_file_that_is_not_a_spec_is_not_echoed(tmp_path):
    spec(tmp_path, "root:$y$j9T$secrethash:19000:0:99999:7:::\n", "shadow.mailspec")
    spec(tmp_path, "A=1\0B=2\0", "environ.mailspec")
    root = spec(tmp_path, 'import "shadow.mailspec"\nimport "environ.mailspec"\n' + SERVER)
    run = mailspec("check", str(root))
    assert run.returncode == 1 and run.stderr.count("E0206") == 2
    assert "secrethash" not in run.stderr and "B=2" not in run.stderr
    typo = spec(tmp_path, "sever { hostname a.example }\n", "typo.mailspec")
    importer = spec(tmp_path, 'import "typo.mailspec"\n' + SERVER, "importer.mailspec")
    assert "sever {" in mailspec("check", str(importer)).stderr  # a spec with a mistake is shown
    assert "secrethash" in mailspec("check", str(tmp_path / "shadow.mailspec")).stderr  # named by the user


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "huge"])
def test_only_regular_files_of_bounded_size_are_read(tmp_path, kind):
    target = tmp_path / "repo" / "other.mailspec"
    target.parent.mkdir()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        target.symlink_to("/dev/zero")
    elif kind == "directory":
        target.mkdir()
    else:
        with open(target, "wb") as handle:
            handle.truncate(65 * 1024 * 1024)  # sparse: costs no disk
    root = spec(tmp_path / "repo", 'import "other.mailspec"\n' + SERVER)
    started = time.monotonic()
    run = mailspec("check", str(root))
    assert time.monotonic() - started < 30  # a FIFO never blocks, /dev/zero is never read
    assert run.returncode == 1, run.stderr
    assert "E0201" in run.stderr or "E0205" in run.stderr
    direct = mailspec("check", str(target))
    assert direct.returncode == 2 and "Traceback" not in direct.stderr


def test_root_from_stdin_is_refused():
    run = subprocess.run([sys.executable, "-m", "mailspec", "check", "/dev/stdin"], input=SERVER,
                         capture_output=True, text=True)
    assert run.returncode == 2 and "not a regular file" in run.stderr


def test_password_files_follow_the_import_rules(tmp_path):
    (tmp_path / "secret.hash").write_text("{PLAIN}x\n")
    text = SERVER.replace("{", "{{").replace("}", "}}") + 'domain example.com {{ mailbox a {{ password_file "{}" }} }}\n'
    for path, expected in (("/etc/shadow", "outside the spec's directory"),
                           ("../secret.hash", "outside the spec's directory"),
                           ("/dev/zero", "outside the spec's directory")):
        run = mailspec("check", str(spec(tmp_path / "repo", text.format(path))))
        assert run.returncode == 1 and "E0308" in run.stderr and expected in run.stderr, run.stderr
    os.mkfifo(tmp_path / "repo" / "fifo.hash")
    run = mailspec("check", str(spec(tmp_path / "repo", text.format("fifo.hash"))))
    assert run.returncode == 1 and "not a regular file" in run.stderr


def test_non_utf8_root_names_the_byte(tmp_path):
    path = tmp_path / "latin1.mailspec"
    path.write_bytes(b"server { hostname mail.example.com }\n# caf\xe9\n")
    run = mailspec("check", str(path))
    assert run.returncode == 2 and "byte 42" in run.stderr and "0xe9" in run.stderr


# ---------------------------------------------------------------- item 3: fmt writes safely


def test_fmt_never_writes_through_a_planted_link_and_keeps_the_mode(tmp_path):
    target = spec(tmp_path, "server {hostname mail.example.com}\n")
    target.chmod(0o600)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "site.mailspec.mailspec-fmt").symlink_to(victim)  # the old predictable name
    run = mailspec("fmt", str(target))
    assert run.returncode == 0, run.stderr
    assert victim.read_text() == "precious"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text() == "server {\n  hostname mail.example.com\n}\n"
    assert sorted(os.listdir(tmp_path)) == ["site.mailspec", "site.mailspec.mailspec-fmt", "victim"]


def test_fmt_refuses_to_replace_a_symlink(tmp_path):
    real = spec(tmp_path, "server {hostname mail.example.com}\n", "real.mailspec")
    link = tmp_path / "link.mailspec"
    link.symlink_to(real)
    run = mailspec("fmt", str(link))
    assert run.returncode == 2 and "symbolic link" in run.stderr
    assert link.is_symlink() and real.read_text() == "server {hostname mail.example.com}\n"


def test_fmt_keeps_the_owner(tmp_path):
    need_root()
    target = spec(tmp_path, "server {hostname mail.example.com}\n")
    os.chown(target, 65534, 65534)
    assert mailspec("fmt", str(target)).returncode == 0
    assert (target.stat().st_uid, target.stat().st_gid) == (65534, 65534)
