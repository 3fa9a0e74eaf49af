"""clamav backend: with `antivirus`, a clamd of mailspec's own (`mailspec-clamd`) that
rspamd's antivirus module asks about every message; a virus is refused at SMTP time.
It reads the signatures where freshclam keeps them (/var/lib/clamav), so a host's
freshclam keeps them current; the host's own clamav-daemon, if any, is left alone."""

from __future__ import annotations

from mailspec import model
from mailspec.backends import render
from mailspec.layout import Layout

POSTFIX_SIZE_LIMIT = 10240000  # Postfix's message_size_limit when the spec sets none


def emit(spec: model.Spec, layout: Layout) -> dict[str, str]:
    if not spec.server.antivirus:
        return {}
    return {"clamav/clamd.conf": render(__name__, "clamd.conf.j2", port=layout.ports.clamd,
                                        database=layout.clamav_db, log=layout.clamd_log, pid=layout.clamd_pid,
                                        largest=spec.server.message_size_limit or POSTFIX_SIZE_LIMIT)}


PRIVATE_FILES = frozenset()
