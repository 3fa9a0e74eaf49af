"""Source files and spans: where in which file a piece of a spec came from."""

from __future__ import annotations

import bisect
import functools
import re
from typing import NamedTuple


class Span(NamedTuple):
    """A character range [start, end) in one source file.

    Lines and columns are derived on demand (`Position`), when a diagnostic is shown:
    there is one span per token, and this keeps the parser's hot path lean.
    """

    file: str
    start: int
    end: int

    def to(self, other: Span) -> Span:
        """The span from the start of self to the end of other."""
        return Span(self.file, self.start, other.end)


class Position(NamedTuple):
    line: int  # 1-based
    column: int  # 1-based, in characters


class Source:
    """One file's text, with line lookup for rendering spans."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.text = text
        self.opaque = False  # not a spec: diagnostics give positions, never its text

    @functools.cached_property
    def _line_starts(self) -> list[int]:
        # Only needed to render a diagnostic, so computed on first use.
        return [0] + [m.end() for m in re.finditer("\n", self.text)]

    def position(self, offset: int) -> Position:
        offset = max(0, min(offset, len(self.text)))
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return Position(index + 1, offset - self._line_starts[index] + 1)

    def line_text(self, line: int) -> str:
        if not 0 < line <= len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start: end if end >= 0 else len(self.text)].rstrip("\r")

    def point(self, offset: int) -> Span:
        """A span of one character at `offset` (empty at the end of the text or a line)."""
        offset = max(0, min(offset, len(self.text)))
        end = offset + 1 if offset < len(self.text) and self.text[offset] not in "\r\n" else offset
        return Span(self.path, offset, end)
