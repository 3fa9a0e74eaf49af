"""Read one source file into syntax-tree nodes, or raise SpecError with its syntax
diagnostics: control characters are refused first, the fast parser (parser.py) reads
the file, and where it gives up the LALR driver (lalr.py) parses it again, to build
the tree of text nested too deeply for recursion or to explain the errors (explain.py)."""

from __future__ import annotations

import re

from mailspec.diagnostics import SpecError
from mailspec.source import Span
from mailspec.syntax import errors
from mailspec.syntax.lexer import lexer
from mailspec.syntax.parser import MAX_DEPTH, Fallback, FastParser


def statement_words() -> frozenset[str]:
    """The keywords that start a statement, and `sieve`."""
    return lexer().item_words


# Characters no spec needs and no daemon file may hold: C0 controls other than tab,
# newline, carriage return and form feed; DEL; and the bidi controls of Trojan Source.
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\ufeff]")


def _controls(file: str, text: str) -> list:
    found = []
    for match in _CONTROL.finditer(text):
        span = Span(file, match.start(), match.end())
        found.append(errors.byte_order_mark(span) if match.group() == "\ufeff" and match.start() == 0
                     else errors.control_character(span, match.group()))
        if len(found) == errors.MAX_REPORTED:
            break
    return found


def parse(file: str, text: str) -> tuple:
    """The top-level nodes of `text`. `file` names it in spans and diagnostics."""
    controls = _controls(file, text)
    if controls:
        raise SpecError(controls)
    try:
        return FastParser(lexer(), file, text).parse()
    except Fallback:
        pass
    # Imported only here: they build Lark's tables, which the fast path never needs.
    from mailspec.syntax.explain import every_syntax_error, too_deep
    from mailspec.syntax.lalr import ParseError, driver

    lalr = driver()
    try:
        nodes = lalr.parse(file, text)
    except ParseError as error:
        raise SpecError(every_syntax_error(lalr, file, text, error)) from None
    deep = too_deep(nodes)
    if deep is not None:
        raise SpecError([errors.too_deep(deep, MAX_DEPTH)])
    return nodes


