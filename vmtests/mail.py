"""Mail clients for the scenarios: SMTP and submission with TLS and AUTH, and IMAP,
through a machine's forwarded ports, verifying the server certificate by its name."""

from __future__ import annotations

import email
import email.policy
import imaplib
import smtplib
import ssl

TIMEOUT = 30


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    if ca_file is None:  # the image's own snakeoil certificate: encrypt, but do not verify
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file)


def message(subject: str, sender: str, to: str, body: str = "hello", message_id: str | None = None) -> str:
    identifier = message_id or subject.replace(" ", ".").replace("@", ".")
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{identifier}@vmtest>\r\n"
            f"\r\n{body}\r\n")


def smtp_client(port: int, server_name: str, ca_file: str | None, tls: str = "none",
                login: tuple[str, str] | None = None) -> smtplib.SMTP:
    """A client on 127.0.0.1:port. tls is "none", "starttls" or "implicit"; the certificate
    is checked against `server_name` (the connection itself goes to loopback)."""
    context = tls_context(ca_file)
    if tls == "implicit":
        client = smtplib.SMTP_SSL(local_hostname="client.vmtest", timeout=TIMEOUT, context=context)
    else:
        client = smtplib.SMTP(local_hostname="client.vmtest", timeout=TIMEOUT)
    client._host = server_name  # the name TLS verifies
    client.connect("127.0.0.1", port)
    client.ehlo()
    if tls == "starttls":
        client.starttls(context=context)
        client.ehlo()
    if login is not None:
        client.login(*login)
    return client


def send_mail(port: int, server_name: str, ca_file: str | None, sender: str, recipients: list[str],
              text: str, tls: str = "none", login: tuple[str, str] | None = None) -> None:
    """Send one message; smtplib raises on any refused recipient."""
    with smtp_client(port, server_name, ca_file, tls, login) as client:
        refused = client.sendmail(sender, recipients, text)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)


def imap_client(port: int, server_name: str, ca_file: str | None, login: tuple[str, str]) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", port, timeout=TIMEOUT)
    client.host = server_name
    client.starttls(ssl_context=tls_context(ca_file))
    client.login(*login)
    return client


def fetch_mail(port: int, server_name: str, ca_file: str | None, login: tuple[str, str]) -> dict[str, list]:
    """Every message of every folder: {folder: [email.message.EmailMessage]}."""
    client = imap_client(port, server_name, ca_file, login)
    try:
        found: dict[str, list] = {}
        status, folders = client.list()
        for line in folders if status == "OK" else []:
            name = line.decode().rsplit(' "', 1)[-1].rstrip('"') if line.decode().endswith('"') \
                else line.decode().rsplit(" ", 1)[-1]
            if client.select(f'"{name}"', readonly=True)[0] != "OK":
                continue
            status, numbers = client.search(None, "ALL")
            found[name] = []
            for number in numbers[0].split():
                status, data = client.fetch(number, "(RFC822)")
                found[name].append(email.message_from_bytes(data[0][1], policy=email.policy.default))
        return found
    finally:
        client.logout()


def move_message(port: int, server_name: str, ca_file: str | None, login: tuple[str, str], subject: str,
                 source: str, target: str) -> None:
    """Move the one message with `subject` from folder `source` to `target`, as a mail
    client does (IMAP MOVE)."""
    client = imap_client(port, server_name, ca_file, login)
    try:
        client.select(f'"{source}"')
        found = client.uid("SEARCH", None, "SUBJECT", f'"{subject}"')[1][0].split()
        if len(found) != 1:
            raise AssertionError(f"{len(found)} messages with subject {subject!r} in {source}")
        status, reply = client.uid("MOVE", found[0], f'"{target}"')
        if status != "OK":
            raise AssertionError(f"MOVE to {target} failed: {reply}")
    finally:
        client.logout()
