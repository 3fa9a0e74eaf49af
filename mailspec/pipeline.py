"""The whole flow in one place: load -> parse -> lower -> check -> emit -> write."""

from __future__ import annotations

import contextlib
import gc
import os

import attrs

from mailspec import model
from mailspec.check import check_spec
from mailspec.diagnostics import Diagnostic
from mailspec.emit import emit_all
from mailspec.lower.loader import load
from mailspec.lower.lower import Lowerer
from mailspec.source import Source


@attrs.frozen
class Result:
    spec: model.Spec | None
    diagnostics: tuple[Diagnostic, ...]
    sources: dict[str, Source]

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
            gc.enable()


def check(roots: list[str]) -> Result:
    """Load, parse, lower and check; OSError if a root file cannot be read."""
    with _no_gc():
        loaded = load(roots)
        diagnostics = list(loaded.diagnostics)
        spec = None
        if not diagnostics:
            lowerer = Lowerer({path: os.path.dirname(path) for path in loaded.sources})
            spec = lowerer.lower(loaded.files, os.path.basename(roots[0]))
            diagnostics += lowerer.diagnostics
            if spec is not None:
                diagnostics += check_spec(spec)
        return Result(spec, tuple(diagnostics), loaded.sources)


def compile_files(result: Result) -> dict[str, str]:
    """The deploy tree of a checked spec: {relative path: text}."""
    assert result.ok
    with _no_gc():
        return emit_all(result.spec)
