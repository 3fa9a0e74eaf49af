"""Every invalid fixture renders exactly its checked-in diagnostic text, and names the
code its file name promises (`E0401-….mailspec` must report E0401)."""

import os
import subprocess
import sys

import pytest
from conftest import INVALID, ROOT


def run_check(name: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailspec", "check", f"fixtures/invalid/{name}", *extra],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"})


def test_enough_fixtures():
    assert len(INVALID) >= 30


@pytest.mark.parametrize("name", INVALID)
def test_snapshot(name):
    result = run_check(name)
    expected = (ROOT / "fixtures" / "invalid" / name.replace(".mailspec", ".expected")).read_text()
    assert "Traceback" not in result.stderr
    assert result.stderr == expected
    code = name.split("-")[0]
    assert f"[{code}]" in result.stderr
    assert result.returncode == (0 if code.startswith("W") and "error[" not in expected else 1)


@pytest.mark.parametrize("name", INVALID[:5])
def test_json_format(name):
    import json
    result = run_check(name, "--format", "json")
    data = json.loads(result.stdout)
    assert data["diagnostics"], data
    for diagnostic in data["diagnostics"]:
        assert diagnostic["code"] and diagnostic["message"]
        for label in diagnostic["labels"]:
            assert label["line"] >= 1 and label["column"] >= 1
