"""`mailspec diff`'s steps: load both sides, report their diagnostics (exit 2 if either
has errors), compare, render. Exit 0, or with --exit-code 1 when the meaning changed."""

from __future__ import annotations

import contextlib

import attrs
import click

from mailspec.diagnostics import render_all_text
from mailspec.diff import diff
from mailspec.diff.render import render
from mailspec.diff.sides import GitError, Loaded, at_revision, file_counts, load, revisions

EXIT_CHANGED, EXIT_USAGE = 1, 2


def _sides(stack: contextlib.ExitStack, specs: list[str], revision: str | None,
           import_roots: tuple[str, ...]) -> tuple[Loaded, Loaded]:
    if revision is None:
        if len(specs) != 2:
            raise click.UsageError("give OLD_SPEC and NEW_SPEC, or one spec's roots with --git")
        return load([specs[0]], specs[0], import_roots), load([specs[1]], specs[1], import_roots)
    old, new = revisions(revision)
    before = stack.enter_context(at_revision(specs, old, import_roots))
    after = stack.enter_context(at_revision(specs, new, import_roots)) if new else \
        load(specs, "the work tree", import_roots)
    return before, after


def run(specs: list[str], revision: str | None, output_format: str, exit_code: bool,
        import_roots: tuple[str, ...]) -> int:
    with contextlib.ExitStack() as stack:
        try:
            old, new = _sides(stack, specs, revision, import_roots)
        except GitError as error:
            click.echo(f"error: {error}", err=True)
            return EXIT_USAGE
        except OSError as error:
            click.echo(f"error: cannot read `{error.filename}`: {(error.strerror or str(error)).lower()}", err=True)
            return EXIT_USAGE
        failed = False
        for side in (old, new):
            if side.result.diagnostics:
                click.echo(f"{side.label}:", err=True)
                click.echo(render_all_text(*side.diagnostics()), nl=False, err=True)
            failed = failed or not side.result.ok
        if failed:
            return EXIT_USAGE
        found = attrs.evolve(diff(old.result.spec, new.result.spec), files=file_counts(old.result, new.result))
        click.echo(render(found, old, new, output_format), nl=False)
        return EXIT_CHANGED if exit_code and not found.empty else 0
