"""`mailspec keys` and `mailspec dns`: the zone loads in real zone checkers and in nsd,
each DKIM record holds the public half of its private key, and `dns --check` against
that nsd finds every record, and exactly the one removed."""

from __future__ import annotations

import base64
import ipaddress
import os
import stat
import subprocess
import sys

import dkim
import pytest
from conftest import examples
from dnsserver import Nsd
from hypothesis import HealthCheck, given, settings
from needs import need_tool
from specgen import SPECS, render

from mailspec.backends import rspamd
from mailspec.dns import records
from mailspec.dns.zone import split_zones, standalone
from mailspec.keys import make_keys
from mailspec.layout import Layout
from mailspec.pipeline import check

HASH = "{BLF-CRYPT}$2b$12$kzG3XsKKk69ThdbfVMwX1eMWZHKJwDAyAU8QZJ9F/TLmMkWvtFQ1."
SPEC = f"""
server {{
  hostname mail.example.com
  addresses 198.51.100.7, 2001:db8:7::25
  mta_sts {{ mode testing; max_age 1 week }}
  tls_report postmaster@example.com
}}
domain example.com {{
  also example.org
  dmarc {{ policy quarantine; report postmaster }}
  spf_include _spf.partner.example
  mailbox postmaster {{ password "{HASH}" }}
}}
domain example.net {{
  dkim {{ selector ed2026; key ed25519; standby ed2027 }}
  dmarc {{ alignment strict; report postmaster@example.com }}
  mailbox bob {{ password "{HASH}" }}
}}
"""


def mailspec(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "mailspec", *args], capture_output=True, text=True)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def site(tmp_path):
    spec = tmp_path / "site.mailspec"
    spec.write_text(SPEC)
    keys = tmp_path / "keys"
    mailspec("keys", str(spec), "--out", str(keys))
    return spec, keys


def test_keys_are_private_from_the_start_and_kept(site, tmp_path):
    spec, keys = site
    names = sorted(os.listdir(keys / "dkim"))
    assert names == ["example.com.mail.key", "example.net.ed2026.key", "example.net.ed2027.key"]
    for name in names:
        assert stat.S_IMODE(os.stat(keys / "dkim" / name).st_mode) == 0o600
    before = (keys / "dkim" / names[0]).read_bytes()
    assert stat.S_IMODE(os.stat(keys / "srs.secret").st_mode) == 0o600  # postsrsd's
    secret = (keys / "srs.secret").read_bytes()
    assert len(base64.b64decode(secret.strip(), validate=True)) == 24 and secret.endswith(b"\n")
    again = mailspec("keys", str(spec), "--out", str(keys))
    assert "0 written, 4 kept" in again.stderr and (keys / "srs.secret").read_bytes() == secret
    assert (keys / "dkim" / names[0]).read_bytes() == before
    # A key of another type under the same selector is refused, not replaced.
    spec.write_text(SPEC.replace("key ed25519", "key rsa-2048"))
    refused = mailspec("keys", str(spec), "--out", str(keys), check=False)
    assert refused.returncode == 2 and "not a 2048-bit RSA private key" in refused.stderr
    assert "new selector" in refused.stderr and "Traceback" not in refused.stderr


def test_every_zone_loads_in_the_real_zone_checker(site, tmp_path):
    checkzone = need_tool("named-checkzone")
    spec, keys = site
    zones = split_zones(mailspec("dns", str(spec), "--keys", str(keys)).stdout)
    assert sorted(zones) == ["example.com.", "example.net.", "example.org."]
    for origin, body in zones.items():
        path = tmp_path / f"{origin}zone"
        path.write_text(standalone(origin, body))
        done = subprocess.run([checkzone, origin, str(path)], capture_output=True, text=True)
        assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr


def test_each_dkim_record_holds_its_private_keys_public_half(site, tmp_path):
    """Sign with each private key as dkimpy does, and verify against the printed record."""
    spec, keys = site
    printed = mailspec("dns", str(spec), "--keys", str(keys), "--format", "json").stdout
    import json

    records = {r["name"]: r["value"] for zone in json.loads(printed) for r in zone["records"] if r["type"] == "TXT"}
    message = b"From: bob@example.net\r\nTo: x@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    cases = [("example.com.mail.key", "example.com", "mail", b"rsa-sha256"),
             ("example.com.mail.key", "example.org", "mail", b"rsa-sha256"),  # an alias domain: the same key
             ("example.net.ed2026.key", "example.net", "ed2026", b"ed25519-sha256"),
             ("example.net.ed2027.key", "example.net", "ed2027", b"ed25519-sha256")]
    for file_name, domain, selector, algorithm in cases:
        data = (keys / "dkim" / file_name).read_bytes()
        # dkimpy takes ed25519 as the base64 of the 32-byte seed, the first half of rspamd's form.
        private = base64.b64encode(base64.b64decode(data)[:32]) if algorithm == b"ed25519-sha256" else data
        signature = dkim.sign(message, selector.encode(), domain.encode(), private, signature_algorithm=algorithm)
        signed = signature + message
        txt = records[f"{selector}._domainkey.{domain}."]

        def dnsfunc(name, timeout=5, txt=txt, selector=selector, domain=domain):
            assert name.decode().rstrip(".") == f"{selector}._domainkey.{domain}"
            return txt.encode()
        assert dkim.verify(signed, dnsfunc=dnsfunc), (domain, selector)


def test_dns_check_against_nsd_finds_all_then_exactly_the_removed_record(site, tmp_path):
    spec, keys = site
    printed = mailspec("dns", str(spec), "--keys", str(keys)).stdout
    zones = {origin: standalone(origin, body) for origin, body in split_zones(printed).items()}
    reverse = ("$ORIGIN 100.51.198.in-addr.arpa.\n$TTL 3600\n@ IN SOA ns.example.com. h.example.com. 1 3600 600 "
               "86400 300\n@ IN NS ns.example.com.\n7 IN PTR mail.example.com.\n")
    pointer = ipaddress.ip_address("2001:db8:7::25").reverse_pointer + "."
    six = (f"$ORIGIN {pointer[40:]}\n$TTL 3600\n@ IN SOA ns.example.com. h.example.com. 1 3600 "
           f"600 86400 300\n@ IN NS ns.example.com.\n{pointer} IN PTR mail.example.com.\n")
    zones.update({"100.51.198.in-addr.arpa.": reverse, pointer[40:]: six})
    server = Nsd(tmp_path / "nsd", zones)
    try:
        done = mailspec("dns", str(spec), "--keys", str(keys), "--check", "--resolver", server.address)
        assert "missing" not in done.stdout and "different" not in done.stdout, done.stdout
        assert "PTR forward-confirms" in done.stdout
    finally:
        server.stop()
    # One record gone (the ed25519 standby), one changed (example.org's SPF).
    broken = dict(zones)
    net = broken["example.net."].splitlines(keepends=True)
    broken["example.net."] = "".join(x for x in net if not x.startswith("ed2027._domainkey"))
    broken["example.org."] = broken["example.org."].replace("include:_spf.partner.example ", "")
    server = Nsd(tmp_path / "nsd2", broken)
    try:
        done = mailspec("dns", str(spec), "--keys", str(keys), "--check", "--resolver", server.address, check=False)
    finally:
        server.stop()
    assert done.returncode == 1, done.stdout + done.stderr
    problems = [x for x in done.stdout.splitlines() if x.startswith(("missing", "different"))]
    assert problems == ["different example.org. TXT", "missing   ed2027._domainkey.example.net. TXT"], done.stdout
    assert 'publish: ed2027._domainkey.example.net. 3600 IN TXT "v=DKIM1; k=ed25519; p=' in done.stdout
    assert "found:   v=spf1 ip4:198.51.100.7 ip6:2001:db8:7::25 ~all" in done.stdout


def test_dns_without_the_keys_says_which_and_how(tmp_path):
    spec = tmp_path / "site.mailspec"
    spec.write_text(SPEC)
    (tmp_path / "empty").mkdir()
    done = mailspec("dns", str(spec), "--keys", str(tmp_path / "empty"), check=False)
    assert done.returncode == 2 and "example.com.mail.key" in done.stderr and "mailspec keys" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_hostname_outside_the_served_domains_gets_a_fragment_of_its_own(tmp_path):
    spec = tmp_path / "site.mailspec"
    spec.write_text(SPEC.replace("hostname mail.example.com", "hostname mx1.hoster.example"))
    mailspec("keys", str(spec), "--out", str(tmp_path / "keys"))
    zones = split_zones(mailspec("dns", str(spec), "--keys", str(tmp_path / "keys")).stdout)
    assert sorted(zones) == ["example.com.", "example.net.", "example.org.", "mx1.hoster.example."]
    assert "mx1.hoster.example. 3600 IN A 198.51.100.7" in zones["mx1.hoster.example."]
    assert "IN A " not in zones["example.com."] and "10 mx1.hoster.example." in zones["example.com."]


@settings(max_examples=examples(25), suppress_health_check=[HealthCheck.too_slow,
                                                            HealthCheck.function_scoped_fixture])
@given(SPECS)
def test_every_sending_domain_name_gets_a_signing_entry_and_an_spf_record(tmp_path_factory, generated):
    """Each name of a domain (its own and its alias domains') that has mailboxes: an SPF
    record, and unless `dkim no`, an rspamd signing entry whose key the DNS publishes."""
    work = tmp_path_factory.mktemp("every")
    (work / "spec.mailspec").write_text(render(generated))
    result = check([str(work / "spec.mailspec")])
    assert result.ok, [d.message for d in result.diagnostics]
    spec = result.spec
    make_keys(spec, str(work / "keys"))
    fragments = records.fragments(spec, str(work / "keys"))
    published = {(r.name, r.type, r.value.split(";")[0]) for f in fragments for r in f.records}
    signers = {s.domain: s for s in rspamd.signers(spec, Layout())}
    for domain in spec.domains:
        assert domain.mailboxes
        for name in domain.names:
            assert (f"{name}.", "TXT", records.spf(spec, domain)) in published, name
            if not domain.dkim.sign:
                assert name not in signers
                continue
            signer = signers[name]
            assert signer.path == f"{spec.server.keys}/dkim/{domain.name}.{domain.dkim.selector}.key"
            assert (f"{signer.selector}._domainkey.{name}.", "TXT", "v=DKIM1") in published, name
    assert set(signers) == {n for d in spec.domains if d.dkim.sign for n in d.names}


def spf_spec(includes: int) -> str:
    lines = "".join(f"  spf_include _spf{n}.partner.example\n" for n in range(includes))
    return f"server {{ hostname mail.example.com }}\ndomain example.com {{\n{lines}}}\n"


def test_an_spf_record_over_ten_lookups_has_a_code_of_its_own(tmp_path):
    """With no `addresses` the record names `mx` (one lookup) beside each include. E0420
    is the alias chain's code; the SPF limit once shared it."""
    spec = tmp_path / "spf.mailspec"
    spec.write_text(spf_spec(10))
    over = mailspec("check", str(spec), check=False)
    assert over.returncode == 1 and "error[E0423]: the SPF record of example.com needs 11 DNS lookups" in over.stderr, \
        over.stderr
    assert "E0420" not in over.stderr
    spec.write_text(spf_spec(9))
    assert "E0423" not in mailspec("check", str(spec), check=False).stderr
