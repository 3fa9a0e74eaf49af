"""The real OpenSSH server on a loopback port, with its own host key and one client key:
an SSH target on this host for `mailspec switch --target ssh://…`."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from needs import need_root, need_tool

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself: it must be started by its absolute path


class Sshd:
    def __init__(self, directory: Path):
        need_root()
        need_tool(SSHD)
        self.directory = directory
        for name in ("host_key", "id_ed25519"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / name)], check=True)
        (directory / "authorized_keys").write_text((directory / "id_ed25519.pub").read_text())
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = directory / "sshd_config"
        config.write_text(f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {directory}/host_key\n"
                          f"AuthorizedKeysFile {directory}/authorized_keys\nPidFile {directory}/sshd.pid\n"
                          "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                          "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # its privilege-separation directory
        self.log = open(directory / "sshd.log", "w")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=self.log)
        deadline = time.monotonic() + 10
        while not self._greets():
            assert self.process.poll() is None and time.monotonic() < deadline, (directory / "sshd.log").read_text()
            time.sleep(0.05)
        self.known_hosts = directory / "known_hosts"
        self.identity = str(directory / "id_ed25519")

    def _greets(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as client:
                return client.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    @property
    def target(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"

    def host_key_line(self) -> str:
        """Its host key as known_hosts has it."""
        kind, key = (self.directory / "host_key.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {key}\n"

    def options(self) -> list[str]:
        return ["--target", self.target, "--identity", self.identity, "--known-hosts", str(self.known_hosts)]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()
