"""The compiled rspamd configuration in the real rspamd: it passes `rspamadm configtest`,
signs what a logged-in user or the server sends for our domains with the keys from
`mailspec keys` (a receiver's dkimpy verifies the signature against the zone that
`mailspec dns` printed, served by a real nsd), signs nothing relayed from outside, and
applies the sender domain's DMARC policy to forged mail."""

from __future__ import annotations

import email.utils
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import dkim
import dns.resolver
import pytest
from dnsserver import Nsd
from needs import need_tool
from rspamd_server import Rspamd

from mailspec.dns.zone import split_zones, standalone
from mailspec.hostrun import free_ports

HASH = "{BLF-CRYPT}$2b$12$kzG3XsKKk69ThdbfVMwX1eMWZHKJwDAyAU8QZJ9F/TLmMkWvtFQ1."
SPEC = f"""
server {{
  hostname mail.example.com
  addresses 198.51.100.7
  networks 192.168.1.0/24
}}
domain example.com {{
  also example.org
  mailbox alice {{ password "{HASH}" }}
}}
domain example.net {{
  dkim {{ selector ed2026; key ed25519 }}
  dmarc {{ policy quarantine }}
  mailbox bob {{ password "{HASH}" }}
}}
domain example.info {{
  dkim no
  mailbox carol {{ password "{HASH}" }}
}}
"""
OUTSIDE = "203.0.113.9"  # not in any SPF record


def mailspec(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "mailspec", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def message(sender: str, subject: str = "hello") -> bytes:
    return (f"From: {sender}\r\nTo: friend@elsewhere.example\r\nSubject: {subject}\r\n"
            f"Date: {email.utils.formatdate()}\r\nMessage-ID: <{subject}@test>\r\n\r\nHello.\r\n").encode()


@pytest.fixture(scope="module")
def site():
    need_tool("rspamd")
    work = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))  # rspamd's workers (_rspamd) must reach it
    spec = work / "site.mailspec"
    spec.write_text(SPEC)
    prefix = work / "p"
    controller, milter = free_ports(2)
    mailspec("compile", str(spec), "-o", str(work / "deploy"), "--prefix", str(prefix),
             "--port", f"milter={milter}", "--port", f"rspamd_controller={controller}")
    keys = prefix / "var/lib/mailspec/keys"
    mailspec("keys", str(spec), "--out", str(keys))
    zones = split_zones(mailspec("dns", str(spec), "--keys", str(keys)).stdout)
    nsd = Nsd(work / "nsd", {origin: standalone(origin, body) for origin, body in zones.items()})
    for path in (work, *(p for p in keys.parents if p.is_relative_to(work))):
        path.chmod(0o755)
    shutil.chown(keys / "dkim", "_rspamd")
    for key in (keys / "dkim").iterdir():
        shutil.chown(key, "_rspamd")
    rspamd = Rspamd(work / "rspamd", work / "deploy" / "rspamd", controller, nsd.address)
    yield rspamd, nsd, work
    rspamd.stop()
    nsd.stop()
    shutil.rmtree(work, ignore_errors=True)


def verifies(signed: bytes, nsd: Nsd) -> bool:
    """dkimpy's verdict, with its key lookups answered by the test's nsd."""
    ask = dns.resolver.Resolver(configure=False)
    ask.nameservers, ask.port = ["127.0.0.1"], nsd.port

    def txt(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = ask.resolve(name.decode(), "TXT")
        except dns.resolver.NXDOMAIN:
            return None
        return b"".join(answer[0].strings)
    return dkim.verify(signed, dnsfunc=txt)


def test_the_configuration_passes_rspamadm_configtest(site):
    rspamd, _, work = site
    done = subprocess.run([need_tool("rspamadm"), f"--var=LOCAL_CONFDIR={work / 'deploy' / 'rspamd'}",
                           "configtest"], capture_output=True, text=True)
    assert done.returncode == 0 and "syntax OK" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize(("user", "sender", "algorithm"), [
    ("alice@example.com", "alice@example.com", "rsa-sha256"),
    ("alice@example.com", "alice@example.org", "rsa-sha256"),  # an alias domain signs for itself
    ("bob@example.net", "bob@example.net", "ed25519-sha256"),
])
def test_a_logged_in_users_mail_is_signed_and_verifies_against_the_printed_zone(site, user, sender, algorithm):
    rspamd, nsd, _ = site
    text = message(sender)
    verdict = rspamd.scan(text, OUTSIDE, sender, user=user)
    signature = verdict.get("dkim-signature")
    assert signature and f"a={algorithm}" in signature and f"d={sender.split('@')[1]}" in signature, verdict
    assert verifies(f"DKIM-Signature: {signature}\r\n".encode() + text, nsd)


def test_mail_made_on_the_server_or_from_a_trusted_network_is_signed(site):
    rspamd, nsd, _ = site
    for ip in ("127.0.0.1", "192.168.1.20"):
        text = message("alice@example.com", f"local-{ip}")
        signature = rspamd.scan(text, ip, "alice@example.com").get("dkim-signature")
        assert signature and verifies(f"DKIM-Signature: {signature}\r\n".encode() + text, nsd), ip


def test_nothing_from_outside_is_signed_and_forged_mail_meets_the_domains_dmarc_policy(site):
    rspamd, _, _ = site
    # From a private address that is not a trusted network: rspamd's own default would
    # count it as local, sign it, and check nothing.
    for ip, domain, action in ((OUTSIDE, "example.com", "reject"), ("10.0.2.2", "example.com", "reject"),
                               (OUTSIDE, "example.net", "add header")):
        verdict = rspamd.scan(message(f"ceo@{domain}", "forged"), ip, f"ceo@{domain}")
        assert "dkim-signature" not in verdict, (ip, verdict)
        assert "DMARC_POLICY_REJECT" in verdict["symbols"] if action == "reject" else \
            "DMARC_POLICY_QUARANTINE" in verdict["symbols"], (ip, verdict["symbols"].keys())
        assert verdict["action"] == action, (ip, domain, verdict["action"])


def test_a_domain_with_dkim_no_is_not_signed_and_incoming_mail_gets_authentication_results(site):
    rspamd, _, _ = site
    verdict = rspamd.scan(message("carol@example.info"), OUTSIDE, "carol@example.info", user="carol@example.info")
    assert "dkim-signature" not in verdict
    incoming = rspamd.scan(message("friend@elsewhere.example"), OUTSIDE, "friend@elsewhere.example")
    results = incoming["milter"]["add_headers"]["Authentication-Results"]["value"]
    assert "spf=" in results and "dmarc=" in results, results
