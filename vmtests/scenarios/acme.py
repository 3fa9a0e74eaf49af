"""The certificate from an ACME CA on the internet: pebble (the ACME test CA) on the
outside machine, validating over the zones `mailspec dns` printed and the server's
generated nginx; clients that trust only pebble's root verify the mail ports."""

from __future__ import annotations

import json
import shlex

import attrs

from mailspec import model
from mailspec.vmtests import log, network
from mailspec.vmtests.deploy import compile_model, install_deploy
from mailspec.vmtests.driver import Site
from mailspec.vmtests.scenarios.common import expect

PEBBLE = f"{network.OUTSIDE_ADDRESS}:14000"
MANAGEMENT = f"{network.OUTSIDE_ADDRESS}:15000"
LISTENER = "/etc/pebble/listener"  # .crt and .key: pebble's own HTTPS, which the server trusts
# A TLS client on the outside: the certificate `host` serves on `port` for `name`,
# verified against the given roots (PEM) only.
VERIFY = """
import socket, ssl, sys
host, port, name, roots = sys.argv[1], int(sys.argv[2]), sys.argv[3], open(sys.argv[4]).read()
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.load_verify_locations(cadata=roots)
with socket.create_connection((host, port), timeout=20) as raw, context.wrap_socket(raw, server_hostname=name) as tls:
    print(tls.getpeercert()["issuer"])
"""


def has_domains(spec: model.Spec) -> str | None:
    return None if spec.domains else "no domain: no web site to validate names through"


def acme(site: Site) -> None:
    outside, server = site.outside, site.server
    with log.step(f"{outside.name}: pebble, the ACME CA, asking nsd for the names"):
        outside.succeed(f"mkdir -p /etc/pebble && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                        f"-nodes -keyout {LISTENER}.key -out {LISTENER}.crt -days 2 -subj /CN=pebble "
                        f"-addext subjectAltName=IP:{network.OUTSIDE_ADDRESS} "
                        "-addext basicConstraints=critical,CA:TRUE 2> /dev/null")
        config = {"pebble": {"listenAddress": PEBBLE, "managementListenAddress": MANAGEMENT,
                             "certificate": f"{LISTENER}.crt", "privateKey": f"{LISTENER}.key",
                             "httpPort": 80, "tlsPort": 5001, "ocspResponderURL": "",
                             "externalAccountBindingRequired": False}}
        outside.write_file("/etc/pebble/pebble.json", json.dumps(config))
        outside.succeed("PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 setsid pebble -config /etc/pebble/pebble.json "
                        f"-dnsserver 127.0.0.1:{network.NSD_PORT} > /var/log/pebble.log 2>&1 < /dev/null &")
        outside.wait_until_succeeds(f"python3 -c 'import ssl, urllib.request; urllib.request.urlopen("
                                    f"\"https://{PEBBLE}/dir\", context=ssl.create_default_context("
                                    f"cafile=\"{LISTENER}.crt\"))'", 30)
    # The server's certbot must trust the CA's HTTPS, as it trusts a public CA's.
    server.write_file("/usr/local/share/ca-certificates/pebble-listener.crt",
                      outside.succeed(f"cat {LISTENER}.crt"))
    server.succeed("update-ca-certificates > /dev/null")
    spec = site.spec
    server_block = attrs.evolve(spec.server, tls=model.Tls(
        cert=model.ACME_CERT, key=model.ACME_KEY, acme=model.Acme(directory=f"https://{PEBBLE}/dir")))
    compiled = compile_model(attrs.evolve(spec, server=server_block), site.compiled.deploy.parent.parent / "acme",
                             site.compiled.keys)
    with log.step("switch to the spec with `tls { acme … }`: certbot gets the certificate"):
        install_deploy(server, compiled)
        site.compiled = compiled
    outside.succeed(f"python3 -c 'import ssl, urllib.request; print(urllib.request.urlopen(\"https://{MANAGEMENT}"
                    f"/roots/0\", context=ssl.create_default_context(cafile=\"{LISTENER}.crt\")).read().decode())' "
                    "> /tmp/pebble-root.pem")
    outside.write_file("/tmp/verify.py", VERIFY)
    hostname = spec.server.hostname
    for port in (465, 993):
        with log.step(f"{hostname}:{port} verified against pebble's root only"):
            code, output = outside.execute(f"python3 /tmp/verify.py {hostname} {port} {shlex.quote(hostname)} "
                                           "/tmp/pebble-root.pem")
            expect(code == 0, f"port {port}: {output}")
