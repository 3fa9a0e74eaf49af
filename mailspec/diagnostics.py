"""Diagnostics as plain data, and their two renderings: rustc-style text and JSON."""

from __future__ import annotations

import difflib
import enum
import json
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


def _display_column(line: str, column: int) -> int:
    """The 1-based screen column of character `column`, with tabs expanded."""
    return len(line[: column - 1].expandtabs(TAB_WIDTH)) + 1


class _Located:
    """A label with its line and columns worked out from the source."""

    def __init__(self, label: Label, source: Source | None):
        span = label.span
        self.label = label
        if source is None:
            self.line, self.column, self.text, self.width = 1, 1, "", 1
            return
        start, end = source.position(span.start), source.position(max(span.start, span.end))
        raw = "" if source.opaque else source.line_text(start.line)
        self.line, self.column = start.line, start.column
        self.text = raw.expandtabs(TAB_WIDTH)
        first = _display_column(raw, start.column)
        last = _display_column(raw, end.column) if end.line == start.line else len(self.text) + 1
        self.display_column = first
        self.width = max(1, last - first)


def render_text(diagnostic: Diagnostic, sources: Mapping[str, Source]) -> str:
    out = [f"{diagnostic.severity.value}[{diagnostic.code}]: {diagnostic.message}"]
    located = [_Located(label, sources.get(label.span.file)) for label in diagnostic.labels]
    gutter = max((len(str(item.line)) for item in located), default=1)
    pad = " " * gutter
    files = list(dict.fromkeys(item.label.span.file for item in located))
    for index, file in enumerate(files):
        here = sorted((item for item in located if item.label.span.file == file),
                      key=lambda item: (item.line, item.column, not item.label.primary))
        anchor = next((i for i in here if i.label.primary), here[0])
        arrow = "-->" if index == 0 else ":::"
        out.append(f"{pad}{arrow} {file}:{anchor.line}:{anchor.column}")
        out.append(f"{pad} |")
        previous_line = None
        for item in here:
            if item.line != previous_line:
                out.append(f"{item.line:>{gutter}} | {item.text}".rstrip())
            previous_line = item.line
            mark = ("^" if item.label.primary else "-") * item.width
            indent = " " * (getattr(item, "display_column", 1) - 1)
            out.append(f"{pad} | {indent}{mark} {item.label.message}".rstrip())
    if diagnostic.notes or diagnostic.help:
        out.append(f"{pad} |")
    for note in diagnostic.notes:
        out.append(f"{pad} = note: {note}")
    if diagnostic.help:
        out.append(f"{pad} = help: {diagnostic.help}")
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
            "message": label.message, "primary": label.primary}


def to_json_data(diagnostic: Diagnostic, sources: Mapping[str, Source]) -> dict:
    return {
        "severity": diagnostic.severity.value,
        "code": diagnostic.code,
        "message": diagnostic.message,
        "labels": [_json_label(label, sources) for label in diagnostic.labels],
        "notes": list(diagnostic.notes),
        "help": diagnostic.help,
    }


def render_all_json(diagnostics: Iterable[Diagnostic], sources: Mapping[str, Source]) -> str:
    data = [to_json_data(d, sources) for d in sorted(diagnostics, key=sort_key)]
    return json.dumps({"diagnostics": data}, indent=2, ensure_ascii=False) + "\n"
