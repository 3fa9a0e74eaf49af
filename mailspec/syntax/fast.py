"""The fast path: a recursive-descent parser for the grammar in grammar/mailspec.lark.

The grammar stays the specification. This parser only handles text that the grammar
accepts; at the first thing it does not expect it gives up (`Fallback`), and the LALR
driver parses the file again to report the error with the grammar's expected tokens.
Where it succeeds it must build the same tree as the driver and `Builder`:
tests/syntax/test_fast.py holds the two to that on fixtures and generated text.
It exists because a table-driven parser in CPython costs several µs per token.
"""

from __future__ import annotations

import re

from mailspec.source import Span
from mailspec.syntax.tree import Entry, SieveNode, Text, Value

_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_ESCAPE = re.compile(r"\\(.)")


def unescape(quoted: str) -> str:
    """The value of a string token: quotes removed, escapes resolved."""
    if "\\" not in quoted:
        return quoted[1:-1]
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), quoted[1:-1])


class Fallback(Exception):
    """Not a text this parser is sure about: use the LALR driver."""


# Sieve keywords by grammar rule; tests/syntax/test_fast.py checks them against the grammar.
MATCHES = frozenset({"is", "contains", "matches"})
SIZE_OPS = frozenset({"over", "under"})
TEXT_TESTS = {"header": 3, "address": 3, "envelope": 3, "exists": 1}
TEXT_ACTIONS = {"fileinto": "fileinto", "reject": "reject", "addflag": "addflag"}
BARE_ACTIONS = frozenset({"discard", "keep", "stop"})


class FastParser:
    """One use: `FastParser(driver, file, text).parse()`."""

    def __init__(self, driver, file: str, text: str):
        self.token_re = driver.token_re
        self.skip_re = driver.skip_re
        # Words that start a statement (the grammar's `key`), and `sieve`.
        self.statement_words = driver.statement_words
        self.item_words = driver.item_words
        self.file = file
        self.text = text

    def parse(self) -> tuple:
        self.tokens = self._tokens(self.text)
        self.index = 0
        items = self._items(None)
        if self.index != len(self.tokens):
            raise Fallback
        return tuple(items)

    # ------------------------------------------------------------ tokens

    def _tokens(self, text: str) -> list[tuple]:
        """(kind, text, span, newline before); kind is W, S or the punctuation itself."""
        tokens = []
        append = tokens.append
        file = self.file
        position = 0
        for match in iter(self.token_re.scanner(text).match, None):
            skipped, word, string, symbol = match.groups()
            start = position + len(skipped)
            if word is not None:
                position = start + len(word)
                append(("W", word, Span(file, start, position), "\n" in skipped))
            elif string is not None:
                position = start + len(string)
                append(("S", string, Span(file, start, position), False))
            else:
                position = start + len(symbol)
                append((symbol, symbol, Span(file, start, position), False))
        if self.skip_re.match(text, position).end() != len(text):
            raise Fallback
        return tokens

    def _peek(self) -> tuple | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _expect(self, kind: str) -> tuple:
        token = self._peek()
        if token is None or token[0] != kind:
            raise Fallback
        self.index += 1
        return token

    @staticmethod
    def _text(token) -> Text:
        if token[0] == "S":
            return Text(unescape(token[1]), token[2], True)
        return Text(token[1], token[2], False)

    # ------------------------------------------------------------ statements

    def _items(self, closing: str | None) -> list:
        """Entries and sieve blocks up to `closing` (`}`), or to the end of the text."""
        items = []
        tokens = self.tokens
        while self.index < len(tokens):
            kind, word = tokens[self.index][:2]
            if kind == ";":
                self.index += 1
            elif kind == closing:
                return items
            elif kind == "W" and word == "sieve":
                items.append(self._sieve_block())
            elif kind == "W" and word in self.statement_words:
                items.append(self._entry())
            else:
                raise Fallback
        if closing is not None:
            raise Fallback
        return items

    def _entry(self) -> Entry:
        key = self.tokens[self.index]
        self.index += 1
        values, targets, body = (), None, None
        end = key[2]
        if self._value_starts(after_key=True):
            values, end = self._values()
        token = self._peek()
        if token is not None and token[0] == "->":
            self.index += 1
            targets, end = self._values()
            token = self._peek()
        if token is not None and token[0] == "{":
            self.index += 1
            body = tuple(self._items("}"))
            end = self._expect("}")[2]
        return Entry(key[1], key[2], values, targets, body, key[2].to(end))

    def _value_starts(self, after_key: bool = False) -> bool:
        """Whether the next token continues a value (the driver's contextual keyword rule)."""
        token = self._peek()
        if token is None or token[0] == "S":
            return token is not None
        if token[0] != "W":
            return False
        if token[1] not in self.item_words:
            return True
        # A statement keyword is a value only right after the key, on the same line.
        return after_key and not token[3]

    def _values(self) -> tuple[tuple[Value, ...], Span]:
        values = [self._value(first_after_key=True)]
        while self._peek() is not None and self._peek()[0] == ",":
            self.index += 1
            values.append(self._value(first_after_key=None))
        return tuple(values), values[-1].span

    def _value(self, first_after_key) -> Value:
        """Words and strings up to a comma, arrow, brace or the next statement."""
        token = self._peek()
        if token is None or token[0] not in ("W", "S"):
            raise Fallback
        self.index += 1
        texts = [self._text(token)]
        while self._value_starts():
            texts.append(self._text(self.tokens[self.index]))
            self.index += 1
        return Value(tuple(texts), texts[0].span.to(texts[-1].span))

    # ------------------------------------------------------------ sieve

    def _sieve_block(self) -> SieveNode:
        keyword = self.tokens[self.index]
        self.index += 1
        commands, end = self._sieve_body()
        return SieveNode("sieve_block", (), (commands,), keyword[2].to(end))

    def _sieve_body(self) -> tuple[tuple, Span]:
        self._expect("{")
        commands = []
        while True:
            token = self._peek()
            if token is None:
                raise Fallback
            if token[0] == "}":
                self.index += 1
                return tuple(commands), token[2]
            if token[0] == ";":
                self.index += 1
            else:
                commands.append(self._command())

    def _keyword(self) -> tuple:
        token = self._peek()
        if token is None or token[0] != "W":
            raise Fallback
        self.index += 1
        return token

    def _sieve_text(self) -> Text:
        token = self._peek()
        if token is None or token[0] not in ("W", "S"):
            raise Fallback
        self.index += 1
        return self._text(token)

    def _command(self) -> SieveNode:
        keyword = self._keyword()
        name = keyword[1]
        if name == "if":
            test = self._test()
            body, end = self._sieve_body()
            nested = [test, body]
            while self._next_word_is("elsif"):
                start = self._keyword()[2]
                test = self._test()
                body, end = self._sieve_body()
                nested.append(SieveNode("elsif_branch", (), (test, body), start.to(end)))
            if self._next_word_is("else"):
                start = self._keyword()[2]
                body, end = self._sieve_body()
                nested.append(SieveNode("else_branch", (), (body,), start.to(end)))
            return SieveNode("if_command", (), tuple(nested), keyword[2].to(end))
        if name in TEXT_ACTIONS:
            text = self._sieve_text()
            return SieveNode(name, (text,), (), keyword[2].to(text.span))
        if name in BARE_ACTIONS:
            return SieveNode(name, (), (), keyword[2])
        if name == "redirect":
            texts = [self._sieve_text()]
            if self._next_word_is("copy"):
                texts.append(self._text(self._keyword()))
            return SieveNode(name, tuple(texts), (), keyword[2].to(texts[-1].span))
        if name == "vacation":
            return self._vacation(keyword)
        raise Fallback

    def _vacation(self, keyword) -> SieveNode:
        text = self._sieve_text()
        options = []
        while True:
            if self._next_word_is("subject"):
                option = self._keyword()
                value = self._sieve_text()
                options.append(SieveNode("vacation_subject", (value,), (), option[2].to(value.span)))
            elif self._next_word_is("days"):
                option = self._keyword()
                token = self._expect("W")
                options.append(SieveNode("vacation_days", (self._text(token),), (),
                                         option[2].to(token[2])))
            else:
                break
        end = options[-1].span if options else text.span
        return SieveNode("vacation", (text,), tuple(options), keyword[2].to(end))

    def _next_word_is(self, word: str) -> bool:
        token = self._peek()
        return token is not None and token[0] == "W" and token[1] == word

    def _test(self) -> SieveNode:
        keyword = self._keyword()
        name = keyword[1]
        if name in TEXT_TESTS:
            texts = [self._sieve_text()]
            if TEXT_TESTS[name] == 3:
                match = self._keyword()
                if match[1] not in MATCHES:
                    raise Fallback
                texts += [self._text(match), self._sieve_text()]
            return SieveNode(f"{name}_test", tuple(texts), (), keyword[2].to(texts[-1].span))
        if name == "size":
            operator = self._keyword()
            if operator[1] not in SIZE_OPS:
                raise Fallback
            texts = [self._text(operator), self._text(self._expect("W"))]
            token = self._peek()
            if token is not None and token[0] == "W":
                texts.append(self._text(token))
                self.index += 1
            return SieveNode("size_test", tuple(texts), (), keyword[2].to(texts[-1].span))
        if name in ("allof", "anyof"):
            self._expect("(")
            tests = [self._test()]
            while self._peek() is not None and self._peek()[0] == ",":
                self.index += 1
                tests.append(self._test())
            end = self._expect(")")[2]
            return SieveNode(f"{name}_test", (), tuple(tests), keyword[2].to(end))
        if name == "not":
            test = self._test()
            return SieveNode("not_test", (), (test,), keyword[2].to(test.span))
        if name in ("true", "false"):
            return SieveNode(f"{name}_test", (), (), keyword[2])
        raise Fallback
