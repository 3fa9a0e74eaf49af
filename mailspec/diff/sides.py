"""The two sides of a diff: spec roots on disk, or the same roots at a git revision
(the revision's tree, from `git archive`, in a temporary directory); and the counts of
generated files that differ between them."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator

import attrs

from mailspec.diagnostics import Diagnostic
from mailspec.diff.changes import FileCounts, Where
from mailspec.pipeline import Result, check
from mailspec.source import Source


class GitError(Exception):
    pass


@attrs.frozen
class Loaded:
    result: Result
    label: str  # "the work tree", "HEAD", a path
    shown_prefix: tuple[str, str] = ("", "")  # a temporary directory -> how its paths are shown

    def shown(self, path: str) -> str:
        """A path as the user knows it: `REV:path` for a file of the revision's tree."""
        temporary, shown = self.shown_prefix
        return shown + path[len(temporary):] if temporary and path.startswith(temporary) else path

    def where(self, where: Where) -> tuple[str, int, int]:
        source = self.result.sources.get(where.span.file)
        path = self.shown(where.span.file)
        if source is None:
            return path, 0, 0
        line, column = source.position(where.span.start)
        return path, line, column

    def diagnostics(self) -> tuple[tuple[Diagnostic, ...], dict[str, Source]]:
        """The result's diagnostics and their sources, every path in them shown as the
        user knows it (`shown`): in spans, and in the messages that name a file."""
        temporary, shown = self.shown_prefix
        if not temporary:
            return self.result.diagnostics, self.result.sources

        def text(found: str | None) -> str | None:  # the tree itself too (`import` names the allowed trees)
            return found.replace(temporary, shown).replace(temporary.rstrip(os.sep), shown.rstrip("/")) \
                if found else found

        diagnostics = tuple(attrs.evolve(
            d, message=text(d.message), notes=tuple(text(n) for n in d.notes), help=text(d.help),
            labels=tuple(attrs.evolve(label, span=label.span._replace(file=self.shown(label.span.file)),
                                      message=text(label.message)) for label in d.labels))
            for d in self.result.diagnostics)
        sources = {}
        for path, source in self.result.sources.items():
            sources[self.shown(path)] = moved = Source(self.shown(path), source.text)
            moved.opaque = source.opaque
        return diagnostics, sources


def load(roots: list[str], label: str, import_roots: tuple[str, ...] = ()) -> Loaded:
    return Loaded(check(roots, import_roots), label)


def revisions(text: str | None) -> tuple[str, str | None]:
    """`A..B` -> (A, B); `A` -> (A, None: the work tree); nothing -> (HEAD, None)."""
    if not text:
        return "HEAD", None
    old, found, new = text.partition("..")
    return (old or "HEAD", (new or "HEAD") if found else None)


def _git(repository: str, *args: str) -> bytes:
    done = subprocess.run(["git", "-C", repository, *args], capture_output=True)
    if done.returncode != 0:
        raise GitError(done.stderr.decode(errors="replace").strip() or f"git {args[0]} failed")
    return done.stdout


def repository_of(path: str) -> str:
    start = os.path.dirname(os.path.abspath(path))
    return _git(start, "rev-parse", "--show-toplevel").decode().strip()


@contextlib.contextmanager
def at_revision(roots: list[str], revision: str, import_roots: tuple[str, ...] = ()) -> Iterator[Loaded]:
    """The spec roots as they were at `revision` of their repository."""
    repository = repository_of(roots[0])
    tree = _git(repository, "archive", "--format=tar", _git(repository, "rev-parse", "--verify", "--end-of-options",
                                                             revision + "^{tree}").decode().strip())
    with tempfile.TemporaryDirectory(prefix="mailspec-diff-") as directory:
        with tarfile.open(fileobj=io.BytesIO(tree)) as archive:
            archive.extractall(directory, filter="data")
        inside = [os.path.join(directory, os.path.relpath(os.path.realpath(r), repository)) for r in roots]
        missing = [r for r, there in zip(roots, inside, strict=True) if not os.path.isfile(there)]
        if missing:
            raise GitError(f"{missing[0]} is not in revision {revision}")
        moved = tuple(os.path.join(directory, os.path.relpath(os.path.realpath(r), repository)) for r in import_roots)
        prefix = os.path.relpath(repository, os.getcwd())
        shown = f"{revision}:" + ("" if prefix == "." else prefix + "/")
        yield Loaded(check(inside, moved), revision, (directory + os.sep, shown))


def file_counts(old: Result, new: Result) -> tuple[tuple[str, FileCounts], ...]:
    """Per daemon directory of the deploy: files added, changed and removed."""
    from mailspec.pipeline import compile_files

    # The generated headers name the root file: compare as if both had the new one's name.
    renamed = attrs.evolve(old, spec=attrs.evolve(old.spec, name=new.spec.name))
    before, after = compile_files(renamed), compile_files(new)
    counts: dict[str, list[int]] = {}
    for path in before.keys() | after.keys():
        if path == "MANIFEST" or before.get(path) == after.get(path):
            continue
        kind = 0 if path not in before else 2 if path not in after else 1
        counts.setdefault(path.split("/")[0], [0, 0, 0])[kind] += 1
    return tuple((name, FileCounts(*found)) for name, found in sorted(counts.items()))
