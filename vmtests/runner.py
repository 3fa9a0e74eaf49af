"""Run scenarios against a spec: one fresh site per scenario, a report line each,
and JUnit XML for CI systems. Used by `mailspec vmtest` and by bench/vm.py."""

from __future__ import annotations

import smtplib
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import attrs

from mailspec.vmtests import log
from mailspec.vmtests.deploy import Compiled, compile_for_vm, daemon_logs
from mailspec.vmtests.driver import Driver, open_site
from mailspec.vmtests.log import Timeout
from mailspec.vmtests.machine import MachineError
from mailspec.vmtests.scenarios import SCENARIOS, Scenario, ScenarioFailure, run

# What a scenario failure looks like; anything else is a bug in the harness and propagates.
FAILURES = (ScenarioFailure, MachineError, Timeout, smtplib.SMTPException, OSError)


@attrs.frozen
class Outcome:
    name: str
    status: str  # "pass", "fail" or "skip"
    seconds: float
    detail: str = ""


def plan(compiled: Compiled, names: list[str]) -> list[tuple[Scenario, str | None]]:
    """The scenarios asked for (all when none are named), each with why it does not apply."""
    chosen = [s for s in SCENARIOS if not names or s.name in names]
    return [(s, s.not_applicable(compiled.spec)) for s in chosen]


def run_one(driver: Driver, compiled: Compiled, scenario: Scenario) -> Outcome:
    started = time.monotonic()
    site = None
    try:
        site = open_site(driver, compiled, with_outside=scenario.outside, restart=scenario.restart,
                         checking=scenario.checking)
        run(site, scenario)
        return Outcome(scenario.name, "pass", time.monotonic() - started)
    except FAILURES as problem:
        detail = f"{type(problem).__name__}: {problem}"
        for machine in (site.server, site.outside) if site is not None else ():
            if machine is not None:
                detail += f"\n--- daemon logs of {machine.name}\n" + _safely(daemon_logs, machine)
        for machine in driver.machines:
            detail += f"\n--- console of {machine.name}\n{machine.console_tail(20)}"
        return Outcome(scenario.name, "fail", time.monotonic() - started, detail)
    finally:
        driver.release_all()


def _safely(read, machine) -> str:
    try:
        return read(machine)
    except FAILURES as problem:
        return f"(unreadable: {problem})"


def run_spec(roots: list[str], names: list[str], accelerator: str | None = None) -> list[Outcome]:
    outcomes = []
    with Driver(accelerator) as driver, tempfile.TemporaryDirectory(prefix="vmtest-") as scratch:
        compiled = compile_for_vm(roots, Path(scratch))
        for scenario, reason in plan(compiled, names):
            if reason is not None:
                outcomes.append(Outcome(scenario.name, "skip", 0.0, reason))
                log.info(f"skip {scenario.name}: {reason}")
                continue
            outcomes.append(run_one(driver, compiled, scenario))
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    lines = [f"{o.status.upper():4}  {o.name:<15} {o.seconds:6.1f} s"
             + (f"  ({o.detail})" if o.status == "skip" else "") for o in outcomes]
    for o in outcomes:
        if o.status == "fail":
            lines += ["", f"--- {o.name} failed", o.detail]
    passed = sum(o.status == "pass" for o in outcomes)
    failed = sum(o.status == "fail" for o in outcomes)
    lines.append(f"{passed} passed, {failed} failed, {len(outcomes) - passed - failed} skipped "
                 f"in {sum(o.seconds for o in outcomes):.1f} s")
    return "\n".join(lines) + "\n"


def junit(outcomes: list[Outcome], suite: str) -> bytes:
    root = ET.Element("testsuite", name=suite, tests=str(len(outcomes)),
                      failures=str(sum(o.status == "fail" for o in outcomes)),
                      skipped=str(sum(o.status == "skip" for o in outcomes)),
                      time=f"{sum(o.seconds for o in outcomes):.3f}")
    for o in outcomes:
        case = ET.SubElement(root, "testcase", classname=f"mailspec.vmtest.{suite}", name=o.name,
                             time=f"{o.seconds:.3f}")
        if o.status == "fail":
            ET.SubElement(case, "failure", message=o.detail.splitlines()[0] if o.detail else "failed").text = o.detail
        elif o.status == "skip":
            ET.SubElement(case, "skipped", message=o.detail)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
