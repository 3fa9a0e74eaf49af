"""A lean LALR driver over the tables that Lark builds from grammar/mailspec.lark.

Why not `Lark.parse`: its lexer and parser cost about 10 µs per token in CPython,
which puts 100,000 mailboxes far over the compile budget. This driver runs Lark's
parse table with the contextual keyword rule, calls one plain function per rule,
lexes with one compiled regex that skips whitespace and comments inside the match,
and keeps tokens as tuples.
It stops at the first error with a ParseError naming the terminals it expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from lark import Lark
from lark.parsers.lalr_analysis import Shift

from mailspec.source import Span


class Tok(NamedTuple):
    type: str
    value: str
    span: Span


class Driver:
    def __init__(self, lark: Lark, callback_for: Callable):
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
        # Keywords that start a statement. Right after one, on the same line, a word that
        # is also a keyword is read as a value (`post announcer`); on a new line, or after
        # another value, it starts the next statement (`keep_copy` ⏎ `send_only`).
        self.statement_keywords = {
            rule.expansion[0].name for rule in lark.rules if rule.origin.name == "key"}
        self.punctuation: dict[str, str] = {}  # literal -> terminal name
        self.keywords: dict[str, str] = {}
        patterns: dict[str, str] = {}
        for terminal in lark.terminals:
            pattern = terminal.pattern
            if pattern.type == "str":
                table_for = self.keywords if re.fullmatch(r"\w+", pattern.value) else self.punctuation
                table_for[pattern.value] = terminal.name
            else:
                patterns[terminal.name] = pattern.to_regexp()
        # What the grammar ignores (WS and COMMENT). Possessive, so that a bad character
        # after a long run of blanks does not make the regex backtrack through it.
        assert set(lark.ignore_tokens) == {"WS", "COMMENT"}, lark.ignore_tokens
        skip = r"[ \t\r\n\f]++|#[^\n]*+"
        punctuation = "|".join(re.escape(p) for p in sorted(self.punctuation, key=len, reverse=True))
        # Group 1 is what was skipped; then exactly one token kind.
        self.skip_re = re.compile(rf"(?:{skip})*+")
        self.statement_words = frozenset(
            literal for literal, name in self.keywords.items() if name in self.statement_keywords)
        self.item_words = self.statement_words | {"sieve"}
        tokens = rf"(?P<WORD>{patterns['WORD']})|(?P<STRING>{patterns['STRING']})|(?P<P>{punctuation})"
        self.token_re = re.compile(rf"((?:{skip})*+)(?:{tokens})")
        # For findall over a whole text (the fast path): the end of the text is a token
        # too, so that trailing blanks and comments are one match, not searched through.
        # Any other character is matched as the last group, so that findall never
        # retries a long run of blanks or comments at every position before it.
        self.all_tokens_re = re.compile(rf"((?:{skip})*+)(?:{tokens}|\Z|((?s:.)))")

    def parse(self, file: str, text: str):
        """The value of the start rule; ParseError at the first token that does not fit."""
        states, keywords, statement_keywords = self.states, self.keywords, self.statement_keywords
        punctuation, end_state = self.punctuation, self.end_state
        state_stack = [self.start_state]
        value_stack: list = []
        position = 0
        previous_type = None
        match = self.token_re.match
        length = len(text)
        while True:
            m = match(text, position)
            if m is None:
                end = self.skip_re.match(text, position).end()
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
                        if keyword in acceptable and not (
                                "WORD" in acceptable and previous_type in statement_keywords
                                and "\n" not in m.group(1)):
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
