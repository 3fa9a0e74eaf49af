"""docs/reference.md, generated from the block schemas the lowering reads
(mailspec.language): every block, every keyword, what it takes, whether it repeats, its
default (the model's own) and its one-line description. `mailspec reference` prints it;
tests/test_reference.py fails when the committed file is stale."""

from __future__ import annotations

import enum
import re

import attrs

from mailspec import language
from mailspec.lower import values

HEADER = """\
# mailspec language reference

Generated from the block schemas by `mailspec reference > docs/reference.md`; do not edit.
The prose, the types and the examples are in [language.md](language.md), and each
diagnostic's long form in `mailspec explain CODE`.

A keyword that *repeats* may be written more than once in its block. A value list such as
`a, b, c` is one statement. *Block* is the `{ }` block the keyword opens.
"""
_UNITS = ((86400, "d"), (3600, "h"), (60, "m"))


def anchor(block: language.Block) -> str:
    """The heading's anchor as Markdown renderers make it."""
    return "#" + re.sub(r"[^a-z0-9 _-]", "", block.name.lower()).replace(" ", "-")


def duration(seconds: int) -> str:
    """A duration as the language writes it: `7d`, `1h`, `10m`, `30 s`."""
    for size, unit in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds} s"


def shown_default(block: language.Block, keyword: language.Keyword) -> str:
    if keyword.shown_default is not None:
        return keyword.shown_default
    if keyword.name in block.required:
        return "required"
    if block.model is None:
        return "—"
    value = block.default(keyword)
    if value is attrs.NOTHING:
        return "required"
    if isinstance(value, attrs.Factory):
        value = value.factory()
    if value is None or value == ():
        return "none"
    if keyword.block is not None and attrs.has(type(value)):
        return f"[its block]({anchor(language.BLOCKS[keyword.block])})"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(keyword.takes, language.One) and keyword.takes.parse is values.duration:
        value = duration(value)
    if isinstance(value, str) and '"' in keyword.example:
        value = f'"{value}"'
    return f"`{value}`"


def keyword_row(block: language.Block, keyword: language.Keyword) -> str:
    takes = keyword.takes.expected + (" `->` addresses" if keyword.arrow else "")
    opens = f"[{keyword.block}]({anchor(language.BLOCKS[keyword.block])})" if keyword.block else ""
    cells = (f"`{keyword.name}`", takes, "yes" if keyword.repeats else "", shown_default(block, keyword),
             opens, keyword.about)
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def block_section(block: language.Block) -> str:
    lines = [f"## {block.name}", "", "```", block.example, "```", "",
             "| keyword | takes | repeats | default | block | what it does |", "|---|---|---|---|---|---|",
             *(keyword_row(block, k) for k in block.keywords)]
    if block.sieve:
        lines += ["", "It also holds `sieve { … }`, the mailbox's own rules: see "
                      "[language.md](language.md#sieve)."]
    return "\n".join(lines) + "\n"


def render() -> str:
    return "\n".join([HEADER, *(block_section(b) for b in language.BLOCKS.values())])
