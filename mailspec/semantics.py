"""Reference semantics: who receives mail sent to an address, computed from the model alone.

This is deliberately independent of the Postfix tables: tests hold the compiled maps
(queried with the real `postmap`) against it.
"""

from __future__ import annotations

import attrs

from mailspec import model
from mailspec.model import Address


@attrs.frozen
class Resolution:
    recipients: frozenset[str] = frozenset()  # final envelope recipients, as Postfix hands them on
    rejected: str | None = None  # why the address is refused at RCPT time


class Directory:
    """What resolve looks up in a spec, built once: a caller that resolves many
    addresses of one spec passes it in."""

    def __init__(self, spec: model.Spec):
        self.spec = spec
        self.domains = {d.name: d for d in spec.domains}
        self.real = model.alias_domains(spec.domains)
        self.entries: dict[Address, object] = {}
        for domain in spec.domains:
            for mailbox in domain.mailboxes:
                self.entries[domain.address(mailbox.local)] = mailbox
        for domain in spec.domains:
            for alias in domain.aliases:
                self.entries.setdefault(domain.address(alias.local), alias)
            for mailing_list in domain.lists:
                self.entries.setdefault(domain.address(mailing_list.local), mailing_list)
            for mailbox in domain.mailboxes:
                for ref in mailbox.aliases:
                    self.entries.setdefault(self.canonical(ref.address), ("owner", domain.address(mailbox.local)))

    def canonical(self, address: Address) -> Address:
        return model.canonical(address, self.real)

    def served(self, domain: str) -> bool:
        return domain in self.domains or domain in self.real


def _split(text: str) -> Address:
    local, _, domain = text.rpartition("@")
    return Address(local.lower(), domain.lower())


UNSPLIT = ("postmaster", "mailer-daemon", "double-bounce")


def split_extension(local: str, delimiter: str) -> tuple[str, str | None]:
    """(base, extension) the way Postfix splits a local part: at the first delimiter,
    but never the reserved names, `owner-…` or `…-request` when the delimiter is "-", or
    when the base would be empty (`+tag`). The extension is None when there is no split,
    and may be "" (`alice+`): Postfix then carries a bare delimiter on."""
    lowered = local.lower()
    if lowered in UNSPLIT or delimiter == "-" and (
            lowered.startswith("owner-") or len(lowered) > 8 and lowered.endswith("-request")):
        return local, None
    base, found, extension = local.partition(delimiter)
    return (base, extension) if found and base else (local, None)


def resolve(spec: model.Spec, address: str, directory: Directory | None = None) -> Resolution:
    directory = directory or Directory(spec)
    delimiter = spec.server.recipient_delimiter
    filters = spec.server.filters
    original = _split(address)
    # smtpd checks recipient_access first, for outside recipients too
    if access_listed(filters.reject_recipients, address, delimiter):
        return Resolution(rejected="refused by reject_recipient")
    if not directory.served(original.domain):
        return Resolution(frozenset({address}))  # relayed as written: outside local parts keep their case
    target = directory.canonical(original)
    domain = directory.domains[target.domain]
    if delimiter in target.local and not domain.plus_addressing:  # split or not, as the regexp does
        return Resolution(rejected="plus addressing is disabled")
    base = split_extension(target.local, delimiter)[0]
    found = directory.entries.get(target) or directory.entries.get(Address(base, target.domain))
    if isinstance(found, model.Mailbox) and found.send_only:
        return Resolution(rejected="send-only mailbox")
    if found is None and domain.catch_all is None:
        return Resolution(rejected="unknown user")
    recipients: set[str] = set()
    # Postfix looks addresses up in lower case but carries an unmatched extension on as
    # the sender wrote it (a running Postfix showed ops+Tag@, not ops+tag@).
    _expand(directory, Address(address.rpartition("@")[0], original.domain), recipients, frozenset())
    return Resolution(frozenset(recipients))


def _with_extension(address: Address, extension: str | None, delimiter: str) -> Address:
    return address if extension is None else Address(f"{address.local}{delimiter}{extension}", address.domain)


def _expand(directory: Directory, address: Address, out: set[str], seen: frozenset) -> None:
    """Add the final recipients of `address`, expanding as Postfix's virtual aliases do:
    exact address first, then without the extension (which is then carried over to the
    results), then the domain's catch-all."""
    delimiter = directory.spec.server.recipient_delimiter
    key = Address(address.local.lower(), address.domain)
    if key in seen:
        return
    seen = seen | {key}
    if not directory.served(address.domain):
        out.add(str(address))
        return
    target = directory.canonical(key)
    base = split_extension(target.local, delimiter)[0]
    extension = split_extension(address.local, delimiter)[1]  # as written
    found = directory.entries.get(target)
    if found is None and extension is not None:
        found = directory.entries.get(Address(base, target.domain))
    else:
        extension = None  # matched as written: nothing to carry over
    if found is None:
        catch_all = directory.domains[target.domain].catch_all
        if catch_all is None:
            out.add(str(target))  # Postfix accepts nothing here; kept for completeness
        else:
            _expand(directory, catch_all.address, out, seen)
        return

    def carried(ref_address: Address) -> Address:
        return _with_extension(ref_address, extension, delimiter)

    home = Address(base, target.domain)
    if isinstance(found, tuple):  # a mailbox alias -> its owner
        _expand(directory, carried(found[1]), out, seen)
    elif isinstance(found, (model.Alias, model.MailingList)):
        refs = found.targets if isinstance(found, model.Alias) else found.members
        for ref in refs:
            _expand(directory, carried(ref.address), out, seen)
    elif found.forwards:
        if found.keep_copy:
            out.add(str(carried(home)))
        for ref in found.forwards:
            if directory.canonical(ref.address) != home:
                _expand(directory, carried(ref.address), out, seen)
    else:
        out.add(str(carried(home)))


@attrs.frozen
class Verdict:
    accepted: bool
    reason: str | None = None  # why it is refused


def owners(spec: model.Spec, sender: str) -> frozenset[str]:
    """The logins that may use `sender` as MAIL FROM on submission: a mailbox owns its
    address and its mailbox aliases in every name of its domain, and its send-as rights.
    Like Postfix's sender login lookup, an address that is not listed as written is
    looked up again without its extension: alice owns alice+news@."""
    listed = sender_logins(spec)
    address = _split(sender)
    base = Address(split_extension(address.local, spec.server.recipient_delimiter)[0], address.domain)
    return frozenset(listed.get(address) or listed.get(base, ()))


def sender_logins(spec: model.Spec, directory: Directory | None = None) -> dict[Address, set[str]]:
    """Every address a login may send as (without an extension) -> those logins."""
    directory = directory or Directory(spec)
    listed: dict[Address, set[str]] = {}
    for domain in spec.domains:
        for mailbox in domain.mailboxes:
            for address in owned_addresses(domain, mailbox, directory):
                listed.setdefault(address, set()).add(str(domain.address(mailbox.local)))
    return listed


def owned_addresses(domain: model.Domain, mailbox: model.Mailbox, directory: Directory) -> set[Address]:
    """What one mailbox's login may send as: its address in every name of its domain, its
    mailbox aliases (in every name, when in its own domain) and its send-as rights."""
    names = domain.names
    owned = {Address(mailbox.local, name) for name in names}
    for ref in mailbox.aliases:
        alias = directory.canonical(ref.address)
        owned.add(alias)
        if alias.domain == domain.name:
            owned |= {Address(alias.local, name) for name in names}
    owned |= {directory.canonical(ref.address) for ref in mailbox.send_as}
    return owned


def access_listed(entries, address: str, delimiter: str) -> bool:
    """Whether an access table keyed by `entries` (addresses and domains, as the filters
    block holds them) matches `address` the way Postfix's smtpd looks it up: the address,
    the address without its extension, the domain, then each parent domain
    (parent_domain_matches_subdomains names the smtpd access maps)."""
    local, _, domain = address.lower().rpartition("@")
    labels = domain.split(".")
    keys = {f"{local}@{domain}", f"{split_extension(local, delimiter)[0]}@{domain}"}
    keys |= {".".join(labels[i:]) for i in range(len(labels))}
    return not keys.isdisjoint(entries)


def may_send(spec: model.Spec, login: str | None, sender: str, recipient: str) -> Verdict:
    """Whether submission (587 or 465) accepts MAIL FROM `sender` and RCPT TO `recipient`
    from a client logged in as `login` (None: not logged in)."""
    if login is None:
        return Verdict(False, "submission needs a login")
    if not sender:
        return Verdict(False, "the null sender is refused on submission")
    if login not in owners(spec, sender):
        return Verdict(False, "the login does not own the sender address")
    if access_listed(spec.server.filters.reject_senders, sender, spec.server.recipient_delimiter):
        return Verdict(False, "refused by reject_sender")
    return _recipient_policy(spec, _split(sender), recipient, logged_in=True)


def may_receive(spec: model.Spec, sender: str, recipient: str) -> Verdict:
    """Whether port 25 accepts MAIL FROM `sender` and RCPT TO `recipient` from a client
    that is not logged in and not in mynetworks (another MTA on the internet)."""
    if not Directory(spec).served(_split(recipient).domain):
        return Verdict(False, "relay access denied")
    delimiter = spec.server.recipient_delimiter
    if access_listed(spec.server.filters.reject_senders, sender, delimiter):
        return Verdict(False, "refused by reject_sender")
    served = {name for d in spec.domains for name in d.names}
    if not spec.server.filters.own_domains_from_outside and access_listed(served, sender, delimiter):
        return Verdict(False, "our own domain as sender from outside")
    return _recipient_policy(spec, _split(sender), recipient, logged_in=False)


def _recipient_policy(spec: model.Spec, sender: Address, recipient: str, logged_in: bool) -> Verdict:
    """The recipient's own refusals, then a list's posting policy."""
    resolution = resolve(spec, recipient)
    if resolution.rejected:
        return Verdict(False, resolution.rejected)
    directory = Directory(spec)
    target = directory.canonical(_split(recipient))
    base = split_extension(target.local, spec.server.recipient_delimiter)[0]
    found = directory.entries.get(target) or directory.entries.get(Address(base, target.domain))
    if not isinstance(found, model.MailingList):
        return Verdict(True)
    if found.require_auth and not logged_in:
        return Verdict(False, "the list requires a login")
    if found.post is not model.Post.ANYONE:
        allowed = ({directory.canonical(r.address) for r in found.members}
                   if found.post is model.Post.MEMBERS else {directory.canonical(found.announcer.address)})
        untagged = Address(split_extension(sender.local, spec.server.recipient_delimiter)[0], sender.domain)
        if directory.canonical(sender) not in allowed and directory.canonical(untagged) not in allowed:
            return Verdict(False, f"only {found.post.value} may post to the list")  # an access lookup
    return Verdict(True)
