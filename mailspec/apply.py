"""`mailspec apply`: make a live MariaDB/MySQL database equal to the spec.

It reads the rows the database has, compares them by natural key (names and
addresses) with the rows the spec wants (backends/sql/rows.py, the same rows as
seed.sql), prints the difference as a plan, and applies the whole plan in one
transaction. It never touches mail on disk: a removed mailbox keeps its Maildir.
"""

from __future__ import annotations

import re
import urllib.parse
from collections import defaultdict

import attrs

from mailspec import model
from mailspec.backends.sql import SCHEMA_VERSION, schema
from mailspec.backends.sql.rows import COLUMNS, KEY_SIZE, Rows, build
from mailspec.install import mysql_password

# What each table's rows are called in a plan.
ENTITY = {
    "virtual_domains": "domain", "virtual_users": "mailbox", "virtual_aliases": "alias route",
    "virtual_alias_domains": "domain alias", "sender_logins": "sender login",
    "recipient_rules": "recipient rule", "sender_rules": "sender rule",
    "list_policies": "list policy", "list_senders": "list sender",
}


class ApplyError(Exception):
    """A problem with the database or its schema, with a message for the user."""


@attrs.frozen
class Database:
    user: str
    database: str
    host: str | None = None
    port: int | None = None
    socket: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Database:
        """`mysql://user@host[:port]/db` or `mysql://user@localhost/db?socket=/path`."""
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qs(parts.query)
        database = parts.path.lstrip("/")
        if parts.scheme != "mysql" or not parts.username or not database:
            raise ApplyError(f"`{url}` is not a database URL; write mysql://user@host/database "
                             "or mysql://user@localhost/database?socket=/run/mysqld/mysqld.sock")
        return cls(urllib.parse.unquote(parts.username), database, parts.hostname, parts.port,
                   query.get("socket", [None])[0])

    def connect(self, password: str | None) -> pymysql.Connection:  # noqa: F821
        import pymysql  # here: switch's agent names a Database on servers without pymysql

        try:
            return pymysql.connect(user=self.user, password=password or "", database=self.database,
                                   host=self.host or "localhost", port=self.port or 3306,
                                   unix_socket=self.socket, charset="utf8mb4", autocommit=False)
        except pymysql.err.Error as error:
            raise ApplyError(f"cannot connect to {self.database} as {self.user}: {error.args[-1]}") from None


def read_password(path: str) -> str:
    """The password from a MySQL option file ([mailspec] group), or a file holding only it."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if not text.lstrip().startswith("["):
            return text.strip()
        return mysql_password(path)
    except OSError as error:
        raise ApplyError(f"cannot read `{path}`: {(error.strerror or str(error)).lower()}") from None
    except ValueError as error:
        raise ApplyError(str(error)) from None


# ---------------------------------------------------------------- the plan

@attrs.frozen
class Change:
    action: str  # "+" add, "~" change, "-" remove
    table: str
    row: tuple  # the wanted row (or the removed one)
    changed: tuple[str, ...] = ()  # columns that differ, for "~"

    @property
    def key(self) -> tuple:
        return self.row[:KEY_SIZE[self.table]]

    @property
    def domain(self) -> str:
        """The domain the plan shows this change under."""
        if self.table == "virtual_domains":
            return self.row[0]
        columns = COLUMNS[self.table]
        owner = self.row[columns.index("domain")] if "domain" in columns else None
        return owner or "(server-wide)"

    def describe(self) -> str:
        key = " -> ".join(str(k) for k in self.key)
        text = f"{self.action} {ENTITY[self.table]} {key}"
        if self.changed:
            text += f" ({', '.join(self.changed)})"
        if self.action == "-" and self.table == "virtual_users":
            text += " (mailbox data left in place)"
        return text


@attrs.frozen
class Plan:
    changes: tuple[Change, ...]
    create_schema: bool

    @property
    def empty(self) -> bool:
        return not self.changes and not self.create_schema

    def render(self, target: str) -> str:
        lines = [f"Plan for {target}:"]
        if self.create_schema:
            lines.append(f"  + schema version {SCHEMA_VERSION} (the database is empty)")
        by_domain: dict[str, list[Change]] = defaultdict(list)
        for change in self.changes:
            by_domain[change.domain].append(change)
        for domain in sorted(by_domain):
            lines.append(f"  {domain}")
            lines += [f"    {c.describe()}" for c in by_domain[domain]]
        counts = {a: sum(c.action == a for c in self.changes) for a in "+~-"}
        if self.empty:
            lines.append("No changes: the database already matches the spec.")
        else:
            lines.append(f"Plan: {counts['+']} to add, {counts['~']} to change, {counts['-']} to remove.")
        return "\n".join(lines) + "\n"


def diff(current: dict[str, list[tuple]], wanted: Rows) -> tuple[Change, ...]:
    changes = []
    for table, columns in COLUMNS.items():
        size = KEY_SIZE[table]
        have = {row[:size]: row for row in current.get(table, [])}
        want = {row[:size]: row for row in wanted.tables[table]}
        for key in sorted(want.keys() | have.keys(), key=_sort_key):
            if key not in have:
                changes.append(Change("+", table, want[key]))
            elif key not in want:
                changes.append(Change("-", table, have[key]))
            elif tuple(have[key]) != tuple(want[key]):
                changed = tuple(c for c, a, b in zip(columns, have[key], want[key], strict=True) if a != b)
                changes.append(Change("~", table, want[key], changed))
    return tuple(changes)


def _sort_key(key: tuple) -> tuple:
    return tuple("" if v is None else str(v) for v in key)


# ---------------------------------------------------------------- the database

def _tables(cursor) -> set[str]:
    cursor.execute("SHOW TABLES")
    return {row[0] for row in cursor.fetchall()}


def schema_state(cursor) -> bool:
    """True if the schema must be created; ApplyError for a foreign or other-version one."""
    tables = _tables(cursor)
    if not tables:
        return True
    if "mailspec_schema" not in tables:
        raise ApplyError("the database is not empty and has no mailspec schema; "
                         "use an empty database, or one that mailspec created")
    cursor.execute("SELECT version FROM mailspec_schema")
    versions = [row[0] for row in cursor.fetchall()]
    if not versions:  # a first apply was stopped after CREATE TABLE: start it again
        return True
    if versions != [SCHEMA_VERSION]:
        found = ", ".join(str(v) for v in versions) or "none"
        raise ApplyError(f"the database has mailspec schema version {found}; this mailspec "
                         f"writes version {SCHEMA_VERSION}; migrate it or use a new database")
    return False


def read_rows(cursor) -> dict[str, list[tuple]]:
    current = {}
    for table, columns in COLUMNS.items():
        select = ", ".join("d.name" if c == "domain" else f"t.{c}" for c in columns)
        join = " LEFT JOIN virtual_domains d ON d.id = t.domain_id" if "domain" in columns else ""
        cursor.execute(f"SELECT {select} FROM {table} t{join}")
        current[table] = [tuple(bool(v) if c == "send_only" else v for c, v in zip(columns, row, strict=True))
                          for row in cursor.fetchall()]
    return current


def _where(table: str) -> str:
    return " AND ".join(f"{c} = %s" for c in COLUMNS[table][:KEY_SIZE[table]])


def _execute(cursor, change: Change) -> None:
    table, columns, row = change.table, COLUMNS[change.table], change.row
    size = KEY_SIZE[table]
    if change.action == "-":
        cursor.execute(f"DELETE FROM {table} WHERE {_where(table)}", row[:size])
        return
    names = ["domain_id" if c == "domain" else c for c in columns]
    if "domain" in columns:  # the id of the domain, by name (NULL for server-wide rows)
        values = ["(SELECT id FROM virtual_domains WHERE name = %s)" if c == "domain" else "%s"
                  for c in columns]
    else:
        values = ["%s"] * len(columns)
    if change.action == "+":
        cursor.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(values)})", row)
    else:
        assignments = ", ".join(f"{n} = {v}" for n, v in zip(names[size:], values[size:], strict=True))
        cursor.execute(f"UPDATE {table} SET {assignments} WHERE {_where(table)}", row[size:] + row[:size])


def _ordered(changes: tuple[Change, ...]) -> list[Change]:
    """Removals first (child tables before domains), then domains, then the rest."""
    removals = [c for c in changes if c.action == "-"]
    others = [c for c in changes if c.action != "-"]
    return ([c for c in removals if c.table != "virtual_domains"]
            + [c for c in removals if c.table == "virtual_domains"]
            + [c for c in others if c.table == "virtual_domains"]
            + [c for c in others if c.table != "virtual_domains"])


def plan(connection, spec: model.Spec) -> Plan:
    with connection.cursor() as cursor:
        create = schema_state(cursor)
        current = {} if create else read_rows(cursor)
    return Plan(diff(current, build(spec)), create)


def apply(connection, the_plan: Plan) -> None:
    """Carry out the plan: the row changes in one transaction. MariaDB cannot roll back
    CREATE TABLE, so a new schema is created first, without its version row; that row
    is written with the data, and a schema without it counts as empty."""
    with connection.cursor() as cursor:
        if the_plan.create_schema:
            for statement in _statements(schema()):
                if not statement.startswith("INSERT INTO mailspec_schema"):
                    cursor.execute(statement)
        connection.begin()
        try:
            if the_plan.create_schema:
                cursor.execute("INSERT INTO mailspec_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            for change in _ordered(the_plan.changes):
                _execute(cursor, change)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise


def _statements(sql: str) -> list[str]:
    """schema.sql split into statements, comments removed (it has no strings with `;`)."""
    lines = [re.sub(r"--.*", "", line) for line in sql.splitlines() if not line.startswith("#")]
    return [s.strip().replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1)
            for s in "\n".join(lines).split(";") if s.strip()]
