"""The host-daemon tier: a compiled, relocated deploy run by the real Postfix and Dovecot
on loopback, for the files backend and for the mysql backend (on the test MariaDB)."""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs
import pytest
from conftest import need_root, need_tool
from mariadb_server import DB_PASSWORD, DB_USER

from mailspec.certs import make_certificates
from mailspec.hostrun import HostServer, free_layout, outside_namespace
from mailspec.layout import Layout, Ports
from mailspec.pipeline import check, check_and_write, load_and_lower
from mailspec.switch.activate import stored_redis_password

PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2", "carol": "carol-Secret-3",
             "dave": "dave-Secret-4", "noreply": "noreply-Secret-5", "tiny": "tiny-Secret-6"}
HOSTNAME = "mail.example.com"

SPEC = """
server {{
  hostname mail.example.com
  relay_host [127.0.0.1]:9   # nothing listens: outbound mail stays in the queue to inspect
  mta_sts {{ mode testing; max_age 1 day }}
  {backend}
  filters {{
    reject_sender spam@outside.example, bad.example
    reject_recipient old@example.com, blocked.example
  }}
  postscreen {{ pregreet yes }}  # 127.0.0.1 is trusted and skips it; 127.0.0.2 is not
}}
domain example.com {{
  also example.net
  catch_all alice
  mailbox alice {{
    password "{alice}"
    aliases postmaster
    sieve {{ if header "subject" contains "[report]" {{ fileinto "Reports"; stop }} }}
  }}
  mailbox bob {{ password "{bob}" }}
  mailbox carol {{
    password "{carol}"
    forward carol@elsewhere.example
    keep_copy
  }}
  mailbox dave {{
    password "{dave}"
    send_as noreply
    auto_reply {{ subject "Away"; body "Back on Monday."; days 1 }}
  }}
  mailbox noreply {{ password "{noreply}"; send_only }}
  mailbox tiny {{ password "{tiny}"; quota 40 KiB }}
  alias sales -> alice, bob
  list staff {{ members alice, bob; post members }}
  list news {{ members alice, bob, carol; post announcer; announcer carol }}
  list open {{ members alice, bob; post anyone; require_auth }}
  list everyone {{ members alice, bob; post anyone }}
  list board {{ members alice, bob; post members; require_auth }}
  list memo {{ members alice, bob, carol; post announcer; announcer carol; require_auth }}
}}
"""
MYSQL = ('backend mysql {{ socket "{socket}"; database {database}; user ' + DB_USER +
         '; password_file "/etc/mailspec/mysql.cnf" }}')


def redis_cli(site, *args: str, log_in: bool = True) -> subprocess.CompletedProcess:
    """redis-cli against mailspec's Redis, logged in with the password the switch made
    (or not)."""
    environment = {key: value for key, value in os.environ.items() if key != "REDISCLI_AUTH"}
    if log_in:
        environment["REDISCLI_AUTH"] = stored_redis_password(site.layout)
    return subprocess.run(["redis-cli", "-p", str(site.ports.redis), *args], capture_output=True, text=True,
                          env=environment)


def hashed(password: str) -> str:
    return subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", password],
                          capture_output=True, text=True, check=True).stdout.strip()


@attrs.define
class Running:
    server: HostServer
    layout: Layout
    prefix: Path
    ca_file: str

    @property
    def ports(self) -> Ports:
        return self.layout.ports

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def maildir(self, user: str, folder: str = "") -> Path:
        base = self.prefix / "var/mail/vhosts/example.com" / user
        return base / f".{folder}" if folder else base

    def messages(self, user: str, folder: str = "") -> list[str]:
        found = []
        for sub in ("new", "cur"):
            directory = self.maildir(user, folder) / sub
            if directory.exists():
                found += [p.read_text(errors="replace") for p in sorted(directory.iterdir())]
        return found

    def wait_for(self, user: str, marker: str, folder: str = "", timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages(user, folder):
                if marker in message:
                    return message
            time.sleep(0.05)
        raise AssertionError(f"no message with {marker!r} for {user} in {folder or 'INBOX'}\n"
                             + self.server.logs()[-3000:])

    def smtp(self, port: int | None = None, implicit_tls: bool = False, source: str | None = None,
             timeout: float = 15) -> smtplib.SMTP:
        """A client on 127.0.0.1 (or `source`) that verifies the server's certificate as
        mail.example.com."""
        bound = (source, 0) if source else None
        if implicit_tls:
            client = smtplib.SMTP_SSL(local_hostname="client.test", timeout=timeout, context=self.tls(),
                                      source_address=bound)
        else:
            client = smtplib.SMTP(local_hostname="client.test", timeout=timeout, source_address=bound)
        client._host = HOSTNAME  # the name TLS verifies; the connection goes to loopback
        client.connect("127.0.0.1", port or self.ports.smtp)
        return client

    def submission(self, user: str) -> smtplib.SMTP:
        client = self.smtp(self.ports.submission)
        client.starttls(context=self.tls())
        client.login(f"{user}@example.com", PASSWORDS[user])
        return client

    def imap(self, user: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.ports.imap, timeout=15)
        client.host = HOSTNAME
        client.starttls(ssl_context=self.tls())
        client.login(f"{user}@example.com", PASSWORDS[user])
        return client

    def queue(self) -> str:
        return subprocess.run(["postqueue", "-c", self.layout.postfix_dir, "-j"], capture_output=True,
                              text=True).stdout


def message(subject: str, sender: str, to: str, body: str = "hello") -> str:
    message_id = f"<{subject.replace(' ', '.')}@t>"
    return f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n\r\n{body}\r\n"


@pytest.fixture(scope="module", params=["files", "mysql"])
def running(request, mariadb):
    hashes = {user: hashed(password) for user, password in PASSWORDS.items()}
    with serve(lambda backend: SPEC.format(backend=backend, **hashes), request.param, mariadb) as found:
        yield found


@contextlib.contextmanager
def serve(spec_text, backend_kind: str, mariadb, name: str = "host_tier", ports: Ports | None = None,
          provide=None):
    """The spec `spec_text(backend statement)` compiled relocated, installed and run by
    the real daemons on loopback (on `ports`, else free ones); stopped after, with no
    fatal line in their logs. `provide(layout)` puts what an administrator provides
    (key material the spec names) in place first."""
    need_root()
    for tool in ("postfix", "dovecot", "doveadm", "sievec", "postmap"):
        need_tool(tool)
    prefix = Path(tempfile.mkdtemp(prefix="ms", dir="/tmp"))
    backend = ""
    if backend_kind == "mysql":
        backend = MYSQL.format(socket=mariadb.socket, database=name)
    spec_path = prefix / "site.mailspec"
    spec_path.write_text(spec_text(backend))
    spec = check([str(spec_path)]).spec
    layout = Layout(str(prefix), ports) if ports else free_layout(str(prefix))
    deploy = prefix / "deploy"
    compiled = check_and_write(load_and_lower([str(spec_path)]), str(deploy), layout)
    assert compiled.ok, [f"{d.code} {d.message}" for d in compiled.diagnostics]
    tls = prefix / "tls"
    make_certificates(spec, str(tls))
    if backend_kind == "mysql":
        options = Path(layout.path("/etc/mailspec/mysql.cnf"))
        options.parent.mkdir(parents=True)
        options.write_text(f"[mailspec]\nuser = {DB_USER}\npassword = {DB_PASSWORD}\n")
        mariadb.create_database(name, DB_USER, DB_PASSWORD)
        mariadb.source(name, deploy / "sql" / "schema.sql")
        mariadb.source(name, deploy / "sql" / "seed.sql")
    server = HostServer(spec, deploy, layout, tls)
    if provide is not None:
        provide(layout)

    def readable_by_dovecot():  # as the README says: Dovecot's auth (group) and auth workers (owner)
        if backend_kind == "mysql":
            shutil.chown(options, "vmail", "dovecot")
            options.chmod(0o440)

    started = time.monotonic()
    try:
        server.install(readable_by_dovecot)
    except BaseException:  # what did start must not outlive the test
        server.stop()
        shutil.rmtree(prefix, ignore_errors=True)
        raise
    print(f"\n{backend_kind}: installed and started in {time.monotonic() - started:.2f} s")
    yield Running(server, layout, prefix, str(tls / "ca.crt"))
    logs = server.logs()
    delivered = sum(1 for p in (prefix / "var/mail/vhosts").rglob("*") if p.parent.name in ("new", "cur"))
    print(f"\n{backend_kind}: {delivered} messages delivered to Maildirs")
    stopping = time.monotonic()
    server.stop()
    print(f"{backend_kind}: stopped in {time.monotonic() - stopping:.2f} s")
    assert not server.processes(), "stray processes after stop"
    shutil.rmtree(prefix, ignore_errors=True)
    problems = [line for line in logs.splitlines()
                if any(word in line for word in (" fatal:", " panic:", "Panic:", "Fatal:"))]
    assert not problems, "\n".join(problems)


# A client outside mynetworks: the server trusts all of 127.0.0.0/8, so relay tests
# from loopback would pass for the wrong reason (hostrun.outside_namespace).
PROBE = """
import smtplib, ssl, sys
host, port, tls, sender, recipient = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
if tls == "implicit":
    client = smtplib.SMTP_SSL(host, port, local_hostname="outside.test", context=context, timeout=15)
else:
    client = smtplib.SMTP(host, port, local_hostname="outside.test", timeout=15)
    client.ehlo()
    if tls == "starttls":
        client.starttls(context=context)
client.ehlo()
client.mail(sender)
print(client.rcpt(recipient)[0])
"""


@pytest.fixture(scope="module")
def outside():
    """run(port, tls, sender, recipient) -> the RCPT reply code, from outside mynetworks."""
    need_root()
    need_tool("ip")
    with outside_namespace() as inside:
        def run(port: int, tls: str, sender: str, recipient: str) -> int:
            done = inside([sys.executable, "-c", PROBE, inside.host, str(port), tls, sender, recipient],
                          capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return int(done.stdout.strip())
        yield run

