"""Greylisting and each login's hourly message limit, in the real rspamd with mailspec's
own Redis (both keep their state there), behind the real Postfix. A server of its own:
both count what they see, so other tests' mail would move the counts.

The outside client is a network namespace outside the trusted networks; 127.0.0.1 is
the trusted network."""

from __future__ import annotations

import grp
import json
import os
import smtplib
import stat
import sys
import time
from pathlib import Path

import pytest
from conftest import need_tool
from hosttier import hashed, message, redis_cli, serve

from mailspec.switch.activate import stored_redis_password

DELAY = 8  # seconds: the spec's greylist_delay
PER_HOUR = 3
PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2"}
SPEC = f"""
server {{{{
  hostname mail.example.com
  spam {{{{ greylist yes; greylist_delay {DELAY}s }}}}
  rate_limits {{{{ messages_per_hour {PER_HOUR} }}}}
}}}}
domain example.com {{{{
  mailbox alice {{{{ password "{{alice}}" }}}}
  mailbox bob {{{{ password "{{bob}}" }}}}
}}}}
domain example.net {{{{
  spam {{{{ greylist no }}}}
  mailbox carol {{{{ password "{{bob}}" }}}}
}}}}
"""

# Sends one message from inside the namespace: prints [code, reply] of the refusal, or
# [250, ""]. With a user: over submission (STARTTLS, logged in).
SENDER = """
import json, smtplib, ssl, sys
host, port, sender, recipient, subject, user, password = sys.argv[1:8]
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
text = (f"From: {sender}\\r\\nTo: {recipient}\\r\\nSubject: {subject}\\r\\n"
        f"Message-ID: <{subject}@t>\\r\\n\\r\\nhello\\r\\n")
try:
    with smtplib.SMTP(host, int(port), local_hostname="outside.test", timeout=30) as client:
        if user:
            client.starttls(context=context)
            client.login(user, password)
        client.sendmail(sender, [recipient], text)
    print(json.dumps([250, ""]))
except (smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused) as error:
    code, reply = (error.smtp_code, error.smtp_error) if isinstance(error, smtplib.SMTPDataError) else \\
        next(iter(error.recipients.values()))
    print(json.dumps([code, reply.decode(errors="replace")]))
"""


@pytest.fixture(scope="module")
def site():
    hashes = {user: hashed(password) for user, password in PASSWORDS.items()}
    with serve(lambda backend: SPEC.format(**hashes), "files", None, "greylist") as found:
        yield found


def send_from_outside(site, outside, recipient: str, subject: str, user: str = "") -> tuple[int, str]:
    port = site.ports.submission if user else site.ports.smtp
    sender = f"{user}@example.com" if user else "someone@outside.example"
    done = outside([sys.executable, "-c", SENDER, outside.host, str(port), sender, recipient, subject,
                    f"{user}@example.com" if user else "", PASSWORDS.get(user, "")],
                   capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    code, reply = json.loads(done.stdout)
    return code, reply


def test_redis_is_mailspecs_own_and_asks_for_its_password(site):
    """The instance runs on the layout's port, and answers only a client that logs in
    with the password the switch made (rspamd does: greylisting below works through it).
    The password is in a file that only Redis's group can read, and not in the deploy."""
    need_tool("redis-cli")
    refused = redis_cli(site, "ping", log_in=False)
    assert "NOAUTH" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    ping = redis_cli(site, "ping")
    assert ping.stdout.strip() == "PONG", ping.stdout + ping.stderr
    assert redis_cli(site, "config", "get", "dir").stdout.split()[1] == site.layout.redis_db
    for path, group in ((site.layout.redis_password, "redis"), (site.layout.rspamd_redis_password, "_rspamd")):
        found = os.stat(path)
        assert stat.S_IMODE(found.st_mode) == 0o640 and grp.getgrgid(found.st_gid).gr_name == group, path
    password = stored_redis_password(site.layout)
    assert password and password in Path(site.layout.rspamd_redis_password).read_text()
    generations = [path for path in Path(site.layout.state_dir).rglob("*") if path.is_file()]
    assert generations and not [path for path in generations if password.encode() in path.read_bytes()]


def test_a_new_outside_sender_is_greylisted_until_the_delay_has_passed(site, outside_client):
    """The first attempt and a retry within the delay get 451; the retry after it is
    delivered. A domain with `greylist no` takes the same client's mail at once."""
    first = send_from_outside(site, outside_client, "alice@example.com", "grey-1")
    assert first[0] == 451, first
    assert "try again later" in first[1].lower(), first
    started = time.monotonic()
    assert send_from_outside(site, outside_client, "alice@example.com", "grey-1")[0] == 451  # too early
    assert send_from_outside(site, outside_client, "carol@example.net", "grey-carol") == (250, "")
    time.sleep(max(0.0, DELAY + 2 - (time.monotonic() - started)))
    assert send_from_outside(site, outside_client, "alice@example.com", "grey-1") == (250, "")
    assert "grey-1" in site.wait_for("alice", "Subject: grey-1")


def test_logins_and_the_trusted_network_are_never_greylisted(site, outside_client):
    assert send_from_outside(site, outside_client, "alice@example.com", "grey-login", user="bob") == (250, "")
    with site.smtp() as client:  # 127.0.0.1: the trusted network
        client.sendmail("someone@outside.example", ["alice@example.com"],
                        message("grey-trusted", "someone@outside.example", "alice@example.com"))
    site.wait_for("alice", "Subject: grey-login")
    site.wait_for("alice", "Subject: grey-trusted")


def test_a_login_over_its_hourly_limit_is_tempfailed_and_others_are_not(site):
    """alice sends PER_HOUR messages, and the next one gets a 4xx; bob, under his own
    limit, still sends. Sent from 127.0.0.1: the limit is per login, wherever it is."""
    refusals = []
    for number in range(PER_HOUR + 1):
        subject = f"rate-alice-{number}"
        try:
            with site.submission("alice") as client:
                client.sendmail("alice@example.com", ["carol@example.net"],
                                message(subject, "alice@example.com", "carol@example.net"))
            refusals.append(None)
        except smtplib.SMTPDataError as error:
            refusals.append((error.smtp_code, error.smtp_error.decode(errors="replace")))
    assert refusals[:PER_HOUR] == [None] * PER_HOUR, refusals
    code, reply = refusals[PER_HOUR]
    assert 400 <= code < 500 and "ratelimit" in reply.lower(), refusals
    with site.submission("bob") as client:
        client.sendmail("bob@example.com", ["carol@example.net"],
                        message("rate-bob", "bob@example.com", "carol@example.net"))
