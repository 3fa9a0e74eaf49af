"""Syntax tree nodes. NamedTuples: immutable and cheap, as there is one per statement."""

from __future__ import annotations

from typing import NamedTuple

from mailspec.source import Span


class Text(NamedTuple):
    """One word or string as written; `value` has string escapes resolved."""

    value: str
    span: Span
    quoted: bool


class Value(NamedTuple):
    """One comma-separated value: one or more words (`2 GiB`, `external a@b.org`)."""

    words: tuple[Text, ...]
    span: Span

    @property
    def text(self) -> str:
        if len(self.words) == 1:  # nearly always, and this is on the hot path
            return self.words[0].value
        return " ".join(w.value for w in self.words)


class Entry(NamedTuple):
    """`key value, … [-> value, …] [{ … }]`."""

    key: str
    key_span: Span
    values: tuple[Value, ...]
    targets: tuple[Value, ...] | None  # after `->`
    body: tuple[Node, ...] | None  # inside `{ }`
    span: Span


class SieveNode(NamedTuple):
    """A Sieve command or test: `kind` is the grammar rule (`header_test`, `fileinto`…)."""

    kind: str
    texts: tuple[Text, ...]
    children: tuple[SieveNode | tuple[SieveNode, ...], ...]
    span: Span


Node = Entry | SieveNode
