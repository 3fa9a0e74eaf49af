"""The nginx around mailspec's site: on a server, Debian's nginx.conf includes conf.d/;
a relocated nginx (the host tier) and the validation of a generation not yet current
use a main configuration of their own, which includes only mailspec's site."""

from __future__ import annotations

import os
import tempfile

from mailspec.layout import Layout
from mailspec.switch import build

SITE = "conf.d/mailspec.conf"


def main_config(site: str, pid: str | None, logs: str | None) -> str:
    """An nginx.conf that serves `site` alone; without `logs`, errors go to stderr."""
    return "\n".join([
        f"pid {pid};" if pid else "",
        f"error_log {logs}/error.log;" if logs else "error_log stderr;",
        "events {}",
        "http {",
        "    include /etc/nginx/mime.types;",
        f"    access_log {logs}/access.log;" if logs else "    access_log off;",
        f"    include {site};",
        "}",
        "",
    ])


def relocated_config(layout: Layout) -> str:
    """Where a relocated nginx's main configuration is written (by each start)."""
    path = layout.nginx_main
    os.makedirs(layout.nginx_log, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        # Only mailspec's site is there; a glob, as a spec without domains has none.
        handle.write(main_config(os.path.join(layout.nginx_dir, "conf.d", "*.conf"), layout.nginx_pid,
                                 layout.nginx_log))
    return path


def validate(etc: str) -> None:
    """`nginx -t` on a generation's site (its etc/), which need not be current."""
    site = os.path.join(etc, "nginx", SITE)
    if not os.path.exists(site):
        return
    with tempfile.NamedTemporaryFile("w", suffix=".conf", encoding="utf-8") as config:
        config.write(main_config(site, None, None))
        config.flush()
        build.run("nginx", "-t", "-q", "-e", "stderr", "-c", config.name, what="`nginx -t`")
