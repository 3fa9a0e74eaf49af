"""sieve_eval against Pigeonhole: for generated rules and messages, `sieve-test` on the
compiled script performs exactly the actions that sieve_eval says."""

from __future__ import annotations

import subprocess

from conftest import examples, need_tool
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mailspec import model
from mailspec.backends.sieve import _Printer
from mailspec.check.sieve import check_sieve
from mailspec.sieve_eval import Envelope, sieve_eval

WORDS = ["hello", "Report", "[spam]", "urgent", "bob@x.org", "Alice <alice@example.com>",
         "=?utf-8?q?Caf=C3=A9_REPORT?=", "=?utf-8?b?w4lURQ==?=", "=?iso-8859-1?q?Gr=FC=DFe?="]
KEYS = ["hello", "report", "*spam*", "urg?nt", "bob@x.org", "alice@example.com", "*", "x",
        "café report", "*é*", "Été", "grüße"]
HEADERS = ["subject", "from", "to", "x-test"]

TESTS = st.deferred(lambda: st.one_of(
    st.builds(model.CompareTest, st.just("header"), st.sampled_from(HEADERS),
              st.sampled_from(list(model.Match)), st.sampled_from(KEYS)),
    st.builds(model.CompareTest, st.just("address"), st.sampled_from(["from", "to"]),
              st.sampled_from(list(model.Match)), st.sampled_from(KEYS)),
    st.builds(model.CompareTest, st.just("envelope"), st.sampled_from(["from", "to"]),
              st.sampled_from(list(model.Match)), st.sampled_from(KEYS)),
    st.builds(model.SizeTest, st.booleans(), st.sampled_from([1000, 100000])),
    st.builds(model.ExistsTest, st.sampled_from(HEADERS)),
    st.builds(model.AllOf, st.lists(TESTS, min_size=1, max_size=3).map(tuple)),
    st.builds(model.AnyOf, st.lists(TESTS, min_size=1, max_size=3).map(tuple)),
    st.builds(model.Not, TESTS),
    st.builds(model.Constant, st.booleans()),
))
ACTIONS = st.one_of(
    st.builds(model.FileInto, st.sampled_from(["Junk", "Lists/team", "INBOX"])),
    st.builds(model.Redirect, st.sampled_from([model.Address("a", "b.example"), model.Address("c", "d.example")]),
              st.booleans()),
    st.sampled_from([model.Discard(), model.Keep(), model.Stop()]),
    st.builds(model.Reject, st.just("not wanted")),
    st.builds(model.AddFlag, st.sampled_from(["\\Seen", "\\Flagged", "$Label1"])),
    st.builds(model.Vacation, st.just("Away"), subject=st.just("Gone")),
)
COMMANDS = st.deferred(lambda: st.lists(st.one_of(ACTIONS, IFS), max_size=4).map(tuple))
IFS = st.builds(model.If, st.lists(st.builds(model.Branch, TESTS, COMMANDS), min_size=1, max_size=2)
                .map(tuple), st.none() | COMMANDS)


@st.composite
def messages(draw) -> tuple[bytes, Envelope]:
    recipient = "me@example.com"
    sender = draw(st.sampled_from(["bob@x.org", "alice@example.com"]))
    lines = [f"From: {draw(st.sampled_from(WORDS))}", f"To: {recipient}"]
    for name in draw(st.lists(st.sampled_from(["Subject", "X-Test"]), max_size=3)):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
        fold = draw(st.booleans())
        lines.append(f"{name}: " + ("\r\n " if fold else " ").join(words))
    body = "x" * draw(st.sampled_from([10, 5000, 200000]))
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode(), Envelope(sender, recipient)


def performed(output: str) -> list[str]:
    """sieve-test's report in sieve_eval's terms."""
    actions: list[str] = []
    section = None
    for line in output.splitlines():
        if line.startswith("Performed actions:"):
            section = ""
        elif line.startswith("Implicit keep:"):
            section = "implicit: "
        elif section is not None and line.startswith(" * "):
            action = line[3:].rstrip(":")
            actions.append(section + action)
        elif section is not None and "+ add IMAP flags:" in line:
            flags = sorted(line.split(":", 1)[1].split())
            actions[-1] += f" [{' '.join(flags)}]"
    return actions


@settings(max_examples=examples(150), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(COMMANDS, messages())
def test_sieve_test_performs_what_sieve_eval_says(tmp_path_factory, commands, message):
    assume(not check_sieve(model.Mailbox("me", sieve=commands), lambda ref, span: None))
    assert_agree(tmp_path_factory, commands, message)


def test_regression_storing_twice_into_one_folder_merges_the_flags(tmp_path_factory):
    # Found by the property above: Pigeonhole performs one store into Junk, carrying
    # the flag added between the two fileinto commands.
    commands = (model.FileInto("Junk"), model.AddFlag("\\Seen"), model.FileInto("Junk"))
    message = (b"From: hello\r\nTo: me@example.com\r\n\r\nxxxxxxxxxx\r\n",
               Envelope("bob@x.org", "me@example.com"))
    outcome = sieve_eval(commands, *message)
    assert outcome.actions == ("store message in folder: Junk [\\seen]",)
    assert_agree(tmp_path_factory, commands, message)


def assert_agree(tmp_path_factory, commands, message) -> None:
    sieve_test = need_tool("sieve-test")
    printer = _Printer()
    printer.commands(commands, 0)
    script = printer.script()
    raw, envelope = message
    work = tmp_path_factory.mktemp("sieve")
    work.chmod(0o755)  # sieve-test runs as nobody
    for parent in work.parents:
        if str(parent).startswith("/tmp/") and parent.stat().st_uid == 0:
            parent.chmod(parent.stat().st_mode | 0o005)
    (work / "rules.sieve").write_text(script)
    (work / "message.eml").write_bytes(raw)
    run = subprocess.run([sieve_test, "-o", "mail_uid=65534", "-o", "mail_gid=65534", "-f",
                          envelope.sender, "-r", envelope.recipient, "-a", envelope.recipient,
                          str(work / "rules.sieve"), str(work / "message.eml")],
                         capture_output=True, text=True)
    assert run.returncode == 0, script + run.stdout + run.stderr
    assert performed(run.stdout) == list(sieve_eval(commands, raw, envelope).actions), script + run.stdout


def test_regression_a_repeated_redirect_is_ignored_whole(tmp_path_factory):
    # Found by the property: after `redirect :copy X`, a plain `redirect X` is a
    # duplicate and does not cancel the implicit keep.
    to = model.Address("a", "b.example")
    commands = (model.Redirect(to, True), model.Redirect(to))
    message = (b"From: hello\r\nTo: me@example.com\r\n\r\nxxxxxxxxxx\r\n",
               Envelope("bob@x.org", "me@example.com"))
    assert sieve_eval(commands, *message).implicit_keep
    assert_agree(tmp_path_factory, commands, message)
