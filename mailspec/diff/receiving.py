"""The receiving section: whose delivery changed, from the reference semantics on both
sides. Addresses are not enumerated: the declarations that differ are the seeds, and
every address that reaches a seed through an alias, list, forward, mailbox alias or
catch-all is looked at too (the reverse edges of both sides). Each domain name gets one
probe for what it does with undeclared and tagged addresses, so a catch-all, plus
addressing, alias-domain or filter change is one entry per domain."""

from __future__ import annotations

import functools

from mailspec import model
from mailspec.diff.changes import AddressChange, Delivery, DomainBehaviour, DomainChange, Where
from mailspec.model import Address
from mailspec.semantics import Directory, resolve, split_extension

PROBE = "mailspec-diff-probe"  # a local part no spec declares


def _key(text: str) -> str:
    return text.lower()


def _redirects(commands) -> set[Address]:
    found = set()
    for command in commands:
        if isinstance(command, model.Redirect):
            found.add(command.to)
        elif isinstance(command, model.If):
            for branch in command.branches:
                found |= _redirects(branch.body)
            found |= _redirects(command.otherwise or ())
    return found


class Side:
    """One spec, indexed for the diff: its declarations by address, its domain settings
    by name, and who points at each address."""

    def __init__(self, spec: model.Spec, name: str):
        self.spec, self.name = spec, name
        self.directory = Directory(spec)
        self.delimiter = spec.server.recipient_delimiter
        self.declared: dict[str, tuple[object, model.Span | None]] = {}
        self.pointing: dict[str, set[str]] = {}  # address -> addresses (and "@domain") that point at it
        self.mailboxes: dict[str, model.Mailbox] = {}
        for domain in spec.domains:
            for box in domain.mailboxes:
                address = str(domain.address(box.local))
                self.declared[address] = (box, box.span)
                self.mailboxes[address] = box
                for ref in box.forwards:
                    self._point(ref.address, address)
                for ref in box.aliases:
                    alias = str(self.directory.canonical(ref.address))
                    self.declared.setdefault(alias, (("alias of", address), ref.span))
                    self._point(domain.address(box.local), alias)
            for entry in (*domain.aliases, *domain.lists):
                address = str(domain.address(entry.local))
                self.declared.setdefault(address, (entry, entry.span))
                for ref in entry.targets if isinstance(entry, model.Alias) else entry.members:
                    self._point(ref.address, address)
            if domain.catch_all is not None:
                for name in domain.names:
                    self._point(domain.catch_all.address, "@" + name)

    def _point(self, target: Address, source: str) -> None:
        base = Address(split_extension(target.local, self.delimiter)[0], target.domain)
        for address in {target, base, self.directory.canonical(target), self.directory.canonical(base)}:
            self.pointing.setdefault(_key(str(address)), set()).add(source)

    @functools.cached_property
    def names(self) -> set[str]:
        """Every domain name it serves."""
        return {n for d in self.spec.domains for n in d.names}

    def names_of(self, domain: str) -> set[str]:
        """Every name of the served domain `domain` (none if it is not served)."""
        found = self.directory.domains.get(self.directory.real.get(domain, domain))
        return set(found.names) if found is not None else set()

    def domain_settings(self, name: str) -> tuple:
        real = self.directory.real.get(name, name if name in self.directory.domains else None)
        if real is None:
            return (None,)
        domain = self.directory.domains[real]
        catch_all = str(self.directory.canonical(domain.catch_all.address)) if domain.catch_all else None
        return real, catch_all, domain.plus_addressing

    def delivery(self, address: str) -> Delivery:
        found = resolve(self.spec, address, self.directory)
        if found.rejected:
            return Delivery(rejected=found.rejected)
        served = self.names
        redirects = set()
        for recipient in found.recipients:
            local, _, domain = recipient.rpartition("@")
            box = self.mailboxes.get(f"{split_extension(local, self.delimiter)[0].lower()}@{domain}")
            if box is not None:
                redirects |= {str(a) for a in _redirects(box.sieve)}
        outside = {r for r in (*found.recipients, *redirects) if r.rpartition("@")[2].lower() not in served}
        return Delivery(tuple(sorted(found.recipients)), None, tuple(sorted(redirects)), tuple(sorted(outside)))

    def tagged(self, address: str) -> Delivery:
        local, _, domain = address.rpartition("@")
        return self.delivery(f"{split_extension(local, self.delimiter)[0]}{self.delimiter}tag@{domain}")

    def untagged(self, delivery: Delivery) -> Delivery:
        """A tagged probe's delivery with the probe's extension taken off again."""
        def strip(items: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(sorted({i.replace(f"{self.delimiter}tag@", "@") for i in items}))
        return Delivery(strip(delivery.recipients), delivery.rejected, delivery.redirects, strip(delivery.external))

    def behaviour(self, name: str) -> DomainBehaviour:
        return DomainBehaviour(self.domain_settings(name)[0], self.delivery(f"{PROBE}@{name}"),
                               self.delivery(f"{PROBE}{self.delimiter}tag@{name}"))

    def where(self, address: str) -> list[Where]:
        found = self.declared.get(address)
        return [Where(self.name, found[1])] if found and found[1] is not None else []

    def domain_where(self, name: str) -> list[Where]:
        real = self.directory.real.get(name, name)
        domain = self.directory.domains.get(real)
        return [Where(self.name, domain.span)] if domain is not None and domain.span is not None else []


def _filter_entries(spec: model.Spec) -> set[str]:
    return set(spec.server.filters.reject_recipients)


def _seeds(old: Side, new: Side) -> tuple[set[str], set[str]]:
    """(addresses, domain names) whose own declaration or settings differ."""
    if old.delimiter != new.delimiter:  # every split changes: look at everything
        return set(old.declared) | set(new.declared), old.names | new.names
    addresses = {a for a in old.declared.keys() | new.declared.keys()
                 if old.declared.get(a, (None,))[0] != new.declared.get(a, (None,))[0]}
    names = {n for n in old.names | new.names if old.domain_settings(n) != new.domain_settings(n)}
    known = old.names | new.names | {t.rpartition("@")[2] for side in (old, new) for t in side.pointing}
    for entry in _filter_entries(old.spec) ^ _filter_entries(new.spec):
        if "@" in entry:
            addresses.add(entry)
        else:  # the domain, and its subdomains (smtpd's parent-domain matching)
            names.add(entry)
            names |= {n for n in known if n.endswith("." + entry)}
    return addresses, names


def _closure(old: Side, new: Side, addresses: set[str], names: set[str]) -> tuple[set[str], set[str]]:
    """Everything that reaches a seed, on either side."""
    targets_in: dict[str, set[str]] = {}  # domain -> the addresses pointed at in it
    for side in (old, new):
        for target in side.pointing:
            targets_in.setdefault(target.rpartition("@")[2], set()).add(target)
    todo, seen_names = list(addresses), set()

    def reached_domain(name: str) -> None:
        if name not in seen_names:
            seen_names.add(name)
            todo.extend(targets_in.get(name, ()))  # what falls to its catch-all, or changed its meaning

    for name in names:
        reached_domain(name)
    seen: set[str] = set()
    while todo:
        address = _key(todo.pop())
        if address in seen:
            continue
        seen.add(address)
        for side in (old, new):
            for source in side.pointing.get(address, ()):
                if source.startswith("@"):
                    reached_domain(source[1:])
                elif source not in seen:
                    todo.append(source)
    return seen, seen_names


def _pairs(old: Side, new: Side, address: str) -> tuple[Delivery, Delivery, Delivery, Delivery]:
    return old.delivery(address), new.delivery(address), old.tagged(address), new.tagged(address)


def _differs(pairs: tuple[Delivery, ...]) -> bool:
    return pairs[0] != pairs[1] or pairs[2] != pairs[3]


def receiving(old: Side, new: Side) -> tuple[list[AddressChange], list[DomainChange]]:
    seeds, names = _seeds(old, new)
    addresses, names = _closure(old, new, seeds, names)
    changed = []
    for address in sorted(addresses):
        local, _, domain = address.rpartition("@")
        found = _pairs(old, new, address)
        shown = [(address, found)] if _differs(found) else []
        # In a domain's other names it changes the same, unless a filter names one of them.
        for name in sorted(old.names_of(domain) | new.names_of(domain) - {domain}):
            other = _pairs(old, new, f"{local}@{name}")
            if other != found and _differs(other):
                shown.append((f"{local}@{name}", other))
        for written, (before, after, tagged_before, tagged_after) in shown:
            plain = (old.untagged(tagged_before), new.untagged(tagged_after)) != (before, after)
            changed.append(AddressChange(written, before, after, tagged_before, tagged_after,
                                         tuple(old.where(address) + new.where(address)), plain))
    domains = []
    for name in sorted(names):
        before, after = old.behaviour(name), new.behaviour(name)
        if before != after:
            domains.append(DomainChange(name, before, after, tuple(old.domain_where(name) + new.domain_where(name))))
    return changed, domains
