"""The filter chain's cost per message: the same small spec compiled relocated and run
by the real daemons, 500 messages sent on port 25 from outside mynetworks (a network
namespace, so rspamd scans them as mail from the internet: SPF, DKIM, DMARC, the spam
rules), first with rspamd as Postfix's milter, then with the milter taken out of the
running main.cf. rspamd asks a local nsd that serves the sender's and the server's
zones (as a server's resolver would answer them; the public blocklists are refused at
once). Prints messages per second (until the last is in its Maildir) and the p50/p99
of the SMTP transaction, which is where the milter works. Needs root.

    python bench/filter.py [--messages 500]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from dnsserver import Nsd  # noqa: E402  (the tests' nsd)

from mailspec import hostrun  # noqa: E402
from mailspec.certs import make_certificates  # noqa: E402
from mailspec.dns.records import fragments  # noqa: E402
from mailspec.dns.zone import split_zones, standalone, zone_text  # noqa: E402
from mailspec.pipeline import compile as compile_spec  # noqa: E402

SPEC = """server { hostname mail.bench.example }
domain bench.example { mailbox inbox { quota 2 GiB } }
"""
SENDER = """
import json, smtplib, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
text = "From: someone@outside.test\\r\\nTo: inbox@bench.example\\r\\nSubject: bench\\r\\n\\r\\n" + "hello\\r\\n" * 40
took = []
with smtplib.SMTP(host, port, local_hostname="sender.outside.test", timeout=60) as client:
    for _ in range(count):
        start = time.perf_counter()
        client.sendmail("someone@outside.test", ["inbox@bench.example"], text)
        took.append(time.perf_counter() - start)
print(json.dumps(took))
"""


def sender_zone(client: str) -> str:
    return (f"outside.test. IN MX 10 mail.outside.test.\nmail.outside.test. IN A {client}\n"
            f'outside.test. IN TXT "v=spf1 ip4:{client} -all"\n')


def answered_dns(work: Path, spec, layout, client: str) -> Nsd:
    """nsd with the sender's zone and the server's (as `mailspec dns` prints it), and
    the running rspamd told to ask it."""
    printed = zone_text(fragments(spec, layout.path(spec.server.keys)), spec.name)
    zones = {origin: standalone(origin, body) for origin, body in split_zones(printed).items()}
    zones["outside.test."] = standalone("outside.test.", sender_zone(client))
    nsd = Nsd(work / "nsd", zones)
    Path(layout.rspamd_dir, "local.d", "options.inc").write_text(f'dns {{ nameserver = ["{nsd.address}"]; }}\n')
    subprocess.run(["kill", "-HUP", Path(layout.rspamd_pid).read_text().split()[0]], check=True)
    time.sleep(10)  # its workers restart with the new resolver
    return nsd


def delivered(work: Path) -> int:
    directory = work / "var/mail/vhosts/bench.example/inbox/new"
    return len(os.listdir(directory)) if directory.exists() else 0


def run(inside, layout, work: Path, count: int) -> dict[str, float]:
    before = delivered(work)
    start = time.perf_counter()
    done = inside([sys.executable, "-c", SENDER, inside.host, str(layout.ports.smtp), str(count)],
                  capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr
    took = sorted(json.loads(done.stdout))
    while delivered(work) < before + count:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    return {"messages/s": count / elapsed, "p50 ms": 1000 * statistics.median(took),
            "p99 ms": 1000 * took[min(len(took) - 1, int(len(took) * 0.99))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="filter", dir="/tmp"))
    server = nsd = None
    try:
        (work / "bench.mailspec").write_text(SPEC)
        layout = hostrun.free_layout(str(work))
        result = compile_spec([str(work / "bench.mailspec")], target=str(work / "deploy"), layout=layout)
        assert result.ok, result.diagnostics[:3]
        make_certificates(result.spec, str(work / "tls"))
        server = hostrun.HostServer(result.spec, work / "deploy", layout, work / "tls")
        server.install()
        results = {}
        with hostrun.outside_namespace() as inside:
            nsd = answered_dns(work, result.spec, layout, inside.client)
            results["with rspamd"] = run(inside, layout, work, args.messages)
            postfix = ["-c", layout.postfix_dir]
            subprocess.run(["postconf", *postfix, "-e", "smtpd_milters=", "non_smtpd_milters="], check=True)
            subprocess.run(["postfix", *postfix, "reload"], check=True, capture_output=True)
            time.sleep(2)  # the new smtpd processes read the new main.cf
            results["without"] = run(inside, layout, work, args.messages)
    finally:
        if server is not None:
            server.stop()
        if nsd is not None:
            nsd.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.messages} messages on port 25 from outside mynetworks")
    print(f"{'':14} {'messages/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
    for name, found in results.items():
        print(f"{name:14} {found['messages/s']:11.1f} {found['p50 ms']:8.1f} {found['p99 ms']:8.1f}")


if __name__ == "__main__":
    main()
