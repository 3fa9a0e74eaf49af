"""A backend is its package plus one entry in mailspec.backends.REGISTRY: everything
that lists backends is derived from it, and the two writers share its files exactly."""

from __future__ import annotations

from fractions import Fraction

from conftest import ROOT, checked, valid_spec
from hypothesis import given
from hypothesis import strategies as st

from mailspec.backends import REGISTRY, Backend
from mailspec.emit import BACKENDS, dealt, emit_all, emit_share, split
from mailspec.install import installed_dirs, installed_path
from mailspec.layout import DEFAULT
from mailspec.vmtests import image


def test_every_backend_package_has_an_entry_and_every_entry_a_package():
    packages = sorted(p.name for p in (ROOT / "backends").iterdir() if (p / "__init__.py").exists())
    assert sorted(b.name for b in REGISTRY) == packages
    assert [m.__name__ for m in BACKENDS] == [f"mailspec.backends.{b.name}" for b in REGISTRY]


def test_what_is_derived_from_the_registry():
    assert {p for b in REGISTRY for p in b.all_packages} <= set(image.PACKAGES)
    assert dict(installed_dirs(DEFAULT)) == {"postfix": "/etc/postfix", "dovecot": "/etc/dovecot",
                                             "sieve": "/etc/dovecot/sieve", "rspamd": "/etc/rspamd",
                                             "postsrsd": "/etc/postsrsd", "nginx": "/etc/nginx",
                                             "redis": "/etc/redis/mailspec", "clamav": "/etc/clamav/mailspec",
                                             "fail2ban": "/etc/fail2ban"}
    assert installed_path(DEFAULT, "dovecot/users") == "/etc/dovecot/users"


def test_the_two_writers_write_every_file_once():
    spec = checked(valid_spec("sieve")).spec
    child, parent = split()
    mine, theirs = emit_share(spec, child, True), emit_share(spec, parent, False)
    assert not set(mine) & set(theirs)
    whole = emit_all(spec)
    del whole["MANIFEST"]
    assert mine | theirs == whole
    assert mine and theirs  # both work


weights = st.lists(st.tuples(st.integers(0, 100), st.booleans()), min_size=1, max_size=6)


@given(weights, st.integers(0, 100), st.integers(0, 300))
def test_the_split_shares_each_backend_exactly(entries, check, files):
    registry = tuple(Backend(f"b{i}", None, (), w, d) for i, (w, d) in enumerate(entries))
    if any(d and w == 0 for w, d in entries):
        registry = tuple(b for b in registry if not (b.divisible and b.weight == 0))
    child, parent = split(registry, check)
    for backend in registry:
        fractions = [f for side in (child, parent) for b, f in side if b is backend]
        assert sum(fractions, Fraction(0)) == 1 and all(0 < f <= 1 for f in fractions)
    # Dealing out a divisible backend's files covers each once, in the right proportion.
    paths = [f"f{n:04d}" for n in range(files)]
    for _backend, fraction in child:
        if fraction < 1:
            mine, theirs = dealt(paths, fraction, True), dealt(paths, fraction, False)
            assert sorted(mine + theirs) == paths and abs(len(mine) - files * fraction) < 1
