"""The mysql backend's rows, switched together with the files (docs/switch.md).

A generation of a mysql spec keeps the rows it wants in rows.json: those of
backends/sql/rows.py, the same as seed.sql's and `mailspec apply`'s. Making it current
makes the database hold them, in two steps around the flip of `current`. Rows added or
changed go in before it, so the new configuration finds what it needs from its first
lookup. Rows removed come out once the new generation has passed its health check, so
the configuration that runs until then keeps what it needs. Going back (a failed health
check, or `rollback`) makes the database hold the rows of the generation it returns to.
"""

from __future__ import annotations

import json
import os

from mailspec.switch.store import SwitchError

ROWS = "rows.json"  # beside a generation's (or a bundle's) deploy/ and request.json
STEPS = {"before": "added or changed", "after": "removed", "all": "made equal"}


def write_rows(directory: str, rows) -> None:
    """`rows` (backends.sql.rows.Rows) into a bundle."""
    with open(os.path.join(directory, ROWS), "w", encoding="utf-8") as handle:
        json.dump({table: [list(row) for row in found] for table, found in sorted(rows.tables.items())}, handle)
        handle.write("\n")


def read(directory: str) -> dict[str, list[list]] | None:
    """The rows.json of a generation or bundle, {table: rows}; None if it has none."""
    try:
        with open(os.path.join(directory, ROWS), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def plan_lines(directory: str) -> list[str]:
    """What making the database hold the rows of `directory` changes, as `apply` shows it."""
    found = _connected(directory,
                       lambda request, connection, plan: plan.render(f"the database {request.database.database}"))
    return [f"  {line}" for line in found.splitlines()] if found else []


def sync(directory: str, step: str, echo) -> None:
    """Make the database hold the rows of the generation or bundle in `directory`: step
    "before" the flip adds and changes rows, "after" it removes them, "all" does both.
    Nothing for one without rows (the files backend, generation 0)."""
    def carry_out(request, connection, plan) -> None:
        from mailspec import apply

        chosen = tuple(c for c in plan.changes if step == "all" or (c.action == "-") == (step == "after"))
        create = plan.create_schema and step != "after"
        if chosen or create:
            apply.apply(connection, apply.Plan(chosen, create))
            count = f"{len(chosen)} row" + ("" if len(chosen) == 1 else "s")
            echo(f"the database {request.database.database}: {count} {STEPS[step]}")

    _connected(directory, carry_out)


def _connected(directory: str, then):
    """then(request, connection, the full plan) with the rows of `directory`; None if it
    has none. Every failure to reach or write the database is a SwitchError."""
    from mailspec.switch.build import REQUEST
    from mailspec.switch.request import Request

    tables = read(directory)
    if tables is None:
        return None
    try:
        import pymysql

        from mailspec import apply
        from mailspec.backends.sql.rows import Rows
    except ImportError:
        raise SwitchError("this server has no pymysql, which switch needs for the mysql backend",
                          "apt-get install python3-pymysql (a switch installs it)") from None
    from mailspec.install import mysql_password

    with open(os.path.join(directory, REQUEST), encoding="utf-8") as handle:
        request = Request.from_json(handle.read())
    rows = Rows({table: tuple(tuple(row) for row in found) for table, found in tables.items()})
    where = request.database
    try:
        connection = where.connect(mysql_password(request.mysql_option_file))
        try:
            with connection.cursor() as cursor:
                create = apply.schema_state(cursor)
                current = {} if create else apply.read_rows(cursor)
            return then(request, connection, apply.Plan(apply.diff(current, rows), create))
        finally:
            connection.close()
    except (apply.ApplyError, pymysql.err.Error, OSError, ValueError) as error:
        reason = error.args[-1] if isinstance(error, pymysql.err.Error) and error.args else error
        raise SwitchError(f"the database {where.database}: {reason}",
                          "check that MariaDB runs, and that the option file's account may write the "
                          "database") from None
