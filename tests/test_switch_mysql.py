"""`mailspec switch` with the mysql backend on this host: the real MariaDB, Postfix
and Dovecot. The database's rows switch, and roll back, together with the files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hosttier import MYSQL
from mariadb_server import DB_PASSWORD, DB_USER
from switchhost import compiled, relocated, tamper

from mailspec.switch import database
from mailspec.switch.activate import prepare, switch
from mailspec.switch.store import Store, SwitchError


@pytest.fixture
def host():
    yield from relocated()


def rows(mariadb, name: str) -> tuple[set[str], set[str]]:
    """The mailboxes and the alias sources in the database."""
    with mariadb.connect(name) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT email FROM virtual_users")
        users = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT source FROM virtual_aliases")
        return users, {row[0] for row in cursor.fetchall()}


def test_the_database_switches_and_rolls_back_with_the_files(host, mariadb):
    name = host.prefix.name
    backend = MYSQL.format(socket=mariadb.socket, database=name)
    # What an administrator does once: the database, its account, and the option file.
    mariadb.create_database(name, DB_USER, DB_PASSWORD)
    options = Path(host.layout.path("/etc/mailspec/mysql.cnf"))
    options.parent.mkdir(parents=True)
    options.write_text(f"[mailspec]\nuser = {DB_USER}\npassword = {DB_PASSWORD}\n")
    first = host.write("first", more="alias orders -> alice", backend=backend)
    second = host.write("second", more=f'mailbox bob {{ password "{host.hashes["bob"]}" }}', backend=backend)
    request, _ = compiled(first, host.layout)
    with Store(host.layout).lock():
        prepare(Store(host.layout), request, print)  # the vmail account, which reads the option file
    shutil.chown(options, "vmail", "dovecot")
    options.chmod(0o440)

    done = host.mailspec("switch", first, "--yes")
    assert "+ alias route orders@example.com -> alice@example.com" in done.stdout, done.stdout  # the plan
    assert rows(mariadb, name) == ({"alice@example.com"}, {"orders@example.com", "sales@example.com"})
    assert host.send("orders@example.com", "one") == 250 and host.send("bob@example.com", "one") == 550

    # The two steps of the next switch, one at a time: first the rows that generation
    # 2 adds, with those only generation 1 needs kept; then those removed.
    _, deploy = compiled(second, host.layout)
    bundle = str(Path(deploy).parent)
    database.sync(bundle, "before", print)
    assert rows(mariadb, name) == ({"alice@example.com", "bob@example.com"},
                                   {"orders@example.com", "sales@example.com"})
    database.sync(bundle, "after", print)
    assert rows(mariadb, name) == ({"alice@example.com", "bob@example.com"}, {"sales@example.com"})
    database.sync(str(Path(Store(host.layout).path(1))), "all", print)  # and back, for the real switch

    host.mailspec("switch", second, "--yes")
    assert rows(mariadb, name) == ({"alice@example.com", "bob@example.com"}, {"sales@example.com"})
    assert host.send("bob@example.com", "two") == 250 and host.send("orders@example.com", "two") == 550
    host.wait_for("bob", "two")

    host.mailspec("rollback", "1")
    assert rows(mariadb, name) == ({"alice@example.com"}, {"orders@example.com", "sales@example.com"})
    assert host.send("bob@example.com", "three") == 550 and host.send("orders@example.com", "three") == 250

    # A generation that fails its health check takes its rows back with it.
    third = host.write("third", more=f'mailbox carol {{ password "{host.hashes["carol"]}" }}', backend=backend)
    request, deploy = compiled(third, host.layout)
    text = Path(deploy, "dovecot", "dovecot.conf").read_text()
    tamper(deploy, "dovecot/dovecot.conf", text.replace(host.layout.lmtp_socket, host.layout.lmtp_socket + "-x"))
    with pytest.raises(SwitchError, match="failed its health check"):
        switch(Store(host.layout), request, deploy, print)
    assert host.current() == 1
    assert rows(mariadb, name) == ({"alice@example.com"}, {"orders@example.com", "sales@example.com"})


def test_an_unreachable_database_leaves_the_server_as_it_was(host, mariadb):
    backend = MYSQL.format(socket=mariadb.socket + "-gone", database=host.prefix.name)
    options = Path(host.layout.path("/etc/mailspec/mysql.cnf"))
    options.parent.mkdir(parents=True)
    options.write_text(f"[mailspec]\nuser = {DB_USER}\npassword = {DB_PASSWORD}\n")
    done = host.mailspec("switch", host.write("site", backend=backend), "--yes", check_rc=False)
    assert done.returncode == 1 and f"the database {host.prefix.name}:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and host.current() is None
