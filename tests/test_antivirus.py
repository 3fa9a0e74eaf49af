"""`antivirus`: mailspec's clamd behind rspamd's antivirus module, behind the real
Postfix. freshclam cannot download signatures here, so the test writes a signature
database of its own: one hash signature (.hdb) for the EICAR test file, in the
directory where freshclam keeps the real ones, which clamd loads as it would those."""

from __future__ import annotations

import base64
import hashlib
import smtplib
import socket
import struct
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import need_tool
from hosttier import hashed, serve

# The EICAR test file (68 bytes), which every antivirus detects; written in two halves so
# that a scanner reading this source does not take it for one.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR" + b"-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE = "Mailspec.Test.EICAR"
SPEC = """
server {{
  hostname mail.example.com
  antivirus yes
}}
domain example.com {{ mailbox alice {{ password "{hash}" }} }}
"""


def signatures(layout) -> None:
    """The test's own signature database: `md5:size:name`, clamd's .hdb format."""
    database = Path(layout.clamav_db)
    database.mkdir(parents=True, exist_ok=True)
    (database / "mailspec-test.hdb").write_text(f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:{SIGNATURE}\n")


@pytest.fixture(scope="module")
def site():
    need_tool("clamd")
    with serve(lambda backend: SPEC.format(hash=hashed("alice-Secret-1")), "files", None, "antivirus",
               provide=signatures) as found:
        yield found


def with_attachment(subject: str, data: bytes) -> str:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "someone@outside.example", "alice@example.com", subject
    message["Message-ID"] = f"<{subject}@t>"
    message.set_content("See the attachment.")
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename="file.com")
    return message.as_string()


def send(site, text: str) -> str | None:
    try:
        with site.smtp() as client:
            client.sendmail("someone@outside.example", ["alice@example.com"], text)
    except smtplib.SMTPDataError as error:
        return f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}"
    return None


def scanned(port: int, data: bytes) -> str:
    """clamd's answer for `data` (its INSTREAM command, as rspamd sends it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(b"zINSTREAM\0" + struct.pack(">I", len(data)) + data + struct.pack(">I", 0))
        return connection.makefile("rb").read().rstrip(b"\0").decode()


def test_clamd_is_mailspecs_own_and_has_the_tests_signature(site):
    assert scanned(site.ports.clamd, EICAR) == f"stream: {SIGNATURE}.UNOFFICIAL FOUND"
    assert scanned(site.ports.clamd, b"hello") == "stream: OK"


def test_a_virus_is_refused_at_data_and_a_clean_attachment_is_delivered(site):
    refused = send(site, with_attachment("infected", EICAR))
    assert refused is not None and refused.startswith("554") and SIGNATURE in refused, refused
    assert send(site, with_attachment("clean", base64.b64encode(EICAR[::-1]))) is None
    site.wait_for("alice", "Subject: clean")
    assert not any("Subject: infected" in m for m in site.messages("alice"))
