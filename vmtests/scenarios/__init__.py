"""The built-in scenarios. Each reads what to test from the spec (its mailboxes,
aliases, lists, rules) and what should happen from the reference semantics
(`resolve`, `may_send`, `may_receive`, `sieve_eval`), then checks the running VM."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from mailspec import model
from mailspec.vmtests import log
from mailspec.vmtests.deploy import check_logs
from mailspec.vmtests.driver import Site
from mailspec.vmtests.scenarios.abuse import (
    antivirus,
    fail2ban,
    has_postscreen,
    has_spam_checks,
    has_two_domains_and_logins,
    rspamd_state,
    screened,
    spam,
)
from mailspec.vmtests.scenarios.acme import acme, has_domains
from mailspec.vmtests.scenarios.authentication import authentication, has_signing_sender
from mailspec.vmtests.scenarios.common import (  # noqa: F401  (the scenarios' vocabulary)
    ScenarioFailure,
    expect,
    has_receiving,
    has_submitter,
    mailboxes,
    receiving,
)
from mailspec.vmtests.scenarios.delivery import (
    RELOAD_MESSAGES,
    delivery,
    forwarding,
    has_forwarding,
    has_routing,
    has_sieve,
    has_small_quota,
    pop3,
    quota,
    reload_safety,
    routing,
    sieve,
    submission,
)
from mailspec.vmtests.scenarios.policy import (
    has_lists,
    has_send_rights,
    lists,
    plaintext_auth,
    relay_matrix,
    send_rights,
)
from mailspec.vmtests.scenarios.smarthost import smarthost


@attrs.frozen
class Scenario:
    name: str
    title: str
    run: Callable[[Site], None]
    not_applicable: Callable[[model.Spec], str | None]  # why the spec gives it nothing to test
    outside: bool = False  # needs the outside MTA on the LAN
    checking: bool = False  # and the outside checks SPF, DKIM and DMARC (vmtests.verifier)
    restart: bool = False  # install with a full restart instead of a reload


SCENARIOS = (
    Scenario("delivery", "mail to every mailbox and alias, read back over IMAP", delivery, has_receiving,
             restart=True),
    Scenario("submission", "587 STARTTLS+AUTH and 465 implicit TLS, locally and outside", submission,
             has_submitter, outside=True),
    Scenario("relay", "the open-relay matrix on 25, 587 and 465", relay_matrix, has_submitter, outside=True),
    Scenario("plaintext-auth", "no password accepted before TLS", plaintext_auth, has_submitter),
    Scenario("routing", "aliases, catch-all, domain aliases, plus addressing", routing, has_routing),
    Scenario("forwarding", "forwards reach the outside MTA, kept copies are stored", forwarding,
             has_forwarding, outside=True),
    Scenario("sieve", "fileinto, discard and one vacation reply per sender", sieve, has_sieve, outside=True),
    Scenario("quota", "a message over the quota bounces", quota, has_small_quota),
    Scenario("pop3", "with `pop3`: a message delivered a moment before is read on 995 and on 110 after STLS", pop3,
             has_receiving),
    Scenario("lists", "list posting policies with and without login", lists, has_lists),
    Scenario("send-rights", "send-only mailboxes and send_as rights", send_rights, has_send_rights),
    Scenario("reload", f"reload under load: {RELOAD_MESSAGES} messages delivered exactly once", reload_safety,
             has_receiving),
    Scenario("authentication", "SPF, DKIM and DMARC at a receiver on the internet, DNS as printed, HTTPS",
             authentication, has_signing_sender, outside=True, checking=True),
    Scenario("acme", "the certificate from an ACME CA on the internet (pebble), verified on 465 and 993",
             acme, has_domains, outside=True),
    Scenario("spam", "GTUBE refused on 25; a From header the login may not use refused on submission",
             spam, has_spam_checks),
    Scenario("postscreen", "port 25 behind postscreen: a client in the test DNSBL and one that talks early "
             "are refused", screened, has_postscreen, outside=True),
    Scenario("rspamd-state", "greylisting, learning from the spam folder and an hourly limit per login, "
             "kept in mailspec's Redis", rspamd_state, has_two_domains_and_logins),
    Scenario("antivirus", "ClamAV with the scenario's own EICAR signature: an infected attachment is refused on 25",
             antivirus, has_receiving),
    Scenario("fail2ban", "failed IMAP logins from outside get the outside machine banned for the ban time; "
             "loopback never", fail2ban, has_receiving, outside=True),
    Scenario("smarthost", "outgoing mail through a provider's smarthost, logged in over verified TLS; a stale "
             "password shows as the provider's 535 in the deferral", smarthost, has_submitter, outside=True),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def run(site: Site, scenario: Scenario) -> None:
    with log.step(f"scenario {scenario.name}: {scenario.title}"):
        scenario.run(site)
        check_logs(site.server)
