"""Parsers for the small typed values that only the lowering uses (paths, names,
policies…): each takes the text as written and returns the value or raises Invalid."""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable

from mailspec import model
from mailspec.lower import values

FAILED = object()  # a value whose diagnostic is already reported


def file_path(text: str) -> str:
    if not text or "\0" in text or "\n" in text:
        raise values.Invalid(f"`{text}` is not a file path")
    return text


_DAEMON_PATH = re.compile(r"/[A-Za-z0-9._@+=/-]*")


def daemon_path(text: str) -> str:
    """A path that Postfix or Dovecot reads from its own configuration: absolute, and
    only characters that none of their file formats splits or quotes (a space would
    start a new parameter in Dovecot's connect string and Postfix's `hosts`)."""
    if not _DAEMON_PATH.fullmatch(text) or "/../" in f"{text}/":
        raise values.Invalid(f"`{text}` cannot be written into the daemons' configuration",
                             "use an absolute path of letters, digits and . _ @ + = - /")
    return text


def system_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", text):
        raise values.Invalid(f"`{text}` is not a valid name", "use letters, digits, `_`, `-` and `.`")
    return text


_PER_USER = re.compile(r"%L?u|%\{user\}")
_PER_NAME = re.compile(r"%L?n|%\{username\}")
_PER_DOMAIN = re.compile(r"%L?d|%\{domain\}")


def mail_location(text: str) -> str:
    if not re.fullmatch(r"(maildir|mdbox|sdbox):[^\s]+", text):
        raise values.Invalid(f"`{text}` is not a mail location",
                             'write it as Dovecot does: "maildir:/var/mail/vhosts/%d/%n"')
    path = text.split(":")[1]
    if not (_PER_USER.search(path) or (_PER_NAME.search(path) and _PER_DOMAIN.search(path))):
        raise values.Invalid(f"`{text}` would put several users' mail in one place",
                             'give every user a directory of their own: "maildir:/var/mail/vhosts/%d/%n"')
    return text


def delimiter(text: str) -> str:
    if len(text) != 1 or text.isalnum() or text in "@.\"\\ ":
        raise values.Invalid(f"`{text}` cannot be the recipient delimiter", 'use one symbol like "+" or "-"')
    return text


def relay_login(text: str) -> str:
    """A SASL user name: one word with no `:` (the password table puts one after it)."""
    if not re.fullmatch(r"[^\s:]{1,255}", text):
        raise values.Invalid(f"`{text}` is not a user name", "write one word without `:`, like `mailer@example.net`")
    return text


def relay_host(text: str) -> str:
    m = re.fullmatch(r"(\[)?([^\[\]:]+)(\])?(?::(\d+))?", text)
    if not m or bool(m.group(1)) != bool(m.group(3)):
        raise values.Invalid(f"`{text}` is not a relay host", "write `[smtp.example.com]:587`")
    host = ip_literal(m.group(2)) if m.group(1) else None
    host = host or values.hostname(m.group(2))
    shown = f"[{host}]" if m.group(1) else host  # brackets: no MX lookup
    if m.group(4):
        shown += f":{values.integer(m.group(4), 1, 65535)}"
    return shown


def ip_literal(text: str) -> str | None:
    """An IPv4 address in brackets (`[192.0.2.1]:25`), which Postfix accepts as a relay."""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def choice(kind: type[enum.Enum], what: str) -> Callable[[str], enum.Enum]:
    """A parser for one member of the enum `kind`, written as its value."""
    def parse(text: str) -> enum.Enum:
        try:
            return kind(text)
        except ValueError:
            names = [f"`{member.value}`" for member in kind]
            raise values.Invalid(f"unknown {what} `{text}`",
                                 f"use {', '.join(names[:-1])} or {names[-1]}") from None
    return parse


backend_kind = choice(model.BackendKind, "backend")
post = choice(model.Post, "posting policy")
key_type = choice(model.KeyType, "key type")
dmarc_policy = choice(model.DmarcPolicy, "DMARC policy")
alignment = choice(model.Alignment, "alignment")
sts_mode = choice(model.StsMode, "MTA-STS mode")

_SELECTOR = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def selector(text: str) -> str:
    """A DKIM selector: one DNS label, as `<selector>._domainkey.<domain>` needs."""
    if not _SELECTOR.fullmatch(text):
        raise values.Invalid(f"`{text}` is not a DKIM selector",
                             "use one DNS label of lower-case letters, digits and `-`, like `mail2026`")
    return text


_DNS_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]")
_HTTPS_URL = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/%-]*)?")


def https_url(text: str) -> str:
    """A URL certbot is given as it is: https, and nothing an ini file would split."""
    if not _HTTPS_URL.fullmatch(text):
        raise values.Invalid(f"`{text}` is not an https:// URL", 'write it like "https://acme.example.net/directory"')
    return text


def dns_name(text: str) -> str:
    """A name as DNS has it, underscores allowed (`_spf.example.net`); ASCII only."""
    name = text.rstrip(".").lower()
    if not _DNS_NAME.fullmatch(name):
        raise values.Invalid(f"`{text}` is not a DNS name", "write a name like `_spf.example.net`")
    return name


def public_address(text: str) -> str:
    """An IPv4 or IPv6 address of the server itself (no network)."""
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise values.Invalid(f"`{text}` is not an IP address",
                             "write an address like `203.0.113.5` or `2001:db8::5`") from None


def one_line(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise values.Invalid("a subject must be one line", "remove the line breaks")
    return text


def any_text(text: str) -> str:
    if "\0" in text:
        raise values.Invalid("text must not contain NUL characters")
    return text


_DNSBL = re.compile(r"([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?:=([0-9.\[\];]+))?(?:\s+(\d+))?")


def dnsbl(text: str) -> model.Dnsbl:
    """`zone [weight]`, the zone optionally with `=answers` as Postfix filters them."""
    m = _DNSBL.fullmatch(text)
    if not m or not 1 <= int(m.group(3) or 1) <= 100:
        raise values.Invalid(f"`{text}` is not a DNS blocklist", "write a zone and a weight from 1 to 100, "
                             "like `zen.spamhaus.org=127.0.0.[2..11] 3`")
    return model.Dnsbl(m.group(1).lower(), int(m.group(3) or 1), m.group(2))


def allowed_network(text: str) -> str:
    """A network written as mynetworks takes it."""
    return values.postfix_network(values.network(text))
