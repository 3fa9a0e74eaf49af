"""`mailspec vmtest`: the report, JUnit XML, exit codes, and the failure path."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mailspec.vmtests import runner
from mailspec.vmtests.deploy import compile_for_vm
from mailspec.vmtests.scenarios import Scenario, expect

pytestmark = pytest.mark.usefixtures("vm_tools")  # see tests/conftest.py

FIXTURES = Path(__file__).parents[2] / "fixtures"
SITE = FIXTURES / "vm" / "site" / "spec.mailspec"


def vmtest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailspec", "vmtest", *args], capture_output=True, text=True,
                          timeout=900)


def test_report_and_junit_for_chosen_scenarios(tmp_path):
    junit = tmp_path / "vm.xml"
    done = vmtest(str(SITE), "--scenario", "plaintext-auth", "--junit", str(junit))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("PASS  plaintext-auth") and lines[0].endswith(" s")
    assert lines[-1].startswith("1 passed, 0 failed, 0 skipped")
    suite = ET.parse(junit).getroot()
    assert (suite.tag, suite.get("tests"), suite.get("failures")) == ("testsuite", "1", "0")
    assert [case.get("name") for case in suite] == ["plaintext-auth"]


def test_scenarios_that_do_not_apply_are_skipped_with_the_reason(tmp_path):
    spec = tmp_path / "tiny.mailspec"
    spec.write_text((FIXTURES / "valid" / "classic" / "spec.mailspec").read_text())
    done = vmtest(str(spec), "--scenario", "lists", "--scenario", "quota")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SKIP  lists" in done.stdout and "(no lists)" in done.stdout
    assert "SKIP  quota" in done.stdout and "0 passed, 0 failed, 2 skipped" in done.stdout


def test_usage_and_spec_errors_exit_before_any_vm(tmp_path):
    unknown = vmtest(str(SITE), "--scenario", "nonsense")
    assert unknown.returncode == 2 and "no scenario named nonsense" in unknown.stderr
    broken = tmp_path / "broken.mailspec"
    broken.write_text("server { hostname mail.example.com }\ndomain example.com { mailbox }\n")
    invalid = vmtest(str(broken))
    assert invalid.returncode == 1 and "broken.mailspec:2:" in invalid.stderr
    assert "Traceback" not in invalid.stderr


def test_a_failing_scenario_is_reported_with_the_daemon_logs(vm_driver, tmp_path):
    compiled = compile_for_vm([str(SITE)], tmp_path)

    def fails(site) -> None:
        expect(site.server.execute("test -e /no-such-file")[0] == 0, "the file is missing, on purpose")
    outcome = runner.run_one(vm_driver, compiled, Scenario("on-purpose", "always fails", fails, lambda spec: None))
    assert outcome.status == "fail"
    assert "ScenarioFailure: the file is missing, on purpose" in outcome.detail
    assert "daemon logs of server" in outcome.detail and "postfix.log" in outcome.detail
    report = runner.report([outcome])
    assert report.startswith("FAIL  on-purpose") and "0 passed, 1 failed" in report
    failure = ET.fromstring(runner.junit([outcome], "site")).find("testcase/failure")
    assert failure is not None and "on purpose" in failure.get("message")
