"""Scenarios about where mail goes: delivery, submission, routing, forwarding, Sieve,
quota, and a reload under load."""

from __future__ import annotations

import json
import shlex
import threading
import time
from pathlib import Path

import attrs

from mailspec import model
from mailspec.sieve_eval import Envelope, sieve_eval
from mailspec.vmtests import log, mail, network
from mailspec.vmtests.deploy import compile_model, install_deploy
from mailspec.vmtests.driver import Site
from mailspec.vmtests.scenarios.common import (
    FAR,
    OUTSIDER,
    QUOTA_FILL_LIMIT,
    deliver_and_check,
    expect,
    expect_return_path,
    expect_signed,
    mailboxes,
    receiving,
    split_recipients,
    submitter,
    unique,
)

# ---------------------------------------------------------------- 1. classic delivery

def delivery(site: Site) -> None:
    """Mail to each mailbox and through each alias arrives and is read back over IMAP."""
    spec = site.spec
    aliases = [str(d.address(a.local)) for d in spec.domains for a in d.aliases]
    deliver_and_check(site, receiving(spec)[:4] + aliases[:3], "delivery")


# ---------------------------------------------------------------- 2. submission

def submission(site: Site) -> None:
    """587 with STARTTLS and AUTH, 465 with implicit TLS: to a local user and outside."""
    login, local = submitter(site.spec), receiving(site.spec)[0]
    for port in (587, 465):
        subject = unique(f"submission {port}")
        site.submit(login, login, [local, FAR], subject, port=port)
        site.wait_for(local, subject)
        for copy in site.wait_outside(FAR, subject):
            expect_signed(site, copy, login.split("@")[1])
            expect_return_path(copy, login)  # not forwarded: its sender is kept


# ---------------------------------------------------------------- 5, 6. routing

def routing(site: Site) -> None:
    """Aliases, multi-target aliases, the catch-all, domain aliases and plus addressing."""
    deliver_and_check(site, routing_addresses(site.spec), "routing")


def routing_addresses(spec: model.Spec) -> list[str]:
    found = []
    for domain in spec.domains:
        boxes = [m for m in domain.mailboxes if str(domain.address(m.local)) in receiving(spec)]
        found += [str(domain.address(a.local)) for a in domain.aliases][:3]
        if domain.catch_all is not None:
            found.append(f"nobody-declared-this@{domain.name}")
        if boxes:
            found += [f"{boxes[0].local}@{also.name}" for also in domain.also][:1]
            if domain.plus_addressing:
                found.append(f"{boxes[0].local}{spec.server.recipient_delimiter}tag@{domain.name}")
    return found[:8]


def has_routing(spec: model.Spec) -> str | None:
    return None if routing_addresses(spec) else "no aliases, catch-all, domain alias or plus addressing"


def forwarding(site: Site) -> None:
    """Forwards reach the outside MTA with an SRS sender in our domain; a kept copy is
    stored too."""
    deliver_and_check(site, forwarding_addresses(site.spec), "forward", outside=True)


def forwarding_addresses(spec: model.Spec) -> list[str]:
    found = []
    for domain in spec.domains:
        for m in domain.mailboxes:
            if any(split_recipients(spec, str(r.address))[1] for r in m.forwards):
                found.append(str(domain.address(m.local)))
        for a in domain.aliases:
            if split_recipients(spec, str(domain.address(a.local)))[1]:
                found.append(str(domain.address(a.local)))
    return found[:4]


def has_forwarding(spec: model.Spec) -> str | None:
    return None if forwarding_addresses(spec) else "no forward or alias leaves the server"


# ---------------------------------------------------------------- 7. Sieve

def sieve(site: Site) -> None:
    """Each mailbox's rules file, discard or keep as sieve_eval says; an auto-reply is
    sent once per sender and reaches the outside MTA."""
    spec = site.spec
    for domain, box in [(d, m) for d, m in mailboxes(spec) if m.sieve][:2]:
        login = str(domain.address(box.local))
        for subject in [unique(f"{key} sieve probe") for key in _subject_keys(box.sieve)] + [unique("plain")]:
            text = mail.message(subject, OUTSIDER, login)
            outcome = sieve_eval(box.sieve, text.encode(), Envelope(OUTSIDER, login))
            folders = sorted(a.split("folder: ", 1)[1].split(" [")[0] for a in outcome.actions
                             if "store message in folder: " in a)
            site.deliver(OUTSIDER, [login], subject)
            if folders:
                got = site.wait_for(login, subject)
                log.info(f"{subject!r}: {got}")
                expect(sorted(got) == folders, f"{login}: `{subject}` stored in {got}, sieve_eval says {folders}")
            elif "discard" in outcome.actions:
                site.server.wait_until_succeeds(
                    f"grep -F 'msgid=<{subject.replace(' ', '.')}@vmtest>' /var/log/dovecot.log | grep -q discard")
                expect(not site.folders_with(login, subject), f"{login}: `{subject}` was kept, not discarded")
    for domain, box in [(d, m) for d, m in mailboxes(spec) if m.auto_reply][:1]:
        login, sender = str(domain.address(box.local)), f"asker@{network.OUTSIDE_DOMAIN}"
        for n in range(2):
            subject = unique(f"question {n}")
            site.deliver(sender, [login], subject)
            site.wait_for(login, subject)
        replies = site.wait_outside(sender, box.auto_reply.subject)
        time.sleep(2)  # a second reply would be there by now
        replies = [m for m in network.outside_messages(site.outside, sender)
                   if f"Subject: {box.auto_reply.subject}" in m]
        expect(len(replies) == 1, f"{len(replies)} auto-replies to {sender}, expected exactly one")


def _subject_keys(commands) -> list[str]:
    """The keys of `header "subject" contains|is` tests, in order, to build probes from."""
    keys = []
    for command in commands:
        if isinstance(command, model.If):
            for branch in command.branches:
                keys += _test_keys(branch.test) + _subject_keys(branch.body)
            keys += _subject_keys(command.otherwise or ())
    return keys[:4]


def _test_keys(test) -> list[str]:
    if isinstance(test, model.CompareTest):
        return [test.key] if test.kind == "header" and test.name.lower() == "subject" and "*" not in test.key \
            and "?" not in test.key else []
    return [k for inner in getattr(test, "tests", ()) for k in _test_keys(inner)]


def has_sieve(spec: model.Spec) -> str | None:
    return None if any(m.sieve or m.auto_reply for _, m in mailboxes(spec)) else "no Sieve rules or auto-replies"


# ---------------------------------------------------------------- 8. quota

def quota(site: Site) -> None:
    """A message over the quota bounces (Dovecot's 552 through LMTP); what fits is kept."""
    spec = site.spec
    login, limit = min(((str(d.address(m.local)), m.quota) for d, m in mailboxes(spec)
                        if m.quota and str(d.address(m.local)) in receiving(spec)), key=lambda x: x[1])
    small = unique("fits the quota")
    site.deliver(OUTSIDER, [login], small)
    site.wait_for(login, small)
    big = unique("over the quota")
    site.deliver(OUTSIDER, [login], big, body=("x" * 998 + "\r\n") * (limit // 1000 + 20))
    site.server.wait_until_succeeds(
        f"grep -F 'to=<{login}>' /var/log/postfix.log | grep status=bounced | grep -qi quota")
    expect(not site.folders_with(login, big), f"{login} stored a message over its quota")


def has_small_quota(spec: model.Spec) -> str | None:
    quotas = [m.quota for d, m in mailboxes(spec) if m.quota and str(d.address(m.local)) in receiving(spec)]
    if not quotas:
        return "no mailbox has a quota"
    limit = spec.server.message_size_limit
    if min(quotas) > QUOTA_FILL_LIMIT or (limit and min(quotas) > limit):
        return f"the smallest quota ({min(quotas)} bytes) is too large to fill in a test"
    return None


# ---------------------------------------------------------------- 12. reload safety

RELOAD_MESSAGES = 200


def reload_safety(site: Site) -> None:
    """Install a changed spec (one more mailbox) and reload while 200 messages are being
    sent: every one is delivered exactly once, and the new mailbox receives mail."""
    spec = site.spec
    target = receiving(spec)[0]
    first = spec.domains[0]
    added = model.Mailbox("vmtest-reloaded", password=first.mailboxes[0].password if first.mailboxes else None)
    changed = attrs.evolve(spec, domains=(attrs.evolve(first, mailboxes=first.mailboxes + (added,)),
                                          *spec.domains[1:]))
    compiled = compile_model(changed, site.compiled.deploy.parent / "reloaded")
    sent: list[str] = []
    failures: list[BaseException] = []

    def send_all() -> None:
        try:
            for batch in range(RELOAD_MESSAGES // 20):
                with mail.smtp_client(site.server.port("smtp"), spec.server.hostname, None) as client:
                    for n in range(20):
                        subject = f"reload {batch * 20 + n}"
                        client.sendmail(OUTSIDER, [target], mail.message(subject, OUTSIDER, target))
                        sent.append(subject)
        except BaseException as problem:  # noqa: BLE001  (reported below)
            failures.append(problem)
    sender = threading.Thread(target=send_all)
    sender.start()
    log.retry(lambda last: len(sent) >= 40 or None, 120, "the first 40 messages")
    install_deploy(site.server, compiled)
    log.info(f"reloaded after {len(sent)} messages")
    sender.join()
    expect(not failures, f"sending failed during the reload: {failures[:1]}")
    site.compiled = compiled  # the new test passwords
    counts = log.retry(lambda last: _reload_counts(site, target), 120, f"{RELOAD_MESSAGES} messages")
    expect(all(count == 1 for count in counts.values()),
           f"delivered more than once: {sorted(s for s, c in counts.items() if c != 1)[:5]}")
    new = str(first.address(added.local))
    subject = unique("to the new mailbox")
    site.deliver(OUTSIDER, [new], subject)
    site.wait_for(new, subject)


def _reload_counts(site: Site, login: str) -> dict[str, int] | None:
    counts: dict[str, int] = {}
    for messages in site.mailbox(login).values():
        for m in messages:
            if str(m["subject"]).startswith("reload "):
                counts[str(m["subject"])] = counts.get(str(m["subject"]), 0) + 1
    return counts if len(counts) == RELOAD_MESSAGES else None


# Run on the server: POP3S on 995 (verifying the server's certificate as its name) and
# 110 after STLS, each logged in; prints the subjects each finds.
POP3_READER = r"""
import json, poplib, socket, ssl, sys
name, ca, user, password = sys.argv[1:5]
context = ssl.create_default_context(cafile=ca)
class Pop3s(poplib.POP3_SSL):
    def _create_socket(self, timeout):
        return self.context.wrap_socket(poplib.POP3._create_socket(self, timeout), server_hostname=name)
def subjects(client):
    client.user(user); client.pass_(password)
    found = [line.decode().split(": ", 1)[1] for n in range(1, client.stat()[0] + 1)
             for line in client.retr(n)[1] if line.startswith(b"Subject: ")]
    client.quit()
    return found
implicit = subjects(Pop3s("127.0.0.1", 995, context=context, timeout=30))
plain = poplib.POP3("127.0.0.1", 110, timeout=30); plain.host = name; plain.stls(context=context)
print(json.dumps([implicit, subjects(plain)]))
"""


def pop3(site: Site) -> None:
    """The spec switched to `pop3`: a message delivered a moment before is read over
    POP3S on 995 and over 110 after STLS."""
    compiled = compile_model(attrs.evolve(site.spec, server=attrs.evolve(site.spec.server, pop3=True)),
                             site.compiled.deploy.parent / "pop3", site.compiled.keys)
    install_deploy(site.server, compiled)
    site.compiled = compiled
    target = receiving(site.spec)[0]
    subject = unique("read over pop3")
    site.deliver(OUTSIDER, [target], subject)
    site.wait_for(target, subject)
    site.server.write_file("/tmp/pop3_reader.py", POP3_READER)
    site.server.write_file("/tmp/pop3-ca.crt", Path(compiled.ca_file).read_text())
    arguments = " ".join(shlex.quote(a) for a in (site.spec.server.hostname, "/tmp/pop3-ca.crt", *site.login(target)))
    found = json.loads(site.server.succeed(f"python3 /tmp/pop3_reader.py {arguments}").strip().splitlines()[-1])
    expect(all(subject in subjects for subjects in found), f"POP3 did not show `{subject}`: {found}")
