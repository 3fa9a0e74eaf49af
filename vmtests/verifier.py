"""The receiving end on the internet: rspamd on the outside machine, checking SPF, DKIM
and DMARC of every message the outside MTA takes in against the LAN's DNS, and writing
Authentication-Results, as a large mailbox provider does. It also signs what the outside
sends (outside.test, ed25519, with DMARC p=reject), so mail that the server forwards
carries a signature from elsewhere."""

from __future__ import annotations

import re

from mailspec.vmtests import log
from mailspec.vmtests.machine import Machine

MILTER = "127.0.0.1:11332"
KEY = "/var/lib/rspamd/dkim/outside.test.mail.key"
# How long a first rspamd start may take under TCG (it compiles its rules).
LOADING = 600
FILES = {
    # Only the outside machine's own mail is local: the server's is checked, like anyone's.
    "/etc/rspamd/override.d/options.inc": 'local_addrs = ["127.0.0.0/8", "::1"];\n',
    "/etc/rspamd/local.d/milter_headers.conf": 'use = ["authentication-results"];\n',
    # It judges nothing: the scenarios read its verdicts in the headers.
    "/etc/rspamd/local.d/actions.conf": "reject = null;\nadd_header = null;\ngreylist = null;\n"
                                        "rewrite_subject = null;\n",
    "/etc/rspamd/local.d/worker-proxy.inc": f'bind_socket = "{MILTER}";\nmilter = yes;\ntimeout = 120s;\n'
                                            'upstream "local" {\n  default = yes;\n  self_scan = yes;\n}\n',
    "/etc/rspamd/local.d/dkim_signing.conf": 'path = "/var/lib/rspamd/dkim/$domain.$selector.key";\n'
                                             'selector = "mail";\nallow_username_mismatch = true;\n',
}


def prepare(outside: Machine, domain: str) -> tuple[str, ...]:
    """rspamd's files and the outside's signing key; the dnsmasq lines that publish the
    key and the outside's DMARC policy."""
    for path, text in FILES.items():
        outside.write_file(path, text)
    printed = outside.succeed(f"mkdir -p /var/lib/rspamd/dkim && rspamadm dkim_keygen -t ed25519 -d {domain} "
                              f"-s mail -k {KEY} && chown -R _rspamd:_rspamd /var/lib/rspamd/dkim")
    public = re.search(r'p=([A-Za-z0-9+/=]+)', printed)
    assert public, printed
    return (f'txt-record=mail._domainkey.{domain},"v=DKIM1; k=ed25519; p={public.group(1)}"',
            f'txt-record=_dmarc.{domain},"v=DMARC1; p=reject"')


def start(outside: Machine) -> None:
    """The outside Postfix calls rspamd for mail in and out; both wait until it listens."""
    with log.step(f"{outside.name}: rspamd checks and signs for the outside MTA"):
        outside.succeed("; ".join([
            "set -e", f"postconf -e 'smtpd_milters = inet:{MILTER}' 'non_smtpd_milters = inet:{MILTER}' "
            "'milter_protocol = 6' 'milter_default_action = tempfail'",
            "systemctl start rspamd", "postfix reload"]))
        outside.wait_until_succeeds(f"ss -Hltn 'sport = :{MILTER.rsplit(':', 1)[1]}' | grep -q .", LOADING)


def results(message: str) -> dict[str, list[str]]:
    """The outside's verdicts in the topmost Authentication-Results (the last one added):
    {method: [result with its properties, ...]}, e.g. {"dkim": ["pass header.d=example.com ..."]}."""
    unfolded = re.sub(r"\r?\n[ \t]+", " ", message.split("\n\n", 1)[0].replace("\r\n", "\n"))
    header = re.search(r"^Authentication-Results: *(.*)$", unfolded, re.MULTILINE | re.IGNORECASE)
    found: dict[str, list[str]] = {}
    for part in (header.group(1).split(";")[1:] if header else []):
        method, _, rest = part.strip().partition("=")
        found.setdefault(method, []).append(rest)
    return found
