"""The golden snapshot: one machine booted cold per image and accelerator, its memory
saved over QMP. Every test machine restores it on a fresh qcow2 overlay of the golden
disk, which is ready in a second or two instead of a cold boot's ten or more."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from mailspec.vmtests import log
from mailspec.vmtests.image import Image, locked
from mailspec.vmtests.log import retry
from mailspec.vmtests.machine import Machine, MachineError


def golden_directory(image: Image, accelerator: str) -> Path:
    return image.directory / f"golden-{accelerator}"


def ensure_golden(image: Image, accelerator: str) -> Path:
    """The directory holding `disk.qcow2` and `state`, made first if it is missing."""
    target = golden_directory(image, accelerator)
    with locked(image.directory / "golden.lock"):
        if not (target / "state").exists():
            _save(image, accelerator, target)
    return target


def _save(image: Image, accelerator: str, target: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".golden-", dir=image.directory))
    machine = Machine("golden", image, staging / "machine", accelerator)
    try:
        with log.step(f"making the golden snapshot ({accelerator})"):
            machine.start()
            # Everything a restored machine needs is up; the mail stack is the image's default.
            machine.wait_for_unit("postfix@-.service")
            machine.wait_for_unit("dovecot.service")
            machine.wait_for_open_port(25, b"220 ")
            save(machine, staging / "golden")
        shutil.rmtree(target, ignore_errors=True)
        (staging / "golden").rename(target)
    finally:
        machine._kill()
        shutil.rmtree(staging, ignore_errors=True)


def save(machine: Machine, target: Path) -> None:
    """Save a running machine as a snapshot in `target` (its memory in `state`, its disk
    overlay as `disk.qcow2`, which restored machines use as their backing file); the
    machine stops."""
    with log.step(f"{machine.name}: save a snapshot"):
        machine.succeed("sync")
        machine._close_ssh()
        machine.qmp.cmd("stop")
        machine.qmp.cmd("migrate", uri=f"exec:cat > {machine.workdir / 'state'}")

        def saved(last_try: bool) -> bool:
            status = machine.qmp.cmd("query-migrate").get("status")
            if status == "failed":
                raise MachineError("saving the snapshot failed")
            return status == "completed"
        retry(saved, 120, "the snapshot to be written", 0.1)
        machine._kill()
        target.mkdir(parents=True)
        for name in ("state", "disk.qcow2"):
            (machine.workdir / name).rename(target / name)
