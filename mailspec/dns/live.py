"""`mailspec dns --check`: each record looked up in live DNS with dnspython, and the
server's PTR forward-confirmed."""

from __future__ import annotations

import ipaddress

import attrs
import dns.exception
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from mailspec import model
from mailspec.dns.records import Fragment, Record, fqdn
from mailspec.dns.zone import line

TAGGED = ("v=spf1", "v=DMARC1", "v=DKIM1", "v=STSv1", "v=TLSRPTv1")  # one such record per name


class LiveProblem(Exception):
    """DNS could not be asked at all: no resolver, or it never answered."""


def resolver(address: str | None) -> dns.resolver.Resolver:
    if address is None:
        try:
            return dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise LiveProblem("this machine has no resolver configured; pass --resolver IP") from None
    host, port = address, 53
    if address.count(":") == 1 or address.startswith("["):
        host, _, number = address.rpartition(":")
        if not number.isdigit() or not 0 < int(number) < 65536:
            raise LiveProblem(f"--resolver `{address}`: write IP or IP:PORT ([IPv6]:PORT)")
        port = int(number)
    try:
        ip = str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        raise LiveProblem(f"--resolver `{address}` is not an IP address") from None
    found = dns.resolver.Resolver(configure=False)
    found.nameservers, found.port, found.lifetime = [ip], port, 10.0
    return found


@attrs.frozen
class Finding:
    status: str  # present, missing or different
    record: Record
    found: tuple[str, ...] = ()


@attrs.frozen
class Report:
    findings: tuple[Finding, ...]
    ptr: tuple[str, ...]  # one line per server address
    ptr_ok: bool

    @property
    def ok(self) -> bool:
        return self.ptr_ok and all(f.status == "present" or not f.record.required for f in self.findings)

    def text(self) -> str:
        out = []
        for finding in self.findings:
            record = finding.record
            optional = "" if record.required else " (optional)"
            out.append(f"{finding.status:<9} {record.name} {record.type}{optional}\n")
            out += [f"    found:   {found}\n" for found in finding.found]
            if finding.status != "present":
                out.append(f"    publish: {line(record).splitlines()[1]}\n")
        out += self.ptr
        problems = sum(1 for f in self.findings if f.status != "present" and f.record.required)
        out.append(f"{len(self.findings) - problems} of {len(self.findings)} records as printed; "
                   f"PTR {'forward-confirms' if self.ptr_ok else 'does not forward-confirm'}\n")
        return "".join(out)


def answers(lookup: dns.resolver.Resolver, name: str, kind: str) -> list[dns.rdata.Rdata]:
    try:
        return list(lookup.resolve(name, kind, raise_on_no_answer=False))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
        return []
    except dns.exception.Timeout:
        raise LiveProblem(f"no answer from the resolver for {name} {kind}") from None


def text_of(rdata: dns.rdata.Rdata) -> str:
    if rdata.rdtype == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode("ascii", "replace")
    return rdata.to_text()


def find(lookup: dns.resolver.Resolver, record: Record) -> Finding:
    found = answers(lookup, record.name, record.type)
    if record.type == "TXT":
        texts = [text_of(r) for r in found]
        if record.value in texts:
            return Finding("present", record)
        tag = next((t for t in TAGGED if record.value.startswith(t)), None)
        rivals = tuple(t for t in texts if tag and t.startswith(tag))
        return Finding("different", record, rivals) if rivals else Finding("missing", record)
    wanted = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(record.type), record.value)
    if wanted in found:
        return Finding("present", record)
    return Finding("different", record, tuple(r.to_text() for r in found)) if found else Finding("missing", record)


def forward_confirmed(lookup: dns.resolver.Resolver, spec: model.Spec) -> tuple[list[str], bool]:
    host, lines, ok = fqdn(spec.server.hostname), [], True
    for address in spec.server.addresses:
        ip = ipaddress.ip_address(address)
        names = [r.to_text() for r in answers(lookup, ip.reverse_pointer, "PTR")]
        forward = {r.to_text() for r in answers(lookup, host, "A" if ip.version == 4 else "AAAA")}
        confirmed = host in names and address in forward
        ok = ok and confirmed
        shown = ", ".join(names) or "no PTR"
        lines.append(f"{'present' if confirmed else 'missing':<9} PTR of {address}: {shown}"
                     f"{'' if confirmed else f' (want {host}, whose address is {address})'}\n")
    return lines, ok


def check(spec: model.Spec, fragments: list[Fragment], lookup: dns.resolver.Resolver) -> Report:
    findings = tuple(find(lookup, record) for fragment in fragments for record in fragment.records)
    ptr, ptr_ok = forward_confirmed(lookup, spec)
    return Report(findings, tuple(ptr), ptr_ok)
