"""`mailspec diff` held to the reference semantics. For generated specs and mutated
copies: every address the receiving section names has resolve's recipients on each side,
and every drawn address it does not speak for resolves the same on both; the sending
section agrees with `may_send` in the same way; a spec against itself, formatted or with
its imports reordered, is no change; and diff(b, a) mirrors diff(a, b). Then the
command: its formats, --exit-code, errors, and --git."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import attrs
import pytest
from conftest import examples
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from specgen import OUTSIDE, SPECS, Spec, addresses, render, render_files

from mailspec import model
from mailspec.diff import diff
from mailspec.diff.receiving import PROBE
from mailspec.fmt import format_text
from mailspec.pipeline import check
from mailspec.semantics import may_send, resolve, split_extension

PROPERTY = settings(max_examples=examples(200, 3000), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------- mutations of a generated spec

def _domain(spec: Spec, index: int, **changes) -> Spec:
    domains = list(spec.domains)
    domains[index] = attrs.evolve(domains[index], **changes)
    return attrs.evolve(spec, domains=tuple(domains))


@st.composite
def mutated(draw, spec: Spec) -> Spec:
    """`spec` with one to three small changes of the kinds a pull request makes."""
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(spec.domains) - 1))
        domain = spec.domains[index]
        receiving = [m.local for m in domain.mailboxes if not m.send_only]
        names = receiving + [a for a, _ in domain.aliases]
        kind = draw(st.sampled_from(["plus", "catch_all", "forward", "also", "filter", "alias", "list", "send_as",
                                     "mailbox"]))
        if kind == "plus":
            spec = _domain(spec, index, plus=not domain.plus)
        elif kind == "catch_all":
            spec = _domain(spec, index, catch_all=draw(st.none() | st.sampled_from(receiving or [None])))
        elif kind == "forward" and receiving:
            box = draw(st.sampled_from([m for m in domain.mailboxes if not m.send_only]))
            forwards = tuple(draw(st.lists(st.sampled_from(OUTSIDE), max_size=2, unique=True)))
            changed = attrs.evolve(box, forwards=forwards, keep_copy=bool(forwards) and draw(st.booleans()))
            spec = _domain(spec, index, mailboxes=tuple(changed if m is box else m for m in domain.mailboxes))
        elif kind == "also":
            also = domain.also[:-1] if domain.also and draw(st.booleans()) else \
                (*domain.also, f"alias{index}-{len(domain.also)}.example")
            spec = _domain(spec, index, also=tuple(also))
        elif kind == "filter":
            entry = draw(st.sampled_from([f"{n}@{domain.name}" for n in names if "'" not in n] + OUTSIDE
                                         + ["partner.example", domain.name]))
            rejected = set(spec.reject_recipients) ^ {entry}
            spec = attrs.evolve(spec, reject_recipients=tuple(sorted(rejected)))
        elif kind == "alias" and names:
            targets = tuple(draw(st.lists(st.sampled_from(names + OUTSIDE[:1]), min_size=1, max_size=2, unique=True)))
            spec = _domain(spec, index, aliases=(*domain.aliases, (f"new{len(domain.aliases)}", targets)))
        elif kind == "list" and receiving:
            members = tuple(draw(st.lists(st.sampled_from(receiving + OUTSIDE), min_size=1, max_size=4, unique=True)))
            spec = _domain(spec, index, lists=(("team", members),))
        elif kind == "send_as" and names:
            box = draw(st.sampled_from(domain.mailboxes))
            right = draw(st.sampled_from([n for n in names if "'" not in n] + [f"external {OUTSIDE[0]}"]))
            changed = attrs.evolve(box, send_as=tuple(sorted({*box.send_as, right})))
            spec = _domain(spec, index, mailboxes=tuple(changed if m is box else m for m in domain.mailboxes))
        elif kind == "mailbox":
            free = [n for n in ("grace", "heidi", "ivan") if n not in names]
            if free:
                added = attrs.evolve(domain.mailboxes[0], local=free[0], forwards=(), keep_copy=False, send_as=())
                spec = _domain(spec, index, mailboxes=(*domain.mailboxes, added))
    return spec


PAIRS = SPECS.flatmap(lambda spec: st.tuples(st.just(spec), mutated(spec)))


def checked(files: dict[str, str]) -> model.Spec | None:
    with tempfile.TemporaryDirectory() as directory:
        for name, text in files.items():
            Path(directory, name).parent.mkdir(parents=True, exist_ok=True)
            Path(directory, name).write_text(text)
        result = check([os.path.join(directory, "spec.mailspec")])
    return result.spec if result.ok else None


def pair(a: Spec, b: Spec) -> tuple[model.Spec, model.Spec]:
    old, new = checked({"spec.mailspec": render(a)}), checked({"spec.mailspec": render(b)})
    assume(old is not None and new is not None)  # a mutation may make a spec the checker refuses
    return old, new


# ---------------------------------------------------------------- what the diff speaks for

def _forms(spec: model.Spec, address: str) -> set[str]:
    """The address as the diff may name it: lower-cased, without its extension, in its real domain."""
    real = model.alias_domains(spec.domains)
    local, _, domain = address.lower().rpartition("@")
    found = set()
    for form in (local, split_extension(local, spec.server.recipient_delimiter)[0]):
        found |= {f"{form}@{domain}", str(model.canonical(model.Address(form, domain), real))}
    return found


def covered(address: str, found, old: model.Spec, new: model.Spec) -> bool:
    named = {a.address for a in found.addresses}
    if address.lower().rpartition("@")[2] in {d.domain for d in found.domains}:
        return True
    return bool((_forms(old, address) | _forms(new, address)) & named)


def same(delivery, resolution) -> bool:
    return set(delivery.recipients) == set(resolution.recipients) and delivery.rejected == resolution.rejected


@PROPERTY
@given(PAIRS)
def test_the_receiving_section_agrees_with_resolve_on_both_sides(specs):
    old, new = pair(*specs)
    found = diff(old, new)
    for entry in found.addresses:
        assert same(entry.before, resolve(old, entry.address)), entry
        assert same(entry.after, resolve(new, entry.address)), entry
        local, _, domain = entry.address.rpartition("@")
        for side, delivery in ((old, entry.tagged_before), (new, entry.tagged_after)):
            delimiter = side.server.recipient_delimiter
            assert same(delivery, resolve(side, f"{split_extension(local, delimiter)[0]}{delimiter}tag@{domain}"))
        assert entry.before != entry.after or entry.tagged_before != entry.tagged_after
    for entry in found.domains:
        assert same(entry.before.unknown, resolve(old, f"{PROBE}@{entry.domain}")), entry
        assert same(entry.after.unknown, resolve(new, f"{PROBE}@{entry.domain}")), entry
    for address in sorted(set(addresses(specs[0])) | set(addresses(specs[1]))):
        if resolve(old, address) != resolve(new, address):
            assert covered(address, found, old, new), (address, resolve(old, address), resolve(new, address),
                                                       render(specs[0]), render(specs[1]))


ANYWHERE = "someone@unlisted.example"  # a recipient no generated filter refuses


def may_send_as(spec: model.Spec, login: str, sender: str) -> bool:
    return may_send(spec, login, sender, ANYWHERE).accepted


@PROPERTY
@given(PAIRS)
def test_the_sending_section_agrees_with_may_send(specs):
    """Generated specs refuse no sender, so may_send to an address nobody filters
    decides on the login's rights alone."""
    old, new = pair(*specs)
    found = diff(old, new)
    listed = {c.subject: c for c in found.section("sending")}
    for login, change in listed.items():
        for side, text in ((old, change.before), (new, change.after)):
            for address in filter(None, text.replace("no login", "").split(", ")):
                assert may_send_as(side, login, address), (login, address)
    logins = sorted({str(d.address(m.local)) for s in (old, new) for d in s.domains for m in d.mailboxes})
    for address in sorted(set(addresses(specs[0])) | set(addresses(specs[1]))):
        for login in logins:
            if may_send_as(old, login, address) != may_send_as(new, login, address):
                assert login in listed, (login, address)


def meaningless(found) -> list:
    return [*found.addresses, *found.domains, *found.changes]


@PROPERTY
@given(SPECS, st.integers(0, 1000), st.integers(0, 1000))
def test_a_spec_against_itself_formatted_or_reordered_is_no_change(spec, first, second):
    files = render_files(spec, first)
    formatted = {name: format_text(name, text) for name, text in render_files(spec, second).items()}
    one, other = checked(files), checked(formatted)
    assert one is not None and other is not None
    assert meaningless(diff(one, one)) == []
    assert meaningless(diff(one, other)) == []
    assert meaningless(diff(other, checked({"spec.mailspec": render(spec, first)}))) == []


def _plain(change) -> tuple:
    return change.section, change.subject, change.before, change.after, change.added, change.removed


@PROPERTY
@given(PAIRS)
def test_a_diff_backwards_mirrors_it(specs):
    old, new = pair(*specs)
    forwards, backwards = diff(old, new), diff(new, old)
    assert {(a.address, a.before, a.after) for a in forwards.addresses} == \
        {(a.address, a.after, a.before) for a in backwards.addresses}
    assert {(d.domain, d.before, d.after) for d in forwards.domains} == \
        {(d.domain, d.after, d.before) for d in backwards.domains}
    assert {_plain(c) for c in forwards.changes} == \
        {(c.section, c.subject, c.after, c.before, c.removed, c.added) for c in backwards.changes}


# ---------------------------------------------------------------- the command

HASH = "{BLF-CRYPT}$2b$12$kzG3XsKKk69ThdbfVMwX1eMWZHKJwDAyAU8QZJ9F/TLmMkWvtFQ1."
OLD = f"""server {{ hostname mail.example.com }}
domain example.com {{
  mailbox alice {{ password "{HASH}" }}
  mailbox bob {{ password "{HASH}" }}
  alias sales -> alice
}}
"""
NEW = OLD.replace("alias sales -> alice", "alias sales -> alice, partner@elsewhere.example").replace(
    f'mailbox bob {{ password "{HASH}" }}', f'mailbox bob {{ password "{HASH}"; send_as sales }}')


def mailspec(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailspec", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def two(tmp_path):
    (tmp_path / "old.mailspec").write_text(OLD)
    (tmp_path / "new.mailspec").write_text(NEW)
    return tmp_path


def test_markdown_has_the_summary_first_and_the_declarations(two):
    shown = mailspec("diff", "old.mailspec", "new.mailspec", "--format", "markdown", cwd=two)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[2] == "**1 address changes delivery, 1 new external destination, 1 widened send-as right**", \
        lines[:3]
    assert ("| `sales@example.com` | alice@example.com | alice@example.com, partner@elsewhere.example | "
            "⚠️ now leaves the organisation: partner@elsewhere.example | old.mailspec:5:3, new.mailspec:5:3 |"
            in lines), shown.stdout
    assert any(line.startswith("| `bob@example.com` |") and "may now send as sales@example.com" in line
               for line in lines), shown.stdout
    assert "| postfix | 0 | " in shown.stdout


def test_json_and_the_exit_code(two):
    shown = mailspec("diff", "old.mailspec", "new.mailspec", "--format", "json", "--exit-code", cwd=two)
    assert shown.returncode == 1, shown.stderr
    document = json.loads(shown.stdout)
    assert document["changed"] is True
    [entry] = document["receiving"]
    assert entry["address"] == "sales@example.com" and entry["newly_external"] == ["partner@elsewhere.example"]
    assert entry["after"]["recipients"] == ["alice@example.com", "partner@elsewhere.example"]
    assert {"side": "new", "file": "new.mailspec", "line": 5, "column": 3} in entry["where"]
    same = mailspec("diff", "old.mailspec", "old.mailspec", "--exit-code", cwd=two)
    assert same.returncode == 0 and same.stdout == "no change in meaning\n", same.stdout + same.stderr


def test_a_spec_with_errors_gets_its_diagnostics_and_exit_2(two):
    (two / "new.mailspec").write_text(NEW.replace("alias sales", "alias sales -> nobody\n  alias other"))
    shown = mailspec("diff", "old.mailspec", "new.mailspec", cwd=two)
    assert shown.returncode == 2 and "error[E0401]" in shown.stderr and not shown.stdout, shown.stderr
    assert "Traceback" not in shown.stderr
    missing = mailspec("diff", "old.mailspec", "gone.mailspec", cwd=two)
    assert missing.returncode == 2 and "gone.mailspec" in missing.stderr and "Traceback" not in missing.stderr


def git(repository: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


def test_git_revisions_of_a_spec_with_imports(tmp_path):
    (tmp_path / "domains").mkdir()
    root = 'server { hostname mail.example.com }\nimport "domains/example.com.mailspec"\n'
    (tmp_path / "site.mailspec").write_text(root)
    (tmp_path / "domains" / "example.com.mailspec").write_text(OLD.split("\n", 1)[1])
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "first")
    (tmp_path / "domains" / "example.com.mailspec").write_text(NEW.split("\n", 1)[1])
    worktree = mailspec("diff", "--git", "site.mailspec", "--format", "json", cwd=tmp_path)  # HEAD vs the work tree
    assert worktree.returncode == 0, worktree.stderr
    [entry] = json.loads(worktree.stdout)["receiving"]
    assert {w["file"] for w in entry["where"]} == {"HEAD:domains/example.com.mailspec",
                                                   str(Path("domains/example.com.mailspec"))}, entry["where"]
    git(tmp_path, "commit", "-qam", "second")
    between = mailspec("diff", "--git", "HEAD~1..HEAD", "site.mailspec", "--exit-code", cwd=tmp_path)
    assert between.returncode == 1 and "sales@example.com" in between.stdout, between.stdout + between.stderr
    assert mailspec("diff", "--git", "site.mailspec", "--exit-code", cwd=tmp_path).returncode == 0
    unknown = mailspec("diff", "--git", "nosuch..HEAD", "site.mailspec", cwd=tmp_path)
    assert unknown.returncode == 2 and "error:" in unknown.stderr and "Traceback" not in unknown.stderr


def test_errors_at_a_revision_are_shown_by_revision_and_path(tmp_path):
    (tmp_path / "domains").mkdir()
    (tmp_path / "site.mailspec").write_text('server { hostname mail.example.com }\nimport "domains/a.mailspec"\n'
                                            'import "domains/gone.mailspec"\n')
    (tmp_path / "domains" / "a.mailspec").write_text("domain example.com {\n  alias sales -> nobody\n}\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "an import that is not there")
    shown = mailspec("diff", "--git", "site.mailspec", cwd=tmp_path)
    assert shown.returncode == 2 and "error[E0201]" in shown.stderr, shown.stderr
    # The error points at the file as it is in the revision, and names the file it
    # could not read the same way; never the temporary tree.
    assert "--> HEAD:site.mailspec:3:8" in shown.stderr, shown.stderr
    assert "`HEAD:domains/gone.mailspec`" in shown.stderr, shown.stderr
    assert "mailspec-diff-" not in shown.stderr and tempfile.gettempdir() not in shown.stderr, shown.stderr
    (tmp_path / "site.mailspec").write_text('server { hostname mail.example.com }\nimport "domains/a.mailspec"\n')
    git(tmp_path, "commit", "-qam", "an alias to no one")
    shown = mailspec("diff", "--git", "site.mailspec", cwd=tmp_path)
    assert shown.returncode == 2 and "--> HEAD:domains/a.mailspec:2:" in shown.stderr, shown.stderr
    assert "mailspec-diff-" not in shown.stderr, shown.stderr


def test_text_for_a_pipe_has_no_colour_codes(two):
    shown = mailspec("diff", "old.mailspec", "new.mailspec", cwd=two)
    assert shown.returncode == 0 and "\x1b[" not in shown.stdout, shown.stdout
    assert "  sales@example.com  (old.mailspec:5:3, new.mailspec:5:3)\n" in shown.stdout
    assert "    ! now leaves the organisation: partner@elsewhere.example\n" in shown.stdout


RICH_OLD = f"""server {{ hostname mail.example.com; networks 192.0.2.0/24; spam {{ mark 6; reject 15 }} }}
domain example.com {{
  mailbox alice {{ password "{HASH}"; quota 1 GiB }}
  mailbox bob {{ password "{HASH}" }}
  list team {{ members alice, bob; post members }}
}}
"""
RICH_NEW = f"""server {{
  hostname mail.example.com; networks 192.0.2.0/24, 198.51.100.0/24; spam {{ mark 6; reject 20 }}
}}
domain example.com {{
  dkim no
  mailbox alice {{ password "{HASH}"; quota 2 GiB
    sieve {{ if header "subject" contains "offer" {{ redirect "deals@elsewhere.example" }} }}
  }}
  mailbox bob {{ password "{HASH}" }}
  list team {{ members alice, bob, carol@partner.example; post anyone }}
}}
"""


def test_each_section_reports_its_changes_and_what_widens(tmp_path):
    found = diff(checked({"spec.mailspec": RICH_OLD}), checked({"spec.mailspec": RICH_NEW}))
    shown = {(c.section, c.subject): (c.before, c.after, c.risky, c.added) for c in found.changes}
    assert shown[("lists", "team@example.com members")][3] == ("carol@partner.example",)
    assert shown[("lists", "team@example.com post")][:3] == ("members", "anyone", "more may post (anyone)")
    assert shown[("limits", "alice@example.com quota")][:2] == ("1 GiB", "2 GiB")
    assert shown[("sieve", "alice@example.com")][3] == (
        'if header subject contains "offer": redirect message to: <deals@elsewhere.example>',)
    assert shown[("server", "networks")][2] == "trusts 198.51.100.0/24: its clients may relay and send as anyone"
    assert shown[("server", "spam.reject")][:3] == ("15", "20", "refuses less spam")
    assert shown[("server", "example.com dkim.sign")][2] == "its mail is no longer signed"
    alice = next(a for a in found.addresses if a.address == "alice@example.com")
    assert alice.after.redirects == ("deals@elsewhere.example",)
    assert alice.newly_external == ("deals@elsewhere.example",)
    team = next(a for a in found.addresses if a.address == "team@example.com")
    assert set(team.newly_external) == {"carol@partner.example", "deals@elsewhere.example"}
