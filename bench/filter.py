"""The filter chain's cost per message: the same small spec compiled relocated and run
by the real daemons, 500 messages sent on port 25 from outside mynetworks (a network
namespace, so rspamd scans them as mail from the internet: SPF, DKIM, DMARC, the spam
rules), first with rspamd as Postfix's milter, then with the milter taken out of the
running main.cf. Prints messages per second (until the last is in its Maildir) and the
p50/p99 of the SMTP transaction, which is where the milter works. Needs root.

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

from mailspec import hostrun
from mailspec.certs import make_certificates
from mailspec.pipeline import compile as compile_spec

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


def delivered(work: Path) -> int:
    directory = work / "var/mail/vhosts/bench.example/inbox/new"
    return len(os.listdir(directory)) if directory.exists() else 0


def run(inside, layout, work: Path, count: int) -> dict[str, float]:
    before = delivered(work)
    start = time.perf_counter()
    done = inside([sys.executable, "-c", SENDER, hostrun.OUTSIDE_HOST, str(layout.ports.smtp), str(count)],
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
    server = None
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
            results["with rspamd"] = run(inside, layout, work, args.messages)
            postfix = ["-c", layout.postfix_dir]
            subprocess.run(["postconf", *postfix, "-e", "smtpd_milters=", "non_smtpd_milters="], check=True)
            subprocess.run(["postfix", *postfix, "reload"], check=True, capture_output=True)
            time.sleep(2)  # the new smtpd processes read the new main.cf
            results["without"] = run(inside, layout, work, args.messages)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.messages} messages on port 25 from outside mynetworks")
    print(f"{'':14} {'messages/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
    for name, found in results.items():
        print(f"{name:14} {found['messages/s']:11.1f} {found['p50 ms']:8.1f} {found['p99 ms']:8.1f}")


if __name__ == "__main__":
    main()
