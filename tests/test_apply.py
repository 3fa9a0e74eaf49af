"""`mailspec apply` against a real MariaDB: plan, dry run, reconcile, idempotence,
schema checks, and SIGKILL at random moments leaving the old state or the new one."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import valid_spec
from mariadb_server import DB_PASSWORD, DB_USER

from mailspec import apply as applying
from mailspec.backends.sql.rows import build
from mailspec.pipeline import check

USER, PASSWORD = DB_USER, DB_PASSWORD
MYSQL_SERVER = 'server {{ hostname mail.example.com\n  backend mysql {{ socket "{socket}"; ' \
               'database {db}; user mailspec; password_file "/etc/mailspec/mysql.cnf" }} }}\n'


def spec_file(path: Path, socket: str, db: str, domains: str) -> Path:
    path.write_text(MYSQL_SERVER.format(socket=socket, db=db) + domains)
    return path


def run_apply(spec: Path, mariadb, db: str, *extra: str, password_file: Path) -> subprocess.CompletedProcess:
    url = f"mysql://{USER}@localhost/{db}?socket={mariadb.socket}"
    return subprocess.run([sys.executable, "-m", "mailspec", "apply", str(spec), "--db", url,
                           "--password-file", str(password_file), *extra], capture_output=True, text=True)


def current(mariadb, db: str) -> dict:
    with mariadb.connect(db) as connection, connection.cursor() as cursor:
        return {table: sorted(rows, key=applying._sort_key)
                for table, rows in applying.read_rows(cursor).items()}


def wanted(spec: Path) -> dict:
    rows = build(check([str(spec)]).spec).tables
    return {table: sorted(r, key=applying._sort_key) for table, r in rows.items()}


@pytest.fixture
def database(mariadb, request, tmp_path):
    name = f"apply_{request.node.name[5:30]}".replace("[", "_").replace("]", "").replace("-", "_")
    mariadb.create_database(name, USER, PASSWORD)
    password_file = tmp_path / "my.cnf"
    password_file.write_text(f"[mailspec]\npassword = {PASSWORD}\n")
    return name, password_file


DOMAINS_A = """
domain example.com {
  mailbox alice { password "{BLF-CRYPT}$2y$05$3PkZGZBtAC0PGl7l7cDrauUXwjhJVRG.IQE9bY8Ble2O4ZBsOjLCq"; quota 1 GiB }
  mailbox bob { password "{BLF-CRYPT}$2y$05$3PkZGZBtAC0PGl7l7cDrauUXwjhJVRG.IQE9bY8Ble2O4ZBsOjLCq" }
  alias sales -> alice, bob
}
"""
DOMAINS_B = """
domain example.com {
  also example.net
  mailbox alice { password "{BLF-CRYPT}$2y$05$3PkZGZBtAC0PGl7l7cDrauUXwjhJVRG.IQE9bY8Ble2O4ZBsOjLCq"; quota 2 GiB }
  mailbox carol { password "{BLF-CRYPT}$2y$05$3PkZGZBtAC0PGl7l7cDrauUXwjhJVRG.IQE9bY8Ble2O4ZBsOjLCq" }
  alias sales -> alice, carol
}
domain example.org { mailbox dave { send_only } }
"""


def test_first_apply_creates_the_schema_and_a_second_finds_nothing(mariadb, database, tmp_path):
    db, password_file = database
    spec = spec_file(tmp_path / "a.mailspec", mariadb.socket, db, DOMAINS_A)
    dry = run_apply(spec, mariadb, db, "--dry-run", password_file=password_file)
    assert dry.returncode == 0, dry.stderr
    assert "+ schema version 1" in dry.stdout and "+ mailbox alice@example.com" in dry.stdout
    with mariadb.connect(db) as connection, connection.cursor() as cursor:
        assert applying._tables(cursor) == set()  # a dry run changes nothing
    first = run_apply(spec, mariadb, db, password_file=password_file)
    assert first.returncode == 0, first.stderr
    assert current(mariadb, db) == wanted(spec)
    second = run_apply(spec, mariadb, db, password_file=password_file)
    assert second.returncode == 0 and "No changes" in second.stdout, second.stdout


def test_reconciles_to_a_changed_spec(mariadb, database, tmp_path):
    db, password_file = database
    old = spec_file(tmp_path / "a.mailspec", mariadb.socket, db, DOMAINS_A)
    new = spec_file(tmp_path / "b.mailspec", mariadb.socket, db, DOMAINS_B)
    assert run_apply(old, mariadb, db, password_file=password_file).returncode == 0
    planned = run_apply(new, mariadb, db, "--dry-run", password_file=password_file)
    assert planned.returncode == 0, planned.stderr
    text = planned.stdout
    assert "~ mailbox alice@example.com (quota)" in text
    assert "- mailbox bob@example.com (mailbox data left in place)" in text
    assert "+ mailbox carol@example.com" in text and "+ domain example.org" in text
    assert "+ domain alias example.net" in text
    assert current(mariadb, db) == wanted(old)
    assert run_apply(new, mariadb, db, password_file=password_file).returncode == 0
    assert current(mariadb, db) == wanted(new)
    back = run_apply(old, mariadb, db, password_file=password_file)  # and back again
    assert back.returncode == 0 and "- domain example.org" in back.stdout
    assert current(mariadb, db) == wanted(old)


def test_refuses_another_schema_version_and_foreign_databases(mariadb, database, tmp_path):
    db, password_file = database
    spec = spec_file(tmp_path / "a.mailspec", mariadb.socket, db, DOMAINS_A)
    assert run_apply(spec, mariadb, db, password_file=password_file).returncode == 0
    with mariadb.connect(db) as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE mailspec_schema SET version = 99")
    refused = run_apply(spec, mariadb, db, password_file=password_file)
    assert refused.returncode == 2 and "schema version 99" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    with mariadb.connect(db) as connection, connection.cursor() as cursor:
        cursor.execute("DROP TABLE mailspec_schema")
    foreign = run_apply(spec, mariadb, db, password_file=password_file)
    assert foreign.returncode == 2 and "no mailspec schema" in foreign.stderr, foreign.stderr


def test_bad_credentials_are_a_clear_error(mariadb, database, tmp_path):
    db, _ = database
    spec = spec_file(tmp_path / "a.mailspec", mariadb.socket, db, DOMAINS_A)
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("not-the-password\n")
    run = run_apply(spec, mariadb, db, password_file=wrong)
    assert run.returncode == 2 and "cannot connect" in run.stderr and "Traceback" not in run.stderr


def many_domains(count: int) -> str:
    blocks = []
    for d in range(count):
        lines = [f"domain d{d}.example {{"]
        lines += [f'  mailbox u{m} {{ password "{{BLF-CRYPT}}$2y$05$3PkZGZBtAC0PGl7l7cDrauUXwjhJVRG.'
                  f'IQE9bY8Ble2O4ZBsOjLCq"; quota {m + 1} GiB }}' for m in range(20)]
        lines += ["  alias team -> u0, u1, u2", "  list all { members u0, u1, u2, u3; post members }", "}"]
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + "\n"


def test_a_killed_apply_leaves_the_old_state_or_the_new_one(mariadb, database, tmp_path):
    db, password_file = database
    old = spec_file(tmp_path / "a.mailspec", mariadb.socket, db, DOMAINS_A)
    new = spec_file(tmp_path / "b.mailspec", mariadb.socket, db, DOMAINS_B + many_domains(40))
    old_rows, new_rows = wanted(old), wanted(new)
    url = f"mysql://{USER}@localhost/{db}?socket={mariadb.socket}"
    command = [sys.executable, "-m", "mailspec", "apply", str(new), "--db", url,
               "--password-file", str(password_file)]

    def reset() -> None:
        mariadb.create_database(db, USER, PASSWORD)
        assert run_apply(old, mariadb, db, password_file=password_file).returncode == 0

    def start_and_wait_for_plan() -> subprocess.Popen:
        """Start the apply and return once it has printed its plan: the transaction follows."""
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in process.stdout:
            if line.startswith("Plan:"):
                return process
        raise AssertionError("apply ended without a plan")

    reset()
    process = start_and_wait_for_plan()
    planned = time.monotonic()
    assert process.wait() == 0
    window = time.monotonic() - planned  # writing the rows, in one transaction
    outcomes = {"old": 0, "new": 0}
    chooser = random.Random(int(os.environ.get("MAILSPEC_KILL_SEED", "20261128")))
    for _ in range(20):
        reset()
        process = start_and_wait_for_plan()
        time.sleep(chooser.uniform(0, 1.1) * window)
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        state = current(mariadb, db)
        assert state in (old_rows, new_rows), "a killed apply left a state that is neither"
        outcomes["old" if state == old_rows else "new"] += 1
    print(f"20 kills within a {window:.2f} s transaction window: {outcomes}")
    assert outcomes["old"] > 0


def test_a_files_backend_spec_is_not_applied(mariadb, database):
    db, password_file = database
    run = run_apply(valid_spec("classic"), mariadb, db, password_file=password_file)
    assert run.returncode == 2 and "backend files" in run.stderr
