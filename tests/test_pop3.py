"""`pop3`: the real Dovecot's POP3, reading mail delivered a moment before: POP3S on
its own port, and the plain port only after STLS, with no password accepted before."""

from __future__ import annotations

import poplib
import sys

import pytest
from conftest import need_root, need_tool
from hosttier import hashed, message, serve

from mailspec.hostrun import outside_namespace

PASSWORD = "alice-Secret-1"
SPEC = """
server {{
  hostname mail.example.com
  pop3 yes
}}
domain example.com {{ mailbox alice {{ password "{hash}" }} }}
"""


@pytest.fixture(scope="module")
def site():
    with serve(lambda backend: SPEC.format(hash=hashed(PASSWORD)), "files", None, "pop3") as found:
        yield found


class Pop3s(poplib.POP3_SSL):
    """POP3S to loopback that verifies the certificate as the server's name."""

    def _create_socket(self, timeout):
        return self.context.wrap_socket(poplib.POP3._create_socket(self, timeout), server_hostname=HOSTNAME)


HOSTNAME = "mail.example.com"
# From outside the trusted networks (Dovecot counts loopback as secure): the reply to
# USER and PASS before STLS, then after it.
OUTSIDE = r"""
import poplib, ssl, sys
host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = poplib.POP3(host, port, timeout=15)
try:
    client.user("alice@example.com")
    print(client.pass_(password).decode())
except poplib.error_proto as error:
    print(error.args[0].decode())
client.close()
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
client = poplib.POP3(host, port, timeout=15)
client.stls(context=context)
client.user("alice@example.com")
print(client.pass_(password).decode())
client.quit()
"""


def deliver(site, subject: str) -> None:
    with site.smtp() as client:
        client.sendmail("someone@outside.example", ["alice@example.com"],
                        message(subject, "someone@outside.example", "alice@example.com"))
    site.wait_for("alice", f"Subject: {subject}")


def subjects(client: poplib.POP3) -> list[str]:
    count, _ = client.stat()
    found = []
    for number in range(1, count + 1):
        lines = client.retr(number)[1]
        found += [line.decode().split(": ", 1)[1] for line in lines if line.startswith(b"Subject: ")]
    return found


def test_pop3s_reads_what_was_just_delivered(site):
    deliver(site, "by pop3s")
    client = Pop3s("127.0.0.1", site.ports.pop3s, context=site.tls(), timeout=15)
    try:
        client.user("alice@example.com")
        client.pass_(PASSWORD)
        assert "by pop3s" in subjects(client)
    finally:
        client.quit()


def test_port_110_takes_a_password_only_after_stls(site):
    deliver(site, "by stls")
    secured = poplib.POP3("127.0.0.1", site.ports.pop3, timeout=15)
    try:
        assert "STLS" in secured.capa()
        secured.host = HOSTNAME  # the name STLS verifies
        secured.stls(context=site.tls())
        secured.user("alice@example.com")
        secured.pass_(PASSWORD)
        assert "by stls" in subjects(secured)
    finally:
        secured.quit()


def test_from_outside_no_password_is_taken_before_stls(site):
    need_root()
    need_tool("ip")
    with outside_namespace() as outside:
        done = outside([sys.executable, "-c", OUTSIDE, outside.host, str(site.ports.pop3), PASSWORD],
                       capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.strip().splitlines()
    assert before.startswith("-ERR") and "plaintext" in before.lower(), before
    assert after.startswith("+OK"), after
