"""The `switch`, `generations`, `rollback` and `gc` commands (added to `mailspec` by
cli.py). The machinery is imported when a command runs: `check` never pays for it."""

from __future__ import annotations

import contextlib
import shutil
import sys

import attrs
import click

from mailspec import cli
from mailspec.layout import Layout


def targeted(command):
    """The options naming the server a command acts on, and how to reach it."""
    options = (
        click.option("--target", default="local", show_default=True, metavar="local|ssh://[USER@]HOST[:PORT]",
                     help="The server: this machine, or one reached over SSH (as root by default)."),
        click.option("--identity", metavar="FILE", type=click.Path(dir_okay=False),
                     help="The SSH private key to log in with (default: ssh-agent and ~/.ssh/id_*)."),
        click.option("--known-hosts", default="~/.ssh/known_hosts", show_default=True, metavar="FILE",
                     help="The host keys SSH targets are checked against."),
        click.option("--accept-new-host-key", is_flag=True,
                     help="Trust and remember a target whose host key known_hosts lacks."),
        click.option("--prefix", default="", metavar="DIR",
                     help="A relocated server: every path under DIR (as `compile --prefix`)."),
        click.option("--port", "ports", multiple=True, metavar="NAME=NUMBER",
                     help="A relocated listener (as `compile --port`); the health check uses it."),
    )
    for option in reversed(options):
        command = option(command)
    return command


@contextlib.contextmanager
def _connected(target: str, identity, known_hosts: str, accept_new_host_key: bool):
    from mailspec.switch import remote
    from mailspec.switch.store import SwitchError

    try:
        parsed = remote.parse(target)
    except ValueError as problem:
        raise click.BadParameter(str(problem), param_hint="--target") from None
    try:
        host = remote.connect(parsed, **({} if parsed is None else {
            "identity": identity, "known_hosts": known_hosts, "accept_new": accept_new_host_key}))
    except SwitchError as error:
        _fail(error, cli.EXIT_USAGE)
    try:
        yield host
    except SwitchError as error:
        _fail(error, cli.EXIT_SPEC)
    finally:
        host.close()


def _layout_arguments(layout: Layout) -> list[str]:
    """The agent's options for a layout (agent.main parses them back)."""
    ports = [f"{name}={number}" for name, number in attrs.asdict(layout.ports).items()]
    return ["--prefix", layout.prefix, *(f"--port={port}" for port in ports)]


def _fail(error, code: int) -> None:
    click.echo(f"error: {error.message}" + (f"\n  = help: {error.help}" if error.help else ""), err=True)
    sys.exit(code)


def _say(line: str) -> None:
    """A line from the server, shown as it comes (also when stdout is a pipe or a file)."""
    click.echo(line)
    sys.stdout.flush()


def _done(code: int) -> None:
    if code:
        sys.exit(code)


@click.command("switch")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@targeted
@click.option("--dry-run", is_flag=True, help="Show what would change, and stop.")
@click.option("--yes", is_flag=True, help="Switch without asking.")
@cli.IMPORT_ROOTS
def switch_command(files, target, identity, known_hosts, accept_new_host_key, prefix, ports, dry_run, yes,
                   import_roots) -> None:
    """Compile FILES and make the result the server's current generation.

    The new generation is built and validated beside the current one, then made
    current in one atomic step; the daemons whose files changed are reloaded (or
    restarted), and the server is checked. If the check fails, the previous
    generation is made current again. Mail on disk is never touched. A fresh Debian
    host first gets the packages the spec needs.

    \b
    Examples:
      mailspec switch site.mailspec --dry-run
      mailspec switch site.mailspec --yes
      mailspec switch site.mailspec --target ssh://root@mx.example.org --yes
    """
    from mailspec.switch import activate

    layout = cli._layout(prefix, ports)
    result, bundle = activate.compile_to(cli._load(files, import_roots), layout)
    try:
        cli._report(result, "human")
        if not result.ok:
            sys.exit(cli.EXIT_SPEC)
        if not (yes or dry_run or sys.stdin.isatty()):
            click.echo("error: not switching without --yes (nobody to ask)", err=True)
            sys.exit(cli.EXIT_USAGE)
        with _connected(target, identity, known_hosts, accept_new_host_key) as host:
            there = host.upload(bundle)
            click.echo(f"on {host.name}:")
            _done(host.agent([*_layout_arguments(layout), "plan", there], _say))
            if dry_run:
                return
            if not yes:
                click.confirm("switch?", abort=True)
            _done(host.agent([*_layout_arguments(layout), "switch", there], _say))
    finally:
        shutil.rmtree(bundle, ignore_errors=True)


@click.command("generations")
@targeted
def generations_command(target, identity, known_hosts, accept_new_host_key, prefix, ports) -> None:
    """List the server's generations; * marks the current one."""
    arguments = [*_layout_arguments(cli._layout(prefix, ports)), "generations"]
    with _connected(target, identity, known_hosts, accept_new_host_key) as host:
        _done(host.agent(arguments, _say))


@click.command("rollback")
@click.argument("number", required=False, type=click.IntRange(min=0))
@targeted
def rollback_command(number, target, identity, known_hosts, accept_new_host_key, prefix, ports) -> None:
    """Make generation NUMBER current again (default: the one before the current)."""
    arguments = [*_layout_arguments(cli._layout(prefix, ports)), "rollback",
                 *([str(number)] if number is not None else [])]
    with _connected(target, identity, known_hosts, accept_new_host_key) as host:
        _done(host.agent(arguments, _say))


@click.command("gc")
@click.option("--keep", type=click.IntRange(min=1), required=True, help="How many of the newest to keep.")
@targeted
def gc_command(keep, target, identity, known_hosts, accept_new_host_key, prefix, ports) -> None:
    """Remove old generations: never the current one, the one before it, or 0."""
    arguments = [*_layout_arguments(cli._layout(prefix, ports)), "gc", str(keep)]
    with _connected(target, identity, known_hosts, accept_new_host_key) as host:
        _done(host.agent(arguments, _say))


COMMANDS = (switch_command, generations_command, rollback_command, gc_command)
