"""Lowering diagnostics (E02xx imports, E03xx statements and typed values)."""

from __future__ import annotations

import attrs

from mailspec.diagnostics import Diagnostic, did_you_mean
from mailspec.source import Span


def import_not_found(span: Span, path: str, reason: str) -> Diagnostic:
    return Diagnostic.error("E0201", f"cannot read imported file `{path}`", span, reason,
                            help="import paths are relative to the file that imports them")


def import_outside(span: Span, path: str, roots: tuple[str, ...]) -> Diagnostic:
    return Diagnostic.error("E0205", f"`{path}` is outside the spec's directory tree", span,
                            "imported from outside " + " and ".join(f"`{r}`" for r in roots),
                            help="move the file under the spec's directory, or name its directory "
                                 "with --import-root DIR")


def not_a_spec(span: Span, path: str) -> Diagnostic:
    return Diagnostic.error("E0206", f"`{path}` is not a mailspec file", span,
                            "does not start with a statement", notes=["its text is not shown"],
                            help="check the file name; a spec starts with `server`, `domain` or `import`")


def imports_too_deep(span: Span, limit: int) -> Diagnostic:
    return Diagnostic.error("E0207", f"imports are nested more than {limit} files deep", span,
                            "one import too many", help="import the files from the root spec instead")


def duplicate_import(span: Span, path: str, first: Span | None) -> Diagnostic:
    secondary = [(first, "first imported here")] if first else []
    return Diagnostic.error("E0202", f"`{path}` is imported twice", span, "imported again here",
                            secondary=secondary, help="remove one of the imports")


def import_cycle(span: Span, chain: list[str]) -> Diagnostic:
    return Diagnostic.error("E0203", "import cycle", span, "this import closes the cycle",
                            notes=[" -> ".join(chain)],
                            help="break the cycle: move shared declarations to a file both import")


def unknown_keyword(span: Span, key: str, block: str, allowed: list[str], homes: tuple[str, ...]) -> Diagnostic:
    notes = [f"`{key}` belongs in {' or '.join(homes)}"] if homes else []
    hint = did_you_mean(key, allowed) if not homes else None
    return Diagnostic.error("E0301", f"`{key}` is not allowed in {block}", span, "not allowed here",
                            notes=notes, help=hint or f"allowed here: {', '.join(sorted(allowed))}")


def run_on_statement(span: Span, word: str, block: str, allowed: list[str], key: str, line: int) -> Diagnostic:
    """A misspelt keyword at the start of a line, read as more of the value above it."""
    found = unknown_keyword(span, word, block, allowed, ())
    return attrs.evolve(found, notes=(f"with no keyword, this line was read as more of `{key}`'s value on "
                                      f"line {line}: a line break ends a statement only before a keyword",))


def set_twice(span: Span, key: str, first: Span) -> Diagnostic:
    return Diagnostic.error("E0302", f"`{key}` is set twice", span, "set again here",
                            secondary=[(first, "first set here")], help="keep one of them")


def wrong_values(span: Span, key: str, expected: str) -> Diagnostic:
    return Diagnostic.error("E0303", f"`{key}` expects {expected}", span, f"expected {expected}")


def invalid_value(span: Span, message: str, help: str | None, code: str = "E0304") -> Diagnostic:
    return Diagnostic.error(code, message, span, "invalid value", help=help)


def unexpected_part(span: Span, key: str, part: str, example: str) -> Diagnostic:
    return Diagnostic.error("E0305", f"`{key}` does not take {part}", span, f"unexpected {part}",
                            help=f"write it as: {example}")


def missing_part(span: Span, key: str, part: str, example: str) -> Diagnostic:
    return Diagnostic.error("E0306", f"`{key}` needs {part}", span, f"missing {part}",
                            help=f"write it as: {example}")


def plaintext_password(span: Span, message: str, help: str | None) -> Diagnostic:
    return Diagnostic.error("E0307", message, span, "not a password hash", help=help)


def password_file_outside(span: Span, path: str) -> Diagnostic:
    return Diagnostic.error("E0308", f"password file `{path}` is outside the spec's directory tree",
                            span, "outside the spec's directory",
                            help="keep password files under the spec's directory, or name their "
                                 "directory with --import-root DIR")


def password_file(span: Span, path: str, reason: str) -> Diagnostic:
    return Diagnostic.error("E0308", f"cannot read password file `{path}`", span, reason,
                            help="the path is relative to the spec file; the file holds one hash")


def missing_server(span: Span) -> Diagnostic:
    return Diagnostic.error("E0309", "the spec has no `server` block", span, "no server declared",
                            help="add: server { hostname mail.example.com }")


def second_server(span: Span, first: Span) -> Diagnostic:
    return Diagnostic.error("E0310", "a second `server` block", span, "second server block",
                            secondary=[(first, "first server block")],
                            help="one spec describes one server; merge the two blocks")


def missing_setting(span: Span, block: str, key: str, example: str) -> Diagnostic:
    return Diagnostic.error("E0311", f"{block} has no `{key}`", span, f"`{key}` missing",
                            help=f"add: {example}")


def sieve_outside_mailbox(span: Span) -> Diagnostic:
    return Diagnostic.error("E0312", "`sieve` rules belong to a mailbox", span, "not inside a mailbox",
                            help="move the sieve block into a `mailbox … { }` block")


def wide_network(span: Span, network: str, size: int) -> Diagnostic:
    return Diagnostic.error("E0314", f"`{network}` is too wide to trust ({size:,} addresses)", span,
                            "every client in it may relay through this server",
                            help="name only your own networks; if you really mean it, write "
                                 f"`unsafe {network}`")


def unsafe_network(span: Span, network: str) -> Diagnostic:
    return Diagnostic.warning("W0315", f"the server trusts `{network}`: every client in it may relay "
                              "mail and send as any address", span, "marked unsafe")


def key_without_cert(span: Span) -> Diagnostic:
    return Diagnostic.error("E0316", "the tls block has a key but no certificate", span,
                            "no `cert`", help="name the certificate that belongs to the key: "
                                              'cert "/etc/ssl/certs/mail.pem"')


def acme_with_files(span: Span, name: str, acme: Span) -> Diagnostic:
    return Diagnostic.error("E0318", f"the tls block has both `acme` and `{name}`", span,
                            "not with `acme`", secondary=[(acme, "the certificate comes from ACME")],
                            help=f"leave `{name}` out: certbot's certificate is installed where the "
                                 "daemons read it; or drop `acme` and keep your own files")


def weak_hash(span: Span, scheme: str, weakness: str) -> Diagnostic:
    return Diagnostic.warning("W0317", f"this {scheme} hash is cheap to crack: {weakness}", span,
                              "a weak hash", help=f"hash the password again with `doveadm pw -s {scheme}`, "
                                                  "which uses a safe cost")


def address_not_public(span: Span | None, address: str) -> Diagnostic:
    return Diagnostic.warning(
        "W0310", f"the server address {address} is not a public address", span, "in `addresses`",
        notes=["other mail servers on the internet cannot reach it, and SPF and the A record "
               "would name it"],
        help="list the addresses the internet reaches the server at")


def relay_address_without_name(span: Span, host: str) -> Diagnostic:
    return Diagnostic.error("E0319", f"the relay {host} is an IP address, and a certificate names a host", span,
                            "logged in here, over TLS that must verify",
                            notes=["with a login, mail goes to the relay only if its certificate matches; "
                                   "a certificate names a host, not an address"],
                            help="add `tls_name smtp.example.net` with the name in the relay's certificate, "
                                 "or write the relay by its name")
