"""The driver: owns the image, the golden snapshot and every machine it starts, and
releases all of them when its `with` block ends, whatever happened inside."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import attrs

from mailspec.hostrun import free_ports
from mailspec.vmtests import log, network, qemu, snapshot
from mailspec.vmtests.deploy import Compiled, install_deploy
from mailspec.vmtests.image import ensure_image
from mailspec.vmtests.machine import Machine
from mailspec.vmtests.mail import message, move_message
from mailspec.vmtests.snapshot import ensure_golden


class Driver:
    def __init__(self, accelerator: str | None = None, snapshots: bool | None = None):
        self.requested_accelerator = accelerator
        if snapshots is None:
            snapshots = os.environ.get("MAILSPEC_VM_SNAPSHOT", "1") != "0"
        self.snapshots = snapshots
        self.machines: list[Machine] = []
        self.installed: dict[Path, Path] = {}  # deploy directory -> snapshot of a server running it

    def __enter__(self) -> Driver:
        self.image = ensure_image()
        self.accelerator = qemu.choose_accelerator(self.image, self.requested_accelerator)
        self.golden = ensure_golden(self.image, self.accelerator) if self.snapshots else None
        self.workdir = Path(tempfile.mkdtemp(prefix="mailspec-vm-"))
        return self

    def __exit__(self, *exc) -> None:
        self.release_all()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def release_all(self) -> None:
        """Stop every machine started so far: nothing on a test machine is worth the wait
        of a clean shutdown."""
        for machine in self.machines:
            machine.crash()
            shutil.rmtree(machine.workdir, ignore_errors=True)
        self.machines = []

    def machine(self, name: str, lan_address: str | None = None, lan: tuple[int, int] | None = None,
                lan_mac: str = "52:54:00:00:00:01", snapshot: Path | None = None) -> Machine:
        """A machine, not yet started; it restores `snapshot` (default: the golden one)."""
        workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.workdir))
        machine = Machine(name, self.image, workdir, self.accelerator, snapshot or self.golden,
                          lan, lan_address, lan_mac)
        self.machines.append(machine)
        return machine

    def fresh_machine(self, name: str) -> Machine:
        """A machine of the fresh image (Debian with no mail stack), not yet started; it
        boots cold, as a new server does."""
        workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.workdir))
        machine = Machine(name, ensure_image(fresh=True), workdir, self.accelerator, None)
        self.machines.append(machine)
        return machine

    def lan_pair(self, first: tuple[str, str], second: tuple[str, str],
                 first_snapshot: Path | None = None) -> tuple[Machine, Machine]:
        """Two machines (name, LAN address) joined by one datagram link, started together."""
        ports = free_ports(2, socket.SOCK_DGRAM)
        a = self.machine(first[0], first[1], ports, "52:54:00:00:00:01", first_snapshot)
        b = self.machine(second[0], second[1], (ports[1], ports[0]), "52:54:00:00:00:02")
        start_all([a, b])
        return a, b

    def installed_snapshot(self, compiled: Compiled) -> Path | None:
        """A snapshot of a server with this deploy installed, made on first use: restoring
        it skips the install (about 6 s under TCG) for every later scenario on the spec."""
        if not self.snapshots:
            return None
        if compiled.deploy not in self.installed:
            server = self.machine("server", network.SERVER_ADDRESS)
            server.start()
            install_deploy(server, compiled)
            target = Path(tempfile.mkdtemp(prefix="installed-", dir=self.workdir)) / "snapshot"
            snapshot.save(server, target)
            self.machines.remove(server)
            shutil.rmtree(server.workdir, ignore_errors=True)
            self.installed[compiled.deploy] = target
        return self.installed[compiled.deploy]


def start_all(machines: list[Machine]) -> None:
    """Start machines in parallel; re-raise the first failure."""
    failures: list[BaseException] = []

    def start(machine: Machine) -> None:
        try:
            machine.start()
        except BaseException as problem:  # noqa: BLE001  (re-raised below)
            failures.append(problem)
    threads = [threading.Thread(target=start, args=(m,)) for m in machines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


@attrs.define
class Site:
    """A running mailspec server (and, for some scenarios, the outside MTA) with the
    scenario-level verbs: deliver, submit, wait for a message, look at the outside."""

    compiled: Compiled
    server: Machine
    outside: Machine | None = None

    @property
    def spec(self):
        return self.compiled.spec

    def login(self, address: str) -> tuple[str, str]:
        return address, self.compiled.passwords[address]

    def deliver(self, sender: str, recipients: list[str], subject: str, body: str = "hello") -> None:
        """Port 25, no login, as another MTA would."""
        self.server.send_mail(sender, recipients, message(subject, sender, ", ".join(recipients), body),
                              port=25, tls="starttls", ca_file=self.compiled.ca_file,
                              server_name=self.spec.server.hostname)

    def submit(self, login: str, sender: str, recipients: list[str], subject: str, port: int = 587,
               header_from: str | None = None) -> None:
        self.server.send_mail(sender, recipients, message(subject, header_from or sender, ", ".join(recipients)),
                              port=port, tls="implicit" if port == 465 else "starttls",
                              login=self.login(login), ca_file=self.compiled.ca_file,
                              server_name=self.spec.server.hostname)

    def mailbox(self, address: str) -> dict[str, list]:
        return self.server.fetch_mail(self.login(address), ca_file=self.compiled.ca_file,
                                      server_name=self.spec.server.hostname)

    def move(self, address: str, subject: str, source: str, target: str) -> None:
        move_message(self.server.forwards[143], self.spec.server.hostname, self.compiled.ca_file,
                     self.login(address), subject, source, target)

    def folders_with(self, address: str, subject: str) -> list[str]:
        """The folders of `address` holding a message with this subject, once per copy."""
        return [folder for folder, messages in sorted(self.mailbox(address).items())
                for m in messages if m["subject"] == subject]

    def wait_for(self, address: str, subject: str, timeout: float = 30) -> list[str]:
        return log.retry(lambda last: self.folders_with(address, subject) or None, timeout,
                         f"`{subject}` in {address}'s mailbox", 0.3)

    def wait_outside(self, address: str, subject: str, timeout: float = 60) -> list[str]:
        def found(last_try: bool) -> list[str] | None:
            return [m for m in network.outside_messages(self.outside, address)
                    if f"Subject: {subject}" in m] or None
        return log.retry(found, timeout, f"`{subject}` for {address} at the outside MTA", 0.5)


def open_site(driver: Driver, compiled: Compiled, with_outside: bool = False, restart: bool = False,
              checking: bool = False) -> Site:
    """Start the server (and the outside MTA, `checking` what it receives) with the
    deploy installed: restored from the driver's snapshot of it, or installed now (always
    for `restart`, which tests the daemons' full restart)."""
    with log.step("open the site" + (" with the outside MTA" if with_outside else "")):
        installed = None if restart else driver.installed_snapshot(compiled)
        if with_outside:
            server, outside = driver.lan_pair(("server", network.SERVER_ADDRESS),
                                              ("outside", network.OUTSIDE_ADDRESS), installed)
            network.setup_outside(outside, compiled.spec, str(compiled.keys), checking)
            network.use_lan_dns(server)
        else:
            server, outside = driver.machine("server", network.SERVER_ADDRESS, snapshot=installed), None
            server.start()
        if installed is None or not server.restored:
            started = time.monotonic()
            install_deploy(server, compiled, restart)
            log.info(f"installed in {time.monotonic() - started:.2f} s")
        return Site(compiled, server, outside)



