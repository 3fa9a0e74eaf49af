"""Compile a spec for a test VM and install the deploy into a machine with switch.

The VM runs the production tree unrelocated: every file goes to the path it was
compiled for. Mailbox passwords are replaced by random test passwords (kept in memory,
hashed with bcrypt into the test deploy) so the scenarios can log in, and the server's
public address is its address on the VM LAN; nothing else in the spec changes.
"""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
from pathlib import Path

import attrs
import bcrypt

from mailspec import install, model
from mailspec.certs import make_certificates
from mailspec.diagnostics import render_all_text
from mailspec.keys import key_files, make_keys
from mailspec.layout import DEFAULT as LAYOUT
from mailspec.pipeline import Result, check_and_write, load_and_lower
from mailspec.switch.request import write_bundle
from mailspec.vmtests import log
from mailspec.vmtests.machine import Machine, MachineError
from mailspec.vmtests.network import SERVER_ADDRESS

POSTFIX_LOG_PROBLEMS = ("warning:", "error:", "fatal:", "panic:")
DOVECOT_LOG_PROBLEMS = ("Warning:", "Error:", "Fatal:", "Panic:")
# Warnings that Postfix logs while `postfix reload` restarts its services, and that lose
# nothing: a client of the connection cache (smtp, lmtp) finds scache restarted under
# it and goes on without the cache (scache(8): the cache is only an optimisation).
BENIGN_WARNINGS = (
    re.compile(r"postfix/\w+\[\d+\]: warning: problem talking to service private/scache: "
               r"Connection reset by peer$"),
    # A machine restored from a snapshot of a running server: its clock jumps to now,
    # and the Dovecot master that the switch started notices.
    re.compile(r"master: Warning: Time moved forwards by [\d.]+ seconds - adjusting timeouts\.$"),
    # A reload the switch asked for (Dovecot logs it as a warning).
    re.compile(r"master: Warning: SIGHUP received - reloading configuration$"),
    # postscreen's blocklist query for a client when DNS cannot answer: a VM without the
    # outside machine has no DNS at all (the postscreen scenario has, and holds its answers).
    re.compile(r"postfix/dnsblog\[\d+\]: warning: dnsblog_query: lookup error for DNS query \S+: "
               r"Host or domain name not found\. Name service error for name=\S+ type=A: Host not found, try again$"),
)


class DeployError(Exception):
    pass


@attrs.frozen
class Compiled:
    spec: model.Spec
    deploy: Path
    tls: Path  # ca.crt, server.crt and server.key from `mailspec certs`
    passwords: dict[str, str]  # login -> test password
    database_password: str

    @property
    def ca_file(self) -> str:
        return str(self.tls / "ca.crt")

    @property
    def keys(self) -> Path:
        """The DKIM keys from `mailspec keys`."""
        return self.tls.parent / "keys"

    @property
    def bundle(self) -> Path:
        """The deploy and its request.json: what switch uploads."""
        return self.deploy.parent


def for_the_lan(spec: model.Spec) -> model.Spec:
    """The spec as the VMs run it: the server's public address is its LAN address, which
    the printed zones (network.lan_zones) then name."""
    return attrs.evolve(spec, server=attrs.evolve(spec.server, addresses=(SERVER_ADDRESS,)))


def with_test_passwords(spec: model.Spec) -> tuple[model.Spec, dict[str, str]]:
    passwords: dict[str, str] = {}
    domains = []
    for domain in spec.domains:
        mailboxes = []
        for mailbox in domain.mailboxes:
            login = str(domain.address(mailbox.local))
            passwords[login] = secrets.token_urlsafe(12)
            hashed = bcrypt.hashpw(passwords[login].encode(), bcrypt.gensalt(rounds=4)).decode()
            mailboxes.append(attrs.evolve(mailbox, password=model.Password("BLF-CRYPT", "{BLF-CRYPT}" + hashed)))
        domains.append(attrs.evolve(domain, mailboxes=tuple(mailboxes)))
    return attrs.evolve(spec, domains=tuple(domains)), passwords


def compile_for_vm(roots: list[str], workdir: Path) -> Compiled:
    """Check and compile `roots` for a test VM; DeployError with the diagnostics if invalid."""
    return _compiled(load_and_lower(roots), workdir)


def _compiled(lowered: Result, workdir: Path) -> Compiled:
    passwords: dict[str, str] = {}
    if lowered.spec is not None:
        spec, passwords = with_test_passwords(for_the_lan(lowered.spec))
        lowered = attrs.evolve(lowered, spec=spec)
    deploy = workdir / "bundle" / "deploy"
    result = check_and_write(lowered, str(deploy))
    if not result.ok:
        raise DeployError(render_all_text(result.diagnostics, result.sources))
    write_bundle(str(deploy.parent), result.spec, LAYOUT)
    tls = workdir / "tls"
    make_certificates(result.spec, str(tls))
    make_keys(result.spec, str(workdir / "keys"))
    return Compiled(result.spec, deploy, tls, passwords, secrets.token_urlsafe(16))


def compile_model(spec: model.Spec, workdir: Path, keys: Path | None = None) -> Compiled:
    """Compile a spec built in code (a changed copy of a checked one) for a test VM; with
    `keys`, the DKIM keys and SRS secret made so far are kept, as `mailspec keys` keeps them."""
    if keys is not None:
        shutil.copytree(keys, workdir / "keys")
    return _compiled(Result(spec, (), {}), workdir)


def install_deploy(machine: Machine, compiled: Compiled, restart: bool = False) -> None:
    """Install the deploy as `mailspec switch` does, over the machine's SSH connection:
    what an administrator provides first (the TLS certificate and key, and for the mysql
    backend the database and its account), then the switch, which builds the generation,
    reloads or restarts what changed and checks the server's health. Then the daemons'
    logs must show no error and no warning. `restart`: the install must restart both
    daemons, as the first switch on a machine does (from generation 0); a scenario of
    full restarts asks for it, and always gets a machine that has had no switch."""
    from mailspec.switch.remote import Ssh

    server = compiled.spec.server
    with log.step(f"{machine.name}: switch to the deploy"):
        if server.tls.acme is None:  # with ACME the switch makes a stand-in, and certbot the certificate
            machine.write_file(server.tls.cert, (compiled.tls / "server.crt").read_text())
            machine.write_file(server.tls.key, (compiled.tls / "server.key").read_text(), 0o600)
        for path in key_files(compiled.spec):
            machine.write_file(f"{server.keys}/{path}", (compiled.keys / path).read_text(), 0o600)
        machine.succeed(f": > {LAYOUT.postfix_log}; : > {LAYOUT.dovecot_log}")  # this install's lines only
        target = Ssh(machine.ssh, machine.name)
        lines: list[str] = []
        try:
            there = target.upload(str(compiled.bundle))
            if server.backend.kind is model.BackendKind.MYSQL:
                _agent(target, ["prepare", there], lines)  # the vmail account, which reads the option file
                _install_database(machine, compiled)
            _agent(target, ["switch", there], lines)
        finally:
            target.close(disconnect=False)
        if restart and "generation 1 is current (was 0)" not in lines:  # from 0: both restart (activate._needs)
            raise DeployError(f"the install on {machine.name} was not its first switch:\n" + "\n".join(lines))
        wait_for_mail_ports(machine)
        check_logs(machine)


def _agent(target, arguments: list[str], lines: list[str]) -> None:
    errors: list[str] = []
    if target.agent(arguments, lines.append, errors.append) != 0:
        raise DeployError(f"`mailspec {arguments[0]}` failed on {target.name}:\n" + "\n".join(lines + errors))


def _install_database(machine: Machine, compiled: Compiled) -> None:
    """MariaDB inside the VM: the database, its account and the option file the daemons
    and switch read (switch adds its password to the Postfix tables, and writes the rows)."""
    backend = compiled.spec.server.backend
    password = compiled.database_password
    q = shlex.quote
    grants = (f"CREATE DATABASE IF NOT EXISTS `{backend.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
              f" CREATE USER IF NOT EXISTS '{backend.user}'@'localhost';"
              f" ALTER USER '{backend.user}'@'localhost' IDENTIFIED BY '{password}';"  # each install's own
              f" GRANT ALL ON `{backend.database}`.* TO '{backend.user}'@'localhost';")
    with log.step("make the database and its account in MariaDB"):
        machine.succeed("systemctl start mariadb")
        machine.succeed(f"mariadb -e {q(grants)}")
        machine.write_file(backend.password_file,
                           f"[{install.OPTION_GROUP}]\nuser = {backend.user}\npassword = {password}\n", 0o400)
        # Its readers: Dovecot's auth process (group dovecot) and auth workers (vmail);
        # Dovecot gives its processes no supplementary groups.
        vmail = compiled.spec.server.vmail.user
        machine.succeed(f"chown {q(vmail)}:dovecot {q(backend.password_file)} && chmod 440 {q(backend.password_file)}")


def wait_for_mail_ports(machine: Machine, timeout: float = 60) -> None:
    # postscreen's first line is `220-`: it waits to see whether an untrusted client
    # talks early, and the host's connections come from the untrusted user-mode gateway.
    machine.wait_for_open_port(25, b"220", timeout=timeout)
    machine.wait_for_open_port(587, b"220 ", timeout=timeout)
    machine.wait_for_open_port(465, b"220 ", tls=True, timeout=timeout)
    machine.wait_for_open_port(143, b"* OK", timeout=timeout)


def check_logs(machine: Machine) -> None:
    problems = problem_lines(machine)
    if problems:
        raise MachineError(f"the daemons on {machine.name} logged problems:\n" + "\n".join(problems))


def problem_lines(machine: Machine) -> list[str]:
    """Lines of the Postfix and Dovecot logs that report a warning or worse."""
    postfix = "|".join(POSTFIX_LOG_PROBLEMS)
    dovecot = "|".join(DOVECOT_LOG_PROBLEMS)
    found = machine.succeed(f"grep -hE '{postfix}' {LAYOUT.postfix_log} 2>/dev/null; "
                            f"grep -hE '{dovecot}' {LAYOUT.dovecot_log} 2>/dev/null; true")
    return serious(found.splitlines())


def serious(lines: list[str]) -> list[str]:
    """The problem lines that are not among the benign warnings."""
    return [line for line in lines if not any(p.search(line) for p in BENIGN_WARNINGS)]


def daemon_logs(machine: Machine, lines: int = 40) -> str:
    return machine.execute(f"tail -n {lines} {LAYOUT.postfix_log} {LAYOUT.dovecot_log}")[1]
