"""Scenarios about the defences against spam and abuse, decided by the real rspamd and
postscreen in front of the real Postfix: GTUBE refused at SMTP time, a logged-in user's
From header held to the addresses the login may send as, and port 25's clients screened
by the internet's (test) blocklist and the pregreet test; greylisting, learning from the
spam folder and each login's hourly limit, which keep their state in mailspec's Redis."""

from __future__ import annotations

import hashlib
import json
import smtplib
import time
from email.message import EmailMessage

import attrs

from mailspec import model
from mailspec.layout import DEFAULT as LAYOUT
from mailspec.semantics import owners
from mailspec.vmtests import log, network
from mailspec.vmtests.deploy import compile_model, install_deploy
from mailspec.vmtests.driver import Site
from mailspec.vmtests.scenarios.common import OUTSIDER, expect, mailboxes, receiving, unique

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def refused(send, *args, **options) -> str | None:
    """The server's reply if `send(*args, **options)` was refused at DATA, None if accepted."""
    try:
        send(*args, **options)
    except smtplib.SMTPDataError as error:
        return f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}"
    return None


def header_from_cases(spec: model.Spec) -> list[tuple[str, str, bool]]:
    """(login, header From, allowed): each login's own address, and for the first login
    with send_as rights, one of them and another user's address."""
    logins = [str(d.address(m.local)) for d, m in mailboxes(spec) if m.password is not None]
    cases = [(login, login, True) for login in logins[:1]]
    for domain, box in mailboxes(spec):
        login = str(domain.address(box.local))
        if box.password is None or not box.send_as:
            continue
        cases.append((login, str(box.send_as[0].address), True))
        other = next((o for o in logins if login not in owners(spec, o)), None)
        if other is not None:
            cases.append((login, other, False))
        break
    return cases


def spam(site: Site) -> None:
    spec, wrong = site.spec, []
    target = receiving(spec)[0]
    subject = unique("gtube")
    reply = refused(site.deliver, OUTSIDER, [target], subject, body=GTUBE)
    log.info(f"GTUBE on port 25: {reply or 'accepted'}")
    if reply is None or not reply.startswith("5"):
        wrong.append(f"GTUBE on port 25 to {target} was {reply or 'accepted'}, not refused with 5xx")
    for login, header_from, allowed in header_from_cases(spec):
        subject = unique(f"{login} with From {header_from}")
        reply = refused(site.submit, login, login, [target], subject, header_from=header_from)
        log.info(f"submission as {login}, From: {header_from}: {reply or 'accepted'}")
        if allowed and reply is not None:
            wrong.append(f"{login} with From {header_from} was refused: {reply}")
        elif not allowed and (reply is None or "5.7.1" not in reply):
            wrong.append(f"{login} with From {header_from} was {reply or 'accepted'}, not refused with 5.7.1")
        elif allowed:
            site.wait_for(target, subject)
    expect(not wrong, "spam and abuse:\n" + "\n".join(wrong))


def has_spam_checks(spec: model.Spec) -> str | None:
    if not receiving(spec):
        return "no mailbox receives mail"
    return None if len(header_from_cases(spec)) > 2 else "no login with send_as, and another user to forge"


SCREENED = r"""
import json, smtplib, socket, sys
source, recipient, early = json.load(sys.stdin)
if early:  # the EHLO before the banner has ended, then a transaction
    s = socket.create_connection((sys.argv[1], 25), timeout=60, source_address=(source, 0))
    s.sendall(b"EHLO early.test\r\n")
    f = s.makefile("rb")
    def reply():
        lines = [f.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(f.readline())
        return lines[-1].decode().strip()
    reply()
    for command in (b"MAIL FROM:<x@outside.test>\r\n", f"RCPT TO:<{recipient}>\r\n".encode()):
        s.sendall(command)
        last = reply()
    print(json.dumps(last))
else:
    client = smtplib.SMTP(sys.argv[1], 25, local_hostname="probe.outside.test", timeout=60,
                          source_address=(source, 0))
    client.ehlo()
    client.mail("x@outside.test")
    code, text = client.rcpt(recipient)
    if code == 250:
        client.data(f"From: x@outside.test\r\nTo: {recipient}\r\nSubject: screened from {source}\r\n\r\nhi\r\n")
    client.quit()
    print(json.dumps(f"{code} {text.decode()}"))
"""


def screened(site: Site) -> None:
    """postscreen on port 25, from the outside machine's three addresses: listed in the
    test blocklist (refused, never reaching smtpd), unlisted (delivered), and one that
    talks before the greeting (refused)."""
    target, outside = receiving(site.spec)[0], site.outside
    for address in (network.LISTED_ADDRESS, network.UNLISTED_ADDRESS):
        outside.succeed(f"ip addr add {address}/24 dev eth1 2> /dev/null || true")
    outside.write_file("/tmp/screened.py", SCREENED)
    wrong = []
    for source, early, accepted in ((network.LISTED_ADDRESS, False, False), (network.OUTSIDE_ADDRESS, False, True),
                                    (network.UNLISTED_ADDRESS, True, False)):
        case = json.dumps(json.dumps([source, target, early]))
        reply = json.loads(outside.succeed(
            f"echo {case} | python3 /tmp/screened.py {network.SERVER_ADDRESS}").strip().splitlines()[-1])
        log.info(f"port 25 from {source}{' (talking early)' if early else ''}: {reply}")
        if reply.startswith("250") != accepted or not accepted and not reply.startswith("550"):
            wrong.append(f"from {source}{' talking early' if early else ''}: {reply}")
    if not wrong:
        site.wait_for(target, f"screened from {network.OUTSIDE_ADDRESS}")
    logged = site.server.succeed("cat /var/log/postfix.log")
    if f"DNSBL rank 2 for [{network.LISTED_ADDRESS}]" not in logged:
        wrong.append("postscreen did not log the listed client's DNSBL rank")
    if any("/smtpd[" in line and "connect from" in line and f"[{network.LISTED_ADDRESS}]" in line
           for line in logged.splitlines()):
        wrong.append("the listed client reached smtpd")
    if "PREGREET" not in logged:
        wrong.append("postscreen did not log the early talker")
    expect(not wrong, "postscreen:\n" + "\n".join(wrong))


def has_postscreen(spec: model.Spec) -> str | None:
    screen = spec.server.postscreen
    if screen is None or not any(site.zone == network.DNSBL_ZONE for site in screen.dnsbl):
        return f"no postscreen asking {network.DNSBL_ZONE}"
    return None if receiving(spec) else "no mailbox receives mail"


# Enough words for rspamd's bayes, which skips short texts.
LETTER = " ".join(f"word{n} meeting invoice schedule delivery parcel" for n in range(12))
GREYLIST_DELAY = 20  # seconds
PER_HOUR = 5


def stateful(spec: model.Spec) -> model.Spec:
    """The spec with what keeps state in Redis: its last domain greylisted, learning from
    a spam folder, and an hourly limit per login."""
    server = spec.server
    last = spec.domains[-1]
    return attrs.evolve(
        spec,
        server=attrs.evolve(server, spam=attrs.evolve(server.spam, greylist_delay=GREYLIST_DELAY),
                            filters=attrs.evolve(server.filters, spam_folder=server.filters.spam_folder or "Junk"),
                            rate_limits=attrs.evolve(server.rate_limits, messages_per_hour=PER_HOUR)),
        domains=(*spec.domains[:-1], attrs.evolve(last, spam=attrs.evolve(last.spam, greylist=True))))


def redis_count(site: Site, field: str) -> int:
    # Logged in with the password the switch made: mailspec's Redis answers no one else.
    shown = site.server.succeed(f"REDISCLI_AUTH=$(cut -d' ' -f2 {LAYOUT.redis_password}) "
                                f"redis-cli -p {LAYOUT.ports.redis} hget RS {field}").strip()
    return int(shown or 0)


def rspamd_state(site: Site) -> None:
    """Greylisting, learning and the hourly limit, with the spec changed to use them and
    switched to: each keeps its state in mailspec's Redis, which rspamd asks."""
    spec = stateful(site.spec)
    compiled = compile_model(spec, site.compiled.deploy.parent / "stateful", site.compiled.keys)
    install_deploy(site.server, compiled)
    site.compiled = compiled
    grey = next(a for a in receiving(spec) if a.endswith("@" + spec.domains[-1].name))
    plain = next(a for a in receiving(spec) if a.endswith("@" + spec.domains[0].name))
    logins = [a for a in receiving(spec) if a.endswith("@" + spec.domains[0].name)][:2]
    wrong = []
    with log.step(f"greylisting {spec.domains[-1].name} for {GREYLIST_DELAY} s"):
        subject = unique("greylisted")
        reply = refused(site.deliver, OUTSIDER, [grey], subject)
        started = time.monotonic()
        if reply is None or not reply.startswith("451"):
            wrong.append(f"the first message to {grey} was {reply or 'accepted'}, not tempfailed with 451")
        for check, send in ((f"to {plain}", lambda s: site.deliver(OUTSIDER, [plain], s)),
                            (f"by {logins[1]} logged in", lambda s: site.submit(logins[1], logins[1], [grey], s))):
            other = unique(f"not greylisted {check}")
            reply = refused(send, other)
            if reply is not None:
                wrong.append(f"mail {check} was greylisted: {reply}")
        time.sleep(max(0.0, GREYLIST_DELAY + 2 - (time.monotonic() - started)))
        reply = refused(site.deliver, OUTSIDER, [grey], subject)
        if reply is not None:
            wrong.append(f"the retry to {grey} after the delay was refused: {reply}")
        else:
            site.wait_for(grey, subject)
    with log.step("learning: into Junk and out of it over IMAP"):
        subject = unique("learned")
        site.deliver(OUTSIDER, [plain], subject, body=f"{subject} {LETTER}")
        folder = site.wait_for(plain, subject)[0]
        junk = spec.server.filters.spam_folder
        status = next(m for m in site.mailbox(plain)[folder] if m["subject"] == subject)["X-Spam-Status"]
        log.info(f"delivered to {folder}: X-Spam-Status: {status}")
        if status is None or str(status).startswith("Yes") != (folder == junk):
            wrong.append(f"a message with X-Spam-Status: {status} was filed into {folder}")
        if folder == junk:  # rspamd marked it (an outside sender whose SPF does not name the host)
            moves = [(junk, "INBOX", "ham"), ("INBOX", junk, "spam")]
        else:
            moves = [(folder, junk, "spam"), (junk, "INBOX", "ham")]
        for source, target, kind in moves:
            before = redis_count(site, f"learns_{kind}")
            site.move(plain, subject, source, target)
            if redis_count(site, f"learns_{kind}") != before + 1:
                wrong.append(f"moving a message from {source} to {target} did not teach rspamd it is {kind}")
    with log.step(f"{logins[0]} sends {PER_HOUR} messages, and one more"):
        replies = [refused(site.submit, logins[0], logins[0], [plain], unique(f"rate {n}"))
                   for n in range(PER_HOUR + 1)]
        if replies[:PER_HOUR] != [None] * PER_HOUR:
            wrong.append(f"{logins[0]} was refused within its limit: {replies}")
        if replies[PER_HOUR] is None or not replies[PER_HOUR].startswith("4"):
            wrong.append(f"message {PER_HOUR + 1} of {logins[0]} was {replies[PER_HOUR] or 'accepted'}, not 4xx")
        reply = refused(site.submit, logins[1], logins[1], [plain], unique("rate of another login"))
        if reply is not None:
            wrong.append(f"{logins[1]}, under its own limit, was refused: {reply}")
    expect(not wrong, "rspamd's state in Redis:\n" + "\n".join(wrong))


def has_two_domains_and_logins(spec: model.Spec) -> str | None:
    if len(spec.domains) < 2:
        return "one domain: none to greylist apart from the others"
    if not any(a.endswith("@" + spec.domains[-1].name) for a in receiving(spec)):
        return f"no mailbox receives mail in {spec.domains[-1].name}"
    if len([a for a in receiving(spec) if a.endswith("@" + spec.domains[0].name)]) < 2:
        return f"fewer than two mailboxes in {spec.domains[0].name}"
    return None


# The EICAR test file, in two halves so that a scanner reading this source does not
# take it for one; the scenario's own signature database holds its hash (.hdb), as
# freshclam cannot download the real ones here.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR" + b"-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE = "Mailspec.Test.EICAR"


def with_attachment(subject: str, sender: str, recipient: str, data: bytes) -> str:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, recipient, subject
    message["Message-ID"] = f"<{subject.replace(' ', '.')}@vmtest>"
    message.set_content("See the attachment.")
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename="file.com")
    return message.as_string()


def antivirus(site: Site) -> None:
    """The spec with `antivirus`, switched to with only the scenario's signature file in
    freshclam's directory: an EICAR attachment on port 25 is refused with 554 and the
    signature's name, and a clean one is delivered."""
    signatures = f"{LAYOUT.clamav_db}/mailspec-test.hdb"
    site.server.write_file(signatures, f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:{EICAR_SIGNATURE}\n")
    compiled = compile_model(attrs.evolve(site.spec, server=attrs.evolve(site.spec.server, antivirus=True)),
                             site.compiled.deploy.parent / "antivirus", site.compiled.keys)
    install_deploy(site.server, compiled)
    site.compiled = compiled
    target, wrong = receiving(site.spec)[0], []
    infected, clean = unique("infected"), unique("clean")
    reply = refused(site.server.send_mail, OUTSIDER, [target],
                    with_attachment(infected, OUTSIDER, target, EICAR), port=25, tls="starttls",
                    ca_file=compiled.ca_file, server_name=site.spec.server.hostname)
    log.info(f"EICAR on port 25: {reply or 'accepted'}")
    if reply is None or not reply.startswith("554") or EICAR_SIGNATURE not in reply:
        wrong.append(f"EICAR to {target} was {reply or 'accepted'}, not refused with 554 naming the signature")
    site.server.send_mail(OUTSIDER, [target], with_attachment(clean, OUTSIDER, target, EICAR[::-1]), port=25,
                          tls="starttls", ca_file=compiled.ca_file, server_name=site.spec.server.hostname)
    site.wait_for(target, clean)
    if site.folders_with(target, infected):
        wrong.append("the infected message was stored")
    expect(not wrong, "antivirus:\n" + "\n".join(wrong))


BAN_RETRIES, BAN_TIME = 3, 30
# Run on a machine: `tries` IMAP logins with a wrong password (STARTTLS first), or with
# none a greeting only; prints "ok", or why it could not connect.
FAILED_LOGINS = r"""
import imaplib, socket, ssl, sys
host, tries = sys.argv[1], int(sys.argv[2])
wait = 30 if tries else 10  # a probe into a ban waits out its timeout: keep it short
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
try:
    for _ in range(max(tries, 1)):
        client = imaplib.IMAP4(host, 143, timeout=wait)
        client.starttls(ssl_context=context)
        if tries:
            try:
                client.login("nobody@example.com", "wrong-password")
            except imaplib.IMAP4.error:
                pass
            client.shutdown()  # no LOGOUT to wait for: the ban may come at once
        else:
            client.logout()
    print("ok")
except (ConnectionRefusedError, socket.timeout, TimeoutError, OSError) as error:
    print(type(error).__name__)
"""


def fail2ban(site: Site) -> None:
    """The spec switched to `fail2ban`: failed IMAP logins from the outside machine get it
    banned (new connections fail) until the ban time has passed; the same failures from
    the server itself (loopback, trusted) never ban it. This VM's sshd jail, the harness's
    way in, is turned off first, as Debian 12's fails without /var/log/auth.log."""
    server, outside = site.server, site.outside
    server.write_file("/etc/fail2ban/jail.d/defaults-debian.conf", "[sshd]\nenabled = false\n")
    spec = attrs.evolve(site.spec, server=attrs.evolve(site.spec.server, fail2ban=model.Fail2ban(
        retries=BAN_RETRIES, find_time=600, ban_time=BAN_TIME)))
    compiled = compile_model(spec, site.compiled.deploy.parent / "fail2ban", site.compiled.keys)
    install_deploy(server, compiled)
    site.compiled = compiled
    for machine in (server, outside):
        machine.write_file("/tmp/failed_logins.py", FAILED_LOGINS)
    wrong = []

    def attempt(machine, host: str, tries: int) -> str:
        return machine.succeed(f"python3 /tmp/failed_logins.py {host} {tries}").strip().splitlines()[-1]

    def first_probe(connects: bool, timeout: float, what: str, pause: float) -> float:
        """When the first greeting probe from outside that connects (or not) started: a
        probe that connected just before the ban hangs until its timeout, so its end is
        no measure of when the ban began (CI once measured a 30 s ban as 2 s that way)."""
        def once(last_try: bool) -> float | None:
            started = time.monotonic()
            return started if (attempt(outside, network.SERVER_ADDRESS, 0) == "ok") == connects else None
        return log.retry(once, timeout, what, pause)

    with log.step(f"{BAN_RETRIES} failed logins from the server itself"):
        attempt(server, "127.0.0.1", BAN_RETRIES)
        time.sleep(5)  # fail2ban reads the log within a second or two
        if attempt(server, "127.0.0.1", 0) != "ok":
            wrong.append("the server's own loopback was banned")
    with log.step(f"{BAN_RETRIES} failed logins from the outside machine, banned for {BAN_TIME} s"):
        attempt(outside, network.SERVER_ADDRESS, BAN_RETRIES)
        try:
            banned = first_probe(False, 60, "the outside machine banned", 1)
            lasted = first_probe(True, BAN_TIME + 60, "the ban lifted", 2) - banned
            log.info(f"banned for about {lasted:.0f} s")
            if lasted < BAN_TIME - 10:
                wrong.append(f"the ban lasted {lasted:.0f} s, not {BAN_TIME}")
        except log.Timeout as error:
            wrong.append(str(error))
    expect(not wrong, "fail2ban:\n" + "\n".join(wrong) + "\n" + server.execute("tail -20 /var/log/fail2ban.log")[1])
