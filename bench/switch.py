"""Switch benchmark: `mailspec switch` of a 1k-mailbox spec on this host (relocated
under a prefix, on free loopback ports, with the real Postfix and Dovecot). Prints the
time of the first switch, of a second one (a changed quota and a new alias), of a
rollback, and how many of the connections a client opened to port 25 every 50 ms during
the second switch and the rollback were refused (the goal is none). Needs root.

    python bench/switch.py [--mailboxes 1000]
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

import attrs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compile import generate  # noqa: E402

from mailspec.certs import make_certificates  # noqa: E402
from mailspec.hostrun import HostServer, free_ports  # noqa: E402
from mailspec.layout import Layout, Ports  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=1000)
    args = parser.parse_args()
    prefix = tempfile.mkdtemp(prefix="bs", dir="/tmp")
    layout = Layout(prefix, Ports(*free_ports(6)))
    location = ["--prefix", prefix, *(f"--port={name}={port}" for name, port in attrs.asdict(layout.ports).items())]
    try:
        spec = generate(args.mailboxes, os.path.join(prefix, "spec"))
        make_certificates(check([spec]).spec, os.path.join(prefix, "tls"))
        for source, target in (("server.crt", "/etc/ssl/certs/ssl-cert-snakeoil.pem"),
                               ("server.key", "/etc/ssl/private/ssl-cert-snakeoil.key")):
            os.makedirs(os.path.dirname(layout.path(target)), exist_ok=True)
            shutil.copyfile(os.path.join(prefix, "tls", source), layout.path(target))

        def mailspec(*words: str) -> float:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "mailspec", *words, *location], check=True,
                           stdout=subprocess.DEVNULL)
            return time.perf_counter() - start

        print(f"first switch, {args.mailboxes} mailboxes (generation 0 kept, daemons started): "
              f"{mailspec('switch', spec, '--yes'):.2f} s")
        first = os.path.join(os.path.dirname(spec), "domains", sorted(os.listdir(os.path.join(
            os.path.dirname(spec), "domains")))[0])
        with open(first) as handle:
            text = handle.read()
        with open(first, "w") as handle:
            handle.write(re.sub(r"quota 1 GiB", "quota 2 GiB", text, count=1).replace(
                "alias sales", "alias orders -> u3\n  alias sales", 1))
        probe = Probe(layout.ports.smtp)
        probe.start()
        print(f"second switch (a quota and an alias: Postfix reloads): {mailspec('switch', spec, '--yes'):.2f} s")
        print(f"rollback to generation 1: {mailspec('rollback', '1'):.2f} s")
        probe.stop.set()
        probe.join()
        print(f"port 25 probed every 50 ms during both: {probe.refused} of {probe.tries} connections refused")
    finally:
        HostServer(None, None, layout, None).stop()
        shutil.rmtree(prefix, ignore_errors=True)


if __name__ == "__main__":
    main()
