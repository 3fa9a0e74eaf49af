"""Syntax pass: text -> syntax tree (entries and Sieve nodes, each with its span).

reader.parse is the way in; lexer.tokens gives the tokens to anything else."""

from mailspec.syntax.lexer import Token, tokens
from mailspec.syntax.reader import parse, statement_words
from mailspec.syntax.tree import Entry, SieveNode, Text, Value

__all__ = ["Entry", "SieveNode", "Text", "Token", "Value", "parse", "statement_words", "tokens"]
