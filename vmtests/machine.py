"""A QEMU virtual machine driven over QMP (qemu.qmp) and SSH (paramiko), with the verbs
of the NixOS test driver: every wait is built on `execute` and the one `retry` helper."""

from __future__ import annotations

import io
import shlex
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import paramiko
from qemu.qmp import QMPError
from qemu.qmp.legacy import QEMUMonitorProtocol

from mailspec.hostrun import free_ports, greets
from mailspec.vmtests import log, mail, qemu
from mailspec.vmtests.image import Image
from mailspec.vmtests.log import retry

# Guest ports reachable from the host through user-mode forwarding.
GUEST_PORTS = {"ssh": 22, "smtp": 25, "submissions": 465, "submission": 587, "imap": 143, "imaps": 993,
               "sieve": 4190}
# UDP: the outside machine's nsd, which `mailspec dns --check` asks from the host.
GUEST_UDP_PORTS = {"dns": 5300}
BOOT_TIMEOUT = 180  # TCG on a busy 2-core host
RESTORE_TIMEOUT = 60


class MachineError(Exception):
    pass


class Machine:
    def __init__(self, name: str, image: Image, workdir: Path, accelerator: str,
                 golden: Path | None = None, lan: tuple[int, int] | None = None,
                 lan_address: str | None = None, lan_mac: str = "52:54:00:00:00:01"):
        """`golden` is the snapshot to restore (a directory with `state` and `disk.qcow2`);
        None boots cold. `lan` is the (local, remote) UDP port pair of the LAN link."""
        self.name, self.image, self.accelerator, self.golden = name, image, accelerator, golden
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.console = workdir / "console.log"
        self.qmp_path = workdir / "qmp.sock"
        self.disk = workdir / "disk.qcow2"
        self.lan = lan or tuple(free_ports(2, socket.SOCK_DGRAM))
        self.lan_address, self.lan_mac = lan_address, lan_mac
        self.forwards: dict[int, int] = {}
        self.udp_forwards: dict[int, int] = {}
        self.process: subprocess.Popen | None = None
        self.qmp: QEMUMonitorProtocol | None = None
        self.ssh: paramiko.SSHClient | None = None
        self.restored = False
        self.exit_code: int | None = None  # QEMU's, after a clean shutdown

    def port(self, service: str) -> int:
        """The host port that reaches `service` (a name in GUEST_PORTS) in the guest."""
        return self.forwards[GUEST_PORTS[service]]

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        with log.step(f"{self.name}: start ({self.accelerator})"):
            if self.golden is not None:
                try:
                    self._restore()
                    self.restored = True
                except (MachineError, log.Timeout, OSError, QMPError) as problem:
                    log.info(f"restore failed ({problem}); booting cold")
                    self._kill()
            if not self.restored:
                self._cold_boot()
            self._after_start()

    def _launch(self, incoming: Path | None, attempts: int = 3) -> None:
        """Start QEMU. Another process may take a forwarded port between choosing it and
        QEMU binding it; QEMU then exits at once, and new ports are chosen."""
        for attempt in range(attempts):
            self.forwards = dict(zip(GUEST_PORTS.values(), free_ports(len(GUEST_PORTS)), strict=True))
            self.udp_forwards = dict(zip(GUEST_UDP_PORTS.values(),
                                         free_ports(len(GUEST_UDP_PORTS), socket.SOCK_DGRAM), strict=True))
            try:
                self._launch_once(incoming)
                return
            except MachineError as problem:
                if "Could not set up host forwarding" not in str(problem) or attempt == attempts - 1:
                    raise
                log.info("a forwarded port was taken meanwhile; choosing others")

    def _launch_once(self, incoming: Path | None) -> None:
        self.disk.unlink(missing_ok=True)
        self.qmp_path.unlink(missing_ok=True)
        if incoming is None:
            qemu.overlay(self.image.disk, self.disk, "raw")
        else:
            qemu.overlay(self.golden / "disk.qcow2", self.disk, "qcow2")
        command = qemu.command_line(self.image, self.accelerator, self.disk, self.qmp_path, self.console,
                                    self.forwards, self.udp_forwards, self.lan, incoming)
        with open(self.workdir / "qemu.log", "wb") as output:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.qmp = retry(lambda last: self._connect_qmp(last), 30, f"{self.name}'s QMP socket", 0.05)

    def _connect_qmp(self, last_try: bool) -> QEMUMonitorProtocol | None:
        if self.process.poll() is not None:
            raise MachineError(f"qemu exited with {self.process.returncode}: {self.qemu_log()}")
        if not self.qmp_path.exists():
            return None
        monitor = QEMUMonitorProtocol(str(self.qmp_path))
        try:
            monitor.connect()
        except (OSError, QMPError) as problem:
            if self.process.poll() is not None:  # e.g. an unusable snapshot
                raise MachineError(f"qemu exited with {self.process.returncode}: {self.qemu_log()}") from problem
            if last_try:
                raise MachineError(f"no QMP connection: {problem}") from problem
            return None
        return monitor

    def _cold_boot(self) -> None:
        with log.step("cold boot"):
            self._launch(None)
            self.wait_for_ssh(BOOT_TIMEOUT)

    def _restore(self) -> None:
        with log.step("restore from the golden snapshot"):
            self._launch(self.golden / "state")

            def migrated(last_try: bool) -> bool:
                status = self.qmp.cmd("query-status")["status"]
                if status in ("inmigrate", "prelaunch") and not last_try:
                    return False
                if status not in ("paused", "running", "postmigrate"):
                    raise MachineError(f"incoming migration ended in state `{status}`")
                return True
            retry(migrated, RESTORE_TIMEOUT, "the incoming migration", 0.05)
            if self.qmp.cmd("query-status")["status"] != "running":
                self.qmp.cmd("cont")
            self.wait_for_ssh(RESTORE_TIMEOUT)

    def _after_start(self) -> None:
        # A restored guest's clock stops at the moment of the snapshot.
        commands = [f"date -s @{time.time():.3f} >/dev/null", f"hostname {shlex.quote(self.name)}"]
        if self.lan_address:
            commands += [f"ip link set eth1 address {self.lan_mac}",
                         f"ip addr replace {self.lan_address}/24 dev eth1", "ip link set eth1 up"]
        self.succeed(" && ".join(commands))

    def shutdown(self) -> None:
        """A clean power-off: the guest shuts down and QEMU exits."""
        if self.process is None:
            return
        with log.step(f"{self.name}: shutdown"):
            try:  # the image has no ACPI button handler; ask systemd directly
                self.ssh.exec_command("systemctl poweroff")
                self.exit_code = self.process.wait(60)
            except (OSError, EOFError, paramiko.SSHException, subprocess.TimeoutExpired) as problem:
                log.info(f"no clean power-off ({problem!r}); stopping hard")
            self._kill()

    def crash(self) -> None:
        """Stop the machine at once, as a power cut would."""
        with log.step(f"{self.name}: crash"):
            self._close_ssh()
            self._kill()

    def _kill(self) -> None:
        self._close_ssh()
        if self.qmp is not None:
            try:
                self.qmp.close()
            except (OSError, EOFError, QMPError):
                pass  # QEMU is gone already
            self.qmp = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.process = None

    def _close_ssh(self) -> None:
        if self.ssh is not None:
            self.ssh.close()
            self.ssh = None

    # ------------------------------------------------------------ commands

    def wait_for_ssh(self, timeout: float) -> None:
        self.wait_for_open_port(22, b"SSH-", timeout=timeout)
        key = paramiko.Ed25519Key.from_private_key_file(str(self.image.ssh_key))

        def connect(last_try: bool) -> paramiko.SSHClient | None:
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a fresh test VM
            try:
                client.connect("127.0.0.1", self.forwards[22], username="root", pkey=key, timeout=10,
                               banner_timeout=10, auth_timeout=10, look_for_keys=False, allow_agent=False)
            except (OSError, paramiko.SSHException):
                client.close()
                if last_try:
                    raise
                return None
            return client
        self.ssh = retry(connect, timeout, f"SSH on {self.name}", 0.2)

    def execute(self, command: str, timeout: float = 120) -> tuple[int, str]:
        """Run a shell command in the guest: (exit code, stdout and stderr together)."""
        if self.ssh is None:
            raise MachineError(f"{self.name} is not running")
        channel = self.ssh.get_transport().open_session(timeout=10)
        channel.set_combine_stderr(True)
        channel.settimeout(timeout)
        channel.exec_command(command)
        output = io.BytesIO()
        try:
            while chunk := channel.recv(65536):
                output.write(chunk)
        except TimeoutError as problem:
            channel.close()
            raise MachineError(f"`{command}` on {self.name} took more than {timeout:.0f} s") from problem
        code = channel.recv_exit_status()
        channel.close()
        return code, output.getvalue().decode(errors="replace")

    def succeed(self, command: str, timeout: float = 120) -> str:
        code, output = self.execute(command, timeout)
        if code != 0:
            raise MachineError(f"`{command}` failed on {self.name} with exit code {code}:\n{output}")
        return output

    def fail(self, command: str, timeout: float = 120) -> str:
        code, output = self.execute(command, timeout)
        if code == 0:
            raise MachineError(f"`{command}` succeeded on {self.name}, but should have failed:\n{output}")
        return output

    def wait_until_succeeds(self, command: str, timeout: float = 60) -> str:
        def attempt(last_try: bool) -> str | None:
            code, output = self.execute(command)
            if code == 0:
                return output
            if last_try:
                raise MachineError(f"`{command}` kept failing on {self.name}:\n{output}")
            return None
        return retry(attempt, timeout, f"`{command}` on {self.name}")

    def wait_for_unit(self, unit: str, timeout: float = 60) -> None:
        def attempt(last_try: bool) -> bool:
            state = self.execute(f"systemctl is-active {shlex.quote(unit)}")[1].strip()
            if state == "failed" or (last_try and state != "active"):
                status = self.execute(f"systemctl status --no-pager {shlex.quote(unit)}")[1]
                raise MachineError(f"unit {unit} is {state} on {self.name}:\n{status}")
            return state == "active"
        retry(attempt, timeout, f"unit {unit} on {self.name}")

    def wait_for_open_port(self, guest_port: int, banner: bytes, tls: bool = False, timeout: float = 60) -> None:
        """Wait until the guest's service greets with `banner`: user-mode forwarding accepts
        a connection on the host side even when nothing listens in the guest."""
        host_port = self.forwards[guest_port]

        def greeted(last_try: bool) -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise MachineError(f"qemu exited with {self.process.returncode}: {self.qemu_log()}")
            return greets(host_port, banner, tls)
        retry(greeted, timeout, f"`{banner.decode()}` from port {guest_port} on {self.name}", 0.1)

    # ------------------------------------------------------------ files

    def copy_from_host(self, source: Path, target: str) -> None:
        """Copy a host file, or a directory tree as one tar stream, into the guest at `target`."""
        source = Path(source)
        self.succeed(f"mkdir -p \"$(dirname {shlex.quote(target)})\"")
        with self.ssh.open_sftp() as sftp:
            if not source.is_dir():
                sftp.put(str(source), target)
                return
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as archive:
                archive.add(source, arcname=".")
            buffer.seek(0)
            staged = f"/tmp/upload-{time.monotonic_ns()}.tar"
            sftp.putfo(buffer, staged)
        self.succeed(f"mkdir -p {shlex.quote(target)} && tar -xf {staged} -C {shlex.quote(target)} "
                     f"--no-same-owner && rm {staged}")

    def copy_to_host(self, source: str, target: Path) -> None:
        with self.ssh.open_sftp() as sftp:
            sftp.get(source, str(target))

    def write_file(self, path: str, text: str, mode: int = 0o644) -> None:
        with self.ssh.open_sftp() as sftp:
            self.succeed(f"mkdir -p \"$(dirname {shlex.quote(path)})\"")
            with sftp.open(path, "w") as handle:
                handle.write(text.encode())
            sftp.chmod(path, mode)

    # ------------------------------------------------------------ mail

    def send_mail(self, sender: str, recipients: list[str], text: str, port: int = 587, tls: str = "starttls",
                  login: tuple[str, str] | None = None, ca_file: str | None = None,
                  server_name: str = "localhost") -> None:
        """Send through the guest's `port` (25, 465 or 587), with TLS and AUTH as asked."""
        mail.send_mail(self.forwards[port], server_name, ca_file, sender, recipients, text, tls, login)

    def fetch_mail(self, login: tuple[str, str], ca_file: str | None = None, server_name: str = "localhost",
                   ) -> dict[str, list]:
        """Every message in every folder of `login`'s mailbox, over IMAP with STARTTLS."""
        return mail.fetch_mail(self.forwards[143], server_name, ca_file, login)

    # ------------------------------------------------------------ diagnostics

    def console_tail(self, lines: int = 40) -> str:
        if not self.console.exists():
            return ""
        return "\n".join(self.console.read_text(errors="replace").splitlines()[-lines:])

    def qemu_log(self) -> str:
        path = self.workdir / "qemu.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""
