"""Installing a deploy tree on a host: the steps that need secrets or the host itself,
which the compiler must never do (the deploy directory holds no secret)."""

from __future__ import annotations

import configparser

from mailspec.backends import REGISTRY
from mailspec.layout import Layout

OPTION_GROUP = "mailspec"
# Files in a deploy's postfix/ that are not lookup-table sources for postmap.
NOT_MAPS = {"main.cf", "master.cf", "plus_disabled", "srs_recipients"}


def is_map_source(name: str) -> bool:
    return name not in NOT_MAPS and not name.startswith("mysql-") and not name.endswith(".lmdb")


def private_owners(vmail_user: str) -> dict[str, tuple[str, str, int]]:
    """The private files of a deploy (0600 in the deploy directory) as installed for the
    daemons that read them: {path in the deploy: (owner, group, mode)}. The passwd-file is
    read by Dovecot's auth process (group dovecot) and its auth workers (the vmail user);
    Dovecot gives its processes no supplementary groups, so those must be owner and group."""
    return {"dovecot/users": (vmail_user, "dovecot", 0o440)}


def installed_dirs(layout: Layout) -> list[tuple[str, str]]:
    """(directory in the deploy, where the server reads it) for every backend that installs one."""
    return [(b.name, getattr(layout, b.installed_at)) for b in REGISTRY if b.installed_at]


def installed_path(layout: Layout, path: str) -> str:
    """Where the server reads the deploy's `path`."""
    top, _, rest = path.partition("/")
    return f"{dict(installed_dirs(layout))[top]}/{rest}"


def mysql_password(option_file: str) -> str:
    """The password from the [mailspec] group (or [client]) of a MySQL option file."""
    parser = configparser.ConfigParser(allow_no_value=True, interpolation=None, strict=False)
    with open(option_file, encoding="utf-8") as handle:
        parser.read_string(handle.read())
    for group in (OPTION_GROUP, "client"):
        if parser.has_option(group, "password"):
            return parser.get(group, "password").strip().strip('"').strip("'")
    raise ValueError(f"{option_file} has no password in its [{OPTION_GROUP}] group")


def postfix_mysql_table(text: str, password: str) -> str:
    """A generated mysql-*.cf with the password added, for the live config directory:
    Postfix 3.7 sends an empty password instead of reading the option file's."""
    return text.rstrip("\n") + f"\npassword = {password}\n"
