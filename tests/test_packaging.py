"""The installed package must carry the grammar and every template (an editable install,
as the tests use, would hide a missing package-data pattern)."""

import fnmatch
import tomllib

from conftest import ROOT


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
