"""Reload or restart the daemons whose files changed, and check the server works.

On a server the daemons are systemd's (`systemctl`); with a relocated layout (the host
tier, side-by-side servers) they are run directly with `-c`, as hostrun does.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

from mailspec.hostrun import alive, greets, unverified
from mailspec.layout import Layout
from mailspec.switch import build, nginx, units

DAEMONS = units.NAMES
RESTART_FILES = {"postfix/master.cf"}  # a new master.cf needs a restart; other files a reload
# What Dovecot notices by itself: it rereads a passwd-file whose modification time or
# size changed (build.py makes the time new). A reload would end the LMTP sessions in
# progress (`421 4.3.2 Shutting down`), and a message being saved could come again.
# Postfix's lmdb tables are not noticed across generations (the old files stay as they
# were): a changed table is a reload, which finishes every delivery in progress.
NOTICED = {"dovecot/users"}
# How long rspamd may take to load its rules and start listening: 20 s here the first
# time (it compiles its patterns into /var/lib/rspamd), a second after that, and
# several times as long under QEMU's TCG.
RSPAMD_LOADING = 300


def changes(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """What each daemon needs, from two MANIFESTs ({path: digest}): "restart",
    "reload" or nothing. Sieve scripts are read at delivery and need nothing."""
    changed = {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)} - NOTICED
    needs = {}
    for daemon in DAEMONS:
        mine = {p for p in changed if p.startswith(daemon + "/")}
        if mine & RESTART_FILES:
            needs[daemon] = "restart"
        elif mine:
            needs[daemon] = units.BY_NAME[daemon].reload
    return needs


class Daemons:
    def __init__(self, layout: Layout, lock=None):
        self.layout = layout
        self.keep = (lock.fileno(),) if lock is not None else ()  # a job holds the switch lock too
        self.relocated = bool(layout.prefix)
        self.dovecot_conf = os.path.join(layout.dovecot_dir, "dovecot.conf")

    def runs(self, daemon: str) -> bool:
        return units.BY_NAME[daemon].runs(self.layout)

    @property
    def serves_pop3(self) -> bool:
        """Whether the current generation's Dovecot serves POP3 (a spec with `pop3`)."""
        try:
            with open(self.dovecot_conf, encoding="utf-8") as handle:
                return any(line.startswith("protocols = ") and " pop3" in line for line in handle)
        except OSError:
            return False

    @property
    def serves_web(self) -> bool:
        """Whether the current generation has mailspec's site (a spec with domains)."""
        return os.path.exists(os.path.join(self.layout.nginx_dir, nginx.SITE))

    def master_pid(self, daemon: str) -> int | None:
        unit = units.BY_NAME[daemon]
        if unit.foreground and not self.relocated:  # systemd's: no pid file of ours
            shown = subprocess.run(["systemctl", "show", "--property=MainPID", "--value", unit.systemd_unit],
                                   capture_output=True, text=True).stdout.strip()
            pid = int(shown) if shown.isdigit() else 0
            return pid if pid and alive(pid) else None
        path = self.layout.pid_files[daemon]
        try:
            with open(path) as handle:
                pid = int(handle.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if alive(pid) else None  # a master that exited may linger as a zombie

    def apply(self, needs: dict[str, str]) -> None:
        """Start what is not running; restart, reload or stop what `needs` says."""
        for daemon in DAEMONS:
            running = self.master_pid(daemon) is not None
            action = needs.get(daemon)
            if not self.runs(daemon):  # an optional one the spec does not ask for
                if not units.BY_NAME[daemon].shared:
                    action = "stop"
                elif not running:  # the host's own, which it does not run: left so
                    continue
            if action == "stop" and not running:
                continue
            if not running and action != "stop":
                action = "start"
            if action is not None:
                self._do(daemon, action)

    def flush_queue(self) -> None:
        """Deliver now what a reload held up: mail that arrives while `postfix reload`
        replaces the queue manager can stay in the incoming queue, and deliveries that a
        Dovecot reload ended are deferred; both would wait for the next queue run (five
        minutes). Found by 300 messages sent during a switch."""
        build.run("postqueue", "-c", self.layout.postfix_dir, "-f", what="flushing the mail queue")

    def _do(self, daemon: str, action: str) -> None:
        if not self.relocated:  # systemd finishes a job even if mailspec dies midway
            build.run("systemctl", action, units.BY_NAME[daemon].systemd_unit, what=f"{action} {daemon}")
            return
        commands = self._relocated(daemon, action)
        # Like a systemd job (job.py): in a session of its own and holding the switch
        # lock, so a mailspec killed between the stop and the start of a restart does not
        # leave the daemon stopped, and the next switch waits for the job to end.
        waits = action in ("restart", "stop")  # for the old master to exit: before the start, or at the end
        job = json.dumps({"commands": commands, "wait_for": self.master_pid(daemon) if waits else None})
        build.run(*_python(), "-m", "mailspec.switch.job", job, what=f"{action} {daemon}", keep=self.keep,
                  session=True)

    def _relocated(self, daemon: str, action: str) -> list[list[str]]:
        """The commands of `action` for a daemon run relocated: started with its own -c,
        stopped (and restarted) by signalling its master, unless it has a verb of its own."""
        layout, conf = self.layout, self.dovecot_conf
        starts = {
            "postfix": lambda: ["postfix", "-c", layout.postfix_dir, "start"],
            "dovecot": lambda: ["dovecot", "-c", conf],
            "rspamd": lambda: ["rspamd", "-c", f"{layout.rspamd_confdir}/rspamd.conf", "-u", "_rspamd",
                               "-g", "_rspamd", *layout.rspamd_variables()],
            # As systemd runs it with mailspec's drop-in (activate.POSTSRSD_DROP_IN): its
            # settings from the generation's environment file.
            "postsrsd": lambda: ["sh", "-c", f"set -a && . {layout.postsrsd_dir}/postsrsd.env && "
                                 f"exec postsrsd -e -D -p {layout.postsrsd_pid}"],
            "nginx": lambda: ["nginx", "-e", "stderr", "-c", nginx.relocated_config(layout)],
            "redis": lambda: ["redis-server", f"{layout.redis_dir}/redis.conf", "--daemonize", "yes"],
            "clamav": lambda: ["clamd", f"--config-file={layout.clamav_dir}/clamd.conf"],
            "fail2ban": lambda: [*self._fail2ban(), "start"],
        }
        own = {
            ("postfix", "reload"): lambda: [["postfix", "-c", layout.postfix_dir, "reload"]],
            ("postfix", "restart"): lambda: [["postfix", "-c", layout.postfix_dir, "stop"], starts["postfix"]()],
            ("dovecot", "reload"): lambda: [["doveadm", "-c", conf, "reload"]],
            ("dovecot", "restart"): lambda: [["doveadm", "-c", conf, "stop"], starts["dovecot"]()],
            ("rspamd", "reload"): lambda: [["kill", "-HUP", str(self.master_pid("rspamd") or 0)]],
            ("nginx", "reload"): lambda: [[*starts["nginx"](), "-s", "reload"]],
            ("fail2ban", "reload"): lambda: [[*self._fail2ban(), "reload"]],
        }
        if (daemon, action) in own:
            return own[daemon, action]()
        signal = ["kill", str(self.master_pid(daemon) or 0)]  # a stop: the generation has nothing to read
        return {"start": lambda: [starts[daemon]()], "stop": lambda: [signal],
                "restart": lambda: [signal, starts[daemon]()]}[action]()

    def _fail2ban(self) -> list[str]:
        layout = self.layout
        return ["fail2ban-client", "-c", layout.fail2ban_dir, "-s", layout.fail2ban_socket, "-p", layout.fail2ban_pid]

    def health(self, probe: str | None, timeout: float = 20) -> list[str]:
        """What does not work: every master runs, rspamd's milter and postsrsd's tables
        answer, SMTP, submission and IMAP greet, and the mailbox `probe` is accepted on
        port 25 and by Dovecot's LMTP (a RCPT probe: nothing is delivered, and no user's
        password is needed)."""
        self.wait_for_rspamd()
        deadline = time.monotonic() + timeout
        problems = self._problems(probe)
        while problems and time.monotonic() < deadline:
            time.sleep(0.2)
            problems = self._problems(probe)
        return problems

    def wait_for_rspamd(self, timeout: float = RSPAMD_LOADING) -> None:
        """While rspamd loads its rules it does not listen, and Postfix defers all mail."""
        deadline = time.monotonic() + timeout
        while not listens(self.layout.ports.milter) and self.master_pid("rspamd") is not None and \
                time.monotonic() < deadline:
            time.sleep(0.2)

    def _problems(self, probe: str | None) -> list[str]:
        problems = [f"{d} is not running" for d in DAEMONS if self.runs(d) and self.master_pid(d) is None]
        ports = self.layout.ports
        listeners = ((ports.redis, "Redis"), (ports.milter, "rspamd's milter"),
                     (ports.srs_forward, "postsrsd's forward table"), (ports.srs_reverse, "postsrsd's reverse table"),
                     *([(ports.clamd, "clamd")] if self.runs("clamav") else []))
        for port, what in listeners:
            if not listens(port):
                problems.append(f"{what} on port {port} does not answer")
        greeters = ((ports.smtp, b"220 ", "SMTP"), (ports.submission, b"220 ", "submission"),
                    (ports.imap, b"* OK", "IMAP"), *([(ports.pop3, b"+OK", "POP3")] if self.serves_pop3 else []))
        for port, banner, name in greeters:
            if not greets(port, banner):
                problems.append(f"{name} on port {port} does not greet")
        if self.serves_web and not serves_https(ports.https):
            problems.append(f"nginx does not answer HTTPS on port {ports.https}")
        if probe is not None and not problems:
            problems += _rcpt_probe(lambda: smtplib.SMTP("127.0.0.1", ports.smtp, timeout=10), "SMTP", probe)
            problems += _rcpt_probe(lambda: smtplib.LMTP(self.layout.lmtp_socket, timeout=10), "LMTP", probe)
        return problems

    def log_tail(self, lines: int = 30) -> str:
        """The end of the daemons' logs: why a health check failed."""
        parts = []
        for path in self.layout.daemon_logs:
            try:
                with open(path, errors="replace") as handle:
                    tail = handle.read().splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"==> {path}\n" + "\n".join(tail))
        return "\n".join(parts)


def listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return True
    except OSError:
        return False


def serves_https(port: int) -> bool:
    """Whether the site answers: the client set-up is there whatever the spec says. Not
    verified: the certificate may be the snakeoil one."""
    import http.client

    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=unverified())
    try:
        connection.request("GET", "/mail/config-v1.1.xml")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _python() -> list[str]:
    """How to run one of mailspec's modules: on a server, from the agent's archive."""
    root = Path(__file__).parents[2]  # the directory, or the archive, mailspec came from
    return ["env", f"PYTHONPATH={root}", sys.executable] if root.suffix == ".pyz" else [sys.executable]


def _rcpt_probe(connect, name: str, address: str) -> list[str]:
    try:
        with connect() as client:
            client.ehlo("mailspec.health")  # LHLO on LMTP
            client.mail("<>")
            code, reply = client.rcpt(address)
            client.rset()
    except (OSError, smtplib.SMTPException) as error:
        return [f"{name} probe for {address} failed: {error}"]
    if code != 250:
        return [f"{name} refused {address}: {code} {reply.decode(errors='replace')}"]
    return []
