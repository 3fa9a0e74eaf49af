"""The typed model of a mail server: frozen attrs values, tuples not lists.

Every element keeps the span it came from. Spans do not take part in equality, so
two specs that mean the same thing compare equal however they are laid out.
Collections are sorted by name during lowering: declaration order carries no meaning
(except for Sieve commands, which keep theirs).
"""

from __future__ import annotations

import datetime
import enum
from typing import ClassVar, NamedTuple

import attrs

from mailspec.source import Span

DEFAULT_MAIL_LOCATION = "maildir:/var/mail/vhosts/%d/%n"
DEFAULT_TLS_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
DEFAULT_TLS_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"
DEFAULT_KEYS = "/var/lib/mailspec/keys"
# With `tls { acme … }`: the copy of certbot's certificate that the daemons read, which
# the switch keeps (a self-signed stand-in until the CA has issued it).
ACME_CERT = "/var/lib/mailspec/tls/fullchain.pem"
ACME_KEY = "/var/lib/mailspec/tls/privkey.pem"
DEFAULT_SELECTOR = "mail"


def _span():
    return attrs.field(default=None, eq=False, repr=False)


class Address(NamedTuple):
    """A NamedTuple, not attrs: addresses are hashed and sorted in every pass."""

    local: str
    domain: str  # A-label, lower case

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


@attrs.frozen
class Ref:
    """A reference to an address as written; `bare` when written without `@domain`."""

    address: Address
    bare: bool = False
    external: bool = False  # declared external (send_as only)
    span: Span | None = _span()


# ---------------------------------------------------------------- server


class BackendKind(enum.Enum):
    FILES = "files"
    MYSQL = "mysql"


@attrs.frozen
class Backend:
    kind: BackendKind = BackendKind.FILES
    host: str | None = None
    port: int | None = None
    socket: str | None = None
    database: str | None = None
    user: str | None = None
    password_file: str | None = None
    span: Span | None = _span()


@attrs.frozen
class Acme:
    """The certificate comes from an ACME CA through certbot, whose timer renews it."""

    email: Ref | None = None  # where the CA sends its notices (a certificate about to expire)
    directory: str | None = None  # the CA's directory URL; None: certbot's own default
    span: Span | None = _span()


@attrs.frozen
class Tls:
    cert: str = DEFAULT_TLS_CERT
    key: str = DEFAULT_TLS_KEY
    acme: Acme | None = None


@attrs.frozen
class Vmail:
    user: str = "vmail"
    uid: int = 5000
    gid: int = 5000


# rspamd's own defaults: mark as spam from 6, refuse from 15.
DEFAULT_SPAM_MARK = 6
DEFAULT_SPAM_REJECT = 15


@attrs.frozen
class Spam:
    """Server-wide rspamd thresholds: from `mark` a message gets `X-Spam-Status: Yes`
    (and goes to the spam folder); from `reject` it is refused at SMTP time."""

    mark: int = DEFAULT_SPAM_MARK
    reject: int = DEFAULT_SPAM_REJECT
    greylist: bool = False  # tempfail the first message of each new (client, sender, recipient)
    greylist_delay: int = 300  # seconds before its retry is accepted (rspamd's default)
    span: Span | None = _span()


@attrs.frozen
class DomainSpam:
    """A domain's own thresholds for mail to it; None: the server's."""

    mark: int | None = None
    reject: int | None = None
    greylist: bool | None = None
    span: Span | None = _span()


@attrs.frozen
class Filters:
    reject_senders: tuple[str, ...] = ()  # addresses or whole domains
    reject_recipients: tuple[str, ...] = ()
    spam_folder: str | None = None
    spam_score: int | None = None  # None: rspamd's verdict (X-Spam-Status: Yes); else its score >= this
    own_domains_from_outside: bool = False  # accept our domains as senders on port 25


class Dnsbl(NamedTuple):
    """A DNS blocklist postscreen asks: a listed client adds `weight` to its score.
    `answers` limits the replies that count, as Postfix writes it (`127.0.0.[2..11]`:
    Spamhaus answers 127.255.255.x to refuse a query); None: any."""

    zone: str
    weight: int = 1
    answers: str | None = None

    def __str__(self) -> str:
        return f"{self.zone}{'=' + self.answers if self.answers else ''}*{self.weight}"


@attrs.frozen
class Postscreen:
    """postscreen(8) in front of smtpd on port 25 only: DNSBL scores, an allow-list, and
    the pregreet test (a client that talks before the banner is refused)."""

    dnsbl: tuple[Dnsbl, ...] = ()
    threshold: int = 1  # the score from which a client is refused
    allow: tuple[str, ...] = ()  # networks that skip every test (besides the trusted ones)
    pregreet: bool = True
    span: Span | None = _span()


@attrs.frozen
class Fail2ban:
    """fail2ban's jails for failed logins (SMTP AUTH, IMAP, ManageSieve): a client with
    `retries` failures within `find_time` seconds is banned for `ban_time` seconds.
    Loopback and the trusted networks are never banned."""

    retries: int = 5
    find_time: int = 600
    ban_time: int = 3600
    span: Span | None = _span()


@attrs.frozen
class RateLimits:
    """Limits per client on port 25 (Postfix's anvil), for clients outside the trusted
    networks, and per login on submission; None: Postfix's own (50 at once, no rate)."""

    connections: int | None = None  # at once, from one client
    connection_rate: int | None = None  # new connections a minute, from one client
    messages_per_hour: int | None = None  # sent by one login (rspamd's ratelimit); None: no limit
    span: Span | None = _span()


class StsMode(enum.Enum):
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"  # withdraws a published policy


@attrs.frozen
class MtaSts:
    """RFC 8461: senders must use TLS with a valid certificate to reach our MX."""

    mode: StsMode = StsMode.ENFORCE
    max_age: int = 604800  # seconds: one week, the RFC's suggestion for a stable policy
    span: Span | None = _span()


@attrs.frozen
class Relay:
    """All outgoing mail goes through this host, as Postfix's relayhost. With a login,
    only over TLS whose certificate verifies, as `tls_name` (default: the host's name),
    and authenticated with the password in `password_file`: a file on the server, read
    by the switch, never copied into the deploy."""

    host: str  # `[smtp.example.net]:587`: brackets mean no MX lookup
    login: str | None = None
    password_file: str | None = None
    tls_name: str | None = None
    span: Span | None = _span()

    @property
    def name(self) -> str:
        """The host's name or IPv4 address, without brackets or port."""
        return self.host.split(":")[0].strip("[]")


@attrs.frozen
class Server:
    hostname: str
    addresses: tuple[str, ...] = ()  # public IPv4 and IPv6 addresses: A/AAAA, SPF, the PTR
    keys: str = DEFAULT_KEYS  # where the DKIM keys are on the server (`mailspec keys` makes them)
    mta_sts: MtaSts | None = None
    tls_report: Ref | None = None  # TLS-RPT (RFC 8460) reports go here
    networks: tuple[str, ...] = ()
    tls: Tls = Tls()
    backend: Backend = Backend()
    message_size_limit: int | None = None
    mail_location: str = DEFAULT_MAIL_LOCATION
    vmail: Vmail = Vmail()
    recipient_delimiter: str = "+"
    relay: Relay | None = None
    filters: Filters = Filters()
    spam: Spam = Spam()
    postscreen: Postscreen | None = None
    rate_limits: RateLimits = RateLimits()
    antivirus: bool = False  # ClamAV, through rspamd
    pop3: bool = False  # POP3S on 995, and 110 with STLS
    fail2ban: Fail2ban | None = None
    span: Span | None = _span()


# ---------------------------------------------------------------- sieve


class Match(enum.Enum):
    IS = "is"
    CONTAINS = "contains"
    MATCHES = "matches"


@attrs.frozen
class CompareTest:
    """`header`, `address` or `envelope` NAME MATCH KEY."""

    kind: str
    name: str
    match: Match
    key: str
    span: Span | None = _span()


@attrs.frozen
class SizeTest:
    over: bool
    limit: int
    span: Span | None = _span()


@attrs.frozen
class ExistsTest:
    name: str
    span: Span | None = _span()


@attrs.frozen
class AllOf:
    tests: tuple[Test, ...]
    span: Span | None = _span()


@attrs.frozen
class AnyOf:
    tests: tuple[Test, ...]
    span: Span | None = _span()


@attrs.frozen
class Not:
    test: Test
    span: Span | None = _span()


@attrs.frozen
class Constant:
    value: bool
    span: Span | None = _span()


Test = CompareTest | SizeTest | ExistsTest | AllOf | AnyOf | Not | Constant


# Sieve actions: one record each, named as Sieve names them (`name`).

@attrs.frozen
class FileInto:
    name: ClassVar[str] = "fileinto"
    folder: str
    span: Span | None = _span()


@attrs.frozen
class Redirect:
    name: ClassVar[str] = "redirect"
    to: Address
    copy: bool = False  # :copy, keeping the implicit keep
    span: Span | None = _span()


@attrs.frozen
class Reject:
    name: ClassVar[str] = "reject"
    reason: str
    span: Span | None = _span()


@attrs.frozen
class AddFlag:
    name: ClassVar[str] = "addflag"
    flag: str
    span: Span | None = _span()


@attrs.frozen
class Vacation:
    name: ClassVar[str] = "vacation"
    body: str
    subject: str | None = None
    days: int | None = None
    span: Span | None = _span()


@attrs.frozen
class Discard:
    name: ClassVar[str] = "discard"
    span: Span | None = _span()


@attrs.frozen
class Keep:
    name: ClassVar[str] = "keep"
    span: Span | None = _span()


@attrs.frozen
class Stop:
    name: ClassVar[str] = "stop"
    span: Span | None = _span()


Action = FileInto | Redirect | Reject | AddFlag | Vacation | Discard | Keep | Stop
ACTIONS = (FileInto, Redirect, Reject, AddFlag, Vacation, Discard, Keep, Stop)


@attrs.frozen
class Branch:
    test: Test
    body: tuple[Command, ...]


@attrs.frozen
class If:
    branches: tuple[Branch, ...]  # if, then each elsif
    otherwise: tuple[Command, ...] | None = None
    span: Span | None = _span()


Command = Action | If


# ---------------------------------------------------------------- domains


@attrs.frozen
class Password:
    scheme: str  # SHA512-CRYPT, BLF-CRYPT, ARGON2ID…
    hash: str  # the whole `{SCHEME}…` string as Dovecot reads it
    file: str | None = None  # where it was read from, when given as password_file


@attrs.frozen
class AutoReply:
    subject: str
    body: str
    until: datetime.date | None = None
    days: int = 7
    span: Span | None = _span()


@attrs.frozen
class Mailbox:
    local: str
    password: Password | None = None
    quota: int | None = None  # bytes
    aliases: tuple[Ref, ...] = ()
    forwards: tuple[Ref, ...] = ()
    keep_copy: bool = False
    send_only: bool = False
    send_as: tuple[Ref, ...] = ()
    auto_reply: AutoReply | None = None
    sieve: tuple[Command, ...] = ()
    span: Span | None = _span()


@attrs.frozen
class Alias:
    local: str
    targets: tuple[Ref, ...]
    span: Span | None = _span()


class Post(enum.Enum):
    ANYONE = "anyone"
    MEMBERS = "members"
    ANNOUNCER = "announcer"


@attrs.frozen
class MailingList:
    local: str
    members: tuple[Ref, ...] = ()
    post: Post = Post.ANYONE
    announcer: Ref | None = None
    require_auth: bool = False
    span: Span | None = _span()


@attrs.frozen
class Limits:
    mailboxes: int | None = None
    quota: int | None = None  # the sum of mailbox quotas, bytes
    message_size: int | None = None


class KeyType(enum.Enum):
    RSA2048 = "rsa-2048"
    ED25519 = "ed25519"


@attrs.frozen
class Dkim:
    """How a domain signs: `selector` signs; `standby` is published too, for rotation."""

    sign: bool = True
    selector: str = DEFAULT_SELECTOR
    key: KeyType = KeyType.RSA2048
    standby: str | None = None
    span: Span | None = _span()

    @property
    def selectors(self) -> tuple[str, ...]:
        """Every selector published in DNS: the signing one first."""
        return (self.selector,) if self.standby is None else (self.selector, self.standby)


class DmarcPolicy(enum.Enum):
    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"


class Alignment(enum.Enum):
    RELAXED = "relaxed"
    STRICT = "strict"


@attrs.frozen
class Dmarc:
    policy: DmarcPolicy = DmarcPolicy.REJECT  # we sign every message we send: safe to enforce
    alignment: Alignment = Alignment.RELAXED
    report: Ref | None = None  # aggregate reports (rua)
    span: Span | None = _span()


@attrs.frozen
class DomainName:
    name: str  # A-label
    span: Span | None = _span()


@attrs.frozen
class Domain:
    name: str  # A-label
    also: tuple[DomainName, ...] = ()  # domain aliases
    catch_all: Ref | None = None
    plus_addressing: bool = True
    limits: Limits = Limits()
    dkim: Dkim = Dkim()
    dmarc: Dmarc = Dmarc()
    spf_include: tuple[str, ...] = ()  # outside senders of this domain, as SPF `include:`
    spam: DomainSpam = DomainSpam()
    mailboxes: tuple[Mailbox, ...] = ()
    aliases: tuple[Alias, ...] = ()
    lists: tuple[MailingList, ...] = ()
    span: Span | None = _span()

    def address(self, local: str) -> Address:
        return tuple.__new__(Address, (local, self.name))  # NamedTuple's own __new__ is a Python call

    @property
    def names(self) -> tuple[str, ...]:
        """Its own name, then each alias domain's: every domain it receives mail for."""
        return (self.name, *(a.name for a in self.also))


def alias_domains(domains) -> dict[str, str]:
    """alias domain -> the domain it is another name of."""
    return {a.name: d.name for d in domains for a in d.also}


def canonical(address: Address, aliases: dict[str, str]) -> Address:
    """`address` in its real domain: an alias domain delivers to the same local parts."""
    real = aliases.get(address.domain)
    return Address(address.local, real) if real else address


@attrs.frozen
class Spec:
    name: str  # the root spec's file name, for the generated headers
    server: Server
    domains: tuple[Domain, ...] = ()
