"""nginx backend: what mail clients and sending servers fetch from us over HTTPS.

- the MTA-STS policy (RFC 8461), at https://mta-sts.<domain>/.well-known/mta-sts.txt;
- Thunderbird's autoconfig, at https://autoconfig.<domain>/mail/config-v1.1.xml;
- Outlook's autodiscover, which it POSTs to https://autodiscover.<domain>/autodiscover/autodiscover.xml.

The answers are the same for every domain, so they are static files. Port 80 only
redirects to HTTPS (and answers ACME challenges when the certificate comes from ACME):
a policy or a client set-up fetched in plaintext could be forged on the way. The site
goes into conf.d/, which Debian's nginx.conf includes; the rest of nginx is left alone.
"""

from __future__ import annotations

import ipaddress

from mailspec import model
from mailspec.backends import render
from mailspec.dns.records import sts_policy
from mailspec.layout import Layout

SITE = "nginx/conf.d/mailspec.conf"


def web_names(spec: model.Spec) -> list[str]:
    """The names the site answers to, which its certificate must cover: the hostname,
    and each served domain name's autoconfig, autodiscover and (with a policy) mta-sts."""
    prefixes = ["autoconfig", "autodiscover"] + (["mta-sts"] if spec.server.mta_sts is not None else [])
    return list(dict.fromkeys([spec.server.hostname,
                               *(f"{p}.{n}" for d in spec.domains for n in d.names for p in prefixes)]))


def emit(spec: model.Spec, layout: Layout) -> dict[str, str]:
    if not spec.domains:
        return {}
    server, ports, root = spec.server, layout.ports, f"{layout.nginx_dir}/mailspec"
    files = {
        SITE: render(__name__, "mailspec.conf.j2", names=" ".join(web_names(spec)), http=ports.http,
                     https=ports.https, ipv6=any(ipaddress.ip_address(a).version == 6 for a in server.addresses),
                     cert=layout.path(server.tls.cert), key=layout.path(server.tls.key), root=root,
                     policy=server.mta_sts is not None, acme=server.tls.acme is not None,
                     acme_webroot=layout.acme_webroot),
        "nginx/mailspec/config-v1.1.xml": render(
            __name__, "config-v1.1.xml.j2", id=spec.domains[0].name, hostname=server.hostname,
            domains=[n for d in spec.domains for n in d.names], imaps=ports.imaps, submissions=ports.submissions),
        "nginx/mailspec/autodiscover.xml": render(__name__, "autodiscover.xml.j2", hostname=server.hostname,
                                                  imaps=ports.imaps, submissions=ports.submissions),
    }
    if server.mta_sts is not None:
        files["nginx/mailspec/mta-sts.txt"] = sts_policy(spec)
    return files


PRIVATE_FILES = frozenset()
