"""Lowering: syntax entries -> typed model. Checks each statement on its own; the checker
does everything that needs more than one statement.

Every block is walked against its schema in mailspec/language.py: the walk reports
unknown, repeated and misshapen statements and reads each value as its keyword says.
The methods below are the keywords whose schema says `Custom`.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
from collections.abc import Callable

import attrs

from mailspec import language, model
from mailspec.diagnostics import Diagnostic
from mailspec.language import Block, Custom, Flag, Keyword, Many, Nested, One, Refs
from mailspec.lower import errors, parsers, values
from mailspec.lower.loader import MAX_PASSWORD_BYTES, read_text, within
from mailspec.lower.parsers import FAILED, backend_kind, file_path
from mailspec.lower.parsers import public_address as parse_public_address
from mailspec.lower.sieve import SieveLowerer
from mailspec.source import Span
from mailspec.syntax import Entry, SieveNode, Text, Value

WIDEST_IPV4, WIDEST_IPV6 = 8, 32  # trusted networks wider than these need `unsafe`
DEFAULT_DELIMITER = attrs.fields(model.Server).recipient_delimiter.default

Handler = Callable[[Entry, "str | None"], object]
_KEYWORD_LIKE = re.compile(r"[a-z_][a-z0-9_]*")
_FLAG, _REFS = Flag(), Refs()


class Lowerer:
    def __init__(self, trees: tuple[str, ...]):
        self.diagnostics: list[Diagnostic] = []
        self.trees = trees  # where password files may be read from (loader.allowed_roots)
        self.texts: dict[str, str] = {}  # the text of the file being lowered, by name (for run_on)
        self.delimiter = DEFAULT_DELIMITER
        self.read_other_files = False  # a password file: the file's unit is not cached
        self.sieve = SieveLowerer(self)
        self._handlers: dict[str, dict[str, tuple[Keyword, Handler]]] = {}

    def error(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    # ---------------------------------------------------------------- values

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

    def many(self, entry: Entry, takes: Many) -> tuple:
        if not entry.values:
            self.error(errors.wrong_values(entry.span, entry.key, takes.expected))
        found = []
        for value in entry.values:
            parsed = self.typed(value, takes.parse)
            if parsed is not FAILED:
                found.append(takes.named(parsed, value.span) if takes.named else parsed)
        if takes.unique:
            return tuple(sorted(set(found)))
        return tuple(found)

    def flag(self, entry: Entry) -> bool:
        if not entry.values:
            return True
        result = self.one(entry, values.boolean, _FLAG.expected)
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

    def refs(self, entry: Entry, domain: str | None, takes: Refs = _REFS,
             items: tuple[Value, ...] | None = None):
        """The addresses of `entry` (or of `items`); with `takes.single`, the one address."""
        items = entry.values if items is None else items
        if not items:
            self.error(errors.wrong_values(entry.span, entry.key, _REFS.expected))
        found = (self.ref(v, domain, takes.external) for v in items)
        refs = tuple(r for r in found if r is not None)
        if not takes.single:
            return refs
        if len(refs) > 1:
            self.error(errors.wrong_values(entry.span, entry.key, takes.expected))
        return refs[0] if len(refs) == 1 else None

    # ---------------------------------------------------------------- the walk

    def handlers(self, block: Block) -> dict[str, tuple[Keyword, Handler]]:
        """keyword -> (its schema, how to lower its value): built once per block."""
        found = self._handlers.get(block.name)
        if found is None:
            found = self._handlers[block.name] = {k.name: (k, self.handler(k)) for k in block.keywords}
        return found

    def handler(self, keyword: Keyword) -> Handler:
        takes = keyword.takes
        if isinstance(takes, One):
            return lambda node, domain: self.one(node, takes.parse, takes.expected, *takes.args)
        if isinstance(takes, Many):
            return lambda node, domain: self.many(node, takes)
        if isinstance(takes, Flag):
            return lambda node, domain: self.flag(node)
        if isinstance(takes, Refs):
            return lambda node, domain: self.refs(node, domain, takes)
        if isinstance(takes, Nested):
            return lambda node, domain: self.nested(node, language.BLOCKS[keyword.block], domain)
        assert isinstance(takes, Custom)
        return getattr(self, takes.method)

    def walk(self, entry: Entry, block: Block, domain: str | None, label: str = "") -> dict | None:
        """The model fields that `entry`'s body sets, by `block`'s schema; None when a
        required setting is missing (`label` names the block in that message)."""
        got: dict = {}
        seen: dict[str, Span] = {}
        handlers = self.handlers(block)
        for node in entry.body or ():
            if isinstance(node, SieveNode):
                if block.sieve:
                    got.setdefault("sieve", []).extend(self.sieve.block(node, domain))
                else:
                    self.error(errors.sieve_outside_mailbox(node.span))
                continue
            found = handlers.get(node.key)
            if found is None:
                self.error(errors.unknown_keyword(node.key_span, node.key, block.name, list(handlers),
                                                  language.homes().get(node.key, ())))
                continue
            keyword, lower = found
            if not keyword.repeats:
                if node.key in seen:
                    self.error(errors.set_twice(node.key_span, node.key, seen[node.key]))
                    continue
                seen[node.key] = node.key_span
            if node.targets is not None and not keyword.arrow:
                self.error(errors.unexpected_part(node.span, node.key, "`->`", f"{node.key} value"))
                continue
            if node.body is not None and keyword.block is None:
                self.error(errors.unexpected_part(node.span, node.key, "a `{ }` block", f"{node.key} value"))
                continue
            before = len(self.diagnostics)
            value = lower(node, domain)
            if len(self.diagnostics) > before and (run_on := self.run_on(node)) is not None:
                # The value took in a misspelt statement below it: name that, not the value.
                self.diagnostics[before:] = [errors.run_on_statement(
                    run_on.span, run_on.value, block.name, list(handlers), node.key, self.line_of(node.key_span))]
                continue
            if value is FAILED or value is None:
                continue
            if not keyword.repeats:
                got[keyword.field] = value
            elif isinstance(keyword.takes, Many):
                got.setdefault(keyword.field, []).extend(value)
            else:
                got.setdefault(keyword.field, []).append(value)
        for keyword in block.repeating:
            if keyword.field in got:
                got[keyword.field] = tuple(sorted(got[keyword.field], key=keyword.order))
        if "sieve" in got:
            got["sieve"] = tuple(got["sieve"])
        return got if self.has_required(entry, block, got, label or block.name) else None

    def run_on(self, entry: Entry) -> Text | None:
        """The first word of a later line inside one of `entry`'s values, when it looks
        like a keyword: a statement ends at a line break only before a keyword, so a
        misspelt one is read as more of the value above it."""
        text = self.texts.get(entry.span.file)
        if text is None or entry.body is not None:
            return None
        for value in (*entry.values, *(entry.targets or ())):
            for previous, word in itertools.pairwise(value.words):
                if "\n" in text[previous.span.end:word.span.start]:
                    return word if not word.quoted and _KEYWORD_LIKE.fullmatch(word.value) else None
        return None

    def line_of(self, span: Span) -> int:
        return self.texts[span.file].count("\n", 0, span.start) + 1

    def has_required(self, entry: Entry, block: Block, got: dict, label: str) -> bool:
        # An empty list of members is as missing as none.
        missing = [block.by_name[k] for k in block.required if got.get(block.by_name[k].field, ()) == ()]
        for keyword in missing:  # a statement that is there but wrong has had its message
            if not any(isinstance(n, Entry) and n.key == keyword.name for n in entry.body or ()):
                self.error(errors.missing_setting(entry.key_span, label, keyword.name, keyword.example))
        return not missing

    def block_body(self, entry: Entry, example: str) -> bool:
        if entry.body is None:
            self.error(errors.missing_part(entry.span, entry.key, "a `{ }` block", example))
            return False
        return True

    def nested(self, entry: Entry, block: Block, domain: str | None, label: str = "",
               example: str = "", **fields):
        """A block's model from its body by the generic walk; `fields` come from its head."""
        if not self.block_body(entry, example or block.example):
            return None
        got = self.walk(entry, block, domain, label)
        if got is None:
            return None
        if block.spanned:
            fields["span"] = entry.span
        return block.model(**fields, **got)

    # ---------------------------------------------------------------- spec

    def lower_file(self, nodes: tuple, file: str, text: str) -> dict:
        """One file's statements: its domains lowered, its imports and server blocks kept
        for the loader and `assemble` (the fields of a lower.units.Unit)."""
        self.diagnostics, self.read_other_files, self.texts = [], False, {file: text}
        found = {"imports": [], "servers": [], "top": [], "domains": []}
        for node in nodes:
            if isinstance(node, SieveNode):
                found["top"].append(errors.sieve_outside_mailbox(node.span))
            elif node.key in ("server", "import"):
                found[f"{node.key}s"].append(node)
            elif node.key == "domain":
                domain = self.domain(node, None)
                if domain is not None:
                    found["domains"].append(domain)
            else:
                found["top"].append(errors.unknown_keyword(
                    node.key_span, node.key, language.TOP.name, list(language.TOP.by_name),
                    language.homes().get(node.key, ())))
        found = {field: tuple(items) for field, items in found.items()}
        return dict(found, diagnostics=tuple(self.diagnostics), read_other_files=self.read_other_files)

    def assemble(self, units: list, first_file: str, name: str, texts: dict[str, str]) -> model.Spec | None:
        """The spec from every file's unit, in load order; the first server block is
        lowered here, and its delimiter must be the one the units were lowered with
        (pipeline.load_and_lower checks it). `texts`: every file's text, by name."""
        self.diagnostics = [d for unit in units for d in unit.top]
        self.texts = texts
        self.delimiter = DEFAULT_DELIMITER  # unless the server block lowers and sets another
        servers = [node for unit in units for node in unit.servers]
        for extra in servers[1:]:
            self.error(errors.second_server(extra.key_span, servers[0].key_span))
        if not servers:
            self.error(errors.missing_server(Span(first_file, 0, 0)))
            return None
        server = self.server(servers[0], None)
        self.diagnostics += [d for unit in units for d in unit.diagnostics]
        if server is None:
            return None
        found = tuple(sorted((d for unit in units for d in unit.domains), key=lambda d: d.name))
        return model.Spec(name=name, server=server, domains=found)

    def imported(self, entry: Entry, domain: None) -> None:
        """`import`: the loader has read the file already."""

    # ---------------------------------------------------------------- the server block

    def server(self, entry: Entry, domain: None) -> model.Server | None:
        if entry.values:
            self.error(errors.unexpected_part(entry.values[0].span, "server", "a name",
                                              language.SERVER.example))
        found = self.nested(entry, language.SERVER, None)
        if found is not None:
            self.delimiter = found.recipient_delimiter
        return found

    def networks(self, entry: Entry, domain: None) -> tuple[str, ...]:
        """Trusted networks: never with host bits, and one wider than a /8 (IPv6: a /32)
        only when written `unsafe NETWORK`, with a warning: mynetworks may relay."""
        if not entry.values:
            self.error(errors.wrong_values(entry.span, entry.key, "one or more networks"))
        found = []
        for value in entry.values:
            words = [w.value for w in value.words]
            unsafe = len(words) == 2 and words[0] == "unsafe"
            net = self.typed(value._replace(words=value.words[1:], span=value.words[1].span) if unsafe else value,
                             values.network)
            if net is FAILED:
                continue
            wide = net.prefixlen < (WIDEST_IPV4 if net.version == 4 else WIDEST_IPV6)
            if wide and not unsafe:
                self.error(errors.wide_network(value.span, str(net), net.num_addresses))
                continue
            if wide:
                self.error(errors.unsafe_network(value.span, str(net)))
            found.append(values.postfix_network(net))
        return tuple(found)

    def public_addresses(self, entry: Entry, domain: None) -> tuple[str, ...]:
        """The server's own addresses; one the internet cannot reach gets a warning."""
        if not entry.values:
            self.error(errors.wrong_values(entry.span, entry.key, "one or more IP addresses"))
        found = []
        for value in entry.values:
            address = self.typed(value, parse_public_address)
            if address is FAILED:
                continue
            if not ipaddress.ip_address(address).is_global:
                self.error(errors.address_not_public(value.span, address))
            found.append(address)
        return tuple(sorted(set(found), key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a))))

    def relay(self, entry: Entry, domain: None) -> model.Relay | None:
        """`relay_host HOST`, and with a `{ }` block the login it needs there."""
        host = self.one(entry, parsers.relay_host, "a host like `[smtp.example.com]:587`")
        if host is FAILED:
            return None
        if entry.body is None:
            return model.Relay(host, span=entry.span)
        found = self.nested(entry, language.RELAY, None, host=host)
        if found is not None and found.tls_name is None and parsers.ip_literal(found.name):
            self.error(errors.relay_address_without_name(entry.span, found.host))
        return found

    def tls(self, entry: Entry, domain: None) -> model.Tls | None:
        found = self.nested(entry, language.TLS, None)
        written = {n.key: n for n in entry.body or () if isinstance(n, Entry)}
        if found is None:
            return None
        if found.acme is None and "key" in written and "cert" not in written:
            self.error(errors.key_without_cert(entry.span))
        if found.acme is not None:
            for name in ("cert", "key"):
                if name in written:
                    self.error(errors.acme_with_files(written[name].span, name, found.acme.span))
            return attrs.evolve(found, cert=model.ACME_CERT, key=model.ACME_KEY)
        return found

    def backend(self, entry: Entry, domain: None) -> model.Backend | None:
        kind = self.one(entry, backend_kind, "`files` or `mysql`")
        if kind is FAILED:
            return None
        if kind is model.BackendKind.FILES:
            if entry.body is not None:
                self.error(errors.unexpected_part(entry.span, "backend files", "a `{ }` block",
                                                  "backend files"))
            return model.Backend(span=entry.span)
        return model.Backend(kind=kind, span=entry.span, **self.walk(entry, language.MYSQL, None))

    # ---------------------------------------------------------------- domains

    def dkim(self, entry: Entry, domain: str) -> model.Dkim | None:
        """`dkim no` turns signing off; `dkim { … }` sets its selectors and key type."""
        if entry.body is None:
            sign = self.one(entry, values.boolean, "`no`, or a `{ }` block")
            if sign is True:
                self.error(errors.invalid_value(entry.values[0].span, "dkim is on by default",
                                                "leave it out, or write `dkim { selector …; key … }`"))
            return None if sign in (FAILED, True) else model.Dkim(sign=False, span=entry.span)
        if entry.values:
            self.error(errors.unexpected_part(entry.values[0].span, "dkim", "a value before the block",
                                              language.DKIM.example))
        found = self.nested(entry, language.DKIM, domain)
        if found is not None and found.standby == found.selector:
            self.error(errors.invalid_value(entry.span, f"the standby selector is `{found.selector}`, "
                                            "the one that signs", "give the standby key a selector of its own"))
        return found

    def domain(self, entry: Entry, domain: None) -> model.Domain | None:
        name = self.one(entry, values.domain, "a domain name")
        if name is FAILED:
            return None
        return self.nested(entry, language.DOMAIN, name, example=f"domain {entry.values[0].text} {{ … }}",
                           name=name)

    def declared_local(self, entry: Entry, example: str) -> str | None:
        if len(entry.values) != 1 or len(entry.values[0].words) != 1:
            self.error(errors.wrong_values(entry.span, entry.key, "one name, like " + example))
            return None
        local = self.typed(entry.values[0], values.local_part, self.delimiter)
        return None if local is FAILED else local

    def mailbox(self, entry: Entry, domain: str) -> model.Mailbox | None:
        local = self.declared_local(entry, "`mailbox alice { … }`")
        if local is None:
            return None
        return self.nested(entry, language.MAILBOX, domain, example=f'mailbox {local} {{ password "…" }}',
                           local=local)

    def mailing_list(self, entry: Entry, domain: str) -> model.MailingList | None:
        local = self.declared_local(entry, "`list team { members alice, bob }`")
        if local is None:
            return None
        return self.nested(entry, language.LIST, domain, f"list `{local}`",
                           f"list {local} {{ members alice, bob }}", local=local)

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

    # ---------------------------------------------------------------- passwords

    def mailbox_password(self, node: Entry, domain: str) -> model.Password | None:
        result = self.one(node, lambda text: text, "one quoted hash")
        return None if result is FAILED else self.password(node.values[0].span, result)

    def mailbox_password_file(self, node: Entry, domain: str) -> model.Password | None:
        path = self.one(node, file_path, "a file path")
        if path is FAILED:
            return None
        self.read_other_files = True
        full = os.path.join(os.path.dirname(node.span.file), path)
        if not within(full, self.trees):
            self.error(errors.password_file_outside(node.values[0].span, path))
            return None
        try:
            text = read_text(full, MAX_PASSWORD_BYTES).strip()
        except OSError as error:
            self.error(errors.password_file(node.values[0].span, path, error.strerror.lower()))
            return None
        found = self.password(node.values[0].span, text)
        return None if found is None else attrs.evolve(found, file=path)

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
