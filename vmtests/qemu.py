"""Starting QEMU: the accelerator choice, the command line, and the QMP connection."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from mailspec.vmtests import log
from mailspec.vmtests.image import KERNEL_ARGS, Image, cache_root

QEMU = "qemu-system-x86_64"
MEMORY_MB = 1024
ACCELERATORS = ("kvm", "tcg")


class QemuError(Exception):
    pass


def choose_accelerator(image: Image, override: str | None = None) -> str:
    """`override`, else MAILSPEC_VM_ACCEL, else KVM when a probe boot works here, else TCG.

    The probe boots the image's kernel without a root disk: a working KVM reaches the
    kernel's "VFS" panic within seconds; a broken one aborts or hangs. The answer is
    cached per image, since a failing probe costs its timeout."""
    choice = override or os.environ.get("MAILSPEC_VM_ACCEL")
    if choice:
        if choice not in ACCELERATORS:
            raise QemuError(f"unknown accelerator `{choice}`: use kvm or tcg")
        return choice
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    cached = cache_root() / f"accel-{image.directory.name}.json"
    if cached.exists():
        return json.loads(cached.read_text())["accelerator"]
    with log.step("probing KVM with a short boot"):
        accelerator = "kvm" if _kvm_boots(image) else "tcg"
        log.info(f"accelerator: {accelerator}")
    cached.write_text(json.dumps({"accelerator": accelerator}) + "\n")
    return accelerator


def _kvm_boots(image: Image, timeout: float = 20) -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        console = Path(scratch) / "console"
        process = subprocess.Popen(
            [QEMU, "-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none", "-no-reboot",
             "-serial", f"file:{console}", "-kernel", str(image.kernel),
             "-append", "console=ttyS0 panic=-1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and process.poll() is None:
                if console.exists() and b"VFS" in console.read_bytes():
                    return True
                time.sleep(0.2)
            return console.exists() and b"VFS" in console.read_bytes()
        finally:
            process.kill()
            process.wait()


def command_line(image: Image, accelerator: str, disk: Path, qmp: Path, console: Path,
                 forwards: dict[int, int], udp_forwards: dict[int, int], lan: tuple[int, int],
                 incoming: Path | None) -> list[str]:
    """The whole command line. The devices must not change between saving a snapshot and
    restoring it; only the backends (disk file, ports, console file) may."""
    if shutil.which(QEMU) is None:
        raise QemuError(f"`{QEMU}` is not installed: apt-get install qemu-system-x86 qemu-utils")
    uplink = ",".join(["user", "id=uplink", "net=10.0.2.0/24"]
                      + [f"hostfwd=tcp:127.0.0.1:{host}-:{guest}" for guest, host in sorted(forwards.items())]
                      + [f"hostfwd=udp:127.0.0.1:{host}-:{guest}" for guest, host in sorted(udp_forwards.items())])
    local, remote = lan
    lan_backend = (f"dgram,id=lan,local.type=inet,local.host=127.0.0.1,local.port={local},"
                   f"remote.type=inet,remote.host=127.0.0.1,remote.port={remote}")
    cpu = ["-cpu", "host"] if accelerator == "kvm" else []
    command = [
        QEMU, "-accel", accelerator if accelerator == "kvm" else "tcg,thread=multi", *cpu,
        "-smp", "2", "-m", str(MEMORY_MB), "-display", "none", "-monitor", "none",
        "-serial", f"file:{console}", "-qmp", f"unix:{qmp},server=on,wait=off",
        "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", KERNEL_ARGS,
        "-drive", f"file={disk},if=virtio,format=qcow2,cache=unsafe",
        "-netdev", uplink, "-device", "virtio-net-pci,netdev=uplink,mac=52:54:00:12:34:56",
        "-netdev", lan_backend, "-device", "virtio-net-pci,netdev=lan,mac=52:54:00:00:00:fe",
        "-device", "virtio-rng-pci",
    ]
    if incoming is not None:
        command += ["-incoming", f"exec:cat {incoming}"]
    return command


def overlay(backing: Path, target: Path, backing_format: str) -> None:
    done = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(backing.resolve()),
                           "-F", backing_format, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        raise QemuError(f"qemu-img create failed: {done.stderr.strip()}")
