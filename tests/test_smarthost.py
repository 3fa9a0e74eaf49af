"""`relay_host … { login; password_file }`: all outgoing mail through a provider's
smarthost that wants AUTH over TLS. The provider is a second server compiled by
mailspec, whose submission port is exactly such a smarthost: the relay logs in there
over TLS that verifies the provider's certificate (its CA is the host's trust store,
under the prefix), and the provider's own log names the login. A wrong password leaves
the mail queued, and the log says the provider's reply."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hosttier import message, serve

from mailspec.backends.postfix import SYSTEM_CAS

RELAY_PASSWORD = "relay-Secret-7"
PROVIDER = """
server {{ hostname mail.provider.test }}
domain provider.test {{
  mailbox relay {{ password "{hash}"; send_as external alice@example.com }}
}}
"""
SITE = """
server {{
  hostname mail.example.com
  relay_host [127.0.0.1]:{port} {{
    login relay@provider.test
    password_file "/etc/mailspec/relay.password"
    tls_name mail.provider.test
  }}
}}
domain example.com {{ mailbox alice {{ password "{hash}" }} }}
"""


def hashed(password: str) -> str:
    return subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", password],
                          capture_output=True, text=True, check=True).stdout.strip()


def log_line(path: str, pattern: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in Path(path).read_text(errors="replace").splitlines() if re.search(pattern, line)]
        if found:
            return found[-1]
        time.sleep(0.3)
    raise AssertionError(f"no `{pattern}` in {path}:\n{Path(path).read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def provider():
    with serve(lambda backend: PROVIDER.format(hash=hashed(RELAY_PASSWORD)), "files", None, "provider") as found:
        yield found


def test_outgoing_mail_goes_through_the_smarthost_logged_in_over_verified_tls(provider):
    password_file = {}

    def provide(layout):  # what an administrator does: the password, and the provider's CA trusted
        path = Path(layout.path("/etc/mailspec/relay.password"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(RELAY_PASSWORD + "\n")
        path.chmod(0o600)
        password_file["path"] = path
        cas = Path(layout.path(SYSTEM_CAS))
        cas.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(provider.ca_file, cas)

    spec = SITE.format(port=provider.ports.submission, hash=hashed("alice-Secret-1"))
    with serve(lambda backend: spec, "files", None, "site", provide=provide) as site:
        assert not any(RELAY_PASSWORD in p.read_text(errors="replace")
                       for p in Path(site.prefix, "deploy").rglob("*") if p.is_file())
        with site.smtp(site.ports.submission) as client:
            client.starttls(context=site.tls())
            client.login("alice@example.com", "alice-Secret-1")
            client.sendmail("alice@example.com", ["friend@far.test"],
                            message("via the smarthost", "alice@example.com", "friend@far.test"))
        sent = log_line(site.layout.postfix_log, r"to=<friend@far\.test>.*status=sent")
        assert f"relay=127.0.0.1[127.0.0.1]:{provider.ports.submission}" in sent, sent
        log_line(site.layout.postfix_log, rf"Verified TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:"
                                          rf"{provider.ports.submission}")
        log_line(provider.layout.postfix_log, r"sasl_method=PLAIN, sasl_username=relay@provider\.test")

        # The provider changed the password: the switch rewrites the table, and the mail waits.
        password_file["path"].write_text("an-old-password\n")
        site.server.install()
        with site.smtp(site.ports.submission) as client:
            client.starttls(context=site.tls())
            client.login("alice@example.com", "alice-Secret-1")
            client.sendmail("alice@example.com", ["friend@far.test"],
                            message("after the change", "alice@example.com", "friend@far.test"))
        deferred = log_line(site.layout.postfix_log, r"status=deferred \(SASL authentication failed")
        assert "535" in deferred, deferred
