"""The daemons a generation configures: what the switch needs to know about each, once.

Each has a live directory (a link into the current generation) named after it. They
start in this order: Redis, rspamd and postsrsd first, so that Postfix never takes mail
that it must defer for want of its milter or its SRS tables.
"""

from __future__ import annotations

import os

import attrs

from mailspec.layout import Layout


@attrs.frozen
class Unit:
    name: str  # its directory in a generation, and its systemd unit unless `service` says
    package: str  # the Debian package that installs it
    live_dir: str  # the Layout property naming its live directory
    # The file without which a generation does not run it (generation 0 of a host that
    # had none of it); None: it runs whenever it is installed.
    config: str | None
    reloads: bool = True  # False: it has no reload, and is restarted instead
    service: str | None = None
    # Whether systemd knows its main process (it runs in the foreground): else its pid file.
    foreground: bool = False
    # Runs only in the generations whose spec asks for it (its `config` is there).
    optional: bool = False
    # Optional, but the host's own too (its other jails): never stopped for want of
    # mailspec's file, only reloaded without it.
    shared: bool = False

    def directory(self, layout: Layout) -> str:
        return getattr(layout, self.live_dir)

    def runs(self, layout: Layout) -> bool:
        """Whether the current generation runs it."""
        return self.runs_in(self.directory(layout))

    def runs_in(self, directory: str) -> bool:
        """Whether the generation whose files for it are in `directory` runs it."""
        return not self.optional or os.path.exists(os.path.join(directory, self.config))

    @property
    def systemd_unit(self) -> str:
        return self.service or self.name

    @property
    def reload(self) -> str:
        """What it takes to make it read new files."""
        return "reload" if self.reloads else "restart"


UNITS = (
    # rspamd's store. An instance of Debian's template: the host's own Redis stays its own.
    Unit("redis", "redis-server", "redis_dir", "redis.conf", reloads=False, service="redis-server@mailspec",
         foreground=True),
    # With `antivirus`. A unit of mailspec's own (switch writes it): the host's
    # clamav-daemon stays its own.
    Unit("clamav", "clamav-daemon", "clamav_dir", "clamd.conf", reloads=False, service="mailspec-clamd",
         foreground=True, optional=True),
    Unit("rspamd", "rspamd", "rspamd_dir", None, foreground=True),
    Unit("postsrsd", "postsrsd", "postsrsd_dir", "postsrsd.env", reloads=False, foreground=True),
    Unit("postfix", "postfix", "postfix_dir", "main.cf"),
    Unit("dovecot", "dovecot-core", "dovecot_dir", "dovecot.conf"),
    # It may serve other sites of the host's: mailspec adds one file to its conf.d/.
    Unit("nginx", "nginx", "nginx_dir", None),
    # With `fail2ban`; mailspec adds its jails to the host's. Last: it reads their logs.
    Unit("fail2ban", "fail2ban", "fail2ban_dir", "jail.d/mailspec.conf", optional=True, shared=True),
)
NAMES = tuple(unit.name for unit in UNITS)
BY_NAME = {unit.name: unit for unit in UNITS}


def live_dirs(layout: Layout) -> dict[str, str]:
    return {unit.name: unit.directory(layout) for unit in UNITS}
