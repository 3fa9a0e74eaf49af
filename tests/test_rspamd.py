"""The compiled rspamd configuration in the real rspamd: it passes `rspamadm configtest`,
signs what a logged-in user or the server sends for our domains with the keys from
`mailspec keys` (a receiver's dkimpy verifies the signature against the zone that
`mailspec dns` printed, served by a real nsd), signs nothing relayed from outside,
applies the sender domain's DMARC policy to forged mail, marks and refuses spam at the
spec's scores (a domain's own, where it has them), and refuses a logged-in user's From
header that is not one of the login's addresses."""

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
from mailspec.layout import Layout
from mailspec.switch.activate import redis_password

HASH = "{BLF-CRYPT}$2b$12$kzG3XsKKk69ThdbfVMwX1eMWZHKJwDAyAU8QZJ9F/TLmMkWvtFQ1."
SPEC = f"""
server {{
  hostname mail.example.com
  addresses 198.51.100.7
  networks 192.168.1.0/24
  spam {{ mark 5; reject 12 }}
  filters {{ spam_folder Junk }}
}}
domain example.com {{
  also example.org, bücher.example
  mailbox alice {{ password "{HASH}"; send_as sales, external boss@elsewhere.example }}
  alias sales -> alice
}}
domain example.net {{
  dkim {{ selector ed2026; key ed25519 }}
  dmarc {{ policy quarantine }}
  spam {{ reject 8 }}
  mailbox bob {{ password "{HASH}" }}
}}
domain example.info {{
  dkim no
  mailbox carol {{ password "{HASH}" }}
}}
"""
OUTSIDE = "203.0.113.9"  # not in any SPF record
# The test's own symbol: it adds the score a message asks for, so that a message lands
# on either side of each threshold. Which action a total score gets is rspamd's decision.
SCORE_RULE = """
rspamd_config:register_symbol({
  name = "TEST_SCORE", score = 1.0, group = "test",
  callback = function(task)
    local wanted = task:get_header("X-Test-Score")
    if wanted then return true, tonumber(wanted) end
    return false
  end,
})
"""
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def mailspec(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "mailspec", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def message(sender: str, subject: str = "hello", to: str = "friend@elsewhere.example", headers: str = "",
            body: str = "Hello.") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n{headers}"
            f"Date: {email.utils.formatdate()}\r\nMessage-ID: <{subject}@test>\r\n\r\n{body}\r\n").encode()


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
    redis_password(Layout(prefix=str(prefix)))  # as the switch makes it: the deploy names the file rspamd reads
    rspamd = Rspamd(work / "rspamd", work / "deploy" / "rspamd", controller, nsd.address, rules=SCORE_RULE)
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


@pytest.mark.parametrize(("recipient", "mark", "reject"), [
    ("alice@example.com", 5, 12),  # the server's scores
    ("alice@example.org", 5, 12),  # an alias domain: its domain's
    ("bob@example.net", 5, 8),     # the domain's own reject, the server's mark
])
def test_spam_is_marked_and_refused_at_the_specs_scores(site, recipient, mark, reject):
    rspamd, _, _ = site
    seen = set()
    for wanted in range(-8, 14):
        verdict = rspamd.scan(message("x@elsewhere.example", f"score-{wanted}", recipient,
                                      f"X-Test-Score: {wanted}\r\nX-Spam-Status: No, score=0.00\r\n"),
                              OUTSIDE, "x@elsewhere.example", recipient=recipient)
        score = verdict["score"]
        expected = "reject" if score >= reject else "add header" if score >= mark else "no action"
        assert verdict["action"] == expected, (wanted, score, verdict["action"])
        seen.add(expected)
        if expected != "reject":  # the header the spam folder reads; the sender's own is removed
            milter = verdict["milter"]
            assert milter["remove_headers"]["X-Spam-Status"] == 0, milter
            status = milter["add_headers"]["X-Spam-Status"]["value"]
            assert status == f"{'Yes' if expected == 'add header' else 'No'}, score={score:.2f}", status
    assert seen == {"no action", "add header", "reject"}, "the scores did not reach both sides of each threshold"


def test_gtube_is_refused(site):
    rspamd, _, _ = site
    verdict = rspamd.scan(message("x@elsewhere.example", "gtube", "alice@example.com", body=GTUBE), OUTSIDE,
                          "x@elsewhere.example", recipient="alice@example.com")
    assert verdict["action"] == "reject" and "GTUBE" in verdict["symbols"], verdict


@pytest.mark.parametrize(("header_from", "refused"), [
    ("alice@example.com", False),
    ("Alice <ALICE+news@example.com>", False),  # an extension of her own address
    ("alice@example.org", False),               # her address in the alias domain
    ("alice@xn--bcher-kva.example", False),     # in the IDN alias domain, as an A-label
    ("Alice <alice@BÜCHER.example>", False),    # as a U-label (RFC 6532), in any case
    ("bob@bücher.example", True),
    ("sales@example.com", False),               # send_as
    ("boss@elsewhere.example", False),          # send_as external
    ("bob@example.net", True),                  # another user's
    ("sales@example.org", True),                # send_as names sales@example.com only, as Postfix does
    ("alice@example.com, bob@example.net", True),
    ("undisclosed-recipients:;", True),         # no address at all
])
def test_a_logged_in_users_from_header_must_be_theirs(site, header_from, refused):
    """Postfix checks the envelope sender; the From header a reader sees is rspamd's to
    check, against the same rows (semantics.owners)."""
    rspamd, _, _ = site
    verdict = rspamd.scan(message(header_from, "from-check"), "127.0.0.1", "alice@example.com",
                          user="alice@example.com")
    assert ("MAILSPEC_FROM_NOT_OWNED" in verdict["symbols"]) is refused, verdict["symbols"].keys()
    if refused:
        assert verdict["action"] == "reject", verdict
        assert verdict["messages"]["smtp_message"].startswith("5.7.1 "), verdict["messages"]
    elif header_from.isascii():  # rspamd's own rules score a raw 8-bit From (INVALID_FROM_8BIT)
        assert verdict["action"] == "no action", verdict


def test_the_from_header_of_mail_not_logged_in_is_not_checked(site):
    rspamd, _, _ = site
    verdict = rspamd.scan(message("bob@example.net", "trusted"), "192.168.1.20", "alice@example.com")
    assert "MAILSPEC_FROM_NOT_OWNED" not in verdict["symbols"]


def test_the_spam_folder_rule_files_what_rspamd_marked(site):
    """rspamd's X-Spam-Status, as its milter adds it, read by the compiled server-wide
    Sieve rule in the real Pigeonhole: marked mail goes to Junk, the rest is kept."""
    rspamd, _, work = site
    sieve_test = need_tool("sieve-test")
    folder = work / "junk"
    folder.mkdir()
    folder.chmod(0o777)  # sieve-test runs as nobody, and saves the compiled script beside it
    script = folder / "before.sieve"
    shutil.copy(work / "deploy" / "sieve" / "before.sieve", script)
    seen = set()
    for wanted in (-8, 4):  # the base score of such a message here is about 5.5
        raw = message("x@elsewhere.example", f"junk-{wanted}", "alice@example.com", f"X-Test-Score: {wanted}\r\n")
        verdict = rspamd.scan(raw, OUTSIDE, "x@elsewhere.example", recipient="alice@example.com")
        added = verdict["milter"]["add_headers"]["X-Spam-Status"]["value"]
        path = folder / f"{wanted}.eml"
        path.write_bytes(f"X-Spam-Status: {added}\r\n".encode() + raw)
        run = subprocess.run([sieve_test, "-o", "mail_uid=65534", "-o", "mail_gid=65534",
                              str(script), str(path)],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
        filed = "store message in folder: Junk" in run.stdout
        assert filed is added.startswith("Yes, "), (added, run.stdout)
        seen.add(filed)
    assert seen == {True, False}
