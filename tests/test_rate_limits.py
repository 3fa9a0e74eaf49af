"""`rate_limits` on port 25, in the real Postfix's anvil: a server of its own, since the
limit counts every connection a client makes (the host tier's outside client makes
dozens)."""

from __future__ import annotations

import smtplib

import pytest
from hosttier import hashed, serve

SPEC = """
server {{
  hostname mail.example.com
  rate_limits {{ connection_rate 5 }}  # a minute, per client outside the trusted networks
}}
domain example.com {{ mailbox alice {{ password "{hash}" }} }}
"""


@pytest.fixture(scope="module")
def site():
    with serve(lambda backend: SPEC.format(hash=hashed("alice-Secret-1")), "files", None, "rates") as found:
        yield found


def greeting(site, source: str) -> int:
    client = smtplib.SMTP(local_hostname="client.test", timeout=60, source_address=(source, 0))
    try:
        return client.connect("127.0.0.1", site.ports.smtp)[0]
    finally:
        client.close()


def test_port_25_refuses_a_client_over_its_connection_rate(site):
    """The sixth connection in a minute from 127.0.0.4 is refused with 421; 127.0.0.1,
    the trusted network, is never limited."""
    assert [greeting(site, "127.0.0.4") for _ in range(6)] == [220] * 5 + [421]
    assert [greeting(site, "127.0.0.1") for _ in range(8)] == [220] * 8
