"""The sections after receiving: sending (semantics.sender_logins), lists, limits and
quotas, Sieve (each rule on one line, in sieve_eval's words) and the server's settings,
where a change that widens what the server allows is flagged with the reason."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator

import attrs

from mailspec import model
from mailspec.diff.changes import Change, Where
from mailspec.diff.receiving import Side
from mailspec.semantics import owned_addresses
from mailspec.sieve_eval import describe


def shown(value) -> str:
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, model.Ref):
        return str(value.address)
    if isinstance(value, tuple):
        return ", ".join(shown(v) for v in value)
    if attrs.has(type(value)):
        return "{ " + "; ".join(f"{f.name} {shown(getattr(value, f.name))}" for f in attrs.fields(type(value))
                                if f.name != "span" and getattr(value, f.name) != f.default) + " }"
    return str(value)


def size(value: int | None) -> str:
    """A size as the language writes it: `2 GiB`, `512 KiB`, `1000 B`."""
    if value is None:
        return "none"
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value % factor == 0:
            return f"{value // factor} {unit}"
    return f"{value} B"


def _where(old_span, new_span) -> tuple[Where, ...]:
    return tuple(Where(name, span) for name, span in (("old", old_span), ("new", new_span)) if span is not None)


# ---------------------------------------------------------------- sending

def rights(side: Side, logins: set[str] | None) -> dict[str, set[str]]:
    """login -> every address it may send as (semantics.owners, turned around), for
    `logins` (None: all)."""
    found: dict[str, set[str]] = {}
    for domain in side.spec.domains:
        for box in domain.mailboxes:
            login = str(domain.address(box.local))
            if logins is None or login in logins:
                found[login] = {str(a) for a in owned_addresses(domain, box, side.directory)}
    return found


def _maybe_changed(old: Side, new: Side) -> set[str] | None:
    """The logins whose rights can differ: their mailbox differs, or their domain's names
    do; None (all of them) when an alias domain moved, which re-reads every right."""
    if old.directory.real != new.directory.real:
        return None
    names = ({d.name: d.names for d in old.spec.domains}, {d.name: d.names for d in new.spec.domains})
    moved = {n for n in names[0].keys() | names[1].keys() if names[0].get(n) != names[1].get(n)}
    return {a for a in old.mailboxes.keys() | new.mailboxes.keys()
            if old.mailboxes.get(a) != new.mailboxes.get(a) or a.rpartition("@")[2] in moved}


def sending(old: Side, new: Side) -> Iterator[Change]:
    logins = _maybe_changed(old, new)
    before, after = rights(old, logins), rights(new, logins)
    for login in sorted(before.keys() | after.keys()):
        was, now = before.get(login, set()), after.get(login, set())
        if was == now:
            continue
        wider = sorted(now - was)
        yield Change("sending", login, ", ".join(sorted(was)) or "no login", ", ".join(sorted(now)) or "no login",
                     tuple(old.where(login) + new.where(login)),
                     risky=f"may now send as {', '.join(wider)}" if wider else None,
                     added=tuple(wider), removed=tuple(sorted(was - now)))


# ---------------------------------------------------------------- lists, limits, sieve

def _declared(side: Side, kind: type) -> dict[str, object]:
    return {a: d for a, (d, _) in side.declared.items() if isinstance(d, kind)}


def lists(old: Side, new: Side) -> Iterator[Change]:
    before, after = _declared(old, model.MailingList), _declared(new, model.MailingList)
    for address in sorted(before.keys() | after.keys()):
        was, now = before.get(address), after.get(address)
        if was == now:
            continue
        where = _where(getattr(was, "span", None), getattr(now, "span", None))
        if was is None or now is None:
            yield Change("lists", address, "no list" if was is None else f"members {shown(was.members)}",
                         "no list" if now is None else f"members {shown(now.members)}", where)
            continue
        members = ({str(old.directory.canonical(r.address)) for r in was.members},
                   {str(new.directory.canonical(r.address)) for r in now.members})
        if members[0] != members[1]:
            yield Change("lists", f"{address} members", shown(was.members), shown(now.members), where,
                         added=tuple(sorted(members[1] - members[0])), removed=tuple(sorted(members[0] - members[1])))
        for field, wider in (("post", _post_wider), ("announcer", None), ("require_auth", _turned_off)):
            a, b = getattr(was, field), getattr(now, field)
            if a != b:
                reason = wider(a, b) if wider else None
                yield Change("lists", f"{address} {field}", shown(a), shown(b), where, risky=reason)


_POST_ORDER = {model.Post.ANNOUNCER: 0, model.Post.MEMBERS: 1, model.Post.ANYONE: 2}


def _post_wider(a, b) -> str | None:
    return f"more may post ({b.value})" if _POST_ORDER[b] > _POST_ORDER[a] else None


def _turned_off(a, b) -> str | None:
    return "no longer needs a login" if a and not b else None


def limits(old: Side, new: Side) -> Iterator[Change]:
    a, b = old.spec.server.message_size_limit, new.spec.server.message_size_limit
    if a != b:
        yield Change("limits", "message_size_limit", size(a), size(b),
                     _where(old.spec.server.span, new.spec.server.span))
    domains = ({d.name: d for d in old.spec.domains}, {d.name: d for d in new.spec.domains})
    for name in sorted(domains[0].keys() & domains[1].keys()):
        was, now = domains[0][name].limits, domains[1][name].limits
        for field in attrs.fields(model.Limits):
            if getattr(was, field.name) != getattr(now, field.name):
                value = shown if field.name == "mailboxes" else size
                yield Change("limits", f"{name} limits {field.name}", value(getattr(was, field.name)),
                             value(getattr(now, field.name)), _where(domains[0][name].span, domains[1][name].span))
    for address in sorted(old.mailboxes.keys() & new.mailboxes.keys()):
        was, now = old.mailboxes[address], new.mailboxes[address]
        if was is not now and was.quota != now.quota:
            yield Change("limits", f"{address} quota", size(was.quota), size(now.quota),
                         _where(was.span, now.span))


def sieve(old: Side, new: Side) -> Iterator[Change]:
    for address in sorted(old.mailboxes.keys() | new.mailboxes.keys()):
        was, now = old.mailboxes.get(address), new.mailboxes.get(address)
        if was == now:
            continue
        rules = ([describe(c) for c in was.sieve] if was else [], [describe(c) for c in now.sieve] if now else [])
        replies = (shown(was.auto_reply) if was else "none", shown(now.auto_reply) if now else "none")
        where = _where(getattr(was, "span", None), getattr(now, "span", None))
        if rules[0] != rules[1]:
            yield Change("sieve", address, _rules(len(rules[0])), _rules(len(rules[1])), where,
                         added=tuple(r for r in rules[1] if r not in rules[0]),
                         removed=tuple(r for r in rules[0] if r not in rules[1]))
        if replies[0] != replies[1]:
            yield Change("sieve", f"{address} auto_reply", replies[0], replies[1], where)


def _rules(count: int) -> str:
    return f"{count} rule" if count == 1 else f"{count} rules"


# ---------------------------------------------------------------- server and security

def _more(a, b) -> bool:
    return a is not None and (b is None or b > a)


_DMARC = {model.DmarcPolicy.NONE: 0, model.DmarcPolicy.QUARANTINE: 1, model.DmarcPolicy.REJECT: 2}
# field path -> (old, new) -> why the change widens what is allowed, or None
WIDENS: dict[str, Callable] = {
    "networks": lambda a, b: f"trusts {', '.join(sorted(set(b) - set(a)))}: its clients may relay and send as "
                             "anyone" if set(b) - set(a) else None,
    "relay": lambda a, b: "outgoing mail goes through another host" if b is not None else None,
    "tls": lambda a, b: "the certificate clients see changes",
    "filters.reject_senders": lambda a, b: "refuses fewer senders" if set(a) - set(b) else None,
    "filters.reject_recipients": lambda a, b: "refuses fewer recipients" if set(a) - set(b) else None,
    "filters.own_domains_from_outside": lambda a, b: "accepts our own domains as senders from outside" if b else None,
    "filters.spam_folder": lambda a, b: "spam is no longer filed away" if b is None else None,
    "spam.mark": lambda a, b: "marks less as spam" if b > a else None,
    "spam.reject": lambda a, b: "refuses less spam" if b > a else None,
    "spam.greylist": lambda a, b: "no longer greylists" if a and not b else None,
    "postscreen": lambda a, b: "port 25 is no longer screened" if b is None else None,
    "postscreen.threshold": lambda a, b: "refuses fewer listed clients" if b > a else None,
    "postscreen.dnsbl": lambda a, b: "asks fewer blocklists" if set(a) - set(b) else None,
    "postscreen.pregreet": lambda a, b: "lets early talkers in" if a and not b else None,
    "fail2ban": lambda a, b: "failed logins are no longer banned" if b is None else None,
    "fail2ban.retries": lambda a, b: "allows more failed logins" if b > a else None,
    "fail2ban.ban_time": lambda a, b: "bans for a shorter time" if b < a else None,
    "antivirus": lambda a, b: "mail is no longer scanned for viruses" if a and not b else None,
    "pop3": lambda a, b: "a new service listens: POP3 on 110 and 995" if b else None,
    "rate_limits.connections": lambda a, b: "a higher limit" if _more(a, b) else None,
    "rate_limits.connection_rate": lambda a, b: "a higher limit" if _more(a, b) else None,
    "rate_limits.messages_per_hour": lambda a, b: "a higher limit" if _more(a, b) else None,
    "mta_sts": lambda a, b: "senders no longer have to use TLS" if b is None else None,
    "mta_sts.mode": lambda a, b: "senders no longer have to use TLS" if b is not model.StsMode.ENFORCE else None,
    "dkim.sign": lambda a, b: "its mail is no longer signed" if a and not b else None,
    "dmarc.policy": lambda a, b: "receivers act less on forged mail" if _DMARC[b] < _DMARC[a] else None,
    "dmarc.alignment": lambda a, b: "looser alignment" if b is model.Alignment.RELAXED else None,
}
_NESTED = {"filters", "spam", "postscreen", "fail2ban", "rate_limits", "mta_sts", "relay", "vmail", "backend"}
_OWN_SECTIONS = {"span", "message_size_limit", "recipient_delimiter"}  # in limits; and receiving shows the delimiter


def _fields(a, b, prefix: str, nested: set[str]) -> Iterator[tuple[str, object, object]]:
    for field in attrs.fields(type(a if a is not None else b)):
        path = prefix + field.name
        if field.name in _OWN_SECTIONS:
            continue
        x, y = getattr(a, field.name, None), getattr(b, field.name, None)
        if x == y:
            continue
        if field.name in nested and x is not None and y is not None and attrs.has(type(x)):
            yield from _fields(x, y, path + ".", set())
        else:
            yield path, x, y


def server(old: Side, new: Side) -> Iterator[Change]:
    a, b = old.spec.server, new.spec.server
    where = _where(a.span, b.span)
    if a.recipient_delimiter != b.recipient_delimiter:
        yield Change("server", "recipient_delimiter", a.recipient_delimiter, b.recipient_delimiter, where)
    for path, x, y in _fields(a, b, "", _NESTED):
        reason = WIDENS[path](x, y) if path in WIDENS else None
        yield Change("server", path, shown(x), shown(y), where, risky=reason)
    domains = ({d.name: d for d in old.spec.domains}, {d.name: d for d in new.spec.domains})
    for name in sorted(domains[0].keys() & domains[1].keys()):
        was, now = domains[0][name], domains[1][name]
        where = _where(was.span, now.span)
        for block in ("dkim", "dmarc", "spam"):
            for path, x, y in _fields(getattr(was, block), getattr(now, block), block + ".", set()):
                reason = WIDENS[path](x, y) if path in WIDENS and block != "spam" else None
                if block == "spam" and path in ("spam.mark", "spam.reject") and x is not None and y is not None:
                    reason = WIDENS[path](x, y)
                yield Change("server", f"{name} {path}", shown(x), shown(y), where, risky=reason)
        if was.spf_include != now.spf_include:
            wider = set(now.spf_include) - set(was.spf_include)
            yield Change("server", f"{name} spf_include", shown(was.spf_include), shown(now.spf_include), where,
                         risky=f"{', '.join(sorted(wider))} may now send as {name}" if wider else None)
