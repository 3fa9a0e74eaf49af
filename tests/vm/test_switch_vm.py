"""`mailspec switch` over SSH into a fresh Debian VM (issue 13's scenarios 1-4 and 6):
a VM with no mail packages and no mail configuration is brought up by the real
command, switched under load, made to fail a health check, rolled back by hand, to
generation 0, and killed 20 times mid-switch."""

from __future__ import annotations

import random
import shlex
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hosttier import PASSWORDS, hashed
from switchhost import tamper

from mailspec.certs import make_certificates
from mailspec.keys import key_files, make_keys
from mailspec.layout import Layout
from mailspec.model import DEFAULT_KEYS
from mailspec.pipeline import check, load_and_lower
from mailspec.switch import remote
from mailspec.switch.activate import compile_to
from mailspec.vmtests import log
from mailspec.vmtests.mail import message

pytestmark = pytest.mark.usefixtures("vm_tools")  # see tests/conftest.py

SPEC = """
server {
  hostname mail.example.com
}
domain example.com {
  mailbox alice { password "ALICE" }
  MORE
  alias sales -> SALES
}
"""
MAILDIRS = "/var/mail/vhosts/example.com"


class Fresh:
    """The fresh VM and the verbs of these scenarios: the real `mailspec` command
    against it, mail in and out, and what its Maildirs hold."""

    def __init__(self, machine, workdir: Path):
        self.machine, self.workdir = machine, workdir
        self.hashes = {user: hashed(password) for user, password in PASSWORDS.items()}
        self.url, self.known_hosts = f"ssh://root@127.0.0.1:{machine.forwards[22]}", str(workdir / "known_hosts")
        self.ssh = ["--target", self.url, "--identity", str(machine.image.ssh_key), "--known-hosts", self.known_hosts]

    def write(self, name: str, bob: bool = False, sales: str = "alice") -> str:
        more = f'mailbox bob {{ password "{self.hashes["bob"]}" }}' if bob else ""
        path = self.workdir / f"{name}.mailspec"
        path.write_text(SPEC.replace("ALICE", self.hashes["alice"]).replace("MORE", more).replace("SALES", sales))
        return str(path)

    def mailspec(self, *args: str, check_rc: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "mailspec", *args, *self.ssh], capture_output=True, text=True,
                              timeout=900)
        log.info(f"mailspec {args[0]}: exit {done.returncode}\n{done.stdout}{done.stderr}")
        if check_rc:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def send(self, to: str, subject: str) -> int:
        """Port 25 as another MTA would send (no TLS: the message is not the point)."""
        with smtplib.SMTP("127.0.0.1", self.machine.forwards[25], timeout=60) as client:
            try:
                client.sendmail("friend@outside.example", [to], message(subject, "friend@outside.example", to))
            except smtplib.SMTPRecipientsRefused as refused:
                return refused.recipients[to][0]
        return 250

    def subjects(self, user: str) -> list[str]:
        """The Subject of every message in `user`'s Maildir, once per copy."""
        found = self.machine.succeed(f"cat {MAILDIRS}/{user}/new/* {MAILDIRS}/{user}/cur/* 2>/dev/null "
                                     "| grep '^Subject: ' || true")
        return [line[len("Subject: "):] for line in found.splitlines()]

    def wait_for(self, user: str, subjects: set[str], timeout: float = 120) -> None:
        log.retry(lambda last: subjects <= set(self.subjects(user)) or None, timeout,
                  f"{len(subjects)} messages in {user}'s Maildir", 0.5)

    def current(self) -> str:
        return self.machine.succeed("readlink /var/lib/mailspec/current").strip()


@pytest.fixture
def fresh(vm_driver, tmp_path, request):
    machine = vm_driver.fresh_machine("fresh")
    request.node.vm_machines = [machine]
    machine.start()
    yield Fresh(machine, tmp_path)
    vm_driver.release_all()


def test_a_fresh_debian_vm_is_switched_rolled_back_and_survives_kills(fresh):
    machine = fresh.machine
    assert machine.execute("dpkg-query -W postfix dovecot-core")[0] != 0, "the fresh image has no mail stack"
    assert machine.execute("test -e /etc/postfix")[0] != 0
    first, second = fresh.write("first"), fresh.write("second", bob=True, sales="alice, bob")
    tls = fresh.workdir / "tls"
    make_certificates(check([first]).spec, str(tls))

    keys = fresh.workdir / "keys"
    make_keys(check([first]).spec, str(keys))

    def place_key_material() -> None:  # at the spec's default paths, Debian's snakeoil ones
        machine.write_file("/etc/ssl/certs/ssl-cert-snakeoil.pem", (tls / "server.crt").read_text())
        machine.write_file("/etc/ssl/private/ssl-cert-snakeoil.key", (tls / "server.key").read_text(), 0o600)
        for path in key_files(check([first]).spec):  # what `mailspec keys` made, where the spec says
            machine.write_file(f"{DEFAULT_KEYS}/{path}", (keys / path).read_text(), 0o600)
    place_key_material()

    with log.step("1. the first switch installs the packages and brings the server up"):
        refused = fresh.mailspec("generations", check_rc=False)
        assert refused.returncode == 2 and "--accept-new-host-key" in refused.stderr
        started = time.monotonic()
        done = fresh.mailspec("switch", first, "--yes", "--accept-new-host-key", check_rc=False)
        log.info(f"first switch, packages included: {time.monotonic() - started:.1f} s")
        assert "install dovecot-core" in done.stdout and "postfix-lmdb" in done.stdout, done.stdout
        # Debian's ssl-cert, a dependency, replaces a snakeoil pair that is not RSA with
        # SHA-256 (mailspec certs makes ECDSA): the switch notices, and stops.
        assert done.returncode == 1 and "installing the packages replaced the TLS certificate" in done.stderr
        assert fresh.current() == "generations/0" and machine.execute("dpkg-query -W postfix")[0] == 0
        place_key_material()
        done = fresh.mailspec("switch", first, "--yes")
        assert "generation 1 is current (was 0)" in done.stdout
        assert fresh.current() == "generations/1"
        assert machine.succeed("stat -c '%a %U %G' /etc/dovecot/users").split() == ["440", "vmail", "dovecot"]
        # postsrsd runs as systemd's, with the generation's settings (the drop-in), and
        # reads the secret `mailspec keys` made where AppArmor lets it.
        assert machine.succeed("tr '\\0' ' ' < /proc/$(systemctl show -p MainPID --value postsrsd)/cmdline") \
            .strip() == "/usr/sbin/postsrsd -e"
        assert machine.succeed("cat /etc/postsrsd.secret") == (keys / "srs.secret").read_text()
        assert machine.succeed("stat -c '%a %U' /etc/postsrsd.secret").split() == ["600", "root"]
        assert fresh.send("alice@example.com", "first") == 250
        login = ("alice@example.com", PASSWORDS["alice"])
        inbox = log.retry(lambda last: machine.fetch_mail(login, str(tls / "ca.crt"), "mail.example.com")
                          .get("INBOX") or None, 60, "the first message over IMAP", 0.5)
        assert [m["subject"] for m in inbox] == ["first"]

    with log.step("2. generation 2 adds a mailbox and changes an alias while 300 messages are sent"):
        sent: list[str] = []
        switched = threading.Event()

        def keep_sending(count: int, prefix: str) -> None:
            """At least `count` messages, and on until the switch has ended: the whole
            switch happens under load."""
            while len(sent) < count or not switched.is_set():
                subject = f"{prefix}-{len(sent)}"
                assert fresh.send("alice@example.com", subject) == 250
                sent.append(subject)

        sender = threading.Thread(target=keep_sending, args=(300, "load"))
        sender.start()
        log.retry(lambda last: len(sent) >= 20 or None, 120, "the first 20 messages", 0.1)
        started = time.monotonic()
        fresh.mailspec("switch", second, "--yes")
        switch_seconds = time.monotonic() - started
        switched.set()
        sender.join(timeout=900)
        assert len(sent) >= 300, len(sent)
        fresh.wait_for("alice", set(sent))
        loaded = [s for s in fresh.subjects("alice") if s.startswith("load-")]
        assert sorted(loaded) == sorted(sent), "every message exactly once"
        assert fresh.send("bob@example.com", "to bob") == 250 and fresh.send("sales@example.com", "to sales") == 250
        fresh.wait_for("bob", {"to bob", "to sales"})

    with log.step("3. a generation that fails its health check is rolled back by itself; mail flows on"):
        result, bundle = compile_to(load_and_lower([fresh.write("third", bob=True)]), Layout())
        assert result.ok
        deploy = f"{bundle}/deploy"
        text = Path(deploy, "dovecot", "dovecot.conf").read_text()
        socket = Layout().lmtp_socket  # Dovecot starts, and listens for LMTP where Postfix does not deliver
        tamper(deploy, "dovecot/dovecot.conf", text.replace(socket, socket + "-x"))
        sent.clear()
        switched.clear()
        sender = threading.Thread(target=keep_sending, args=(40, "during"))
        sender.start()
        host = remote.open_ssh(remote.parse(fresh.url), known_hosts=fresh.known_hosts,
                               identity=str(machine.image.ssh_key))
        lines: list[str] = []
        try:
            code = host.agent(["switch", host.upload(bundle)], lines.append)
        finally:
            host.close()
        switched.set()
        sender.join(timeout=600)
        assert len(sent) >= 40, f"mail stopped flowing after {len(sent)} messages"  # each one took 250
        assert code == 1 and "generation 3 is current (was 2)" in lines, lines
        assert fresh.current() == "generations/2"
        assert "(failed)" in fresh.mailspec("generations").stdout
        fresh.wait_for("alice", set(sent))

    with log.step("4. rollback 1: the mailbox of generation 2 no longer receives; its Maildir stays"):
        fresh.mailspec("rollback", "1")
        assert fresh.current() == "generations/1"
        assert fresh.send("bob@example.com", "after rollback") == 550
        assert "to bob" in fresh.subjects("bob")

    with log.step("rollback 0: the machine as it was, its mail service stopped"):
        fresh.mailspec("rollback", "0")
        assert fresh.current() == "generations/0"
        machine.succeed("! systemctl is-active postfix@-.service && ! systemctl is-active dovecot.service && "
                        "! systemctl is-active postsrsd.service")
        assert machine.succeed("readlink -f /etc/postfix") == "/var/lib/mailspec/generations/0/etc/postfix\n"

    with log.step("6. 20 kills of the agent at random moments: one complete generation each time"):
        started = time.monotonic()
        fresh.mailspec("switch", first, "--yes")
        # The moments span one switch without load (the one under load in step 2 took
        # minutes under TCG: 20 kills over that span would take most of an hour).
        span = time.monotonic() - started
        log.info(f"a switch without load: {span:.1f} s (under load: {switch_seconds:.1f} s)")
        chance = random.Random(20261202)
        for kill in range(20):
            spec = (first, second)[kill % 2]
            process = subprocess.Popen([sys.executable, "-m", "mailspec", "switch", spec, "--yes", *fresh.ssh],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(chance.uniform(1, 1 + span))
            machine.succeed("pkill -KILL -f 'agent[.]pyz' || true")
            process.wait(timeout=300)
            machine.wait_until_succeeds("! pgrep -f 'agent[.]pyz|mailspec[.]switch[.]job'", 120)
            complete(machine)
        fresh.mailspec("switch", second, "--yes")  # the next switch finishes what a kill left
        assert fresh.send("bob@example.com", "after the kills") == 250
        fresh.wait_for("bob", {"after the kills"})


def complete(machine) -> None:
    """The live directories name `current`, and `current` a complete generation whose
    installed files are what its MANIFEST says."""
    script = """
set -e
current=$(readlink -f /var/lib/mailspec/current)
test -f "$current/meta.json"
test "$(readlink /etc/postfix)" = /var/lib/mailspec/current/etc/postfix
test "$(readlink /etc/dovecot)" = /var/lib/mailspec/current/etc/dovecot
cd "$current/deploy"
grep -v '^#' MANIFEST | awk '{print $1 "  " $3}' | sha256sum --quiet -c -
for path in postfix/main.cf postfix/virtual_mailboxes dovecot/dovecot.conf; do
  cmp "$current/deploy/$path" "$current/etc/$path"
done
"""
    machine.succeed(f"sh -c {shlex.quote(script)}")
