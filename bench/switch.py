"""Switch benchmark: `mailspec switch` of a 1k-mailbox spec. Prints the time of the
first switch, of a second one (a changed quota and a new alias), of a rollback, and how
many of the connections a client opened to port 25 every 50 ms during the second switch
and the rollback were refused (the goal is none). Needs root.

    python bench/switch.py [--mailboxes 1000] [--over local|ssh|vm]

local: a server on this host, relocated under a prefix on free loopback ports, with the
real Postfix and Dovecot; ssh: the same server, switched through the real sshd on a
loopback port; vm: a test VM (the mail image, restored from its snapshot) over SSH.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import attrs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compile import generate  # noqa: E402

from mailspec.certs import make_certificates  # noqa: E402
from mailspec.hostrun import HostServer, free_layout  # noqa: E402
from mailspec.pipeline import check  # noqa: E402


class Probe(threading.Thread):
    """Connects to port 25 every 50 ms and counts the connections that failed."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.tries, self.refused, self.stop = port, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.tries += 1
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as client:
                    if not client.recv(64).startswith(b"220 "):
                        self.refused += 1
            except OSError:
                self.refused += 1
            time.sleep(0.05)


class Here:
    """A relocated server on this host, switched in-process (local) or through sshd (ssh)."""

    def __init__(self, over: str):
        self.directory = tempfile.mkdtemp(prefix="bs", dir="/tmp")
        self.layout = free_layout(self.directory)
        self.options = ["--prefix", self.directory,
                        *(f"--port={name}={port}" for name, port in attrs.asdict(self.layout.ports).items())]
        self.smtp = self.layout.ports.smtp
        self.sshd = None
        if over == "ssh":
            sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
            from sshd import Sshd

            self.sshd = Sshd(Path(tempfile.mkdtemp(prefix="bsshd", dir="/tmp")))
            self.sshd.known_hosts.write_text(self.sshd.host_key_line())
            self.options += self.sshd.options()

    def install(self, path: str, text: str, mode: int) -> None:
        os.makedirs(os.path.dirname(self.layout.path(path)), exist_ok=True)
        with open(self.layout.path(path), "w") as handle:
            handle.write(text)
        os.chmod(self.layout.path(path), mode)

    def close(self) -> None:
        HostServer(None, None, self.layout, None).stop()
        if self.sshd is not None:
            self.sshd.stop()
            shutil.rmtree(self.sshd.directory, ignore_errors=True)
        shutil.rmtree(self.directory, ignore_errors=True)


class InVm:
    """A test VM restored from the mail image's snapshot, switched over SSH."""

    def __init__(self):
        from mailspec.vmtests.driver import Driver

        self.directory = tempfile.mkdtemp(prefix="bs", dir="/tmp")
        self.driver = Driver().__enter__()
        self.machine = self.driver.machine("server")
        self.machine.start()
        self.smtp = self.machine.forwards[25]
        self.options = ["--target", f"ssh://root@127.0.0.1:{self.machine.forwards[22]}", "--identity",
                        str(self.machine.image.ssh_key), "--known-hosts", os.path.join(self.directory, "known"),
                        "--accept-new-host-key"]

    def install(self, path: str, text: str, mode: int) -> None:
        self.machine.write_file(path, text, mode)

    def close(self) -> None:
        self.driver.__exit__(None, None, None)
        shutil.rmtree(self.directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--over", choices=("local", "ssh", "vm"), default="local")
    args = parser.parse_args()
    where = InVm() if args.over == "vm" else Here(args.over)
    try:
        spec = generate(args.mailboxes, os.path.join(where.directory, "spec"))
        tls = os.path.join(where.directory, "tls")
        make_certificates(check([spec]).spec, tls)
        for source, target, mode in (("server.crt", "/etc/ssl/certs/ssl-cert-snakeoil.pem", 0o644),
                                     ("server.key", "/etc/ssl/private/ssl-cert-snakeoil.key", 0o600)):
            with open(os.path.join(tls, source)) as handle:
                where.install(target, handle.read(), mode)

        def mailspec(*words: str) -> float:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "mailspec", *words, *where.options], check=True,
                           stdout=subprocess.DEVNULL)
            return time.perf_counter() - start

        print(f"over {args.over}: first switch, {args.mailboxes} mailboxes (generation 0 kept, daemons "
              f"(re)started): {mailspec('switch', spec, '--yes'):.2f} s")
        first = os.path.join(os.path.dirname(spec), "domains", sorted(os.listdir(os.path.join(
            os.path.dirname(spec), "domains")))[0])
        with open(first) as handle:
            text = handle.read()
        with open(first, "w") as handle:
            handle.write(re.sub(r"quota 1 GiB", "quota 2 GiB", text, count=1).replace(
                "alias sales", "alias orders -> u3\n  alias sales", 1))
        probe = Probe(where.smtp)
        probe.start()
        print(f"second switch (a quota and an alias: Postfix reloads): {mailspec('switch', spec, '--yes'):.2f} s")
        print(f"rollback to generation 1: {mailspec('rollback', '1'):.2f} s")
        probe.stop.set()
        probe.join()
        print(f"port 25 probed every 50 ms during both: {probe.refused} of {probe.tries} connections refused")
    finally:
        where.close()


if __name__ == "__main__":
    main()
