"""examples/ci: the shell script's steps, run as a user's CI runs them, in a temporary
git repository with two commits of a spec; the Markdown it writes says what changed.
(Its VM step is `mailspec vmtest --junit`, which tests/vm/test_vmtest_cli.py runs.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "examples" / "ci" / "mailspec-ci.sh"
HASH = "{BLF-CRYPT}$2b$12$kzG3XsKKk69ThdbfVMwX1eMWZHKJwDAyAU8QZJ9F/TLmMkWvtFQ1."
SITE = """server { hostname mail.example.com }
import "domains/example.com.mailspec"
"""
DOMAIN = f"""domain example.com {{
  mailbox alice {{ password "{HASH}" }}
  alias info -> alice
}}
"""


def git(repository: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repository), "-c", "user.name=ci", "-c", "user.email=ci@example.com",
                           *args], check=True, capture_output=True, text=True).stdout


def test_the_shell_script_checks_compiles_and_writes_the_diff(tmp_path):
    (tmp_path / "domains").mkdir()
    (tmp_path / "site.mailspec").write_text(SITE)
    (tmp_path / "domains" / "example.com.mailspec").write_text(DOMAIN)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "the server")
    git(tmp_path, "checkout", "-q", "-b", "change")
    (tmp_path / "domains" / "example.com.mailspec").write_text(
        DOMAIN.replace("alias info -> alice", "alias info -> alice, helpdesk@vendor.example"))
    git(tmp_path, "commit", "-qam", "info goes to the vendor's helpdesk too")
    shutil.copy(SCRIPT, tmp_path / "mailspec-ci.sh")
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])  # where `mailspec` is installed
    done = subprocess.run(["sh", "mailspec-ci.sh"], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, PATH=path, BASE="main", VMTEST="no"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("==")] == \
        ["== check", "== compile", "== diff against main"]
    assert (tmp_path / "mailspec-ci" / "deploy" / "MANIFEST").is_file()
    markdown = (tmp_path / "mailspec-ci" / "diff.md").read_text()
    lines = markdown.splitlines()
    assert lines[:3] == ["## mailspec diff", "", "**1 address changes delivery, 1 new external destination**"], lines
    assert ("| `info@example.com` | alice@example.com | alice@example.com, helpdesk@vendor.example | "
            "⚠️ now leaves the organisation: helpdesk@vendor.example | "
            "main:domains/example.com.mailspec:3:3, HEAD:domains/example.com.mailspec:3:3 |") in lines, markdown


def test_a_spec_with_an_error_stops_the_script_at_the_check(tmp_path):
    (tmp_path / "site.mailspec").write_text(SITE.split("\n")[0] + "\ndomain example.com { alias a -> b }\n")
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])
    done = subprocess.run(["sh", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, PATH=path, VMTEST="no"))
    assert done.returncode == 1 and "error[E0401]" in done.stderr, done.stdout + done.stderr
    assert "== compile" not in done.stdout and not (tmp_path / "mailspec-ci" / "diff.md").exists()


def test_the_workflow_runs_the_same_script_and_posts_its_markdown():
    workflow = (ROOT / "examples" / "ci" / "github-workflow.yml").read_text()
    assert "sh mailspec-ci.sh" in workflow and "--body-file mailspec-ci/diff.md" in workflow
    assert "fetch-depth: 0" in workflow  # the diff reads the base revision
