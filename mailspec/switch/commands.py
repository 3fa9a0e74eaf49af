"""The `switch`, `generations`, `rollback` and `gc` commands (added to `mailspec` by
cli.py). The machinery is imported when a command runs: `check` never pays for it."""

from __future__ import annotations

import os
import shutil
import sys

import click

from mailspec import cli, model

TARGET = click.option("--target", default="local", show_default=True, metavar="local",
                      help="The server to act on. Only `local` (this machine) for now.")
PREFIX = click.option("--prefix", default="", metavar="DIR",
                      help="A relocated server: every path under DIR (as `compile --prefix`).")
PORTS = click.option("--port", "ports", multiple=True, metavar="NAME=NUMBER",
                     help="A relocated listener (as `compile --port`); the health check uses it.")


def _store(target: str, prefix: str, ports: tuple[str, ...]):
    from mailspec.switch.store import Store

    if target != "local":
        click.echo(f"error: cannot reach `{target}`: only `--target local` is built so far\n"
                   "  = help: run mailspec on the server itself, with --target local", err=True)
        sys.exit(cli.EXIT_USAGE)
    layout = cli._layout(prefix, ports)
    if os.geteuid() != 0:
        click.echo("error: this changes the mail server: it must run as root on it", err=True)
        sys.exit(cli.EXIT_USAGE)
    if not layout.prefix and not os.path.exists("/etc/debian_version"):
        click.echo("error: this host is not Debian: mailspec switches Debian 12 servers", err=True)
        sys.exit(cli.EXIT_USAGE)
    return Store(layout)


def _failed(error) -> None:
    """A step that failed (SwitchError), or the host refusing one (OSError)."""
    message, help = (error.message, error.help) if hasattr(error, "message") else (
        f"{error.strerror or error}" + (f": {error.filename}" if getattr(error, "filename", None) else ""), "")
    click.echo(f"error: {message}" + (f"\n  = help: {help}" if help else ""), err=True)
    sys.exit(cli.EXIT_SPEC)


@click.command("switch")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@TARGET
@PREFIX
@PORTS
@click.option("--dry-run", is_flag=True, help="Show what would change, and stop.")
@click.option("--yes", is_flag=True, help="Switch without asking.")
@cli.IMPORT_ROOTS
def switch_command(files, target, prefix, ports, dry_run, yes, import_roots) -> None:
    """Compile FILES and make the result the server's current generation.

    The new generation is built and validated beside the current one, then made
    current in one atomic step; the daemons whose files changed are reloaded (or
    restarted), and the server is checked. If the check fails, the previous
    generation is made current again. Mail on disk is never touched.

    \b
    Examples:
      mailspec switch site.mailspec --dry-run
      mailspec switch site.mailspec --yes
    """
    from mailspec.switch import activate
    from mailspec.switch.store import SwitchError

    store = _store(target, prefix, ports)
    result, deploy = activate.compile_to(cli._load(files, import_roots), store.layout)
    try:
        cli._report(result, "human")
        if not result.ok:
            sys.exit(cli.EXIT_SPEC)
        if result.spec.server.backend.kind is model.BackendKind.MYSQL:  # the host tier switches these itself
            click.echo("error: switch does not handle the mysql backend yet: its database must switch with "
                       "the files\n  = help: use `mailspec apply` and install the deploy by hand for now "
                       "(docs/switch.md)", err=True)
            sys.exit(cli.EXIT_USAGE)
        found = activate.plan(store, deploy)
        click.echo(f"switch {result.spec.name} on {target}"
                   + (f" (current generation: {found.previous})" if found.previous is not None else "") + ":")
        click.echo("\n".join(found.lines()))
        if dry_run:
            return
        if not yes:
            if not sys.stdin.isatty():
                click.echo("error: not switching without --yes (nobody to ask)", err=True)
                sys.exit(cli.EXIT_USAGE)
            click.confirm("switch?", abort=True)
        try:
            activate.switch(store, result.spec, deploy, click.echo)
        except (SwitchError, OSError) as error:
            _failed(error)
    finally:
        shutil.rmtree(os.path.dirname(deploy), ignore_errors=True)


@click.command("generations")
@TARGET
@PREFIX
def generations_command(target, prefix) -> None:
    """List the server's generations; * marks the current one."""
    from mailspec.switch.activate import describe

    store = _store(target, prefix, ())
    current = store.current()
    click.echo("     #  built (UTC)                 manifest      spec")
    for generation in store.generations():
        click.echo(describe(generation, current))


@click.command("rollback")
@click.argument("number", required=False, type=int)
@TARGET
@PREFIX
@PORTS
def rollback_command(number, target, prefix, ports) -> None:
    """Make generation NUMBER current again (default: the one before the current)."""
    from mailspec.switch.activate import rollback
    from mailspec.switch.store import SwitchError

    try:
        rollback(_store(target, prefix, ports), number, click.echo)
    except (SwitchError, OSError) as error:
        _failed(error)


@click.command("gc")
@click.option("--keep", type=click.IntRange(min=1), required=True, help="How many of the newest to keep.")
@TARGET
@PREFIX
def gc_command(keep, target, prefix) -> None:
    """Remove old generations: never the current one, the one before it, or 0."""
    from mailspec.switch.activate import gc
    from mailspec.switch.store import SwitchError

    try:
        gc(_store(target, prefix, ()), keep, click.echo)
    except (SwitchError, OSError) as error:
        _failed(error)


COMMANDS = (switch_command, generations_command, rollback_command, gc_command)
