"""Scenarios about who may send what: the open-relay matrix, AUTH before TLS, list
posting policies and send rights."""

from __future__ import annotations

import base64
import imaplib
import json
import socket

from mailspec import model
from mailspec.semantics import may_receive, may_send
from mailspec.vmtests import log, mail, network
from mailspec.vmtests.driver import Site
from mailspec.vmtests.scenarios.common import (
    OUTSIDER,
    ScenarioFailure,
    attempt,
    expect,
    local_mailbox,
    mailboxes,
    receiving,
    submitter,
)

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
    login = submitter(spec)
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
            trusted = not submission_port  # mynetworks relays on 25; submission always wants a login
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
    for who, machine, _host, port, _tls, _login, _sender, recipient, expected in rows:
        code = next(results[machine.name])
        got = code if code == "no-auth" else code == 250
        log.info(f"{who:>15} port {port} -> {recipient}: {code}")
        if got != expected:
            wrong.append(f"{who} on port {port} to {recipient}: got {code}, expected {expected}")
    expect(not wrong, "relay matrix:\n" + "\n".join(wrong))


def plaintext_auth(site: Site) -> None:
    """No listener takes a password before TLS; after TLS the same login works."""
    server, spec = site.server, site.spec
    login = submitter(spec)
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
    greeting, answer = _managesieve_plain_auth(server.port("sieve"), credentials)
    expect('"SASL" ""' in greeting or '"SASL"' not in greeting, "ManageSieve offers SASL before STARTTLS")
    expect(answer.startswith("NO"), f"ManageSieve answered `{answer}` to AUTHENTICATE before STARTTLS")


def _managesieve_plain_auth(port: int, credentials: tuple[str, str]) -> tuple[str, str]:
    """ManageSieve (RFC 5804) on 4190 without STARTTLS: (the greeting, the answer to
    AUTHENTICATE "PLAIN")."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        stream = connection.makefile("rwb")
        greeting = []
        while not (line := stream.readline().decode()).startswith(("OK", "NO", "BYE")) and line:
            greeting.append(line)
        stream.write(f'AUTHENTICATE "PLAIN" "{_plain(*credentials)}"\r\n'.encode())
        stream.flush()
        return "".join(greeting), stream.readline().decode().strip()


def _plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


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
                wrong += attempt(site, None, sender, address, may_receive(spec, sender, address).accepted)
            for login in sorted({local_mailbox(spec, s) for s in candidates} - {None}
                                | set(receiving(spec)[:1])):
                wrong += attempt(site, login, login, address, may_send(spec, login, login, address).accepted)
    expect(not wrong, "list policies:\n" + "\n".join(wrong))


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
            wrong += attempt(site, None, OUTSIDER, login, may_receive(spec, OUTSIDER, login).accepted)
            wrong += attempt(site, login, login, target, may_send(spec, login, login, target).accepted)
        for ref in box.send_as[:2]:
            sender = str(ref.address)
            wrong += attempt(site, login, sender, target, may_send(spec, login, sender, target).accepted)
            other = next((str(d.address(m.local)) for d, m in mailboxes(spec)
                          if str(d.address(m.local)) != login and m.password), None)
            if other is not None:
                wrong += attempt(site, other, sender, target, may_send(spec, other, sender, target).accepted)
    expect(not wrong, "send rights:\n" + "\n".join(wrong))


def has_send_rights(spec: model.Spec) -> str | None:
    if not receiving(spec):
        return "no mailbox receives mail"
    return None if any(m.send_only or m.send_as for _, m in mailboxes(spec)) else "no send-only or send_as"
