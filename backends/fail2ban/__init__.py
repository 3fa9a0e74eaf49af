"""fail2ban backend: with `fail2ban`, jails for failed logins (Postfix's SMTP AUTH,
Dovecot's IMAP and ManageSieve) that ban a client with nftables on the ports it failed
on. They read the daemons' own log files. The host's fail2ban (its sshd jail, say) is
left as it is: mailspec adds one jail file and one filter to /etc/fail2ban."""

from __future__ import annotations

import attrs

from mailspec import model
from mailspec.backends import render
from mailspec.backends.rspamd import trusted
from mailspec.layout import Layout

FILTER = "mailspec-dovecot"  # filter.d/: Dovecot's login services' failures, in its log_path format


@attrs.frozen
class Jail:
    name: str
    filter: str
    log: str
    ports: str


def jails(spec: model.Spec, layout: Layout) -> list[Jail]:
    ports = layout.ports
    pop3 = [Jail("mailspec-pop3", f"{FILTER}[service=pop3]", layout.dovecot_log, f"{ports.pop3},{ports.pop3s}")]
    return [Jail("mailspec-smtp-auth", "postfix[mode=auth]", layout.postfix_log,
                 f"{ports.smtp},{ports.submission},{ports.submissions}"),
            Jail("mailspec-imap", f"{FILTER}[service=imap]", layout.dovecot_log, f"{ports.imap},{ports.imaps}"),
            Jail("mailspec-managesieve", f"{FILTER}[service=managesieve]", layout.dovecot_log, str(ports.sieve)),
            *(pop3 if spec.server.pop3 else [])]


def emit(spec: model.Spec, layout: Layout) -> dict[str, str]:
    settings = spec.server.fail2ban
    if settings is None:
        return {}
    return {
        "fail2ban/jail.d/mailspec.conf": render(__name__, "mailspec.conf.j2", settings=settings,
                                                ignore=" ".join(trusted(spec)), jails=jails(spec, layout)),
        f"fail2ban/filter.d/{FILTER}.conf": render(__name__, "filter.conf.j2"),
    }


PRIVATE_FILES = frozenset()
