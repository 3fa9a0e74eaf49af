"""rspamd backend: the one milter that signs outgoing mail (dkim_signing), checks
incoming mail (SPF, DKIM, DMARC, with Authentication-Results), scores it against the
spec's spam thresholds, greylists mail to the domains that ask for it, limits what each
login sends an hour (both in Redis), and refuses a logged-in user's From header that is not theirs
(rspamd.local.lua, with a map from the Postfix sender-login rows). Its files go under
rspamd's own configuration: local.d/ merges into the distribution's settings, and
override.d/ replaces the ones that must not merge (a list of networks)."""

from __future__ import annotations

import ipaddress

import attrs
import idna

from mailspec import model
from mailspec.backends import lookup_table, render
from mailspec.backends.postfix import tables as postfix_tables
from mailspec.layout import Layout

LOOPBACK = ("127.0.0.0/8", "::1")
SENDERS_MAP = "mailspec/senders.map"  # under rspamd's LOCAL_CONFDIR
GREYLIST_MAP = "mailspec/greylist.map"


def header_senders(spec: model.Spec) -> list[tuple[str, str]]:
    """The sender-login rows for the From header: Postfix's, and each one in an IDN domain
    again with its U-label, as RFC 6532 lets a header name it (the envelope has A-labels)."""
    rows = dict(postfix_tables.sender_logins(spec))
    for address, logins in list(rows.items()):
        local, _, domain = address.rpartition("@")
        if "xn--" in domain:
            try:
                rows.setdefault(f"{local}@{idna.decode(domain)}", logins)
            except (idna.IDNAError, UnicodeError):
                continue  # not a name a header could spell otherwise
    return sorted(rows.items())


@attrs.frozen
class SpamOverride:
    name: str  # the settings entry: the domain
    recipients: str  # a UCL list of `@name`, one per name of the domain
    mark: int
    reject: int


def overrides(spec: model.Spec) -> list[SpamOverride]:
    """The domains whose spam scores differ from the server's, in rspamd's settings."""
    server = spec.server.spam
    return [SpamOverride(d.name, ucl_list([f"@{name}" for name in d.names]), d.spam.mark or server.mark,
                         d.spam.reject or server.reject)
            for d in spec.domains if d.spam.mark is not None or d.spam.reject is not None]


@attrs.frozen
class Signer:
    domain: str  # the From domain it signs for: a domain or one of its alias domains
    selector: str
    path: str  # the private key on the server


def signers(spec: model.Spec, layout: Layout) -> list[Signer]:
    """One per name of each signing domain; alias domains sign with their domain's key."""
    keys = layout.path(spec.server.keys)
    return [Signer(name, d.dkim.selector, f"{keys}/dkim/{d.name}.{d.dkim.selector}.key")
            for d in spec.domains if d.dkim.sign for name in d.names]


def trusted(spec: model.Spec) -> list[str]:
    """Where mail counts as ours to sign and not to check: loopback (mail made on the
    server: auto-replies, Sieve) and the trusted networks. rspamd's default also trusts
    the private ranges, which would sign, and not check, mail from any LAN sender."""
    networks = [str(ipaddress.ip_network(n.replace("[", "").replace("]", ""))) for n in spec.server.networks]
    return list(dict.fromkeys([*LOOPBACK, *networks]))


def greylisted(spec: model.Spec) -> list[str]:
    """Every name of each domain whose mail is greylisted."""
    server = spec.server.spam.greylist
    return sorted(name for d in spec.domains if (server if d.spam.greylist is None else d.spam.greylist)
                  for name in d.names)


def ucl_list(items: list[str], brackets: str = "[]") -> str:
    """Quoted strings as a UCL list (as a Lua table with brackets="{}")."""
    return brackets[0] + ", ".join(f'"{item}"' for item in items) + brackets[1]


def emit(spec: model.Spec, layout: Layout) -> dict[str, str]:
    ports = layout.ports
    return {
        "rspamd/local.d/dkim_signing.conf": render(__name__, "dkim_signing.conf.j2", signers=signers(spec, layout)),
        "rspamd/local.d/dmarc.conf": render(__name__, "dmarc.conf.j2"),
        "rspamd/local.d/milter_headers.conf": render(__name__, "milter_headers.conf.j2"),
        "rspamd/local.d/actions.conf": render(__name__, "actions.conf.j2", spam=spec.server.spam),
        "rspamd/local.d/settings.conf": render(__name__, "settings.conf.j2", overrides=overrides(spec)),
        "rspamd/local.d/force_actions.conf": render(__name__, "force_actions.conf.j2"),
        "rspamd/rspamd.local.lua": render(__name__, "rspamd.local.lua.j2", map=SENDERS_MAP,
                                          greylist_map=GREYLIST_MAP, trusted=ucl_list(trusted(spec), "{}"),
                                          delimiter=spec.server.recipient_delimiter),
        f"rspamd/{SENDERS_MAP}": lookup_table(header_senders(spec)),
        f"rspamd/{GREYLIST_MAP}": "".join(f"{name}\n" for name in greylisted(spec)),
        "rspamd/local.d/redis.conf": render(__name__, "redis.conf.j2", port=ports.redis,
                                            password=layout.rspamd_redis_password),
        "rspamd/local.d/greylist.conf": render(__name__, "greylist.conf.j2", map=GREYLIST_MAP,
                                               delay=spec.server.spam.greylist_delay),
        "rspamd/local.d/antivirus.conf": render(__name__, "antivirus.conf.j2",
                                                port=ports.clamd if spec.server.antivirus else None),
        "rspamd/local.d/ratelimit.conf": render(__name__, "ratelimit.conf.j2",
                                                per_hour=spec.server.rate_limits.messages_per_hour),
        "rspamd/local.d/worker-proxy.inc": render(__name__, "worker-proxy.inc.j2", port=ports.milter),
        "rspamd/local.d/worker-normal.inc": render(__name__, "worker-normal.inc.j2"),
        "rspamd/local.d/worker-controller.inc": render(__name__, "worker-controller.inc.j2",
                                                       port=ports.rspamd_controller),
        "rspamd/override.d/options.inc": render(__name__, "options.inc.j2", networks=ucl_list(trusted(spec))),
    }


PRIVATE_FILES = frozenset()
