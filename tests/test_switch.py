"""`mailspec switch`, `generations`, `rollback` and `gc` on this host, with a relocated
layout: the real Postfix and Dovecot run each generation on loopback ports."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from switchhost import compiled, relocated, tamper, verified

from mailspec.certs import make_certificates
from mailspec.keys import make_keys
from mailspec.model import DEFAULT_KEYS
from mailspec.pipeline import check
from mailspec.switch.activate import switch
from mailspec.switch.daemons import Daemons
from mailspec.switch.store import Store, SwitchError


@pytest.fixture
def host():
    yield from relocated()


def test_generations_switch_roll_back_and_are_collected(host):
    first = host.write("site")
    done = host.mailspec("switch", first, "--dry-run")
    assert "postfix: 14 added" in done.stdout and host.current() is None
    refused = host.mailspec("switch", first, check_rc=False)  # no TTY and no --yes: nobody to ask
    assert refused.returncode == 2 and "--yes" in refused.stderr and host.current() is None
    host.mailspec("switch", first, "--yes")
    assert host.current() == 1
    users = Path(host.layout.users_file)
    assert users.is_file() and (users.stat().st_mode & 0o777) == 0o440
    assert os.path.realpath(host.layout.postfix_dir) == os.path.realpath(Store(host.layout).path(1)) + "/etc/postfix"
    assert host.send("alice@example.com", "one") == 250
    host.wait_for("alice", "one")
    assert host.send("bob@example.com", "early") == 550

    # Generation 2: a new mailbox and a changed alias, while mail keeps arriving.
    second = host.write("site", more=f'mailbox bob {{ password "{host.hashes["bob"]}" }}', sales="alice, bob")
    sent = []

    def keep_sending():
        for number in range(300):
            assert host.send("alice@example.com", f"load-{number}") == 250
            sent.append(f"load-{number}")
            time.sleep(0.02)  # spread over the switch, which takes a second or two

    sender = threading.Thread(target=keep_sending)
    sender.start()
    while len(sent) < 30:
        time.sleep(0.05)
    done = host.mailspec("switch", second, "--yes")
    switched_at = len(sent)
    sender.join(timeout=300)
    assert switched_at < 300, "the switch must happen while the messages are sent"
    # New tables: Postfix reloads. A new passwd-file: Dovecot rereads it by itself.
    assert "postfix: reload" in done.stdout and "dovecot:" not in done.stdout.split("postfix: reload")[1], done.stdout
    assert host.current() == 2
    assert host.send("bob@example.com", "two") == 250
    host.wait_for("bob", "two")
    for subject in sent:  # every message exactly once
        host.wait_for("alice", subject)
    subjects = [re.search(r"^Subject: (\S+)", m, re.M).group(1) for m in host.delivered("alice")]
    assert sorted(s for s in subjects if s.startswith("load-")) == sorted(sent)

    # Back to 1: bob no longer receives, and his Maildir stays.
    host.mailspec("rollback", "1")
    assert host.current() == 1
    assert host.send("bob@example.com", "after") == 550
    assert host.delivered("bob"), "the Maildir of a mailbox gone from the spec stays"
    listing = host.mailspec("generations", ports=False).stdout
    assert [line.split()[0] for line in listing.splitlines()[1:]] == ["0", "*", "2"], listing

    host.mailspec("switch", second, "--yes")  # 3
    host.mailspec("switch", first, "--yes")  # 4
    assert host.current() == 4
    host.mailspec("gc", "--keep", "1", ports=False)
    left = [g.number for g in Store(host.layout).generations()]
    assert left == [0, 3, 4], left  # never 0 (the host as it was), the current one or its predecessor
    for number in left[1:]:
        verified(Store(host.layout), number)


def test_a_generation_that_fails_validation_never_becomes_current(host):
    host.mailspec("switch", host.write("site"), "--yes")
    request, deploy = compiled(host.write("site", sales="alice, alice"), host.layout)
    text = Path(deploy, "postfix", "main.cf").read_text()
    tamper(deploy, "postfix/main.cf", text + "smtpd_banner_typo = $myhostname\n")  # postconf warns: unused
    with pytest.raises(SwitchError, match="postconf"):
        switch(Store(host.layout), request, deploy, print)
    assert host.current() == 1 and [g.number for g in Store(host.layout).generations()] == [0, 1]
    assert host.send("alice@example.com", "still") == 250


def test_a_generation_that_fails_its_health_check_is_rolled_back(host):
    host.mailspec("switch", host.write("site"), "--yes")
    # A message deferred while Dovecot is down, as the failing generation defers mail:
    # going back must deliver it now, not at the next retry, minutes later (the fresh VM
    # found it).
    dovecot_conf = f"{host.layout.dovecot_dir}/dovecot.conf"
    subprocess.run(["doveadm", "-c", dovecot_conf, "stop"], check=True, capture_output=True)
    assert host.send("alice@example.com", "deferred") == 250
    log = Path(host.layout.postfix_log)
    deadline = time.monotonic() + 30
    while "status=deferred" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "Postfix did not defer the message"
        time.sleep(0.2)
    request, deploy = compiled(host.write("site", sales="alice, alice"), host.layout)
    text = Path(deploy, "dovecot", "dovecot.conf").read_text()
    # Dovecot accepts it, and then listens for LMTP where Postfix does not deliver.
    tamper(deploy, "dovecot/dovecot.conf", text.replace(host.layout.lmtp_socket, host.layout.lmtp_socket + "-x"))
    messages = []
    rspamd = Daemons(host.layout).master_pid("rspamd")
    with pytest.raises(SwitchError, match="failed its health check") as failed:
        switch(Store(host.layout), request, deploy, messages.append)
    assert "LMTP" in failed.value.message and "generation 1 is current again" in failed.value.message
    # rspamd's files did not change: going back leaves it running, or Postfix would
    # answer 451 to all mail while it loads its rules again.
    assert Daemons(host.layout).master_pid("rspamd") == rspamd is not None
    assert host.current() == 1
    assert Store(host.layout).read(2).status == "failed"
    assert host.send("alice@example.com", "after-rollback") == 250
    host.wait_for("alice", "after-rollback")
    host.wait_for("alice", "deferred")


def test_a_second_switch_waits_for_none_and_is_refused(host):
    first = host.write("site")
    host.mailspec("switch", first, "--yes")
    with Store(host.layout).lock():
        done = host.mailspec("switch", first, "--yes", check_rc=False)
    assert done.returncode == 1 and "another switch" in done.stderr, done.stderr
    assert host.current() == 1


def test_killed_at_any_moment_a_switch_leaves_one_complete_generation(host):
    specs = [host.write("a"), host.write("b", more=f'mailbox bob {{ password "{host.hashes["bob"]}" }}')]
    host.mailspec("switch", specs[0], "--yes")
    started = time.monotonic()
    host.mailspec("switch", specs[1], "--yes")
    duration = time.monotonic() - started
    chance = random.Random(20261201)
    store = Store(host.layout)
    for kill in range(20):
        command = [sys.executable, "-m", "mailspec", "switch", specs[kill % 2], "--yes", *host.location, *host.ports]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        time.sleep(chance.uniform(0, duration))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        current = store.current()
        assert current is not None, f"kill {kill}: no current generation"
        verified(store, current)
        for name in ("postfix", "dovecot"):
            live = getattr(host.layout, f"{name}_dir")
            assert os.path.realpath(live) == os.path.realpath(os.path.join(store.path(current), "etc", name))
    host.mailspec("switch", specs[1], "--yes")  # and the next switch finishes what a kill left
    assert host.send("bob@example.com", "after-kills") == 250
    host.wait_for("bob", "after-kills")


def test_a_switch_killed_after_the_flip_is_finished_by_the_next_one(host, monkeypatch):
    specs = [host.write("a"), host.write("b", more=f'mailbox bob {{ password "{host.hashes["bob"]}" }}')]
    host.mailspec("switch", specs[0], "--yes")
    request, deploy = compiled(specs[1], host.layout)

    def killed(self, needs):  # the moment after the flip, before any daemon hears of it
        raise SystemExit(-9)
    monkeypatch.setattr(Daemons, "apply", killed)
    with pytest.raises(SystemExit):
        switch(Store(host.layout), request, deploy, print)
    monkeypatch.undo()
    assert host.current() == 2
    daemons = Daemons(host.layout)
    masters = [daemons.master_pid(name) for name in ("postfix", "dovecot")]
    done = host.mailspec("switch", specs[1], "--yes")  # the same spec: no file changes, but
    assert "postfix: restart" in done.stdout and "dovecot: restart" in done.stdout, done.stdout
    assert not {daemons.master_pid(name) for name in ("postfix", "dovecot")} & set(masters)


def test_rollback_0_gives_the_host_back_and_a_bad_spec_or_missing_key_changes_nothing(host):
    spec = host.write("site")
    (host.prefix / "broken.mailspec").write_text("server { hostname mail.example.com }\ndomain { }\n")
    done = host.mailspec("switch", str(host.prefix / "broken.mailspec"), "--yes", check_rc=False)
    assert done.returncode == 1 and "error[" in done.stderr and host.current() is None
    key = Path(host.layout.path("/etc/ssl/private/ssl-cert-snakeoil.key"))
    key.rename(key.with_suffix(".away"))
    done = host.mailspec("switch", spec, "--yes", check_rc=False)
    assert done.returncode == 1 and "does not exist" in done.stderr and host.current() is None
    key.with_suffix(".away").rename(key)
    host.mailspec("switch", spec, "--yes")
    assert host.send("alice@example.com", "before-0") == 250
    # This prefix had no mail configuration: generation 0 runs nothing.
    host.mailspec("rollback", "0")
    assert host.current() == 0
    assert Daemons(host.layout).master_pid("postfix") is None and Daemons(host.layout).master_pid("dovecot") is None
    host.mailspec("rollback", "1")
    assert host.send("alice@example.com", "after-0") == 250
    host.wait_for("alice", "after-0")


def test_a_renewed_certificate_makes_both_daemons_reload(host):
    spec = host.write("site")
    host.mailspec("switch", spec, "--yes")
    assert "reload" not in host.mailspec("switch", spec, "--dry-run").stdout  # nothing changed
    renewed = host.prefix / "renewed"
    make_certificates(check([spec]).spec, str(renewed))  # what an ACME client's renewal does
    for source, target in (("server.crt", "/etc/ssl/certs/ssl-cert-snakeoil.pem"),
                           ("server.key", "/etc/ssl/private/ssl-cert-snakeoil.key")):
        shutil.copyfile(renewed / source, host.layout.path(target))
    done = host.mailspec("switch", spec, "--yes")
    assert "  postfix: reload" in done.stdout and "  dovecot: reload" in done.stdout, done.stdout
    served = ssl.get_server_certificate(("127.0.0.1", host.layout.ports.imaps))
    first = (renewed / "server.crt").read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(first)


def test_a_new_srs_secret_is_installed_and_restarts_postsrsd(host):
    """postsrsd has no reload: a secret `mailspec keys --force` made anew, which it reads
    only at start, restarts it; the others reload."""
    spec = host.write("site")
    host.mailspec("switch", spec, "--yes")
    daemons = Daemons(host.layout)
    before = daemons.master_pid("postsrsd")
    secret = Path(host.layout.path(DEFAULT_KEYS)) / "srs.secret"
    installed = Path(host.layout.srs_secret)
    assert before is not None and installed.read_bytes() == secret.read_bytes()
    assert (installed.stat().st_mode & 0o777) == 0o600
    secret.unlink()
    make_keys(check([spec]).spec, host.layout.path(DEFAULT_KEYS))  # a new secret; the DKIM keys are kept
    done = host.mailspec("switch", spec, "--yes")
    assert "  postsrsd: restart" in done.stdout and "  postfix: reload" in done.stdout, done.stdout
    assert installed.read_bytes() == secret.read_bytes()
    after = daemons.master_pid("postsrsd")
    assert after is not None and after != before


def test_clamd_runs_exactly_in_the_generations_with_antivirus(host):
    """An optional daemon: a switch to a spec with `antivirus` starts mailspec's clamd,
    one to a spec without it stops it (and says so), and a rollback starts it again.
    The other daemons are not restarted for it."""
    from test_antivirus import EICAR, SIGNATURE, scanned, signatures

    signatures(host.layout)
    plain, scanning = host.write("plain"), host.write("scanning", backend="antivirus yes")
    host.mailspec("switch", plain, "--yes")
    daemons = Daemons(host.layout)
    assert daemons.master_pid("clamav") is None
    postfix = daemons.master_pid("postfix")
    done = host.mailspec("switch", scanning, "--yes")
    assert "+ clamav/clamd.conf" in done.stdout and "postfix: restart" not in done.stdout, done.stdout
    assert SIGNATURE in scanned(host.layout.ports.clamd, EICAR)
    done = host.mailspec("switch", plain, "--yes")
    assert daemons.master_pid("clamav") is None and daemons.master_pid("postfix") == postfix, done.stdout
    host.mailspec("rollback", "2")
    assert daemons.master_pid("clamav") is not None
