"""The records each served domain name needs, as typed data. Names are absolute (with the
trailing dot); TXT values are whole strings, split only when rendered."""

from __future__ import annotations

import hashlib
import ipaddress

import attrs

from mailspec import model
from mailspec.keys import dkim_keys, read_public
from mailspec.layout import Ports
from mailspec.model import Alignment, DmarcPolicy, KeyType

TTL = 3600
PORTS = Ports()


@attrs.frozen
class Record:
    name: str  # absolute, ends with "."
    type: str
    value: str  # as zone text writes it; TXT: the whole unquoted string
    why: str  # one line, for the zone comment
    required: bool = True  # `dns --check` fails when a required record is missing


@attrs.frozen
class Fragment:
    """The records to publish in one zone: a served domain name's, or the hostname's own
    when no served domain holds it."""

    origin: str  # absolute
    records: tuple[Record, ...]
    notes: tuple[str, ...] = ()  # comments: what to ask others for (the PTR, report authorisation)


def fqdn(name: str) -> str:
    return name.rstrip(".") + "."


def under(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def spf(spec: model.Spec, domain: model.Domain) -> str:
    server = spec.server
    terms = [f"ip{ipaddress.ip_address(a).version}:{a}" for a in server.addresses] or ["mx"]
    terms += [f"include:{name}" for name in domain.spf_include]
    # With DMARC enforcing, a softfail lets DMARC decide (DKIM survives forwarding, where
    # SPF fails); without it, SPF is the only enforcement.
    ending = "-all" if domain.dmarc.policy is DmarcPolicy.NONE else "~all"
    return " ".join(["v=spf1", *terms, ending])


def dmarc(domain: model.Domain) -> str:
    policy = domain.dmarc
    tags = [f"v=DMARC1; p={policy.policy.value}"]
    if policy.alignment is Alignment.STRICT:
        tags.append("adkim=s; aspf=s")
    if policy.report is not None:
        tags.append(f"rua=mailto:{policy.report.address}")
    return "; ".join(tags)


def dkim_text(key_type: KeyType, public: str) -> str:
    kind = "rsa" if key_type is KeyType.RSA2048 else "ed25519"
    return f"v=DKIM1; k={kind}; p={public}"


def sts_policy(spec: model.Spec) -> str:
    """The policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461)."""
    sts = spec.server.mta_sts
    return (f"version: STSv1\nmode: {sts.mode.value}\nmx: {spec.server.hostname}\n"
            f"max_age: {sts.max_age}\n")


def sts_id(spec: model.Spec) -> str:
    """Changes whenever the policy does, so senders fetch it again; reproducible."""
    return hashlib.sha256(sts_policy(spec).encode()).hexdigest()[:20]


def hostname_records(spec: model.Spec) -> list[Record]:
    host = fqdn(spec.server.hostname)
    found = [Record(host, "A" if ipaddress.ip_address(a).version == 4 else "AAAA", a,
                    "the server's address") for a in spec.server.addresses]
    # SPF for the name in the greeting: bounces have an empty sender, so SPF checks HELO.
    found.append(Record(host, "TXT", "v=spf1 a -all" if spec.server.addresses else "v=spf1 mx -all",
                        "SPF for the greeting name, which SPF checks for bounces"))
    return found


def ptr_notes(spec: model.Spec) -> list[str]:
    return [f"ask the provider of {a} for its PTR: {ipaddress.ip_address(a).reverse_pointer}. PTR "
            f"{fqdn(spec.server.hostname)} (receivers check that it matches the greeting)"
            for a in spec.server.addresses]


def name_records(spec: model.Spec, domain: model.Domain, name: str, public: dict) -> list[Record]:
    """The records of one name of `domain` (its own or an alias domain's)."""
    server, host, origin = spec.server, fqdn(spec.server.hostname), fqdn(name)
    found = [Record(origin, "MX", f"10 {host}", "mail for the domain goes to the server"),
             Record(origin, "TXT", spf(spec, domain), "SPF: who may send as the domain")]
    for key in (k for k in dkim_keys(spec) if k.domain == domain.name):
        signing = key.selector == domain.dkim.selector
        found.append(Record(f"{key.selector}._domainkey.{origin}", "TXT", dkim_text(key.type, public[key]),
                            "DKIM: the key that signs" if signing else "DKIM: the standby key, for rotation"))
    found.append(Record(f"_dmarc.{origin}", "TXT", dmarc(domain), "DMARC: what receivers do when "
                        "neither SPF nor DKIM passes aligned"))
    if server.mta_sts is not None:
        found += [Record(f"_mta-sts.{origin}", "TXT", f"v=STSv1; id={sts_id(spec)}",
                         "MTA-STS: a policy exists; its id changes with it"),
                  Record(f"mta-sts.{origin}", "CNAME", host, "MTA-STS: the policy's web server")]
    if server.tls_report is not None:
        found.append(Record(f"_smtp._tls.{origin}", "TXT", f"v=TLSRPTv1; rua=mailto:{server.tls_report.address}",
                            "TLS-RPT: where senders report TLS failures"))
    found += [
        Record(f"autoconfig.{origin}", "CNAME", host, "client autoconfig (Thunderbird and others)"),
        Record(f"autodiscover.{origin}", "CNAME", host, "client autodiscover (Outlook)"),
        Record(f"_submissions._tcp.{origin}", "SRV", f"0 1 {PORTS.submissions} {host}",
               "RFC 6186/8314: submission over TLS"),
        Record(f"_imaps._tcp.{origin}", "SRV", f"0 1 {PORTS.imaps} {host}", "RFC 6186/8314: IMAP over TLS"),
        Record(f"_submission._tcp.{origin}", "SRV", "0 0 0 .", "RFC 6186: plaintext submission not offered"),
        Record(f"_imap._tcp.{origin}", "SRV", "0 0 0 .", "RFC 6186: plaintext IMAP not offered"),
    ]
    return found


def report_authorisations(spec: model.Spec, name: str) -> list[Record]:
    """RFC 7489 7.1: a domain of ours that receives another's DMARC reports says it will."""
    return [Record(f"{sender}._report._dmarc.{fqdn(name)}", "TXT", "v=DMARC1",
                   f"DMARC: this domain accepts {sender}'s reports")
            for d in spec.domains if d.dmarc.report is not None and d.dmarc.report.address.domain == name
            for sender in d.names if sender != name]


def outside_report_notes(domain: model.Domain, served: set[str]) -> list[str]:
    report = domain.dmarc.report
    if report is None or report.address.domain in served:
        return []
    return [f"ask the owner of {report.address.domain} to publish {name}._report._dmarc."
            f"{fqdn(report.address.domain)} TXT \"v=DMARC1\", or its reports are not sent"
            for name in domain.names]


def fragments(spec: model.Spec, keys_dir: str) -> list[Fragment]:
    """Every zone fragment, by origin. Raises keys.KeyProblem for a missing or wrong key."""
    public = {key: read_public(keys_dir, key) for key in dkim_keys(spec)}
    served = {name for d in spec.domains for name in d.names}
    holders = [name for name in served if under(spec.server.hostname, name)]
    host_zone = max(holders, key=len) if holders else None  # the closest served zone holds it
    found = []
    for domain in spec.domains:
        for name in domain.names:
            records = name_records(spec, domain, name, public) + report_authorisations(spec, name)
            notes = outside_report_notes(domain, served) if name == domain.name else []
            if name == host_zone:
                records += hostname_records(spec)
                notes += ptr_notes(spec)
            found.append(Fragment(fqdn(name), tuple(records), tuple(notes)))
    if host_zone is None:
        found.append(Fragment(fqdn(spec.server.hostname), tuple(hostname_records(spec)), tuple(ptr_notes(spec))))
    return found
