"""One file's share of load and lower (a `Unit`), made once per content.

Files are independent until the check: a file's unit depends only on its text, the
name it is shown by, and the recipient delimiter. So units come from the compile
cache (mailspec/cache.py) when it has them, and the rest are made on both cores: a
forked child makes half of a batch (`Units.prefetch`) while the parent makes the other
half. The cache holds one pack of units per spec (its root files): one read and one
write per compile, as a write per file costs more than parsing it on a slow disk.
A unit that read a password file is never cached: it depends on another file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import operator
import os
import pickle

import attrs

from mailspec import cache, model
from mailspec.background import Background
from mailspec.diagnostics import Diagnostic, SpecError
from mailspec.syntax import Entry, parse

# Below this many bytes still to parse, a batch is made in the parent alone: a fork
# and the copy of the results back cost more than they save.
PARALLEL_BYTES = 512 * 1024


@attrs.frozen
class Unit:
    syntax: tuple[Diagnostic, ...] | None  # the syntax errors, if the file did not parse
    plausible: bool  # when it did not: whether its text may be shown (loader.plausible)
    imports: tuple[Entry, ...] = ()
    servers: tuple[Entry, ...] = ()  # lowered once, for the whole spec (Lowerer.assemble)
    top: tuple[Diagnostic, ...] = ()  # top-level statements that are not allowed
    domains: tuple[model.Domain, ...] = ()  # the domains that lowered
    diagnostics: tuple[Diagnostic, ...] = ()  # from lowering the domains
    read_other_files: bool = False  # a password file: never cached


def make(lowerer, display: str, text: str) -> Unit:
    from mailspec.lower.loader import plausible  # the loader imports this module

    try:
        nodes = parse(display, text)
    except SpecError as error:
        return Unit(tuple(error.diagnostics), plausible(text))
    return Unit(None, True, **lowerer.lower_file(nodes, display, text))


class Units:
    """Units by (display name, text), for one delimiter: from this spec's pack in the
    cache, prefetched, or made; `save` stores the pack of the units used this time."""

    def __init__(self, lowerer, delimiter: str, pack: str):
        self.lowerer, self.delimiter, self.pack = lowerer, delimiter, pack
        lowerer.delimiter = delimiter
        self.caching = cache.directory() is not None
        self.stored: dict[str, bytes] = read_pack(pack) if self.caching else {}
        self.used: dict[str, bytes] = {}  # the next pack: every unit used, encoded
        self.ready: dict[str, Unit] = {}  # prefetched, by key

    def key(self, display: str, text: str) -> str:
        return hashlib.sha256(f"{display}\0{self.delimiter}\0{text}".encode()).hexdigest()

    def get(self, display: str, text: str) -> Unit:
        key = self.key(display, text)
        found = self.ready.pop(key, None) or self._stored(key)
        if found is None:
            found = make(self.lowerer, display, text)
            self._use(key, found)
        return found

    def _stored(self, key: str) -> Unit | None:
        found = decode(self.stored.get(key))
        if found is not None:
            self.used[key] = self.stored[key]
        return found

    def _use(self, key: str, unit: Unit, data: bytes | None = None) -> None:
        if not unit.read_other_files and self.caching:
            self.used[key] = data or encode(unit)

    def prefetch(self, files: list[tuple[str, str]]) -> None:
        """Make the units of `files` now, half of them in a forked child, if they are
        many; `get` then finds them."""
        missing = []
        for display, text in dict.fromkeys(files):
            key = self.key(display, text)
            if key not in self.ready and (found := self._stored(key)) is not None:
                self.ready[key] = found
            elif key not in self.ready:
                missing.append((key, display, text))
        if sum(len(text) for _, _, text in missing) < PARALLEL_BYTES or not hasattr(os, "fork"):
            return  # `get` makes them one by one
        child, parent = missing[0::2], missing[1::2]
        # The child's units come back encoded (`Background` would pickle them the slow way).
        background = Background(lambda: [encode(make(self.lowerer, display, text)) for _, display, text in child])
        try:
            for key, display, text in parent:
                self.ready[key] = make(self.lowerer, display, text)
                self._use(key, self.ready[key])
            made = background.result()
        except BaseException:
            background.cancel()
            raise
        for (key, display, _), data in zip(child, made, strict=True):
            unit = decode(data)
            assert unit is not None, display
            self.ready[key] = unit
            self._use(key, unit, data)

    def save(self) -> None:
        """Store the pack of the units used, if it differs from the one read."""
        if self.caching and self.used.keys() != self.stored.keys():
            cache.put(self.pack, pickle.dumps(self.used, protocol=pickle.HIGHEST_PROTOCOL))


def read_pack(name: str) -> dict[str, bytes]:
    """A pack of encoded units by key; empty if there is none (or it is not sound)."""
    data = cache.get(name)
    if data is None:
        return {}
    try:
        found = pickle.loads(data)
    except Exception:  # noqa: BLE001  (a sealed entry that does not load is a miss)
        return {}
    return found if isinstance(found, dict) else {}


# ---------------------------------------------------------------- encoding

@functools.cache
def _reducer(cls):
    """How `encode` pickles a class, faster than its own way: an attrs class (which
    pickles through a Python-level __getstate__) as the class and its fields, in
    order; a NamedTuple as its values. None: the class's own way."""
    if attrs.has(cls):
        fields = attrs.fields(cls)
        if not all(f.init and not f.kw_only for f in fields):
            return None
        get = operator.attrgetter(*(f.name for f in fields))
        if len(fields) == 1:
            return lambda value: (cls, (get(value),))
        return lambda value: (cls, get(value))
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return lambda value: (tuple.__new__, (cls, tuple(value)))
    return None


class _Table(dict):
    def __missing__(self, cls):
        reducer = _reducer(cls)
        if reducer is None:
            raise KeyError(cls)
        self[cls] = reducer
        return reducer


_TABLE = _Table()


def encode(unit: Unit) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _TABLE
    pickler.dump(unit)
    return buffer.getvalue()


def decode(data: bytes | None) -> Unit | None:
    """A unit from `encode`. Only sealed cache entries (or the child's output) get here,
    so anything wrong is the cache's (a bug, a half-read disk): treat it as missing."""
    if data is None:
        return None
    try:
        found = pickle.loads(data)
    except Exception:  # noqa: BLE001  (a bad entry is a cache miss, whatever the reason)
        return None
    return found if isinstance(found, Unit) else None
