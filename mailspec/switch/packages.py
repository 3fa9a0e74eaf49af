"""The Debian packages a spec needs (request.packages): which are missing, and apt-get
to install them, as an administrator would on a fresh host."""

from __future__ import annotations

import subprocess

from mailspec.switch import build
from mailspec.switch.store import SwitchError

APT = ("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y")
# Keep a configuration file the host already has (dpkg asks otherwise, and nobody answers).
INSTALL = (*APT, "-o", "Dpkg::Options::=--force-confold", "install", "--no-install-recommends")


def missing(wanted: tuple[str, ...]) -> list[str]:
    """The packages of `wanted` that are not installed."""
    if not wanted:
        return []
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *wanted],
                          capture_output=True, text=True)
    installed = {line.split()[0] for line in done.stdout.splitlines() if line.split()[1:2] == ["ii"]}
    return [name for name in wanted if name not in installed]


def install(names: list[str], echo) -> None:
    """apt-get install `names`; the package lists are updated first only if apt does not
    know a package (a fresh host may have none)."""
    echo(f"installing {' '.join(names)}")
    try:
        build.run(*INSTALL, *names, what="installing the packages")
    except SwitchError as error:
        if "Unable to locate package" not in error.message and "has no installation candidate" not in error.message:
            raise SwitchError(error.message, "fix the host's apt sources, or install the packages yourself") from None
        build.run(*APT, "update", what="updating the package lists")
        build.run(*INSTALL, *names, what="installing the packages")
