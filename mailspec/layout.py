"""Where the generated files live on the target host. Postfix maps are referenced through
`$config_directory`, so they follow main.cf wherever it is installed."""

from __future__ import annotations

import attrs


@attrs.frozen
class Layout:
    postfix_dir: str = "/etc/postfix"
    dovecot_dir: str = "/etc/dovecot"
    postfix_queue: str = "/var/spool/postfix"

    @property
    def users_file(self) -> str:
        return f"{self.dovecot_dir}/users"

    @property
    def sieve_dir(self) -> str:
        return f"{self.dovecot_dir}/sieve"

    @property
    def lmtp_socket(self) -> str:
        return f"{self.postfix_queue}/private/dovecot-lmtp"

    @property
    def auth_socket(self) -> str:
        return f"{self.postfix_queue}/private/auth"


DEFAULT = Layout()
