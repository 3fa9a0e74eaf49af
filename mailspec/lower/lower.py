"""Lowering: syntax entries -> typed model. Checks each statement on its own; the checker
does everything that needs more than one statement."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import attrs

from mailspec import model
from mailspec.diagnostics import Diagnostic
from mailspec.lower import errors, values
from mailspec.lower.loader import MAX_PASSWORD_BYTES, read_text, within
from mailspec.lower.parsers import FAILED, any_text, file_path, one_line, post
from mailspec.lower.server import ServerLowering
from mailspec.lower.sieve import SieveLowerer
from mailspec.source import Span
from mailspec.syntax import Entry, SieveNode, Value

# Where each block keyword lives, for "`x` belongs in …" notes.
_HOMES = {
    "hostname": "the server block", "networks": "the server block", "tls": "the server block",
    "backend": "the server block", "message_size_limit": "the server block",
    "mail_location": "the server block", "vmail": "the server block",
    "recipient_delimiter": "the server block", "relay_host": "the server block",
    "filters": "the server block", "own_domains_from_outside": "the filters block", "also": "a domain block", "catch_all": "a domain block",
    "plus_addressing": "a domain block", "limits": "a domain block", "mailbox": "a domain block",
    "alias": "a domain block", "list": "a domain block", "password": "a mailbox block",
    "aliases": "a mailbox block", "forward": "a mailbox block", "keep_copy": "a mailbox block",
    "send_only": "a mailbox block", "send_as": "a mailbox block", "auto_reply": "a mailbox block",
    "members": "a list block", "post": "a list block", "announcer": "a list block",
    "require_auth": "a list block", "server": "the top level of a file",
    "domain": "the top level of a file", "import": "the top level of a file",
}


class Lowerer(ServerLowering):
    """Lowers whole files: the top level and domains here, the server block in server.py."""

    def __init__(self, base_dirs: dict[str, str], trees: tuple[str, ...]):
        self.diagnostics: list[Diagnostic] = []
        self.base_dirs = base_dirs  # file -> directory, for password_file paths
        self.trees = trees  # where password files may be read from (loader.allowed_roots)
        self.delimiter = "+"
        self.sieve = SieveLowerer(self)

    def error(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    # ---------------------------------------------------------------- helpers

    def typed(self, value: Value, parse: Callable, *args):
        try:
            return parse(value.text, *args)
        except values.Invalid as problem:
            self.error(errors.invalid_value(value.span, problem.message, problem.help))
            return FAILED

    def one(self, entry: Entry, parse: Callable, expected: str, *args):
        """The single value of `entry`, parsed; FAILED after reporting a problem."""
        if len(entry.values) != 1:
            self.error(errors.wrong_values(entry.span, entry.key, expected))
            return FAILED
        return self.typed(entry.values[0], parse, *args)

    def many(self, entry: Entry, parse: Callable, expected: str, *args) -> list:
        if not entry.values:
            self.error(errors.wrong_values(entry.span, entry.key, expected))
            return []
        parsed = [self.typed(v, parse, *args) for v in entry.values]
        return [p for p in parsed if p is not FAILED]

    def store(self, got: dict, key: str, parse: Callable, expected: str, *args) -> Callable:
        """A handler that parses a statement's single value into got[key] (if valid)."""
        def handle(entry: Entry) -> None:
            result = self.one(entry, parse, expected, *args)
            if result is not FAILED:
                got[key] = result
        return handle

    def flag(self, entry: Entry) -> bool:
        if not entry.values:
            return True
        result = self.one(entry, values.boolean, "no value, or yes or no")
        return result if result is not FAILED else False

    def ref(self, value: Value, domain: str | None, allow_external: bool = False) -> model.Ref | None:
        words = [w.value for w in value.words]
        external = False
        if allow_external and len(words) == 2 and words[0] == "external":
            external, words = True, words[1:]
        if len(words) != 1:
            self.error(errors.invalid_value(
                value.span, f"`{value.text}` is not an address",
                "separate list items with commas" + (
                    "; mark an outside address as `external bob@example.org`" if allow_external else "")))
            return None
        try:
            address, bare = values.address(words[0], domain)
        except values.Invalid as problem:
            self.error(errors.invalid_value(value.span, problem.message, problem.help))
            return None
        return model.Ref(address, bare, external, value.span)

    def refs(self, entry: Entry, domain: str | None, allow_external: bool = False,
             items: tuple[Value, ...] | None = None) -> tuple[model.Ref, ...]:
        items = entry.values if items is None else items
        if not items:
            self.error(errors.wrong_values(entry.span, entry.key, "one or more addresses"))
        found = (self.ref(v, domain, allow_external) for v in items)
        return tuple(r for r in found if r is not None)

    def settings(self, entry: Entry, block: str, handlers: dict[str, Callable],
                 repeatable: frozenset = frozenset(), blocks: frozenset = frozenset(),
                 sieve: Callable | None = None, context: tuple = ()) -> None:
        """Dispatch each statement in `entry`'s body to its handler: handler(node, *context)."""
        seen: dict[str, Span] = {}
        for node in entry.body or ():
            if isinstance(node, SieveNode):
                if sieve is None:
                    self.error(errors.sieve_outside_mailbox(node.span))
                else:
                    sieve(node, *context)
                continue
            handler = handlers.get(node.key)
            if handler is None:
                home = _HOMES.get(node.key)
                self.error(errors.unknown_keyword(node.key_span, node.key, block, list(handlers),
                                                  home if home and home != block else None))
                continue
            if node.key not in repeatable:
                if node.key in seen:
                    self.error(errors.set_twice(node.key_span, node.key, seen[node.key]))
                    continue
                seen[node.key] = node.key_span
            if node.targets is not None and node.key != "alias":
                self.error(errors.unexpected_part(node.span, node.key, "`->`", f"{node.key} value"))
                continue
            if node.body is not None and node.key not in blocks:
                self.error(errors.unexpected_part(node.span, node.key, "a `{ }` block",
                                                  f"{node.key} value"))
                continue
            handler(node, *context)

    def block_body(self, entry: Entry, example: str) -> bool:
        if entry.body is None:
            self.error(errors.missing_part(entry.span, entry.key, "a `{ }` block", example))
            return False
        return True

    # ---------------------------------------------------------------- spec

    def lower(self, files: list[tuple[str, tuple]], name: str) -> model.Spec | None:
        servers, domains = [], []
        for file, nodes in files:
            for node in nodes:
                if isinstance(node, SieveNode):
                    self.error(errors.sieve_outside_mailbox(node.span))
                elif node.key == "server":
                    servers.append(node)
                elif node.key == "domain":
                    domains.append(node)
                elif node.key != "import":
                    home = _HOMES.get(node.key)
                    self.error(errors.unknown_keyword(node.key_span, node.key, "the top level",
                                                      ["server", "domain", "import"], home))
        for extra in servers[1:]:
            self.error(errors.second_server(extra.key_span, servers[0].key_span))
        if not servers:
            file = files[0][0] if files else name
            self.error(errors.missing_server(Span(file, 0, 0)))
            return None
        server = self.server(servers[0])
        lowered = [self.domain(d) for d in domains]
        if server is None:
            return None
        found = tuple(sorted((d for d in lowered if d is not None), key=lambda d: d.name))
        return model.Spec(name=name, server=server, domains=found)

    # ---------------------------------------------------------------- domains

    def domain(self, entry: Entry) -> model.Domain | None:
        name = self.one(entry, values.domain, "a domain name")
        if name is FAILED or not self.block_body(entry, f"domain {entry.values[0].text} {{ … }}"):
            return None
        got: dict = {"also": [], "mailboxes": [], "aliases": [], "lists": []}

        def also(node):
            for value in node.values or ():
                parsed = self.typed(value, values.domain)
                if parsed is not FAILED:
                    got["also"].append(model.DomainName(parsed, value.span))
            if not node.values:
                self.error(errors.wrong_values(node.span, "also", "one or more domain names"))

        def catch_all(node):
            found = self.refs(node, name)
            if len(found) > 1:
                self.error(errors.wrong_values(node.span, "catch_all", "one address"))
            elif found:
                got["catch_all"] = found[0]

        def plus(node):
            got["plus_addressing"] = self.flag(node)

        self.settings(entry, "a domain block", {
            "also": also,
            "catch_all": catch_all,
            "plus_addressing": plus,
            "limits": lambda node: got.__setitem__("limits", self.limits(node)),
            "mailbox": lambda node: got["mailboxes"].append(self.mailbox(node, name)),
            "alias": lambda node: got["aliases"].append(self.alias(node, name)),
            "list": lambda node: got["lists"].append(self.mailing_list(node, name)),
        }, repeatable=frozenset({"also", "mailbox", "alias", "list"}),
            blocks=frozenset({"limits", "mailbox", "list"}))
        for key in ("mailboxes", "aliases", "lists"):
            got[key] = tuple(sorted((x for x in got[key] if x is not None), key=lambda x: x.local))
        got["also"] = tuple(sorted(got["also"], key=lambda d: d.name))
        return model.Domain(name=name, span=entry.span, **got)

    def limits(self, entry: Entry) -> model.Limits:
        got: dict = {}
        if not self.block_body(entry, "limits { mailboxes 50; quota 10 GiB; message_size 25 MiB }"):
            return model.Limits()

        def put(key, parse, expected, *args):
            return self.store(got, key, parse, expected, *args)

        self.settings(entry, "a limits block", {
            "mailboxes": put("mailboxes", values.integer, "a whole number"),
            "quota": put("quota", values.limit_size, "a size like `10 GiB`"),
            "message_size": put("message_size", values.limit_size, "a size like `25 MiB`"),
        })
        return model.Limits(**got)

    def declared_local(self, entry: Entry, example: str) -> str | None:
        if len(entry.values) != 1 or len(entry.values[0].words) != 1:
            self.error(errors.wrong_values(entry.span, entry.key, "one name, like " + example))
            return None
        local = self.typed(entry.values[0], values.local_part, self.delimiter)
        return None if local is FAILED else local

    def mailbox(self, entry: Entry, domain: str) -> model.Mailbox | None:
        local = self.declared_local(entry, "`mailbox alice { … }`")
        if local is None or not self.block_body(entry, f"mailbox {local} {{ password \"…\" }}"):
            return None
        got: dict = {"sieve": []}
        # The handler table is built once: this runs for every mailbox of the spec.
        self.settings(entry, "a mailbox block", self.mailbox_handlers, blocks=frozenset({"auto_reply"}),
                      sieve=self.mailbox_sieve, context=(got, domain))
        if "password" in got and got["password"] is None:
            del got["password"]
        if got.get("auto_reply") is None:
            got.pop("auto_reply", None)
        got["sieve"] = tuple(got["sieve"])
        return model.Mailbox(local=local, span=entry.span, **got)

    @functools.cached_property
    def mailbox_handlers(self) -> dict[str, Callable]:
        """Handlers for the statements of a mailbox block: (node, got, domain) -> None."""
        def put(key, parse, expected):
            def handle(node, got, domain):
                result = self.one(node, parse, expected)
                if result is not FAILED:
                    got[key] = result
            return handle

        def setter(key, lower):
            return lambda node, got, domain: got.__setitem__(key, lower(node, domain))

        return {
            "password": self.mailbox_password,
            "password_file": self.mailbox_password_file,
            "quota": put("quota", values.limit_size, "a size like `2 GiB`"),
            "aliases": setter("aliases", self.refs),
            "forward": setter("forwards", self.refs),
            "keep_copy": setter("keep_copy", lambda node, domain: self.flag(node)),
            "send_only": setter("send_only", lambda node, domain: self.flag(node)),
            "send_as": setter("send_as", lambda node, domain: self.refs(node, domain, True)),
            "auto_reply": setter("auto_reply", lambda node, domain: self.auto_reply(node)),
        }

    def mailbox_sieve(self, node: SieveNode, got: dict, domain: str) -> None:
        got["sieve"].extend(self.sieve.block(node, domain))

    def mailbox_password(self, node: Entry, got: dict, domain: str) -> None:
        result = self.one(node, lambda text: text, "one quoted hash")
        if result is not FAILED:
            got["password"] = self.password(node.values[0].span, result)

    def mailbox_password_file(self, node: Entry, got: dict, domain: str) -> None:
        path = self.one(node, file_path, "a file path")
        if path is FAILED:
            return
        full = os.path.join(self.base_dirs.get(node.span.file, "."), path)
        if not within(full, self.trees):
            self.error(errors.password_file_outside(node.values[0].span, path))
            return
        try:
            text = read_text(full, MAX_PASSWORD_BYTES).strip()
        except OSError as error:
            self.error(errors.password_file(node.values[0].span, path, error.strerror.lower()))
            return
        found = self.password(node.values[0].span, text)
        if found is not None:
            got["password"] = attrs.evolve(found, file=path)

    def password(self, span: Span, text: str) -> model.Password | None:
        try:
            found = values.password(text)
        except values.Invalid as problem:
            self.error(errors.plaintext_password(span, problem.message, problem.help))
            return None
        weakness = values.weak_hash(found)
        if weakness is not None:
            self.error(errors.weak_hash(span, found.scheme, weakness))
        return found

    def auto_reply(self, entry: Entry) -> model.AutoReply | None:
        example = 'auto_reply { subject "Away"; body "Back on Monday."; until 2026-12-31 }'
        if not self.block_body(entry, example):
            return None
        got: dict = {}

        def put(key, parse, expected, *args):
            return self.store(got, key, parse, expected, *args)

        self.settings(entry, "an auto_reply block", {
            "subject": put("subject", one_line, "one quoted string"),
            "body": put("body", any_text, "one quoted string"),
            "until": put("until", values.date, "a date like 2026-12-31"),
            "days": put("days", values.integer, "a number of days", 1, 365),
        })
        missing = [k for k in ("subject", "body") if k not in got]
        if missing:
            if not any(isinstance(n, Entry) and n.key in missing for n in entry.body):
                self.error(errors.missing_setting(entry.key_span, "auto_reply", missing[0],
                                                  f'{missing[0]} "…"'))
            return None
        return model.AutoReply(span=entry.span, **got)

    def alias(self, entry: Entry, domain: str) -> model.Alias | None:
        local = self.declared_local(entry, "`alias sales -> alice, bob`")
        if local is None:
            return None
        if entry.targets is None:
            self.error(errors.missing_part(entry.span, "alias", "targets after `->`",
                                           f"alias {local} -> alice, bob@example.net"))
            return None
        targets = self.refs(entry, domain, items=entry.targets)
        return model.Alias(local, targets, entry.span) if targets else None

    def mailing_list(self, entry: Entry, domain: str) -> model.MailingList | None:
        local = self.declared_local(entry, "`list team { members alice, bob }`")
        if local is None or not self.block_body(entry, f"list {local} {{ members alice, bob }}"):
            return None
        got: dict = {}

        def announcer(node):
            found = self.refs(node, domain)
            if len(found) == 1:
                got["announcer"] = found[0]
            elif found:
                self.error(errors.wrong_values(node.span, "announcer", "one address"))

        self.settings(entry, "a list block", {
            "members": lambda node: got.__setitem__("members", self.refs(node, domain)),
            "post": lambda node: got.__setitem__("post", self.one(node, post, "anyone, members or announcer")),
            "announcer": announcer,
            "require_auth": lambda node: got.__setitem__("require_auth", self.flag(node)),
        })
        if got.get("post") is FAILED:
            del got["post"]
        if not got.get("members"):
            if not any(isinstance(n, Entry) and n.key == "members" for n in entry.body):
                self.error(errors.missing_setting(entry.key_span, f"list `{local}`", "members",
                                                  "members alice, bob@example.net"))
            return None
        return model.MailingList(local=local, span=entry.span, **got)
