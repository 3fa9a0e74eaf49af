"""rspamd backend: the one milter that signs outgoing mail (dkim_signing) and checks
incoming mail (SPF, DKIM, DMARC, with Authentication-Results). Its files go under
rspamd's own configuration: local.d/ merges into the distribution's settings, and
override.d/ replaces the ones that must not merge (a list of networks)."""

from __future__ import annotations

import ipaddress

import attrs

from mailspec import model
from mailspec.backends import render
from mailspec.layout import Layout

LOOPBACK = ("127.0.0.0/8", "::1")


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


def ucl_list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def emit(spec: model.Spec, layout: Layout) -> dict[str, str]:
    ports = layout.ports
    return {
        "rspamd/local.d/dkim_signing.conf": render(__name__, "dkim_signing.conf.j2", signers=signers(spec, layout)),
        "rspamd/local.d/dmarc.conf": render(__name__, "dmarc.conf.j2"),
        "rspamd/local.d/milter_headers.conf": render(__name__, "milter_headers.conf.j2"),
        "rspamd/local.d/actions.conf": render(__name__, "actions.conf.j2"),
        "rspamd/local.d/worker-proxy.inc": render(__name__, "worker-proxy.inc.j2", port=ports.milter),
        "rspamd/local.d/worker-normal.inc": render(__name__, "worker-normal.inc.j2"),
        "rspamd/local.d/worker-controller.inc": render(__name__, "worker-controller.inc.j2",
                                                       port=ports.rspamd_controller),
        "rspamd/override.d/options.inc": render(__name__, "options.inc.j2", networks=ucl_list(trusted(spec))),
    }


PRIVATE_FILES = frozenset()
