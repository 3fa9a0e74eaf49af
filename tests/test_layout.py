"""A relocated deploy (--prefix, --port) differs from the production one only in paths
and ports: undo exactly those and the trees are identical."""

import re

import attrs
import pytest
from conftest import VALID, checked, valid_spec

from mailspec.emit import emit_all
from mailspec.layout import DEFAULT, Layout, Ports

PREFIX = "/srv/mailspec-test/root"
PORTS = Ports(smtp=10025, submission=10587, submissions=10465, imap=10143, imaps=10993, sieve=14190,
              milter=21332, rspamd_controller=21334, srs_forward=20001, srs_reverse=20002, srs_reinject=20026,
              http=10080, https=10443)


@pytest.mark.parametrize("name", VALID)
def test_relocated_tree_differs_only_in_paths_and_ports(name):
    spec = checked(valid_spec(name)).spec
    production = emit_all(spec, DEFAULT)
    relocated = emit_all(spec, Layout(PREFIX, PORTS))
    assert production.keys() == relocated.keys()
    moved = 0
    for path, text in relocated.items():
        if path == "MANIFEST":
            continue
        undone = text.replace(PREFIX, "")
        for field in attrs.fields(Ports):
            new, old = getattr(PORTS, field.name), getattr(DEFAULT.ports, field.name)
            assert not re.search(rf"\b{new}\b", production[path]), (path, new)
            undone = re.sub(rf"\b{new}\b", str(old), undone)
        assert undone == production[path], path
        moved += text != production[path]
    assert moved >= 2  # main.cf and master.cf at least
