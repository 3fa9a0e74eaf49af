"""A daemon job: `python -m mailspec.switch.job '{"commands": […], "wait_for": PID or null}'`.

Run by daemons.py in a session of its own, holding the switch lock that it inherits:
the commands of a restart (stop, wait for the old master to exit, start) finish even
if the mailspec that started them is killed, and no other switch runs meanwhile. The
daemons it starts never inherit the lock (subprocess closes other descriptors).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from mailspec.hostrun import alive


def main() -> int:
    """Run the commands in order; with `wait_for`, wait for that process to exit after
    the first command (a restart's stop, or a stop on its own)."""
    job = json.loads(sys.argv[1])
    for index, command in enumerate(job["commands"]):
        code = subprocess.run(command, stdin=subprocess.DEVNULL).returncode
        if code != 0:
            return code
        if index == 0 and job.get("wait_for"):
            deadline = time.monotonic() + 60
            while alive(job["wait_for"]) and time.monotonic() < deadline:
                time.sleep(0.05)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
