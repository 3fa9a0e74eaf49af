"""`tls { acme … }` with the real certbot, against pebble (the ACME test CA) on
loopback: the switch starts the daemons on a self-signed stand-in, certbot proves the
names over HTTP through the generated nginx, and its hook installs the certificate where
Postfix, Dovecot and nginx read it. Clients that trust only pebble's root verify it."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time

import attrs
import pytest
from cryptography import x509
from dnsserver import Nsd
from hosttier import hashed, serve
from needs import need_tool
from pebble import Pebble

from mailspec.dns.zone import standalone
from mailspec.hostrun import HostRunError, free_ports
from mailspec.layout import Ports

# What DNS points at the server (`mailspec dns`): the names the certificate must have.
NAMES = {"mail.example.com", "autoconfig.example.com", "autodiscover.example.com"}
SPEC = """
server {
  hostname mail.example.com
  tls { acme { email postmaster@example.com; directory "DIRECTORY" } }
  BACKEND
}
domain example.com { mailbox alice { password "HASH" } }
"""


@pytest.fixture(scope="module")
def acme(tmp_path_factory):
    for tool in ("certbot", "pebble", "nsd"):
        need_tool(tool)
    base = tmp_path_factory.mktemp("acme")
    ports = Ports(*free_ports(len(attrs.fields(Ports))))
    body = "".join(f"{name.removesuffix('.example.com')} IN A 127.0.0.1\n" for name in sorted(NAMES))
    nsd = Nsd(base / "dns", {"example.com.": standalone("example.com.", body)})
    pebble = Pebble(base / "pebble", nsd.address, ports.http)
    os.environ["REQUESTS_CA_BUNDLE"] = pebble.listener_ca  # certbot's client trusts pebble's listener
    try:
        text = SPEC.replace("DIRECTORY", pebble.directory).replace("HASH", hashed("alice-Secret-1"))
        with serve(lambda backend: text.replace("BACKEND", backend), "files", None, "acme", ports) as running:
            yield running, pebble
    finally:
        del os.environ["REQUESTS_CA_BUNDLE"]
        pebble.stop()
        nsd.stop()


def served_certificate(port: int, name: str, context: ssl.SSLContext) -> x509.Certificate:
    """The certificate a TLS listener on loopback serves for `name` (SNI), verified by `context`."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw, \
            context.wrap_socket(raw, server_hostname=name) as stream:
        return x509.load_der_x509_certificate(stream.getpeercert(binary_form=True))


def test_the_certificate_comes_from_the_acme_ca_for_every_name_dns_points_here(acme):
    """On submission, IMAP and the web site, for clients that trust pebble's root only."""
    running, pebble = acme
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=pebble.root())
    ports = running.ports
    for port, name in ((ports.submissions, "mail.example.com"), (ports.imaps, "mail.example.com"),
                       (ports.https, "autoconfig.example.com"), (ports.https, "autodiscover.example.com")):
        certificate = served_certificate(port, name, context)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(names.get_values_for_type(x509.DNSName)) == NAMES, (port, name)


def test_a_second_switch_keeps_the_certificate(acme):
    """certbot asks the CA again only when the names change or renewal is due."""
    running, pebble = acme
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=pebble.root())
    before = served_certificate(running.ports.imaps, "mail.example.com", context)
    running.server.install()
    assert served_certificate(running.ports.imaps, "mail.example.com", context).serial_number == before.serial_number


def test_a_renewal_is_served_at_once(acme):
    """certbot's own renewal (its timer's `certbot renew`), forced: the deploy hook it
    recorded installs the new certificate and reloads the daemons, with no switch."""
    running, pebble = acme
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=pebble.root())
    ports, layout = running.ports, running.layout
    before = {port: served_certificate(port, "mail.example.com", context).serial_number
              for port in (ports.submissions, ports.imaps, ports.https)}
    done = subprocess.run(["certbot", "renew", "--force-renewal", "--non-interactive", "--no-random-sleep-on-renew",
                           "--config-dir", layout.letsencrypt_dir, "--work-dir", layout.path("/var/lib/letsencrypt"),
                           "--logs-dir", layout.path("/var/log/letsencrypt")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    for port, serial in before.items():
        deadline = time.monotonic() + 15  # a reloaded master hands new connections to new workers
        while served_certificate(port, "mail.example.com", context).serial_number == serial:
            assert time.monotonic() < deadline, f"port {port} still serves the old certificate"
            time.sleep(0.2)


def test_a_ca_that_cannot_be_reached_leaves_the_new_generation_serving_the_stand_in():
    """The switch says what failed and that the generation is current; nothing is left running."""
    text = SPEC.replace("DIRECTORY", f"https://127.0.0.1:{free_ports(1)[0]}/dir").replace(
        "HASH", hashed("alice-Secret-1"))
    with pytest.raises(HostRunError) as refused:
        with serve(lambda backend: text.replace("BACKEND", backend), "files", None, "acme_refused"):
            pass
    message = str(refused.value)
    assert message.startswith("generation 1 is current, but getting the certificate from the ACME CA failed"), message
    assert "the daemons go on serving the certificate they had" in message
