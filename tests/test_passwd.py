"""`mailspec passwd`: every scheme's hash verifies with the real `doveadm pw -t`, and
the wrong password does not; the default is ARGON2ID, the strongest Dovecot 2.3 has."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import need_tool

from mailspec.lower.values import password as parsed_password
from mailspec.lower.values import weak_hash
from mailspec.passwd import DEFAULT, SCHEMES

PASSWORD = "correct horse battery staple ü"


def passwd(*args: str, given: str = PASSWORD + "\n") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailspec", "passwd", *args], input=given, capture_output=True,
                          text=True)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_verifies_with_doveadm_and_is_not_weak(scheme):
    doveadm = need_tool("doveadm")
    made = passwd("--stdin", "--scheme", scheme)
    assert made.returncode == 0, made.stderr
    hashed = made.stdout.strip()
    assert hashed.startswith("{" + scheme + "}") and "\n" not in hashed
    assert weak_hash(parsed_password(hashed)) is None
    right = subprocess.run([doveadm, "pw", "-t", hashed, "-p", PASSWORD], capture_output=True, text=True)
    assert right.returncode == 0 and "(verified)" in right.stdout, right.stdout + right.stderr
    wrong = subprocess.run([doveadm, "pw", "-t", hashed, "-p", PASSWORD + "x"], capture_output=True, text=True)
    assert wrong.returncode != 0


def test_the_default_is_the_strongest_scheme_dovecot_lists():
    schemes = subprocess.run([need_tool("doveadm"), "pw", "-l"], capture_output=True, text=True).stdout.split()
    assert DEFAULT == "ARGON2ID" and "ARGON2ID" in schemes
    made = passwd("--stdin")
    assert made.returncode == 0 and made.stdout.startswith("{ARGON2ID}$argon2id$"), made.stderr


def test_a_salt_each_time_and_errors_without_traceback():
    assert passwd("--stdin").stdout != passwd("--stdin").stdout
    empty = passwd("--stdin", given="\n")
    assert empty.returncode == 2 and "empty" in empty.stderr and "Traceback" not in empty.stderr
    long = passwd("--stdin", "--scheme", "BLF-CRYPT", given="x" * 73 + "\n")
    assert long.returncode == 2 and "72 bytes" in long.stderr
    unknown = passwd("--stdin", "--scheme", "MD5")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
