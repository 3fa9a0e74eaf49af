"""The scenario suite: each built-in scenario, compiled from a fixture, on real VMs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailspec.pipeline import check
from mailspec.vmtests import network, scenarios
from mailspec.vmtests.scenarios import BY_NAME, delivery, routing

pytestmark = pytest.mark.usefixtures("vm_tools")  # see tests/conftest.py

FIXTURES = Path(__file__).parents[2] / "fixtures"
CLASSIC = FIXTURES / "valid" / "classic" / "spec.mailspec"
SITE = FIXTURES / "vm" / "site" / "spec.mailspec"
MYSQL = FIXTURES / "vm" / "site" / "mysql.mailspec"  # imports the site's domain file


def test_classic_setup_delivers_to_each_user_and_the_alias(vm_site):
    """1. primer.ru: two users and an alias; the deploy installed with a full restart."""
    site = vm_site([CLASSIC], restart=True)
    scenarios.run(site, BY_NAME["delivery"])
    assert scenarios.receiving(site.spec) == ["user1@primer.ru", "user2@primer.ru"]
    assert site.folders_with("user1@primer.ru", "no such message") == []  # the check can fail


@pytest.mark.parametrize("name", [s.name for s in scenarios.SCENARIOS if s.name != "delivery"])
def test_scenario_on_the_site_fixture(vm_site, name):
    """2-10 and 12, on the fixture that has every feature."""
    scenario = BY_NAME[name]
    assert scenario.not_applicable(check([str(SITE)]).spec) is None
    site = vm_site([SITE], outside=scenario.outside, restart=scenario.restart)
    scenarios.run(site, scenario)


def test_mysql_backend_delivers_like_the_files_backend(vm_site):
    """11. The same delivery and routing checks with the tables in MariaDB in the VM."""
    site = vm_site([MYSQL])
    assert site.server.succeed("mariadb -N -e 'SELECT COUNT(*) FROM mail.virtual_users'").strip() == str(
        len(scenarios.mailboxes(site.spec)))
    delivery(site)
    routing(site)


def test_mail_goes_server_to_server_both_ways_by_mx(vm_site):
    """The outside MTA finds the server by the MX record made from the spec, and back."""
    site = vm_site([SITE], outside=True)
    assert network.SERVER_ADDRESS in site.outside.succeed("getent hosts mail.example.com")
    site.outside.succeed("sendmail -f stranger@outside.test alice@example.com <<'EOF'\n"
                         "Subject: by MX from outside\n\nhello\nEOF")
    site.wait_for("alice@example.com", "by MX from outside")
    site.submit("bob@example.com", "bob@example.com", ["pen-pal@outside.test"], "by MX to outside")
    site.wait_outside("pen-pal@outside.test", "by MX to outside")
