"""Tokens, as the grammar's terminals define them: one compiled regex that skips blanks
and comments inside the match. The fast parser and the LALR driver both lex with it;
`tokens` gives the same tokens to everything else (fmt's comments, the brace finder)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import NamedTuple

from mailspec import cache
from mailspec.source import Span
from mailspec.syntax import grammar


def keyword_is_value(after_key: bool, line_break: bool) -> bool:
    """The one rule of statement ends: a statement keyword right after a statement's key,
    on the same line, is a value (`post announcer`); anywhere else it starts the next
    statement (`keep_copy` ⏎ `send_only`)."""
    return after_key and not line_break


def tables(lark) -> dict:
    """What the lexer needs from Lark's analysis of the grammar, as plain data (cached:
    building it takes Lark a fifth of a second, more than the rest of a small check)."""
    punctuation, keywords, patterns = {}, {}, {}
    for terminal in lark.terminals:
        pattern = terminal.pattern
        if pattern.type == "str":
            (keywords if re.fullmatch(r"\w+", pattern.value) else punctuation)[pattern.value] = terminal.name
        else:
            patterns[terminal.name] = pattern.to_regexp()
    # What the grammar ignores (WS and COMMENT) is written into the lexer's regex below.
    assert set(lark.ignore_tokens) == {"WS", "COMMENT"}, lark.ignore_tokens
    return {"keywords": keywords, "punctuation": punctuation,
            "statement_keywords": sorted({rule.expansion[0].name for rule in lark.rules if rule.origin.name == "key"}),
            "word": patterns["WORD"], "string": patterns["STRING"]}


class Lexer:
    def __init__(self, tables: dict):
        # The terminals of the keywords that start a statement (see keyword_is_value).
        self.statement_keywords = frozenset(tables["statement_keywords"])
        self.punctuation: dict[str, str] = tables["punctuation"]  # literal -> terminal name
        self.keywords: dict[str, str] = tables["keywords"]
        # Possessive, so that a bad character after a long run of blanks does not make
        # the regex backtrack through it.
        skip = r"[ \t\r\n\f]++|#[^\n]*+"
        punctuation = "|".join(re.escape(p) for p in sorted(self.punctuation, key=len, reverse=True))
        # Group 1 is what was skipped; then exactly one token kind.
        self.skip_re = re.compile(rf"(?:{skip})*+")
        self.statement_words = frozenset(
            literal for literal, name in self.keywords.items() if name in self.statement_keywords)
        self.item_words = self.statement_words | {"sieve"}
        tokens = rf"(?P<WORD>{tables['word']})|(?P<STRING>{tables['string']})|(?P<P>{punctuation})"
        self.token_re = re.compile(rf"((?:{skip})*+)(?:{tokens})")
        # For findall over a whole text (the fast path): the end of the text is a token
        # too, so that trailing blanks and comments are one match, not searched through.
        # Any other character is matched as the last group, so that findall never
        # retries a long run of blanks or comments at every position before it.
        self.all_tokens_re = re.compile(rf"((?:{skip})*+)(?:{tokens}|\Z|((?s:.)))")


@functools.cache
def lexer() -> Lexer:
    """The lexer of the grammar, its tables from the cache when it has them."""
    name = cache.key("lexer", grammar.text())
    found = cache.get(name)
    if found is not None:
        return Lexer(json.loads(found))
    made = tables(grammar.lark())
    cache.put(name, json.dumps(made, sort_keys=True).encode())
    return Lexer(made)


class Token(NamedTuple):
    kind: str  # WORD, STRING, the punctuation itself, OTHER (no token starts with it) or $END
    text: str
    span: Span
    gap: Span  # the blanks and comments before it


def tokens(file: str, text: str) -> Iterator[Token]:
    """Every token of `text`, then $END; linear in the text, whatever it holds."""
    for match in lexer().all_tokens_re.finditer(text):
        gap = Span(file, match.start(1), match.end(1))
        for group, kind in ((2, "WORD"), (3, "STRING"), (4, None), (5, "OTHER")):
            if match.group(group):
                found = match.group(group)
                yield Token(kind or found, found, Span(file, match.start(group), match.end(group)), gap)
                break
        else:
            yield Token("$END", "", Span(file, match.end(), match.end()), gap)
            return
