"""The Debian bookworm image the VMs boot: the mail stack, SSH and a kernel.

Built with mmdebstrap into a directory, adjusted for fast headless boots, and turned
into an ext4 disk with `mke2fs -d` (no loop mounts). The result is cached under
<cache>/image-<recipe hash>/, so an unchanged recipe is never built twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mailspec.backends import REGISTRY
from mailspec.vmtests import log

SUITE = "bookworm"
BASE_PACKAGES = (
    "linux-image-cloud-amd64", "initramfs-tools", "systemd", "systemd-sysv", "udev", "iproute2",
    "procps", "openssh-server", "dnsmasq-base",
    "python3",  # runs the in-guest SMTP probe of the relay matrix, and switch's agent
)
MAIL_PACKAGES = tuple(package for backend in REGISTRY for package in backend.all_packages)
# The outside machine serves the zones `mailspec dns` prints, and is the ACME CA.
OUTSIDE_PACKAGES = ("nsd", "pebble")
PACKAGES = (*BASE_PACKAGES, *MAIL_PACKAGES, *OUTSIDE_PACKAGES)
# The fresh image (a Debian host before its first switch) has no mail packages, and the
# VMs no package network: it carries the mail stack's .debs as a local apt repository,
# which is then its only apt source.
REPOSITORY = "/srv/debs"
# It boots the kernel and initrd copied out at build time: a package that triggers a new
# initrd (e2fsprogs, pulled in by the mail stack) would cost minutes under TCG for nothing.
FRESH_FILES = {"etc/initramfs-tools/update-initramfs.conf": "update_initramfs=no\n"}
DISK_SIZE = "3G"
# Units a test VM never needs; each costs seconds of boot under TCG.
MASKED = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer", "e2scrub_all.timer",
    "fstrim.timer", "logrotate.timer", "dpkg-db-backup.timer", "systemd-tmpfiles-clean.timer",
    "getty@tty1.service", "serial-getty@ttyS0.service", "systemd-networkd-wait-online.service",
)
# Started on demand (by the mysql scenarios, and by the switch: rspamd's first start
# loads its rules for minutes under TCG); boots and restores faster without them.
DISABLED = ("mariadb.service", "rspamd.service", "nsd.service",  # nsd: the outside runs its own
            # Debian's own Redis and clamd, which mailspec does not use (it runs its own of
            # each), and fail2ban, which a switch starts for a spec with `fail2ban`.
            "redis-server.service", "clamav-daemon.service", "clamav-daemon.socket", "clamav-freshclam.service",
            "fail2ban.service")
RESOLVER_UNIT = "mailspec-resolver.service"
UPSTREAM_DNS = "etc/mailspec-upstream-dns.conf"  # dnsmasq re-reads it when it changes
# Files written into the root filesystem after mmdebstrap; part of the recipe hash.
FILES = {
    "etc/hostname": "vm\n",
    "etc/hosts": "127.0.0.1 localhost\n",
    "etc/fstab": "/dev/vda / ext4 rw,relatime 0 1\n",
    # Every machine asks its own resolver, which must answer at once: rspamd retries an
    # unanswered query for seconds (8 s a message, measured, with nothing on port 53).
    # With no upstream it answers REFUSED; scenarios with a LAN name its DNS upstream.
    "etc/resolv.conf": "nameserver 127.0.0.1\n",
    UPSTREAM_DNS: "",
    f"etc/systemd/system/{RESOLVER_UNIT}": (
        "[Unit]\nDescription=The test machine's resolver\nBefore=nss-lookup.target\n"
        "[Service]\nExecStart=/usr/sbin/dnsmasq --keep-in-foreground --listen-address=127.0.0.1 "
        f"--bind-interfaces --no-hosts --resolv-file=/{UPSTREAM_DNS} --user=nobody --group=nogroup\n"
        "[Install]\nWantedBy=multi-user.target\n"),
    "etc/systemd/network/10-uplink.network":
        "[Match]\nName=eth0\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n",
    "etc/systemd/journald.conf.d/volatile.conf": "[Journal]\nStorage=volatile\n",
    "etc/ssh/sshd_config.d/vm.conf": "UseDNS no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n",
}
KERNEL_ARGS = "root=/dev/vda rw console=ttyS0 quiet net.ifnames=0 systemd.show_status=0"
EXCLUDED_PATHS = ("/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*")
RECIPE_VERSION = 1


class ImageError(Exception):
    pass


@attrs.frozen
class Image:
    directory: Path

    @property
    def disk(self) -> Path:
        return self.directory / "base.raw"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def ssh_key(self) -> Path:
        return self.directory / "id_ed25519"


def recipe(fresh: bool = False) -> dict:
    found = {"version": RECIPE_VERSION, "suite": SUITE, "packages": sorted(PACKAGES), "masked": sorted(MASKED),
             "disabled": sorted(DISABLED),
             "files": FILES, "disk": DISK_SIZE, "kernel_args": KERNEL_ARGS, "excluded": EXCLUDED_PATHS}
    if fresh:
        found.update(packages=sorted(BASE_PACKAGES), disabled=[], repository=[REPOSITORY, *sorted(MAIL_PACKAGES)],
                     files={**FILES, **FRESH_FILES})
    return found


def recipe_hash(fresh: bool = False) -> str:
    return hashlib.sha256(json.dumps(recipe(fresh), sort_keys=True).encode()).hexdigest()[:16]


def cache_root() -> Path:
    if os.environ.get("MAILSPEC_VM_CACHE"):
        return Path(os.environ["MAILSPEC_VM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "mailspec" / "vm"


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive lock: parallel test workers wait for one build, not start two."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_image(fresh: bool = False) -> Image:
    """The cached image for the current recipe, built first if it is missing; `fresh`:
    the image without the mail stack installed."""
    root = cache_root()
    image = Image(root / f"{'fresh' if fresh else 'image'}-{recipe_hash(fresh)}")
    with locked(root / "build.lock"):
        if not image.disk.exists():
            build(image, fresh)
    return image


def mirror_sources() -> list[str]:
    """The host's apt source files for the suite, so the image uses the same mirror;
    MAILSPEC_VM_MIRROR (a mirror URL or a sources file) overrides them."""
    if os.environ.get("MAILSPEC_VM_MIRROR"):
        return [os.environ["MAILSPEC_VM_MIRROR"]]
    candidates = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.sources")),
                  *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]
    found = [path for path in candidates if os.path.isfile(path) and SUITE in Path(path).read_text()]
    if not found:
        raise ImageError(f"no apt source on this host names {SUITE}; set MAILSPEC_VM_MIRROR")
    return found


def build(image: Image, fresh: bool = False) -> None:
    for tool in ("mmdebstrap", "mke2fs", *(["dpkg-scanpackages"] if fresh else [])):
        if shutil.which(tool) is None:
            raise ImageError(f"`{tool}` is not installed: apt-get install mmdebstrap e2fsprogs dpkg-dev")
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=image.directory.parent))
    try:
        with log.step(f"building the VM image {image.directory.name} (cached afterwards)"):
            rootfs = staging / "rootfs"
            packages = BASE_PACKAGES if fresh else PACKAGES
            with log.step(f"mmdebstrap {SUITE}: {len(packages)} packages"):
                _mmdebstrap(rootfs, packages, _repository_hooks() if fresh else [])
            with log.step("configuring the root filesystem"):
                _configure(rootfs, staging, recipe(fresh)["files"], () if fresh else DISABLED)
            with log.step(f"mke2fs: a {DISK_SIZE} ext4 disk"):
                _copy_boot_files(rootfs, staging)
                _run("mke2fs", "-q", "-t", "ext4", "-L", "root", "-d", str(rootfs),
                     str(staging / "base.raw"), DISK_SIZE)
            shutil.rmtree(rootfs)
            (staging / "recipe.json").write_text(json.dumps(recipe(fresh), indent=2, sort_keys=True) + "\n")
            shutil.rmtree(image.directory, ignore_errors=True)
            staging.rename(image.directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _repository_hooks() -> list[str]:
    """mmdebstrap hooks that download the mail stack (with what it depends on and the
    root filesystem lacks) into a local repository, and make it the only apt source."""
    debs = f'"$1"{REPOSITORY}'
    return [
        "--skip=cleanup/apt/lists",  # the local repository's lists: apt-get install works offline
        f"--customize-hook=chroot \"$1\" apt-get install --download-only -y --no-install-recommends "
        f"{' '.join(MAIL_PACKAGES)}",
        f"--customize-hook=mkdir -p {debs} && mv \"$1\"/var/cache/apt/archives/*.deb {debs}/",
        f"--customize-hook=cd {debs} && dpkg-scanpackages --multiversion . > Packages",
        "--customize-hook=rm -f \"$1\"/etc/apt/sources.list.d/* && "
        f"echo 'deb [trusted=yes] file:{REPOSITORY} ./' > \"$1\"/etc/apt/sources.list",
        "--customize-hook=chroot \"$1\" apt-get update",
    ]


def _mmdebstrap(rootfs: Path, packages: tuple[str, ...], hooks: list[str]) -> None:
    command = ["mmdebstrap", "--mode=root", "--variant=apt", "--format=directory",
               "--aptopt=Acquire::Check-Valid-Until \"false\"",
               f"--include={','.join(packages)}", *hooks,
               *[f"--dpkgopt=path-exclude={path}" for path in EXCLUDED_PATHS],
               SUITE, str(rootfs), *mirror_sources()]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    for line in process.stdout:
        tail = (tail + [line.rstrip()])[-30:]
        if line.startswith("I: "):  # mmdebstrap's own progress lines
            log.info(line[3:].rstrip())
    if process.wait() != 0:
        raise ImageError("mmdebstrap failed:\n" + "\n".join(tail))


def _configure(rootfs: Path, staging: Path, files: dict[str, str], disabled: tuple[str, ...]) -> None:
    for relative, text in files.items():
        target = rootfs / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.write_text(text)
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    descriptor = os.open(staging / "id_ed25519", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private)
    ssh = rootfs / "root/.ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "authorized_keys").write_bytes(public + b" mailspec-vmtests\n")
    _run("systemctl", f"--root={rootfs}", "enable", "systemd-networkd.service", RESOLVER_UNIT)
    _run("systemctl", f"--root={rootfs}", "mask", *MASKED)
    if disabled:
        _run("systemctl", f"--root={rootfs}", "disable", *disabled)


def _copy_boot_files(rootfs: Path, staging: Path) -> None:
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise ImageError("the image has no kernel or initrd in /boot")
    shutil.copyfile(kernels[-1], staging / "vmlinuz")
    shutil.copyfile(initrds[-1], staging / "initrd.img")


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise ImageError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
