"""Explaining syntax errors: the LALR driver re-parses a file the fast parser gave up
on, and names what the grammar expected at each error, up to MAX_REPORTED of them."""

from __future__ import annotations

import attrs

from mailspec.source import Span
from mailspec.syntax import errors
from mailspec.syntax.errors import MAX_REPORTED
from mailspec.syntax.lalr import Driver, ParseError
from mailspec.syntax.lexer import tokens
from mailspec.syntax.parser import MAX_DEPTH
from mailspec.syntax.tree import Entry, SieveNode


def every_syntax_error(driver: Driver, file: str, text: str, error: ParseError) -> list:
    """The first syntax error and those after it, up to MAX_REPORTED. To go on after an
    error, the rest of its line is blanked out (braces kept, so blocks stay matched, and
    every offset stays where it was) and the text is parsed again. It stops at the end of
    the file, or when blanking makes no progress."""
    found = [syntax_diagnostic(text, error)]
    seen = {error.span.start}
    while len(found) < MAX_REPORTED:
        blanked = _blank_rest_of_line(text, error.span.start)
        if blanked == text:
            break
        text = blanked
        try:
            driver.parse(file, text)
            break
        except ParseError as later:
            if later.span.start in seen:
                break
            error = later
            seen.add(error.span.start)
            found.append(syntax_diagnostic(text, error))
    if len(found) == MAX_REPORTED:
        found[-1] = attrs.evolve(found[-1], notes=found[-1].notes + (
            f"stopped after {MAX_REPORTED} syntax errors: fix these, then check again",))
    return found


def _blank_rest_of_line(text: str, start: int) -> str:
    """`text` with spaces from `start` to the end of its line, except for the braces that
    open or close a block beyond it (a `{ … }` pair inside the line goes too)."""
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    line = list(text[start:end])
    opened: list[int] = []
    kept = set()
    for index, char in enumerate(line):
        if char == "{":
            opened.append(index)
        elif char == "}":
            if opened:
                opened.pop()
            else:
                kept.add(index)
    kept.update(opened)
    blanked = "".join(char if index in kept else " " for index, char in enumerate(line))
    return text[:start] + blanked + text[end:]


def too_deep(nodes: tuple) -> Span | None:
    """The span of the first node nested deeper than MAX_DEPTH, found without recursion."""
    pending = [(node, 1) for node in nodes]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_DEPTH:
            return node.span
        children = (node.body or ()) if isinstance(node, Entry) else node.children
        for child in children:  # a node, or a tuple of nodes (a Sieve body)
            for item in ((child,) if isinstance(child, (Entry, SieveNode)) else child):
                pending.append((item, depth + 1))
    return None


def syntax_diagnostic(text: str, error: ParseError):
    if error.token is None and error.span.start < len(text):
        return errors.unexpected_character(error.span, text)
    if error.token is None:
        unclosed = _unclosed_brace(error.span.file, text) if "RBRACE" in error.expected else None
        if unclosed is not None:
            return errors.unclosed_brace(*unclosed)
        return errors.unexpected_end(error.span, error.expected)
    return errors.unexpected_token(error.span, error.token.value, error.token.type, error.expected)


def _indent(text: str, offset: int) -> tuple[int, bool]:
    """The indentation of the line holding `offset`, and whether only blanks precede it."""
    start = text.rfind("\n", 0, offset) + 1
    before = text[start:offset]
    return len(before) - len(before.lstrip(" \t")), not before.strip(" \t")


def _unclosed_brace(file: str, text: str) -> tuple[Span, Span | None] | None:
    """At an unexpected end of file: the `{` that is most likely never closed, and the
    `}` that was taken for its end (then the rest of the file went inside its block).
    By indentation: a `}` at the start of a line less indented than the line of the `{`
    it closes belongs to an outer block. Without such a `}`, the innermost open `{`."""
    stack: list[int] = []
    suspect = None
    for token in tokens(file, text):
        if token.kind == "{":
            stack.append(token.span.start)
        elif token.kind == "}" and stack:
            opened = stack.pop()
            depth, first = _indent(text, token.span.start)
            if suspect is None and first and depth < _indent(text, opened)[0]:
                suspect = (Span(file, opened, opened + 1), token.span)
    if not stack:
        return None
    return suspect or (Span(file, stack[-1], stack[-1] + 1), None)


