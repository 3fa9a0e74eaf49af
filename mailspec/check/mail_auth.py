"""Rules for mail that other servers must accept: SPF, DKIM, DMARC, MTA-STS and TLS-RPT.
Each is a way peers' users have broken their outgoing or incoming mail."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailspec import model
from mailspec.check import errors
from mailspec.model import KeyType, StsMode

if TYPE_CHECKING:
    from mailspec.check.check import Checker

SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4: more DNS-querying terms make the record `permerror`


def spf_lookups(spec: model.Spec, domain: model.Domain) -> int:
    """The DNS-querying terms of the domain's record: `mx` when the server's addresses are
    not known, and each `include:` (itself at least one, more inside it)."""
    return (0 if spec.server.addresses else 1) + len(domain.spf_include)


def check_mail_auth(checker: Checker) -> None:
    spec, out = checker.spec, checker.out
    server = spec.server
    if server.mta_sts is not None and server.mta_sts.mode is StsMode.ENFORCE and \
            server.tls.cert == model.DEFAULT_TLS_CERT:
        out.append(errors.sts_without_certificate(server.mta_sts.span))
    if server.tls.acme is not None:
        from mailspec.backends.nginx import web_names
        from mailspec.certs import MAX_NAMES

        names = len(web_names(spec))
        if names > MAX_NAMES:
            out.append(errors.acme_names_over_limit(server.tls.acme.span, names, MAX_NAMES))
    if server.tls_report is not None:
        what = "the TLS report address"
        checker.delivers_to_send_only(server.tls_report, what, checker.lookup(server.tls_report, what))
    for domain in spec.domains:
        lookups = spf_lookups(spec, domain)
        if lookups > SPF_LOOKUP_LIMIT:
            out.append(errors.spf_too_many_lookups(domain.span, domain.name, lookups))
        sends = bool(domain.mailboxes)
        if not domain.dkim.sign and sends:
            out.append(errors.unsigned_domain(domain.dkim.span, domain.name))
        elif domain.dkim.sign and domain.dkim.key is KeyType.ED25519:
            out.append(errors.ed25519_only(domain.dkim.span or domain.span, domain.name))
        report = domain.dmarc.report
        if report is not None:
            if checker.served(report.address):
                what = "the DMARC report address"
                checker.delivers_to_send_only(report, what, checker.lookup(report, what))
            else:
                out.append(errors.dmarc_report_outside(report.span, domain.name, report.address))
