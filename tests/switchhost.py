"""A relocated server on this host that tests switch with the real `mailspec` command
(test_switch.py, test_switch_ssh.py)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs
from conftest import need_root, need_tool
from hosttier import PASSWORDS, hashed

from mailspec.certs import make_certificates
from mailspec.hostrun import HostServer, free_layout
from mailspec.keys import make_keys
from mailspec.layout import Layout
from mailspec.model import DEFAULT_KEYS
from mailspec.pipeline import check
from mailspec.switch.activate import compile_to, read_manifest
from mailspec.switch.build import REQUEST
from mailspec.switch.request import Request
from mailspec.switch.store import Store

SPEC = """
server {{
  hostname mail.example.com
  relay_host [127.0.0.1]:9
  {backend}
}}
domain example.com {{
  mailbox alice {{
    password "{alice}"
    sieve {{ if header "subject" contains "[report]" {{ fileinto "Reports"; stop }} }}
  }}
  {more}
  alias sales -> {sales}
}}
"""


class Host:
    """A relocated server under a fresh prefix, switched with the real `mailspec` command."""

    def __init__(self, prefix: Path):
        self.prefix = prefix
        self.layout = free_layout(str(prefix))
        self.location = ["--prefix", str(prefix)]
        self.ports = [f"--port={name}={port}" for name, port in attrs.asdict(self.layout.ports).items()]
        self.hashes = {user: hashed(password) for user, password in PASSWORDS.items()}

    def write(self, name: str, more: str = "", sales: str = "alice", backend: str = "") -> str:
        path = self.prefix / f"{name}.mailspec"
        path.write_text(SPEC.format(more=more, sales=sales, backend=backend, **self.hashes))
        make_keys(check([str(path)]).spec, self.layout.path(DEFAULT_KEYS))  # as a user runs `mailspec keys`
        if not (self.prefix / "tls").exists():
            make_certificates(check([str(path)]).spec, str(self.prefix / "tls"))
            for source, target, mode in (("server.crt", "/etc/ssl/certs/ssl-cert-snakeoil.pem", 0o644),
                                         ("server.key", "/etc/ssl/private/ssl-cert-snakeoil.key", 0o600)):
                live = Path(self.layout.path(target))
                live.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.prefix / "tls" / source, live)
                live.chmod(mode)
        return str(path)

    def mailspec(self, *args: str, check_rc: bool = True, ports: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "mailspec", *args, *self.location,
                               *(self.ports if ports else ())], capture_output=True, text=True, timeout=300)
        if check_rc:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def current(self) -> int | None:
        return Store(self.layout).current()

    def send(self, to: str, subject: str) -> int:
        with smtplib.SMTP("127.0.0.1", self.layout.ports.smtp, timeout=30) as client:
            try:
                client.sendmail("friend@outside.example", [to], f"Subject: {subject}\r\nMessage-ID: <{subject}@t>\r\n"
                                f"\r\nhello\r\n")
            except smtplib.SMTPRecipientsRefused as refused:
                return refused.recipients[to][0]
        return 250

    def delivered(self, user: str) -> list[str]:
        root = self.prefix / "var/mail/vhosts/example.com" / user
        return [p.read_text(errors="replace") for p in root.rglob("*") if p.parent.name in ("new", "cur")]

    def wait_for(self, user: str, subject: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(re.search(rf"^Subject: {re.escape(subject)}\r?$", m, re.M) for m in self.delivered(user)):
            assert time.monotonic() < deadline, f"{subject} never reached {user}; the queue: " + \
                subprocess.run(["postqueue", "-c", self.layout.postfix_dir, "-j"], capture_output=True,
                               text=True).stdout + subprocess.run("ps -eo pid,lstart,args | grep [q]mgr", shell=True,
                                                                  capture_output=True, text=True).stdout + \
                "".join(line for line in open(self.layout.postfix_log) if "qmgr" in line or "reload" in line
                        or "postkick" in line)[-3000:]
            time.sleep(0.1)

    def stop(self) -> None:
        HostServer(None, self.prefix / "deploy", self.layout, self.prefix / "tls").stop()


def relocated():
    """The body of a `host` fixture: a Host, stopped and removed afterwards."""
    need_root()
    for tool in ("postfix", "dovecot", "doveadm", "sievec", "postmap", "postconf", "doveconf"):
        need_tool(tool)
    found = Host(Path(tempfile.mkdtemp(prefix="sw", dir="/tmp")))
    yield found
    found.stop()
    logs = "".join(Path(found.layout.path(p)).read_text(errors="replace")
                   for p in ("/var/log/postfix.log", "/var/log/dovecot.log") if Path(found.layout.path(p)).exists())
    shutil.rmtree(found.prefix, ignore_errors=True)
    assert not [line for line in logs.splitlines() if " fatal:" in line or " panic:" in line or "Fatal:" in line], logs


def verified(store: Store, number: int) -> None:
    """Generation `number` is complete: its installed copies are what its MANIFEST says."""
    generation = store.read(number)
    assert generation is not None, f"generation {number} has no meta.json"
    deploy = Path(generation.path) / "deploy"
    for path, digest in read_manifest(str(deploy)).items():
        assert hashlib.sha256((deploy / path).read_bytes()).hexdigest() == digest, path
    for path in ("postfix/main.cf", "postfix/virtual_mailboxes", "dovecot/dovecot.conf"):
        installed = Path(generation.path) / "etc" / path
        assert installed.read_bytes() == (deploy / path).read_bytes(), path


def tamper(deploy: str, path: str, text: str) -> None:
    """Change a compiled file as a bug in mailspec could, MANIFEST included."""
    old = hashlib.sha256(Path(deploy, path).read_bytes()).hexdigest()
    Path(deploy, path).write_text(text)
    new = hashlib.sha256(text.encode()).hexdigest()
    manifest = Path(deploy, "MANIFEST")
    manifest.write_text(manifest.read_text().replace(old, new))


def compiled(path: str, layout: Layout) -> tuple[Request, str]:
    """A spec compiled as `switch` does: its request and its deploy tree."""
    from mailspec.pipeline import load_and_lower

    result, bundle = compile_to(load_and_lower([path]), layout)
    assert result.ok
    return Request.from_json(Path(bundle, REQUEST).read_text()), os.path.join(bundle, "deploy")


