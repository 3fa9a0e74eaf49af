"""Dovecot backend: dovecot.conf and the passwd-file of users (hashes only)."""

from __future__ import annotations

from mailspec import model
from mailspec.backends import render
from mailspec.backends.dovecot import sql
from mailspec.backends.sieve import LEARN_HAM, LEARN_SPAM, global_script_path, mailbox_scripts
from mailspec.layout import Layout


def quota_size(size: int) -> str:
    """A Dovecot size with an explicit unit (a bare number would mean kilobytes)."""
    for unit, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("k", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def home_template(spec: model.Spec, layout: Layout) -> str:
    """The mail directory of `mail_location` (`maildir:/var/mail/vhosts/%d/%n:…` -> its path)."""
    return layout.mail_location(spec.server.mail_location).split(":")[1]


def mail_location_setting(spec: model.Spec, layout: Layout) -> str:
    """`mail_location` as the spec writes it, with Dovecot's lock files moved to a plain
    `volatile` directory: in the Maildir root (the home) they would be
    `.dovecot.lda-dupes.locks`, which Maildir++ lists as an IMAP folder (the VM suite
    found this)."""
    location = layout.mail_location(spec.server.mail_location)
    if ":VOLATILEDIR=" in location:
        return location
    return f"{location}:VOLATILEDIR={home_template(spec, layout).rstrip('/')}/volatile"


# No anonymous, export-grade or obsolete suites (the same exclusions as Postfix's).
CIPHER_LIST = "ALL:!aNULL:!eNULL:!EXPORT:!LOW:!DES:!3DES:!RC4:!MD5:!PSK:!SRP:!DSS:!SEED:!IDEA:!kRSA@STRENGTH"

# Dovecot's default auth_username_chars.
USERNAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@"


def username_chars(spec: model.Spec) -> list[str]:
    """`auth_username_chars` widened to the characters the mailboxes use (a dot-atom may
    hold ' # $ & and more): without it Dovecot answers "User doesn't exist" for mail that
    Postfix accepted (found by the running-Postfix property on `o'neil`)."""
    used = {c for domain in spec.domains for mailbox in domain.mailboxes for c in mailbox.local.lower()}
    extra = "".join(sorted(used - set(USERNAME_CHARS)))
    return [f'auth_username_chars = "{USERNAME_CHARS}{extra}"'] if extra else []


def home(template: str, domain: str, local: str) -> str:
    return template.replace("%d", domain).replace("%n", local).replace("%u", f"{local}@{domain}")


def mailbox_script_setting(spec: model.Spec) -> str:
    """Where a mailbox's own script goes. Pigeonhole reads sieve_before, sieve_before2, …
    and stops at the first one unset: the mailbox script follows the server-wide one if
    there is one, and takes its place otherwise."""
    return "sieve_before2" if global_script_path(spec) else "sieve_before"


# passwd-file looks up %Lu with \ ' and " backslash-escaped: its keys are written that way.
_USER_ESCAPES = str.maketrans({c: "\\" + c for c in "'\"\\"})


def users_file(spec: model.Spec, layout: Layout) -> str:
    vmail = spec.server.vmail
    template = home_template(spec, layout)
    scripts = mailbox_scripts(spec)
    script_setting = f"userdb_{mailbox_script_setting(spec)}={layout.dovecot_dir}/"
    ids = f"{vmail.uid}:{vmail.gid}"
    lines = []
    for domain in spec.domains:
        message_size = domain.limits.message_size
        max_mail_size = f"userdb_quota_max_mail_size={quota_size(message_size)}" if message_size is not None else None
        for mailbox in domain.mailboxes:
            fields = []
            password = mailbox.password.hash if mailbox.password else "{CRYPT}*"
            if mailbox.password is None:  # it still receives mail; nobody can log in
                fields.append("nologin reason=no-password-set")
            if mailbox.quota is not None:
                fields.append(f"userdb_quota_rule=*:storage={quota_size(mailbox.quota)}")
            if max_mail_size is not None:
                fields.append(max_mail_size)
            script = scripts.get((domain.name, mailbox.local))
            if script is not None:
                fields.append(script_setting + script[0])
            user = f"{mailbox.local}@{domain.name}"
            if "'" in user or '"' in user or "\\" in user:  # translate is slow: only when needed
                user = user.translate(_USER_ESCAPES)
            lines.append(f"{user}:{password}:{ids}::{home(template, domain.name, mailbox.local)}::{' '.join(fields)}\n")
    return "".join(lines)


PRIVATE_FILES = frozenset({"dovecot/users"})  # the password hashes


def emit(spec: model.Spec, layout: Layout) -> dict[str, str]:
    server = spec.server
    script = global_script_path(spec)
    if server.backend.kind is model.BackendKind.MYSQL:
        sql_conf = f"{layout.dovecot_dir}/dovecot-sql.conf.ext"
        users = {"users_comment": "passwords and user data from MariaDB/MySQL (see dovecot-sql.conf.ext)",
                 "users_driver": "sql", "passdb_args": sql_conf, "userdb_args": sql_conf}
        files = {"dovecot/dovecot-sql.conf.ext": sql.config(spec, layout)}
    else:
        users = {"users_comment": "one passwd-file for passwords and user data (hashes only)",
                 "users_driver": "passwd-file",
                 "passdb_args": f"scheme=SHA512-CRYPT username_format=%Lu {layout.users_file}",
                 "userdb_args": f"username_format=%Lu {layout.users_file}"}
        files = {"dovecot/users": users_file(spec, layout)}
    conf = render(__name__, "dovecot.conf.j2", **users,
                  tls_cert=layout.path(server.tls.cert), tls_key=layout.path(server.tls.key),
                  cipher_list=CIPHER_LIST,
                  base_dir=layout.dovecot_base, state_dir=layout.dovecot_state,
                  log_path=layout.dovecot_log, ports=layout.ports,
                  uid=server.vmail.uid, gid=server.vmail.gid,
                  vmail_user=server.vmail.user, home=home_template(spec, layout),
                  mail_location=mail_location_setting(spec, layout), username_chars=username_chars(spec),
                  recipient_delimiter=server.recipient_delimiter,
                  lmtp_socket=layout.lmtp_socket, auth_socket=layout.auth_socket,
                  sieve_before=f"{layout.dovecot_dir}/{script}" if script else "", **learning(spec, layout),
                  pop3=server.pop3, protocols="imap lmtp sieve" + (" pop3" if server.pop3 else ""))
    if server.filters.spam_folder:
        files.update(learners(layout))
    return {"dovecot/dovecot.conf": conf, **files}


PIPE_DIR = "sieve-pipe"  # under the Dovecot directory: the programs Sieve's `pipe` may run
LEARNERS = {kind: f"dovecot/{PIPE_DIR}/learn-{kind}.sh" for kind in ("spam", "ham")}
PROGRAM_FILES = frozenset(LEARNERS.values())


def learning(spec: model.Spec, layout: Layout) -> dict[str, str]:
    """dovecot.conf's settings for learning from the spam folder, which it needs."""
    junk = spec.server.filters.spam_folder
    if not junk:
        return {"junk": "", "learn_plugin": ""}
    return {"junk": junk, "learn_plugin": " imap_sieve", "pipe_dir": f"{layout.dovecot_dir}/{PIPE_DIR}",
            "learn_spam": f"{layout.dovecot_dir}/{LEARN_SPAM}", "learn_ham": f"{layout.dovecot_dir}/{LEARN_HAM}"}


def learners(layout: Layout) -> dict[str, str]:
    """The programs the learning scripts pipe a message to: rspamc, through rspamd's
    controller on loopback (which trusts loopback)."""
    return {path: render(__name__, "learn.sh.j2", kind=kind, port=layout.ports.rspamd_controller)
            for kind, path in LEARNERS.items()}
