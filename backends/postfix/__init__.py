"""Postfix backend: main.cf, master.cf and the lookup tables they name."""

from __future__ import annotations

import re

import attrs

from mailspec import model
from mailspec.backends import lookup_table, render
from mailspec.backends.postfix import mysql, srs
from mailspec.backends.postfix import tables as postfix_tables
from mailspec.layout import Layout

_MAPS = ("virtual_domains", "virtual_alias_domains", "virtual_mailboxes", "virtual_aliases",
         "sender_login", "recipient_access", "sender_access", "list_access", "own_domains", "own_senders")
# Without anonymous or export-grade suites, and without ones that have no place in 2026.
EXCLUDED_CIPHERS = "aNULL, eNULL, EXPORT, LOW, DES, 3DES, RC4, MD5, PSK, SRP, DSS, SEED, IDEA"
NULL_SENDER_REFUSED = ("inline:{ { <> = REJECT 5.7.1 the null sender is for bounces; "
                       "a logged-in user sends from an address } }")


@attrs.frozen
class Section:
    title: str
    parameters: tuple[tuple[str, str], ...]


@attrs.frozen
class Service:
    line: str
    options: tuple[str, ...] = ()


def uses_mysql(spec: model.Spec) -> bool:
    return spec.server.backend.kind is model.BackendKind.MYSQL


def map_reference(spec: model.Spec):
    """How main.cf names the lookup table `name`: lmdb or mysql."""
    if uses_mysql(spec):
        return lambda name: f"mysql:$config_directory/{mysql.file_name(name)}"
    return lambda name: f"lmdb:$config_directory/{name}"


_INLINE_KEY = re.compile(r"[A-Za-z0-9.+_@-]+")


def inline_senders(list_class: postfix_tables.ListClass) -> bool:
    """Whether a list's senders go into main.cf as an inline: table. A file table per
    list made every smtpd open (and stat, per connection) every list's file: 2,007 open
    files at 2,000 lists, and `Too many open files` under a 1,024 limit. An inline table
    costs no file. A list with a sender that inline syntax cannot hold keeps its file."""
    return all(_INLINE_KEY.fullmatch(sender) for sender, _ in list_class.senders)


def _class_restrictions(list_class: postfix_tables.ListClass, map_for, inline: bool) -> str:
    if list_class.senders is None:
        return "permit_sasl_authenticated, reject"
    if inline and inline_senders(list_class):
        rows = ", ".join(f"{sender}={verdict}" for sender, verdict in list_class.senders)
        return f"check_sender_access inline:{{ {rows} }}, reject"
    return f"check_sender_access {map_for(list_class.name)}, reject"


def main_cf(spec: model.Spec, tables: postfix_tables.PostfixTables, layout: Layout) -> list[Section]:
    server = spec.server
    table = map_reference(spec)
    # Only the host itself and what the spec names: not all of 127.0.0.0/8.
    networks = " ".join(("127.0.0.1/32", "[::1]/128", *server.networks))
    optional = [("relayhost", server.relay and server.relay.host), ("message_size_limit", server.message_size_limit)]
    classes = tables.list_classes
    return [
        Section("identity", (
            ("compatibility_level", "3.6"),
            ("myhostname", server.hostname),
            ("myorigin", "$myhostname"),
            # Virtual domains must not be in mydestination: only local system mail is.
            ("mydestination", "localhost"),
            ("mynetworks", networks),
            ("inet_interfaces", "all"),
            ("inet_protocols", "all"),
            ("smtpd_banner", "$myhostname ESMTP"),
            ("biff", "no"),
            ("append_dot_mydomain", "no"),
            ("readme_directory", "no"),
            ("default_database_type", "lmdb"),
            ("alias_maps", f"lmdb:{layout.aliases}"),
            ("alias_database", f"lmdb:{layout.aliases}"),
            ("queue_directory", layout.postfix_queue),
            ("data_directory", layout.postfix_data),
            ("maillog_file_prefixes", layout.path("/var")),
            ("maillog_file", layout.postfix_log),
            ("recipient_delimiter", server.recipient_delimiter),
            *((name, str(value)) for name, value in optional if value is not None),
        )),
        Section("virtual mailboxes, delivered to Dovecot over LMTP", (
            ("virtual_mailbox_domains", table("virtual_domains")),
            ("virtual_alias_domains", table("virtual_alias_domains")),
            ("virtual_mailbox_maps", table("virtual_mailboxes")),
            ("virtual_alias_maps", table("virtual_aliases")),
            ("virtual_transport", "lmtp:unix:private/dovecot-lmtp"),
        )),
        Section("TLS: opportunistic on port 25, required for submission; TLS 1.2 or newer", (
            ("smtpd_tls_cert_file", layout.path(server.tls.cert)),
            ("smtpd_tls_key_file", layout.path(server.tls.key)),
            ("smtpd_tls_security_level", "may"),
            ("smtpd_tls_auth_only", "yes"),
            ("smtpd_tls_protocols", ">=TLSv1.2"),
            ("smtpd_tls_mandatory_protocols", ">=TLSv1.2"),
            ("smtpd_tls_exclude_ciphers", EXCLUDED_CIPHERS),
            ("smtpd_tls_mandatory_ciphers", "high"),
            ("smtpd_tls_mandatory_exclude_ciphers", EXCLUDED_CIPHERS),
            ("smtpd_tls_session_cache_database", "lmdb:${data_directory}/smtpd_scache"),
            ("smtpd_tls_loglevel", "1"),
            ("smtp_tls_security_level", "may"),
            ("smtp_tls_protocols", ">=TLSv1.2"),
            ("smtp_tls_mandatory_protocols", ">=TLSv1.2"),
            ("smtp_tls_session_cache_database", "lmdb:${data_directory}/smtp_scache"),
        )),
        Section("SASL through Dovecot; AUTH is offered only on submission (see master.cf)", (
            ("smtpd_sasl_type", "dovecot"),
            ("smtpd_sasl_path", "private/auth"),
            ("smtpd_sasl_auth_enable", "no"),
            ("smtpd_sasl_security_options", "noanonymous"),
            ("smtpd_sender_login_maps", table("sender_login")),
        )),
        Section("SMTP smuggling: a bare LF never ends DATA, and pipelining before EHLO "
                "or without the extension drops the client (Postfix's advice for 3.7)", (
            ("smtpd_forbid_bare_newline", "yes"),
            ("smtpd_forbid_bare_newline_exclusions", "$mynetworks"),
            ("smtpd_forbid_unauth_pipelining", "yes"),
            ("smtpd_data_restrictions", "reject_unauth_pipelining"),
        )),
        Section("rspamd, the one milter: it signs what we send (DKIM) and checks what we "
                "receive (SPF, DKIM, DMARC)", (
            ("smtpd_milters", f"inet:127.0.0.1:{layout.ports.milter}"),
            ("non_smtpd_milters", "$smtpd_milters"),  # auto-replies and Sieve's mail: signed too
            ("internal_mail_filter_classes", "bounce"),  # bounces: signed too (Postfix allows this for DKIM)
            ("milter_protocol", "6"),
            # rspamd down: the mail waits in the senders' queues rather than passing unsigned
            # and unchecked; the switch's health check refuses a generation without it.
            ("milter_default_action", "tempfail"),
        )),
        Section("SRS: mail that leaves with an outside sender (forwards, aliases, list members "
                "outside) gets an SRS sender in our domain; nothing else is rewritten (srs.py)",
                srs.parameters(spec, layout, table)),
        *([Section("the relay host: logged in, over TLS that verifies its certificate, or not at all",
                   relay_login(server.relay, layout))] if server.relay and server.relay.login else []),
        *([Section("postscreen on port 25: DNS blocklists and the pregreet test, before smtpd",
                   postscreen(server.postscreen))] if server.postscreen is not None else []),
        Section("restrictions", (
            ("smtpd_helo_required", "yes"),
            ("disable_vrfy_command", "yes"),
            ("smtpd_restriction_classes", ", ".join(c.name for c in classes)),
            *((c.name, _class_restrictions(c, table, not uses_mysql(spec))) for c in classes),
            # Port 25: our own domains' senders come from trusted networks or submission.
            ("smtpd_sender_restrictions", ", ".join((
                f"check_sender_access {table('sender_access')}",
                *(() if server.filters.own_domains_from_outside else
                  ("permit_mynetworks", f"check_sender_access {table('own_domains')}"))))),
            ("mailspec_submission_sender_restrictions", ", ".join((
                f"check_sender_access {NULL_SENDER_REFUSED}", "reject_sender_login_mismatch",
                f"check_sender_access {table('sender_access')}"))),
            ("smtpd_relay_restrictions",
             "permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination"),
            # Checked for every client, logged in or not: send-only mailboxes and refused
            # recipients first, then each list's posting policy.
            ("smtpd_recipient_restrictions", ", ".join((
                f"check_recipient_access {table('recipient_access')}",
                "check_recipient_access regexp:$config_directory/plus_disabled",
                f"check_recipient_access {table('list_access')}",
                "permit_sasl_authenticated", "permit_mynetworks", "reject_unauth_destination"))),
        )),
    ]


_SUBMISSION = (
    "smtpd_sasl_auth_enable=yes",
    "smtpd_tls_auth_only=yes",
    "smtpd_client_restrictions=permit_sasl_authenticated,reject",
    "smtpd_sender_restrictions=$mailspec_submission_sender_restrictions",
)


def port_25(spec: model.Spec, layout: Layout) -> list[Service]:
    """smtpd on port 25, or postscreen in front of it; submission never goes through
    either, nor the rate limits (trusted networks are exempt from them too)."""
    port, limits = layout.ports.smtp, spec.server.rate_limits
    options = tuple(f"{name}={value}" for name, value in (
        ("smtpd_client_connection_count_limit", limits.connections),
        ("smtpd_client_connection_rate_limit", limits.connection_rate)) if value is not None)
    if spec.server.postscreen is None:
        return [Service(f"{port} inet  n       -       n       -       -       smtpd", options)]
    return [
        Service(f"{port} inet  n       -       n       -       1       postscreen"),
        Service("smtpd     pass  -       -       n       -       -       smtpd", options),
        Service("dnsblog   unix  -       -       n       -       0       dnsblog"),
        Service("tlsproxy  unix  -       -       n       -       0       tlsproxy"),
    ]


def postscreen(screen: model.Postscreen | None) -> tuple[tuple[str, str], ...]:
    if screen is None:
        return ()
    allowed = ", ".join(f"{{{network} permit}}" for network in screen.allow)
    dnsbl = (
        ("postscreen_dnsbl_sites", ", ".join(str(site) for site in screen.dnsbl)),
        ("postscreen_dnsbl_threshold", str(screen.threshold)),
        ("postscreen_dnsbl_action", "enforce"),  # refused with 550 at RCPT, so the sender learns why
    ) if screen.dnsbl else ()
    return (
        ("postscreen_access_list", "permit_mynetworks" + (f", cidr:{{ {allowed} }}" if allowed else "")),
        *dnsbl,
        ("postscreen_greet_action", "enforce" if screen.pregreet else "ignore"),
        ("postscreen_cache_map", "lmdb:$data_directory/postscreen_cache"),
    )


SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"  # Debian's ca-certificates


def relay_login(relay: model.Relay, layout: Layout) -> tuple[tuple[str, str], ...]:
    """The password table is written by the switch from the password file: it never
    enters the deploy. A failed login defers the mail, and the log says the relay's reply."""
    return (
        ("smtp_sasl_auth_enable", "yes"),
        ("smtp_sasl_password_maps", f"texthash:{layout.relay_passwords}"),
        ("smtp_sasl_security_options", "noanonymous"),
        ("smtp_sasl_tls_security_options", "noanonymous"),
        ("smtp_tls_policy_maps", f"inline:{{ {{{relay.host} = secure match={relay.tls_name or relay.name}}} }}"),
        ("smtp_tls_CAfile", layout.path(SYSTEM_CAS)),
        ("smtp_tls_loglevel", "1"),  # the log says whether the relay's certificate verified
    )


def master_cf(spec: model.Spec, layout: Layout) -> list[Service]:
    ports = layout.ports  # numeric and unpadded: a relocated master.cf differs only in them
    return [
        *port_25(spec, layout),
        Service(f"{ports.submission} inet  n       -       n       -       -       smtpd",
                ("syslog_name=postfix/submission", "smtpd_tls_security_level=encrypt", *_SUBMISSION)),
        Service(f"{ports.submissions} inet  n       -       n       -       -       smtpd",
                ("syslog_name=postfix/submissions", "smtpd_tls_wrappermode=yes",
                 "smtpd_tls_security_level=encrypt", *_SUBMISSION)),
        Service("pickup    unix  n       -       n       60      1       pickup"),
        Service("cleanup   unix  n       -       n       -       0       cleanup"),
        Service("qmgr      unix  n       -       n       300     1       qmgr"),
        Service("tlsmgr    unix  -       -       n       1000?   1       tlsmgr"),
        Service("rewrite   unix  -       -       n       -       -       trivial-rewrite"),
        Service("bounce    unix  -       -       n       -       0       bounce"),
        Service("defer     unix  -       -       n       -       0       bounce"),
        Service("trace     unix  -       -       n       -       0       bounce"),
        Service("verify    unix  -       -       n       -       1       verify"),
        Service("flush     unix  n       -       n       1000?   0       flush"),
        Service("proxymap  unix  -       -       n       -       -       proxymap"),
        Service("proxywrite unix -       -       n       -       1       proxymap"),
        Service("smtp      unix  -       -       n       -       -       smtp"),
        Service("relay     unix  -       -       n       -       -       smtp",
                ("syslog_name=postfix/$service_name",)),
        Service("showq     unix  n       -       n       -       -       showq"),
        Service("error     unix  -       -       n       -       -       error"),
        Service("retry     unix  -       -       n       -       -       error"),
        Service("discard   unix  -       -       n       -       -       discard"),
        Service("local     unix  -       n       n       -       -       local"),
        Service("virtual   unix  -       n       n       -       -       virtual"),
        Service("lmtp      unix  -       -       n       -       -       lmtp"),
        Service("anvil     unix  -       -       n       -       1       anvil"),
        Service("scache    unix  -       -       n       -       1       scache"),
        Service("postlog   unix-dgram n  -       n       -       1       postlogd"),
        *srs.services(layout, Service),
    ]


PRIVATE_FILES = frozenset()


def emit(spec: model.Spec, layout: Layout) -> dict[str, str]:
    tables = postfix_tables.build(spec)
    files = {
        "postfix/main.cf": render(__name__, "main.cf.j2", sections=main_cf(spec, tables, layout)),
        "postfix/master.cf": render(__name__, "master.cf.j2", services=master_cf(spec, layout)),
        "postfix/plus_disabled": lookup_table(tables.plus_disabled),
        f"postfix/{srs.SRS_RECIPIENTS}": srs.SRS_RECIPIENT_PATTERN,
    }
    backend = spec.server.backend
    senders = [c for c in tables.list_classes if c.senders is not None]
    if uses_mysql(spec):
        option_file = layout.path(backend.password_file)
        for name in _MAPS:
            files[f"postfix/{mysql.file_name(name)}"] = mysql.table_file(
                backend, option_file, mysql.QUERIES[name])
        for list_class in senders:
            files[f"postfix/{mysql.file_name(list_class.name)}"] = mysql.table_file(
                backend, option_file, mysql.list_senders_query(list_class.name))
        return files
    for name in _MAPS:
        files[f"postfix/{name}"] = lookup_table(getattr(tables, name))
    for list_class in senders:
        if not inline_senders(list_class):
            files[f"postfix/{list_class.name}"] = lookup_table(list_class.senders)
    return files
