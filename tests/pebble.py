"""pebble, the ACME test CA in Debian, on loopback: it validates http-01 challenges by
asking a test nsd for the names and connecting to the given HTTP port."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

from needs import need_root, need_tool

from mailspec.hostrun import free_ports


class Pebble:
    def __init__(self, directory: Path, dns_server: str, http_port: int):
        need_root()
        binary = need_tool("pebble")
        directory.mkdir(parents=True, exist_ok=True)
        self.port, management, tls_port = free_ports(3)
        # Its own HTTPS listener: a self-signed CA certificate for 127.0.0.1, which
        # certbot is told to trust (REQUESTS_CA_BUNDLE).
        self.listener_ca = str(directory / "listener.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", str(directory / "listener.key"), "-out", self.listener_ca,
                        "-days", "2", "-subj", "/CN=pebble listener", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-addext", "basicConstraints=critical,CA:TRUE"], check=True, capture_output=True)
        config = {"pebble": {"listenAddress": f"127.0.0.1:{self.port}",
                             "managementListenAddress": f"127.0.0.1:{management}",
                             "certificate": self.listener_ca, "privateKey": str(directory / "listener.key"),
                             "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
                             "externalAccountBindingRequired": False}}
        (directory / "pebble.json").write_text(json.dumps(config))
        self.management = f"https://127.0.0.1:{management}"
        self.log = directory / "pebble.log"
        # No sleeps before validating, and no nonces refused at random: the test is about
        # mailspec, not certbot's retries.
        environment = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PATH": "/usr/bin:/bin"}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([binary, "-config", str(directory / "pebble.json"), "-dnsserver",
                                             dns_server], stdout=log, stderr=subprocess.STDOUT, env=environment)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.get(self.directory)
                return
            except OSError:
                assert self.process.poll() is None and time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.1)

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def get(self, url: str) -> bytes:
        context = ssl.create_default_context(cafile=self.listener_ca)
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            return response.read()

    def root(self) -> str:
        """The root it signs with (new at every start), PEM."""
        return self.get(f"{self.management}/roots/0").decode()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
