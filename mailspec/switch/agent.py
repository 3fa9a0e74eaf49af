"""The switch machinery as it runs on the server, for every target.

`--target local` calls `main` in the same process; an SSH target uploads `archive()`
and runs `python3 agent.pyz ARGS` there (remote.py). Either way the same code checks
the host, plans, switches, rolls back and collects garbage. On a server it has the
standard library and the attrs bundled with it, and nothing else: no compiler.

    plan BUNDLE | prepare BUNDLE | switch BUNDLE | generations | rollback [N] | gc KEEP

A BUNDLE is a directory with the compiled `deploy/` and its `request.json`.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

EXIT_FAILED, EXIT_HOST, EXIT_INTERNAL = 1, 2, 70  # a step failed (the server stays as it was); the host
# is unsuitable; a bug
MAIN = "from mailspec.switch.agent import serve\nraise SystemExit(serve())\n"


def serve() -> int:
    """The agent as a program on a server. sshd hangs up on it when the `mailspec` that
    started it is gone (killed, or its network lost): it carries on to the end. A handler,
    not SIG_IGN, so that the daemons it starts get the default back."""
    signal.signal(signal.SIGHUP, lambda *_: None)
    return main()


def main(argv: list[str] | None = None, echo: Callable[[str], None] | None = None) -> int:
    from mailspec.layout import Layout, Ports
    from mailspec.switch.store import Store, SwitchError

    echo = echo or _print
    args = _parser().parse_args(argv)
    ports = dict(item.split("=", 1) for item in args.port)
    layout = Layout(args.prefix, Ports(**{name: int(number) for name, number in ports.items()}))
    try:
        problem = host_problem(layout)
        if problem:
            _error(*problem)
            return EXIT_HOST
        return _run(args, Store(layout), echo)
    except SwitchError as error:
        _error(error.message, error.help)
    except OSError as error:
        _error(f"{error.strerror or error}" + (f": {error.filename}" if error.filename else ""), "")
    except Exception as error:  # noqa: BLE001  (a bug: said in one line, as the CLI does; no traceback)
        _error(f"internal error in mailspec's agent ({type(error).__name__}: {error}); please report it", "")
        return EXIT_INTERNAL
    return EXIT_FAILED


def _run(args, store, echo) -> int:
    from mailspec.switch import activate, database
    from mailspec.switch.build import REQUEST
    from mailspec.switch.request import Request

    if args.command in ("plan", "prepare", "switch"):
        request = Request.from_json(Path(args.bundle, REQUEST).read_text(encoding="utf-8"))
        if request.layout != store.layout:
            _error(f"this spec was compiled for the layout {request.layout}, not {store.layout}",
                   "compile and switch with the same --prefix and --port")
            return EXIT_HOST
        deploy = os.path.join(args.bundle, "deploy")
        if args.command == "plan":
            found = activate.plan(store, request, deploy)
            echo(f"switch {request.spec}" + (f" (current generation: {found.previous})"
                                             if found.previous is not None else "") + ":")
            for line in found.lines() + database.plan_lines(args.bundle):
                echo(line)
        elif args.command == "prepare":  # what a switch does first; then the database can be made
            with store.lock():
                activate.prepare(store, request, echo)
        else:
            activate.switch(store, request, deploy, echo)
    elif args.command == "generations":
        current = store.current()
        echo("     #  built (UTC)                 manifest      spec")
        for generation in store.generations():
            echo(activate.describe(generation, current))
    elif args.command == "rollback":
        activate.rollback(store, args.number, echo)
    else:
        activate.gc(store, args.keep, echo)
    return 0


def host_problem(layout) -> tuple[str, str] | None:
    """Why this host cannot be switched (message, help), or None."""
    if os.geteuid() != 0:
        return "this changes the mail server: it must run as root on it", "log in as root (ssh://root@host)"
    if layout.prefix:  # a relocated server beside the host's own: any Linux will do
        return None
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            release = dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)
    except OSError:
        release = {}
    if release.get("ID", "").strip('"') != "debian":
        name = release.get("PRETTY_NAME", "unknown").strip('"')
        return f"this host is not Debian ({name}): mailspec switches Debian 12 servers", ""
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailspec-agent")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--port", action="append", default=[])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("plan", "prepare", "switch"):
        commands.add_parser(name).add_argument("bundle")
    commands.add_parser("generations")
    commands.add_parser("rollback").add_argument("number", nargs="?", type=int)
    commands.add_parser("gc").add_argument("keep", type=int)
    return parser


def _print(line: str) -> None:
    """A line for whoever started the agent. If that was a controller that has gone (a
    killed `mailspec switch` over SSH), the switch goes on to its end without it."""
    try:
        print(line, flush=True)
    except OSError:
        pass


def _error(message: str, help: str) -> None:
    try:
        print(f"error: {message}" + (f"\n  = help: {help}" if help else ""), file=sys.stderr, flush=True)
    except OSError:
        pass


def archive() -> bytes:
    """agent.pyz: the machinery a server runs, with the attrs it needs (pymysql, for the
    mysql backend, is Debian's python3-pymysql)."""
    import attr
    import attrs

    import mailspec
    from mailspec import backends

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__main__.py", MAIN)
        top = Path(mailspec.__file__).parent
        for path in [*top.glob("*.py"), *(top / "switch").glob("*.py")]:
            archive.write(path, f"mailspec/{path.relative_to(top)}")
        root = Path(backends.__file__).parent  # the sql backend's rows and schema (database.py)
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, f"mailspec/backends/{path.relative_to(root)}")
        for package in (attr, attrs):
            root = Path(package.__file__).parent
            for path in sorted(root.rglob("*.py")):
                archive.write(path, f"{package.__name__}/{path.relative_to(root)}")
    return buffer.getvalue()


if __name__ == "__main__":
    sys.exit(serve())
