"""A lean LALR driver over the tables that Lark builds from grammar/mailspec.lark, and
the Builder of the tree it parses. It runs where the fast parser gives up: to explain
an error, and to parse text nested too deeply for recursion.

Why not `Lark.parse`: its lexer and parser cost about 10 µs per token in CPython.
This driver runs Lark's parse table with the contextual keyword rule, calls one plain
function per rule, lexes with lexer.py's regex, and keeps tokens as tuples.
It stops at the first error with a ParseError naming the terminals it expected.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

from lark import Lark
from lark.parsers.lalr_analysis import Shift

from mailspec.source import Span
from mailspec.syntax import grammar
from mailspec.syntax.lexer import Lexer, keyword_is_value, lexer
from mailspec.syntax.parser import unescape
from mailspec.syntax.tree import Entry, SieveNode, Text, Value


class Tok(NamedTuple):
    type: str
    value: str
    span: Span


class Driver:
    def __init__(self, lark: Lark, lexer: Lexer, callback_for: Callable):
        table = lark.parser.parser.parser.parse_table
        callbacks = {}
        # Plain-str keys (Lark's are str subclasses with a slow __eq__); a shift is
        # (True, next state), a reduction (False, (rule size, rule name, callback)).
        self.states = {}
        for state, actions in table.states.items():
            row = self.states[state] = {}
            for symbol, (action, argument) in actions.items():
                if action is Shift:
                    row[str(symbol)] = (True, argument)
                else:
                    if argument not in callbacks:
                        callbacks[argument] = callback_for(argument)
                    row[str(symbol)] = (False, (len(argument.expansion),
                                                str(argument.origin.name), callbacks[argument]))
        self.start_state = table.start_states["start"]
        self.end_state = table.end_states["start"]
        self.lexer = lexer

    def parse(self, file: str, text: str):
        """The value of the start rule; ParseError at the first token that does not fit."""
        lexer = self.lexer
        states, keywords, statement_keywords = self.states, lexer.keywords, lexer.statement_keywords
        punctuation, end_state = lexer.punctuation, self.end_state
        state_stack = [self.start_state]
        value_stack: list = []
        position = 0
        previous_type = None
        match = lexer.token_re.match
        length = len(text)
        while True:
            m = match(text, position)
            if m is None:
                end = lexer.skip_re.match(text, position).end()
                if end < length:
                    raise ParseError(Span(file, end, end + 1), None, states[state_stack[-1]])
                token = None
                token_type = "$END"
            else:
                kind = m.lastgroup
                value = m.group(kind)
                start = m.start(kind)
                position = m.end()
                if kind == "WORD":
                    kind = "WORD"
                    keyword = keywords.get(value)
                    if keyword is not None:
                        acceptable = states[state_stack[-1]]
                        if keyword in acceptable and not ("WORD" in acceptable and keyword_is_value(
                                previous_type in statement_keywords, "\n" in m.group(1))):
                            kind = keyword
                elif kind == "P":
                    kind = punctuation[value]
                token = Tok(kind, value, Span(file, start, position))
                token_type = previous_type = kind
            while True:
                action = states[state_stack[-1]].get(token_type)
                if action is None:
                    raise ParseError(token.span if token else Span(file, length, length), token,
                                     states[state_stack[-1]])
                is_shift, argument = action
                if is_shift:
                    state_stack.append(argument)
                    value_stack.append(token)
                    break
                size, rule_name, callback = argument
                if size:
                    children = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    children = []
                value_stack.append(callback(children))
                state_stack.append(states[state_stack[-1]][rule_name][1])
                if token is None and state_stack[-1] == end_state:
                    return value_stack[-1]


class ParseError(Exception):
    """The first place where the text does not fit the grammar."""

    def __init__(self, span: Span, token: Tok | None, acceptable: dict):
        super().__init__("syntax error")
        self.span = span
        self.token = token  # None: an unexpected character, or the end of the text
        self.expected = sorted(name for name in acceptable if name.isupper() or name == "$END")


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
def driver() -> Driver:
    return Driver(grammar.lark(), lexer(), _callback_for)
