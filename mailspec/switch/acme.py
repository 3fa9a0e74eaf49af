"""The certificate from an ACME CA (`tls { acme … }`): certbot gets it once the
generation that serves its challenges runs; until then the daemons serve a self-signed
stand-in, so that they can start at all.

certbot's settings and deploy hook are in the deploy (backends/acme); the hook copies
each new certificate to where the daemons read it and reloads them, at renewals too.
"""

from __future__ import annotations

import filecmp
import os

from mailspec.layout import Layout
from mailspec.switch import build
from mailspec.switch.store import SwitchError

STAND_IN_DAYS = "30"


def settings(deploy: str) -> str | None:
    """certbot's settings in a deploy tree; None when the spec has no `acme`."""
    path = os.path.join(deploy, "acme", "certbot.ini")
    return path if os.path.exists(path) else None


def stand_in(cert: str, key: str) -> bool:
    """A self-signed certificate and key where the daemons read them, if there is none;
    whether it made them. Nothing trusts it: it only lets the daemons start."""
    if os.path.exists(cert) and os.path.exists(key):
        return False
    for path in (cert, key):
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    old = os.umask(0o077)
    try:
        build.run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", cert, "-days", STAND_IN_DAYS, "-subj", "/CN=mailspec ACME stand-in",
                  what="making a stand-in certificate until the ACME CA issues one")
    finally:
        os.umask(old)
    os.chmod(cert, 0o644)
    return True


def write_reload(layout: Layout) -> None:
    """The script the deploy hook runs to make the daemons that serve TLS read the new
    certificate: systemd's units on a server, the relocated masters with their -c."""
    if layout.prefix:
        commands = [f"postfix -c {layout.postfix_dir} reload", f"doveadm -c {layout.dovecot_dir}/dovecot.conf reload",
                    f"nginx -e stderr -c {layout.nginx_main} -s reload"]
    else:
        commands = ["systemctl reload postfix dovecot nginx"]
    text = "# Written by mailspec switch: certbot's deploy hook runs it.\nset -e\n" + "\n".join(commands) + "\n"
    os.makedirs(os.path.dirname(layout.tls_reload), exist_ok=True)
    with open(layout.tls_reload, "w", encoding="utf-8") as handle:
        handle.write(text)


def obtain(current_deploy: str, layout: Layout, cert: str) -> bool:
    """certbot for the generation now current: a certificate with its names, unless the
    one it has still does. Whether the daemons' copy changed. SwitchError if certbot fails."""
    config = settings(current_deploy)
    if config is None:
        return False
    with open(cert, "rb") as handle:
        before = handle.read()
    os.makedirs(layout.acme_webroot, mode=0o755, exist_ok=True)  # certbot wants it there; nginx serves it
    write_reload(layout)
    try:
        build.run("certbot", "certonly", "--config", config, what="getting the certificate from the ACME CA")
    except SwitchError as error:
        raise SwitchError(error.message + "\nthe daemons go on serving the certificate they had",
                          "check that DNS points each name at this server and that port 80 is reachable, "
                          "then switch again") from None
    issued = os.path.join(layout.acme_lineage, "fullchain.pem")
    # certbot runs the hook only when it issues: a copy lost since is put back here.
    if os.path.exists(issued) and not filecmp.cmp(issued, cert, shallow=False):
        hook = os.path.join(current_deploy, "acme", "deploy-hook")
        build.run("env", f"RENEWED_LINEAGE={layout.acme_lineage}", "sh", hook,
                  what="installing the certificate certbot has")
    with open(cert, "rb") as handle:
        return handle.read() != before
