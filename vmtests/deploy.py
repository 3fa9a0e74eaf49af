"""Compile a spec for a test VM and install the deploy into a machine.

The VM runs the production tree unrelocated: every file goes to the path it was
compiled for. Mailbox passwords are replaced by random test passwords (kept in memory,
hashed with bcrypt into the test deploy) so the scenarios can log in; nothing else in
the spec changes.
"""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import tempfile
from pathlib import Path

import attrs
import bcrypt

from mailspec import install, model
from mailspec.backends.dovecot import home_template
from mailspec.certs import make_certificates
from mailspec.diagnostics import render_all_text
from mailspec.layout import DEFAULT as LAYOUT
from mailspec.pipeline import Result, check_and_write, load_and_lower
from mailspec.vmtests import log
from mailspec.vmtests.machine import Machine, MachineError

POSTFIX_LOG_PROBLEMS = ("warning:", "error:", "fatal:", "panic:")
DOVECOT_LOG_PROBLEMS = ("Warning:", "Error:", "Fatal:", "Panic:")
# Warnings that Postfix logs while `postfix reload` restarts its services, and that lose
# nothing: a client of the connection cache (smtp, lmtp) finds scache restarted under
# it and goes on without the cache (scache(8): the cache is only an optimisation).
BENIGN_POSTFIX_WARNINGS = (
    re.compile(r"postfix/\w+\[\d+\]: warning: problem talking to service private/scache: "
               r"Connection reset by peer$"),
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
        spec, passwords = with_test_passwords(lowered.spec)
        lowered = attrs.evolve(lowered, spec=spec)
    deploy = workdir / "deploy"
    result = check_and_write(lowered, str(deploy))
    if not result.ok:
        raise DeployError(render_all_text(result.diagnostics, result.sources))
    tls = workdir / "tls"
    make_certificates(result.spec, str(tls))
    return Compiled(result.spec, deploy, tls, passwords, secrets.token_urlsafe(16))


def compile_model(spec: model.Spec, workdir: Path) -> Compiled:
    """Compile a spec built in code (a changed copy of a checked one) for a test VM."""
    return _compiled(Result(spec, (), {}), workdir)


def install_deploy(machine: Machine, compiled: Compiled, restart: bool = False) -> None:
    """Copy the deploy to the paths it was compiled for, build the maps, load the SQL for
    the mysql backend, install the TLS material, then reload (or restart) the daemons and
    check that their logs show no error and no warning.

    Reload is the default: every setting mailspec writes takes effect on `postfix reload`
    and `doveadm reload` (inet_interfaces and the queue directory stay the Debian
    defaults), and a restart costs about 7 s under TCG, mostly in `postfix check`."""
    server = compiled.spec.server
    with log.step(f"{machine.name}: install the deploy ({'restart' if restart else 'reload'})"):
        machine.copy_from_host(_bundle(compiled), "/tmp/mailspec-install")
        machine.succeed(_staging_script(compiled))
        if server.backend.kind is model.BackendKind.MYSQL:
            _install_database(machine, compiled, f"{STAGE}/postfix")
        machine.succeed(_moving_in_script(compiled))
        if restart:
            machine.succeed("systemctl restart postfix dovecot")
        else:
            machine.succeed("postfix reload 2>&1 && doveadm reload")
        wait_for_mail_ports(machine)
        check_logs(machine)


STAGE = "/etc/.mailspec-install"  # beside the live files: a rename replaces them at once


def _staging_script(compiled: Compiled) -> str:
    """Make the vmail account, copy the uploaded deploy into the stage and build its
    tables there."""
    vmail = compiled.spec.server.vmail
    q = shlex.quote
    maps = sorted(path.name for path in (compiled.deploy / "postfix").iterdir()
                  if install.is_map_source(path.name))
    return "\n".join([
        "set -e", "cd /tmp/mailspec-install",
        f"getent group {vmail.gid} >/dev/null || groupadd --gid {vmail.gid} {q(vmail.user)}",
        (f"id -u {q(vmail.user)} >/dev/null 2>&1 || useradd --uid {vmail.uid} --gid {vmail.gid}"
         f" --home-dir /nonexistent --shell /usr/sbin/nologin {q(vmail.user)}"),
        f"rm -rf {STAGE}", f"mkdir -p {STAGE}", f"cp -r deploy/. {STAGE}/",
        *(f"chown {q(owner)}:{q(group)} {STAGE}/{q(path)} && chmod {mode:o} {STAGE}/{q(path)}"
          for path, (owner, group, mode) in install.private_owners(compiled.spec).items()
          if (compiled.deploy / path).exists()),
        " ".join(["postmap", *[f"lmdb:{STAGE}/postfix/{q(name)}" for name in maps]]) if maps else ":",
    ])


def _moving_in_script(compiled: Compiled) -> str:
    """Rename every staged file into place, main.cf and master.cf last, so a daemon
    starting meanwhile reads the old file or the new one, never half of one; then
    compile Sieve, make the mail root, and install the TLS material."""
    spec, server = compiled.spec, compiled.spec.server
    vmail = server.vmail
    mail_root = home_template(spec, LAYOUT).split("%")[0]
    q = shlex.quote
    return "\n".join([
        "set -e", "cd /tmp/mailspec-install",
        ("move_in() { (cd \"$1\" && find . -type d -exec mkdir -p \"$2/{}\" \\; &&"
         " find . ! -type d ! -name main.cf ! -name master.cf -exec mv -f {} \"$2/{}\" \\; &&"
         " find . ! -type d -exec mv -f {} \"$2/{}\" \\;); }"),
        *(f"if [ -d {STAGE}/{name} ]; then mkdir -p {directory}; move_in {STAGE}/{name} {directory}; fi"
          for name, directory in install.installed_dirs(LAYOUT)),
        f"rm -rf {STAGE}",
        # Compiled where they live: a binary records its script's path. sievec, too,
        # writes a new file and renames it.
        # One sievec per directory, not per script: it compiles every script in one.
        (f"find {LAYOUT.sieve_dir} -name '*.sieve' -printf '%h\\n' 2>/dev/null | sort -u |"
         " while read -r directory; do sievec \"$directory\" || exit 1; done"),
        f"mkdir -p {q(mail_root)}", f"chown {vmail.uid}:{vmail.gid} {q(mail_root)}",
        f"mkdir -p \"$(dirname {q(server.tls.cert)})\" \"$(dirname {q(server.tls.key)})\"",
        f"install -m 644 tls/server.crt {q(server.tls.cert)}",
        f"install -m 600 tls/server.key {q(server.tls.key)}",
        "rm -rf /var/spool/postfix/etc  # Debian's chroot copies, stale now; nothing runs chrooted",
        f"postalias lmdb:{LAYOUT.aliases}",
        f": > {LAYOUT.postfix_log}; : > {LAYOUT.dovecot_log}",
        "cd / && rm -rf /tmp/mailspec-install",
    ])


def _bundle(compiled: Compiled) -> Path:
    """One directory to upload: the deploy and the server's certificate and key
    (never the CA's key)."""
    bundle = Path(tempfile.mkdtemp(prefix="install-", dir=compiled.deploy.parent))
    shutil.copytree(compiled.deploy, bundle / "deploy")
    (bundle / "tls").mkdir()
    for name in ("server.crt", "server.key"):
        shutil.copy2(compiled.tls / name, bundle / "tls" / name)
    return bundle


def _install_database(machine: Machine, compiled: Compiled, tables: str) -> None:
    """MariaDB inside the VM: the database, its account, the option file the daemons read,
    the schema and the seed, and the password added to the Postfix tables staged in
    `tables` (they are renamed into place with the rest)."""
    backend = compiled.spec.server.backend
    password = compiled.database_password
    q = shlex.quote
    grants = (f"CREATE DATABASE IF NOT EXISTS `{backend.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
              f" CREATE USER IF NOT EXISTS '{backend.user}'@'localhost' IDENTIFIED BY '{password}';"
              f" GRANT ALL ON `{backend.database}`.* TO '{backend.user}'@'localhost';")
    with log.step("load the SQL into MariaDB"):
        machine.copy_from_host(compiled.deploy / "sql", "/tmp/sql")
        machine.succeed("systemctl start mariadb")
        machine.succeed(f"mariadb -e {q(grants)}")
        machine.succeed(f"mariadb {q(backend.database)} < /tmp/sql/schema.sql && "
                        f"mariadb {q(backend.database)} < /tmp/sql/seed.sql && rm -r /tmp/sql")
        machine.write_file(backend.password_file,
                           f"[{install.OPTION_GROUP}]\nuser = {backend.user}\npassword = {password}\n", 0o400)
        # Its readers: Dovecot's auth process (group dovecot) and auth workers (vmail);
        # Dovecot gives its processes no supplementary groups. Postfix's tables get the
        # password appended instead (Postfix 3.7 ignores the option file's).
        vmail = compiled.spec.server.vmail.user
        machine.succeed(f"chown {q(vmail)}:dovecot {q(backend.password_file)} && chmod 440 {q(backend.password_file)}")
        for path in sorted((compiled.deploy / "postfix").glob("mysql-*.cf")):
            staged = f"{tables}/{path.name}"
            machine.write_file(staged, install.postfix_mysql_table(path.read_text(), password), 0o640)
            machine.succeed(f"chgrp postfix {staged}")


def wait_for_mail_ports(machine: Machine, timeout: float = 60) -> None:
    machine.wait_for_open_port(25, b"220 ", timeout=timeout)
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
    """The problem lines that are not among the benign reload-time warnings."""
    return [line for line in lines if not any(p.search(line) for p in BENIGN_POSTFIX_WARNINGS)]


def daemon_logs(machine: Machine, lines: int = 40) -> str:
    return machine.execute(f"tail -n {lines} {LAYOUT.postfix_log} {LAYOUT.dovecot_log}")[1]
