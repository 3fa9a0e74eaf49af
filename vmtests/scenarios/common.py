"""What the scenarios share: failures, the facts a spec declares, and sending with an
expected outcome."""

from __future__ import annotations

import re
import smtplib
import time

from mailspec import model
from mailspec.backends.postsrsd import srs_domain
from mailspec.semantics import resolve
from mailspec.vmtests import log, network
from mailspec.vmtests.driver import Site

OUTSIDER = f"someone@{network.OUTSIDE_DOMAIN}"
FAR = f"friend@{network.OUTSIDE_DOMAIN}"
QUOTA_FILL_LIMIT = 5 * 1024 * 1024  # larger quotas take too long to exceed in a test


class ScenarioFailure(AssertionError):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioFailure(message)


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
            for copy in site.wait_outside(target, subject):
                expect_return_path(copy, srs_of(OUTSIDER, srs_domain(site.spec)))


def srs_of(sender: str, domain: str) -> re.Pattern:
    """The SRS0 address postsrsd makes of `sender` in `domain` (its hash and day vary)."""
    local, _, sender_domain = sender.partition("@")
    return re.compile(rf"SRS0=[A-Za-z0-9+/]{{4}}=[A-Z0-9]{{2}}={re.escape(sender_domain)}="
                      rf"{re.escape(local)}@{re.escape(domain)}")


def expect_return_path(text: str, sender: re.Pattern | str) -> None:
    """The envelope sender the outside MTA got (its Return-Path) is `sender`."""
    found = re.search(r"^Return-Path: <([^>]*)>", text, re.MULTILINE)
    got = found.group(1) if found else None
    matches = got is not None and (re.fullmatch(sender, got) if isinstance(sender, re.Pattern) else got == sender)
    expect(bool(matches), f"the outside MTA got the envelope sender {got!r}, expected "
                          f"{sender.pattern if isinstance(sender, re.Pattern) else sender!r}")


def has_receiving(spec: model.Spec) -> str | None:
    return None if receiving(spec) else "no mailbox receives mail"


def submitter(spec: model.Spec) -> str:
    return next(str(d.address(m.local)) for d, m in mailboxes(spec) if m.password is not None)


def has_submitter(spec: model.Spec) -> str | None:
    if not receiving(spec):
        return "no mailbox receives mail"
    return None if any(m.password for _, m in mailboxes(spec)) else "no mailbox can log in"


def attempt(site: Site, login: str | None, sender: str, recipient: str, expected: bool) -> list[str]:
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


def expect_signed(site: Site, text: str, domain: str) -> None:
    """`text` carries a DKIM signature of `domain` that verifies against the records
    `mailspec dns` publishes for the site's keys, as a receiver on the internet checks it."""
    import dkim

    from mailspec.dns import records

    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode()
    published = {r.name: r.value for f in records.fragments(site.spec, str(site.compiled.keys))
                 for r in f.records if r.type == "TXT"}
    signature = dkim.DKIM(data)
    expect(signature.verify(dnsfunc=lambda name, timeout=5: published.get(name.decode(), "").encode()),
           f"the message to the outside has no DKIM signature of {domain} that verifies:\n{text[:1500]}")
    expect(signature.domain == domain.encode(), f"signed by {signature.domain!r}, not {domain}")
