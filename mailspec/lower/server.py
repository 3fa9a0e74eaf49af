"""Lowering of the server block: settings, TLS, vmail, the backend and the filters."""

from __future__ import annotations

from collections.abc import Callable

from mailspec import model
from mailspec.lower import errors, values
from mailspec.lower.parsers import (FAILED, backend_kind, daemon_path, delimiter, mail_location,
                                    relay_host, system_name)
from mailspec.syntax import Entry


WIDEST_IPV4, WIDEST_IPV6 = 8, 32  # trusted networks wider than these need `unsafe`


class ServerLowering:
    """The server-block half of Lowerer (mailspec/lower/lower.py), which it is mixed into."""

    def server(self, entry: Entry) -> model.Server | None:
        if entry.values:
            self.error(errors.unexpected_part(entry.values[0].span, "server", "a name",
                                              "server { hostname mail.example.com }"))
        if not self.block_body(entry, "server { hostname mail.example.com }"):
            return None
        got: dict = {}

        def setter(key: str, parse: Callable, expected: str):
            return self.store(got, key, parse, expected)

        def networks(node):
            got["networks"] = tuple(self.networks(node))

        def tls(node):
            if self.block_body(node, 'tls { cert "/etc/ssl/…pem"; key "/etc/ssl/…key" }'):
                parts: dict = {}
                self.settings(node, "a tls block", {
                    "cert": lambda n: parts.__setitem__("cert", self.one(n, daemon_path, "a file path")),
                    "key": lambda n: parts.__setitem__("key", self.one(n, daemon_path, "a file path"))})
                if "key" in parts and "cert" not in parts:
                    self.error(errors.key_without_cert(node.span))
                got["tls"] = model.Tls(**{k: v for k, v in parts.items() if v is not FAILED})

        def vmail(node):
            if self.block_body(node, "vmail { user vmail; uid 5000; gid 5000 }"):
                parts: dict = {}
                self.settings(node, "a vmail block", {
                    "user": lambda n: parts.__setitem__("user", self.one(n, system_name, "a user name")),
                    "uid": lambda n: parts.__setitem__("uid", self.one(n, values.integer, "a number", 1)),
                    "gid": lambda n: parts.__setitem__("gid", self.one(n, values.integer, "a number", 1))})
                got["vmail"] = model.Vmail(**{k: v for k, v in parts.items() if v is not FAILED})

        got["backend"] = model.Backend()
        self.settings(entry, "the server block", {
            "hostname": setter("hostname", values.hostname, "a host name"),
            "networks": networks,
            "tls": tls,
            "backend": lambda node: got.__setitem__("backend", self.backend(node)),
            "message_size_limit": setter("message_size_limit", values.limit_size, "a size like `25 MiB`"),
            "mail_location": setter("mail_location", mail_location, "a location string"),
            "vmail": vmail,
            "recipient_delimiter": setter("recipient_delimiter", delimiter, "one character"),
            "relay_host": setter("relay_host", relay_host, "a host like `[smtp.example.com]:587`"),
            "filters": lambda node: got.__setitem__("filters", self.filters(node)),
        }, blocks=frozenset({"tls", "vmail", "backend", "filters"}))
        if "hostname" not in got:
            if not any(isinstance(n, Entry) and n.key == "hostname" for n in entry.body):
                self.error(errors.missing_setting(entry.key_span, "the server block", "hostname",
                                                  "hostname mail.example.com"))
            return None
        self.delimiter = got.get("recipient_delimiter", "+")
        return model.Server(span=entry.span, **got)

    def networks(self, entry: Entry) -> list[str]:
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
        return found

    def backend(self, entry: Entry) -> model.Backend:
        kind = self.one(entry, backend_kind, "`files` or `mysql`")
        if kind is FAILED:
            return model.Backend()
        if kind is model.BackendKind.FILES:
            if entry.body is not None:
                self.error(errors.unexpected_part(entry.span, "backend files", "a `{ }` block",
                                                  "backend files"))
            return model.Backend(span=entry.span)
        parts: dict = {}
        if entry.body is not None:
            def put(key, parse, expected, *args):
                return self.store(parts, key, parse, expected, *args)
            self.settings(entry, "a mysql backend block", {
                "host": put("host", values.hostname, "a host name"),
                "port": put("port", values.integer, "a port number", 1, 65535),
                "socket": put("socket", daemon_path, "a socket path"),
                "database": put("database", system_name, "a database name"),
                "user": put("user", system_name, "a user name"),
                "password_file": put("password_file", daemon_path, "a file path"),
            })
        return model.Backend(kind=kind, span=entry.span, **parts)

    def filters(self, entry: Entry) -> model.Filters:
        got: dict = {}
        if not self.block_body(entry, "filters { reject_sender spam@bad.example }"):
            return model.Filters()

        def address_or_domain(text: str) -> str:
            if "@" in text:
                return str(values.address(text, None)[0])
            return values.domain(text)

        def listed(key):
            return lambda n: got.__setitem__(key, tuple(sorted(set(self.many(
                n, address_or_domain, "addresses or domains")))))

        def one(key, parse, expected):
            return self.store(got, key, parse, expected)

        self.settings(entry, "the filters block", {
            "reject_sender": listed("reject_senders"),
            "reject_recipient": listed("reject_recipients"),
            "spam_folder": one("spam_folder", values.folder, "a folder name"),
            "spam_score": one("spam_score", values.integer, "a whole number"),
            "own_domains_from_outside": lambda n: got.__setitem__("own_domains_from_outside",
                                                                  self.flag(n)),
        })
        return model.Filters(**got)
