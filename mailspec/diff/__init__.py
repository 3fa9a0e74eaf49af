"""`mailspec diff`: what changes in meaning between two specs, from the reference
semantics, not the text. See docs/diff.md."""

from __future__ import annotations

from mailspec import model
from mailspec.diff import sections
from mailspec.diff.changes import Diff
from mailspec.diff.receiving import Side, receiving

SECTIONS = (("sending", sections.sending), ("lists", sections.lists), ("limits", sections.limits),
            ("sieve", sections.sieve), ("server", sections.server))


def diff(old: model.Spec, new: model.Spec) -> Diff:
    """Every change in meaning from `old` to `new` (checked specs)."""
    before, after = Side(old, "old"), Side(new, "new")
    addresses, domains = receiving(before, after)
    changes = tuple(change for _, section in SECTIONS for change in section(before, after))
    return Diff(tuple(addresses), tuple(domains), changes)
