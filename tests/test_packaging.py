"""The installed package must carry the grammar and every template (an editable install,
as the tests use, would hide a missing package-data pattern)."""

import fnmatch
import json
import re
import subprocess
import tomllib

from conftest import ROOT
from needs import need_tool


def test_package_data_covers_every_resource():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["*"]
    package_dirs = {ROOT / d for d in config["package-dir"].values()}
    resources = [p for p in ROOT.glob("backends/**/*") if p.suffix == ".j2"]
    resources += list((ROOT / "grammar").glob("*.lark"))
    assert resources
    for resource in resources:
        package = next(d for d in sorted(package_dirs, key=lambda d: -len(str(d))) if d in resource.parents)
        # The nearest enclosing package (a folder with __init__.py) owns the file.
        owner = next(p for p in resource.parents if (p / "__init__.py").exists())
        assert package in owner.parents or owner == package
        relative = str(resource.relative_to(owner))
        # setuptools globs per path component: `*.j2` does not reach into templates/.
        assert any(fnmatch.fnmatch(relative, pattern) and relative.count("/") == pattern.count("/")
                   for pattern in patterns), relative


def _nix_eval(expression: str) -> str:
    found = subprocess.run([need_tool("nix-instantiate"), "--eval", "--strict", "--json", "-E", expression],
                           capture_output=True, text=True, cwd=ROOT, check=False)
    assert found.returncode == 0, found.stderr
    return json.loads(found.stdout)


def test_the_flake_parses_and_says_what_it_gives():
    """Without the network the flake's inputs cannot be fetched: parse it, evaluate its
    top level, and hold its package to pyproject's dependencies and entry point."""
    parsed = subprocess.run([need_tool("nix-instantiate"), "--parse", "flake.nix"], capture_output=True,
                            text=True, cwd=ROOT, check=False)
    assert parsed.returncode == 0, parsed.stderr
    top = _nix_eval("let f = import ./flake.nix; in { inherit (f) description; "
                    "url = f.inputs.nixpkgs.url; args = builtins.functionArgs f.outputs; }")
    assert top["args"] == {"self": False, "nixpkgs": False} and top["url"].startswith("github:NixOS/nixpkgs/")
    text = (ROOT / "flake.nix").read_text()
    runtime = re.search(r"runtime = with py; \[([^\]]*)\]", text).group(1).split()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [re.match(r"[A-Za-z0-9_.-]+", d).group().lower() for d in project["dependencies"]]
    assert sorted(runtime) == sorted(wanted)
    assert f'version = "{project["version"]}";' in text
    assert "packages.${system}.default = mailspec;" in text
    assert '"${mailspec}/bin/mailspec"' in text and project["scripts"]["mailspec"] == "mailspec.cli:main"
