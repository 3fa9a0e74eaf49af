"""Every valid fixture's output is accepted by the real Postfix, Dovecot and Pigeonhole,
and the lmdb maps, queried with the real postmap, route mail as the model says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from conftest import (
    VALID,
    checked,
    compile_fixture,
    declared_addresses,
    need_root,
    need_tool,
    valid_spec,
    with_backend,
    write_tree,
)

from mailspec import install, model
from mailspec.backends.sieve import spam_script
from mailspec.emit import emit_all
from mailspec.layout import Layout
from mailspec.semantics import resolve
from mailspec.switch.activate import redis_password

MAPS = ("virtual_domains", "virtual_alias_domains", "virtual_mailboxes", "virtual_aliases",
        "sender_login", "recipient_access", "sender_access", "list_access", "own_domains")


@pytest.fixture(params=VALID)
def deploy(request, tmp_path):
    write_tree(compile_fixture(request.param), tmp_path)
    return tmp_path


def test_postconf_has_no_warnings(deploy):
    postconf = need_tool("postconf")
    run = subprocess.run([postconf, "-c", str(deploy / "postfix"), "-n"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "virtual_transport = lmtp:unix:private/dovecot-lmtp" in run.stdout


@pytest.mark.parametrize("name", VALID)
def test_postfix_check_is_clean(name, tmp_path, short_dir):
    need_root()
    postfix = need_tool("postfix")
    script = need_tool("script")
    # Relocated under tmp_path: its own queue and data directories, nothing of the host's.
    layout = Layout(str(short_dir))
    write_tree(emit_all(checked(valid_spec(name)).spec, layout), tmp_path / "deploy")
    for directory in (layout.postfix_queue, layout.postfix_data, os.path.dirname(layout.postfix_log)):
        os.makedirs(directory)
    shutil.chown(layout.postfix_data, "postfix")
    config = tmp_path / "deploy" / "postfix"
    # postfix check writes to syslog unless stderr is a terminal: give it one.
    run = subprocess.run([script, "-qec", f"{postfix} -c {config} check", "/dev/null"],
                         capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "", run.stdout


def test_maps_index_with_postmap(deploy):
    postmap = need_tool("postmap")
    names = MAPS + tuple(p.name for p in (deploy / "postfix").glob("list_*_*"))
    names = [n for n in names if (deploy / "postfix" / n).exists()]  # none with mysql
    for name in names:
        run = subprocess.run([postmap, f"lmdb:{deploy / 'postfix' / name}"], capture_output=True, text=True)
        assert run.returncode == 0 and run.stderr == "", (name, run.stderr)


def test_doveconf_accepts(deploy):
    doveconf = need_tool("doveconf")
    run = subprocess.run([doveconf, "-c", str(deploy / "dovecot" / "dovecot.conf"), "-n"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "Warning" not in run.stderr, run.stderr


@pytest.mark.parametrize("name", VALID)
def test_rspamadm_configtest_accepts(name, tmp_path):
    """rspamadm loads the distribution's configuration with the deploy's over it, and runs
    its Lua (rspamd.local.lua) and reads its maps, and the Redis password file the switch
    makes (under a prefix here, as the deploy names it)."""
    need_root()
    layout = Layout(str(tmp_path / "root"))
    deploy = tmp_path / "deploy"
    write_tree(emit_all(checked(valid_spec(name)).spec, layout), deploy)
    redis_password(layout)
    run = subprocess.run([need_tool("rspamadm"), f"--var=LOCAL_CONFDIR={deploy / 'rspamd'}", "configtest"],
                         capture_output=True, text=True)
    assert run.returncode == 0 and "syntax OK" in run.stdout, run.stdout + run.stderr
    assert "rspamd.local.lua" not in run.stdout + run.stderr, run.stdout + run.stderr


def test_fail2ban_accepts_the_jails(tmp_path):
    """`fail2ban-client -t` on the host's /etc/fail2ban with the deploy's files added,
    as the switch builds it (the jails' log files must exist: the switch makes them)."""
    layout = Layout(str(tmp_path / "root"))
    files = emit_all(checked(valid_spec("filters")).spec, layout)
    for log in (layout.postfix_log, layout.dovecot_log):
        os.makedirs(os.path.dirname(log), exist_ok=True)
        open(log, "w").close()
    confdir = tmp_path / "fail2ban"
    need_tool("fail2ban-client")
    shutil.copytree("/etc/fail2ban", confdir)
    for jail in (confdir / "jail.d").iterdir():  # this machine's sshd jail: it has no log to read here
        jail.unlink()
    write_tree({path[len("fail2ban/"):]: text for path, text in files.items() if path.startswith("fail2ban/")},
               confdir)
    run = subprocess.run(["fail2ban-client", "-c", str(confdir), "-t"], capture_output=True, text=True)
    assert run.returncode == 0 and "OK" in run.stdout + run.stderr, run.stdout + run.stderr


# Lines the real Dovecot 2.3 wrote to its log_path (from the host tier): two failed IMAP
# logins and an ordinary disconnect, which must not count; none for ManageSieve
# (tests/test_fail2ban.py bans a ManageSieve client).
DOVECOT_LOG = """\
Dec 03 18:57:54 imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 2 secs): \
user=<alice@example.com>, method=PLAIN, rip=10.213.0.2, lip=10.213.0.1, TLS, session=<saYjVr9hhM8K1QAC>
Dec 03 18:58:00 imap-login: Info: Disconnected: Connection closed (auth failed, 1 attempts in 6 secs): \
user=<alice@example.com>, method=PLAIN, rip=10.213.0.2, lip=10.213.0.1, TLS: Connection closed, session=<O2RCVr9h>
Dec 03 18:57:51 imap-login: Info: Disconnected: Connection closed: read(size=1026) failed: Connection reset by \
peer (no auth attempts in 0 secs): user=<>, rip=127.0.0.1, lip=127.0.0.1, secured, session=<AtkgVr9h6sd/AAAB>
"""


@pytest.mark.parametrize(("service", "hosts"), [("imap", ["10.213.0.2", "10.213.0.2"]), ("managesieve", [])])
def test_the_dovecot_filter_finds_each_services_failed_logins(service, hosts, tmp_path):
    from mailspec.backends.fail2ban import FILTER

    files = compile_fixture("filters")
    (tmp_path / "filter.conf").write_text(files[f"fail2ban/filter.d/{FILTER}.conf"])
    (tmp_path / "dovecot.log").write_text(DOVECOT_LOG)
    run = subprocess.run([need_tool("fail2ban-regex"), "--print-all-matched", str(tmp_path / "dovecot.log"),
                          f"{tmp_path / 'filter.conf'}[service={service}]"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    matched = run.stdout.split("Matched line(s):")[-1].split("Missed line(s):")[0] if hosts else ""
    assert re.findall(r"rip=([\d.]+)", matched) == hosts, run.stdout
    assert f"Failregex: {len(hosts)} total" in run.stdout, run.stdout


def test_sievec_compiles_every_script(deploy, tmp_path_factory):
    sievec = need_tool("sievec")
    scripts = sorted((deploy / "sieve").rglob("*.sieve")) if (deploy / "sieve").exists() else []
    out = tmp_path_factory.mktemp("svbin")
    for script in scripts:
        run = subprocess.run([sievec, "-c", str(deploy / "dovecot" / "dovecot.conf"), str(script),
                              str(out / "x.svbin")], capture_output=True, text=True)
        assert run.returncode == 0, (script, run.stdout, run.stderr)


def assert_daemons_accept(spec: model.Spec, work, short_dir) -> None:
    """The whole compiled tree is read cleanly by every program that reads it: postconf
    (no warnings), postfix check, postmap on every map, doveconf and sievec."""
    layout = Layout(str(short_dir))
    deploy = work / "deploy"
    write_tree(emit_all(spec, layout), deploy)
    config = deploy / "postfix"
    run = subprocess.run(["postconf", "-c", str(config), "-n"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    for directory in (layout.postfix_queue, layout.postfix_data, os.path.dirname(layout.postfix_log)):
        os.makedirs(directory, exist_ok=True)
    shutil.chown(layout.postfix_data, "postfix")
    run = subprocess.run(["script", "-qec", f"postfix -c {config} check", "/dev/null"],
                         capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "", run.stdout
    maps = sorted(p for p in config.iterdir() if install.is_map_source(p.name))
    if maps:
        run = subprocess.run(["postmap", *(f"lmdb:{p}" for p in maps)], capture_output=True, text=True)
        assert run.returncode == 0 and run.stderr == "", run.stderr
    run = subprocess.run(["doveconf", "-c", str(deploy / "dovecot" / "dovecot.conf"), "-n"],
                         capture_output=True, text=True)
    assert run.returncode == 0 and "Warning" not in run.stderr, run.stderr
    for script in sorted((deploy / "sieve").rglob("*.sieve")) if (deploy / "sieve").exists() else ():
        run = subprocess.run(["sievec", str(script), str(work / "x.svbin")], capture_output=True, text=True)
        assert run.returncode == 0, (script.read_text(), run.stdout, run.stderr)


# ---------------------------------------------------------------- routing vs the model

class Postfix:
    """Virtual alias expansion done the way Postfix does it, on the real lmdb maps."""

    def __init__(self, config, delimiter: str):
        self.config = config
        self.delimiter = delimiter
        self.postmap = need_tool("postmap")
        self.answers: dict[tuple[str, str], str | None] = {}

    def query(self, table: str, key: str) -> str | None:
        if (table, key) not in self.answers:
            self.ask(table, [key])
        return self.answers[(table, key)]

    def ask(self, table: str, keys) -> None:
        """Look keys up in one `postmap -q -` run; it prints `key<TAB>value` for those found."""
        keys = sorted({k for k in keys if (table, k) not in self.answers})
        found = {}
        if any(keys):  # lmdb refuses an empty key; nothing is found under one
            run = subprocess.run([self.postmap, "-q", "-", f"lmdb:{self.config / table}"],
                                 input="".join(k + "\n" for k in keys if k), capture_output=True, text=True)
            assert run.returncode in (0, 1) and run.stderr == "", run.stderr
            found = dict(line.split("\t", 1) for line in run.stdout.splitlines())
        self.answers.update({(table, k): found.get(k) for k in keys})

    def split(self, local: str) -> tuple[str, str | None]:
        """Postfix's split_addr: at the first delimiter, unless nothing comes before it
        (`+tag` is not split; `alice+` is, with an empty extension). The special cases
        for a "-" delimiter never arise: generated specs use "+"."""
        base, found, extension = local.partition(self.delimiter)
        return (base, extension) if found and base else (local, None)

    def keys(self, address: str) -> list[str]:
        """The keys lookup() may ask for, in its order."""
        local, _, domain = address.rpartition("@")
        base, extension = self.split(local)
        return [address] + ([f"{base}@{domain}"] if extension is not None else []) + [f"@{domain}"]

    def warm(self, addresses) -> None:
        """Answer, round by round, every lookup expand() and deliverable() will make, so a
        spec costs a few postmap runs instead of one per key. Only a speed-up: a key it
        misses is still asked for on its own by query()."""
        seen: set[str] = set()
        frontier = set(addresses)
        while frontier:
            seen |= frontier
            keys = {k for a in frontier for k in self.keys(a)}
            for table in ("virtual_aliases", "virtual_mailboxes"):
                self.ask(table, keys)
            for table in ("virtual_domains", "virtual_alias_domains"):
                self.ask(table, {a.rpartition("@")[2] for a in frontier})
            targets = set()
            for address in frontier:
                extension = self.split(address.rpartition("@")[0])[1]
                for key in self.keys(address):
                    found = self.answers[("virtual_aliases", key)]
                    for target in found.split(",") if found else ():
                        local, _, domain = target.rpartition("@")
                        targets.add(target)
                        if extension is not None:
                            targets.add(f"{local}{self.delimiter}{extension}@{domain}")
            frontier = targets - seen

    def lookup(self, table: str, address: str) -> tuple[str | None, str | None]:
        """(result, unmatched extension): full address, then without extension, then @domain."""
        local, _, domain = address.rpartition("@")
        found = self.query(table, address)
        if found is not None:
            return found, None
        base, extension = self.split(local)
        if extension is not None:
            found = self.query(table, f"{base}@{domain}")
            if found is not None:
                return found, extension
        return self.query(table, f"@{domain}"), None

    def access(self, table: str, address: str) -> str | None:
        """An smtpd access(5) lookup: the address, without its extension, then the domain
        and its parent domains (parent_domain_matches_subdomains has smtpd_access_maps)."""
        local, _, domain = address.rpartition("@")
        labels = domain.split(".")
        keys = [address, f"{self.split(local)[0]}@{domain}"]
        keys += [".".join(labels[i:]) for i in range(len(labels))]
        self.ask(table, keys)
        return next((self.answers[(table, k)] for k in keys if self.answers[(table, k)]), None)

    def expand(self, address: str, depth: int = 0) -> set[str]:
        assert depth < 20, f"alias loop at {address}"
        found, extension = self.lookup("virtual_aliases", address)
        if found is None:
            return {address}
        final = set()
        for result in found.split(","):
            if extension is not None:
                local, _, domain = result.rpartition("@")
                result = f"{local}{self.delimiter}{extension}@{domain}"
            if result.lower() == address.lower():
                final.add(result)  # an address that maps to itself is delivered as is
            else:
                final |= self.expand(result, depth + 1)
        return final

    def served(self, domain: str) -> bool:
        return any(self.query(t, domain) for t in ("virtual_domains", "virtual_alias_domains"))

    def deliverable(self, address: str) -> bool:
        domain = address.rpartition("@")[2]
        if not self.served(domain):
            return True
        return self.lookup("virtual_mailboxes", address)[0] is not None


@pytest.mark.parametrize("name", VALID)
def test_postmap_routes_like_the_model(name, tmp_path):
    need_tool("postmap")
    result = checked(valid_spec(name))
    spec = with_backend(result.spec, model.Backend())  # lmdb maps; mysql is compared with them
    write_tree(emit_all(spec), tmp_path)
    config = tmp_path / "postfix"
    for table in MAPS:
        subprocess.run(["postmap", f"lmdb:{config / table}"], check=True)
    assert_routes_like_the_model(spec, config, declared_addresses(spec))


def assert_routes_like_the_model(spec, config, addresses) -> None:
    """Postfix-style expansion over the lmdb maps in `config` gives what resolve() says."""
    postfix = Postfix(config, spec.server.recipient_delimiter)
    postfix.warm(addresses)
    for address in addresses:
        expected = resolve(spec, address)
        refused = postfix.access("recipient_access", address)
        if expected.rejected:
            routed = postfix.expand(address)
            refused_by_postfix = refused is not None or not all(postfix.deliverable(a) for a in routed) \
                or _plus_refused(config, address)
            assert refused_by_postfix, (address, expected.rejected, routed)
            continue
        assert refused is None, (address, refused)
        routed = postfix.expand(address)
        # Postfix keeps the recipient's case and looks it up case-insensitively, and
        # Dovecot lower-cases the user (%Lu): compare local mailboxes as identities, and
        # outside addresses exactly (their extension keeps the case it was written in).
        assert {_identity(spec, r) for r in routed} == {_identity(spec, r) for r in expected.recipients}, address
        assert all(postfix.deliverable(a) for a in routed), (address, routed)


def _identity(spec, recipient: str) -> str:
    served = {d.name for d in spec.domains} | {a.name for d in spec.domains for a in d.also}
    return recipient.lower() if recipient.rpartition("@")[2].lower() in served else recipient


def _plus_refused(config, address: str) -> bool:
    run = subprocess.run(["postmap", "-q", address, f"regexp:{config / 'plus_disabled'}"],
                         capture_output=True, text=True)
    return run.returncode == 0 and run.stdout.startswith("REJECT")


@pytest.mark.parametrize(("spam_score", "status", "filed"), [
    (None, "Yes, score=7.10", True),   # rspamd's verdict
    (None, "No, score=4.00", False),
    (None, "yes, score=7.10", True),   # header values compare without case
    (5, "No, score=5.00", True),       # with spam_score, the score decides
    (5, "Yes, score=4.99", False),
    (5, "No, score=12.50", True),
    (5, "No, score=-3.20", False),     # a negative score is not "infinity" to ascii-numeric
    (5, "No, score=-30.00", False),
    (None, None, False),               # no header (mail rspamd did not see)
])
def test_the_spam_folder_rule_reads_rspamds_header(tmp_path, spam_score, status, filed):
    """The server-wide rule in the real Pigeonhole, on the header as rspamd writes it."""
    sieve_test = need_tool("sieve-test")
    tmp_path.chmod(0o777)  # sieve-test runs as nobody
    for parent in tmp_path.parents:
        if str(parent).startswith("/tmp/") and parent.stat().st_uid == 0:
            parent.chmod(parent.stat().st_mode | 0o005)
    script = tmp_path / "before.sieve"
    script.write_text(spam_script(model.Filters(spam_folder="Junk", spam_score=spam_score)))
    header = f"X-Spam-Status: {status}\r\n" if status else ""
    mail = tmp_path / "m.eml"
    mail.write_bytes(f"{header}From: x@elsewhere.example\r\nTo: a@example.com\r\nSubject: s\r\n\r\nHi.\r\n".encode())
    mail.chmod(0o644)
    run = subprocess.run([sieve_test, "-o", "mail_uid=65534", "-o", "mail_gid=65534", str(script), str(mail)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert ("store message in folder: Junk" in run.stdout) is filed, run.stdout
