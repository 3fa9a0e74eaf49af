"""The built-in scenarios. Each reads what to test from the spec (its mailboxes,
aliases, lists, rules) and what should happen from the reference semantics
(`resolve`, `may_send`, `may_receive`, `sieve_eval`), then checks the running VM."""

from __future__ import annotations

import json
import smtplib
import threading
import time
from collections.abc import Callable

import attrs

from mailspec import model
from mailspec.semantics import may_receive, may_send, resolve
from mailspec.sieve_eval import Envelope, sieve_eval
from mailspec.vmtests import log, mail, network
from mailspec.vmtests.deploy import check_logs, compile_model, install_deploy
from mailspec.vmtests.driver import Site

OUTSIDER = f"someone@{network.OUTSIDE_DOMAIN}"
FAR = f"friend@{network.OUTSIDE_DOMAIN}"
QUOTA_FILL_LIMIT = 5 * 1024 * 1024  # larger quotas take too long to exceed in a test


class ScenarioFailure(AssertionError):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailure(message)


@attrs.frozen
class Scenario:
    name: str
    title: str
    run: Callable[[Site], None]
    not_applicable: Callable[[model.Spec], str | None]  # why the spec gives it nothing to test
    outside: bool = False  # needs the outside MTA on the LAN
    restart: bool = False  # install with a full restart instead of a reload


# ---------------------------------------------------------------- what the spec declares

def mailboxes(spec: model.Spec) -> list[tuple[model.Domain, model.Mailbox]]:
    return [(d, m) for d in spec.domains for m in d.mailboxes]


def receiving(spec: model.Spec) -> list[str]:
    """Mailboxes that store what they are sent (not send-only, not forward-only)."""
    return [str(d.address(m.local)) for d, m in mailboxes(spec)
            if not m.send_only and (not m.forwards or m.keep_copy)]


def local_mailbox(spec: model.Spec, recipient: str) -> str | None:
    """The mailbox login a final recipient (maybe with a +extension) is stored in."""
    local, _, domain = recipient.rpartition("@")
    base = local.partition(spec.server.recipient_delimiter)[0]
    for d, m in mailboxes(spec):
        if d.name == domain and m.local == base:
            return str(d.address(m.local))
    return None


def split_recipients(spec: model.Spec, address: str) -> tuple[set[str], set[str]]:
    """resolve(address) as (local mailbox logins, external addresses)."""
    found = resolve(spec, address)
    local = {local_mailbox(spec, r) for r in found.recipients} - {None}
    external = {r for r in found.recipients if local_mailbox(spec, r) is None}
    return local, external


def unique(label: str) -> str:
    return f"{label} {time.monotonic_ns() % 10**9}"


def deliver_and_check(site: Site, addresses: list[str], label: str, outside: bool = False) -> None:
    for address in addresses:
        subject = unique(f"{label} to {address}")
        site.deliver(OUTSIDER, [address], subject)
        local, external = split_recipients(site.spec, address)
        expect(bool(local or external), f"resolve gives no recipient for {address}")
        for login in sorted(local):
            site.wait_for(login, subject)
        for target in sorted(external) if outside else ():
            site.wait_outside(target, subject)


# ---------------------------------------------------------------- 1. classic delivery

def delivery(site: Site) -> None:
    """Mail to each mailbox and through each alias arrives and is read back over IMAP."""
    spec = site.spec
    aliases = [str(d.address(a.local)) for d in spec.domains for a in d.aliases]
    deliver_and_check(site, receiving(spec)[:4] + aliases[:3], "delivery")


def has_receiving(spec: model.Spec) -> str | None:
    return None if receiving(spec) else "no mailbox receives mail"


# ---------------------------------------------------------------- 2. submission

def submission(site: Site) -> None:
    """587 with STARTTLS and AUTH, 465 with implicit TLS: to a local user and outside."""
    login, local = _submitter(site.spec), receiving(site.spec)[0]
    for port in (587, 465):
        subject = unique(f"submission {port}")
        site.submit(login, login, [local, FAR], subject, port=port)
        site.wait_for(local, subject)
        site.wait_outside(FAR, subject)


def _submitter(spec: model.Spec) -> str:
    return next(str(d.address(m.local)) for d, m in mailboxes(spec) if m.password is not None)


def has_submitter(spec: model.Spec) -> str | None:
    if not receiving(spec):
        return "no mailbox receives mail"
    return None if any(m.password for _, m in mailboxes(spec)) else "no mailbox can log in"


# ---------------------------------------------------------------- 3, 4. relay and AUTH

PROBE = r"""
import json, smtplib, ssl, sys
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
codes = []
for host, port, tls, login, password, sender, recipient in json.load(sys.stdin):
    if tls == "implicit":
        client = smtplib.SMTP_SSL(host, port, local_hostname="probe.test", context=context, timeout=30)
    else:
        client = smtplib.SMTP(host, port, local_hostname="probe.test", timeout=30)
    client.ehlo()
    if tls == "starttls":
        client.starttls(context=context); client.ehlo()
    if login:
        if not client.has_extn("auth"):
            codes.append("no-auth"); client.quit(); continue
        client.login(login, password)
    client.mail(sender)
    codes.append(client.rcpt(recipient)[0])
    client.quit()
print(json.dumps(codes))
"""


def relay_matrix(site: Site) -> None:
    """Unauthenticated (the outside MTA's address), authenticated and trusted (the
    server's own loopback, in mynetworks) senders, to a local and an external
    recipient, on 25, 587 and 465: only the paths the semantics allow are open."""
    spec = site.spec
    login = _submitter(spec)
    password = site.compiled.passwords[login]
    local, external = receiving(spec)[0], f"victim@{network.OUTSIDE_DOMAIN}"
    listeners = ((25, "starttls"), (587, "starttls"), (465, "implicit"))
    rows = []  # (who, machine, host, port, tls, login, sender, recipient, expected)
    for port, tls in listeners:
        for recipient in (local, external):
            submission_port = port != 25
            unauthenticated = (may_send(spec, None, OUTSIDER, recipient) if submission_port
                               else may_receive(spec, OUTSIDER, recipient)).accepted
            rows.append(("unauthenticated", site.outside, network.SERVER_ADDRESS, port, tls, "", OUTSIDER,
                         recipient, unauthenticated))
            trusted = False if submission_port else True  # mynetworks relays on 25, never on submission
            rows.append(("trusted", site.server, "127.0.0.1", port, tls, "", login, recipient, trusted))
            authenticated = may_send(spec, login, login, recipient).accepted if submission_port else "no-auth"
            rows.append(("authenticated", site.outside, network.SERVER_ADDRESS, port, tls, login, login,
                         recipient, authenticated))
    results = {}
    for machine in (site.outside, site.server):
        cases = [[host, port, tls, who_login, password if who_login else "", sender, recipient]
                 for who, m, host, port, tls, who_login, sender, recipient, _ in rows if m is machine]
        machine.write_file("/tmp/probe.py", PROBE)
        output = machine.succeed(f"echo {json.dumps(json.dumps(cases))} | python3 /tmp/probe.py")
        results[machine.name] = iter(json.loads(output.strip().splitlines()[-1]))
    wrong = []
    for who, machine, host, port, tls, _, sender, recipient, expected in rows:
        code = next(results[machine.name])
        got = code if code == "no-auth" else code == 250
        log.info(f"{who:>15} port {port} -> {recipient}: {code}")
        if got != expected:
            wrong.append(f"{who} on port {port} to {recipient}: got {code}, expected {expected}")
    expect(not wrong, "relay matrix:\n" + "\n".join(wrong))


def plaintext_auth(site: Site) -> None:
    """No listener takes a password before TLS; after TLS the same login works."""
    server, spec = site.server, site.spec
    login = _submitter(spec)
    credentials = site.login(login)
    for port in (25, 587):
        with mail.smtp_client(server.port("smtp" if port == 25 else "submission"), spec.server.hostname,
                              None) as client:
            expect(not client.has_extn("auth"), f"port {port} offers AUTH before TLS")
            code, _ = client.docmd("AUTH", "PLAIN " + _plain(*credentials))
            expect(code >= 500, f"port {port} answered {code} to AUTH PLAIN before TLS")
    with mail.smtp_client(server.port("submission"), spec.server.hostname, site.compiled.ca_file,
                          "starttls", credentials):
        pass  # the positive control: AUTH works once TLS is up
    import imaplib
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    expect("LOGINDISABLED" in client.capabilities, "IMAP offers LOGIN before STARTTLS")
    try:
        client.login(*credentials)
        raise ScenarioFailure("IMAP accepted a plaintext LOGIN before STARTTLS")
    except imaplib.IMAP4.error:
        pass
    finally:
        client.shutdown()
    site.mailbox(login)  # IMAP with STARTTLS logs in


def _plain(user: str, password: str) -> str:
    import base64
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


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
    """Forwards reach the outside MTA; a kept copy is stored too."""
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


# ---------------------------------------------------------------- 9. lists

def lists(site: Site) -> None:
    """Each list's posting policy, on 25 without login and on submission with one."""
    spec, wrong = site.spec, []
    for domain in spec.domains:
        for lst in domain.lists[:6]:
            address = str(domain.address(lst.local))
            members = [str(r.address) for r in lst.members]
            candidates = sorted({*members[:1], *([str(lst.announcer.address)] if lst.announcer else []), OUTSIDER})
            for sender in candidates:
                wrong += _attempt(site, None, sender, address, may_receive(spec, sender, address).accepted)
            for login in sorted({local_mailbox(spec, s) for s in candidates} - {None}
                                | set(receiving(spec)[:1])):
                wrong += _attempt(site, login, login, address, may_send(spec, login, login, address).accepted)
    expect(not wrong, "list policies:\n" + "\n".join(wrong))


def _attempt(site: Site, login: str | None, sender: str, recipient: str, expected: bool) -> list[str]:
    """Send one message; [] when accepted exactly as `expected`, else what went wrong.
    An accepted message is then looked for in one local recipient's mailbox."""
    subject = unique(f"{login or 'anonymous'} as {sender} to {recipient}")
    try:
        if login is None:
            site.deliver(sender, [recipient], subject)
        else:
            site.submit(login, sender, [recipient], subject)
        accepted = True
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError):
        accepted = False
    how = f"port 25 from {sender}" if login is None else f"submission as {login} from {sender}"
    log.info(f"{how} to {recipient}: {'accepted' if accepted else 'refused'}")
    if accepted != expected:
        return [f"{how} to {recipient}: {'accepted' if accepted else 'refused'}, expected the opposite"]
    local = sorted(split_recipients(site.spec, recipient)[0])
    if accepted and local:
        site.wait_for(local[0], subject)
    return []


def has_lists(spec: model.Spec) -> str | None:
    return None if any(d.lists for d in spec.domains) else "no lists"


# ---------------------------------------------------------------- 10. send-only, send-as

def send_rights(site: Site) -> None:
    """Send-only mailboxes refuse mail but may send; send_as rights hold, and only them."""
    spec, wrong = site.spec, []
    target = receiving(spec)[0]
    for domain, box in mailboxes(spec):
        login = str(domain.address(box.local))
        if box.send_only:
            wrong += _attempt(site, None, OUTSIDER, login, may_receive(spec, OUTSIDER, login).accepted)
            wrong += _attempt(site, login, login, target, may_send(spec, login, login, target).accepted)
        for ref in box.send_as[:2]:
            sender = str(ref.address)
            wrong += _attempt(site, login, sender, target, may_send(spec, login, sender, target).accepted)
            other = next((str(d.address(m.local)) for d, m in mailboxes(spec)
                          if str(d.address(m.local)) != login and m.password), None)
            if other is not None:
                wrong += _attempt(site, other, sender, target, may_send(spec, other, sender, target).accepted)
    expect(not wrong, "send rights:\n" + "\n".join(wrong))


def has_send_rights(spec: model.Spec) -> str | None:
    if not receiving(spec):
        return "no mailbox receives mail"
    return None if any(m.send_only or m.send_as for _, m in mailboxes(spec)) else "no send-only or send_as"


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


def always(spec: model.Spec) -> str | None:
    return has_receiving(spec)


SCENARIOS = (
    Scenario("delivery", "mail to every mailbox and alias, read back over IMAP", delivery, has_receiving,
             restart=True),
    Scenario("submission", "587 STARTTLS+AUTH and 465 implicit TLS, locally and outside", submission,
             has_submitter, outside=True),
    Scenario("relay", "the open-relay matrix on 25, 587 and 465", relay_matrix, has_submitter, outside=True),
    Scenario("plaintext-auth", "no password accepted before TLS", plaintext_auth, has_submitter),
    Scenario("routing", "aliases, catch-all, domain aliases, plus addressing", routing, has_routing),
    Scenario("forwarding", "forwards reach the outside MTA, kept copies are stored", forwarding,
             has_forwarding, outside=True),
    Scenario("sieve", "fileinto, discard and one vacation reply per sender", sieve, has_sieve, outside=True),
    Scenario("quota", "a message over the quota bounces", quota, has_small_quota),
    Scenario("lists", "list posting policies with and without login", lists, has_lists),
    Scenario("send-rights", "send-only mailboxes and send_as rights", send_rights, has_send_rights),
    Scenario("reload", f"reload under load: {RELOAD_MESSAGES} messages delivered exactly once", reload_safety,
             always),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def run(site: Site, scenario: Scenario) -> None:
    with log.step(f"scenario {scenario.name}: {scenario.title}"):
        scenario.run(site)
        check_logs(site.server)
