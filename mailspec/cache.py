"""The compile cache: what parsing and lowering made of a file, kept between runs.

Entries live in $XDG_CACHE_HOME/mailspec (~/.cache/mailspec by default), never in the
spec's tree. An entry is found by a key that hashes everything its content depends
on, mailspec's own code included (`fingerprint`), so a cached result is the result
the code would compute now. Each entry is sealed with a MAC under a random key that
only this user can read: an entry that is corrupt, truncated or written by anyone or
anything else fails the seal and is ignored, never decoded. The cache is only ever
an optimisation: any problem with it (no home, a read-only disk, a directory that
others may write) turns it off for the run, silently. MAILSPEC_CACHE=off turns it
off too; deleting the directory is always safe, and entries unused for 30 days go.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib.util
import os
import stat
import sys
import time

from mailspec import __version__

SEAL_BYTES = 32
SECRET_BYTES = 32
KEEP_DAYS = 30


def directory() -> str | None:
    """The cache directory, made 0700 if missing; None when it is off or unsafe."""
    if os.environ.get("MAILSPEC_CACHE", "").lower() in ("off", "0", "no"):
        return None
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is invalid, ignore it
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return _usable(os.path.join(base, "mailspec"))


def _usable(path: str) -> str | None:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        found = os.lstat(path)
    except OSError:
        return None
    # Like ssh with ~/.ssh: a directory someone else could write is not used at all.
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid() or found.st_mode & 0o022:
        return None
    return path


@functools.cache
def _secret(cache: str) -> bytes | None:
    """This user's sealing key, made on first use; None when it cannot be had safely."""
    path = os.path.join(cache, "key")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    except OSError:
        return None
    else:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(os.urandom(SECRET_BYTES))
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(descriptor, "rb") as handle:
            found = os.fstat(handle.fileno())
            secret = handle.read(SECRET_BYTES + 1)
    except OSError:
        return None
    if found.st_uid != os.geteuid() or found.st_mode & 0o077 or len(secret) != SECRET_BYTES:
        return None
    return secret


@functools.cache
def fingerprint() -> bytes:
    """What every key includes: mailspec's version and its own source (the grammar with
    it), the Python that runs it, and Lark's version. Any change to them is a new cache."""
    digest = hashlib.sha256(f"{__version__}\0{sys.version}\0".encode())
    package = os.path.dirname(os.path.abspath(__file__))
    grammar = importlib.util.find_spec("mailspec.grammar")
    lark = importlib.util.find_spec("lark")
    roots = [package] + list(grammar.submodule_search_locations or ())
    files = [os.path.join(d, name) for root in roots for d, _, names in os.walk(root)
             for name in names if name.endswith((".py", ".lark"))]
    for path in sorted(files) + [lark.origin]:
        with open(path, "rb") as handle:
            digest.update(path.encode() + b"\0" + handle.read() + b"\0")
    return digest.digest()


def key(kind: str, *parts: bytes | str) -> str:
    """The name of the entry for `kind` computed from `parts`."""
    digest = hashlib.sha256(fingerprint() + kind.encode() + b"\0")
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)
    return f"{kind}-{digest.hexdigest()}"


def _seal(secret: bytes, name: str, payload: bytes) -> bytes:
    return hmac.new(secret, name.encode() + b"\0" + payload, hashlib.sha256).digest()


def get(name: str) -> bytes | None:
    """The payload stored under `name`, if it is there and its seal holds."""
    cache = directory()
    if cache is None or (secret := _secret(cache)) is None:
        return None
    try:
        with open(os.path.join(cache, name), "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    seal, payload = data[:SEAL_BYTES], data[SEAL_BYTES:]
    if not hmac.compare_digest(seal, _seal(secret, name, payload)):
        return None
    try:
        os.utime(os.path.join(cache, name))  # in use: `prune` keeps it
    except OSError:
        pass
    return payload


def put(name: str, payload: bytes) -> None:
    """Store `payload` under `name`, whole or not at all; failures are ignored."""
    cache = directory()
    if cache is None or (secret := _secret(cache)) is None:
        return
    path = os.path.join(cache, name)
    temporary = f"{path}.{os.getpid()}.new"  # one writer per process: the pid makes it ours
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError:
        return
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(_seal(secret, name, payload) + payload)
        os.replace(temporary, path)
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
    prune(cache)


def prune(cache: str) -> None:
    """Remove the entries nothing has used for KEEP_DAYS: those of other versions of
    mailspec, of specs gone or moved. The cache stays as large as what is in use."""
    horizon = time.time() - KEEP_DAYS * 86400
    try:
        with os.scandir(cache) as entries:
            old = [e.path for e in entries if e.name != "key" and e.is_file(follow_symlinks=False)
                   and e.stat(follow_symlinks=False).st_mtime < horizon]
    except OSError:
        return
    for path in old:
        try:
            os.unlink(path)
        except OSError:
            pass
