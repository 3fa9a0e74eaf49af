"""check_and_write (check in the parent while a forked child writes) must give exactly the
tree that emit_all computes in memory, and must leave nothing behind when it fails."""

import os
from pathlib import Path

import pytest
from conftest import VALID, valid_spec

from mailspec.emit import emit_all
from mailspec.pipeline import check, check_and_write, load_and_lower

FIXTURES = Path(__file__).parent.parent / "fixtures"


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text("utf-8") for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", VALID)
def test_written_tree_is_the_emitted_tree(name, tmp_path):
    spec = str(valid_spec(name))
    result = check_and_write(load_and_lower([spec]), str(tmp_path / "deploy"))
    assert result.ok
    assert tree(tmp_path / "deploy") == emit_all(check([spec]).spec)


def children() -> set[str]:
    pid = os.getpid()
    return set(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


def test_invalid_spec_writes_nothing_and_leaves_no_child(tmp_path):
    before = children()
    assert check_and_write(load_and_lower([str(valid_spec("minimal"))]), str(tmp_path / "deploy")).ok
    previous = tree(tmp_path / "deploy")
    invalid = sorted((FIXTURES / "invalid").glob("E04*.mailspec"))[0]
    result = check_and_write(load_and_lower([str(invalid)]), str(tmp_path / "deploy"))
    assert not result.ok
    assert sorted(os.listdir(tmp_path)) == [".deploy.lock", "deploy"]  # no staging directory left
    assert tree(tmp_path / "deploy") == previous
    assert children() == before  # the speculative writer was killed and reaped
