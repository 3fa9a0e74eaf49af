"""Spam through the whole real path: Postfix, rspamd as its milter, LMTP to Dovecot and
the server-wide Sieve rule. A message between the spec's `mark` and `reject` scores
lands in Junk with rspamd's X-Spam-Status, one below it in INBOX, and one above it (or
GTUBE) is refused at DATA. The test's own rspamd symbol (test_rspamd.SCORE_RULE) adds
the score a message asks for; which action a total gets is rspamd's decision."""

from __future__ import annotations

import re
import smtplib
import subprocess
import time
from pathlib import Path

import pytest
from hosttier import hashed, message, redis_cli, serve
from test_rspamd import GTUBE, SCORE_RULE

SPEC = """
server {{
  hostname mail.example.com
  spam {{ mark 6; reject 15 }}
  filters {{ spam_folder Junk }}
}}
domain example.com {{ mailbox alice {{ password "{hash}" }} }}
"""


def send(site, subject: str, score: float | None = None, body: str = "hello") -> str | None:
    """None if accepted, else the refusal; a tempfail while rspamd restarts is retried."""
    text = message(subject, "someone@outside.example", "alice@example.com", body)
    if score is not None:
        text = f"X-Test-Score: {score}\r\n" + text
    deadline = time.monotonic() + 60
    while True:
        try:
            with site.smtp() as client:
                client.sendmail("someone@outside.example", ["alice@example.com"], text)
            return None
        except smtplib.SMTPDataError as error:
            if error.smtp_code >= 500 or time.monotonic() > deadline:
                return f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}"
            time.sleep(0.5)


def status(text: str) -> tuple[str, float]:
    found = re.search(r"^X-Spam-Status: (Yes|No), score=(-?[\d.]+)", text, re.MULTILINE)
    assert found, text[:2000]
    return found.group(1), float(found.group(2))


def wait_for_the_rule(site, timeout: float = 120) -> None:
    """Until rspamd's restarted workers have the test's symbol."""
    probe = Path(site.prefix, "probe.eml")
    probe.write_text("X-Test-Score: 1\r\nFrom: a@b.example\r\nSubject: probe\r\n\r\nhi\r\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(["rspamc", "-h", f"127.0.0.1:{site.ports.rspamd_controller}", str(probe)],
                              capture_output=True, text=True)
        if "TEST_SCORE" in done.stdout:
            return
        time.sleep(0.5)
    raise AssertionError(f"rspamd never loaded the test's rule:\n{done.stdout}{done.stderr}")


@pytest.fixture(scope="module")
def site():
    with serve(lambda backend: SPEC.format(hash=hashed("alice-Secret-1")), "files", None, "spam") as found:
        rules = Path(found.layout.rspamd_dir, "local.d", "rspamd.lua")
        rules.write_text(SCORE_RULE)
        pid = Path(found.layout.rspamd_pid).read_text().split()[0]
        subprocess.run(["kill", "-HUP", pid], check=True)
        wait_for_the_rule(found)
        yield found


def test_marked_spam_goes_to_junk_and_the_rest_to_the_inbox(site):
    base = None
    for wanted in (0, 3, 6, 9):
        assert send(site, f"scored {wanted}", wanted) is None
        folder_text = None
        deadline = time.monotonic() + 30
        while folder_text is None and time.monotonic() < deadline:
            for folder in ("", "Junk"):
                if any(f"scored {wanted}" in m for m in site.messages("alice", folder)):
                    folder_text = folder, next(m for m in site.messages("alice", folder) if f"scored {wanted}" in m)
            time.sleep(0.1)
        assert folder_text is not None, site.server.logs()[-3000:]
        folder, text = folder_text
        verdict, score = status(text)
        base = score - wanted if base is None else base
        assert (verdict == "Yes") is (score >= 6), (wanted, verdict, score)
        assert (folder == "Junk") is (score >= 6), (wanted, folder, score)
    assert base < 6, f"a plain message already scores {base}: the test cannot put one below the mark"


def test_spam_above_the_reject_score_and_gtube_are_refused_at_data(site):
    refused = send(site, "scored 20", 20)
    assert refused is not None and refused.startswith("554"), refused
    refused = send(site, "gtube", body=GTUBE)
    assert refused is not None and refused.startswith("554"), refused
    assert not any("scored 20" in m or "Subject: gtube" in m
                   for folder in ("", "Junk") for m in site.messages("alice", folder))


# Enough words for rspamd's bayes, which skips short texts.
LETTER = " ".join(f"word{n} meeting invoice schedule delivery parcel" for n in range(12))


def learned(site) -> dict[str, int]:
    """{spam: n, ham: n}: the messages rspamd's bayes has learned as each, as it counts
    them in Redis (`rspamc stat` shows the same counts, refreshed only every minute)."""
    counts = {}
    for kind in ("spam", "ham"):
        shown = redis_cli(site, "hget", "RS", f"learns_{kind}")
        assert shown.returncode == 0, shown.stderr
        counts[kind] = int(shown.stdout.strip() or 0)
    return counts


def test_moving_into_the_spam_folder_and_out_of_it_teaches_rspamd(site):
    """Over IMAP, as a mail client does: a message moved into Junk is learned as spam,
    one moved out of it into INBOX as ham, and one moved from Junk to the Trash is not
    learned as ham (IMAPSieve, rspamc through rspamd's controller, counts in Redis)."""
    for subject in ("learn-a", "learn-b"):
        assert send(site, subject, body=f"{subject} {LETTER}") is None
        site.wait_for("alice", f"Subject: {subject}")
    client = site.imap("alice")

    def move(subject: str, source: str, target: str) -> None:
        client.select(source)
        found = client.uid("SEARCH", None, "SUBJECT", subject)[1][0].split()
        assert len(found) == 1, (subject, source, found)
        assert client.uid("MOVE", found[0], target)[0] == "OK"

    try:
        start = learned(site)
        move("learn-a", "INBOX", "Junk")
        after_spam = learned(site)
        assert after_spam["spam"] == start["spam"] + 1, (start, after_spam)
        assert after_spam["ham"] == start["ham"]
        move("learn-a", "Junk", "INBOX")
        after_ham = learned(site)
        assert after_ham["ham"] == start["ham"] + 1, (start, after_ham)
        move("learn-b", "INBOX", "Junk")
        move("learn-b", "Junk", "Trash")
        last = learned(site)
        assert last["ham"] == after_ham["ham"], (after_ham, last)
        assert last["spam"] == after_ham["spam"] + 1, (after_ham, last)
    finally:
        client.logout()
