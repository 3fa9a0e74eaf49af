"""Build one generation from a deploy tree, and validate it: the one install procedure.

A generation holds the deploy tree as compiled (`deploy/`) and the live configuration
built from it (`etc/postfix`, `etc/dovecot`): the files at the modes and owners the
daemons need, the lmdb maps, the compiled Sieve, the mysql tables with their password.
Files in the current generation's etc/ that mailspec did not write (those the Debian
packages ship and upgrade: dynamicmaps.cf, postfix-files, conf.d/) are carried over.
Key material is never copied: the configuration names it by path.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import subprocess
import time

from mailspec import install
from mailspec.layout import Layout
from mailspec.switch import units
from mailspec.switch.database import ROWS
from mailspec.switch.request import Request
from mailspec.switch.store import SwitchError

REQUEST = "request.json"  # the generation's Request, beside its deploy/
LIVE = units.NAMES  # the live directories, links into a generation
live_dirs = units.live_dirs


def in_generation(generation: str, layout: Layout, live_path: str) -> str:
    """Where `live_path` (a path the daemons read) is in a generation's etc/."""
    for name, directory in live_dirs(layout).items():
        if live_path == directory or live_path.startswith(directory + "/"):
            return os.path.join(generation, "etc", name) + live_path[len(directory):]
    raise AssertionError(f"{live_path} is outside the directories a generation holds")


def run(*command: str, what: str, keep: tuple[int, ...] = (), session: bool = False) -> str:
    """Run a command; SwitchError with its output if it fails. Output goes to a file:
    a daemon it starts keeps the descriptors, and a pipe would never reach EOF. `keep`:
    descriptors it inherits (the switch lock)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as output:
        code = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                              pass_fds=keep, start_new_session=session).returncode
        output.seek(0)
        text = output.read()
    if code != 0:
        raise SwitchError(f"{what} failed: `{' '.join(command)}` said:\n{text.rstrip()}")
    return text


def copy_tree(source: str, target: str) -> None:
    """A copy that keeps modes, owners, links and times (cp -a)."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    run("cp", "-a", "--", source, target, what=f"copying {source}")


def manifest_digest(deploy: str) -> str:
    with open(os.path.join(deploy, "MANIFEST"), "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def build(generation: str, request: Request, deploy: str, carried_from: str | None,
          carried_skip: tuple[str, ...]) -> list[str]:
    """Fill the empty directory `generation`; the files written under etc/ (relative to
    it), for meta.json. SwitchError if a step or the validation fails."""
    layout = request.layout
    etc = os.path.join(generation, "etc")
    os.makedirs(etc)
    if carried_from is not None:
        _carry_over(os.path.join(carried_from, "etc"), etc, set(carried_skip))
    for name in LIVE:
        os.makedirs(os.path.join(etc, name), exist_ok=True)
    copy_tree(deploy, os.path.join(generation, "deploy"))
    with open(os.path.join(generation, REQUEST), "w", encoding="utf-8") as handle:
        handle.write(request.to_json())
    rows = os.path.join(os.path.dirname(deploy), ROWS)
    if os.path.exists(rows):  # the mysql backend's (database.py)
        shutil.copy2(rows, os.path.join(generation, ROWS))
    written = []
    for name, _ in install.installed_dirs(layout):
        source = os.path.join(deploy, name)
        for folder, _, files in os.walk(source):
            for file in files:
                relative = os.path.relpath(os.path.join(folder, file), deploy)
                target = in_generation(generation, layout, install.installed_path(layout, relative))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(os.path.join(folder, file), target)
                written.append(os.path.relpath(target, etc))
    for path, (owner, group, mode) in install.private_owners(request.vmail_user).items():
        if os.path.exists(os.path.join(deploy, path)):
            target = in_generation(generation, layout, install.installed_path(layout, path))
            shutil.chown(target, owner, group)
            os.chmod(target, mode)
            _newer(target, carried_from and os.path.join(carried_from, os.path.relpath(target, generation)))
    written += _build_maps(os.path.join(etc, "postfix"), sorted(os.listdir(os.path.join(deploy, "postfix"))),
                           request.mysql_option_file)
    written += _compile_sieve(os.path.join(etc, "dovecot"))
    validate(etc, layout)
    return sorted(set(written))


def _newer(path: str, previous: str | None) -> None:
    """A modification time later than the previous generation's file: Dovecot rereads
    its passwd-file when the time (or the size) differs, never otherwise."""
    stamp = time.time()
    try:
        stamp = max(stamp, os.stat(previous).st_mtime + 1) if previous else stamp
    except OSError:
        pass
    os.utime(path, (stamp, stamp))


def _carry_over(source: str, target: str, skip: set[str]) -> None:
    for name in LIVE:
        top = os.path.join(source, name)
        for folder, directories, files in os.walk(top):
            for entry in files + [d for d in directories if os.path.islink(os.path.join(folder, d))]:
                relative = os.path.relpath(os.path.join(folder, entry), source)
                if relative in skip:
                    continue
                destination = os.path.join(target, relative)
                os.makedirs(os.path.dirname(destination), exist_ok=True)
                path = os.path.join(folder, entry)
                # A link out of Postfix's directory (Debian's makedefs.out) becomes the file it
                # names: `postfix check` warns about such links except at /etc/postfix itself.
                leaves = name == "postfix" and os.path.islink(path) and "/" in os.readlink(path) and \
                    os.path.isfile(path)
                run("cp", *(["-L", "--preserve=mode,timestamps"] if leaves else ["-a"]), "--", path, destination,
                    what="carrying a file over")


def _build_maps(postfix: str, names: list[str], option_file: str | None) -> list[str]:
    """postmap the deploy's lookup tables (`names`, one call), and the password from the
    mysql option file into each mysql table."""
    written = []
    if option_file is not None:
        password = install.mysql_password(option_file)
        for name in names:
            if name.startswith("mysql-"):
                path = os.path.join(postfix, name)
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(install.postfix_mysql_table(text, password))
                os.chmod(path, 0o640)
                shutil.chown(path, "root", "postfix")
    maps = [n for n in names if install.is_map_source(n)]
    if maps:
        run("postmap", *(f"lmdb:{os.path.join(postfix, n)}" for n in maps), what="building the lookup tables")
        written += [f"postfix/{n}.lmdb" for n in maps]
    # Postfix takes a table younger than a second for one still being written: these are final.
    old = time.time() - 5
    for name in os.listdir(postfix):
        os.utime(os.path.join(postfix, name), (old, old), follow_symlinks=False)
    return written


def _compile_sieve(dovecot: str) -> list[str]:
    """sievec once per directory (it compiles every script in one); the binaries beside
    the scripts, so delivery never needs to write there."""
    sieve = os.path.join(dovecot, "sieve")
    folders = sorted({folder for folder, _, files in os.walk(sieve) if any(f.endswith(".sieve") for f in files)})
    written = []
    for folder in folders:
        # With the generation's settings: the learning scripts need its Sieve plugins.
        run("sievec", "-c", os.path.join(dovecot, "dovecot.conf"), folder, what="compiling the Sieve scripts")
        written += [os.path.relpath(os.path.join(folder, f), os.path.dirname(dovecot))
                    for f in os.listdir(folder) if f.endswith(".svbin")]
    return written


def validate(etc: str, layout: Layout) -> None:
    """What the daemons themselves say about the configuration, before it is used:
    `postfix check`, `postconf -n` (a warning counts as an error), `doveconf -n` and
    `rspamadm configtest`, `nginx -t` and `fail2ban-client -t`."""
    postfix = os.path.join(etc, "postfix")
    run("postfix", "-c", postfix, "check", what="`postfix check`")
    done = subprocess.run(["postconf", "-c", postfix, "-n"], capture_output=True, text=True)
    if done.returncode != 0 or done.stderr.strip():
        raise SwitchError(f"`postconf -n` found problems in the new configuration:\n{done.stderr.rstrip()}")
    run("doveconf", "-c", os.path.join(etc, "dovecot", "dovecot.conf"), "-n", what="`doveconf -n`")
    os.makedirs(layout.rspamd_db, exist_ok=True)
    run("rspamadm", *layout.rspamd_variables(os.path.join(etc, "rspamd")), "configtest",
        what="`rspamadm configtest`")
    from mailspec.switch import nginx  # it runs build's commands

    nginx.validate(etc)
    fail2ban = os.path.join(etc, "fail2ban")
    if units.BY_NAME["fail2ban"].runs_in(fail2ban):
        run("fail2ban-client", "-c", fail2ban, "-t", what="`fail2ban-client -t`")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
