"""Read the root files and everything they import; parse each file once."""

from __future__ import annotations

import os

import attrs

from mailspec.diagnostics import Diagnostic, SpecError
from mailspec.lower import errors
from mailspec.source import Source, Span
from mailspec.syntax import Entry, parse


@attrs.define
class Loaded:
    sources: dict[str, Source] = attrs.Factory(dict)  # by display path
    files: list[tuple[str, tuple]] = attrs.Factory(list)  # (display path, top-level nodes)
    diagnostics: list[Diagnostic] = attrs.Factory(list)


def read_text(path: str) -> str:
    # newline="": the text exactly as in the file (CRLF kept), so spans are its offsets.
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


def identity(path: str) -> tuple[int, int]:
    """Which file `path` is, however it is spelled (links, `..`): one stat, not a realpath."""
    found = os.stat(path)
    return found.st_dev, found.st_ino


def load(roots: list[str]) -> Loaded:
    """Load `roots` (paths as the user gave them). OSError for an unreadable root."""
    loaded = Loaded()
    first_import: dict[tuple[int, int], Span | None] = {}
    stack: list[tuple[int, int]] = []  # files being loaded, for cycle detection
    names: dict[tuple[int, int], str] = {}  # file -> display path

    def visit(display: str, real: tuple[int, int], text: str) -> None:
        source = Source(display, text)
        loaded.sources[display] = source
        names[real] = display
        try:
            nodes = parse(display, text)
        except SpecError as error:
            loaded.diagnostics.extend(error.diagnostics)
            return
        loaded.files.append((display, nodes))
        stack.append(real)
        for node in nodes:
            if isinstance(node, Entry) and node.key == "import":
                follow(display, node)
        stack.pop()

    def follow(importer: str, node: Entry) -> None:
        if len(node.values) != 1 or len(node.values[0].words) != 1 or node.body is not None:
            loaded.diagnostics.append(errors.wrong_values(node.span, "import", "one file path"))
            return
        target = node.values[0]
        display = os.path.normpath(os.path.join(os.path.dirname(importer), target.words[0].value))
        try:
            real = identity(display)
        except OSError as error:
            loaded.diagnostics.append(errors.import_not_found(target.span, display, error.strerror.lower()))
            return
        if real in stack:
            chain = [names[r] for r in stack[stack.index(real):]] + [display]
            loaded.diagnostics.append(errors.import_cycle(target.span, chain))
            return
        if real in first_import:
            loaded.diagnostics.append(errors.duplicate_import(target.span, display, first_import[real]))
            return
        first_import[real] = target.span
        try:
            text = read_text(display)
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
            loaded.diagnostics.append(errors.import_not_found(target.span, display, reason.lower()))
            return
        visit(display, real, text)

    for root in roots:
        real = identity(root)
        if real in first_import:
            continue  # the same root given twice
        first_import[real] = None
        visit(root, real, read_text(root))
    return loaded
