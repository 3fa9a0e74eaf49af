"""Where the generated files, and the files they name, live on the target host.

Production uses the Debian paths and the standard ports. A relocated layout puts every
absolute path under a prefix and may move each listener to another port, so that a whole
server can run unprivileged-port and side by side with the host's own (the host-daemon
test tier does this). Nothing else differs: tests/test_layout.py diffs the two.
Postfix maps are referenced through `$config_directory`, so they follow main.cf.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Ports:
    smtp: int = 25
    submission: int = 587
    submissions: int = 465
    imap: int = 143
    imaps: int = 993
    sieve: int = 4190
    milter: int = 11332  # rspamd's proxy worker, which Postfix calls
    rspamd_controller: int = 11334
    srs_forward: int = 10001  # postsrsd's tcp_table(5) lookups: the sender rewriting
    srs_reverse: int = 10002  # and its undoing, for bounces
    srs_reinject: int = 10026  # the loopback smtpd whose cleanup rewrites forwarded mail's sender
    http: int = 80  # nginx: redirects to HTTPS (and ACME challenges)
    https: int = 443  # nginx: the MTA-STS policy, autoconfig and autodiscover
    redis: int = 6380  # mailspec's Redis, for rspamd: 6379 is the host's own, if it has one
    clamd: int = 3310  # mailspec's clamd, which rspamd asks (with `antivirus`)
    pop3: int = 110  # with `pop3`: only after STLS
    pop3s: int = 995


@attrs.frozen
class Layout:
    prefix: str = ""  # prepended to every absolute path; "" in production
    ports: Ports = Ports()

    def path(self, absolute: str) -> str:
        return self.prefix + absolute

    def mail_location(self, location: str) -> str:
        """`maildir:/var/mail/vhosts/%d/%n` with its path moved under the prefix."""
        kind, _, rest = location.partition(":")
        return f"{kind}:{self.path(rest)}"

    postfix_dir = property(lambda self: self.path("/etc/postfix"))
    dovecot_dir = property(lambda self: self.path("/etc/dovecot"))
    rspamd_dir = property(lambda self: self.path("/etc/rspamd"))
    postfix_queue = property(lambda self: self.path("/var/spool/postfix"))
    postfix_data = property(lambda self: self.path("/var/lib/postfix"))
    postfix_log = property(lambda self: self.path("/var/log/postfix.log"))
    # The relay host's login, `host user:password` (0600 root): the switch writes it.
    relay_passwords = property(lambda self: self.path("/var/lib/mailspec/relay/passwords"))
    aliases = property(lambda self: self.path("/etc/aliases"))
    dovecot_base = property(lambda self: self.path("/run/dovecot"))
    dovecot_state = property(lambda self: self.path("/var/lib/dovecot"))
    dovecot_log = property(lambda self: self.path("/var/log/dovecot.log"))
    # rspamd reads the distribution's rspamd.conf from its CONFDIR and our local.d/ and
    # override.d/ from its LOCAL_CONFDIR: both are /etc/rspamd on a server. A relocated
    # rspamd reads the host's distribution files and its own directory.
    rspamd_run = property(lambda self: self.path("/run/rspamd"))
    rspamd_db = property(lambda self: self.path("/var/lib/rspamd"))
    rspamd_log = property(lambda self: self.path("/var/log/rspamd"))
    rspamd_confdir = property(lambda self: self.rspamd_dir if not self.prefix else "/etc/rspamd")
    rspamd_pid = property(lambda self: f"{self.rspamd_run}/rspamd.pid")  # relocated only: systemd's has none
    # mailspec's own Redis instance (Debian's redis-server@.service template, as
    # `redis-server@mailspec`): its files, data, log and pid file beside the host's.
    redis_dir = property(lambda self: self.path("/etc/redis/mailspec"))
    redis_db = property(lambda self: self.path("/var/lib/redis/mailspec"))
    redis_log = property(lambda self: self.path("/var/log/redis/redis-mailspec.log"))
    redis_pid = property(lambda self: self.path("/run/redis-mailspec/redis-server.pid"))
    # Its password, made on the host by the switch and never in a deploy or a generation:
    # the files Redis (`requirepass …`) and rspamd (`password = …;`) read it from, each in
    # a directory only that daemon's user can enter.
    redis_password = property(lambda self: self.path("/etc/redis/mailspec-password.conf"))
    rspamd_redis_password = property(lambda self: self.path("/var/lib/rspamd/mailspec-redis-password.inc"))
    # mailspec's clamd (`mailspec-clamd`): the signatures where freshclam keeps them.
    clamav_dir = property(lambda self: self.path("/etc/clamav/mailspec"))
    clamav_db = property(lambda self: self.path("/var/lib/clamav"))
    clamd_log = property(lambda self: self.path("/var/log/clamav/mailspec-clamd.log"))
    clamd_pid = property(lambda self: self.path("/run/clamav/mailspec-clamd.pid"))
    # The host's fail2ban, to which mailspec adds its jails (with `fail2ban`).
    fail2ban_dir = property(lambda self: self.path("/etc/fail2ban"))
    fail2ban_socket = property(lambda self: self.path("/run/fail2ban/fail2ban.sock"))
    fail2ban_pid = property(lambda self: self.path("/run/fail2ban/fail2ban.pid"))
    postsrsd_dir = property(lambda self: self.path("/etc/postsrsd"))
    # The one path Debian's AppArmor profile lets postsrsd read its secret from.
    srs_secret = property(lambda self: self.path("/etc/postsrsd.secret"))
    postsrsd_chroot = property(lambda self: self.path("/var/lib/postsrsd"))
    postsrsd_pid = property(lambda self: self.path("/run/postsrsd.pid"))  # relocated only, as rspamd's
    nginx_dir = property(lambda self: self.path("/etc/nginx"))
    nginx_pid = property(lambda self: self.path("/run/nginx.pid"))
    nginx_log = property(lambda self: self.path("/var/log/nginx"))
    nginx_main = property(lambda self: self.path("/run/nginx-mailspec.conf"))  # relocated only: see switch/nginx.py
    letsencrypt_dir = property(lambda self: self.path("/etc/letsencrypt"))
    acme_lineage = property(lambda self: f"{self.letsencrypt_dir}/live/mailspec")  # certbot's --cert-name
    state_dir = property(lambda self: self.path("/var/lib/mailspec"))  # the switch's generations
    acme_webroot = property(lambda self: self.path("/var/lib/mailspec/acme"))  # certbot's challenges, nginx serves
    # The switch writes it: how this host makes the daemons read a new certificate.
    tls_reload = property(lambda self: f"{self.state_dir}/reload-tls")
    # Each master's pid file when run relocated (systemd tracks rspamd's and postsrsd's).
    pid_files = property(lambda self: {"postfix": f"{self.postfix_queue}/pid/master.pid",
                                       "dovecot": f"{self.dovecot_base}/master.pid",
                                       "rspamd": self.rspamd_pid, "postsrsd": self.postsrsd_pid,
                                       "nginx": self.nginx_pid, "redis": self.redis_pid,
                                       "clamav": self.clamd_pid, "fail2ban": self.fail2ban_pid})
    daemon_logs = property(lambda self: (self.postfix_log, self.dovecot_log, f"{self.rspamd_log}/rspamd.log",
                                         f"{self.nginx_log}/error.log", self.redis_log, self.clamd_log))

    def rspamd_variables(self, local_confdir: str | None = None) -> list[str]:
        """rspamd's and rspamadm's --var options for this layout (an unlinked generation's
        directory as LOCAL_CONFDIR, to validate it before the flip)."""
        local = local_confdir or self.rspamd_dir
        confdir = self.rspamd_confdir if self.prefix else local
        return [f"--var=CONFDIR={confdir}", f"--var=LOCAL_CONFDIR={local}", f"--var=RUNDIR={self.rspamd_run}",
                f"--var=DBDIR={self.rspamd_db}", f"--var=LOGDIR={self.rspamd_log}"]

    users_file = property(lambda self: f"{self.dovecot_dir}/users")
    sieve_dir = property(lambda self: f"{self.dovecot_dir}/sieve")
    lmtp_socket = property(lambda self: f"{self.postfix_queue}/private/dovecot-lmtp")
    auth_socket = property(lambda self: f"{self.postfix_queue}/private/auth")


DEFAULT = Layout()
