"""The `mailspec` command line. Exit codes: 0 ok, 1 spec errors, 2 usage or I/O errors."""

from __future__ import annotations

import errno
import os
import stat
import sys

import attrs
import click

from mailspec import __version__, model
from mailspec.diagnostics import SpecError, render_all_json, render_all_text
from mailspec.layout import Layout, Ports
from mailspec.lower.loader import read_text
from mailspec.lower.parsers import daemon_path
from mailspec.lower.values import Invalid
from mailspec.pipeline import Result, check_and_write, load_and_lower
from mailspec.source import Source

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70
MAX_PREFIX = 60

FORMAT = click.option("--format", "output_format", type=click.Choice(["human", "json"]),
                      default="human", show_default=True, help="How to print diagnostics.")


IMPORT_ROOTS = click.option(
    "--import-root", "import_roots", multiple=True, type=click.Path(file_okay=False, exists=True),
    metavar="DIR", help="Also allow imports and password files from under DIR (repeatable); "
                        "by default they must lie under the spec files' own directories.")


def _cannot_read(error: OSError, name: str) -> None:
    click.echo(f"error: cannot read `{getattr(error, 'filename', None) or name}`: "
               f"{(error.strerror or str(error)).lower()}", err=True)
    sys.exit(EXIT_USAGE)


def _load(files: tuple[str, ...], import_roots: tuple[str, ...] = ()) -> Result:
    try:
        return load_and_lower(list(files), import_roots)
    except OSError as error:
        _cannot_read(error, files[0])


def _report(result: Result, output_format: str) -> None:
    if output_format == "json":
        click.echo(render_all_json(result.diagnostics, result.sources), nl=False)
    elif result.diagnostics:
        click.echo(render_all_text(result.diagnostics, result.sources), nl=False, err=True)


def replace_file(path: str, text: str) -> None:
    """Write `path` whole or not at all, keeping its mode and owner: a new file made
    exclusively (a unique name, never through a link) beside it, then renamed over it.
    A symlink is refused, not written through or replaced."""
    found = os.lstat(path)
    if stat.S_ISLNK(found.st_mode):
        raise OSError(errno.ELOOP, f"is a symbolic link; format the file it points to, "
                                   f"{os.path.realpath(path)}", path)
    directory, name = os.path.split(os.path.abspath(path))
    import tempfile  # only fmt writes this way; `check` starts faster without it

    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".mailspec-fmt", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            os.fchmod(descriptor, stat.S_IMODE(found.st_mode))
            if os.geteuid() == 0:
                os.fchown(descriptor, found.st_uid, found.st_gid)
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _layout(prefix: str, ports: tuple[str, ...]) -> Layout:
    if prefix:
        try:
            daemon_path(prefix)
        except Invalid as problem:
            raise click.BadParameter(f"{problem.message}; {problem.help}", param_hint="--prefix") from None
    if len(prefix) > MAX_PREFIX:  # Unix socket paths under it must fit in 108 bytes
        raise click.BadParameter(f"must be at most {MAX_PREFIX} characters long", param_hint="--prefix")
    numbers = {}
    for item in ports:
        name, _, number = item.partition("=")
        if name not in attrs.fields_dict(Ports) or not number.isdigit() or not 0 < int(number) < 65536:
            raise click.BadParameter(f"`{item}`: write NAME=NUMBER with NAME one of "
                                     f"{', '.join(attrs.fields_dict(Ports))}", param_hint="--port")
        numbers[name] = int(number)
    return Layout(prefix.rstrip("/"), Ports(**numbers))


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except MemoryError:  # print nothing that needs memory: no formatting, no traceback
            sys.stderr.write("error: mailspec ran out of memory\n")
            sys.exit(EXIT_INTERNAL)
        except RecursionError:
            sys.stderr.write("error: internal error in mailspec (the spec is nested too deeply for "
                             "a pass); please report it with the spec that caused it\n")
            sys.exit(EXIT_INTERNAL)
        except Exception as error:  # noqa: BLE001  (a bug in mailspec, never the user's fault: no traceback)
            click.echo(f"error: internal error in mailspec ({type(error).__name__}: {error}); "
                       "please report it with the spec that caused it", err=True)
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailspec")
def main() -> None:
    """mailspec: describe a Postfix + Dovecot + Sieve mail server in typed .mailspec
    files, check it, and compile it into a reproducible deploy directory.

    \b
    Examples:
      mailspec check site.mailspec
      mailspec compile site.mailspec -o deploy/
      mailspec certs site.mailspec --out tls/
      mailspec fmt --check site.mailspec
    """


@main.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@IMPORT_ROOTS
@FORMAT
def check_command(files: tuple[str, ...], import_roots: tuple[str, ...], output_format: str) -> None:
    """Check FILES (read together as one spec) and report every problem.

    \b
    Examples:
      mailspec check site.mailspec
      mailspec check server.mailspec domains/*.mailspec
      mailspec check site.mailspec --format json
    """
    result = check_and_write(_load(files, import_roots))
    _report(result, output_format)
    sys.exit(EXIT_OK if result.ok else EXIT_SPEC)


@main.command("compile")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="The deploy directory to (re)create.")
@click.option("--prefix", default="", metavar="DIR",
              help="Relocate: put every absolute path the deploy names under DIR (for tests "
                   "and side-by-side servers). Only paths and ports differ from production.")
@click.option("--port", "ports", multiple=True, metavar="NAME=NUMBER",
              help="Relocate a listener: smtp, submission, submissions, imap, imaps or sieve. "
                   "Repeatable.")
@click.option("--remove-unlisted", is_flag=True,
              help="Delete files in OUTPUT that its MANIFEST does not list (they are named).")
@IMPORT_ROOTS
@FORMAT
def compile_command(files: tuple[str, ...], output: str, prefix: str, ports: tuple[str, ...],
                    remove_unlisted: bool, import_roots: tuple[str, ...], output_format: str) -> None:
    """Compile FILES into the deploy directory OUTPUT.

    The directory is replaced as a whole, atomically: if the spec has errors, or
    writing fails, the previous deploy stays as it was. OUTPUT must be missing, empty,
    or a deploy that mailspec wrote; files in it that its MANIFEST does not list are
    kept (and the compile refused) unless --remove-unlisted is given.

    \b
    Examples:
      mailspec compile site.mailspec -o deploy/
      mailspec compile server.mailspec domains/*.mailspec -o /srv/mail/deploy
      mailspec compile site.mailspec -o test-deploy --prefix /tmp/mail --port smtp=2525
    """
    from mailspec.deploydir import TargetError

    layout = _layout(prefix, ports)
    lowered = _load(files, import_roots)
    try:
        result = check_and_write(lowered, output, layout, remove_unlisted)
    except TargetError as error:
        click.echo(f"error: {error.message}\n  = help: {error.help}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as error:
        click.echo(f"error: cannot write `{output}`: {(error.strerror or str(error)).lower()}", err=True)
        sys.exit(EXIT_USAGE)
    _report(result, output_format)
    if not result.ok:
        sys.exit(EXIT_SPEC)
    for path in result.removed:
        click.echo(f"removed {os.path.join(output, path)} (not listed in the MANIFEST)", err=True)
    if output_format == "human":
        click.echo(f"compiled {result.spec.name} into {output}", err=True)


@main.command("certs")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="The state directory for the CA and the server key and certificate.")
@IMPORT_ROOTS
def certs_command(files: tuple[str, ...], out: str, import_roots: tuple[str, ...]) -> None:
    """Create a private CA and a server certificate for the spec's mail names.

    The server certificate covers the hostname and `mail.<domain>` for every served
    domain and domain alias; with more than 100 names in all, the hostname only (clients
    refuse huge certificates). An existing CA in OUT is kept, so clients that trust it
    go on trusting the new certificate. Keys are written 0600. Point the spec's
    `tls { cert …; key … }` at the installed server.crt and server.key.

    \b
    Examples:
      mailspec certs site.mailspec --out /var/lib/mailspec/tls
    """
    from mailspec.certs import MAX_NAMES, all_mail_names, make_certificates  # cryptography: only here

    result = check_and_write(_load(files, import_roots))
    if not result.ok:
        _report(result, "human")
        sys.exit(EXIT_SPEC)
    try:
        paths = make_certificates(result.spec, out)
    except OSError as error:
        click.echo(f"error: cannot write `{out}`: {(error.strerror or str(error)).lower()}", err=True)
        sys.exit(EXIT_USAGE)
    for name in ("ca.crt", "server.crt", "server.key"):
        click.echo(f"wrote {paths[name]}", err=True)
    if len(all_mail_names(result.spec)) > MAX_NAMES:
        click.echo(f"note: the certificate names {result.spec.server.hostname} only: "
                   f"point clients at it (more than {MAX_NAMES} mail names)", err=True)


def _checked(files: tuple[str, ...], import_roots: tuple[str, ...]) -> model.Spec:
    """The spec of FILES, or its diagnostics and exit 1."""
    result = check_and_write(_load(files, import_roots))
    if not result.ok:
        _report(result, "human")
        sys.exit(EXIT_SPEC)
    _report(result, "human")  # its warnings
    return result.spec


@main.command("keys")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="The directory for the keys; install it on the server at `server { keys … }`.")
@click.option("--force", is_flag=True, help="Replace keys that exist (a key in DNS stops verifying).")
@IMPORT_ROOTS
def keys_command(files: tuple[str, ...], out: str, force: bool, import_roots: tuple[str, ...]) -> None:
    """Create the DKIM private keys the spec's domains sign with, and the SRS secret
    that forwarded mail's senders are signed with, 0600 from the first byte.

    Keys that exist are kept, so running it again after adding a domain or a standby
    selector makes only the new ones. Publish the public halves with `mailspec dns`.

    \b
    Examples:
      mailspec keys site.mailspec --out secrets/keys
    """
    from mailspec.keys import KeyProblem, make_keys  # cryptography: only here

    spec = _checked(files, import_roots)
    try:
        written, kept = make_keys(spec, out, force)
    except KeyProblem as problem:
        click.echo(f"error: {problem}\n  = help: a new key needs a new selector (publish it as `standby` "
                   "first); or pass --force to replace it", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as error:
        click.echo(f"error: cannot write `{out}`: {(error.strerror or str(error)).lower()}", err=True)
        sys.exit(EXIT_USAGE)
    for path in written:
        click.echo(f"wrote {path}", err=True)
    click.echo(f"{len(written)} written, {len(kept)} kept in {out}", err=True)


@main.command("dns")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--keys", "keys_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="The directory `mailspec keys` wrote: the DKIM records need the public keys.")
@click.option("--format", "output_format", type=click.Choice(["zone", "json"]), default="zone",
              show_default=True)
@click.option("--check", "live", is_flag=True, help="Query live DNS for every record instead of printing them.")
@click.option("--resolver", metavar="IP[:PORT]", help="With --check: ask this server (default: the system's).")
@IMPORT_ROOTS
def dns_command(files: tuple[str, ...], keys_dir: str, output_format: str, live: bool, resolver: str | None,
                import_roots: tuple[str, ...]) -> None:
    """Print the DNS records the spec's domains need, or check them against live DNS.

    Per domain: MX, SPF, DKIM, DMARC, MTA-STS and TLS-RPT, autoconfig and SRV records,
    and the server's A/AAAA, each with a comment saying why. --check reports every
    record as present, missing or different, and exits 1 when a required one is not
    as printed, or when the server's PTR does not forward-confirm.

    \b
    Examples:
      mailspec dns site.mailspec --keys secrets/keys > example.com.zone-fragment
      mailspec dns site.mailspec --keys secrets/keys --check --resolver 192.0.2.53
    """
    from mailspec.dns import records, zone
    from mailspec.keys import KeyProblem

    spec = _checked(files, import_roots)
    try:
        fragments = records.fragments(spec, keys_dir)
    except KeyProblem as problem:
        click.echo(f"error: {problem}\n  = help: run `mailspec keys` with the same spec to make it", err=True)
        sys.exit(EXIT_USAGE)
    if not live:
        click.echo(zone.zone_text(fragments, spec.name) if output_format == "zone" else zone.zone_json(fragments),
                   nl=False)
        return
    from mailspec.dns import live as checking

    try:
        report = checking.check(spec, fragments, checking.resolver(resolver))
    except checking.LiveProblem as problem:
        click.echo(f"error: {problem}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(report.text(), nl=False)
    if not report.ok:
        sys.exit(EXIT_SPEC)


@main.command("apply")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--db", "url", required=True,
              help="mysql://user@host[:port]/database, or …/database?socket=/path/to/mysqld.sock")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="A MySQL option file with the password in its [mailspec] group, "
                   "or a file that holds only the password.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@IMPORT_ROOTS
def apply_command(files: tuple[str, ...], url: str, password_file: str | None, dry_run: bool,
                  import_roots: tuple[str, ...]) -> None:
    """Make the live database equal to the spec (for the mysql backend).

    Prints the plan: rows to add, change and remove, per domain. Without --dry-run it
    then applies the whole plan in one transaction. An empty database gets the schema
    first; a database with another schema version is refused. Mail on disk is never
    touched: a removed mailbox keeps its data.

    \b
    Examples:
      mailspec apply site.mailspec --db mysql://mailspec@localhost/mail \\
          --password-file /etc/mailspec/mysql.cnf --dry-run
      mailspec apply site.mailspec --db 'mysql://mailspec@localhost/mail?socket=/run/mysqld/mysqld.sock'
    """
    import pymysql

    from mailspec import apply as applying  # pymysql is only needed here

    result = check_and_write(_load(files, import_roots))
    if not result.ok:
        _report(result, "human")
        sys.exit(EXIT_SPEC)
    if result.spec.server.backend.kind is not model.BackendKind.MYSQL:
        click.echo("error: the spec uses `backend files`; apply fills the database of "
                   "`backend mysql { … }`", err=True)
        sys.exit(EXIT_USAGE)
    try:
        database = applying.Database.from_url(url)
        password = applying.read_password(password_file) if password_file else None
        with database.connect(password) as connection:
            the_plan = applying.plan(connection, result.spec)
            click.echo(the_plan.render(f"{database.database} ({database.user})"), nl=False)
            if dry_run or the_plan.empty:
                return
            applying.apply(connection, the_plan)
    except applying.ApplyError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    except pymysql.err.Error as error:
        click.echo(f"error: the database refused the change, nothing was applied: {error.args[-1]}",
                   err=True)
        sys.exit(EXIT_USAGE)
    click.echo("Applied.")


@main.command("fmt")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file is not formatted.")
def fmt_command(files: tuple[str, ...], check: bool) -> None:
    """Rewrite FILES in the canonical layout, keeping every comment.

    One statement per line, two spaces per block, `, ` between values. The meaning of
    the spec never changes. Use --check in CI to fail on unformatted files.

    \b
    Examples:
      mailspec fmt site.mailspec domains/*.mailspec
      mailspec fmt --check site.mailspec domains/*.mailspec
    """
    from mailspec.fmt import format_text

    unformatted, failed = [], False
    for name in files:
        try:
            text = read_text(name)
            formatted = format_text(name, text)
        except OSError as error:
            _cannot_read(error, name)
        except SpecError as error:
            click.echo(render_all_text(error.diagnostics, {name: Source(name, text)}), nl=False, err=True)
            failed = True
            continue
        if formatted == text:
            continue
        unformatted.append(name)
        if check:
            click.echo(f"would reformat {name}", err=True)
        else:
            try:
                replace_file(name, formatted)
            except OSError as error:
                click.echo(f"error: cannot write `{name}`: {(error.strerror or str(error))}", err=True)
                sys.exit(EXIT_USAGE)
            click.echo(f"reformatted {name}", err=True)
    if failed or (check and unformatted):
        sys.exit(EXIT_SPEC)


@main.command("diff")
@click.argument("arguments", nargs=-1, required=True, metavar="OLD_SPEC NEW_SPEC | --git [REV[..REV]] SPEC...")
@click.option("--git", "use_git", is_flag=True,
              help="Compare the spec at two git revisions: REV..REV, or REV against the work tree "
                   "(default: HEAD against the work tree).")
@click.option("--format", "output_format", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True, help="text for a terminal, markdown for a pull-request comment, json for tools.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when the meaning changes, 0 when it does not.")
@IMPORT_ROOTS
def diff_command(arguments: tuple[str, ...], use_git: bool, output_format: str, exit_code: bool,
                 import_roots: tuple[str, ...]) -> None:
    """Show what changes in meaning between two specs (or one spec at two git revisions):
    who receives mail for each address, who may send as whom, lists, limits, Sieve rules
    and the server's settings, with what widens access flagged."""
    from mailspec.diff.command import run

    specs, revision = list(arguments), None
    if use_git:  # a first argument that is no file, when specs follow, is the revision range
        revision = specs.pop(0) if len(specs) > 1 and not os.path.isfile(specs[0]) else "HEAD"
    sys.exit(run(specs, revision, output_format, exit_code, import_roots))


@main.command("explain")
@click.argument("code", required=False)
def explain_command(code: str | None) -> None:
    """Print the long form of a diagnostic code (such as E0406), or list them all."""
    from mailspec.explain import explanations

    found = explanations()
    if code is None:
        click.echo("".join(f"{e.code}  {e.title}\n" for e in found.values()), nl=False)
        return
    if code.upper() not in found:
        click.echo(f"error: there is no diagnostic {code}", err=True)
        click.echo("help: `mailspec explain` lists them all", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(found[code.upper()].render(), nl=False)


@main.command("reference")
def reference_command() -> None:
    """Print the language reference (every block and keyword), as docs/reference.md has it."""
    from mailspec.reference import render

    click.echo(render(), nl=False)


@main.command("passwd")
@click.option("--scheme", type=click.Choice(["ARGON2ID", "BLF-CRYPT"]), default="ARGON2ID", show_default=True,
              help="The hash scheme (ARGON2ID: the strongest Dovecot 2.3 verifies).")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from stdin (one line) instead of the "
              "terminal.")
def passwd_command(scheme: str, from_stdin: bool) -> None:
    """Print a password hash for a mailbox's `password`, ready to paste."""
    from mailspec.passwd import hash_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Again", err=True)
    try:
        click.echo(hash_password(password, scheme))
    except ValueError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


@main.command("vmtest")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--scenario", "names", multiple=True, metavar="NAME",
              help="Run only this scenario (repeatable); default: every one that applies.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write a JUnit XML report here.")
@click.option("--accel", type=click.Choice(["kvm", "tcg"]), default=None,
              help="The QEMU accelerator (also MAILSPEC_VM_ACCEL); default: KVM if it boots here.")
def vmtest_command(files: tuple[str, ...], names: tuple[str, ...], junit: str | None, accel: str | None) -> None:
    """Boot the spec's compiled deploy in QEMU VMs and exercise it over real SMTP,
    submission and IMAP: every built-in scenario that applies to the spec, with the
    addresses it declares. Mailbox passwords are replaced by random test passwords.

    Prints one line per scenario (PASS, FAIL or SKIP, and its wall time); exit 1 if any
    scenario fails. Needs root, QEMU and mmdebstrap; the VM image is built once and
    cached under ~/.cache/mailspec/vm (MAILSPEC_VM_CACHE).

    \b
    Examples:
      mailspec vmtest site.mailspec
      mailspec vmtest site.mailspec --scenario delivery --scenario relay --junit vm.xml
    """
    result = check_and_write(_load(files))
    if not result.ok:
        _report(result, "human")
        sys.exit(EXIT_SPEC)
    try:
        from mailspec.vmtests import image, machine, qemu, runner, scenarios
    except ImportError as error:
        click.echo(f"error: the VM harness needs `{error.name}`: pip install 'mailspec[vm]'", err=True)
        sys.exit(EXIT_USAGE)
    unknown = sorted(set(names) - set(scenarios.BY_NAME))
    if unknown:
        click.echo(f"error: no scenario named {', '.join(unknown)}; the scenarios are: "
                   f"{', '.join(scenarios.BY_NAME)}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        outcomes = runner.run_spec(list(files), list(names), accel)
    except (image.ImageError, qemu.QemuError, machine.MachineError, OSError) as error:
        click.echo(f"error: cannot run the VMs: {error}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(runner.report(outcomes), nl=False)
    if junit:
        with open(junit, "wb") as handle:
            handle.write(runner.junit(outcomes, os.path.basename(files[0])))
    if any(outcome.status == "fail" for outcome in outcomes):
        sys.exit(EXIT_SPEC)


from mailspec.switch.commands import COMMANDS  # noqa: E402  (it uses this module's helpers)

for _command in COMMANDS:
    main.add_command(_command)
