"""What `mailspec diff` finds, as plain data: one record per change, each with where it
was declared (`Where`: which side, and the span there). The renderers only print these."""

from __future__ import annotations

import attrs

from mailspec.source import Span


@attrs.frozen
class Where:
    side: str  # "old" or "new"
    span: Span


@attrs.frozen
class Delivery:
    """What happens to mail sent to an address, on one side (semantics.resolve)."""

    recipients: tuple[str, ...] = ()  # final envelope recipients, sorted
    rejected: str | None = None  # why RCPT is refused
    redirects: tuple[str, ...] = ()  # where the recipients' Sieve rules may redirect it
    external: tuple[str, ...] = ()  # recipients and redirects outside the served domains

    def shown(self) -> str:
        if self.rejected:
            return f"refused ({self.rejected})"
        text = ", ".join(self.recipients) or "nobody"
        return text + (f"; Sieve may redirect to {', '.join(self.redirects)}" if self.redirects else "")


@attrs.frozen
class AddressChange:
    """`before`/`after`: mail to the address; `tagged_…`: to it with an extension (`+tag`),
    which can differ (an alias carries the extension on, a catch-all does not)."""

    address: str
    before: Delivery
    after: Delivery
    tagged_before: Delivery
    tagged_after: Delivery
    where: tuple[Where, ...]
    tagged_differs: bool = False  # mail with an extension changes otherwise than mail without

    @property
    def newly_external(self) -> tuple[str, ...]:
        """Destinations outside the organisation that mail to it did not reach before."""
        return tuple(sorted(set(self.after.external) - set(self.before.external)))


@attrs.frozen
class DomainBehaviour:
    """How one domain name treats addresses the spec does not declare, on one side."""

    served: str | None  # the domain it delivers as (itself, or the domain it is an alias of); None: relayed
    unknown: Delivery  # an undeclared address: its catch-all, or refused
    tagged: Delivery  # an undeclared address with an extension (plus addressing)

    def shown(self) -> str:
        if self.served is None:
            return f"not served: relayed ({self.unknown.shown()})" if not self.unknown.rejected else \
                f"not served: {self.unknown.shown()}"
        name = "served" if self.unknown.rejected != "refused by reject_recipient" else "served, but"
        return f"{name} as {self.served}; unknown addresses: {self.unknown.shown()}; tagged: {self.tagged.shown()}"


@attrs.frozen
class DomainChange:
    domain: str
    before: DomainBehaviour
    after: DomainBehaviour
    where: tuple[Where, ...]

    @property
    def newly_external(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.after.unknown.external) - set(self.before.unknown.external)))


@attrs.frozen
class Change:
    """A change in the other sections: `subject` (a login, list, mailbox, setting) from
    `before` to `after`, each shown as text; `risky` when it widens what is allowed."""

    section: str
    subject: str
    before: str
    after: str
    where: tuple[Where, ...]
    risky: str | None = None  # why it widens access
    added: tuple[str, ...] = ()  # items that appear (send-as addresses, members, rules)
    removed: tuple[str, ...] = ()


@attrs.frozen
class FileCounts:
    added: int = 0
    changed: int = 0
    removed: int = 0


@attrs.frozen
class Diff:
    addresses: tuple[AddressChange, ...] = ()
    domains: tuple[DomainChange, ...] = ()
    changes: tuple[Change, ...] = ()  # sending, lists, limits, sieve, server, by section
    files: tuple[tuple[str, FileCounts], ...] = ()  # per daemon directory

    @property
    def empty(self) -> bool:
        """No change in meaning (the generated files alone do not count)."""
        return not (self.addresses or self.domains or self.changes)

    def section(self, name: str) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.section == name)
