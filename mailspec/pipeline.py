"""The whole flow in one place, each pass named once (after the Elm compiler's `compile`):

    load (read and parse every file) -> lower (typed model) -> check -> emit -> write

`compile` runs them in order. With a target, emit and write (writer.py) start in a
forked child as soon as the spec is lowered, and the check runs meanwhile; the tree is
committed only if the check finds no error.
"""

from __future__ import annotations

import contextlib
import gc
import os

import attrs

from mailspec import cache, model
from mailspec.check import check_spec
from mailspec.diagnostics import Diagnostic
from mailspec.layout import DEFAULT, Layout
from mailspec.lower.loader import allowed_roots, load
from mailspec.lower.lower import DEFAULT_DELIMITER, Lowerer
from mailspec.lower.units import Units
from mailspec.source import Source


@attrs.frozen
class Result:
    """What the passes found: the model (None if it could not be built), every diagnostic
    and the sources they point into."""

    spec: model.Spec | None
    diagnostics: tuple[Diagnostic, ...]
    sources: dict[str, Source]
    removed: tuple[str, ...] = ()  # unlisted files that compile removed from the target

    @property
    def ok(self) -> bool:
        return self.spec is not None and not any(d.is_error for d in self.diagnostics)


@contextlib.contextmanager
def _no_gc():
    """The passes build millions of small acyclic objects: collections only cost time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # Plainly re-enabled, the collector would scan the millions of objects just
            # built (a second at 100k mailboxes). They hold no cycles: freeze them out
            # of its view instead.
            gc.freeze()
            gc.enable()


def compile(roots: list[str], import_roots: tuple[str, ...] = (), target: str | None = None,
            layout: Layout = DEFAULT, remove_unlisted: bool = False) -> Result:
    """Every pass, in order. OSError if a root file cannot be read, or (for a valid spec)
    the target cannot be written; TargetError if mailspec must not replace `target`."""
    return check_and_write(load_and_lower(roots, import_roots), target, layout, remove_unlisted)


def load_and_lower(roots: list[str], import_roots: tuple[str, ...] = ()) -> Result:
    """load and lower: the model, not yet checked. Imports and password files must lie
    under the roots' directories or `import_roots`; OSError if a root cannot be read."""
    with _no_gc():
        lowerer = Lowerer(allowed_roots(roots, import_roots))
        pack = pack_name(roots, import_roots)
        # The units are lowered with a delimiter before the server block says which: the
        # one this spec had last time (remembered in the cache), or the default. If the
        # server block says another, a second round lowers them with that one.
        hint = cache.key("delimiter", pack)
        first = delimiter = (cache.get(hint) or DEFAULT_DELIMITER.encode()).decode()
        while True:
            units = Units(lowerer, delimiter, pack)
            loaded = load(roots, import_roots, units)
            units.save()
            if loaded.diagnostics:
                return Result(None, tuple(loaded.diagnostics), loaded.sources)
            first_file = next(iter(loaded.sources), roots[0])
            spec = lowerer.assemble(loaded.units, first_file, os.path.basename(roots[0]),
                                    {name: source.text for name, source in loaded.sources.items()})
            if lowerer.delimiter == delimiter:
                if delimiter != first:
                    cache.put(hint, delimiter.encode())
                return Result(spec, tuple(lowerer.diagnostics), loaded.sources)
            delimiter = lowerer.delimiter


def pack_name(roots: list[str], import_roots: tuple[str, ...]) -> str:
    """The cache entry of a spec's units: one per set of root files, wherever it is run from."""
    return cache.key("units", *(os.path.realpath(r) for r in roots), "\0", *import_roots)


def check(roots: list[str], import_roots: tuple[str, ...] = ()) -> Result:
    """load, lower and check; OSError if a root file cannot be read."""
    return compile(roots, import_roots)


def check_and_write(lowered: Result, target: str | None = None, layout: Layout = DEFAULT,
                    remove_unlisted: bool = False) -> Result:
    """check, and with a target emit and write: the deploy tree replaces `target`
    atomically, and only when the check finds no error."""
    if lowered.spec is None:
        return lowered
    with _no_gc():
        if target is None or not lowered.ok:  # the check still runs: every problem at once
            return _checked(lowered)
        from mailspec.writer import Writer  # emit and write: imported only by what writes
        try:
            writer = Writer(lowered.spec, target, list(lowered.sources), layout)
        except OSError:
            result = _checked(lowered)
            if result.ok:
                raise  # the error is the target's, not the spec's
            return result
        try:
            result = _checked(lowered)
            return attrs.evolve(result, removed=tuple(writer.finish(result.ok, remove_unlisted)))
        except BaseException:
            writer.abandon()
            raise


def _checked(lowered: Result) -> Result:
    return attrs.evolve(lowered, diagnostics=lowered.diagnostics + tuple(check_spec(lowered.spec)))


def compile_files(result: Result) -> dict[str, str]:
    """The deploy tree of a checked spec in memory: {relative path: text}."""
    from mailspec.emit import emit_all

    assert result.ok
    with _no_gc():
        return emit_all(result.spec)
