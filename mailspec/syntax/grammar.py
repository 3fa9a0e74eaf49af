"""The grammar: grammar/mailspec.lark with the statement keywords of the language schema
(mailspec/language.py) filled in, and Lark's analysis of it: terminals and LALR tables."""

from __future__ import annotations

import functools
from importlib import resources

from mailspec import language
from mailspec.syntax import errors


@functools.cache
def text() -> str:
    found = resources.files("mailspec.grammar").joinpath("mailspec.lark").read_text("utf-8")
    keywords = " | ".join(f'"{k}"' for k in language.statement_keywords())
    return found.replace("!key: KEYWORDS\n", f"!key: {keywords}\n", 1)


@functools.cache
def lark():
    """Lark's analysis (imported here: the fast path never needs it)."""
    from lark import Lark

    found = Lark(text(), parser="lalr")  # only for its tables and terminals
    errors.name_terminals(found.terminals)
    return found
