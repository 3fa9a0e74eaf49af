"""The whole flow in one place: load -> parse -> lower -> check -> emit -> write."""

from __future__ import annotations

import contextlib
import gc
import os

import attrs

from mailspec import model
from mailspec.background import Background
from mailspec.check import check_spec
from mailspec.deploydir import Staging, resolve
from mailspec.diagnostics import Diagnostic
from mailspec.emit import emit_all, emit_share, manifest, mode, split
from mailspec.layout import DEFAULT, Layout
from mailspec.lower.loader import allowed_roots, load
from mailspec.lower.lower import Lowerer
from mailspec.source import Source


@attrs.frozen
class Result:
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


@attrs.frozen
class Lowered:
    """The spec after loading and lowering, before the cross-entity checks."""

    spec: model.Spec | None
    diagnostics: tuple[Diagnostic, ...]
    sources: dict[str, Source]

    def checked(self) -> Result:
        found = check_spec(self.spec) if self.spec is not None else ()
        return Result(self.spec, self.diagnostics + tuple(found), self.sources)


def lower(roots: list[str], import_roots: tuple[str, ...] = ()) -> Lowered:
    """Load, parse and lower; OSError if a root file cannot be read. Imports and password
    files must lie under the roots' directories or `import_roots`."""
    with _no_gc():
        loaded = load(roots, import_roots)
        diagnostics = list(loaded.diagnostics)
        spec = None
        if not diagnostics:
            lowerer = Lowerer({path: os.path.dirname(path) for path in loaded.sources},
                              allowed_roots(roots, import_roots))
            spec = lowerer.lower(loaded.files, os.path.basename(roots[0]))
            diagnostics += lowerer.diagnostics
        return Lowered(spec, tuple(diagnostics), loaded.sources)


def check(roots: list[str], import_roots: tuple[str, ...] = ()) -> Result:
    """Load, parse, lower and check; OSError if a root file cannot be read."""
    return check_lowered(lower(roots, import_roots))


def compile_files(result: Result) -> dict[str, str]:
    """The deploy tree of a checked spec: {relative path: text}."""
    assert result.ok
    with _no_gc():
        return emit_all(result.spec)


def compile_to(lowered: Lowered, target: str, layout: Layout = DEFAULT,
               remove_unlisted: bool = False) -> Result:
    """Check the lowered spec and, if it is valid, write its deploy tree to `target`
    atomically. TargetError if mailspec must not replace `target`; OSError if the tree
    cannot be written (after a valid check)."""
    if lowered.spec is None or any(d.is_error for d in lowered.diagnostics):
        return check_lowered(lowered)
    spec = lowered.spec
    real = resolve(target, list(lowered.sources))
    try:
        staging = Staging(real)
    except OSError:
        result = check_lowered(lowered)
        if result.ok:
            raise
        return result
    background = None

    def write(files: dict[str, str]) -> dict[str, str]:
        return staging.write(files, {path: mode(path) for path in files})

    try:
        with _no_gc():
            # Speculative: an invalid spec may make the backends fail or loop; the
            # child is then simply killed, as its output would be thrown away anyway.
            child, parent = split()
            background = Background(lambda: write(emit_share(spec, child, True, layout)))
            result = lowered.checked()  # while the child works
            if not result.ok:
                background.cancel()
                staging.discard()
                return result
            digests = write(emit_share(spec, parent, False, layout))
            digests.update(background.result())
            write({"MANIFEST": manifest(spec, digests)})
            removed = staging.commit(remove_unlisted)
            return attrs.evolve(result, removed=tuple(removed))
    except BaseException:
        if background is not None:
            background.cancel()
        staging.discard()
        raise


def check_lowered(lowered: Lowered) -> Result:
    with _no_gc():
        return lowered.checked()
