"""SRS in Postfix: only mail that leaves with an outside sender is rewritten.

Postfix's cleanup, where canonical maps apply, runs before routing, so a sender_canonical
map on the main cleanup would rewrite every message, including mail delivered here
(postsrsd's README, and mailcow's users, know that bug). Instead, mail for an outside
recipient whose sender is not ours is routed (sender_dependent_default_transport_maps)
to a loopback smtpd whose own cleanup rewrites the sender through postsrsd; it leaves
from there with the SRS sender, which is ours. Bounces to SRS addresses are undone by
the main cleanup's recipient map, which asks postsrsd only about SRS-shaped addresses.
"""

from __future__ import annotations

from mailspec import model
from mailspec.layout import Layout

KEEP = "smtp:"  # the default transport, and the default next hop (the relay host, or the MX)
FORWARD = "srs-forward"
CLEANUP = "srs-cleanup"
SRS_RECIPIENTS = "srs_recipients"  # regexp: SRS-shaped addresses, the only ones postsrsd is asked about


def own_senders(spec: model.Spec) -> tuple[tuple[str, str], ...]:
    """Senders whose mail leaves as it is: every name we serve (a transport map's `@domain`)."""
    return tuple(sorted((f"@{name}", KEEP) for d in spec.domains for name in d.names))


def parameters(spec: model.Spec, layout: Layout, table) -> tuple[tuple[str, str], ...]:
    ports = layout.ports
    # The null sender (bounces: "<>", quoted as the lookup quotes it) and the host's own
    # mail keep theirs too. No catch-all may follow these tables: Postfix tries each
    # key (the address, then `@domain`) in every table before the next key, so a
    # catch-all would answer before `@domain` is asked. The default transport is it.
    kept = f'inline:{{ {{ "<>"={KEEP} }}, {{ @{spec.server.hostname}={KEEP} }} }}'
    return (
        ("default_transport", f"{FORWARD}:[127.0.0.1]:{ports.srs_reinject}"),
        ("sender_dependent_default_transport_maps", f"{kept}, {table('own_senders')}"),
        ("recipient_canonical_maps", f"pipemap:{{ regexp:$config_directory/{SRS_RECIPIENTS}, "
                                     f"tcp:127.0.0.1:{ports.srs_reverse} }}"),
        ("recipient_canonical_classes", "envelope_recipient"),
    )


SRS_RECIPIENT_PATTERN = "/^(SRS[01][-+=].+@.+)$/ ${1}\n"

# The reinjection smtpd takes mail only from loopback, checks nothing again (rspamd has
# seen it), and hands it to a cleanup that rewrites the envelope sender and nothing else.
_REINJECT = (
    "syslog_name=postfix/srs",
    f"cleanup_service_name={CLEANUP}",
    "mynetworks=127.0.0.0/8",
    "smtpd_client_restrictions=permit_mynetworks,reject",
    "smtpd_helo_restrictions=", "smtpd_sender_restrictions=", "smtpd_data_restrictions=",
    "smtpd_relay_restrictions=permit_mynetworks,reject",
    "smtpd_recipient_restrictions=permit_mynetworks,reject",
    "smtpd_milters=", "smtpd_tls_security_level=none", "smtpd_sasl_auth_enable=no",
)


def services(layout: Layout, service) -> list:
    ports = layout.ports
    return [
        service(f"{FORWARD} unix  -       -       n       -       -       smtp",
                ("syslog_name=postfix/srs-forward", "smtp_tls_security_level=none")),
        service(f"127.0.0.1:{ports.srs_reinject} inet n  -       n       -       -       smtpd", _REINJECT),
        service(f"{CLEANUP} unix  n       -       n       -       0       cleanup",
                ("syslog_name=postfix/srs-cleanup",
                 f"sender_canonical_maps=tcp:127.0.0.1:{ports.srs_forward}",
                 "sender_canonical_classes=envelope_sender",
                 "recipient_canonical_maps=", "virtual_alias_maps=")),
    ]
