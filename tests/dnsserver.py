"""The real nsd, authoritative on a loopback port for zones a test gives it: the DNS that
`mailspec dns --check` and (later) rspamd ask."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import dns.exception
import dns.resolver
from needs import need_root, need_tool

from mailspec.hostrun import free_ports


class Nsd:
    def __init__(self, directory: Path, zones: dict[str, str]):
        need_root()
        self.binary = need_tool("nsd")
        self.directory, self.port = directory, free_ports(1)[0]
        directory.mkdir(parents=True, exist_ok=True)
        config = [f"server:\n  ip-address: 127.0.0.1@{self.port}\n  username: \"\"\n  chroot: \"\"\n"
                  f"  zonesdir: \"{directory}\"\n  database: \"\"\n  pidfile: \"{directory}/nsd.pid\"\n"
                  f"  xfrdfile: \"{directory}/xfrd.state\"\n  xfrdir: \"{directory}\"\n"
                  f"  zonelistfile: \"{directory}/zone.list\"\n  logfile: \"{directory}/nsd.log\"\n"
                  "  server-count: 1\n  verbosity: 1\nremote-control:\n  control-enable: no\n"]
        for origin, text in zones.items():
            name = origin.rstrip(".")
            (directory / f"{name}.zone").write_text(text)
            config.append(f"zone:\n  name: \"{name}\"\n  zonefile: \"{name}.zone\"\n")
        (directory / "nsd.conf").write_text("".join(config))
        self.process = subprocess.Popen([self.binary, "-d", "-c", str(directory / "nsd.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.wait_serving(next(iter(zones)))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_serving(self, origin: str) -> None:
        ask = dns.resolver.Resolver(configure=False)
        ask.nameservers, ask.port, ask.lifetime = ["127.0.0.1"], self.port, 1.0
        deadline = time.monotonic() + 15
        while True:
            try:
                ask.resolve(origin, "SOA")
                return
            except (dns.exception.DNSException, OSError):
                log = self.directory / "nsd.log"
                assert self.process.poll() is None and time.monotonic() < deadline, \
                    log.read_text() if log.exists() else "nsd did not start"
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
