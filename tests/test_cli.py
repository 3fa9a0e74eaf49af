"""The command line: exit codes, atomic deploys, reproducible output, no tracebacks."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT, VALID, valid_spec


def mailspec(*args, env=None, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, "-m", "mailspec", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=timeout)


def tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_version_and_help():
    assert mailspec("--version").stdout.startswith("mailspec, version ")
    for command in ("check", "compile"):
        help_text = mailspec(command, "--help").stdout
        assert "Examples:" in help_text and f"mailspec {command}" in help_text


def test_exit_codes(tmp_path):
    assert mailspec("check", str(valid_spec("classic"))).returncode == 0
    assert mailspec("check", "fixtures/invalid/E0401-unknown-alias-target.mailspec").returncode == 1
    missing = mailspec("check", str(tmp_path / "nope.mailspec"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert mailspec("compile", str(valid_spec("classic"))).returncode == 2  # no -o


def test_compile_writes_the_tree(tmp_path):
    out = tmp_path / "deploy"
    run = mailspec("compile", str(valid_spec("sieve")), "-o", str(out))
    assert run.returncode == 0, run.stderr
    files = tree(out)
    assert {"MANIFEST", "postfix/main.cf", "dovecot/dovecot.conf", "dovecot/users"} <= set(files)
    assert any(path.startswith("sieve/mailbox/") for path in files)
    import hashlib
    for line in files["MANIFEST"].decode().splitlines()[1:]:
        digest, mode, path = line.split("  ")
        assert mode == ("0600" if path == "dovecot/users" else "0755" if path.endswith(".sh") else "0644")
        assert (out / path).stat().st_mode & 0o777 == int(mode, 8)
        assert hashlib.sha256(files[path]).hexdigest() == digest


def test_failed_compile_leaves_previous_deploy(tmp_path):
    out = tmp_path / "deploy"
    assert mailspec("compile", str(valid_spec("minimal")), "-o", str(out)).returncode == 0
    before = tree(out)
    run = mailspec("compile", "fixtures/invalid/E0406-alias-cycle.mailspec", "-o", str(out))
    assert run.returncode == 1
    assert tree(out) == before
    assert sorted(os.listdir(tmp_path)) == [".deploy.lock", "deploy"]  # no half-written staging dirs


def test_recompile_replaces_stale_files(tmp_path):
    out = tmp_path / "deploy"
    mailspec("compile", str(valid_spec("sieve")), "-o", str(out))
    mailspec("compile", str(valid_spec("minimal")), "-o", str(out))
    assert not (out / "sieve").exists()


@pytest.mark.parametrize("name", VALID)
def test_byte_identical_under_any_hash_seed(name, tmp_path):
    trees = []
    for seed in ("0", "1", "4242"):
        out = tmp_path / seed
        run = mailspec("compile", str(valid_spec(name)), "-o", str(out), env={"PYTHONHASHSEED": seed})
        assert run.returncode == 0, run.stderr
        trees.append(tree(out))
    assert trees[0] == trees[1] == trees[2]


@pytest.mark.parametrize("text", [
    "", "\x00\x01", "{{{{", "}", "server", "server {", "domain", 'import "/"', "import",
    "domain x.example { mailbox", "sieve { if }", "server { hostname -> x }", "😀 domain",
    "domain a.example { alias x -> }", "server { hostname a.example } domain a.example { list l { post } }",
    "server { hostname a.example } domain a.example { list l { members } mailbox m { sieve { } } }",
    "server { hostname a.example } domain a.example { mailbox m { auto_reply { } aliases } }",
    "server { hostname a.example; backend mysql { port 99999 } } domain a.example { catch_all x@y }",
])
def test_garbage_never_tracebacks(text, tmp_path):
    spec = tmp_path / "bad.mailspec"
    spec.write_text(text)
    run = mailspec("check", str(spec))
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert run.returncode in (1, 2), run.stderr
