"""Shared test helpers: fixture discovery, compiling into temp dirs, and real tools."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import attrs
import hypothesis
import hypothesis.database
import pytest
from needs import need_root, need_tool  # noqa: F401  (re-exported to the test modules)

from mailspec.pipeline import check, compile_files

pytest_plugins = ["mailspec.vmtests.plugin", "hosttier"]  # the VM tier's fixtures (tests/vm), the host tier's

ROOT = Path(__file__).resolve().parent.parent

# The compile cache of every test goes to a directory of this run's own: tests compile
# thousands of generated specs, each its own cache entry. The VM image cache stays.
os.environ.setdefault("MAILSPEC_VM_CACHE", os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mailspec", "vm"))
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="mailspec-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], True)

# hypothesis: `ci` (the default) keeps the suite fast; HYPOTHESIS_PROFILE=long runs the
# big campaigns. The example database lives outside the repository.
hypothesis.settings.register_profile(
    "ci", database=hypothesis.database.DirectoryBasedExampleDatabase(
        os.path.expanduser("~/.cache/mailspec/hypothesis")), deadline=None)
hypothesis.settings.register_profile("long", parent=hypothesis.settings.get_profile("ci"),
                                     max_examples=5000)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"


@pytest.fixture(scope="session")
def vm_tools():
    """The VM tier (tests/vm, `pytestmark` there) builds its image with mmdebstrap as
    root; in CI a missing tool fails, never skips. Here rather than in a tests/vm
    conftest, which would shadow this module's name."""
    need_root()
    for tool in ("qemu-system-x86_64", "qemu-img", "mmdebstrap", "mke2fs"):
        need_tool(tool)


def examples(ci: int, long: int = 5000) -> int:
    """How many examples a property runs: few in CI, many with HYPOTHESIS_PROFILE=long."""
    return long if LONG else ci
VALID = sorted(p.name for p in (ROOT / "fixtures" / "valid").iterdir() if p.is_dir())
INVALID = sorted(p.name for p in (ROOT / "fixtures" / "invalid").glob("*.mailspec"))


def valid_spec(name: str) -> Path:
    return ROOT / "fixtures" / "valid" / name / "spec.mailspec"


def checked(path: Path | str):
    result = check([str(path)])
    assert result.ok, [d.message for d in result.diagnostics]
    return result


def compile_fixture(name: str) -> dict[str, str]:
    return compile_files(checked(valid_spec(name)))


def with_backend(spec, backend):
    """The same spec with another backend (the fixtures are compiled with both)."""
    return attrs.evolve(spec, server=attrs.evolve(spec.server, backend=backend))


def declared_addresses(spec) -> list[str]:
    """Every address the spec declares, in every name of its domain, plus a tagged one
    and an unknown one per domain."""
    addresses = []
    for domain in spec.domains:
        names = [domain.name, *(a.name for a in domain.also)]
        locals_ = [m.local for m in domain.mailboxes] + [a.local for a in domain.aliases] + \
                  [x.local for x in domain.lists] + \
                  [r.address.local for m in domain.mailboxes for r in m.aliases]
        for local in locals_:
            addresses += [f"{local}@{name}" for name in names]
        addresses += [f"{locals_[0]}+tag@{domain.name}"] if locals_ else []
        addresses.append(f"nobody-here@{domain.name}")
    return sorted(set(addresses))


def write_tree(files: dict[str, str], target: Path) -> None:
    for path, text in files.items():
        full = target / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(text, encoding="utf-8")


@pytest.fixture(scope="session")
def mariadb():
    """A private MariaDB server for this test session (each xdist worker has its own)."""
    from mariadb_server import MariaDB, throwaway_dir

    need_root()
    need_tool("mariadbd")
    server = MariaDB(throwaway_dir("mariadb-"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def short_dir():
    """A temporary directory with a short path: relocated servers put Unix sockets under
    it, and a socket path must stay under 108 bytes."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="ms", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def outside_client():
    """An Outside (hostrun.outside_namespace): a client outside the trusted networks."""
    from mailspec.hostrun import outside_namespace

    need_root()
    need_tool("ip")
    with outside_namespace() as inside:
        yield inside
