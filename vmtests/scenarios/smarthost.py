"""Issue scenario 7: all outgoing mail through a provider's smarthost. The outside
machine becomes that provider: its Postfix offers port 587 that wants STARTTLS and then
a login (checked by a Dovecot of its own that only authenticates), with a certificate
from a CA of its own that the server is told to trust, as an administrator adds a
provider's CA. The spec is switched to `relay_host [mx.outside.test]:587 { login … }`:
mail to the outside goes through the provider logged in over verified TLS, and after the
password file goes stale, the mail waits and the log says the provider's 535."""

from __future__ import annotations

import re
import shlex
import tempfile
from pathlib import Path

import attrs
import bcrypt

from mailspec import model
from mailspec.backends.postfix import SYSTEM_CAS
from mailspec.certs import make_certificates
from mailspec.vmtests import log, network
from mailspec.vmtests.deploy import compile_model, install_deploy
from mailspec.vmtests.driver import Site
from mailspec.vmtests.machine import Machine
from mailspec.vmtests.scenarios.common import FAR, expect, submitter, unique

RELAY_LOGIN = f"relay@{network.OUTSIDE_DOMAIN}"
RELAY_PASSWORD = "relay-Secret-7"
RELAY_PORT = 587
PASSWORD_FILE = "/etc/mailspec/relay.password"
PROVIDER = "/etc/smarthost"  # the provider's own files on the outside machine
# An authentication-only Dovecot: no protocols, one listener in Postfix's spool.
AUTH_CONF = f"""\
protocols = none
base_dir = /run/smarthost-dovecot
log_path = /var/log/smarthost-dovecot.log
ssl = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = {PROVIDER}/users
}}
userdb {{
  driver = static
  args = uid=8 gid=8 home=/nonexistent
}}
service auth {{
  unix_listener /var/spool/postfix/private/smarthost-auth {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
"""
SUBMISSION = (f"{RELAY_PORT}/inet = {RELAY_PORT} inet n - n - - smtpd -o syslog_name=postfix/smarthost "
              f"-o smtpd_tls_security_level=encrypt -o smtpd_tls_cert_file={PROVIDER}/server.crt "
              f"-o smtpd_tls_key_file={PROVIDER}/server.key -o smtpd_sasl_auth_enable=yes "
              "-o smtpd_sasl_type=dovecot -o smtpd_sasl_path=private/smarthost-auth "
              "-o smtpd_relay_restrictions=permit_sasl_authenticated,reject")


def become_provider(outside: Machine, spec: model.Spec) -> str:
    """The smarthost on the outside machine; its CA certificate (PEM)."""
    provider = attrs.evolve(spec, server=attrs.evolve(spec.server, hostname=network.OUTSIDE_HOSTNAME), domains=())
    with tempfile.TemporaryDirectory() as directory:
        make_certificates(provider, directory)
        files = {name: (Path(directory) / name).read_text() for name in ("ca.crt", "server.crt", "server.key")}
    hashed = bcrypt.hashpw(RELAY_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    with log.step(f"{outside.name}: a smarthost on {RELAY_PORT} that wants STARTTLS and a login"):
        outside.write_file(f"{PROVIDER}/server.crt", files["server.crt"])
        outside.write_file(f"{PROVIDER}/server.key", files["server.key"], 0o600)
        outside.write_file(f"{PROVIDER}/users", f"{RELAY_LOGIN}:{{BLF-CRYPT}}{hashed}\n", 0o644)
        outside.write_file(f"{PROVIDER}/dovecot.conf", AUTH_CONF)
        # Its output redirected: a daemon holding the SSH channel open would hang the command.
        outside.succeed(f"dovecot -c {PROVIDER}/dovecot.conf < /dev/null > /dev/null 2>&1 "
                        f"&& postconf -M {shlex.quote(SUBMISSION)} "
                        "&& postfix reload")
        outside.wait_for_open_port(RELAY_PORT, b"220 ")
    return files["ca.crt"]


def relayed(spec: model.Spec) -> model.Spec:
    relay = model.Relay(f"[{network.OUTSIDE_HOSTNAME}]:{RELAY_PORT}", login=RELAY_LOGIN,
                        password_file=PASSWORD_FILE)
    return attrs.evolve(spec, server=attrs.evolve(spec.server, relay=relay))


def log_lines(machine: Machine, pattern: str, timeout: float = 60) -> str:
    """The last line of the machine's Postfix log that matches, once one does."""
    def found(last_try: bool) -> str | None:
        lines = [line for line in machine.succeed("cat /var/log/postfix.log").splitlines() if re.search(pattern, line)]
        return lines[-1] if lines else None
    return log.retry(found, timeout, f"`{pattern}` in {machine.name}'s Postfix log", 0.5)


def smarthost(site: Site) -> None:
    server, outside = site.server, site.outside
    ca = become_provider(outside, site.spec)
    server.succeed(f"cat >> {SYSTEM_CAS} <<'EOF'\n{ca}EOF")  # the provider's CA, trusted
    server.write_file(PASSWORD_FILE, RELAY_PASSWORD + "\n", 0o600)
    compiled = compile_model(relayed(site.spec), site.compiled.deploy.parent / "smarthost", site.compiled.keys)
    install_deploy(server, compiled)
    site.compiled = compiled
    sender, relay = submitter(site.spec), rf"{re.escape(network.OUTSIDE_HOSTNAME)}\[{network.OUTSIDE_ADDRESS}\]"
    with log.step(f"{sender} to {FAR} through the smarthost"):
        subject = unique("via the smarthost")
        site.submit(sender, sender, [FAR], subject)
        site.wait_outside(FAR, subject)
        sent = log_lines(server, rf"to=<{re.escape(FAR)}>.*status=sent")
        expect(re.search(rf"relay={relay}:{RELAY_PORT}", sent) is not None, f"not sent through the smarthost: {sent}")
        log_lines(server, rf"Verified TLS connection established to {relay}:{RELAY_PORT}")
        log_lines(outside, rf"postfix/smarthost/smtpd.*sasl_username={re.escape(RELAY_LOGIN)}")
    with log.step("the password file goes stale: the mail waits, and the log says why"):
        server.write_file(PASSWORD_FILE, "an-old-password\n", 0o600)
        install_deploy(server, compiled)
        subject = unique("after the password changed")
        site.submit(sender, sender, [FAR], subject)
        deferred = log_lines(server, r"status=deferred \(SASL authentication failed")
        expect("535" in deferred, f"the deferral does not give the provider's reply: {deferred}")
        expect(not network.outside_messages(outside, FAR) or not any(
            f"Subject: {subject}" in m for m in network.outside_messages(outside, FAR)),
            "the message sent with the wrong password arrived")
