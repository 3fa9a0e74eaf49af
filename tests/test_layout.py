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
              http=10080, https=10443, redis=16380, clamd=13310, pop3=10110, pop3s=10995)


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


def test_free_ports_are_reserved_across_processes_and_outside_the_ephemeral_range():
    """Two pytest workers once chose the same port for their servers (Dovecot: Address
    already in use). A live process's reservation is never chosen again; a dead one's is."""
    import os
    import subprocess
    import sys

    from mailspec.hostrun import PORT_RANGE, RESERVATIONS, _reserve, free_ports

    other = subprocess.Popen([sys.executable, "-c", "import sys, time; from mailspec.hostrun import free_ports; "
                              "print(*free_ports(500), flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, text=True)
    mine: set[int] = set()
    try:
        theirs = set(map(int, other.stdout.readline().split()))
        mine = set(free_ports(500))
        assert len(theirs) == len(mine) == 500 and not theirs & mine
        low, high = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
        assert all(PORT_RANGE[0] <= port < PORT_RANGE[1] and not low <= port <= high for port in mine | theirs)
        assert not any(_reserve(port) for port in sorted(theirs)[:20])  # theirs while they live
    finally:
        other.kill()
        other.wait()
    reclaimed = sorted(theirs)[:20]
    try:
        assert all(_reserve(port) for port in reclaimed)  # their process has ended
    finally:  # give back what this test took: the worker goes on to run servers
        for port in mine | set(reclaimed):
            os.unlink(os.path.join(RESERVATIONS, str(port)))
