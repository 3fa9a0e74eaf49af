"""The real rspamd, run from a compiled deploy's rspamd/ directory on loopback ports:
the distribution's configuration (/etc/rspamd) with the deploy's local.d/ and
override.d/ over it, as on a server."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

from needs import need_root, need_tool


class Rspamd:
    def __init__(self, directory: Path, deploy_rspamd: Path, controller: int, resolver: str,
                 rules: str | None = None):
        need_root()
        self.binary, self.rspamc = need_tool("rspamd"), need_tool("rspamc")
        self.directory, self.controller = directory, controller
        self.confdir = directory / "conf"
        shutil.copytree(deploy_rspamd, self.confdir)
        # The one setting a test adds: DNS from the test's own nsd, never the internet's.
        (self.confdir / "local.d" / "options.inc").write_text(f'dns {{ nameserver = ["{resolver}"]; }}\n')
        if rules is not None:  # a test's own symbols (Lua), beside the deploy's rspamd.local.lua
            (self.confdir / "local.d" / "rspamd.lua").write_text(rules)
        for name in ("run", "db", "log"):
            (directory / name).mkdir(parents=True, exist_ok=True)
            shutil.chown(directory / name, "_rspamd", "_rspamd")
        self.log = directory / "log" / "rspamd.log"
        variables = {"LOCAL_CONFDIR": self.confdir, "RUNDIR": directory / "run", "DBDIR": directory / "db",
                     "LOGDIR": directory / "log"}
        self.process = subprocess.Popen(
            [self.binary, "-f", "-c", "/etc/rspamd/rspamd.conf", "-u", "_rspamd", "-g", "_rspamd",
             *(f"--var={name}={value}" for name, value in variables.items())],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120  # it loads its rules for ~20 s on this machine
        while not self._listening():
            assert self.process.poll() is None and time.monotonic() < deadline, self.log_text()
            time.sleep(0.2)

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.controller), timeout=1):
                return True
        except OSError:
            return False

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    def scan(self, message: bytes, ip: str, sender: str, user: str | None = None,
             recipient: str | None = None) -> dict:
        """rspamd's verdict, as its milter would give Postfix: action, symbols, the
        DKIM-Signature it adds (`dkim-signature`), the headers (`milter`)."""
        path = self.directory / "message.eml"
        path.write_bytes(message)
        command = [self.rspamc, "-h", f"127.0.0.1:{self.controller}", "-j", "-i", ip, "-F", sender,
                   *(["--user", user] if user else []), *(["-r", recipient] if recipient else []), str(path)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
