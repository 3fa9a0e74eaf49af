"""Read the root files and everything they import, each file once, into its unit
(lower/units.py: parsed and lowered, or found in the cache)."""

from __future__ import annotations

import difflib
import errno
import os
import re
import stat

import attrs

from mailspec.diagnostics import Diagnostic
from mailspec.lower import errors
from mailspec.lower.units import Units
from mailspec.paths import RealPaths, inside
from mailspec.source import Source, Span
from mailspec.syntax import Entry, statement_words


@attrs.define
class Loaded:
    sources: dict[str, Source] = attrs.Factory(dict)  # by display path
    units: list = attrs.Factory(list)  # each file's lower.units.Unit, in load order
    diagnostics: list[Diagnostic] = attrs.Factory(list)


MAX_SPEC_BYTES = 64 * 1024 * 1024  # a 100,000-mailbox spec is about 10 MB
MAX_PASSWORD_BYTES = 4096
MAX_IMPORT_DEPTH = 32  # files importing files: loading recurses


def read_text(path: str, limit: int = MAX_SPEC_BYTES) -> str:
    """The text of a regular file of at most `limit` bytes, exactly as in the file (CRLF
    kept, so spans are its offsets). OSError with a plain reason for anything else: a
    device, FIFO or directory is never read, and a FIFO's open does not wait for a writer."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as handle:
        found = os.fstat(descriptor)
        if not stat.S_ISREG(found.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        # read(limit + 1) would allocate the whole limit for every file: check the size first
        data = b"" if found.st_size > limit else handle.read()
    if found.st_size > limit or len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit // 1024} KiB, the limit for this file", path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise OSError(errno.EILSEQ, f"not UTF-8 text (byte {error.start} is 0x{data[error.start]:02x})",
                      path) from None


_FIRST_WORD = re.compile(r"(?:[ \t\r\n\f]++|#[^\n]*+)*+([A-Za-z_]++)")


def plausible(text: str) -> bool:
    """Whether a text that does not parse may still be shown: no NUL, and it starts with a
    statement keyword or a near miss of one (a spec with a mistake, not some other file)."""
    if "\0" in text:
        return False
    first = _FIRST_WORD.match(text.lstrip("\ufeff"))
    if first is None:
        return not text.strip()
    return bool(difflib.get_close_matches(first.group(1), statement_words(), n=1, cutoff=0.75))


def within(path: str, roots: tuple[str, ...], paths: RealPaths | None = None) -> bool:
    """Whether `path`, all links followed, lies under one of `roots` (real paths)."""
    real = (paths or RealPaths()).of(path)
    return any(inside(real, root) for root in roots)


def identity(path: str) -> tuple[int, int]:
    """Which file `path` is, however it is spelled (links, `..`): one stat, not a realpath."""
    found = os.stat(path)
    return found.st_dev, found.st_ino


def allowed_roots(roots: list[str], extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The directory trees that imports and password files may come from: each root
    spec's own, and those the user names (`--import-root`)."""
    return tuple(sorted({os.path.realpath(os.path.dirname(os.path.abspath(r))) for r in roots}
                        | {os.path.realpath(r) for r in extra}))


def load(roots: list[str], import_roots: tuple[str, ...], units: Units) -> Loaded:
    """Load `roots` (paths as the user gave them), each file's unit from `units`.
    OSError for an unreadable root."""
    loaded = Loaded()
    trees = allowed_roots(roots, import_roots)
    paths = RealPaths()
    first_import: dict[tuple[int, int], Span | None] = {}
    stack: list[tuple[int, int]] = []  # files being loaded, for cycle detection
    names: dict[tuple[int, int], str] = {}  # file -> display path
    read: dict[str, str] = {}  # imports read ahead (`prefetch`), inside the trees, by display path
    identities: dict[str, tuple[int, int]] = {}

    def identity_of(display: str) -> tuple[int, int]:
        if display not in identities:
            identities[display] = identity(display)
        return identities[display]

    def visit(display: str, real: tuple[int, int], text: str, imported: bool) -> None:
        source = Source(display, text)
        loaded.sources[display] = source
        names[real] = display
        unit = units.get(display, text)
        if unit.syntax is not None:
            if not imported or unit.plausible:
                loaded.diagnostics.extend(unit.syntax)
            else:  # never echo what an import may have pointed at: secrets, a binary
                source.opaque = True
                loaded.diagnostics.append(errors.not_a_spec(Span(display, 0, 0), display))
            return
        loaded.units.append(unit)
        targets = [target_of(display, node) for node in unit.imports]
        prefetch(targets)
        stack.append(real)
        for node, target in zip(unit.imports, targets, strict=True):
            follow(node, target)
        stack.pop()

    def target_of(importer: str, node: Entry) -> str | None:
        """The display path of the file `node` imports; None if it names no one file."""
        if len(node.values) != 1 or len(node.values[0].words) != 1 or node.body is not None:
            return None
        return os.path.normpath(os.path.join(os.path.dirname(importer), node.values[0].words[0].value))

    def prefetch(targets: list[str | None]) -> None:
        """Read the files that one file imports and have their units made together (on
        both cores), ahead of `follow`. Only files that `follow` may read: new, and
        inside the allowed trees; `follow` still decides, in order, what is loaded."""
        ahead = []
        for display in targets:
            try:
                if display is None or display in read or identity_of(display) in first_import:
                    continue
                if within(display, trees, paths):
                    read[display] = read_text(display)
                    ahead.append((display, read[display]))
            except OSError:
                continue  # `follow` reports it
        units.prefetch(ahead)

    def follow(node: Entry, display: str | None) -> None:
        if display is None:
            loaded.diagnostics.append(errors.wrong_values(node.span, "import", "one file path"))
            return
        target = node.values[0]
        try:
            real = identity_of(display)
        except OSError as error:
            loaded.diagnostics.append(errors.import_not_found(target.span, display, error.strerror.lower()))
            return
        if len(stack) >= MAX_IMPORT_DEPTH:
            loaded.diagnostics.append(errors.imports_too_deep(target.span, MAX_IMPORT_DEPTH))
            return
        if real in stack:
            chain = [names[r] for r in stack[stack.index(real):]] + [display]
            loaded.diagnostics.append(errors.import_cycle(target.span, chain))
            return
        if real in first_import:
            if first_import[real] is not None:  # a root is loaded once, whoever imports it
                loaded.diagnostics.append(errors.duplicate_import(target.span, display, first_import[real]))
            return
        first_import[real] = target.span
        if display not in read and not within(display, trees, paths):
            loaded.diagnostics.append(errors.import_outside(target.span, display, trees))
            return
        try:
            text = read.pop(display) if display in read else read_text(display)
        except OSError as error:
            loaded.diagnostics.append(errors.import_not_found(target.span, display, error.strerror.lower()))
            return
        visit(display, real, text, True)

    found = [(root, identity(root)) for root in roots]
    for _, real in found:  # every root first: a root imported by another is no duplicate
        first_import[real] = None
    for root, real in found:
        if real in names:
            continue  # the same root given twice
        visit(root, real, read_text(root), False)
    return loaded
