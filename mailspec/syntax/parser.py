"""The parser: recursive descent for the grammar in grammar/mailspec.lark.

The grammar stays the specification. This parser only handles text that the grammar
accepts; at the first thing it does not expect it gives up (`Fallback`), and the LALR
driver (lalr.py) parses the file again to report the error with the grammar's expected
tokens. Where it succeeds it must build the same tree as the driver and its `Builder`:
tests/syntax/test_fast.py holds the two to that on fixtures and generated text.
It exists because a table-driven parser in CPython costs several µs per token.
"""

from __future__ import annotations

import itertools
import re

from mailspec.source import Span
from mailspec.syntax.lexer import Lexer, keyword_is_value
from mailspec.syntax.tree import Entry, SieveNode, Text, Value

_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_ESCAPE = re.compile(r"\\(.)")


def unescape(quoted: str) -> str:
    """The value of a string token: quotes removed, escapes resolved."""
    if "\\" not in quoted:
        return quoted[1:-1]
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), quoted[1:-1])


MAX_DEPTH = 50  # nesting of blocks, Sieve commands and tests: the later passes recurse


class Fallback(Exception):
    """Not a text this parser is sure about: use the LALR driver."""


# Sieve keywords by grammar rule; tests/syntax/test_fast.py checks them against the grammar.
MATCHES = frozenset({"is", "contains", "matches"})
SIZE_OPS = frozenset({"over", "under"})
TEXT_TESTS = {"header": 3, "address": 3, "envelope": 3, "exists": 1}
TEXT_ACTIONS = {"fileinto": "fileinto", "reject": "reject", "addflag": "addflag"}
BARE_ACTIONS = frozenset({"discard", "keep", "stop"})


class FastParser:
    """One use: `FastParser(lexer, file, text).parse()`."""

    def __init__(self, lexer: Lexer, file: str, text: str):
        self.all_tokens_re = lexer.all_tokens_re
        # Words that start a statement (the grammar's `key`), and `sieve`.
        self.statement_words = lexer.statement_words
        self.item_words = lexer.item_words
        self.file = file
        self.text = text

    def parse(self) -> tuple:
        self._tokenize(self.text)
        self.index = 0
        self.depth = 0
        return tuple(self._items("$END"))

    def _nest(self, change: int) -> None:
        """Deeper text is left to the driver, which parses without recursion and reports it."""
        self.depth += change
        if self.depth > MAX_DEPTH:
            raise Fallback

    # ------------------------------------------------------------ tokens

    def _tokenize(self, text: str) -> None:
        """Fill `kinds` and `texts`, one entry per token, then an end marker. A kind is W
        for a word, S for a string, or the punctuation itself."""
        kinds, texts = [], []
        add_kind, add_text = kinds.append, texts.append
        file = self.file
        new = tuple.__new__  # NamedTuple construction without a Python-level __new__ call
        position = 0
        found = self.all_tokens_re.findall(text)  # (skipped, word, string, symbol, other)
        for skipped, word, string, symbol, other in found:
            start = position + len(skipped)
            if other:
                raise Fallback  # a character no token starts with
            if word:
                position = start + len(word)
                add_kind("W")
                add_text(new(Text, (word, new(Span, (file, start, position)), False)))
            elif string:
                position = start + len(string)
                add_kind("S")
                add_text(new(Text, (unescape(string), new(Span, (file, start, position)), True)))
            elif symbol:
                position = start + len(symbol)
                add_kind(symbol)
                add_text(new(Text, (symbol, new(Span, (file, start, position)), False)))
            else:  # the end of the text
                position = start
        # findall skips what it cannot match: the pieces must cover the text without gaps.
        if position != len(text) or "".join(itertools.chain.from_iterable(found)) != text:
            raise Fallback
        add_kind("$END")
        add_text(Text("", Span(file, len(text), len(text)), False))
        self.kinds, self.texts = kinds, texts

    def _take(self) -> Text:
        self.index += 1
        return self.texts[self.index - 1]

    def _expect(self, kind: str) -> Text:
        if self.kinds[self.index] != kind:
            raise Fallback
        self.index += 1
        return self.texts[self.index - 1]

    def _line_break_before(self, index: int) -> bool:
        return "\n" in self.text[self.texts[index - 1].span.end:self.texts[index].span.start]

    # ------------------------------------------------------------ statements

    def _items(self, closing: str) -> list:
        """Entries and sieve blocks up to `closing`: `}` or the end of the text."""
        items = []
        kinds, texts = self.kinds, self.texts
        while True:
            kind, text = kinds[self.index], texts[self.index]
            if kind == ";":
                self.index += 1
            elif kind == closing:
                return items
            elif kind == "W" and text.value == "sieve":
                items.append(self._sieve_block())
            elif kind == "W" and text.value in self.statement_words:
                items.append(self._entry())
            else:
                raise Fallback

    def _entry(self) -> Entry:
        key = self._take()
        values, targets, body = (), None, None
        end = key.span
        if self._value_starts(after_key=True):
            values, end = self._values()
        kind = self.kinds[self.index]
        if kind == "->":
            self.index += 1
            targets, end = self._values()
            kind = self.kinds[self.index]
        if kind == "{":
            self.index += 1
            self.depth += 1  # inline _nest: this runs for every block of the spec
            if self.depth > MAX_DEPTH:
                raise Fallback
            body = tuple(self._items("}"))
            self.depth -= 1
            end = self._expect("}").span
        return Entry(key.value, key.span, values, targets, body, Span(key.span.file, key.span.start,
                                                                       end.end))

    def _value_starts(self, after_key: bool = False) -> bool:
        """Whether the next token continues a value (the driver's contextual keyword rule)."""
        kind = self.kinds[self.index]
        if kind == "S":
            return True
        if kind != "W":
            return False
        if self.texts[self.index].value not in self.item_words:
            return True
        return keyword_is_value(after_key, self._line_break_before(self.index))

    def _values(self) -> tuple[tuple[Value, ...], Span]:
        values = [self._value()]
        while self.kinds[self.index] == ",":
            self.index += 1
            values.append(self._value())
        return tuple(values), values[-1].span

    def _value(self) -> Value:
        """Words and strings up to a comma, arrow, brace or the next statement."""
        first = self._word_or_string()
        if not self._value_starts():  # one word, as nearly always: it lends its span
            return Value((first,), first.span)
        texts = [first]
        while self._value_starts():
            texts.append(self._take())
        return Value(tuple(texts), Span(first.span.file, first.span.start, texts[-1].span.end))

    # ------------------------------------------------------------ sieve

    def _sieve_block(self) -> SieveNode:
        keyword = self._take()
        commands, end = self._sieve_body()
        return SieveNode("sieve_block", (), (commands,), keyword.span.to(end))

    def _sieve_body(self) -> tuple[tuple, Span]:
        self._expect("{")
        self._nest(1)
        commands = []
        while True:
            kind = self.kinds[self.index]
            if kind == "}":
                self._nest(-1)
                return tuple(commands), self._take().span
            if kind == ";":
                self.index += 1
            else:
                commands.append(self._command())

    def _keyword(self) -> Text:
        return self._expect("W")

    def _word_or_string(self) -> Text:
        """One word or string, whatever the word is."""
        kind = self.kinds[self.index]
        if kind != "W" and kind != "S":
            raise Fallback
        return self._take()

    def _command(self) -> SieveNode:
        keyword = self._keyword()
        name = keyword.value
        if name == "if":
            test = self._test()
            body, end = self._sieve_body()
            nested = [test, body]
            while self._next_word_is("elsif"):
                start = self._keyword().span
                test = self._test()
                body, end = self._sieve_body()
                nested.append(SieveNode("elsif_branch", (), (test, body), start.to(end)))
            if self._next_word_is("else"):
                start = self._keyword().span
                body, end = self._sieve_body()
                nested.append(SieveNode("else_branch", (), (body,), start.to(end)))
            return SieveNode("if_command", (), tuple(nested), keyword.span.to(end))
        if name in TEXT_ACTIONS:
            text = self._word_or_string()
            return SieveNode(name, (text,), (), keyword.span.to(text.span))
        if name in BARE_ACTIONS:
            return SieveNode(name, (), (), keyword.span)
        if name == "redirect":
            texts = [self._word_or_string()]
            if self._next_word_is("copy"):
                texts.append(self._keyword())
            return SieveNode(name, tuple(texts), (), keyword.span.to(texts[-1].span))
        if name == "vacation":
            return self._vacation(keyword)
        raise Fallback

    def _vacation(self, keyword) -> SieveNode:
        text = self._word_or_string()
        options = []
        while True:
            if self._next_word_is("subject"):
                option = self._keyword()
                value = self._word_or_string()
                options.append(SieveNode("vacation_subject", (value,), (), option.span.to(value.span)))
            elif self._next_word_is("days"):
                option = self._keyword()
                days = self._expect("W")
                options.append(SieveNode("vacation_days", (days,), (), option.span.to(days.span)))
            else:
                break
        end = options[-1].span if options else text.span
        return SieveNode("vacation", (text,), tuple(options), keyword.span.to(end))

    def _next_word_is(self, word: str) -> bool:
        return self.kinds[self.index] == "W" and self.texts[self.index].value == word

    def _test(self) -> SieveNode:
        self._nest(1)
        found = self._test_at_depth()
        self._nest(-1)
        return found

    def _test_at_depth(self) -> SieveNode:
        keyword = self._keyword()
        name = keyword.value
        if name in TEXT_TESTS:
            texts = [self._word_or_string()]
            if TEXT_TESTS[name] == 3:
                match = self._keyword()
                if match.value not in MATCHES:
                    raise Fallback
                texts += [match, self._word_or_string()]
            return SieveNode(f"{name}_test", tuple(texts), (), keyword.span.to(texts[-1].span))
        if name == "size":
            operator = self._keyword()
            if operator.value not in SIZE_OPS:
                raise Fallback
            texts = [operator, self._expect("W")]
            if self.kinds[self.index] == "W":
                texts.append(self._take())
            return SieveNode("size_test", tuple(texts), (), keyword.span.to(texts[-1].span))
        if name in ("allof", "anyof"):
            self._expect("(")
            tests = [self._test()]
            while self.kinds[self.index] == ",":
                self.index += 1
                tests.append(self._test())
            end = self._expect(")").span
            return SieveNode(f"{name}_test", (), tuple(tests), keyword.span.to(end))
        if name == "not":
            test = self._test()
            return SieveNode("not_test", (), (test,), keyword.span.to(test.span))
        if name in ("true", "false"):
            return SieveNode(f"{name}_test", (), (), keyword.span)
        raise Fallback
