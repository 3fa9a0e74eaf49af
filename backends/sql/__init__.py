"""SQL backend (for `backend mysql`): sql/schema.sql and sql/seed.sql for MariaDB/MySQL."""

from __future__ import annotations

from importlib import resources

from mailspec import model
from mailspec.backends.sql.rows import COLUMNS, Rows, build

SCHEMA_VERSION = 1


def schema() -> str:
    return resources.files(__name__).joinpath("schema.sql").read_text("utf-8")


def literal(value) -> str:
    """A MariaDB literal, for a session with NO_BACKSLASH_ESCAPES (set by the seed itself).

    Printable text is quoted with doubled quotes; anything else (control characters,
    NUL) is written as a utf8mb4 hex literal, so every string round-trips exactly.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if value.isprintable():
        return "'" + value.replace("'", "''") + "'"
    return "_utf8mb4 X'" + value.encode("utf-8").hex().upper() + "'"


def seed(rows: Rows) -> str:
    """INSERTs that fill an empty database (created by schema.sql), in one transaction."""
    domain_ids = {row[0]: number for number, row in enumerate(rows.tables["virtual_domains"], 1)}
    lines = [
        "-- Fills an empty mailspec database; `mailspec apply` updates a live one.",
        "SET NAMES utf8mb4;",
        "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES';",
        "START TRANSACTION;",
    ]
    for table, columns in COLUMNS.items():
        table_rows = rows.tables[table]
        if not table_rows:
            continue
        if table == "virtual_domains":
            names = ("id", *columns)
            values = [(domain_ids[row[0]], *row) for row in table_rows]
        else:
            names = tuple("domain_id" if c == "domain" else c for c in columns)
            values = [tuple(domain_ids.get(v) if c == "domain" else v for c, v in zip(columns, row, strict=True))
                      for row in table_rows]
        lines.append(f"INSERT INTO {table} ({', '.join(names)}) VALUES")
        lines.append(",\n".join("  (" + ", ".join(literal(v) for v in row) + ")" for row in values) + ";")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


PRIVATE_FILES = frozenset({"sql/seed.sql"})  # the password hashes


def emit(spec: model.Spec, layout) -> dict[str, str]:
    if spec.server.backend.kind is not model.BackendKind.MYSQL:
        return {}
    return {"sql/schema.sql": schema(), "sql/seed.sql": seed(build(spec))}
