"""The mysql backend against a real MariaDB: the schema and seed load with the real
client, every value round-trips exactly, and Postfix's mysql tables answer every
lookup exactly as the lmdb maps of the files backend do."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from conftest import (
    VALID,
    checked,
    declared_addresses,
    need_tool,
    valid_spec,
    with_backend,
    write_tree,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mariadb_server import DB_PASSWORD, DB_USER, MariaDB, option_file

from mailspec import install, model
from mailspec.backends.postfix import mysql as postfix_mysql
from mailspec.backends.sql import literal
from mailspec.backends.sql.rows import COLUMNS, build
from mailspec.emit import emit_all

USER, PASSWORD = DB_USER, DB_PASSWORD
MAPS = tuple(postfix_mysql.QUERIES)


def mysql_spec(spec, server: MariaDB, database: str, options: str):
    return with_backend(spec, model.Backend(kind=model.BackendKind.MYSQL, socket=server.socket,
                                            database=database, user=USER, password_file=options))


def load(server: MariaDB, database: str, deploy) -> None:
    server.create_database(database, USER, PASSWORD)
    server.source(database, deploy / "sql" / "schema.sql")
    server.source(database, deploy / "sql" / "seed.sql")


def test_seed_round_trips_every_row(mariadb, tmp_path):
    spec = checked(valid_spec("mysql")).spec
    options = str(option_file(tmp_path / "my.cnf", USER, PASSWORD))
    spec = mysql_spec(spec, mariadb, "roundtrip", options)
    write_tree(emit_all(spec), tmp_path / "deploy")
    load(mariadb, "roundtrip", tmp_path / "deploy")
    wanted = build(spec).tables
    with mariadb.connect("roundtrip") as connection, connection.cursor() as cursor:
        for table, columns in COLUMNS.items():
            select = ", ".join("d.name" if c == "domain" else f"t.{c}" for c in columns)
            join = "LEFT JOIN virtual_domains d ON d.id = t.domain_id" if "domain" in columns else ""
            cursor.execute(f"SELECT {select} FROM {table} t {join}")
            got = sorted(tuple(bool(v) if c == "send_only" else v for c, v in zip(columns, row, strict=True))
                         for row in cursor.fetchall())
            assert got == sorted(wanted[table]), table
    assert ("o'brien@example.com",) in {r[:1] for r in wanted["virtual_users"]}


@settings(max_examples=1, suppress_health_check=list(HealthCheck), deadline=None)
@given(st.lists(st.text(min_size=0, max_size=80) | st.sampled_from(
    ["'", "\\", "\\'", "\0", "a\nb", "\r\n", "\x1a", "é" * 300, "🎉' OR 1=1 -- ", '"', "`"]),
    min_size=300, max_size=300))
def test_hostile_strings_round_trip_through_the_real_client(mariadb, tmp_path_factory, strings):
    work = tmp_path_factory.mktemp("hostile")
    lines = ["SET NAMES utf8mb4;", "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES';",
             "CREATE TABLE t (n INT PRIMARY KEY, v LONGTEXT) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;"]
    lines += [f"INSERT INTO t VALUES ({n}, {literal(s)});" for n, s in enumerate(strings)]
    (work / "hostile.sql").write_text("\n".join(lines) + "\n", encoding="utf-8")
    mariadb.create_database("hostile", USER, PASSWORD)
    mariadb.source("hostile", work / "hostile.sql")
    with mariadb.connect("hostile") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT v FROM t ORDER BY n")
        assert [row[0] for row in cursor.fetchall()] == strings


def lookup_keys(spec) -> list[str]:
    """Declared addresses, their domains, catch-all keys, outside addresses and odd cases."""
    keys = set(declared_addresses(spec))
    for domain in spec.domains:
        for name in [domain.name, *(a.name for a in domain.also)]:
            keys |= {name, f"@{name}", f"Postmaster@{name.upper()}", f"sub.{name}"}
    keys |= {"someone@outside.example", "outside.example", "spam@bad.example", "junk.example",
             "x@junk.example", "carol@private.example", "reader@outside.example"}
    keys |= {f"{r.address}" for d in spec.domains for m in d.mailboxes for r in m.send_as}
    return sorted(keys)


def postmap_all(table: str, keys: list[str]) -> str:
    run = subprocess.run(["postmap", "-q", "-", table], input="\n".join(keys) + "\n",
                         capture_output=True, text=True)
    assert run.stderr == "", (table, run.stderr)
    return run.stdout


@pytest.mark.parametrize("name", VALID)
def test_mysql_tables_answer_like_lmdb_maps(name, mariadb, tmp_path):
    spec = checked(valid_spec(name)).spec
    answers_agree(spec, mariadb, tmp_path, f"eq_{name}", lookup_keys(spec))


def answers_agree(spec, mariadb, tmp_path, database: str, keys: list[str]) -> None:
    """Compile `spec` for both backends; every lookup gives the same answer in both."""
    postmap = need_tool("postmap")
    options = str(option_file(tmp_path / "my.cnf", USER, PASSWORD))
    files_spec = with_backend(spec, model.Backend())
    sql_spec = mysql_spec(spec, mariadb, database, options)
    write_tree(emit_all(files_spec), tmp_path / "files")
    write_tree(emit_all(sql_spec), tmp_path / "mysql")
    load(mariadb, database, tmp_path / "mysql")
    lmdb_dir, mysql_dir = tmp_path / "files" / "postfix", tmp_path / "mysql" / "postfix"
    tables = {name: f"lmdb:{lmdb_dir / name}" for name in MAPS}
    for path in sorted(mysql_dir.glob("mysql-list_*_*.cf")):
        # A list's senders: inline in the files backend's main.cf, or a file of their own.
        name = path.name.removeprefix("mysql-").removesuffix(".cf")
        restriction = subprocess.run(["postconf", "-c", str(lmdb_dir), "-h", name], capture_output=True,
                                     text=True, check=True).stdout.strip()
        table = restriction.removeprefix("check_sender_access ").removesuffix(", reject")
        tables[name] = table.replace("$config_directory", str(lmdb_dir))
    answered = 0
    for name, table in tables.items():
        if table.startswith("lmdb:"):
            subprocess.run([postmap, table], check=True)
        cf = mysql_dir / postfix_mysql.file_name(name)
        cf.write_text(install.postfix_mysql_table(cf.read_text(), install.mysql_password(options)))
        # Postfix waits until a just-written table file is a second old: age it.
        os.utime(cf, (time.time() - 60, time.time() - 60))
        from_files = postmap_all(table, keys)
        assert postmap_all(f"mysql:{cf}", keys) == from_files, name
        answered += from_files.count("\n")
    assert answered > 0
