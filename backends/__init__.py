"""One package per daemon. Each builds plain tables from the model, then renders them.

A backend is a package here with `emit(spec, layout) -> {relative path: text}` and
`PRIVATE_FILES`, plus one entry in REGISTRY: nothing else names it.
"""

from __future__ import annotations

import functools
import importlib
from importlib import resources
from types import ModuleType

import attrs


@attrs.frozen
class Backend:
    name: str  # its package, mailspec.backends.NAME, and its directory in the deploy tree
    installed_at: str | None  # the Layout property naming where a server reads that directory
    packages: tuple[str, ...]  # the Debian packages a server needs for it
    weight: int  # its share of emit + write time at the bench shape (bench/compile.py --backends)
    divisible: bool = False  # many small files: dealt out between the two writers
    # (lookup backend, package): needed only by servers whose tables use that backend
    lookup_packages: tuple[tuple[str, str], ...] = ()
    # needed only by servers whose spec uses the backend's feature (switch/request.py asks)
    feature_packages: tuple[str, ...] = ()

    def needs(self, lookups: str) -> tuple[str, ...]:
        """The packages a server whose tables are `lookups` (files, mysql) needs for it."""
        return self.packages + tuple(package for kind, package in self.lookup_packages if kind == lookups)

    @property
    def all_packages(self) -> tuple[str, ...]:
        return self.packages + tuple(package for _, package in self.lookup_packages) + self.feature_packages

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(f"{__name__}.{self.name}")


REGISTRY = (
    Backend("postfix", "postfix_dir", ("postfix",), 45,
            lookup_packages=(("files", "postfix-lmdb"), ("mysql", "postfix-mysql")),
            feature_packages=("libsasl2-modules", "ca-certificates")),  # a relay host's login
    Backend("dovecot", "dovecot_dir", ("dovecot-core", "dovecot-imapd", "dovecot-lmtpd"), 30,
            lookup_packages=(("mysql", "dovecot-mysql"),), feature_packages=("dovecot-pop3d",)),  # with `pop3`
    Backend("sieve", "sieve_dir", ("dovecot-sieve", "dovecot-managesieved"), 3, divisible=True),
    Backend("rspamd", "rspamd_dir", ("rspamd",), 10),
    Backend("redis", "redis_dir", ("redis-server",), 0),
    Backend("clamav", "clamav_dir", (), 0, feature_packages=("clamav-daemon",)),  # with `antivirus`
    Backend("fail2ban", "fail2ban_dir", (), 0, feature_packages=("fail2ban", "nftables")),  # with `fail2ban`
    Backend("postsrsd", "postsrsd_dir", ("postsrsd",), 0),
    Backend("nginx", "nginx_dir", ("nginx",), 1),
    # The deploy hook and certbot's settings stay in the generation's deploy/.
    Backend("acme", None, (), 0, feature_packages=("certbot",)),
    # Only the mysql backend has tables to write; the bench shape uses files.
    # python3-pymysql: switch's agent (mailspec/switch/database.py) writes the rows on the server.
    Backend("sql", None, (), 0, lookup_packages=(("mysql", "mariadb-server"), ("mysql", "mariadb-client"),
                                                 ("mysql", "python3-pymysql"))),
)

BY_NAME = {backend.name: backend for backend in REGISTRY}


def per_spec(function):
    """`function(spec)` computed once for the last spec asked about, by identity: a
    table that several backends ask for (a spec is immutable, and comparing one by
    value would cost more than the table)."""
    last: list = []  # [spec, its value]

    @functools.wraps(function)
    def memoised(spec):
        if not last or last[0] is not spec:
            last[:] = [spec, function(spec)]
        return last[1]

    return memoised


@functools.cache
def templates(package: str):
    """Logic-free templates (a jinja2.Environment): StrictUndefined, no autoescape (these
    are config files)."""
    import jinja2  # here: the switch agent on a server imports this package without it

    loader = jinja2.FunctionLoader(
        lambda name: resources.files(package).joinpath("templates", name).read_text("utf-8"))
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                              autoescape=False)


def render(package: str, name: str, **values) -> str:
    return templates(package).get_template(name).render(**values)


def lookup_table(rows) -> str:
    """A postmap(1) source: `key value` lines. Rendered in Python: maps can be huge."""
    return "".join(f"{key} {value}\n" for key, value in rows)
