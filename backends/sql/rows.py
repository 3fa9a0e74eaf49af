"""The rows of the mysql backend's tables, computed from the checked model.

Each table is a tuple of rows keyed by natural keys (names and addresses, no ids), so
that `seed.sql` and `mailspec apply` share one description of the wanted database.
The Postfix tables come from the same `tables.build` as the lmdb maps: the mysql
queries then answer exactly what the maps answer.
"""

from __future__ import annotations

import attrs

from mailspec import model
from mailspec.backends.postfix import tables as postfix_tables
from mailspec.backends.sieve import mailbox_script_path

# Columns written by mailspec, in order; `domain` is resolved to domain_id (the name of
# the served domain the row belongs to, or None). The first columns form the natural key.
COLUMNS: dict[str, tuple[str, ...]] = {
    "virtual_domains": ("name", "message_size_limit"),
    "virtual_users": ("email", "domain", "password", "quota", "send_only", "sieve_script"),
    "virtual_aliases": ("source", "destination", "domain"),
    "virtual_alias_domains": ("name", "domain"),
    "sender_logins": ("sender", "login", "domain"),
    "recipient_rules": ("address", "action", "domain"),
    "sender_rules": ("address", "action"),
    "list_policies": ("address", "restriction_class", "domain"),
    "list_senders": ("restriction_class", "sender", "action", "domain"),
}
KEY_SIZE: dict[str, int] = {
    "virtual_domains": 1, "virtual_users": 1, "virtual_aliases": 2, "virtual_alias_domains": 1,
    "sender_logins": 2, "recipient_rules": 1, "sender_rules": 1, "list_policies": 1,
    "list_senders": 2,
}


@attrs.frozen
class Rows:
    tables: dict[str, tuple[tuple, ...]]  # table -> sorted rows, in COLUMNS order


def split(value: str) -> list[str]:
    return value.split(",")


def build(spec: model.Spec) -> Rows:
    maps = postfix_tables.build(spec)
    real = {name: d.name for d in spec.domains for name in d.names}

    def owner(key: str) -> str | None:
        """The served domain a lookup key belongs to (`x@alias` belongs to the real domain)."""
        return real.get(key.rpartition("@")[2])

    users = []
    for domain in spec.domains:
        for mailbox in domain.mailboxes:
            users.append((f"{mailbox.local}@{domain.name}", domain.name,
                          mailbox.password.hash if mailbox.password else None, mailbox.quota,
                          mailbox.send_only, mailbox_script_path(spec, domain.name, mailbox)))
    tables = {
        "virtual_domains": [(d.name, d.limits.message_size) for d in spec.domains],
        "virtual_users": users,
        "virtual_aliases": [(source, target, owner(source))
                            for source, targets in maps.virtual_aliases for target in split(targets)],
        "virtual_alias_domains": list(model.alias_domains(spec.domains).items()),
        "sender_logins": [(sender, login, owner(login))
                          for sender, logins in maps.sender_login for login in split(logins)],
        "recipient_rules": [(key, action, owner(key)) for key, action in maps.recipient_access],
        "sender_rules": list(maps.sender_access),
        "list_policies": [(key, name, owner(key)) for key, name in maps.list_access],
        "list_senders": [(c.name, sender, action, c.domain)
                         for c in maps.list_classes for sender, action in c.senders or ()],
    }
    return Rows({name: tuple(sorted(rows, key=_order)) for name, rows in tables.items()})


def _order(row: tuple) -> tuple:
    return tuple("" if v is None else str(v) for v in row)
