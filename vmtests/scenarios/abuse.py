"""Scenarios about the defences against spam and abuse, decided by the real rspamd
behind the real Postfix: GTUBE refused at SMTP time, and a logged-in user's From
header held to the addresses the login may send as."""

from __future__ import annotations

import smtplib

from mailspec import model
from mailspec.semantics import owners
from mailspec.vmtests import log
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
