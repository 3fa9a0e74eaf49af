"""The compiled server at hosting-provider scale, run by the real daemons: with 3,000
domains, each with an alias domain, the certificate stays small and every TLS port
still does its handshake. With a name for each (6,001 names) the server never greeted."""

from __future__ import annotations

import imaplib
import os
import socket
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hosttier import HOSTNAME, hashed, serve

DOMAINS = 3000


@pytest.fixture(scope="module")
def many_domains():
    password = hashed("scale-secret")
    domains = "".join(f"domain d{n}.scale.example {{ also a{n}.scale.example; "
                      f'mailbox u {{ password "{password}" }} }}\n' for n in range(DOMAINS))
    with serve(lambda backend: f"server {{ hostname {HOSTNAME} }}\n{domains}", "files", None) as running:
        yield running


def test_the_certificate_stays_small_with_3000_domains(many_domains):
    chain = (many_domains.prefix / "tls" / "server.crt").read_bytes()
    certificate = x509.load_pem_x509_certificates(chain)[0]
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [HOSTNAME]
    assert len(certificate.public_bytes(Encoding.DER)) < 2048


def greeting_over_tls(running, port: int) -> bytes:
    """The first line of an implicit-TLS port, its certificate verified as HOSTNAME."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with running.tls().wrap_socket(raw, server_hostname=HOSTNAME) as tls:
            return tls.recv(200)


def test_every_tls_port_handshakes_with_3000_domains(many_domains):
    ports = many_domains.ports
    for port in (ports.smtp, ports.submission):
        with many_domains.smtp(port) as client:
            assert client.starttls(context=many_domains.tls())[0] == 220
            assert client.ehlo()[0] == 250
    imap = imaplib.IMAP4("127.0.0.1", ports.imap, timeout=15)
    imap.host = HOSTNAME  # the name TLS verifies
    assert imap.starttls(ssl_context=many_domains.tls())[0] == "OK"
    imap.logout()
    assert greeting_over_tls(many_domains, ports.submissions).startswith(b"220 ")
    assert greeting_over_tls(many_domains, ports.imaps).startswith(b"* OK")


def test_mailboxes_with_the_same_rules_share_one_compiled_script(tmp_path):
    """Install time was 93% `sievec` at 100k mailboxes, one run per script though most
    were alike: a script is now one file per distinct text, named by its hash."""
    from mailspec.pipeline import check, compile_files

    rules = 'sieve { if header "subject" contains "[SPAM]" { fileinto "Junk"; stop } }'
    mailboxes = "".join(f"  mailbox u{n} {{ {rules} }}\n" for n in range(50))
    spec = tmp_path / "spec.mailspec"
    spec.write_text(f"server {{ hostname {HOSTNAME} }}\ndomain example.com {{\n{mailboxes}"
                    '  mailbox other { sieve { if header "subject" contains "x" { discard } } }\n}\n')
    files = compile_files(check([str(spec)]))
    scripts = sorted(p for p in files if p.startswith("sieve/"))
    assert len(scripts) == 2
    used = {line.rsplit("=", 1)[1] for line in files["dovecot/users"].splitlines() if "sieve_before" in line}
    assert used == {f"/etc/dovecot/{p}" for p in scripts}


def smtpd_open_files(running) -> int:
    """The open files of the smtpd serving one connection on port 25."""
    with running.smtp() as client:
        client.ehlo("client.test")
        for pid in running.server.processes():
            if Path(f"/proc/{pid}/comm").read_text().strip() == "smtpd":
                return len(os.listdir(f"/proc/{pid}/fd"))
    raise AssertionError("no smtpd")


@pytest.mark.parametrize("backend", ["files", "mysql"])
@pytest.mark.parametrize("lists", [2, 2000])
def test_smtpd_open_files_do_not_grow_with_the_lists(lists, backend, mariadb):
    """Each list's senders were a file of their own, which every smtpd opened: 2,007
    open files at 2,000 lists, and `Too many open files` under a 1,024 limit."""
    password = hashed("scale-secret")
    domains = "".join(f"domain d{n}.lists.example {{ mailbox u {{ password \"{password}\" }}\n"
                      f"  list team {{ members u; post members }} }}\n" for n in range(lists))
    def spec(statement: str) -> str:
        return f"server {{ hostname {HOSTNAME}\n  {statement} }}\n{domains}"

    with serve(spec, backend, mariadb, f"lists_{lists}") as running:
        found = smtpd_open_files(running)
        with running.smtp() as client:  # and the lists still decide: a stranger is refused
            client.ehlo("client.test")
            client.mail("stranger@outside.example")
            assert client.rcpt(f"team@d{lists - 1}.lists.example")[0] == 554
            client.rset()
            client.mail(f"u@d{lists - 1}.lists.example")
            assert client.rcpt(f"team@d{lists - 1}.lists.example")[0] == 250
    assert found < 40, found


def test_a_list_whose_sender_inline_syntax_cannot_hold_keeps_its_file():
    password = hashed("scale-secret")
    text = (f"server {{ hostname {HOSTNAME} }}\ndomain d0.example {{\n"
            f"  mailbox \"o'neil\" {{ password \"{password}\" }}\n  mailbox bob {{ password \"{password}\" }}\n"
            "  list team { members \"o'neil\", bob; post members }\n}\n")
    with serve(lambda backend: text, "files", None) as running:
        main_cf = (Path(running.layout.postfix_dir) / "main.cf").read_text()
        assert "check_sender_access lmdb:$config_directory/list_team_d0_example_" in main_cf
        with running.smtp() as client:
            client.ehlo("client.test")
            for sender, code in (("stranger@outside.example", 554), ("o'neil@d0.example", 250)):
                client.mail(sender)
                assert client.rcpt("team@d0.example")[0] == code, sender
                client.rset()
