"""The language, described once as data: every block, and for each of its keywords the
value it takes, whether it repeats, which block its `{ }` holds, the model field it
fills, an example and a one-line description. Defaults are the model's own.

Read from here: the lowering's generic walk (lower/lower.py), the grammar's statement
keywords (syntax/grammar.py fills them into grammar/mailspec.lark), and "not allowed
here", "did you mean" and "belongs in" (lower/errors.py). `fmt` needs nothing from it:
it prints the syntax tree. The examples and descriptions are there for a generated
reference. tests/test_language.py holds the schema to the model and the grammar, and
checks a spec made of every example.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

import attrs

from mailspec import model
from mailspec.lower import parsers, values

# ---------------------------------------------------------------- what a keyword takes

@attrs.frozen
class One:
    """One value, read by `parse(text, *args)`."""

    parse: Callable
    expected: str
    args: tuple = ()


@attrs.frozen
class Many:
    """One or more values, each read by `parse`; kept sorted (and without repeats when
    `unique`). `named` wraps each in a spanned record, as domain aliases are."""

    parse: Callable
    expected: str
    unique: bool = True
    named: type | None = None


@attrs.frozen
class Flag:
    """No value (yes), or `yes`/`no`."""

    expected: str = "no value, or yes or no"


@attrs.frozen
class Refs:
    """Addresses; `single` takes exactly one, `external` allows `external a@b.org`."""

    expected: str = "one or more addresses"
    single: bool = False
    external: bool = False


@attrs.frozen
class Nested:
    """A `{ }` block of its own, lowered by the generic walk into the block's model."""

    expected: str = "a `{ }` block"


@attrs.frozen
class Custom:
    """Lowered by the Lowerer method of this name: method(entry, domain) -> value."""

    method: str
    expected: str


Takes = One | Many | Flag | Refs | Nested | Custom


@attrs.frozen
class Keyword:
    name: str
    takes: Takes
    about: str  # one line, for the reference
    example: str  # the whole statement, as a user writes it
    field: str = attrs.field(default=attrs.Factory(lambda self: self.name, takes_self=True))
    repeats: bool = False
    block: str | None = None  # the name of the Block its `{ }` holds
    arrow: bool = False  # takes `-> targets`
    order: Callable | None = None  # sort key of a repeated keyword's items
    shown_default: str | None = None  # for the reference, where the model's default reads wrongly


@attrs.frozen
class Block:
    name: str  # as messages say it: "a domain block"
    model: type | None  # what the generic walk builds; None: the keyword's method builds it
    keywords: tuple[Keyword, ...]
    example: str
    required: tuple[str, ...] = ()
    sieve: bool = False  # holds `sieve { … }`

    @functools.cached_property
    def by_name(self) -> dict[str, Keyword]:
        return {k.name: k for k in self.keywords}

    @functools.cached_property
    def repeating(self) -> tuple[Keyword, ...]:
        return tuple(k for k in self.keywords if k.repeats)

    @functools.cached_property
    def spanned(self) -> bool:
        """Whether its model records where it was declared."""
        return self.model is not None and "span" in attrs.fields_dict(self.model)

    def default(self, keyword: Keyword):
        """The model's default for the field a keyword fills."""
        return attrs.fields_dict(self.model)[keyword.field].default


_BY_LOCAL = operator.attrgetter("local")
_EXAMPLE_HASH = "{BLF-CRYPT}$2b$12$kzG3XsKKk69ThdbfVMwX1eMWZHKJwDAyAU8QZJ9F/TLmMkWvtFQ1."
_SIZE = "a size like `25 MiB`"
_PATH = "a file path"


def _address_or_domain(text: str) -> str:
    if "@" in text:
        return str(values.address(text, None)[0])
    return values.domain(text)


# ---------------------------------------------------------------- the blocks

TOP = Block("the top level of a file", None, (
    Keyword("import", Custom("imported", "a quoted file path"), "reads another spec file, relative to this one",
            'import "domains/example.com.mailspec"'),
    Keyword("server", Custom("server", "a `{ }` block"), "the server: exactly one per spec",
            "server { hostname mail.example.com }", block="the server block"),
    Keyword("domain", Custom("domain", "a domain name"), "a domain this server receives mail for",
            "domain example.com { mailbox alice { password \"{BLF-CRYPT}…\" } }",
            repeats=True, block="a domain block"),
), "server { hostname mail.example.com }")

SERVER = Block("the server block", model.Server, (
    Keyword("hostname", One(values.hostname, "a host name"), "the server's public host name, in its "
            "greeting and certificate", "hostname mail.example.com"),
    Keyword("addresses", Custom("public_addresses", "one or more IP addresses"), "the server's public "
            "IPv4 and IPv6 addresses: A/AAAA, SPF and the PTR to ask for", "addresses 203.0.113.5, 2001:db8::5"),
    Keyword("keys", One(parsers.daemon_path, "a directory path"), "where `mailspec keys` output is "
            "installed on the server (DKIM private keys)", 'keys "/var/lib/mailspec/keys"'),
    Keyword("mta_sts", Nested(), "publish an MTA-STS policy: senders must reach us over verified TLS",
            "mta_sts { mode enforce; max_age 1 week }", block="an mta_sts block"),
    Keyword("tls_report", Refs("one address", single=True), "where senders' TLS reports "
            "(TLS-RPT) go", "tls_report tls-reports@example.net"),
    Keyword("networks", Custom("networks", "one or more networks"), "networks trusted to relay "
            "without logging in (wider than /8 only as `unsafe`)", "networks 192.168.1.0/24"),
    Keyword("tls", Custom("tls", "a `{ }` block"), "the certificate and key the daemons serve",
            'tls { cert "/etc/ssl/mail.pem"; key "/etc/ssl/private/mail.key" }', block="a tls block"),
    Keyword("backend", Custom("backend", "`files` or `mysql`"), "where the daemons look up users and "
            "addresses", "backend mysql { database mail }", block="a mysql backend block",
            shown_default="`files`"),
    Keyword("message_size_limit", One(values.limit_size, _SIZE), "the largest message accepted",
            "message_size_limit 50 MiB"),
    Keyword("mail_location", One(parsers.mail_location, "a location string"), "where Dovecot keeps "
            "each user's mail", 'mail_location "maildir:/var/mail/vhosts/%d/%n"'),
    Keyword("vmail", Nested(), "the system user that owns the mail", "vmail { user vmail; uid 5000; "
            "gid 5000 }", block="a vmail block"),
    Keyword("recipient_delimiter", One(parsers.delimiter, "one character"), "the character of "
            "plus addressing", 'recipient_delimiter "-"'),
    Keyword("relay_host", Custom("relay", "a host like `[smtp.example.com]:587`"), "send all outgoing mail "
            "through this host, logged in if a block follows", "relay_host [smtp.example.net]:587",
            field="relay", block="a relay_host block"),
    Keyword("filters", Nested(), "senders and recipients to refuse, and the spam folder",
            "filters { reject_sender spam@bad.example }", block="the filters block"),
    Keyword("spam", Nested(), "the spam scores (rspamd's) from which mail is marked, and refused",
            "spam { mark 6; reject 15 }", block="a spam block"),
    Keyword("rate_limits", Nested(), "how many connections one client may open on port 25, and how many "
            "messages one login may send",
            "rate_limits { connections 10; messages_per_hour 200 }", block="a rate_limits block"),
    Keyword("postscreen", Nested(), "screen clients on port 25 before smtpd: DNS blocklists and the "
            "pregreet test", "postscreen { dnsbl zen.spamhaus.org 3; threshold 3 }", block="a postscreen block"),
    Keyword("fail2ban", Nested(), "ban clients that fail to log in again and again (nftables; never the "
            "trusted networks)", "fail2ban { retries 5; find_time 10m; ban_time 1h }", block="a fail2ban block"),
    Keyword("pop3", Flag(), "also serve POP3: on 995 with TLS, on 110 only after STLS (off by default)",
            "pop3 yes"),
    Keyword("antivirus", Flag(), "scan every message with ClamAV; a virus is refused at SMTP time (off by "
            "default; needs freshclam's signatures)", "antivirus yes"),
), "server { hostname mail.example.com }", required=("hostname",))

RELAY = Block("a relay_host block", model.Relay, (
    Keyword("login", One(parsers.relay_login, "a user name"), "the user name at the relay",
            "login mailer@example.net"),
    Keyword("password_file", One(parsers.daemon_path, _PATH), "the file on the server holding its password "
            "(0600 root)", 'password_file "/etc/mailspec/relay.password"'),
    Keyword("tls_name", One(values.hostname, "a host name"), "the name the relay's certificate must have "
            "(default: the host's; needed for an IP address)", "tls_name smtp.example.net"),
), 'relay_host [smtp.example.net]:587 { login mailer@example.net; password_file "/etc/mailspec/relay.password" }',
    required=("login", "password_file"))

TLS = Block("a tls block", model.Tls, (
    Keyword("cert", One(parsers.daemon_path, _PATH), "the certificate chain, PEM",
            'cert "/etc/ssl/mail.pem"'),
    Keyword("key", One(parsers.daemon_path, _PATH), "its private key, PEM; needs `cert`",
            'key "/etc/ssl/private/mail.key"'),
    Keyword("acme", Nested(), "get the certificate from an ACME CA with certbot, which renews it "
            "(instead of `cert` and `key`)", "acme { email postmaster@example.com }", block="an acme block"),
), 'tls { cert "/etc/ssl/…pem"; key "/etc/ssl/…key" }')

ACME = Block("an acme block", model.Acme, (
    Keyword("email", Refs("one address", single=True), "where the CA sends its notices, such as a "
            "certificate about to expire", "email postmaster@example.com"),
    Keyword("directory", One(parsers.https_url, "an https:// URL"), "the CA's ACME directory "
            "(default: certbot's, Let's Encrypt)", 'directory "https://acme.example.net/directory"'),
), "acme { email postmaster@example.com }")

MTA_STS = Block("an mta_sts block", model.MtaSts, (
    Keyword("mode", One(parsers.sts_mode, "enforce, testing or none"), "what senders do when TLS "
            "to us fails: refuse (enforce) or only report (testing)", "mode enforce"),
    Keyword("max_age", One(values.duration, "a duration like `1 week` or `7d`"), "how long senders cache "
            "the policy", "max_age 1 week"),
), "mta_sts { mode enforce; max_age 1 week }")

VMAIL = Block("a vmail block", model.Vmail, (
    Keyword("user", One(parsers.system_name, "a user name"), "its name", "user vmail"),
    Keyword("uid", One(values.integer, "a number", (1,)), "its user id", "uid 5000"),
    Keyword("gid", One(values.integer, "a number", (1,)), "its group id", "gid 5000"),
), "vmail { user vmail; uid 5000; gid 5000 }")

MYSQL = Block("a mysql backend block", model.Backend, (
    Keyword("host", One(values.hostname, "a host name"), "the database server", "host db.example.com"),
    Keyword("port", One(values.integer, "a port number", (1, 65535)), "its port", "port 3306"),
    Keyword("socket", One(parsers.daemon_path, "a socket path"), "its local socket, instead of host",
            'socket "/run/mysqld/mysqld.sock"'),
    Keyword("database", One(parsers.system_name, "a database name"), "the database", "database mail"),
    Keyword("user", One(parsers.system_name, "a user name"), "the user the daemons log in as",
            "user mailspec"),
    Keyword("password_file", One(parsers.daemon_path, _PATH), "the file holding that user's password, "
            "read on the server", 'password_file "/etc/mailspec/mysql.password"'),
), "backend mysql { database mail }")

FILTERS = Block("the filters block", model.Filters, (
    Keyword("reject_sender", Many(_address_or_domain, "addresses or domains"), "refuse mail from "
            "these senders", "reject_sender spam@bad.example, bad.example", field="reject_senders"),
    Keyword("reject_recipient", Many(_address_or_domain, "addresses or domains"), "refuse mail to "
            "these recipients", "reject_recipient old@example.com", field="reject_recipients"),
    Keyword("spam_folder", One(values.folder, "a folder name"), "file spam into this folder",
            "spam_folder Junk"),
    Keyword("spam_score", One(values.integer, "a whole number"), "the score from which a message is "
            "spam", "spam_score 5"),
    Keyword("own_domains_from_outside", Flag(), "accept our own domains as senders on port 25 (unsafe)",
            "own_domains_from_outside yes"),
), "filters { reject_sender spam@bad.example }")

_SCORE = One(values.integer, "a whole number from 1 to 1000", (1, 1000))
_MARK = "the score from which a message is spam: it gets `X-Spam-Status: Yes` and goes to the spam folder"
_REJECT = "the score from which a message is refused at SMTP time"

_GREYLIST = "tempfail the first message from each new client, sender and recipient; the retry is accepted"

SPAM = Block("a spam block", model.Spam, (
    Keyword("mark", _SCORE, _MARK, "mark 6"),
    Keyword("reject", _SCORE, _REJECT, "reject 15"),
    Keyword("greylist", Flag(), _GREYLIST + " (off by default; never for logins and trusted networks)",
            "greylist yes"),
    Keyword("greylist_delay", One(values.duration, "a duration from 1 s to 1 day, like `5m`", (1, 86400)),
            "how long a greylisted sender must wait before its retry is accepted", "greylist_delay 5m"),
), "spam { mark 6; reject 15 }")

RATE_LIMITS = Block("a rate_limits block", model.RateLimits, (
    Keyword("connections", One(values.integer, "a whole number from 1 to 1000", (1, 1000)), "connections "
            "one client may have open at once on port 25 (default: Postfix's 50)", "connections 10"),
    Keyword("connection_rate", One(values.integer, "a whole number from 1 to 10000", (1, 10000)), "new "
            "connections one client may open a minute on port 25 (default: no limit)", "connection_rate 30"),
    Keyword("messages_per_hour", One(values.integer, "a whole number from 1 to 100000", (1, 100000)),
            "messages one login may send an hour; more are tempfailed (default: no limit)",
            "messages_per_hour 200"),
), "rate_limits { connections 10; connection_rate 30; messages_per_hour 200 }")

FAIL2BAN = Block("a fail2ban block", model.Fail2ban, (
    Keyword("retries", One(values.integer, "a whole number from 1 to 100", (1, 100)), "failed logins from one "
            "client that get it banned (default 5)", "retries 5"),
    Keyword("find_time", One(values.duration, "a duration from 1 s to 1 day, like `10m`", (1, 86400)),
            "the time within which they count (default 10 minutes)", "find_time 10m"),
    Keyword("ban_time", One(values.duration, "a duration from 1 s to 1 week, like `1h`", (1, 604800)),
            "how long the ban lasts (default 1 hour)", "ban_time 1h"),
), "fail2ban { retries 5; find_time 10m; ban_time 1h }")

POSTSCREEN = Block("a postscreen block", model.Postscreen, (
    Keyword("dnsbl", Many(parsers.dnsbl, "blocklists like `zen.spamhaus.org 3`"), "DNS blocklists and the "
            "weight a listing adds", "dnsbl zen.spamhaus.org=127.0.0.[2..11] 3, "
            "bl.spamcop.net 2"),
    Keyword("threshold", One(values.integer, "a whole number from 1 to 100", (1, 100)), "the weight from "
            "which a client is refused", "threshold 3"),
    Keyword("allow", Many(parsers.allowed_network, "one or more networks"), "clients that skip the tests",
            "allow 192.0.2.0/24"),
    Keyword("pregreet", Flag(), "refuse clients that talk before the greeting (on by default)", "pregreet yes"),
), "postscreen { dnsbl zen.spamhaus.org 3; threshold 3 }")

DOMAIN_SPAM = Block("a domain's spam block", model.DomainSpam, (
    Keyword("mark", _SCORE, _MARK + " (default: the server's)", "mark 5"),
    Keyword("reject", _SCORE, _REJECT + " (default: the server's)", "reject 10"),
    Keyword("greylist", Flag(), _GREYLIST + " (default: the server's)", "greylist no"),
), "spam { mark 5; reject 10 }")

DOMAIN = Block("a domain block", model.Domain, (
    Keyword("also", Many(values.domain, "one or more domain names", unique=False, named=model.DomainName),
            "other names of this domain: the same users at each", "also example.org", repeats=True,
            order=operator.attrgetter("name")),
    Keyword("catch_all", Refs("one address", single=True), "where mail to unknown addresses goes",
            "catch_all alice"),
    Keyword("plus_addressing", Flag(), "deliver alice+tag to alice (on by default)", "plus_addressing no"),
    Keyword("limits", Nested(), "limits for the domain as a whole", "limits { mailboxes 50 }",
            block="a limits block"),
    Keyword("dkim", Custom("dkim", "`no`, or a `{ }` block"), "how outgoing mail is signed (on by "
            "default: selector `mail`, rsa-2048)", "dkim { selector mail2026; key ed25519 }",
            block="a dkim block"),
    Keyword("dmarc", Nested(), "the DMARC policy published for the domain (default: reject)",
            "dmarc { policy quarantine; report dmarc@example.net }", block="a dmarc block"),
    Keyword("spf_include", Many(parsers.dns_name, "one or more DNS names"), "outside services that "
            "also send as this domain, added to its SPF record", "spf_include _spf.example.net",
            repeats=True, order=str),
    Keyword("spam", Nested(), "spam scores of its own for mail to this domain",
            "spam { mark 5; reject 10 }", block="a domain's spam block"),
    Keyword("mailbox", Custom("mailbox", "one name"), "a user who can log in and receive mail",
            'mailbox alice { password "{BLF-CRYPT}…" }', field="mailboxes", repeats=True,
            block="a mailbox block", order=_BY_LOCAL),
    Keyword("alias", Custom("alias", "one name"), "an address that forwards to others",
            "alias sales -> alice, bob@example.net", field="aliases", repeats=True, arrow=True,
            order=_BY_LOCAL),
    Keyword("list", Custom("mailing_list", "one name"), "a mailing list", "list team { members alice, bob }",
            field="lists", repeats=True, block="a list block", order=_BY_LOCAL),
), "domain example.com { mailbox alice { password \"…\" } }")

LIMITS = Block("a limits block", model.Limits, (
    Keyword("mailboxes", One(values.integer, "a whole number"), "the most mailboxes", "mailboxes 50"),
    Keyword("quota", One(values.limit_size, "a size like `10 GiB`"), "the most that all mailbox quotas "
            "add up to", "quota 10 GiB"),
    Keyword("message_size", One(values.limit_size, _SIZE), "the largest message to the domain",
            "message_size 25 MiB"),
), "limits { mailboxes 50; quota 10 GiB; message_size 25 MiB }")

DKIM = Block("a dkim block", model.Dkim, (
    Keyword("selector", One(parsers.selector, "a selector like `mail2026`"), "the selector that signs",
            "selector mail2026"),
    Keyword("key", One(parsers.key_type, "rsa-2048 or ed25519"), "the key type of its keys",
            "key rsa-2048"),
    Keyword("standby", One(parsers.selector, "a selector like `mail2027`"), "a second selector, "
            "published but not signing: the next key, or the last one", "standby mail2027"),
), "dkim { selector mail2026; key rsa-2048 }")

DMARC = Block("a dmarc block", model.Dmarc, (
    Keyword("policy", One(parsers.dmarc_policy, "none, quarantine or reject"), "what receivers do with "
            "mail that fails DMARC", "policy reject"),
    Keyword("alignment", One(parsers.alignment, "relaxed or strict"), "whether subdomains align "
            "(relaxed) or only the exact domain (strict)", "alignment strict"),
    Keyword("report", Refs("one address", single=True), "where aggregate reports go",
            "report dmarc@example.net"),
), "dmarc { policy reject; report dmarc@example.com }")

MAILBOX = Block("a mailbox block", model.Mailbox, (
    Keyword("password", Custom("mailbox_password", "one quoted hash"), "the password hash, as "
            "`doveadm pw` makes it", f'password "{_EXAMPLE_HASH}"'),
    Keyword("password_file", Custom("mailbox_password_file", _PATH), "a file holding the hash, "
            "read at compile time", 'password_file "secrets/alice.hash"', field="password"),
    Keyword("quota", One(values.limit_size, "a size like `2 GiB`"), "the most mail kept", "quota 2 GiB"),
    Keyword("aliases", Refs(), "more addresses that deliver here", "aliases al, a.smith"),
    Keyword("forward", Refs(), "send a copy of each message on", "forward alice@example.net",
            field="forwards"),
    Keyword("keep_copy", Flag(), "with forward: keep a copy here too", "keep_copy"),
    Keyword("send_only", Flag(), "sends, but receives no mail", "send_only"),
    Keyword("send_as", Refs(external=True), "other addresses this login may send as",
            "send_as sales, external alice@example.net"),
    Keyword("auto_reply", Nested(), "an away message", 'auto_reply { subject "Away"; body "Back on '
            'Monday." }', block="an auto_reply block"),
), 'mailbox alice { password "…" }', sieve=True)

AUTO_REPLY = Block("an auto_reply block", model.AutoReply, (
    Keyword("subject", One(parsers.one_line, "one quoted string"), "its subject", 'subject "Away"'),
    Keyword("body", One(parsers.any_text, "one quoted string"), "its text", 'body "Back on Monday."'),
    Keyword("until", One(values.date, "a date like 2026-12-31"), "the last day it is sent",
            "until 2099-12-31"),
    Keyword("days", One(values.integer, "a number of days", (1, 365)), "how often one sender gets it",
            "days 7"),
), 'auto_reply { subject "Away"; body "Back on Monday."; until 2026-12-31 }', required=("subject", "body"))

LIST = Block("a list block", model.MailingList, (
    Keyword("members", Refs(), "who receives the list's mail", "members alice, bob@example.net"),
    Keyword("post", One(parsers.post, "anyone, members or announcer"), "who may post", "post members"),
    Keyword("announcer", Refs("one address", single=True), "with `post announcer`: who that is",
            "announcer alice"),
    Keyword("require_auth", Flag(), "posters must log in", "require_auth"),
), "list team { members alice, bob }", required=("members",))

BLOCKS = {b.name: b for b in (TOP, SERVER, RELAY, TLS, ACME, MTA_STS, VMAIL, MYSQL, FILTERS, SPAM, RATE_LIMITS,
                              FAIL2BAN, POSTSCREEN, DOMAIN, DOMAIN_SPAM, LIMITS, DKIM, DMARC, MAILBOX, AUTO_REPLY,
                              LIST)}


def statement_keywords() -> tuple[str, ...]:
    """Every keyword that starts a statement, in schema order, each once."""
    return tuple(dict.fromkeys(k.name for b in BLOCKS.values() for k in b.keywords))


@functools.cache
def homes() -> dict[str, tuple[str, ...]]:
    """keyword -> the blocks it is allowed in."""
    found: dict[str, list[str]] = {}
    for block in BLOCKS.values():
        for keyword in block.keywords:
            found.setdefault(keyword.name, []).append(block.name)
    return {k: tuple(v) for k, v in found.items()}
