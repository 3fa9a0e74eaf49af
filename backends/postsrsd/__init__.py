"""postsrsd backend: the Sender Rewriting Scheme for mail we forward to outside addresses.

Forwarded mail keeps its sender's address, whose SPF does not name our server; SRS
rewrites it to an address in one of our domains that postsrsd can undo when a bounce
comes back. Only mail that leaves with an outside sender is rewritten (postfix.srs
routes it through a second cleanup); mail delivered here, and our users' own mail, keep
their senders. The file is a systemd EnvironmentFile and a shell script alike.
"""

from __future__ import annotations

from mailspec import model
from mailspec.backends import render
from mailspec.layout import Layout


def srs_domain(spec: model.Spec) -> str:
    """The domain SRS addresses are in: one we receive for (its bounces must be
    accepted), the one the hostname is in if any, else the first declared."""
    hostname = spec.server.hostname
    within = [d.name for d in spec.domains if hostname == d.name or hostname.endswith("." + d.name)]
    return max(within, key=len) if within else spec.domains[0].name


def emit(spec: model.Spec, layout: Layout) -> dict[str, str]:
    if not spec.domains:
        return {}
    ports = layout.ports
    return {"postsrsd/postsrsd.env": render(
        __name__, "postsrsd.env.j2", domain=srs_domain(spec), secret=layout.srs_secret,
        forward=ports.srs_forward, reverse=ports.srs_reverse, chroot=layout.postsrsd_chroot)}


PRIVATE_FILES = frozenset()
