"""`mailspec switch --target ssh://…` through the real OpenSSH server on loopback, into
a relocated server on this host; and the checks the agent makes on a server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import need_root, need_tool
from sshd import Sshd
from switchhost import relocated, verified

from mailspec.switch.agent import archive
from mailspec.switch.store import Store, SwitchError

BOB = 'mailbox bob {{ password "{}" }}'


@pytest.fixture
def host():
    yield from relocated()


@pytest.fixture
def sshd():
    server = Sshd(Path(tempfile.mkdtemp(prefix="sshd", dir="/tmp")))
    yield server
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


def mailspec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailspec", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def short_path():
    """A directory for a server's prefix, whose paths must be short (cli.MAX_PREFIX)."""
    path = Path(tempfile.mkdtemp(prefix="ssh", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_new_host_key_is_refused_with_its_fingerprint_until_accepted(sshd, short_path):
    tmp_path = short_path
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(sshd.directory / "host_key.pub")],
                                 capture_output=True, text=True, check=True).stdout.split()[1]
    refused = mailspec("generations", *sshd.options(), "--prefix", str(tmp_path))
    assert refused.returncode == 2 and fingerprint in refused.stderr and "--accept-new-host-key" in refused.stderr
    assert not sshd.known_hosts.exists()
    accepted = mailspec("generations", *sshd.options(), "--prefix", str(tmp_path), "--accept-new-host-key")
    assert accepted.returncode == 0, accepted.stderr
    assert sshd.known_hosts.read_text() == sshd.host_key_line()
    again = mailspec("generations", *sshd.options(), "--prefix", str(tmp_path))
    assert again.returncode == 0 and "manifest" in again.stdout, again.stderr


def test_a_changed_host_key_an_unreachable_target_and_a_bad_url_are_refused(sshd, short_path):
    tmp_path = short_path
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    kind, key = (tmp_path / "other.pub").read_text().split()[:2]
    sshd.known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    changed = mailspec("generations", *sshd.options(), "--prefix", str(tmp_path), "--accept-new-host-key")
    assert changed.returncode == 2 and "is not the one known_hosts has" in changed.stderr, changed.stderr
    assert "ssh-keygen" in changed.stderr and "Traceback" not in changed.stderr
    sshd.stop()
    gone = mailspec("generations", *sshd.options(), "--prefix", str(tmp_path))
    assert gone.returncode == 2 and "cannot reach ssh://root@127.0.0.1:" in gone.stderr, gone.stderr
    wrong = mailspec("generations", "--target", "ftp://example.org")
    assert wrong.returncode == 2 and "neither `local` nor ssh://" in wrong.stderr, wrong.stderr


def test_switch_rollback_and_generations_over_ssh(host, sshd):
    sshd.known_hosts.write_text(sshd.host_key_line())
    first, second = host.write("site"), host.write("more", more=BOB.format(host.hashes["bob"]))
    done = host.mailspec("switch", first, "--yes", *sshd.options())
    assert f"on {sshd.target}:" in done.stdout and "generation 1 is current" in done.stdout
    assert host.send("alice@example.com", "over-ssh") == 250
    host.wait_for("alice", "over-ssh")
    assert host.send("bob@example.com", "early") == 550
    host.mailspec("switch", second, "--yes", *sshd.options())
    assert host.send("bob@example.com", "later") == 250
    host.wait_for("bob", "later")
    listed = host.mailspec("generations", *sshd.options(), ports=False)
    assert [line[1:].split()[0] for line in listed.stdout.splitlines()[1:]] == ["0", "1", "2"]
    assert listed.stdout.splitlines()[-1].startswith("*")
    host.mailspec("rollback", "1", *sshd.options())
    assert host.current() == 1 and host.send("bob@example.com", "gone") == 550


RESTARTED = "refreshing the Postfix mail system"  # the second spec needs a reload


def test_a_killed_controller_leaves_the_switch_to_finish_on_the_server(host, sshd):
    sshd.known_hosts.write_text(sshd.host_key_line())
    first, second = host.write("site"), host.write("more", more=BOB.format(host.hashes["bob"]))
    host.mailspec("switch", first, "--yes", *sshd.options())
    restarts = Path(host.layout.postfix_log).read_text().count(RESTARTED)
    command = [sys.executable, "-m", "mailspec", "switch", second, "--yes", *sshd.options(), *host.location,
               *host.ports]
    controller = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    for line in controller.stdout:  # the agent has begun the switch: kill the controller under it
        if line.startswith("building generation 2"):
            break  # and it is building generation 2 now, which takes longer than the kill
    os.kill(controller.pid, signal.SIGKILL)
    controller.wait()
    deadline = time.monotonic() + 60
    while not _finished(Store(host.layout)):
        assert time.monotonic() < deadline, f"the switch did not finish: current is {host.current()}"
        time.sleep(0.2)
    assert host.current() == 2
    verified(Store(host.layout), 2)
    assert Path(host.layout.postfix_log).read_text().count(RESTARTED) == restarts + 1  # the switch went on
    assert host.send("bob@example.com", "after-the-kill") == 250
    host.wait_for("bob", "after-the-kill")


def _finished(store: Store) -> bool:
    """Whether no switch holds the lock any more."""
    try:
        with store.lock():
            return True
    except SwitchError:
        return False


@pytest.fixture
def agent(short_path) -> str:
    path = short_path / "agent.pyz"
    path.write_bytes(archive())
    short_path.chmod(0o755)  # for the user who is not root
    return str(path)


def test_the_agent_needs_only_the_standard_library(agent, tmp_path):
    done = subprocess.run(["/usr/bin/python3", "-S", agent, "--prefix", str(tmp_path / "server"), "generations"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("     #  built"), done.stderr


def test_the_agent_refuses_a_user_who_is_not_root_and_a_host_that_is_not_debian(agent, tmp_path):
    need_root()
    need_tool("setpriv")
    need_tool("unshare")
    user = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3",
                           agent, "generations"], capture_output=True, text=True, cwd="/")
    assert user.returncode == 2 and "must run as root" in user.stderr, user.stderr
    fake = tmp_path / "os-release"
    fake.write_text('PRETTY_NAME="Fedora Linux 41"\nID=fedora\n')
    other = subprocess.run(["unshare", "--mount", "sh", "-c", f"mount --bind {fake} /etc/os-release && "
                            f"/usr/bin/python3 {agent} generations"], capture_output=True, text=True)
    assert other.returncode == 2 and "is not Debian (Fedora Linux 41)" in other.stderr, other.stderr

