"""Deliverability as a receiver on the internet sees it: the outside machine serves the
zones `mailspec dns` printed for the site, and its rspamd checks SPF, DKIM and DMARC of
what arrives (vmtests.verifier), as a large mailbox provider does."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import attrs

from mailspec import model
from mailspec.backends.postsrsd import srs_domain
from mailspec.dns import live, records
from mailspec.semantics import may_send
from mailspec.vmtests import log, network, verifier
from mailspec.vmtests.deploy import compile_model, install_deploy
from mailspec.vmtests.driver import Site
from mailspec.vmtests.scenarios.common import (
    FAR,
    OUTSIDER,
    expect,
    expect_return_path,
    split_recipients,
    srs_of,
    unique,
)
from mailspec.vmtests.scenarios.delivery import forwarding_addresses

ALGORITHMS = {model.KeyType.RSA2048: "rsa-sha256", model.KeyType.ED25519: "ed25519-sha256"}


def signing_senders(spec: model.Spec) -> list[tuple[str, str, model.Domain]]:
    """(login, sender, domain): for each name of each signing domain, a mailbox of the
    domain sending as itself at that name, if it may."""
    found = []
    for domain in spec.domains:
        box = next((m for m in domain.mailboxes if m.password is not None), None)
        if not domain.dkim.sign or box is None:
            continue
        login = str(domain.address(box.local))
        found += [(login, f"{box.local}@{name}", domain) for name in domain.names
                  if may_send(spec, login, f"{box.local}@{name}", FAR).accepted]
    return found


def has_signing_sender(spec: model.Spec) -> str | None:
    return None if signing_senders(spec) else "no signing domain has a mailbox that logs in"


def verdicts(message: str) -> dict[str, list[str]]:
    found = verifier.results(message)
    log.info("the receiver says: " + "; ".join(f"{k}={v}" for k, values in found.items() for v in values))
    return found


def passes(found: dict[str, list[str]], method: str, detail: str = "") -> bool:
    return any(v.startswith("pass") and detail in v for v in found.get(method, []))


def authentication(site: Site) -> None:
    signed_mail_passes(site)
    forged_mail_meets_the_policy(site)
    forwarded_mail_passes(site)
    published_over_https(site)
    dns_check_against_the_served_zones(site)
    key_rotation(site)


def signed_mail_passes(site: Site) -> None:
    """1. What a user sends passes SPF, DKIM and DMARC, aligned, against the served zone."""
    for login, sender, domain in signing_senders(site.spec):
        with log.step(f"{sender} to the outside: SPF, DKIM and DMARC pass"):
            subject = unique(f"signed from {sender}")
            site.submit(login, sender, [FAR], subject)
            copy = site.wait_outside(FAR, subject)[0]
            found = verdicts(copy)
            name = sender.partition("@")[2]
            expect(passes(found, "dkim", f"header.d={name}") and passes(found, "spf")
                   and passes(found, "dmarc", f"header.from={name}"),
                   f"the receiver's verdicts for {sender}: {found}")
            expect(f"a={ALGORITHMS[domain.dkim.key]}" in re.sub(r"\s", "", copy),
                   f"not signed with {domain.dkim.key.value}")
            expect_return_path(copy, sender)  # mail that is not forwarded keeps its sender


def forged_mail_meets_the_policy(site: Site) -> None:
    """2. An outside sender forging `From:` one of our domains meets its DMARC policy."""
    domain = site.spec.domains[0]
    target = next(str(domain.address(m.local)) for m in domain.mailboxes if not m.send_only)
    subject = unique("forged")
    with log.step(f"a forged From: ceo@{domain.name} from outside, under p={domain.dmarc.policy.value}"):
        send_from_outside(site, OUTSIDER, f"ceo@{domain.name}", target, subject)
        if domain.dmarc.policy is model.DmarcPolicy.REJECT:
            bounce = site.wait_outside(OUTSIDER, subject)[0]
            expect(" 5.7." in bounce, f"the bounce gives no policy refusal:\n{bounce[:1500]}")
            expect(site.folders_with(target, subject) == [], "the forged message was stored")
        else:
            site.wait_for(target, subject)


def forwarded_mail_passes(site: Site) -> None:
    """3. A signed message from outside, forwarded outside: SRS makes SPF pass, and the
    original DKIM signature still verifies."""
    leaving = [(a, sorted(split_recipients(site.spec, a)[1])) for a in forwarding_addresses(site.spec)]
    leaving = [(address, targets[0]) for address, targets in leaving if targets]
    if not leaving:
        log.info("no forward leaves the server: skipped")
        return
    address, target = leaving[0]
    subject = unique(f"forwarded via {address}")
    with log.step(f"outside -> {address} -> {target}: SPF passes for the SRS sender, DKIM still verifies"):
        send_from_outside(site, OUTSIDER, OUTSIDER, address, subject)
        copy = site.wait_outside(target, subject)[0]
        expect_return_path(copy, srs_of(OUTSIDER, srs_domain(site.spec)))
        found = verdicts(copy)
        expect(passes(found, "spf") and passes(found, "dkim", f"header.d={network.OUTSIDE_DOMAIN}")
               and passes(found, "dmarc"), f"the receiver's verdicts for the forward: {found}")


def send_from_outside(site: Site, sender: str, header_from: str, recipient: str, subject: str) -> None:
    """The outside MTA sends it (signed by its rspamd when the From is its own domain)."""
    text = f"From: {header_from}\nTo: {recipient}\nSubject: {subject}\n\nhello from the internet\n"
    site.outside.succeed(f"sendmail -f {shlex.quote(sender)} {shlex.quote(recipient)} <<'EOF'\n{text}EOF")


def published_over_https(site: Site) -> None:
    """7. A client on the internet fetches the MTA-STS policy and the autoconfig answer
    through DNS and verified HTTPS, and gets what was compiled."""
    deploy = site.compiled.deploy / "nginx" / "mailspec"
    site.outside.write_file("/tmp/mailspec-ca.crt", Path(site.compiled.ca_file).read_text())
    wanted = {f"https://autoconfig.{name}/mail/config-v1.1.xml": deploy / "config-v1.1.xml"
              for d in site.spec.domains for name in d.names}
    if site.spec.server.mta_sts is not None:
        wanted |= {f"https://mta-sts.{name}/.well-known/mta-sts.txt": deploy / "mta-sts.txt"
                   for d in site.spec.domains for name in d.names}
    for url, compiled in sorted(wanted.items()):
        with log.step(f"GET {url} from outside"):
            got = site.outside.succeed(
                "python3 -c 'import ssl, sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
                f"sys.argv[1], context=ssl.create_default_context(cafile=\"/tmp/mailspec-ca.crt\"), "
                f"timeout=20).read().decode())' {shlex.quote(url)}")
            expect(got == compiled.read_text(), f"{url} served:\n{got}\nnot what was compiled:\n"
                                                f"{compiled.read_text()}")


def dns_check_against_the_served_zones(site: Site) -> None:
    """5. `mailspec dns --check` finds every record in the served zones; with one taken
    out, it reports exactly that one, and the check fails."""
    spec = site.spec
    fragments = records.fragments(spec, str(site.compiled.keys))
    lookup = live.resolver(f"127.0.0.1:{site.outside.udp_forwards[network.NSD_PORT]}")
    with log.step("dns --check against the outside's nsd"):
        report = live.check(spec, fragments, lookup)
        expect(report.ok, f"dns --check against the served zones:\n{report.text()}")
    removed = next(r for f in fragments for r in f.records if r.name.startswith("_dmarc."))
    origin = next(f.origin for f in fragments if removed in f.records)
    with log.step(f"without {removed.name} {removed.type}"):
        zone = f"{network.NSD_DIR}/{origin}zone"
        line = f"{removed.name} {records.TTL} IN {removed.type} "
        site.outside.succeed(f"grep -vF '{line}' {zone} > {zone}.new && mv {zone}.new {zone}")
        network.restart_nsd(site.outside)
        report = log.retry(lambda last: _changed(spec, fragments, lookup), 30, "nsd serving the changed zone", 0.5)
        wrong = [f for f in report.findings if f.status != "present"]
        expect([(f.record, f.status) for f in wrong] == [(removed, "missing")] and not report.ok,
               f"dns --check with {removed.name} removed:\n{report.text()}")


def key_rotation(site: Site) -> None:
    """4. Rotation as the language reference describes it: publish a standby selector,
    switch signing to it, retire the old one. DNS changes first, as it must; mail
    verifies at every step, signed by the selector the spec names."""
    login, sender, domain = signing_senders(site.spec)[0]
    old, new = domain.dkim.selector, f"{domain.dkim.selector}next"
    steps = (("publish a standby", attrs.evolve(domain.dkim, standby=new)),
             ("sign with it", attrs.evolve(domain.dkim, selector=new, standby=old)),
             ("retire the old selector", attrs.evolve(domain.dkim, selector=new, standby=None)))
    for number, (what, dkim) in enumerate(steps, 1):
        with log.step(f"key rotation of {domain.name}, {number}: {what} (signs with {dkim.selector})"):
            domains = tuple(attrs.evolve(d, dkim=dkim) if d.name == domain.name else d for d in site.spec.domains)
            compiled = compile_model(attrs.evolve(site.spec, domains=domains),
                                     site.compiled.deploy.parent.parent / f"rotation-{number}", site.compiled.keys)
            network.publish(site.outside, compiled.spec, str(compiled.keys))
            install_deploy(site.server, compiled)
            site.compiled = compiled  # its test passwords
            subject = unique(f"rotation {number}")
            site.submit(login, sender, [FAR], subject)
            found = verdicts(site.wait_outside(FAR, subject)[0])
            expect(passes(found, "dkim", f"header.s={dkim.selector}") and passes(found, "dmarc"),
                   f"after `{what}`, the receiver's verdicts: {found}")


def _changed(spec, fragments, lookup):
    try:
        report = live.check(spec, fragments, lookup)
    except live.LiveProblem:
        return None  # nsd restarting
    return report if not report.ok else None
