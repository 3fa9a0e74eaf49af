"""Syntax pass: text -> syntax tree (entries and Sieve nodes, each with its span)."""

from mailspec.syntax.parser import parse, statement_words
from mailspec.syntax.tree import Entry, SieveNode, Text, Value

__all__ = ["parse", "statement_words", "Entry", "SieveNode", "Text", "Value"]
