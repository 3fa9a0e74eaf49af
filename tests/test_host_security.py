"""The compiled server's defences, held by the real Postfix and Dovecot for both backends,
probed from 127.0.0.3: a loopback address that must be untrusted (issue 11, items 5-9).
127.0.0.1 stays trusted, so each refusal is paired with the trusted path it must not break."""

from __future__ import annotations

import email
import smtplib
import socket
import subprocess
import time

import pytest
from hosttier import HOSTNAME

UNTRUSTED = "127.0.0.3"
TRUSTED = "127.0.0.1"


def client(running, port: int, source: str = UNTRUSTED, tls: str = "plain") -> smtplib.SMTP:
    """An SMTP client connecting from `source`: plain, after STARTTLS, or implicit TLS."""
    context = running.tls()
    if tls == "implicit":
        smtp = smtplib.SMTP_SSL(local_hostname="client.test", timeout=15, context=context,
                                source_address=(source, 0))
    else:
        smtp = smtplib.SMTP(local_hostname="client.test", timeout=15, source_address=(source, 0))
    smtp._host = HOSTNAME
    smtp.connect("127.0.0.1", port, source_address=(source, 0))
    smtp.ehlo()
    if tls == "starttls":
        smtp.starttls(context=context)
        smtp.ehlo()
    return smtp


def attempt(smtp: smtplib.SMTP, sender: str, recipient: str) -> int:
    """The first refusal (MAIL or RCPT), or the RCPT reply code."""
    code, _ = smtp.mail(sender)
    if code >= 400:
        return code
    code, _ = smtp.rcpt(recipient)
    smtp.rset()
    return code


LISTENERS = [("smtp", "plain"), ("smtp", "starttls"), ("submission", "starttls"), ("submissions", "implicit")]


@pytest.mark.parametrize(("listener", "tls"), LISTENERS)
def test_no_relay_for_an_untrusted_loopback_client(running, listener, tls):
    port = getattr(running.ports, listener)
    with client(running, port, tls=tls) as smtp:
        assert attempt(smtp, "someone@outside.example", "victim@elsewhere.example") >= 500


def test_trusted_networks_are_only_the_host_itself(running):
    with client(running, running.ports.smtp, source=TRUSTED) as smtp:  # 127.0.0.1 may relay
        assert attempt(smtp, "someone@outside.example", "victim@elsewhere.example") == 250
    for source in ("127.0.0.2", "127.0.0.3", "127.1.2.3"):  # the rest of 127.0.0.0/8 may not
        with client(running, running.ports.smtp, source=source) as smtp:
            assert attempt(smtp, "someone@outside.example", "victim@elsewhere.example") >= 500, source


@pytest.mark.parametrize("sender", ["ceo@example.com", "bob@example.com", "bob+x@example.net",
                                    "nobody@sub.example.com"])
def test_outsiders_may_not_send_as_our_domains_on_port_25(running, sender):
    with client(running, running.ports.smtp) as smtp:
        assert attempt(smtp, sender, "bob@example.com") >= 500
        assert attempt(smtp, "ceo@outside.example", "bob@example.com") == 250
        assert attempt(smtp, "", "bob@example.com") == 250  # bounces still arrive
    with client(running, running.ports.smtp, source=TRUSTED) as smtp:
        assert attempt(smtp, sender, "bob@example.com") == 250


def test_submission_refuses_the_null_sender(running):
    with running.submission("alice") as smtp:
        assert attempt(smtp, "", "bob@example.com") >= 500
        assert attempt(smtp, "alice@example.com", "bob@example.com") == 250


SMUGGLED = ("MAIL FROM:<ceo@outside.example>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
            "From: ceo@outside.example\r\nSubject: {subject}\r\n\r\nsmuggled\r\n.\r\n")


@pytest.mark.parametrize("ending", ["\n.\n", "\r\n.\n", "\n.\r\n"], ids=["lf-lf", "crlf-lf", "lf-crlf"])
def test_smtp_smuggling_never_delivers_a_second_message(running, ending):
    tag = f"smuggle-{ending.encode().hex()}-{running.ports.smtp}"
    with socket.create_connection(("127.0.0.1", running.ports.smtp), timeout=15,
                                  source_address=(UNTRUSTED, 0)) as raw:
        stream = raw.makefile("rwb")

        def reply() -> bytes:
            lines = []
            while True:
                line = stream.readline()
                lines.append(line)
                if not line or line[3:4] != b"-":
                    return b"".join(lines)

        reply()
        for command in ("EHLO outside.test", "MAIL FROM:<someone@outside.example>", "RCPT TO:<bob@example.com>",
                        "DATA"):
            stream.write(f"{command}\r\n".encode())
            stream.flush()
            reply()
        payload = (f"From: someone@outside.example\r\nSubject: {tag}-carrier\r\n\r\ncarrier{ending}"
                   + SMUGGLED.format(subject=f"{tag}-smuggled") + "QUIT\r\n")
        stream.write(payload.encode())
        stream.flush()
        while reply():  # read to the end: every reply the server gives
            pass
    deadline = time.monotonic() + 3  # enough for a delivery on loopback (about 30 ms)
    while time.monotonic() < deadline and len(subjects(running, tag)) < 2:
        time.sleep(0.1)
    found = subjects(running, tag)
    assert f"{tag}-smuggled" not in found and len(found) <= 1, found


def subjects(running, tag: str) -> list[str]:
    """The Subject headers (not body lines) of bob's messages that carry `tag`."""
    found = [email.message_from_string(m)["Subject"] or "" for m in running.messages("bob")]
    return [subject for subject in found if tag in subject]


def handshake(port: int, starttls: str | None, cipher: str | None) -> bool:
    """Whether `openssl s_client` completes a TLS 1.2 handshake (with `cipher`, if given)."""
    command = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-brief"]
    if starttls:
        command += ["-starttls", starttls]
    if cipher:
        command += ["-cipher", cipher]
    done = subprocess.run(command, input="Q\n", capture_output=True, text=True, timeout=30)
    return "CONNECTION ESTABLISHED" in done.stderr or "Protocol version" in done.stderr


@pytest.mark.parametrize("cipher", ["aNULL:@SECLEVEL=0", "eNULL:@SECLEVEL=0", "ADH:AECDH:@SECLEVEL=0",
                                    "3DES:@SECLEVEL=0", "RC4:@SECLEVEL=0"])
@pytest.mark.parametrize(("listener", "starttls"), [("smtp", "smtp"), ("submission", "smtp"),
                                                    ("submissions", None), ("imap", "imap"),
                                                    ("imaps", None)])
def test_anonymous_and_obsolete_tls_suites_are_refused(running, listener, starttls, cipher):
    port = getattr(running.ports, listener)
    assert handshake(port, starttls, None)  # the probe itself works
    assert not handshake(port, starttls, cipher)
