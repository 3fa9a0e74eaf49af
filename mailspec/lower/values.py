"""Typed values: each parser takes the text as written and returns the value or raises Invalid."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import re

import idna

from mailspec.model import Address, Password


class Invalid(Exception):
    """What is wrong with a value (`message`) and how to fix it (`help`)."""

    def __init__(self, message: str, help: str | None = None):
        super().__init__(message)
        self.message = message
        self.help = help


# ---------------------------------------------------------------- sizes and numbers

_UNITS = {
    "B": 1,
    "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4,
    "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
}
_SIZE = re.compile(r"(\d+)\s*([A-Za-z]*)")
MAX_SIZE = 1024**5  # 1 PiB: every daemon reads up to it (Postfix's limit is a 64-bit long)


def size(text: str) -> int:
    """`25 MiB`, `2GiB`, `500 KB` -> bytes."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise Invalid(f"`{text}` is not a size", "write a number and a unit, like `25 MiB`")
    number, unit = int(m.group(1)), m.group(2)
    if not unit:
        raise Invalid(f"the size `{text}` has no unit",
                      f"write `{number} B` for bytes, or use KiB, MiB, GiB")
    if unit not in _UNITS:
        folded = {u.lower(): u for u in _UNITS}.get(unit.lower())
        hint = f"did you mean `{number} {folded}`?" if folded else "units are B, KiB, MiB, GiB, TiB, KB, MB, GB, TB"
        raise Invalid(f"unknown size unit `{unit}`", hint)
    found = number * _UNITS[unit]
    if found > MAX_SIZE:
        raise Invalid(f"the size `{text}` is larger than 1 PiB", "sizes go up to `1024 TiB`")
    return found


def limit_size(text: str) -> int:
    """A size that limits something: zero is refused, never read as "unlimited"."""
    found = size(text)
    if found == 0:
        raise Invalid(f"a limit of `{text}` would refuse everything",
                      "leave the setting out for no limit of your own, or give a size like `25 MiB`")
    return found


def integer(text: str, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    if not re.fullmatch(r"\d+", text):
        raise Invalid(f"`{text}` is not a whole number", "write digits only, like `5000`")
    number = int(text)
    if not minimum <= number <= maximum:
        raise Invalid(f"{number} is out of range", f"use a number from {minimum} to {maximum}")
    return number


def date(text: str) -> datetime.date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"`{text}` is not a date", "write dates as YYYY-MM-DD, like `2026-12-31`") from None


_SECONDS = {"s": 1, "second": 1, "seconds": 1, "m": 60, "minute": 60, "minutes": 60,
            "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400,
            "w": 604800, "week": 604800, "weeks": 604800}
_DURATION = re.compile(r"(\d+)\s*([A-Za-z]*)")


def duration(text: str, minimum: int = 0, maximum: int | None = None) -> int:
    """`7d`, `1 week`, `12h` -> seconds. (`days` starts an auto_reply statement, so `7d`.)"""
    m = _DURATION.fullmatch(text.strip())
    if not m or m.group(2) not in _SECONDS:
        raise Invalid(f"`{text}` is not a duration", "write a number and a unit, like `7d`, `1 week` or `12h`")
    seconds = int(m.group(1)) * _SECONDS[m.group(2)]
    if seconds < minimum or (maximum is not None and seconds > maximum):
        raise Invalid(f"`{text}` is out of range", f"use a duration from {minimum} s to {maximum} s")
    return seconds


_TRUE = {"yes", "on", "true"}
_FALSE = {"no", "off", "false"}


def boolean(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Invalid(f"`{text}` is not yes or no", "write `yes` or `no` (or leave the value out for yes)")


# ---------------------------------------------------------------- names and addresses


# Plain letters-digits-hyphens labels without `--`: IDNA leaves them as they are (lower
# case), so they skip the idna package, which costs ~20 µs a label.
_PLAIN_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")


@functools.lru_cache(maxsize=4096)
def domain(text: str) -> str:
    """A domain name in A-label form; unicode names are converted (IDNA 2008, UTS #46)."""
    candidate = text.rstrip(".")
    if not candidate or "." not in candidate or "@" in candidate:
        raise Invalid(f"`{text}` is not a domain name", "write a full name like `example.com`")
    lowered = candidate.lower() if candidate.isascii() else ""
    if len(lowered) <= 253 and "--" not in lowered and _PLAIN_NAME.fullmatch(lowered):
        encoded = lowered
    else:
        encoded = _idna(text, candidate)
    labels = encoded.split(".")
    if labels[-1].isdigit():
        raise Invalid(f"`{text}` is an IP address, not a domain name")
    return encoded


def _idna(text: str, candidate: str) -> str:
    try:
        return idna.encode(candidate, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise Invalid(f"`{text}` is not a valid domain name: {error}",
                      "use letters, digits and hyphens between dots") from None


# RFC 5322 dot-atom, ASCII only: what Postfix and Dovecot handle without SMTPUTF8.
_LOCAL_WITH_PLUS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def local_part(text: str, delimiter: str = "+") -> str:
    """A declared local part (mailbox, alias, list): lower case, no recipient delimiter."""
    if len(text) > 64:
        raise Invalid(f"the local part `{text[:20]}…` is longer than 64 characters")
    if delimiter and delimiter in text:
        raise Invalid(f"`{text}` contains the recipient delimiter `{delimiter}`",
                      f"plus addressing gives every mailbox `name{delimiter}anything` already")
    if not _LOCAL_WITH_PLUS.fullmatch(text):
        raise Invalid(f"`{text}` is not a valid local part",
                      "use letters, digits and ! # $ % & ' * / = ? ^ _ ` { | } ~ -, with dots "
                      "between them")
    if text[0] == "#":
        _leading_hash(text)
    return text.lower()


def _leading_hash(local: str) -> None:
    raise Invalid(f"`{local}` starts with `#`",
                  "Postfix and Dovecot read a table line that starts with `#` as a comment: "
                  "choose a local part that does not")


def address(text: str, default_domain: str | None) -> tuple[Address, bool]:
    """`alice` (in `default_domain`) or `alice@example.com`; returns (address, written bare)."""
    if "@" not in text:
        if default_domain is None:
            raise Invalid(f"`{text}` is not an address", "write the whole address, like `alice@example.com`")
        if not _LOCAL_WITH_PLUS.fullmatch(text):
            raise Invalid(f"`{text}` is not a valid local part or address",
                          "use letters, digits and ! # $ % & ' * + / = ? ^ _ ` { | } ~ -, with dots "
                          "between them")
        if text[0] == "#":
            _leading_hash(text)
        return Address(text.lower(), default_domain), True
    local, _, host = text.rpartition("@")
    if not local or not _LOCAL_WITH_PLUS.fullmatch(local):
        raise Invalid(f"`{text}` is not a valid address",
                      "an address is local@domain, like `bob@example.net`")
    if local[0] == "#":
        _leading_hash(local)
    return Address(local.lower(), domain(host)), False


def network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An IPv4/IPv6 network, written without host bits (IPv6 optionally in brackets)."""
    plain = text
    if text.startswith("["):
        m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](/\d+)?", text)
        if not m:
            raise Invalid(f"`{text}` is not a network", "write `[::1]/128` or `10.0.0.0/8`")
        plain = m.group(1) + (m.group(2) or "")
    try:
        net = ipaddress.ip_network(plain, strict=False)
    except ValueError as error:
        raise Invalid(f"`{text}` is not a network: {error}", "write `10.0.0.0/8` or `[::1]/128`") from None
    host = ipaddress.ip_address(plain.split("/")[0])
    if net.network_address != host:
        raise Invalid(f"`{text}` has host bits set: it would trust all of {postfix_network(net)}",
                      f"write `{postfix_network(net)}` for the network, or "
                      f"`{postfix_network(ipaddress.ip_network(host))}` for the one host")
    return net


def postfix_network(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """A network as Postfix writes it in mynetworks (IPv6 in brackets)."""
    if net.version == 6:
        return f"[{net.network_address}]/{net.prefixlen}"
    return str(net)


def hostname(text: str) -> str:
    return domain(text)


# ---------------------------------------------------------------- passwords

_HASH_SHAPES = {
    "SHA512-CRYPT": re.compile(r"\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}"),
    "SHA256-CRYPT": re.compile(r"\$5\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{43}"),
    "BLF-CRYPT": re.compile(r"\$2[abxy]?\$\d\d\$[./0-9A-Za-z]{53}"),
    "ARGON2ID": re.compile(r"\$argon2id\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+"),
    "ARGON2I": re.compile(r"\$argon2i\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+"),
}
_PLAIN_SCHEMES = {"PLAIN", "CLEARTEXT", "PLAIN-TRUNC"}
HASH_HELP = ("store a hash, never the password: run `doveadm pw -s SHA512-CRYPT`, "
             "type the password, and write the output: password \"{SHA512-CRYPT}$6$…\"")


_SCHEME = re.compile(r"\{([A-Za-z0-9.-]+)\}(.*)", re.S)


def password(text: str) -> Password:
    m = _SCHEME.fullmatch(text)
    if not m or m.group(1).upper() in _PLAIN_SCHEMES:
        raise Invalid("plaintext passwords are not allowed", HASH_HELP)
    scheme, hashed = m.group(1).upper(), m.group(2)  # Dovecot reads scheme names in any case
    shape = _HASH_SHAPES.get(scheme)
    if shape is None:
        raise Invalid(f"unsupported password scheme `{scheme}`",
                      "use one of " + ", ".join(sorted(_HASH_SHAPES)))
    if not shape.fullmatch(hashed):
        raise Invalid(f"this is not a well-formed {scheme} hash",
                      f"paste the whole output of `doveadm pw -s {scheme}`")
    return Password(scheme, text)


def folder(text: str) -> str:
    if not text or any(c in text for c in "\r\n\0") or text.startswith("/"):
        raise Invalid(f"`{text}` is not a usable folder name", "write a name like `Junk` or `Lists/team`")
    return text


def weak_hash(found: Password) -> str | None:
    """Why the hash's cost is too low to resist cracking, or None (OWASP's minimums)."""
    text = found.hash
    if found.scheme == "BLF-CRYPT":
        cost = int(re.search(r"\$2[abxy]?\$(\d\d)\$", text).group(1))
        return f"cost {cost:02d}, below 10" if cost < 10 else None
    if found.scheme in ("SHA512-CRYPT", "SHA256-CRYPT"):
        if "$rounds=" not in text:  # the default, 5000
            return None
        rounds = re.search(r"\$rounds=(\d+)\$", text)
        return f"{rounds.group(1)} rounds, below 5000" if rounds and int(rounds.group(1)) < 5000 else None
    if found.scheme.startswith("ARGON2"):
        memory, passes = map(int, re.search(r"\$m=(\d+),t=(\d+),", text).groups())
        if memory < 19456 or passes < 2:
            return f"m={memory} KiB and t={passes}, below m=19456 and t=2"
    return None
