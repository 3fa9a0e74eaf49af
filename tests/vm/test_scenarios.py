"""The scenario suite: each built-in scenario, compiled from a fixture, on real VMs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from mailspec import model
from mailspec.pipeline import check
from mailspec.vmtests import network, scenarios
from mailspec.vmtests.deploy import compile_model, install_deploy
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
    site = vm_site([SITE], outside=scenario.outside, restart=scenario.restart, checking=scenario.checking)
    scenarios.run(site, scenario)


def test_mysql_backend_delivers_like_the_files_backend(vm_site, tmp_path):
    """11. The same delivery and routing checks with the tables in MariaDB in the VM;
    then the database switches, and rolls back, with the files (switch's scenario 5)."""
    site = vm_site([MYSQL])

    def users() -> set[str]:
        return set(site.server.succeed("mariadb -N -e 'SELECT email FROM mail.virtual_users'").split())
    spec_users = {str(d.address(m.local)) for d, m in scenarios.mailboxes(site.spec)}
    assert users() == spec_users
    delivery(site)
    routing(site)
    first = site.spec.domains[0]
    added = model.Mailbox("newcomer", password=first.mailboxes[0].password)
    changed = attrs.evolve(site.spec, domains=(attrs.evolve(first, mailboxes=first.mailboxes + (added,)),
                                               *site.spec.domains[1:]))
    install_deploy(site.server, compile_model(changed, tmp_path / "second"))
    newcomer = f"newcomer@{first.name}"
    assert users() == {*spec_users, newcomer}
    assert site.server.succeed("readlink /var/lib/mailspec/current").strip() == "generations/2"
    rollback = subprocess.run(
        [sys.executable, "-m", "mailspec", "rollback", "1", "--target",
         f"ssh://root@127.0.0.1:{site.server.forwards[22]}", "--identity", str(site.server.image.ssh_key),
         "--known-hosts", str(tmp_path / "known_hosts"), "--accept-new-host-key"],
        capture_output=True, text=True, timeout=600)
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    # Back: generation 1's test passwords, then the newcomer's rows out after the flip.
    assert re.search(r"rows? added or changed\ngeneration 1 is current \(was 2\)\nthe database mail: \d+ rows? "
                     r"removed", rollback.stdout), rollback.stdout
    assert users() == spec_users
    assert site.server.succeed("readlink /var/lib/mailspec/current").strip() == "generations/1"


def test_mail_goes_server_to_server_both_ways_by_mx(vm_site):
    """The outside MTA finds the server by the MX record made from the spec, and back."""
    site = vm_site([SITE], outside=True)
    assert network.SERVER_ADDRESS in site.outside.succeed("getent hosts mail.example.com")
    site.outside.succeed("sendmail -f stranger@outside.test alice@example.com <<'EOF'\n"
                         "Subject: by MX from outside\n\nhello\nEOF")
    site.wait_for("alice@example.com", "by MX from outside")
    site.submit("bob@example.com", "bob@example.com", ["pen-pal@outside.test"], "by MX to outside")
    site.wait_outside("pen-pal@outside.test", "by MX to outside")
