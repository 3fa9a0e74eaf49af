"""The generations on a host: /var/lib/mailspec/generations/N, each complete or absent.

A generation is built in a directory of its own and made complete by writing its
meta.json last; one that was being built when the process died has none, and is
removed by the next switch. `current` is a symlink to the one in use; changing it is
one rename(2), so it names the old generation or the new one, never neither.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil

import attrs

from mailspec.layout import Layout

META = "meta.json"


class SwitchError(Exception):
    """A step that failed: `message` says what, `help` what to do."""

    def __init__(self, message: str, help: str = ""):
        super().__init__(message)
        self.message, self.help = message, help


@attrs.frozen
class Generation:
    number: int
    path: str
    date: str  # when it was built, UTC, ISO 8601 (host state, not compiler output)
    spec: str
    manifest: str  # sha256 of the deploy's MANIFEST: which compile it is
    installed: tuple[str, ...]  # the files the install wrote, relative to the generation's etc/
    status: str = "ok"  # "failed": it became current, failed its health check, was rolled back
    stopped: tuple[str, ...] = ()  # daemons it does not run (generation 0: those mailspec installed)


class Store:
    def __init__(self, layout: Layout):
        self.layout = layout
        self.root = layout.state_dir
        self.generations_dir = os.path.join(self.root, "generations")
        self.current_link = os.path.join(self.root, "current")
        self.activating_note = os.path.join(self.root, "activating")
        self.held: Lock | None = None  # the lock, while `lock()` holds it (daemon jobs inherit it)

    def path(self, number: int) -> str:
        return os.path.join(self.generations_dir, str(number))

    def live_etc(self, name: str) -> str:
        """Where a daemon's live directory (postfix, dovecot) points: through `current`."""
        return os.path.join(self.current_link, "etc", name)

    def generations(self) -> list[Generation]:
        """Every complete generation, oldest first."""
        found = []
        try:
            names = os.listdir(self.generations_dir)
        except FileNotFoundError:
            return []
        for name in names:
            if name.isdigit() and (generation := self.read(int(name))) is not None:
                found.append(generation)
        return sorted(found, key=lambda g: g.number)

    def read(self, number: int) -> Generation | None:
        try:
            with open(os.path.join(self.path(number), META), encoding="utf-8") as handle:
                data = json.load(handle)
            return Generation(number=number, path=self.path(number), date=data["date"], spec=data["spec"],
                              manifest=data["manifest"], installed=tuple(data["installed"]),
                              status=data.get("status", "ok"), stopped=tuple(data.get("stopped", ())))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def current(self) -> int | None:
        try:
            target = os.readlink(self.current_link)
        except OSError:
            return None
        name = os.path.basename(target)
        return int(name) if name.isdigit() else None

    def new_directory(self) -> tuple[int, str]:
        """A fresh, empty directory for the next generation; unfinished ones are removed."""
        os.makedirs(self.generations_dir, mode=0o755, exist_ok=True)
        numbers = [g.number for g in self.generations()]
        for name in os.listdir(self.generations_dir):
            if not name.isdigit() or int(name) not in numbers:
                shutil.rmtree(os.path.join(self.generations_dir, name), ignore_errors=True)
        number = max(numbers, default=-1) + 1
        os.mkdir(self.path(number), 0o755)
        return number, self.path(number)

    def complete(self, number: int, spec: str, manifest: str, installed: list[str], date: str,
                 stopped: list[str] = ()) -> None:
        """Write meta.json last, by rename: from here on the generation exists."""
        self.write_meta(number, {"date": date, "spec": spec, "manifest": manifest,
                                 "installed": sorted(installed), "status": "ok", "stopped": sorted(stopped)})

    def write_meta(self, number: int, data: dict) -> None:
        path = os.path.join(self.path(number), META)
        with open(path + ".new", "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(path + ".new", path)
        _sync_directory(self.path(number))

    def mark_failed(self, number: int) -> None:
        generation = self.read(number)
        if generation is not None:
            self.write_meta(number, {"date": generation.date, "spec": generation.spec,
                                     "manifest": generation.manifest, "installed": list(generation.installed),
                                     "status": "failed", "stopped": list(generation.stopped)})

    def flip(self, number: int) -> None:
        """Make generation `number` current: one rename of a new link over `current`."""
        assert self.read(number) is not None, number
        new = self.current_link + ".new"
        if os.path.lexists(new):
            os.unlink(new)
        os.symlink(os.path.join("generations", str(number)), new)
        os.replace(new, self.current_link)
        _sync_directory(self.root)

    def activating(self, number: int | None) -> None:
        """Note that the daemons are being moved to generation `number` (None: they are
        done). A note left behind by a killed switch means that they may run a mix of
        the old and the new: the next activation restarts both."""
        if number is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.activating_note)
            return
        with open(self.activating_note + ".new", "w", encoding="utf-8") as handle:
            handle.write(f"{number}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(self.activating_note + ".new", self.activating_note)
        _sync_directory(self.root)

    def loaded(self) -> dict[str, str] | None:
        """The digests of the files outside the generations (key material, the mysql
        option file) as the daemons last loaded them; None before the first switch."""
        try:
            with open(os.path.join(self.root, "loaded.json"), encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def set_loaded(self, digests: dict[str, str]) -> None:
        path = os.path.join(self.root, "loaded.json")
        with open(path + ".new", "w", encoding="utf-8") as handle:
            json.dump(digests, handle, sort_keys=True)
        os.replace(path + ".new", path)

    def interrupted(self) -> bool:
        """Whether the last activation did not finish (see `activating`)."""
        return os.path.exists(self.activating_note)

    def remove(self, number: int) -> None:
        """Remove a generation: its meta.json first, so a kill midway leaves an unfinished
        directory (removed by the next switch), never a listed generation with files missing."""
        os.unlink(os.path.join(self.path(number), META))
        shutil.rmtree(self.path(number))

    def lock(self) -> Lock:
        os.makedirs(self.root, mode=0o755, exist_ok=True)
        self.held = Lock(os.path.join(self.root, "lock"))
        return self.held


class Lock:
    """One switch, rollback or gc at a time on a host: an flock, released when the last
    process holding it ends. A daemon job (daemons.py) holds it too, so a switch killed
    midway keeps the lock until its restart is done."""

    def __init__(self, path: str):
        self.path = path

    def fileno(self) -> int:
        return self.handle.fileno()

    def __enter__(self) -> Lock:
        self.handle = open(self.path, "a+")  # noqa: SIM115  (held until __exit__)
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            if holder.startswith("pid ") and holder[4:].isdigit() and not _running(int(holder[4:])):
                fcntl.flock(self.handle, fcntl.LOCK_EX)  # a dead switch's daemon job: it ends soon
            else:
                self.handle.close()
                raise SwitchError(f"another switch, rollback or gc is running on this host ({holder})",
                                  "wait for it to finish, then run this again") from None
        self.handle.truncate(0)
        self.handle.write(f"pid {os.getpid()}\n")
        self.handle.flush()
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sync_directory(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
