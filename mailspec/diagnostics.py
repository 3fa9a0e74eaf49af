"""Diagnostics as plain data, and their two renderings: rustc-style text and JSON."""

from __future__ import annotations

import difflib
import enum
import json
import re
from collections.abc import Iterable, Mapping

import attrs

from mailspec.source import Source, Span


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@attrs.frozen
class Label:
    span: Span
    message: str = ""
    primary: bool = True


@attrs.frozen
class Diagnostic:
    severity: Severity
    code: str
    message: str
    labels: tuple[Label, ...] = ()
    notes: tuple[str, ...] = ()
    help: str | None = None

    @classmethod
    def error(cls, code: str, message: str, span: Span | None, label: str = "", *,
              notes: Iterable[str] = (), help: str | None = None,
              secondary: Iterable[tuple[Span, str]] = ()) -> Diagnostic:
        labels = [Label(span, label)] if span is not None else []
        labels += [Label(s, m, primary=False) for s, m in secondary]
        return cls(Severity.ERROR, code, message, tuple(labels), tuple(notes), help)

    @classmethod
    def warning(cls, code: str, message: str, span: Span | None, label: str = "", *,
                notes: Iterable[str] = (), help: str | None = None,
                secondary: Iterable[tuple[Span, str]] = ()) -> Diagnostic:
        error = cls.error(code, message, span, label, notes=notes, help=help, secondary=secondary)
        return attrs.evolve(error, severity=Severity.WARNING)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    @property
    def primary_span(self) -> Span | None:
        return next((label.span for label in self.labels if label.primary), None)


class SpecError(Exception):
    """Raised by a pass that cannot go on; carries every diagnostic found so far."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__(f"{len(self.diagnostics)} diagnostic(s)")


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A `help:` text naming the closest candidate, or None when nothing is close."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def sort_key(diagnostic: Diagnostic) -> tuple:
    span = diagnostic.primary_span
    where = (span.file, span.start, span.end) if span else ("", -1, -1)
    return (*where, diagnostic.code, diagnostic.message)


# ---------------------------------------------------------------- text rendering

TAB_WIDTH = 4
MAX_LINE = 300  # source lines are cut to a window this wide around the label
MAX_TEXT = 300  # messages, labels, notes and help longer than this are cut
# Shown escaped, never raw: C0 and C1 controls, DEL, bidi controls (Trojan Source), BOM.
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _escape(char: str) -> str:
    return f"<U+{ord(char):04X}>"


def shown(text: str, limit: int = MAX_TEXT) -> str:
    """`text` safe for a terminal: unprintable characters escaped, at most `limit` long."""
    text = _UNPRINTABLE.sub(lambda m: _escape(m.group()), text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _display(line: str) -> tuple[str, list[int]]:
    """The line as shown (tabs expanded, unprintables escaped) and, for each character
    of the line and its end, the 0-based screen column where it starts."""
    out, columns = [], []
    width = 0
    for char in line:
        columns.append(width)
        piece = " " * (TAB_WIDTH - width % TAB_WIDTH) if char == "\t" else (
            _escape(char) if _UNPRINTABLE.match(char) else char)
        out.append(piece)
        width += len(piece)
    columns.append(width)
    return "".join(out), columns


class _Located:
    """A label with its line and columns worked out from the source."""

    def __init__(self, label: Label, source: Source | None):
        span = label.span
        self.label = label
        self.display_column = 1
        if source is None:
            self.line, self.column, self.text, self.width = 1, 1, "", 1
            return
        start, end = source.position(span.start), source.position(max(span.start, span.end))
        raw = "" if source.opaque else source.line_text(start.line)
        self.line, self.column = start.line, start.column
        text, columns = _display(raw)
        first = columns[min(start.column - 1, len(raw))]
        last = columns[min(end.column - 1, len(raw))] if end.line == start.line else len(text)
        width = max(1, last - first)
        if len(text) > MAX_LINE:  # a window around the label, marked where it is cut
            left = max(0, min(first - MAX_LINE // 3, len(text) - MAX_LINE))
            text = ("…" if left else "") + text[left:left + MAX_LINE] + ("…" if left + MAX_LINE < len(text) else "")
            first = first - left + (1 if left else 0)
            width = min(width, MAX_LINE - (first - 1))
        self.text = text
        self.display_column = first + 1
        self.width = max(1, width)


def render_text(diagnostic: Diagnostic, sources: Mapping[str, Source]) -> str:
    out = [f"{diagnostic.severity.value}[{diagnostic.code}]: {shown(diagnostic.message)}"]
    located = [_Located(label, sources.get(label.span.file)) for label in diagnostic.labels]
    gutter = max((len(str(item.line)) for item in located), default=1)
    pad = " " * gutter
    files = list(dict.fromkeys(item.label.span.file for item in located))
    for index, file in enumerate(files):
        here = sorted((item for item in located if item.label.span.file == file),
                      key=lambda item: (item.line, item.column, not item.label.primary))
        anchor = next((i for i in here if i.label.primary), here[0])
        arrow = "-->" if index == 0 else ":::"
        out.append(f"{pad}{arrow} {shown(file)}:{anchor.line}:{anchor.column}")
        out.append(f"{pad} |")
        previous_line = None
        for item in here:
            if item.line != previous_line:
                out.append(f"{item.line:>{gutter}} | {item.text}".rstrip())
            previous_line = item.line
            mark = ("^" if item.label.primary else "-") * item.width
            indent = " " * (item.display_column - 1)
            out.append(f"{pad} | {indent}{mark} {shown(item.label.message)}".rstrip())
    if diagnostic.notes or diagnostic.help:
        out.append(f"{pad} |")
    for note in diagnostic.notes:
        out.append(f"{pad} = note: {shown(note)}")
    if diagnostic.help:
        out.append(f"{pad} = help: {shown(diagnostic.help)}")
    return "\n".join(out) + "\n"


def summary(diagnostics: Iterable[Diagnostic]) -> str:
    diagnostics = list(diagnostics)
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return ", ".join(parts)


def render_all_text(diagnostics: Iterable[Diagnostic], sources: Mapping[str, Source]) -> str:
    diagnostics = sorted(diagnostics, key=sort_key)
    blocks = [render_text(d, sources) for d in diagnostics]
    if diagnostics:
        verdict = "aborting" if any(d.is_error for d in diagnostics) else "ok"
        blocks.append(f"{verdict}: {summary(diagnostics)}\n")
    return "\n".join(blocks)


# ---------------------------------------------------------------- JSON rendering

def _json_label(label: Label, sources: Mapping[str, Source]) -> dict:
    source = sources.get(label.span.file)
    start = source.position(label.span.start) if source else None
    end = source.position(label.span.end) if source else None
    return {"file": label.span.file, "start": label.span.start, "end": label.span.end,
            "line": start and start.line, "column": start and start.column,
            "end_line": end and end.line, "end_column": end and end.column,
            "message": shown(label.message), "primary": label.primary}


def to_json_data(diagnostic: Diagnostic, sources: Mapping[str, Source]) -> dict:
    return {
        "severity": diagnostic.severity.value,
        "code": diagnostic.code,
        "message": shown(diagnostic.message),
        "labels": [_json_label(label, sources) for label in diagnostic.labels],
        "notes": [shown(note) for note in diagnostic.notes],
        "help": diagnostic.help and shown(diagnostic.help),
    }


def render_all_json(diagnostics: Iterable[Diagnostic], sources: Mapping[str, Source]) -> str:
    data = [to_json_data(d, sources) for d in sorted(diagnostics, key=sort_key)]
    return json.dumps({"diagnostics": data}, indent=2, ensure_ascii=False) + "\n"
