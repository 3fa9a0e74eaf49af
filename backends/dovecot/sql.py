"""dovecot-sql.conf.ext for the mysql backend: the same users, passwords, quotas and
per-mailbox Sieve scripts as the passwd-file, read from the tables of backends/sql."""

from __future__ import annotations

from mailspec import model
from mailspec.backends import render
from mailspec.layout import Layout


def connect(backend: model.Backend, option_file: str) -> str:
    """Dovecot's connect string. The password is read by the MySQL client library from
    the option file's [mailspec] group: it never appears in the deploy directory."""
    if backend.socket:
        place = f"host={backend.socket}"  # a path: Dovecot connects over the socket
    else:
        place = f"host={backend.host or 'localhost'}" + (f" port={backend.port}" if backend.port else "")
    return (f"{place} dbname={backend.database} user={backend.user} "
            f"option_file={option_file} option_group=mailspec")


def config(spec: model.Spec, layout: Layout) -> str:
    from mailspec.backends.dovecot import mailbox_script_setting  # the package imports this module

    users = "virtual_users u JOIN virtual_domains d ON d.id = u.domain_id"
    # NULL columns give NULL fields, which Dovecot leaves out: no quota, no script.
    user_query = ("SELECT CONCAT('*:storage=', u.quota, 'B') AS quota_rule, "
                  "CONCAT(d.message_size_limit, 'B') AS quota_max_mail_size, "
                  f"CONCAT('{layout.dovecot_dir}/', u.sieve_script) AS {mailbox_script_setting(spec)} "
                  f"FROM {users} WHERE u.email = '%Lu'")
    return render(__package__, "dovecot-sql.conf.ext.j2",
                  connect=connect(spec.server.backend, layout.path(spec.server.backend.password_file)),
                  password_query=("SELECT email AS user, password FROM virtual_users "
                                  "WHERE email = '%Lu' AND password IS NOT NULL"),
                  user_query=user_query,
                  iterate_query="SELECT email AS user FROM virtual_users ORDER BY email")
