"""Postfix lookup tables, computed from the checked model as plain rows."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

import attrs

from mailspec import model
from mailspec.backends import per_spec
from mailspec.backends.postfix import srs
from mailspec.model import Address


@attrs.frozen
class ListClass:
    """An smtpd restriction class that enforces one list's posting policy."""

    name: str
    domain: str  # the list's domain
    # Without a sender map the class only asks for a login: `permit_sasl_authenticated, reject`.
    senders: tuple[tuple[str, str], ...] | None  # rows of the list's sender map


@attrs.frozen
class PostfixTables:
    virtual_domains: tuple[tuple[str, str], ...]
    virtual_alias_domains: tuple[tuple[str, str], ...]
    virtual_mailboxes: tuple[tuple[str, str], ...]
    virtual_aliases: tuple[tuple[str, str], ...]
    sender_login: tuple[tuple[str, str], ...]
    recipient_access: tuple[tuple[str, str], ...]
    sender_access: tuple[tuple[str, str], ...]
    list_access: tuple[tuple[str, str], ...]
    own_domains: tuple[tuple[str, str], ...]  # every served name: refused as sender from outside
    own_senders: tuple[tuple[str, str], ...]  # every served name again, as `@name`: no SRS (srs.py)
    list_classes: tuple[ListClass, ...]
    plus_disabled: tuple[tuple[str, str], ...]  # regexp table rows


OWN_DOMAIN_FROM_OUTSIDE = "REJECT 5.7.1 mail from this domain is sent on submission, with a login"


def _class_name(address: Address) -> str:
    readable = re.sub(r"[^a-z0-9]+", "_", str(address).lower()).strip("_")
    digest = hashlib.sha256(str(address).encode()).hexdigest()[:6]
    return f"list_{readable}_{digest}"


def _joined(targets) -> str:
    """A multi-valued answer, sorted: the mysql backend's ORDER BY gives the same text."""
    found = {str(t) for t in targets}
    return ",".join(sorted(found)) if len(found) != 1 else next(iter(found))


@per_spec
def sender_logins(spec: model.Spec) -> tuple[tuple[str, str], ...]:
    """smtpd_sender_login_maps' rows, (address, logins): a mailbox's address and its
    mailbox aliases in every name of its domain, and its send-as rights. Alone, for
    rspamd's From-header check, which needs no other table (building them all cost a
    quarter of a second and 50 MB at 100,000 mailboxes); once per spec for both."""
    aliases_of = model.alias_domains(spec.domains)
    senders: dict[str, list[str]] = defaultdict(list)
    for domain in spec.domains:
        names = domain.names
        for mailbox in domain.mailboxes:
            login = f"{mailbox.local}@{domain.name}"
            for name in names:
                senders[f"{mailbox.local}@{name}"].append(login)
            for ref in mailbox.aliases:
                target = model.canonical(ref.address, aliases_of)
                for name in (names if target.domain == domain.name else (target.domain,)):
                    senders[f"{target.local}@{name}"].append(login)
            for ref in mailbox.send_as:
                senders[str(model.canonical(ref.address, aliases_of))].append(login)
    return tuple(sorted((k, v[0] if len(v) == 1 else _joined(v)) for k, v in senders.items()))


def build(spec: model.Spec) -> PostfixTables:
    domains = spec.domains
    aliases_of = model.alias_domains(domains)

    def canonical(address: Address) -> Address:
        return model.canonical(address, aliases_of)

    names = {d.name: d.names for d in domains}

    def all_names(address: Address) -> list[Address]:
        """The address under its domain's every name (itself, if not served)."""
        return [Address(address.local, n) for n in names.get(address.domain, (address.domain,))]

    def everywhere(domain: model.Domain, local: str) -> list[str]:
        """The address in its domain and in each of the domain's aliases."""
        return [f"{local}@{name}" for name in domain.names]

    aliases: dict[str, str] = {}
    recipient_access: dict[str, str] = {}
    list_access: dict[str, str] = {}
    classes: list[ListClass] = []
    mailboxes: list[tuple[str, str]] = []

    for domain in domains:
        catch_all = domain.catch_all is not None
        for mailbox in domain.mailboxes:
            own = domain.address(mailbox.local)
            login = f"{mailbox.local}@{domain.name}"
            for ref in mailbox.aliases:
                aliases[str(canonical(ref.address))] = login
            if mailbox.send_only:
                for key in everywhere(domain, mailbox.local):
                    recipient_access[key] = "REJECT 5.1.1 send-only mailbox: it does not receive mail"
                continue
            mailboxes.append((login, f"{domain.name}/{mailbox.local}/"))
            if mailbox.forwards:
                targets = [canonical(r.address) for r in mailbox.forwards]
                if mailbox.keep_copy:
                    targets = [own, *(t for t in targets if t != own)]
                aliases[login] = _joined(targets)
            elif catch_all:
                aliases[login] = login  # so the catch-all does not swallow a real mailbox
        for alias in domain.aliases:
            aliases[str(domain.address(alias.local))] = _joined(canonical(r.address) for r in alias.targets)
        for mailing_list in domain.lists:
            address = domain.address(mailing_list.local)
            aliases[str(address)] = _joined(canonical(r.address) for r in mailing_list.members)
            policy = _list_class(mailing_list, address, canonical, all_names)
            if policy is not None:
                classes.append(policy)
                for key in everywhere(domain, mailing_list.local):
                    list_access[key] = policy.name
        if catch_all:
            aliases[f"@{domain.name}"] = str(canonical(domain.catch_all.address))

    # Domain aliases: every name of the domain answers under each alias name too.
    keys_by_domain: dict[str, list[str]] = defaultdict(list)
    if any(d.also for d in domains):  # else no key is needed (at 100k mailboxes, 0.1 s saved)
        for key in list(aliases) + [login for login, _ in mailboxes]:
            keys_by_domain[key.partition("@")[2]].append(key)
    for domain in domains:
        for also in domain.also:
            for key in keys_by_domain[domain.name]:
                local = key.partition("@")[0]
                # `@alias` takes the catch-all's target; `x@alias` goes to `x@domain`.
                aliases.setdefault(f"{local}@{also.name}", aliases[key] if not local else key)

    filters = spec.server.filters
    for item in filters.reject_recipients:
        recipient_access.setdefault(item, "REJECT 5.7.1 recipient refused by local policy")
    sender_access = [(item, "REJECT 5.7.1 sender refused by local policy") for item in filters.reject_senders]
    plus_disabled = [(f"/^[^@]*{re.escape(spec.server.recipient_delimiter)}[^@]*@{re.escape(name)}$/",
                      f"REJECT 5.1.1 plus addressing is disabled for {domain.name}")
                     for domain in domains if not domain.plus_addressing
                     for name in domain.names]

    return PostfixTables(
        virtual_domains=tuple((d.name, "OK") for d in domains),
        virtual_alias_domains=tuple(sorted((a.name, "OK") for d in domains for a in d.also)),
        virtual_mailboxes=tuple(sorted(mailboxes)),
        virtual_aliases=tuple(sorted(aliases.items())),
        sender_login=sender_logins(spec),
        recipient_access=tuple(sorted(recipient_access.items())),
        sender_access=tuple(sorted(sender_access)),
        list_access=tuple(sorted(list_access.items())),
        own_domains=tuple(sorted((name, OWN_DOMAIN_FROM_OUTSIDE) for d in domains for name in d.names)),
        own_senders=srs.own_senders(spec),
        list_classes=tuple(sorted(classes, key=lambda c: c.name)),
        plus_disabled=tuple(plus_disabled),
    )


def _list_class(mailing_list: model.MailingList, address: Address, canonical,
                all_names) -> ListClass | None:
    """The restriction class for a list, or None when anyone may post without auth."""
    name = _class_name(address)
    if mailing_list.post is model.Post.ANYONE:
        if not mailing_list.require_auth:
            return None
        return ListClass(name, address.domain, None)
    if mailing_list.post is model.Post.MEMBERS:
        allowed = [canonical(r.address) for r in mailing_list.members]
    else:
        allowed = [canonical(mailing_list.announcer.address)]
    # A sender-map value may itself be a restriction: with require_auth, a listed sender
    # is only accepted when the client has logged in (the login must own that sender).
    verdict = "permit_sasl_authenticated" if mailing_list.require_auth else "OK"
    # A member may post from any name of its domain (a domain alias is the same mailbox).
    rows = tuple(sorted({(str(n), verdict) for a in allowed for n in all_names(a)}))
    return ListClass(name, address.domain, rows)
