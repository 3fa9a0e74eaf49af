"""acme backend: the server's certificate from an ACME CA, through Debian's certbot.

certbot proves each name over HTTP (webroot: nginx serves its challenges on port 80),
keeps what renewals need in its renewal/ directory, and its timer renews. Its deploy
hook copies the certificate to where the daemons read it, whole, and reloads them; so
the daemons' paths never depend on certbot's own layout, and the switch can give them
a self-signed stand-in until the first certificate is issued.
"""

from __future__ import annotations

import os

from mailspec import model
from mailspec.backends import render
from mailspec.backends.nginx import web_names
from mailspec.certs import MAX_NAMES
from mailspec.layout import Layout


def acme_names(spec: model.Spec) -> list[str]:
    """The names the CA is asked for: those DNS points at the server (`mailspec dns`),
    all of them up to MAX_NAMES (the most a public CA puts in one certificate), else the
    hostname."""
    names = web_names(spec)
    return names if len(names) <= MAX_NAMES else names[:1]


def emit(spec: model.Spec, layout: Layout) -> dict[str, str]:
    acme = spec.server.tls.acme
    if acme is None:
        return {}
    letsencrypt = layout.letsencrypt_dir
    return {
        "acme/certbot.ini": render(
            __name__, "certbot.ini.j2", names=", ".join(acme_names(spec)),
            cert_name=os.path.basename(layout.acme_lineage),
            directory=acme.directory, email=acme.email and acme.email.address, webroot=layout.acme_webroot,
            config_dir=letsencrypt, work_dir=layout.path("/var/lib/letsencrypt"),
            logs_dir=layout.path("/var/log/letsencrypt"),
            hook=f"{layout.state_dir}/current/deploy/acme/deploy-hook"),
        "acme/deploy-hook": render(
            __name__, "deploy-hook.j2", cert=layout.path(spec.server.tls.cert), key=layout.path(spec.server.tls.key),
            reload=layout.tls_reload),
    }


PRIVATE_FILES = frozenset()
