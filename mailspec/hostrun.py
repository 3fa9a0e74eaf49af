"""Run a compiled deploy tree for real on this host: the real Postfix and Dovecot, with
every file under the layout's prefix, listening on the layout's ports.

The deploy must have been compiled for that layout (`mailspec compile --prefix --port`).
Used by the host-daemon test tier; the VM harness installs a tree the same way.
Needs root (Postfix's master and Dovecot drop privileges themselves).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from mailspec import install, model
from mailspec.backends.dovecot import home_template
from mailspec.layout import Layout


class HostRunError(Exception):
    pass


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all held open while they are chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


def greets(port: int, banner: bytes, tls: bool = False) -> bool:
    """Whether a server on 127.0.0.1:port greets with `banner` now (not merely accepts)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            stream = raw
            if tls:
                context = ssl.create_default_context()
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                stream = context.wrap_socket(raw)
            stream.settimeout(5)
            return stream.recv(64).startswith(banner)
    except OSError:
        return False


def wait_for_banner(port: int, banner: bytes, timeout: float = 15, tls: bool = False) -> None:
    """Wait until a server on 127.0.0.1:port greets with `banner`."""
    deadline = time.monotonic() + timeout
    while not greets(port, banner, tls):
        if time.monotonic() > deadline:
            raise HostRunError(f"nothing answered `{banner.decode()}` on port {port}")
        time.sleep(0.05)


def _run(*command: str) -> None:
    """Run a command to completion. Output goes to a file, not a pipe: a daemon started
    by the command keeps its output descriptors, and a pipe would never reach EOF."""
    with tempfile.TemporaryFile("w+") as output:
        code = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=output,
                              stderr=subprocess.STDOUT).returncode
        if code != 0:
            output.seek(0)
            raise HostRunError(f"{' '.join(command)} failed: {output.read()}")


class HostServer:
    def __init__(self, spec: model.Spec, deploy: Path, layout: Layout, tls_dir: Path):
        assert layout.prefix, "run only relocated trees on a host"
        self.spec, self.deploy, self.layout, self.tls_dir = spec, deploy, layout, tls_dir
        self.postfix_dir = Path(layout.postfix_dir)
        self.dovecot_conf = Path(layout.dovecot_dir) / "dovecot.conf"

    # ------------------------------------------------------------ install

    def install(self) -> None:
        layout, server = self.layout, self.spec.server
        os.chmod(layout.prefix, 0o755)  # the daemons' own users must reach their directories
        for name, directory in install.installed_dirs(layout):
            if (self.deploy / name).exists():
                shutil.copytree(self.deploy / name, directory, dirs_exist_ok=True)
        uid, gid = self._vmail_user()
        for path, (owner, group, mode) in install.private_owners(self.spec).items():
            if (self.deploy / path).exists():
                installed = install.installed_path(layout, path)
                shutil.chown(installed, owner, group)
                os.chmod(installed, mode)
        for directory in (layout.postfix_queue, layout.postfix_data, os.path.dirname(layout.postfix_log),
                          layout.dovecot_base, layout.dovecot_state):
            os.makedirs(directory, exist_ok=True)
        shutil.chown(layout.postfix_data, "postfix")
        mail_root = home_template(self.spec, layout).split("%")[0].rstrip("/")
        os.makedirs(mail_root, exist_ok=True)
        os.chown(mail_root, uid, gid)
        Path(layout.aliases).write_text("postmaster: root\n")
        _run("postalias", f"lmdb:{layout.aliases}")
        self._install_maps()
        for name, target in (("server.crt", server.tls.cert), ("server.key", server.tls.key)):
            os.makedirs(os.path.dirname(layout.path(target)), exist_ok=True)
            shutil.copyfile(self.tls_dir / name, layout.path(target))
        os.chmod(layout.path(server.tls.key), 0o600)
        # Compiled ahead (delivery may not write here), one sievec per directory, not per script.
        scripts = Path(layout.sieve_dir).rglob("*.sieve") if os.path.isdir(layout.sieve_dir) else ()
        for directory in sorted({str(script.parent) for script in scripts}):
            _run("sievec", directory)

    def _vmail_user(self) -> tuple[int, int]:
        """The vmail account of the classic set-up (uid/gid from the spec), created if missing."""
        vmail = self.spec.server.vmail
        try:
            grp.getgrgid(vmail.gid)
        except KeyError:
            _run("groupadd", "--system", "--gid", str(vmail.gid), vmail.user)
        try:
            pwd.getpwnam(vmail.user)
        except KeyError:
            _run("useradd", "--system", "--uid", str(vmail.uid), "--gid", str(vmail.gid),
                 "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", vmail.user)
        return vmail.uid, vmail.gid

    def _install_maps(self) -> None:
        backend = self.spec.server.backend
        password = None
        if backend.kind is model.BackendKind.MYSQL:
            password = install.mysql_password(self.layout.path(backend.password_file))
        for path in sorted(self.postfix_dir.iterdir()):
            if path.name.startswith("mysql-"):
                path.write_text(install.postfix_mysql_table(path.read_text(), password))
                os.chmod(path, 0o640)
                shutil.chown(path, "root", "postfix")
            elif path.is_file() and install.is_map_source(path.name):
                _run("postmap", f"lmdb:{path}")
        # Postfix waits for table files younger than a second: these are final now.
        old = time.time() - 5
        for path in self.postfix_dir.iterdir():
            os.utime(path, (old, old))

    # ------------------------------------------------------------ run

    def start(self) -> None:
        _run("postfix", "-c", str(self.postfix_dir), "check")
        _run("postfix", "-c", str(self.postfix_dir), "start")
        _run("dovecot", "-c", str(self.dovecot_conf))
        ports = self.layout.ports
        wait_for_banner(ports.smtp, b"220 ")
        wait_for_banner(ports.submission, b"220 ")
        wait_for_banner(ports.submissions, b"220 ", tls=True)
        wait_for_banner(ports.imap, b"* OK")

    def processes(self) -> set[int]:
        """The pids of this server's Postfix and Dovecot (masters and their children)."""
        masters = set()
        for pid_file in (Path(self.layout.postfix_queue) / "pid" / "master.pid",
                         Path(self.layout.dovecot_base) / "master.pid"):
            try:
                masters.add(int(pid_file.read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        return {pid for pid in masters | _descendants(masters) if alive(pid)}

    def stop(self) -> None:
        """Stop both daemons and wait until none of their processes is left."""
        running = self.processes()
        subprocess.run(["postfix", "-c", str(self.postfix_dir), "stop"], capture_output=True)
        subprocess.run(["doveadm", "-c", str(self.dovecot_conf), "stop"], capture_output=True)
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in running):
            if time.monotonic() > deadline:
                for pid in running:
                    if alive(pid):
                        os.kill(pid, 9)
                raise HostRunError(f"processes still running after stop: {sorted(running)}")
            time.sleep(0.05)

    def logs(self) -> str:
        parts = []
        for log in (self.layout.postfix_log, self.layout.dovecot_log):
            if os.path.exists(log):
                parts.append(f"==> {log}\n" + Path(log).read_text(errors="replace"))
        return "\n".join(parts)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _descendants(parents: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), list(parents)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
