"""Syntax diagnostics (E01xx): what the parser expected, in plain words."""

from __future__ import annotations

from mailspec.diagnostics import Diagnostic, did_you_mean
from mailspec.source import Span

# Terminal name -> how a person would name it; filled from the grammar's string terminals.
_DISPLAY: dict[str, str] = {
    "WORD": "a name, address or number",
    "STRING": "a quoted string",
    "$END": "the end of the file",
}
_KEYWORDS: set[str] = set()
_PUNCTUATION = {"{", "}", "(", ")", ",", ";", "->"}
MAX_REPORTED = 20  # syntax errors (and control characters) reported per file


def name_terminals(terminals) -> None:
    for terminal in terminals:
        if terminal.pattern.type == "str":
            literal = terminal.pattern.value
            _DISPLAY[terminal.name] = f"`{literal}`"
            if literal not in _PUNCTUATION:
                _KEYWORDS.add(terminal.name)


def _describe(expected: list[str]) -> str:
    keywords = [name for name in expected if name in _KEYWORDS]
    others = [_DISPLAY.get(name, name) for name in expected if name not in _KEYWORDS]
    words = sorted(set(others))
    if len(keywords) > 8:
        words.append("a keyword")
    else:
        words += sorted(_DISPLAY[name] for name in keywords)
    if not words:
        return "nothing more"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _keyword_texts(expected: list[str]) -> list[str]:
    return [_DISPLAY[name].strip("`") for name in expected if name in _KEYWORDS]


def unexpected_token(span: Span, text: str, kind: str, expected: list[str]) -> Diagnostic:
    shown = _DISPLAY.get(kind, f"`{text}`") if kind in ("$END",) else f"`{text}`"
    hint = did_you_mean(text, _keyword_texts(expected)) if kind == "WORD" else None
    if hint is None and kind == "WORD" and any(n in _KEYWORDS for n in expected) \
            and "," not in _DISPLAY.get(kind, ""):
        hint = "separate list items with commas, and start each statement with a keyword"
    return Diagnostic.error("E0101", f"unexpected {shown}", span, f"expected {_describe(expected)}",
                            help=hint)


def unexpected_end(span: Span, expected: list[str]) -> Diagnostic:
    return Diagnostic.error("E0102", "unexpected end of file", span,
                            f"expected {_describe(expected)}",
                            help="check that every `{` has a matching `}`")


def unexpected_character(span: Span, text: str) -> Diagnostic:
    char = text[span.start] if span.start < len(text) else ""
    if char == '"':
        return Diagnostic.error("E0103", "unterminated string", span, "this string has no closing `\"`",
                                help="close the string on the same line; write a newline as `\\n`")
    return Diagnostic.error("E0104", f"unexpected character `{char}`", span,
                            "not part of any word, string or symbol",
                            help="quote values that contain special characters: \"…\"")


def control_character(span: Span, char: str) -> Diagnostic:
    return Diagnostic.error("E0105", f"control character U+{ord(char):04X} in the spec", span,
                            "not allowed anywhere in a spec",
                            help="remove it; inside a string write a newline as `\\n` and a tab as `\\t`")


def byte_order_mark(span: Span) -> Diagnostic:
    return Diagnostic.error("E0106", "the file starts with a byte-order mark", span, "a byte-order mark",
                            help="save the file as UTF-8 without a BOM")


def too_deep(span: Span, limit: int) -> Diagnostic:
    return Diagnostic.error("E0107", f"nested more than {limit} levels deep", span, "too deep",
                            help="flatten the blocks or the Sieve tests: no spec needs this depth")


def unclosed_brace(opened: Span, taken: Span | None) -> Diagnostic:
    secondary = [(taken, "taken as its end, so the rest of the file is inside its block")] if taken else []
    return Diagnostic.error("E0102", "unexpected end of file: a `{` is never closed", opened,
                            "this `{` has no matching `}`", secondary=secondary,
                            help="add the missing `}` where this block ends")
