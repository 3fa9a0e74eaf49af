"""resolve() against a running Postfix: generated specs are compiled, installed and
started on loopback, and real mail to each address lands exactly where resolve says
(local Maildirs, or the queue for outside recipients, which a dead relay host holds)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from conftest import examples, need_root, need_tool
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from specgen import SPECS, addresses, render

from mailspec.certs import make_certificates
from mailspec.hostrun import HostServer, free_layout
from mailspec.layout import Layout
from mailspec.pipeline import check_and_write, load_and_lower
from mailspec.semantics import resolve

SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]


@contextlib.contextmanager
def started(text: str) -> Iterator[tuple[HostServer, Path, Layout]]:
    """The spec compiled, installed and running on loopback; stopped and removed after."""
    prefix = Path(tempfile.mkdtemp(prefix="mr", dir="/tmp"))
    (prefix / "spec.mailspec").write_text(text)
    roots = [str(prefix / "spec.mailspec")]
    layout = free_layout(str(prefix))
    result = check_and_write(load_and_lower(roots), str(prefix / "deploy"), layout)
    assert result.ok, [f"{d.code} {d.message}" for d in result.diagnostics]
    make_certificates(result.spec, str(prefix / "tls"))
    server = HostServer(result.spec, prefix / "deploy", layout, prefix / "tls")
    server.install()
    try:
        yield server, prefix, layout
    finally:
        server.stop()
        shutil.rmtree(prefix, ignore_errors=True)


def stored_by(prefix: Path, marker: str) -> set[str]:
    """The mailboxes (local@domain) whose Maildir holds a message with `marker`."""
    found = set()
    for path in (prefix / "var/mail/vhosts").glob("*/*/*/*"):
        if path.parent.name in ("new", "cur") and marker in path.read_text(errors="replace"):
            found.add(f"{path.parents[1].name}@{path.parents[2].name}")
    return found


SRS0 = re.compile(r"SRS0=[^=]{4}=[^=]{2}=([^=]+)=(.+)@[^@]+")


def queued(layout: Layout) -> dict[str, set[str]]:
    """sender -> recipients of the messages waiting in the queue. Forwarded mail waits
    with an SRS sender, which is read back as the sender it stands for."""
    output = subprocess.run(["postqueue", "-c", layout.postfix_dir, "-j"], capture_output=True,
                            text=True).stdout
    found: dict[str, set[str]] = {}
    for line in output.splitlines():
        entry = json.loads(line)
        srs = SRS0.fullmatch(entry["sender"])
        sender = f"{srs.group(2)}@{srs.group(1)}" if srs else entry["sender"]
        found.setdefault(sender, set()).update(r["address"] for r in entry["recipients"])
    return found


@settings(max_examples=examples(4, long=60), deadline=None, suppress_health_check=SLOW)
@given(SPECS, st.data())
def test_a_running_postfix_delivers_where_resolve_says(spec, data):
    need_root()
    for tool in ("postfix", "dovecot", "postqueue"):
        need_tool(tool)
    text = render(spec, server_lines=("relay_host [127.0.0.1]:9",))
    note(text)
    with started(text) as (server, prefix, layout):
        model = server.spec
        candidates = addresses(spec)
        probes = data.draw(st.lists(st.sampled_from(candidates), unique=True,
                                    min_size=min(14, len(candidates)), max_size=14), label="probes")
        expected = {}
        with smtplib.SMTP("127.0.0.1", layout.ports.smtp, local_hostname="client.test", timeout=30) as client:
            for n, address in enumerate(probes):
                sender = f"probe{n}@sender.example"
                resolution = resolve(model, address)
                try:
                    client.sendmail(sender, [address], f"Subject: probe {n}\r\n\r\nmarker-{n}-end\r\n")
                    accepted = True
                except smtplib.SMTPRecipientsRefused:
                    accepted = False
                assert accepted == (resolution.rejected is None), (address, resolution)
                if accepted:
                    local = {r.split("@")[0].split("+")[0] + "@" + r.split("@")[1] for r in resolution.recipients
                             if r.split("@")[1] in {d.name for d in model.domains}}
                    external = {r for r in resolution.recipients
                                if r.split("@")[1] not in {d.name for d in model.domains}}
                    expected[n] = (address, local, external)
        deadline = time.monotonic() + 30
        while True:
            queue = queued(layout)
            got = {n: (stored_by(prefix, f"marker-{n}-end"), queue.get(f"probe{n}@sender.example", set()))
                   for n in expected}
            if all(got[n] == (local, external) for n, (_, local, external) in expected.items()):
                break
            if time.monotonic() > deadline:
                wrong = {expected[n][0]: {"expected": expected[n][1:], "got": got[n]}
                         for n in expected if got[n] != expected[n][1:]}
                raise AssertionError(f"deliveries differ from resolve(): {wrong}\n{server.logs()[-3000:]}")
            time.sleep(0.1)
