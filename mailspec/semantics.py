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


class _Directory:
    def __init__(self, spec: model.Spec):
        self.spec = spec
        self.domains = {d.name: d for d in spec.domains}
        self.real = {a.name: d.name for d in spec.domains for a in d.also}
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
        return Address(address.local, self.real.get(address.domain, address.domain))

    def served(self, domain: str) -> bool:
        return domain in self.domains or domain in self.real


def _split(text: str) -> Address:
    local, _, domain = text.rpartition("@")
    return Address(local.lower(), domain.lower())


def resolve(spec: model.Spec, address: str) -> Resolution:
    directory = _Directory(spec)
    delimiter = spec.server.recipient_delimiter
    filters = spec.server.filters
    original = _split(address)
    if not directory.served(original.domain):
        return Resolution(frozenset({str(original)}))
    if str(original) in filters.reject_recipients or original.domain in filters.reject_recipients:
        return Resolution(rejected="refused by reject_recipient")
    target = directory.canonical(original)
    domain = directory.domains[target.domain]
    base, _, extension = target.local.partition(delimiter)
    if extension and not domain.plus_addressing:
        return Resolution(rejected="plus addressing is disabled")
    found = directory.entries.get(target) or directory.entries.get(Address(base, target.domain))
    if isinstance(found, model.Mailbox) and found.send_only:
        return Resolution(rejected="send-only mailbox")
    if found is None and domain.catch_all is None:
        return Resolution(rejected="unknown user")
    recipients: set[str] = set()
    _expand(directory, original, recipients, frozenset())
    return Resolution(frozenset(recipients))


def _with_extension(address: Address, extension: str, delimiter: str) -> Address:
    return Address(f"{address.local}{delimiter}{extension}", address.domain) if extension else address


def _expand(directory: _Directory, address: Address, out: set[str], seen: frozenset) -> None:
    """Add the final recipients of `address`, expanding as Postfix's virtual aliases do:
    exact address first, then without the extension (which is then carried over to the
    results), then the domain's catch-all."""
    delimiter = directory.spec.server.recipient_delimiter
    if address in seen:
        return
    seen = seen | {address}
    if not directory.served(address.domain):
        out.add(str(address))
        return
    target = directory.canonical(address)
    base, _, extension = target.local.partition(delimiter)
    found = directory.entries.get(target)
    if found is None and extension:
        found = directory.entries.get(Address(base, target.domain))
    else:
        extension = ""  # matched as written: nothing to carry over
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
