"""switch, rollback and gc, in order (docs/switch.md).

switch: compile -> plan -> lock -> prepare the host (once: generation 0) -> build and
validate the new generation -> flip `current` -> reload or restart what changed ->
health check -> on failure, flip back, reload, and say why.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable

import attrs

from mailspec.backends.sql.rows import COLUMNS
from mailspec.layout import Layout
from mailspec.paths import write_with_mode
from mailspec.switch import acme, build, database, packages, units
from mailspec.switch.daemons import NOTICED, Daemons, changes
from mailspec.switch.request import Request
from mailspec.switch.store import Generation, Store, SwitchError

Echo = Callable[[str], None]
ORIGINAL = ".mailspec-original"  # a live directory being replaced by its link (see `prepare`)
RSPAMD_USER = "_rspamd"
REDIS_USER = "redis"
CLAMAV_USER = "clamav"
RELAY_PASSWORD_HELP = "write the password the relay gave you into it, alone on one line, mode 0600 root"
# systemd runs postsrsd with the generation's settings: Debian's unit runs a launcher
# that reads /etc/default/postsrsd instead.
POSTSRSD_DROP_IN = "/etc/systemd/system/postsrsd.service.d/mailspec.conf"
POSTSRSD_SERVICE = """# Written by mailspec switch: postsrsd reads the current generation's settings.
[Service]
EnvironmentFile={env}
ExecStart=
ExecStart=/usr/sbin/postsrsd -e
"""
# mailspec's Redis: an instance of Debian's template with the generation's settings.
# A generation without them (generation 0) does not start it, at boot either.
REDIS_UNIT = "redis-server@mailspec"
REDIS_PASSWORD = re.compile(r"requirepass ([0-9a-f]{64})\n")  # as redis_password writes it
REDIS_DROP_IN = f"/etc/systemd/system/{REDIS_UNIT}.service.d/mailspec.conf"
REDIS_SERVICE = """# Written by mailspec switch: Redis reads the current generation's settings.
[Unit]
ConditionPathExists={conf}
[Service]
ExecStart=
ExecStart=/usr/bin/redis-server {conf} --supervised systemd --daemonize no
"""

# mailspec's clamd, when the current generation has one (`antivirus`).
CLAMD_UNIT = "/etc/systemd/system/mailspec-clamd.service"
CLAMD_SERVICE = """# Written by mailspec switch: ClamAV for rspamd, with the current generation's settings.
[Unit]
Description=ClamAV for mailspec
ConditionPathExists={conf}
After=network.target
[Service]
ExecStart=/usr/sbin/clamd --foreground=true --config-file={conf}
ExecReload=/bin/kill -USR2 $MAINPID
TimeoutStartSec=420
[Install]
WantedBy=multi-user.target
"""


@attrs.frozen
class Plan:
    previous: int | None
    files: dict[str, tuple[list[str], list[str], list[str]]]  # daemon dir -> (added, changed, removed)
    needs: dict[str, str]  # daemon -> restart / reload (daemons.changes)
    mailboxes_gone: list[str]  # no longer in the spec: their Maildirs stay
    installs: list[str]  # packages the host lacks

    def lines(self) -> list[str]:
        found = [f"  install {' '.join(self.installs)}"] if self.installs else []
        for name, (added, changed, removed) in sorted(self.files.items()):
            if added or changed or removed:
                found.append(f"  {name}: {len(added)} added, {len(changed)} changed, {len(removed)} removed")
                found += [f"    + {p}" for p in added] + [f"    ~ {p}" for p in changed] + \
                    [f"    - {p}" for p in removed]
        if not found:
            found.append("  no file changes")
        found += [f"  {daemon}: {action}" for daemon, action in sorted(self.needs.items())]
        found += [f"  {address}: no longer in the spec; its Maildir stays on disk" for address in self.mailboxes_gone]
        return found


def read_manifest(deploy: str) -> dict[str, str]:
    """{path: sha256} of a deploy's MANIFEST; empty for none (generation 0)."""
    try:
        with open(os.path.join(deploy, "MANIFEST"), encoding="utf-8") as handle:
            lines = [line.split() for line in handle if not line.startswith("#")]
    except FileNotFoundError:
        return {}
    return {parts[2]: parts[0] for parts in lines if len(parts) == 3}


def mailboxes(deploy: str, table: str = "virtual_mailboxes") -> set[str]:
    """The keys of one of a deploy's Postfix tables (its mailboxes by default)."""
    try:
        with open(os.path.join(deploy, "postfix", table), encoding="utf-8") as handle:
            return {line.split()[0] for line in handle if line.strip() and not line.startswith("#")}
    except FileNotFoundError:
        return set()


def plan(store: Store, request: Request, deploy: str) -> Plan:
    previous = store.current()
    old_deploy = os.path.join(store.path(previous), "deploy") if previous is not None else ""
    old, new = read_manifest(old_deploy), read_manifest(deploy)
    files = {}
    for path in old.keys() | new.keys():
        if path == "MANIFEST" or old.get(path) == new.get(path):
            continue
        kind = 0 if path not in old else 2 if path not in new else 1
        files.setdefault(path.split("/")[0], ([], [], []))[kind].append(path)
    files = {name: tuple(sorted(group) for group in groups) for name, groups in files.items()}
    return Plan(previous, files, _needs(store, previous, deploy, outside_digests(request)),
                sorted(mailboxes(old_deploy) - mailboxes(deploy)), packages.missing(request.packages))


def switch(store: Store, request: Request, deploy: str, echo: Echo) -> int:
    """Make the compiled `deploy` the current generation; its number. SwitchError if it
    cannot; the server then stays on the generation it had."""
    certbot = acme.settings(deploy)
    if certbot is not None and acme.stand_in(request.tls_cert, request.tls_key):
        echo(f"made a self-signed stand-in at {request.tls_cert} until the ACME CA issues the certificate")
    _key_material(request)
    with store.lock():
        keys = _digests(request.tls_cert, request.tls_key)
        prepare(store, request, echo)
        if _digests(request.tls_cert, request.tls_key) != keys:
            raise SwitchError(
                f"installing the packages replaced the TLS certificate and key at {request.tls_cert} and "
                f"{request.tls_key} (Debian's ssl-cert makes a new snakeoil pair unless it finds an RSA one "
                "signed with SHA-256)", "put yours back and switch again, or name paths of your own in the spec")
        previous = store.current()
        old = store.read(previous) if previous is not None else None
        number, directory = store.new_directory()
        echo(f"building generation {number}")
        try:
            installed = build.build(directory, request, deploy, old.path if old else None,
                                    old.installed if old else ())
            store.complete(number, request.spec, build.manifest_digest(deploy), installed, build.now())
        except (SwitchError, OSError) as error:
            shutil.rmtree(directory, ignore_errors=True)
            if isinstance(error, SwitchError):
                raise
            raise SwitchError(f"cannot build generation {number}: {error}",
                              "free space or fix the permissions under /var/lib/mailspec, then switch again") from None
        _activate(store, number, previous, _needs(store, previous, deploy, outside_digests(request)), echo,
                  outside_digests(request))
        if certbot is not None:
            _certificate(store, number, request, echo)
        return number


def _certificate(store: Store, number: int, request: Request, echo: Echo) -> None:
    """certbot, now that generation `number` serves its challenges; its hook reloads the
    daemons with the new certificate."""
    try:
        changed = acme.obtain(os.path.join(store.path(number), "deploy"), request.layout, request.tls_cert)
    except SwitchError as error:
        raise SwitchError(f"generation {number} is current, but {error.message}", error.help) from None
    if changed:
        echo("the certificate from the ACME CA is installed, and the daemons have read it")
    store.set_loaded(outside_digests(request))


def rollback(store: Store, number: int | None, echo: Echo) -> int:
    """Go back to generation `number` (default: the one before the current)."""
    with store.lock():
        current = store.current()
        listed = [g.number for g in store.generations() if g.status == "ok"]
        if number is None:
            earlier = [n for n in listed if current is None or n < current]
            if not earlier:
                raise SwitchError("there is no earlier generation to go back to", "see `mailspec generations`")
            number = earlier[-1]
        target = store.read(number)
        if target is None:
            raise SwitchError(f"there is no generation {number}", "see `mailspec generations`")
        if number == current and not store.interrupted():
            echo(f"generation {number} is current already")
            return number
        loads = outside_digests(_request_of(store, number))
        _activate(store, number, current, _needs(store, current, os.path.join(target.path, "deploy"), loads), echo,
                  loads)
        return number


def _needs(store: Store, current: int | None, deploy: str, outside: dict[str, str]) -> dict[str, str]:
    """What going from generation `current` to `deploy` needs; every daemon restarts when
    either side is not mailspec's (generation 0: the distribution's configuration), and
    each reloads at least when a file outside the generations (a renewed certificate, a
    new database password) is not what they loaded (`outside`: its digests now)."""
    old = read_manifest(os.path.join(store.path(current), "deploy")) if current is not None else {}
    new = read_manifest(deploy)
    if store.interrupted():  # a switch killed midway: the daemons may run either side
        return dict.fromkeys(units.NAMES, "restart")
    if not (old and new):
        return dict.fromkeys(units.NAMES, "restart")
    needs = changes(old, new)
    before = os.path.join(store.path(current), "deploy")
    if needs.get("postfix") == "restart" and _settings(before) == \
            _settings(deploy):  # master.cf's comments changed (its header names the spec file)
        needs["postfix"] = "reload"
    changed = {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}
    for daemon in list(needs):
        mine = [p for p in changed if p.startswith(daemon + "/") and p not in NOTICED]
        # Only comments changed (every header names the spec file): nothing to reload.
        # A Dovecot reload ends the LMTP sessions in progress, and a message came twice.
        if mine and all(_same_settings(before, deploy, p) for p in mine):
            del needs[daemon]
    if store.loaded() not in (None, outside):
        needs = {unit.name: needs.get(unit.name, unit.reload) for unit in units.UNITS}
    return needs


def _settings(deploy: str) -> list[str]:
    """master.cf without its comments: what a restart would be for."""
    return _without_comments(os.path.join(deploy, "postfix", "master.cf"))


def _without_comments(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line for line in handle if not line.lstrip().startswith("#")]


NOT_HASH_COMMENTED = (".lua", ".xml", ".txt")  # formats whose comments are not `#` lines


def _same_settings(before: str, deploy: str, path: str) -> bool:
    """Whether a file differs between two deploys in its `#` comments only."""
    if path.endswith(NOT_HASH_COMMENTED):
        return False
    try:
        return _without_comments(os.path.join(before, path)) == _without_comments(os.path.join(deploy, path))
    except (OSError, UnicodeDecodeError):
        return False


def outside_digests(request: Request | None) -> dict[str, str]:
    """{path: sha256} of what a generation reads from outside itself ("" for a missing file)."""
    if request is None:
        return {}
    found = {}
    for path in (request.tls_cert, request.tls_key, request.mysql_option_file, *request.dkim_keys,
                 request.srs_secret, request.relay_password_file):
        if path is not None:
            try:
                found[path] = _digests(path)[0]
            except OSError:
                found[path] = ""
    return found


def _request_of(store: Store, number: int) -> Request | None:
    try:
        with open(os.path.join(store.path(number), build.REQUEST), encoding="utf-8") as handle:
            return Request.from_json(handle.read())
    except FileNotFoundError:  # generation 0
        return None


def probe_address(deploy: str) -> str | None:
    """A mailbox to probe in the health check: the first that the spec lets receive
    (a `reject_recipient` may name it, its domain or a parent domain: access(5))."""
    tables = database.read(os.path.dirname(deploy))
    if tables is None:
        boxes, refused = mailboxes(deploy), mailboxes(deploy, "recipient_access")
    else:  # the mysql backend: the same tables, as rows
        send_only = COLUMNS["virtual_users"].index("send_only")
        boxes = {row[0] for row in tables["virtual_users"] if not row[send_only]}
        refused = {row[0] for row in tables["recipient_rules"]}

    def receives(address: str) -> bool:
        local, _, domain = address.partition("@")
        parents = {".".join(domain.split(".")[i:]) for i in range(domain.count(".") + 1)}
        return not ({address, f"{local}@"} | parents) & refused

    return min(filter(receives, boxes), default=None)


def _activate(store: Store, number: int, previous: int | None, needs: dict[str, str], echo: Echo,
              loads: dict[str, str]) -> None:
    """Flip to `number`, reload what changed, check health; back to `previous` if it fails.
    `loads`: the digests of the files outside the generation that the daemons then read."""
    store.activating(number)
    try:
        database.sync(store.path(number), "before", echo)
    except SwitchError:
        store.activating(None)
        raise
    try:
        _move_daemons(store, number, previous, needs, echo)
    except SwitchError:  # back on `previous`, restarted: its rows too
        if previous is not None:
            database.sync(store.path(previous), "all", echo)
        store.activating(None)
        raise
    database.sync(store.path(number), "after", echo)
    store.set_loaded(loads)
    store.activating(None)


def _move_daemons(store: Store, number: int, previous: int | None, needs: dict[str, str], echo: Echo) -> None:
    daemons = Daemons(store.layout, store.held)
    store.flip(number)
    echo(f"generation {number} is current" + (f" (was {previous})" if previous is not None else ""))
    off = _stopped(store, number)
    if off:  # generation 0 of a host that had no mail service
        daemons.apply({daemon: "stop" if daemon in off else "restart" for daemon in units.NAMES})  # optional ones stop
        echo(f"it runs no {' and no '.join(sorted(off))}: stopped")
        return
    try:
        daemons.apply(needs)
        problems = daemons.health(probe_address(os.path.join(store.path(number), "deploy")))
        if not problems and {"reload", "restart"} & set(needs.values()):
            daemons.flush_queue()
    except SwitchError as error:
        problems = [error.message]
    if not problems:
        return
    logs = daemons.log_tail()
    if previous is not None:
        store.mark_failed(number)
        store.flip(previous)
        # Back the way they came: each daemon the failed generation touched reloads or
        # restarts again (one it left stopped is started); the others never loaded it.
        # Restarting them all made Postfix answer 451 to every message while rspamd
        # loaded its rules, and refuse connections while it restarted (the fresh VM).
        off = _stopped(store, previous)
        back = {daemon: "stop" if daemon in off else needs[daemon] for daemon in units.NAMES
                if daemon in off or daemon in needs}
        try:
            daemons.apply(back)
            if "postfix" not in _stopped(store, previous):
                daemons.flush_queue()  # what the failed generation deferred goes out now
        except SwitchError as error:
            problems.append(f"and going back failed too: {error.message}")
    raise SwitchError(
        f"generation {number} failed its health check, so generation {previous} is current again:\n"
        + "\n".join(f"  - {p}" for p in problems) + (f"\n{logs}" if logs else ""),
        "fix the spec and switch again; `mailspec generations` lists the failed one")


def _stopped(store: Store, number: int) -> set[str]:
    """The daemons that do not run in a generation: in generation 0 of a fresh host, those
    with no configuration, or that mailspec installed."""
    generation = store.read(number)
    return {unit.name for unit in units.UNITS if unit.config is not None and not unit.optional and
            not os.path.exists(os.path.join(store.path(number), "etc", unit.name, unit.config))} | \
        set(generation.stopped if generation else ())


def _digests(*paths: str) -> list[str]:
    import hashlib

    found = []
    for path in paths:
        with open(path, "rb") as handle:
            found.append(hashlib.sha256(handle.read()).hexdigest())
    return found


def _key_material(request: Request) -> None:
    """The certificate and key the spec names must be there: a switch never makes them."""
    for what, path in (("certificate", request.tls_cert), ("key", request.tls_key)):
        if not os.path.isfile(path):
            raise SwitchError(f"the TLS {what} the spec names, {path}, does not exist",
                              "put it there (`mailspec certs` makes a test one; an ACME client a real one)")
    for path in request.dkim_keys:
        _secret(path, "the DKIM key", f"make it with `mailspec keys SPEC --out DIR` and install DIR at "
                                      f"{os.path.dirname(os.path.dirname(path))}")
    if request.srs_secret is not None:
        _secret(request.srs_secret, "the SRS secret", "make it with `mailspec keys SPEC --out DIR` (with the "
                                                      "DKIM keys), or copy the one the domain's other MX hosts use")
    if request.relay_password_file is not None:
        _secret(request.relay_password_file, "the relay host's password file", RELAY_PASSWORD_HELP)


def _secret(path: str, what: str, missing: str) -> None:
    """A file of key material: there, and readable by its owner only."""
    try:
        found = os.stat(path)
    except OSError:
        raise SwitchError(f"{what} {path} does not exist", missing) from None
    if found.st_mode & 0o077:
        raise SwitchError(f"{what} {path} can be read by others than its owner",
                          f"chmod 0600 {path}, and replace it if others had it")


def _relay_passwords(request: Request) -> None:
    """Postfix's password table for the relay host, from the password file, 0600 root
    (the SMTP client reads it before it drops its privileges). Outside the generations:
    no copy of the password is kept in them."""
    path = request.layout.relay_passwords
    if request.relay_password_file is None:
        if os.path.exists(path):
            os.unlink(path)
        return
    _secret(request.relay_password_file, "the relay host's password file", RELAY_PASSWORD_HELP)
    try:
        with open(request.relay_password_file, "rb") as handle:
            password = handle.read().rstrip(b"\r\n")
    except OSError as error:
        raise SwitchError(f"the relay host's password file {request.relay_password_file} cannot be read: "
                          f"{error.strerror}", RELAY_PASSWORD_HELP) from None
    if not password or b"\n" in password:
        raise SwitchError(f"the relay host's password file {request.relay_password_file} does not hold one "
                          "password on one line", RELAY_PASSWORD_HELP)
    _replace_if_changed(path, f"{request.relay_host} {request.relay_login}:".encode() + password + b"\n", 0o600)


def _keys_for_rspamd(request: Request) -> None:
    """rspamd's workers sign as _rspamd, which exists once its package is installed."""
    rspamd = pwd.getpwnam(RSPAMD_USER).pw_uid
    for path in {*request.dkim_keys, *(os.path.dirname(p) for p in request.dkim_keys)}:
        if os.stat(path).st_uid != rspamd:
            shutil.chown(path, RSPAMD_USER)


def prepare(store: Store, request: Request, echo: Echo) -> None:
    """Once per host: the distribution's /etc/postfix and /etc/dovecot kept as
    generation 0 and replaced by links through `current`. Every time: the vmail account,
    the mail root and the daemons' own directories. Each step may be repeated: a kill
    midway is finished by the next run."""
    layout = store.layout
    absent = packages.missing(request.packages)
    if absent:
        packages.install(absent, echo)
    if store.read(0) is None:
        number, directory = store.new_directory()
        assert number == 0, number
        for name, live in build.live_dirs(layout).items():
            original = live if os.path.isdir(live) and not os.path.islink(live) else live + ORIGINAL
            if os.path.isdir(original):
                build.copy_tree(original, os.path.join(directory, "etc", name))
        # A daemon mailspec has just installed did not run before: rollback 0 stops it.
        stopped = [unit.name for unit in units.UNITS if unit.package in absent]
        store.complete(0, "(the configuration before mailspec)", "", [], build.now(), stopped)
        echo(f"kept the configuration the host had as generation 0 ({store.path(0)})")
    if store.current() is None:
        store.flip(0)
    for name, live in build.live_dirs(layout).items():
        if os.path.islink(live) and os.readlink(live) == store.live_etc(name):
            continue
        if os.path.isdir(live) and not os.path.islink(live):
            os.replace(live, live + ORIGINAL)
        os.makedirs(os.path.dirname(live), exist_ok=True)
        link = live + ".mailspec-new"
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(store.live_etc(name), link)
        os.replace(link, live)
        shutil.rmtree(live + ORIGINAL, ignore_errors=True)
    _accounts_and_directories(request)
    _keys_for_rspamd(request)
    _postsrsd(request)
    redis_password(request.layout)
    _own_units(request, absent)
    _relay_passwords(request)


def _postsrsd(request: Request) -> None:
    """The SRS secret where Debian's AppArmor profile lets postsrsd read it, 0600 root
    (it reads it before it drops to its own user), and how systemd is to run it."""
    layout = request.layout
    os.makedirs(layout.postsrsd_chroot, exist_ok=True)
    if request.srs_secret is not None:
        with open(request.srs_secret, "rb") as handle:
            secret = handle.read()
        _replace_if_changed(layout.srs_secret, secret, 0o600)
    if not layout.prefix and _replace_if_changed(
            POSTSRSD_DROP_IN, POSTSRSD_SERVICE.format(env=f"{layout.postsrsd_dir}/postsrsd.env").encode(), 0o644):
        build.run("systemctl", "daemon-reload", what="reloading systemd's units")


def stored_redis_password(layout: Layout) -> str | None:
    """The password `redis_password` made on this host; None if there is none (or the
    file is not one it wrote)."""
    try:
        with open(layout.redis_password) as handle:
            found = REDIS_PASSWORD.fullmatch(handle.read())
    except OSError:
        return None
    return found.group(1) if found else None


def redis_password(layout: Layout) -> None:
    """mailspec's Redis asks for a password (on loopback, any local user could reach it
    and poison bayes, the greylist or the rate buckets). It is made once on this host and
    kept: only Redis and rspamd need it, each in a file only it (and root) can read."""
    password = stored_redis_password(layout) or secrets.token_hex(32)
    for path, text, group in ((layout.redis_password, f"requirepass {password}\n", REDIS_USER),
                              (layout.rspamd_redis_password, f'password = "{password}";\n', RSPAMD_USER)):
        _replace_if_changed(path, text.encode(), 0o640)
        shutil.chown(path, "root", group)


def _own_units(request: Request, absent: list[str]) -> None:
    """The directories of mailspec's Redis and clamd, and how systemd is to run them.
    Debian's own Redis instance, which the package starts, is stopped when mailspec
    installed the package: it is no one's."""
    layout = request.layout
    for directory in (layout.redis_db, os.path.dirname(layout.redis_log), os.path.dirname(layout.redis_pid)):
        os.makedirs(directory, exist_ok=True)
        shutil.chown(directory, REDIS_USER, REDIS_USER)
    if "clamav-daemon" in request.packages:
        for directory in (layout.clamav_db, os.path.dirname(layout.clamd_log), os.path.dirname(layout.clamd_pid)):
            os.makedirs(directory, exist_ok=True)
            shutil.chown(directory, CLAMAV_USER, CLAMAV_USER)
    if layout.prefix:
        return
    written = [_replace_if_changed(REDIS_DROP_IN, REDIS_SERVICE.format(conf=f"{layout.redis_dir}/redis.conf")
                                   .encode(), 0o644),
               _replace_if_changed(CLAMD_UNIT, CLAMD_SERVICE.format(conf=f"{layout.clamav_dir}/clamd.conf").encode(),
                                   0o644)]
    if any(written):
        build.run("systemctl", "daemon-reload", what="reloading systemd's units")
    build.run("systemctl", "enable", REDIS_UNIT, "mailspec-clamd", what="enabling mailspec's Redis and clamd")
    if "redis-server" in absent:
        build.run("systemctl", "disable", "--now", "redis-server", what="stopping Debian's own Redis")


def _replace_if_changed(path: str, data: bytes, mode: int) -> bool:
    """Write `path` with `mode` from its first byte, atomically; whether it changed."""
    try:
        with open(path, "rb") as handle:
            if handle.read() == data and os.stat(path).st_mode & 0o777 == mode:
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_with_mode(path, data, mode)
    return True


def _accounts_and_directories(request: Request) -> None:
    layout = request.layout
    try:
        grp.getgrgid(request.vmail_gid)
    except KeyError:
        build.run("groupadd", "--system", "--gid", str(request.vmail_gid), request.vmail_user,
                  what="making the vmail group")
    try:
        pwd.getpwnam(request.vmail_user)
    except KeyError:
        build.run("useradd", "--system", "--uid", str(request.vmail_uid), "--gid", str(request.vmail_gid),
                  "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", request.vmail_user,
                  what="making the vmail user")
    if not os.path.isdir(request.mail_root):
        os.makedirs(request.mail_root)
        os.chown(request.mail_root, request.vmail_uid, request.vmail_gid)
    for log in (layout.postfix_log, layout.dovecot_log):  # fail2ban's jails want them there from the start
        os.makedirs(os.path.dirname(log), exist_ok=True)
        if not os.path.exists(log):
            write_with_mode(log, b"", 0o600)
    if layout.prefix:  # a relocated server brings its own queue, state and logs
        os.chmod(layout.prefix, 0o755)  # the daemons' own users must reach their directories
        for directory in (layout.postfix_queue, layout.postfix_data, os.path.dirname(layout.postfix_log),
                          layout.dovecot_base, layout.dovecot_state):
            os.makedirs(directory, exist_ok=True)
        shutil.chown(layout.postfix_data, "postfix")
        for directory in (layout.rspamd_run, layout.rspamd_db, layout.rspamd_log):
            os.makedirs(directory, exist_ok=True)
            shutil.chown(directory, RSPAMD_USER, RSPAMD_USER)
    # Debian's copies of /etc files for chrooted Postfix services: mailspec's master.cf
    # chroots none, and `postfix check` warns at every start about a copy gone stale
    # (the TLS certificate, once it is replaced). Debian's start script makes anew
    # the ones it wants.
    shutil.rmtree(os.path.join(layout.postfix_queue, "etc"), ignore_errors=True)
    if not os.path.exists(layout.aliases):
        with open(layout.aliases, "w", encoding="utf-8") as handle:
            handle.write("postmaster: root\n")
    build.run("postalias", f"lmdb:{layout.aliases}", what="building the aliases table")


def gc(store: Store, keep: int, echo: Echo) -> list[int]:
    """Remove all but the `keep` newest generations; never the current one, the one
    before it, or generation 0 (the host as it was)."""
    with store.lock():
        found = store.generations()
        current = store.current()
        earlier = [g.number for g in found if current is not None and g.number < current and g.status == "ok"]
        protected = {current, 0, *(earlier[-1:])} | {g.number for g in found[-max(keep, 1):]}
        removed = [g.number for g in found if g.number not in protected]
        for number in removed:
            store.remove(number)
            echo(f"removed generation {number}")
        return removed


def compile_to(lowered, layout: Layout):
    """A lowered spec checked and written into a fresh temporary bundle: (result, its
    directory), which holds deploy/ and, if the spec is valid, request.json."""
    from mailspec.pipeline import check_and_write
    from mailspec.switch.request import write_bundle

    bundle = tempfile.mkdtemp(prefix="mailspec-switch-")
    result = check_and_write(lowered, os.path.join(bundle, "deploy"), layout)
    if result.ok:
        write_bundle(bundle, result.spec, layout)
    return result, bundle


def describe(generation: Generation, current: int | None) -> str:
    mark = "*" if generation.number == current else " "
    status = "" if generation.status == "ok" else f"  ({generation.status})"
    manifest = generation.manifest[:12] or "-"
    return f"{mark} {generation.number:>4}  {generation.date}  {manifest:<12}  {generation.spec}{status}"
