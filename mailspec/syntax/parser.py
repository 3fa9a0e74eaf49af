"""Parse one source file into syntax-tree nodes, or raise SpecError with a syntax diagnostic."""

from __future__ import annotations

import functools
import re
from importlib import resources

import attrs
from lark import Lark

from mailspec import language
from mailspec.diagnostics import SpecError
from mailspec.source import Span
from mailspec.syntax import errors
from mailspec.syntax.driver import Driver, ParseError, Tok
from mailspec.syntax.fast import MAX_DEPTH, Fallback, FastParser, unescape
from mailspec.syntax.tree import Entry, SieveNode, Text, Value


def _span(children) -> Span:
    last = children[-1]
    return children[0].span.to((last[-1] if isinstance(last, list) else last).span)


def _text(token: Tok) -> Text:
    if token.type == "STRING":
        return Text(unescape(token.value), token.span, True)
    return Text(token.value, token.span, False)


class _Part(tuple):
    """A piece of a rule that its parent takes apart: (kind, items, span)."""

    kind = property(lambda self: self[0])
    items = property(lambda self: self[1])
    span = property(lambda self: self[2])


class Builder:
    """One method per grammar rule; each gets the rule's children (tokens and values).

    Rules whose name starts with `_`, and `?rules` with one child, pass their child up.
    Rules without a method here become SieveNodes named after the rule.
    """

    @staticmethod
    def start(children):
        return tuple(children[0]) if children else ()

    @staticmethod
    def items(children):
        # `items: entry | items entry | …`: the first child is the list built so far.
        head = children[0]
        if isinstance(head, list):
            if not isinstance(children[1], Tok):  # a `;` adds nothing
                head.append(children[1])
            return head
        return [] if isinstance(head, Tok) else [head]

    sieve_commands = items

    @staticmethod
    def entry(children):
        key, values, targets, body = children[0], (), None, None
        for part in children[1:]:
            if part.kind == "values":
                values = tuple(part.items)
            elif part.kind == "arrow":
                targets = part.items
            else:
                body = part.items
        return Entry(key.value, key.span, values, targets, body, _span(children))

    @staticmethod
    def key(children):
        return children[0]

    @staticmethod
    def values(children):
        # `values: value | values "," value`
        if len(children) == 1:
            return _Part(("values", [children[0]], children[0].span))
        part = children[0]
        part.items.append(children[2])
        return _Part(("values", part.items, part.span.to(children[2].span)))

    @staticmethod
    def arrow(children):
        return _Part(("arrow", tuple(children[1].items), _span(children)))

    @staticmethod
    def body(children):
        return _Part(("body", tuple(children[1]) if len(children) == 3 else (), _span(children)))

    @staticmethod
    def value(children):
        # `value: WORD | STRING | value WORD | value STRING`
        if len(children) == 1:
            text = _text(children[0])
            return Value((text,), text.span)
        head, token = children
        text = _text(token)
        return Value(head.words + (text,), head.span.to(text.span))

    # ---------------------------------------------------------------- sieve

    @staticmethod
    def sieve_body(children):
        return _Part(("sieve_body", tuple(children[1]) if len(children) == 3 else (),
                      _span(children)))

    @staticmethod
    def tests(children):
        # `tests: test | tests "," test`
        if len(children) == 1:
            return [children[0]]
        children[0].append(children[2])
        return children[0]

    @staticmethod
    def elsif_branches(children):
        if len(children) == 1:
            return [children[0]]
        children[0].append(children[1])
        return children[0]

    vacation_options = elsif_branches

    @staticmethod
    def match(children):
        return children[0]

    size_op = copy = match

    _SYMBOLS = frozenset({"(", ")", ",", ";", "{", "}"})

    @classmethod
    def node(cls, kind: str, children) -> SieveNode:
        # children[0] is the keyword (`fileinto`, `header`…); later tokens are arguments.
        texts = tuple(_text(c) for c in children[1:]
                      if isinstance(c, Tok) and c.value not in cls._SYMBOLS)
        nested = []
        for child in children:
            if isinstance(child, list):  # elsif branches, test lists, vacation options
                nested.extend(child)
            elif isinstance(child, _Part):  # a `{ … }` body stays one tuple
                nested.append(child.items)
            elif not isinstance(child, Tok):
                nested.append(child)
        return SieveNode(kind, texts, tuple(nested), _span(children))


def _callback_for(rule):
    name = str(rule.origin.name)
    method = getattr(Builder, name, None)
    if method is not None:
        return method
    if name.startswith("_") or rule.options.expand1:
        def pass_through(children):
            return children[0] if len(children) == 1 else Builder.node(name.lstrip("_"), children)
        return pass_through
    return functools.partial(Builder.node, name)


@functools.cache
def _grammar() -> str:
    """grammar/mailspec.lark with the statement keywords of the language schema."""
    text = resources.files("mailspec.grammar").joinpath("mailspec.lark").read_text("utf-8")
    keywords = " | ".join(f'"{k}"' for k in language.statement_keywords())
    return text.replace("!key: KEYWORDS\n", f"!key: {keywords}\n", 1)


@functools.cache
def _driver() -> Driver:
    lark = Lark(_grammar(), parser="lalr")  # only for its tables and terminals
    errors.name_terminals(lark.terminals)
    return Driver(lark, _callback_for)


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
    for match in _driver().all_tokens_re.finditer(text):
        brace = match.group("P")
        if brace == "{":
            stack.append(match.start("P"))
        elif brace == "}" and stack:
            opened = stack.pop()
            depth, first = _indent(text, match.start("P"))
            if suspect is None and first and depth < _indent(text, opened)[0]:
                suspect = (Span(file, opened, opened + 1), Span(file, match.start("P"), match.end("P")))
    if not stack:
        return None
    return suspect or (Span(file, stack[-1], stack[-1] + 1), None)


def statement_words() -> frozenset[str]:
    """The keywords that start a statement, and `sieve`."""
    return _driver().item_words


# Characters no spec needs and no daemon file may hold: C0 controls other than tab,
# newline, carriage return and form feed; DEL; and the bidi controls of Trojan Source.
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\ufeff]")
MAX_REPORTED = 20


def _controls(file: str, text: str) -> list:
    found = []
    for match in _CONTROL.finditer(text):
        span = Span(file, match.start(), match.end())
        found.append(errors.byte_order_mark(span) if match.group() == "\ufeff" and match.start() == 0
                     else errors.control_character(span, match.group()))
        if len(found) == MAX_REPORTED:
            break
    return found


def parse(file: str, text: str) -> tuple:
    """The top-level nodes of `text`. `file` names it in spans and diagnostics."""
    controls = _controls(file, text)
    if controls:
        raise SpecError(controls)
    driver = _driver()
    try:
        return FastParser(driver, file, text).parse()
    except Fallback:
        pass
    try:
        nodes = driver.parse(file, text)
    except ParseError as error:
        raise SpecError(_every_syntax_error(driver, file, text, error)) from None
    deep = _too_deep(nodes)
    if deep is not None:
        raise SpecError([errors.too_deep(deep, MAX_DEPTH)])
    return nodes


def _every_syntax_error(driver: Driver, file: str, text: str, error: ParseError) -> list:
    """The first syntax error and those after it, up to MAX_REPORTED. To go on after an
    error, the rest of its line is blanked out (braces kept, so blocks stay matched, and
    every offset stays where it was) and the text is parsed again. It stops at the end of
    the file, or when blanking makes no progress."""
    found = [_syntax_diagnostic(text, error)]
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
            found.append(_syntax_diagnostic(text, error))
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


def _too_deep(nodes: tuple) -> Span | None:
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


def _syntax_diagnostic(text: str, error: ParseError):
    if error.token is None and error.span.start < len(text):
        return errors.unexpected_character(error.span, text)
    if error.token is None:
        unclosed = _unclosed_brace(error.span.file, text) if "RBRACE" in error.expected else None
        if unclosed is not None:
            return errors.unclosed_brace(*unclosed)
        return errors.unexpected_end(error.span, error.expected)
    return errors.unexpected_token(error.span, error.token.value, error.token.type, error.expected)
