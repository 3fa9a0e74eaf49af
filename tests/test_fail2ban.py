"""`fail2ban`: the real fail2ban reads the real daemons' logs and bans with nftables. The
client that fails is a network namespace outside the trusted networks; its bans are
rules in this host's nftables for that address only, on the test server's ports, and
are gone when fail2ban stops.

The relocated fail2ban reads a copy of this host's /etc/fail2ban, as a server's would
(its own jails taken out: they would watch this host's logs), with its database and
log under the prefix."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
from conftest import need_tool
from hosttier import hashed, serve

BAN_TIME = 20
RETRIES = 3
SPEC = f"""
server {{{{
  hostname mail.example.com
  fail2ban {{{{ retries {RETRIES}; find_time 5m; ban_time {BAN_TIME}s }}}}
}}}}
domain example.com {{{{ mailbox alice {{{{ password "{{hash}}" }}}} }}}}
"""

# From inside the namespace: "ok" when the port greets and `tries` logins with a wrong
# password fail as they should, "refused" or "timeout" when it cannot connect. `kind`:
# imap, smtp (submission) or sieve (ManageSieve).
CLIENT = r"""
import base64, imaplib, smtplib, socket, ssl, sys
host, port, kind, tries = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
wait = 30 if tries else 10  # a probe into a ban waits out its timeout: keep it short
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
try:
    for _ in range(max(tries, 1)):
        if kind == "imap":
            client = imaplib.IMAP4(host, port, timeout=wait)
            client.starttls(ssl_context=context)
            if tries:
                try:
                    client.login("alice@example.com", "wrong-password")
                except imaplib.IMAP4.error:
                    pass
                client.shutdown()  # no LOGOUT to wait for: a ban may already have come
            else:
                client.logout()
        elif kind == "sieve":  # ManageSieve (RFC 5804): STARTTLS, then AUTHENTICATE PLAIN
            raw = socket.create_connection((host, port), timeout=wait)
            def until_ok(stream):
                line = b""
                while not line.startswith((b"OK", b"NO", b"BYE")):
                    line = stream.readline()
                    if not line:
                        raise ConnectionResetError
                return line
            until_ok(raw.makefile("rb"))
            raw.sendall(b"STARTTLS\r\n")
            until_ok(raw.makefile("rb"))
            secure = context.wrap_socket(raw)
            stream = secure.makefile("rb")
            until_ok(stream)
            if tries:
                secret = base64.b64encode(b"\0alice@example.com\0wrong-password").decode()
                secure.sendall(f'AUTHENTICATE "PLAIN" "{secret}"\r\n'.encode())
                until_ok(stream)
            else:
                secure.sendall(b"LOGOUT\r\n")
            secure.close()
        else:
            client = smtplib.SMTP(host, port, local_hostname="outside.test", timeout=wait)
            client.starttls(context=context)
            if tries:
                try:
                    client.login("alice@example.com", "wrong-password")
                except smtplib.SMTPAuthenticationError:
                    pass
            client.quit()  # Postfix answers it at once (a lost connection hid the failures)
    print("ok")
except ConnectionRefusedError:
    print("refused")
except (socket.timeout, TimeoutError):
    print("timeout")
"""


def host_config(layout) -> None:
    """This host's fail2ban configuration, under the prefix, without its jails."""
    target = Path(layout.fail2ban_dir)
    shutil.copytree("/etc/fail2ban", target)
    for jail in (target / "jail.d").iterdir():
        jail.unlink()
    (target / "fail2ban.local").write_text(
        f"[Definition]\nlogtarget = {layout.path('/var/log/fail2ban.log')}\n"
        f"dbfile = {layout.path('/var/lib/fail2ban/fail2ban.sqlite3')}\n")
    Path(layout.path("/var/lib/fail2ban")).mkdir(parents=True)


@pytest.fixture(scope="module")
def site():
    need_tool("fail2ban-client")
    need_tool("nft")
    with serve(lambda backend: SPEC.format(hash=hashed("alice-Secret-1")), "files", None, "fail2ban",
               provide=host_config) as found:
        yield found


def attempt(outside, site, kind: str, failures: int) -> str:
    port = {"imap": site.ports.imap, "sieve": site.ports.sieve, "smtp": site.ports.submission}[kind]
    done = outside([sys.executable, "-c", CLIENT, outside.host, str(port), kind, str(failures)],
                   capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def banned_until_free(outside, site, kind: str) -> float:
    """Waits for the ban (fail2ban reads the log within a second or two), then for its
    end; how long it lasted, from the start of the first probe that was banned to the
    start of the first that was not. (Timed from a probe's end, a probe that connected
    just before the ban and then hung until its timeout made a 20 s ban look short.)"""
    def first_probe(connects: bool, limit: float, pause: float) -> float:
        deadline = time.monotonic() + limit
        while True:
            started = time.monotonic()
            if (attempt(outside, site, kind, 0) == "ok") == connects:
                return started
            assert started < deadline, f"no probe {'connected' if connects else 'was banned'}:\n" \
                                       f"{site.server.logs()[-3000:]}"
            time.sleep(pause)
    banned = first_probe(False, 30, 0.5)
    return first_probe(True, BAN_TIME + 30, 1) - banned


@pytest.mark.parametrize("kind", ["imap", "smtp", "sieve"])
def test_failed_logins_from_outside_get_the_client_banned_for_the_ban_time(site, outside_client, kind):
    assert attempt(outside_client, site, kind, RETRIES) == "ok"
    lasted = banned_until_free(outside_client, site, kind)
    assert BAN_TIME - 5 < lasted < BAN_TIME + 30, lasted


def test_the_trusted_network_is_never_banned(site):
    import imaplib
    import ssl

    for _ in range(RETRIES + 1):  # Dovecot answers each later failure of a client later (auth_penalty)
        client = imaplib.IMAP4("127.0.0.1", site.ports.imap, timeout=60)
        client.starttls(ssl_context=ssl._create_unverified_context())
        with pytest.raises(imaplib.IMAP4.error):
            client.login("alice@example.com", "wrong-password")
        client.logout()
    time.sleep(3)  # longer than fail2ban takes to read the log
    with site.imap("alice") as client:
        assert client.noop()[0] == "OK"
