"""Real paths (every link followed) for many files in few directories: one realpath per
directory, and one more only for a file that is itself a link. And writing a file with
its mode from the first byte."""

from __future__ import annotations

import os


class RealPaths:
    def __init__(self):
        self.directories: dict[str, str] = {}

    def of(self, path: str) -> str:
        if os.path.islink(path):
            return os.path.realpath(path)
        parent, name = os.path.split(os.path.abspath(path))
        if parent not in self.directories:
            self.directories[parent] = os.path.realpath(parent)
        return os.path.join(self.directories[parent], name)


def inside(path: str, directory: str) -> bool:
    """Whether real path `path` is `directory` or lies under it (both are real paths,
    normalised: a prefix of whole components says it, as commonpath would, faster)."""
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def write_with_mode(path: str, data: bytes, mode: int) -> None:
    """Create or replace `path` with `mode` from the start (a key is never world-readable
    for a moment), in one rename."""
    temporary = f"{path}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(temporary, mode)
    os.replace(temporary, path)
