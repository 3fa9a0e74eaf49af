"""What installing a compiled spec needs to know beyond its deploy tree.

Made from the model where mailspec compiles, and read where it installs: a remote
server runs only the switch machinery (agent.py), with no compiler and no model. It
travels as request.json beside the deploy tree, and each generation keeps its own.
"""

from __future__ import annotations

import json
import os

import attrs

from mailspec import model
from mailspec.apply import Database
from mailspec.backends import BY_NAME, REGISTRY
from mailspec.layout import Layout, Ports


@attrs.frozen
class Request:
    spec: str  # the spec's name, for `mailspec generations`
    vmail_user: str
    vmail_uid: int
    vmail_gid: int
    mail_root: str  # the directory every Maildir is under (made, never emptied)
    tls_cert: str  # key material the server must already have (with ACME: a stand-in until certbot has it)
    tls_key: str
    mysql_option_file: str | None  # the password for the mysql tables, read on the server
    packages: tuple[str, ...]  # the Debian packages the deploy needs
    layout: Layout = Layout()
    database: Database | None = None  # the mysql backend's (its password: mysql_option_file)
    dkim_keys: tuple[str, ...] = ()  # the private keys rspamd signs with (`mailspec keys` makes them)
    srs_secret: str | None = None  # postsrsd's secret as `mailspec keys` made it: the switch installs it
    relay_host: str | None = None  # with a login: Postfix's relayhost, the key of its password table
    relay_login: str | None = None
    relay_password_file: str | None = None  # the relay's password, read on the server

    def to_json(self) -> str:
        data = attrs.asdict(self, recurse=True)
        data["packages"], data["dkim_keys"] = list(self.packages), list(self.dkim_keys)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Request:
        data = json.loads(text)
        layout = data.pop("layout")
        layout = Layout(layout["prefix"], Ports(**layout["ports"]))
        database = data.pop("database", None)
        database = Database(**database) if database else None
        return cls(**{**data, "packages": tuple(data["packages"]), "dkim_keys": tuple(data.get("dkim_keys", ()))},
                   layout=layout, database=database)


# The backends whose feature_packages a server needs only when its spec uses the feature.
FEATURES = {
    "acme": lambda server: server.tls.acme is not None,
    "postfix": lambda server: server.relay is not None and server.relay.login is not None,  # SASL PLAIN
    "clamav": lambda server: server.antivirus,
    "fail2ban": lambda server: server.fail2ban is not None,
    "dovecot": lambda server: server.pop3,
}


def write_bundle(bundle: str, spec: model.Spec, layout: Layout) -> None:
    """Beside a compiled `bundle`/deploy: request.json, and the mysql backend's rows.json."""
    from mailspec.switch.build import REQUEST
    from mailspec.switch.database import write_rows

    request = from_spec(spec, layout)
    with open(os.path.join(bundle, REQUEST), "w", encoding="utf-8") as handle:
        handle.write(request.to_json())
    if request.database is not None:
        from mailspec.backends.sql.rows import build

        write_rows(bundle, build(spec))


def from_spec(spec: model.Spec, layout: Layout) -> Request:
    from mailspec.backends.dovecot import home_template
    from mailspec.backends.rspamd import signers
    from mailspec.keys import SRS_SECRET

    server = spec.server
    mysql = server.backend.kind is model.BackendKind.MYSQL
    lookups = server.backend.kind.value
    packages = {package for backend in REGISTRY for package in backend.needs(lookups)}
    for backend, used in FEATURES.items():
        if used(server):
            packages.update(BY_NAME[backend].feature_packages)
    packages = sorted(packages)
    return Request(
        spec=spec.name, vmail_user=server.vmail.user, vmail_uid=server.vmail.uid, vmail_gid=server.vmail.gid,
        mail_root=home_template(spec, layout).split("%")[0].rstrip("/"),
        tls_cert=layout.path(server.tls.cert), tls_key=layout.path(server.tls.key),
        mysql_option_file=layout.path(server.backend.password_file) if mysql else None,
        packages=tuple(packages), layout=layout,
        database=Database(server.backend.user, server.backend.database, server.backend.host, server.backend.port,
                          server.backend.socket) if mysql else None,
        dkim_keys=tuple(sorted({signer.path for signer in signers(spec, layout)})),
        srs_secret=f"{layout.path(server.keys)}/{SRS_SECRET}" if spec.domains else None,
        **(_relay(server.relay, layout) if server.relay and server.relay.login else {}))


def _relay(relay: model.Relay, layout: Layout) -> dict[str, str]:
    return {"relay_host": relay.host, "relay_login": relay.login,
            "relay_password_file": layout.path(relay.password_file)}
