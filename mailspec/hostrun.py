"""Run a compiled deploy tree for real on this host: the real Postfix and Dovecot, with
every file under the layout's prefix, listening on the layout's ports.

The deploy must have been compiled for that layout (`mailspec compile --prefix --port`).
It is installed by mailspec.switch, as on a server. Used by the host-daemon test tier.
Needs root (Postfix's master and Dovecot drop privileges themselves).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import attrs

from mailspec import model
from mailspec.layout import Layout, Ports


class HostRunError(Exception):
    pass


# Ports for relocated servers and the tests' daemons: below Linux's ephemeral range
# (32768-60999, which outgoing connections take), and reserved across processes by a
# file each, since a server binds its ports long after they are chosen (rspamd loads
# for 20 s first): two pytest workers once chose the same port, and Dovecot could not
# listen. A reservation lasts as long as the process that made it.
PORT_RANGE = (20000, 32000)
RESERVATIONS = "/tmp/mailspec-ports"


def free_ports(count: int, kind: int = socket.SOCK_STREAM) -> list[int]:
    """`count` distinct ports that nothing listens on, reserved for this process."""
    os.makedirs(RESERVATIONS, exist_ok=True)
    chosen: list[int] = []
    for port in random.sample(range(*PORT_RANGE), PORT_RANGE[1] - PORT_RANGE[0]):
        if _reserve(port) and _bindable(port, kind):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise OSError(f"no {count} free ports in {PORT_RANGE[0]}-{PORT_RANGE[1]}")


def _reserve(port: int) -> bool:
    path = os.path.join(RESERVATIONS, str(port))
    for _ in range(2):
        try:
            made = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as handle:
                    owner = handle.read()
            except OSError:
                return False
            if not owner.isdigit() or alive(int(owner)):  # empty: being written now
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # its process has ended
            continue
        except PermissionError:  # another user's directory: choose without reserving
            return True
        with os.fdopen(made, "w") as handle:
            handle.write(str(os.getpid()))
        return True
    return False


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_layout(prefix: str) -> Layout:
    """A relocated layout under `prefix` with every listener on a free port of its own."""
    return Layout(prefix, Ports(*free_ports(len(attrs.fields(Ports)))))


def unverified() -> ssl.SSLContext:
    """A TLS client context that checks nothing: for probes of whether a port answers,
    where the certificate may be a stand-in."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def greets(port: int, banner: bytes, tls: bool = False) -> bool:
    """Whether a server on 127.0.0.1:port greets with `banner` now (not merely accepts)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            stream = raw
            if tls:
                stream = unverified().wrap_socket(raw)
            stream.settimeout(5)
            return stream.recv(64).startswith(banner)
    except OSError:
        return False


class HostServer:
    def __init__(self, spec: model.Spec, deploy: Path, layout: Layout, tls_dir: Path):
        assert layout.prefix, "run only relocated trees on a host"
        self.spec, self.deploy, self.layout, self.tls_dir = spec, deploy, layout, tls_dir
        self.postfix_dir = Path(layout.postfix_dir)
        self.dovecot_conf = Path(layout.dovecot_dir) / "dovecot.conf"

    # ------------------------------------------------------------ install and start

    def install(self, prepared: Callable[[], None] | None = None) -> None:
        """Put the TLS material where the spec names it (what a user does), then switch
        the deploy in as `mailspec switch` does: the same procedure, which builds the
        generation, starts the daemons and checks their health. `prepared` runs once the
        host has its vmail account, before the daemons start."""
        from mailspec.switch.activate import prepare, switch
        from mailspec.switch.request import from_spec
        from mailspec.switch.store import Store, SwitchError

        server = self.spec.server
        mine = () if server.tls.acme else (("server.crt", server.tls.cert), ("server.key", server.tls.key))
        for name, target in mine:  # with ACME the switch makes a stand-in, and certbot the certificate
            os.makedirs(os.path.dirname(self.layout.path(target)), exist_ok=True)
            shutil.copyfile(self.tls_dir / name, self.layout.path(target))
            os.chmod(self.layout.path(target), 0o600 if name == "server.key" else 0o644)
        from mailspec.keys import make_keys  # the DKIM keys, as `mailspec keys` makes them

        make_keys(self.spec, self.layout.path(server.keys))
        store, request = Store(self.layout), from_spec(self.spec, self.layout)
        try:
            with store.lock():
                prepare(store, request, lambda line: None)
            if prepared is not None:
                prepared()
            switch(store, request, str(self.deploy), lambda line: None)
        except SwitchError as error:
            raise HostRunError(error.message) from None

    def processes(self) -> set[int]:
        """The pids of this server's daemons (masters and their children)."""
        masters = set()
        for pid_file in self.layout.pid_files.values():
            try:
                masters.add(int(Path(pid_file).read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        return {pid for pid in masters | _descendants(masters) if alive(pid)}

    def stop(self) -> None:
        """Stop the daemons and wait until none of their processes is left."""
        running = self.processes()
        subprocess.run(["postfix", "-c", str(self.postfix_dir), "stop"], capture_output=True)
        subprocess.run(["doveadm", "-c", str(self.dovecot_conf), "stop"], capture_output=True)
        for daemon in ("rspamd", "postsrsd", "nginx", "redis", "clamav", "fail2ban"):  # masters with no stop command
            pid_file = self.layout.pid_files[daemon]
            try:
                os.kill(int(Path(pid_file).read_text().split()[0]), 15)
            except (OSError, ValueError, IndexError):
                pass
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
        for log in self.layout.daemon_logs:
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


OUTSIDE_SLOTS = 64  # namespaces at once: 10.213.<slot>.0/30 each, held by a lock file
OUTSIDE_LOCKS = "/tmp/mailspec-outside"


@attrs.frozen
class Outside:
    """A network namespace outside mynetworks: `client` is its address, `host` the host's
    across the veth pair. Called like subprocess.run, it runs argv inside."""

    name: str
    host: str
    client: str

    def __call__(self, argv: list[str], **options) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], **options)


@contextlib.contextmanager
def outside_namespace():
    """An Outside joined to the host by a veth pair, on a /30 of its own (two test workers
    with the same addresses would take each other's replies); removed after."""
    import fcntl

    os.makedirs(OUTSIDE_LOCKS, exist_ok=True)
    for slot in range(OUTSIDE_SLOTS):
        lock = open(os.path.join(OUTSIDE_LOCKS, str(slot)), "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            lock.close()
    else:
        raise OSError(f"all {OUTSIDE_SLOTS} outside namespaces are in use")
    outside = Outside(f"ms{os.getpid()}s{slot}", f"10.213.{slot}.1", f"10.213.{slot}.2")
    name = outside.name
    commands = [["ip", "netns", "add", name],
                ["ip", "link", "add", f"{name}a", "type", "veth", "peer", "name", f"{name}b"],
                ["ip", "link", "set", f"{name}b", "netns", name],
                ["ip", "addr", "add", f"{outside.host}/30", "dev", f"{name}a"],
                ["ip", "link", "set", f"{name}a", "up"],
                ["ip", "netns", "exec", name, "ip", "addr", "add", f"{outside.client}/30", "dev", f"{name}b"],
                ["ip", "netns", "exec", name, "ip", "link", "set", f"{name}b", "up"]]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        yield outside
    finally:
        subprocess.run(["ip", "link", "del", f"{name}a"], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        lock.close()
