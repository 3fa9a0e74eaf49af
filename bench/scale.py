"""Scale benchmark: the dense shape (bench/compile.py: 2,000 domains x 50 mailboxes)
against a small spec, each compiled relocated, installed and run by the real Postfix
and Dovecot on loopback. Needs root and the daemons. Prints, for both and as the ratio
dense / small: compile time, install time by phase (start-up until healthy included), smtpd's
open files and RSS, the certificate's size, and delivery latency and throughput.

    python bench/scale.py [--domains 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from compile import dense  # noqa: E402  (the bench shapes live beside this file)

from mailspec import hostrun  # noqa: E402
from mailspec.certs import make_certificates  # noqa: E402
from mailspec.pipeline import compile as compile_spec  # noqa: E402

MESSAGES = 200


def timed_install(server: hostrun.HostServer) -> dict[str, float]:
    """HostServer.install (the switch procedure, daemons started and checked), its
    seconds by phase: each tool the build runs, and the rest."""
    from mailspec.switch import build

    phases: dict[str, float] = defaultdict(float)
    run = build.run

    def timing(*command: str, **options) -> str:
        start = time.perf_counter()
        try:
            return run(*command, **options)
        finally:
            phases["start the daemons" if "mailspec.switch.job" in command else command[0]] += \
                time.perf_counter() - start

    build.run = timing
    start = time.perf_counter()
    try:
        server.install()
    finally:
        build.run = run
    phases["copy, owners, start, health check and the rest"] = time.perf_counter() - start - sum(phases.values())
    return dict(phases)


def smtpd_resources(server: hostrun.HostServer, port: int) -> tuple[int, float]:
    """(open files, RSS in MB) of the smtpd serving one connection to `port`."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("bench.test")
        for pid in server.processes():
            try:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if name == "smtpd":
                files = len(os.listdir(f"/proc/{pid}/fd"))
                rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                           if line.startswith("VmRSS:"))
                return files, rss / 1024
    return 0, 0.0


def delivered(prefix: Path, domain: str, user: str) -> int:
    directory = prefix / "var/mail/vhosts" / domain / user / "new"
    return len(os.listdir(directory)) if directory.exists() else 0


def wait_until(condition, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("mail was not delivered in time")
        time.sleep(0.02)


def measure(spec_file: str, work: Path) -> dict[str, float]:
    found: dict[str, float] = {}
    layout = hostrun.free_layout(str(work))
    start = time.perf_counter()
    result = compile_spec([spec_file], target=str(work / "deploy"), layout=layout)
    found["compile s"] = time.perf_counter() - start
    assert result.ok, result.diagnostics[:3]
    make_certificates(result.spec, str(work / "tls"))
    found["certificate KB"] = os.path.getsize(work / "tls" / "server.crt") / 1024
    server = hostrun.HostServer(result.spec, work / "deploy", layout, work / "tls")
    for phase, seconds in timed_install(server).items():
        found[f"install: {phase} s"] = seconds
    try:
        files, rss = smtpd_resources(server, layout.ports.smtp)
        found["smtpd open files"], found["smtpd RSS MB"] = files, rss
        domain = result.spec.domains[0].name
        user = result.spec.domains[0].mailboxes[-1].local
        to = f"{user}@{domain}"
        text = f"From: bench@outside.test\r\nTo: {to}\r\nSubject: one\r\n\r\nhello\r\n"
        with smtplib.SMTP("127.0.0.1", layout.ports.smtp, timeout=30) as client:
            start = time.perf_counter()
            client.sendmail("bench@outside.test", [to], text)
            wait_until(lambda: delivered(work, domain, user) >= 1)
            found["delivery latency s"] = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(MESSAGES):
                client.sendmail("bench@outside.test", [to], text)
        wait_until(lambda: delivered(work, domain, user) >= MESSAGES + 1)
        found["throughput messages/s"] = MESSAGES / (time.perf_counter() - start)
    finally:
        server.stop()
    return found


def small(directory: str) -> str:
    spec = os.path.join(directory, "small.mailspec")
    with open(spec, "w") as handle:
        handle.write("server { hostname mail.bench.example }\ndomain small.example {\n"
                     + "".join(f"  mailbox u{m} {{ quota 2 GiB }}\n" for m in range(50))
                     + "  list team { members u0, u1, u2 }\n}\n")
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domains", type=int, default=2000)
    args = parser.parse_args()
    results = []
    for make in (small, lambda directory: dense(directory, args.domains)):
        work = Path(tempfile.mkdtemp(prefix="scale", dir="/tmp"))
        try:
            results.append(measure(make(str(work)), work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    little, big = results
    print(f"{'':34} {'small':>10} {'dense':>10} {'ratio':>8}")
    for key in sorted(set(little) | set(big)):
        a, b = little.get(key, 0.0), big.get(key, 0.0)
        ratio = f"{b / a:8.1f}" if a else "       -"
        print(f"{key:34} {a:10.2f} {b:10.2f} {ratio}")


if __name__ == "__main__":
    main()
