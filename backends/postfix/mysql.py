"""mysql_table(5) files for the mysql backend: one per lookup the files backend does
with lmdb, each reading the rows that backends/sql/rows.py computes from the same
tables, so that every query answers exactly what the lmdb map answers."""

from __future__ import annotations

from mailspec import model
from mailspec.backends import render
from mailspec.backends.postfix import srs
from mailspec.backends.postfix.tables import OWN_DOMAIN_FROM_OUTSIDE

# Multi-valued answers are rows joined by Postfix with commas: ORDER BY gives the
# sorted order that the lmdb maps use.
QUERIES = {
    "virtual_domains": "SELECT 'OK' FROM virtual_domains WHERE name = '%s'",
    "virtual_alias_domains": "SELECT 'OK' FROM virtual_alias_domains WHERE name = '%s'",
    "virtual_mailboxes": ("SELECT CONCAT(d.name, '/', SUBSTRING_INDEX(u.email, '@', 1), '/') "
                          "FROM virtual_users u JOIN virtual_domains d ON d.id = u.domain_id "
                          "WHERE u.email = '%s' AND NOT u.send_only"),
    "virtual_aliases": "SELECT destination FROM virtual_aliases WHERE source = '%s' ORDER BY destination",
    "sender_login": "SELECT login FROM sender_logins WHERE sender = '%s' ORDER BY login",
    "recipient_access": "SELECT action FROM recipient_rules WHERE address = '%s'",
    "sender_access": "SELECT action FROM sender_rules WHERE address = '%s'",
    "list_access": "SELECT restriction_class FROM list_policies WHERE address = '%s'",
    "own_domains": (f"SELECT '{OWN_DOMAIN_FROM_OUTSIDE}' FROM virtual_domains WHERE name = '%s' "
                    f"UNION ALL SELECT '{OWN_DOMAIN_FROM_OUTSIDE}' FROM virtual_alias_domains "
                    "WHERE name = '%s'"),
    "own_senders": (f"SELECT '{srs.KEEP}' FROM virtual_domains WHERE CONCAT('@', name) = '%s' "
                    f"UNION ALL SELECT '{srs.KEEP}' FROM virtual_alias_domains WHERE CONCAT('@', name) = '%s'"),
}


def list_senders_query(class_name: str) -> str:
    # Class names are [a-z0-9_] only (tables._class_name): safe to write into the query.
    return (f"SELECT action FROM list_senders WHERE restriction_class = '{class_name}' "
            "AND sender = '%s'")


def file_name(name: str) -> str:
    return f"mysql-{name}.cf"


def hosts(backend: model.Backend) -> str:
    if backend.socket:
        return f"unix:{backend.socket}"
    host = backend.host or "localhost"
    return f"inet:{host}:{backend.port}" if backend.port else f"inet:{host}"


def table_file(backend: model.Backend, option_file: str, query: str) -> str:
    return render(__package__, "mysql.cf.j2", hosts=hosts(backend), user=backend.user,
                  database=backend.database, option_file=option_file, query=query)
