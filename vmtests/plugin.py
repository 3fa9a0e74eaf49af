"""pytest fixtures for VM tests: `vm_driver` (one per worker), `machine` (one started
machine), `machines` (two machines on one LAN) and `vm_site` (a compiled spec installed on a
server, with or without the outside MTA). A failing test gets the tail of each machine's
serial console and daemon logs in its report.

Load it with `-p mailspec.vmtests.plugin` or `pytest_plugins = ["mailspec.vmtests.plugin"]`.
"""

from __future__ import annotations

import pytest

from mailspec.vmtests.deploy import compile_for_vm, daemon_logs
from mailspec.vmtests.driver import Driver, open_site


@pytest.fixture(scope="session")
def vm_driver():
    with Driver() as driver:
        yield driver


@pytest.fixture
def machine(vm_driver, request):
    started = vm_driver.machine("machine")
    request.node.vm_machines = [started]
    started.start()
    yield started
    vm_driver.release_all()


@pytest.fixture
def machines(vm_driver, request):
    pair = vm_driver.lan_pair(("first", "192.168.50.10"), ("second", "192.168.50.20"))
    request.node.vm_machines = list(pair)
    yield pair
    vm_driver.release_all()


@pytest.fixture(scope="session")
def vm_compile(tmp_path_factory):
    """compile(roots) -> Compiled, once per spec and session: scenarios on the same spec
    then share one snapshot of the installed server."""
    compiled = {}

    def compile_once(roots: list[str]):
        key = tuple(str(root) for root in roots)
        if key not in compiled:
            compiled[key] = compile_for_vm(list(key), tmp_path_factory.mktemp("vm-compiled"))
        return compiled[key]
    return compile_once


@pytest.fixture
def vm_site(vm_driver, vm_compile, request):
    """open(roots, outside=False, restart=False, checking=False) -> a Site; released after the test."""
    def open_spec(roots: list[str], outside: bool = False, restart: bool = False, checking: bool = False):
        compiled = vm_compile(roots)
        request.node.vm_machines = vm_driver.machines
        return open_site(vm_driver, compiled, outside, restart, checking)
    yield open_spec
    vm_driver.release_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        for machine in getattr(item, "vm_machines", []):
            report.sections.append((f"serial console of {machine.name}", machine.console_tail(40)))
            if machine.ssh is not None:
                try:
                    report.sections.append((f"daemon logs of {machine.name}", daemon_logs(machine)))
                except Exception as problem:  # noqa: BLE001  (a report must not fail)
                    report.sections.append((f"daemon logs of {machine.name}", f"unreadable: {problem}"))
    return report
