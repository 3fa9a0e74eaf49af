"""Nothing a user types or points mailspec at can hurt them: the bad-input findings of
issue 11, one named test each (the deploy directory's are in test_deploydir.py, the
compiled server's in test_host_security.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from conftest import need_root
from hypothesis import given
from hypothesis import strategies as st
from test_cli import mailspec

SERVER = "server { hostname mail.example.com }\n"


def spec(directory, text: str, name: str = "site.mailspec"):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------- item 2: what may be read


@pytest.mark.parametrize("target", ["/proc/self/environ", "/etc/shadow", "../outside.mailspec"])
def test_imports_stay_inside_the_spec_tree_and_are_not_echoed(tmp_path, target):
    (tmp_path / "outside.mailspec").write_text("SECRET=hunter2\n")
    root = spec(tmp_path / "repo", f'import "{target}"\n' + SERVER)
    run = mailspec("check", str(root))
    assert run.returncode == 1 and "E0205" in run.stderr and "--import-root" in run.stderr
    assert "SECRET" not in run.stderr and "root:" not in run.stderr and "PATH=" not in run.stderr


def test_import_root_allows_another_tree(tmp_path):
    spec(tmp_path / "shared", "domain shared.example { mailbox a { } }\n", "domains.mailspec")
    root = spec(tmp_path / "repo", 'import "../shared/domains.mailspec"\n' + SERVER)
    assert mailspec("check", str(root)).returncode == 1
    allowed = mailspec("check", "--import-root", str(tmp_path / "shared"), str(root))
    assert "E0205" not in allowed.stderr, allowed.stderr


def test_a_file_that_is_not_a_spec_is_not_echoed(tmp_path):
    spec(tmp_path, "root:$y$j9T$secrethash:19000:0:99999:7:::\n", "shadow.mailspec")
    spec(tmp_path, "A=1\0B=2\0", "environ.mailspec")
    root = spec(tmp_path, 'import "shadow.mailspec"\nimport "environ.mailspec"\n' + SERVER)
    run = mailspec("check", str(root))
    assert run.returncode == 1 and run.stderr.count("E0206") == 2
    assert "secrethash" not in run.stderr and "B=2" not in run.stderr
    spec(tmp_path, "sever { hostname a.example }\n", "typo.mailspec")
    importer = spec(tmp_path, 'import "typo.mailspec"\n' + SERVER, "importer.mailspec")
    assert "sever {" in mailspec("check", str(importer)).stderr  # a spec with a mistake is shown
    assert "secrethash" in mailspec("check", str(tmp_path / "shadow.mailspec")).stderr  # named by the user


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "huge"])
def test_only_regular_files_of_bounded_size_are_read(tmp_path, kind):
    target = tmp_path / "repo" / "other.mailspec"
    target.parent.mkdir()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        target.symlink_to("/dev/zero")
    elif kind == "directory":
        target.mkdir()
    else:
        with open(target, "wb") as handle:
            handle.truncate(65 * 1024 * 1024)  # sparse: costs no disk
    root = spec(tmp_path / "repo", 'import "other.mailspec"\n' + SERVER)
    run = mailspec("check", str(root), timeout=60)  # a FIFO must never block
    assert run.returncode == 1, run.stderr
    assert "E0201" in run.stderr or "E0205" in run.stderr
    direct = mailspec("check", str(target))
    assert direct.returncode == 2 and "Traceback" not in direct.stderr


def test_root_from_stdin_is_refused():
    run = subprocess.run([sys.executable, "-m", "mailspec", "check", "/dev/stdin"], input=SERVER,
                         capture_output=True, text=True)
    assert run.returncode == 2 and "not a regular file" in run.stderr


def test_password_files_follow_the_import_rules(tmp_path):
    (tmp_path / "secret.hash").write_text("{PLAIN}x\n")
    text = SERVER.replace("{", "{{").replace("}", "}}") + \
        'domain example.com {{ mailbox a {{ password_file "{}" }} }}\n'
    for path, expected in (("/etc/shadow", "outside the spec's directory"),
                           ("../secret.hash", "outside the spec's directory"),
                           ("/dev/zero", "outside the spec's directory")):
        run = mailspec("check", str(spec(tmp_path / "repo", text.format(path))))
        assert run.returncode == 1 and "E0308" in run.stderr and expected in run.stderr, run.stderr
    os.mkfifo(tmp_path / "repo" / "fifo.hash")
    run = mailspec("check", str(spec(tmp_path / "repo", text.format("fifo.hash"))))
    assert run.returncode == 1 and "not a regular file" in run.stderr


def test_non_utf8_root_names_the_byte(tmp_path):
    path = tmp_path / "latin1.mailspec"
    path.write_bytes(b"server { hostname mail.example.com }\n# caf\xe9\n")
    run = mailspec("check", str(path))
    assert run.returncode == 2 and "byte 42" in run.stderr and "0xe9" in run.stderr


# ---------------------------------------------------------------- item 3: fmt writes safely


def test_fmt_never_writes_through_a_planted_link_and_keeps_the_mode(tmp_path):
    target = spec(tmp_path, "server {hostname mail.example.com}\n")
    target.chmod(0o600)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "site.mailspec.mailspec-fmt").symlink_to(victim)  # the old predictable name
    run = mailspec("fmt", str(target))
    assert run.returncode == 0, run.stderr
    assert victim.read_text() == "precious"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text() == "server {\n  hostname mail.example.com\n}\n"
    assert sorted(os.listdir(tmp_path)) == ["site.mailspec", "site.mailspec.mailspec-fmt", "victim"]


def test_fmt_refuses_to_replace_a_symlink(tmp_path):
    real = spec(tmp_path, "server {hostname mail.example.com}\n", "real.mailspec")
    link = tmp_path / "link.mailspec"
    link.symlink_to(real)
    run = mailspec("fmt", str(link))
    assert run.returncode == 2 and "symbolic link" in run.stderr
    assert link.is_symlink() and real.read_text() == "server {hostname mail.example.com}\n"


def test_fmt_keeps_the_owner(tmp_path):
    need_root()
    target = spec(tmp_path, "server {hostname mail.example.com}\n")
    os.chown(target, 65534, 65534)
    assert mailspec("fmt", str(target)).returncode == 0
    assert (target.stat().st_uid, target.stat().st_gid) == (65534, 65534)


# ---------------------------------------------------------------- items 6, 10-12: values the daemons get


def check_text(tmp_path, text: str):
    from mailspec.pipeline import check

    return check([str(spec(tmp_path, text))])


def codes(result) -> list[str]:
    return sorted(d.code for d in result.diagnostics)


@pytest.mark.parametrize("networks", ["0.0.0.0/0", "[::]/0", "0.0.0.0/1, 128.0.0.0/1", "10.0.0.0/7",
                                      "[2001:db8::]/31"])
def test_networks_wider_than_a_slash_8_are_refused(tmp_path, networks):
    result = check_text(tmp_path, f"server {{ hostname mail.example.com; networks {networks} }}\n")
    assert not result.ok and set(codes(result)) == {"E0314"}


def test_a_wide_network_written_unsafe_is_trusted_with_a_warning(tmp_path):
    result = check_text(tmp_path, "server { hostname mail.example.com; networks unsafe 0.0.0.0/0 }\n")
    assert result.ok and codes(result) == ["W0315"]
    assert result.spec.server.networks == ("0.0.0.0/0",)


def test_host_bits_in_a_network_are_refused(tmp_path):
    result = check_text(tmp_path, "server { hostname mail.example.com; networks 10.1.2.3/8 }\n")
    (diagnostic,) = result.diagnostics
    assert "host bits" in diagnostic.message and "10.0.0.0/8" in diagnostic.help
    assert "10.1.2.3/32" in diagnostic.help
    ok = check_text(tmp_path, "server { hostname mail.example.com; networks 10.0.0.0/8, [2001:db8::]/48 }\n")
    assert ok.ok and ok.spec.server.networks == ("10.0.0.0/8", "[2001:db8::]/48")


@pytest.mark.parametrize("text", [
    "server { hostname mail.example.com; message_size_limit 0 B }",
    "server { hostname mail.example.com } domain example.com { mailbox a { quota 0 B } }",
    "server { hostname mail.example.com } domain example.com { limits { message_size 0 KiB } }",
    "server { hostname mail.example.com } domain example.com { limits { quota 0 GiB } }",
])
def test_zero_limits_are_refused_not_unlimited(tmp_path, text):
    result = check_text(tmp_path, text + "\n")
    assert not result.ok and "would refuse everything" in result.diagnostics[0].message


@pytest.mark.parametrize("text", [
    "server { hostname mail.example.com; message_size_limit 1000000000000000000000000000000 B }",
    "server { hostname mail.example.com } domain example.com { mailbox a { quota 1025 TiB } }",
    'server { hostname mail.example.com } '
    'domain example.com { mailbox a { sieve { if size over 2000 TiB { discard } } } }',
])
def test_sizes_have_an_upper_bound(tmp_path, text):
    result = check_text(tmp_path, text + "\n")
    assert not result.ok and "larger than 1 PiB" in result.diagnostics[0].message


@pytest.mark.parametrize("text", ['mailbox "#x" { }', 'alias "#sales" -> a', "mailbox a { aliases \"#x\" }",
                                  'list l { members a, "#y@outside.example" }'])
def test_a_local_part_never_starts_with_a_hash(tmp_path, text):
    result = check_text(tmp_path, SERVER + f"domain example.com {{ mailbox a {{ }} {text} }}\n")
    assert not result.ok and any("starts with `#`" in d.message for d in result.diagnostics)


@pytest.mark.parametrize("setting", ['backend mysql { socket "/run/my sql.sock"; database m; user u; '
                                     'password_file "/etc/mailspec/mysql.cnf" }',
                                     'backend mysql { socket "/run/mysqld.sock"; database m; user u; '
                                     'password_file "/etc/x dbname=other" }',
                                     'tls { cert "/etc/ssl/a b.pem"; key "/etc/ssl/k.key" }',
                                     'tls { cert "relative.pem"; key "/etc/ssl/k.key" }'])
def test_paths_that_reach_daemon_files_are_plain(tmp_path, setting):
    result = check_text(tmp_path, f"server {{ hostname mail.example.com\n{setting} }}\n")
    assert not result.ok and "cannot be written into the daemons' configuration" in result.diagnostics[0].message


def test_a_newline_in_the_prefix_is_refused(tmp_path):
    run = mailspec("compile", str(spec(tmp_path, SERVER)), "-o", str(tmp_path / "out"),
                   "--prefix", "/tmp/x\nmynetworks = 0.0.0.0/0")
    assert run.returncode == 2 and "--prefix" in run.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("location", ["maildir:/var/mail/all", "maildir:/var/mail/%d", "maildir:/var/mail/%n",
                                      "mdbox:/srv/mail/shared:INDEX=/var/idx/%u"])
def test_a_mail_location_without_a_per_user_part_is_refused(tmp_path, location):
    result = check_text(tmp_path, f'server {{ hostname mail.example.com; mail_location "{location}" }}\n')
    assert not result.ok and "several users' mail" in result.diagnostics[0].message
    for good in ("maildir:/var/mail/%d/%n", "maildir:/var/mail/%u", "sdbox:/srv/%Ld/%Ln"):
        assert check_text(tmp_path, f'server {{ hostname mail.example.com; mail_location "{good}" }}\n').ok


def test_a_tls_key_without_a_certificate_is_refused(tmp_path):
    result = check_text(tmp_path, 'server { hostname mail.example.com; tls { key "/etc/ssl/private/k.key" } }\n')
    assert not result.ok and codes(result) == ["E0316"]


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f", "\u202e", "\u2066"])
def test_control_characters_are_refused_and_shown_escaped(tmp_path, char):
    text = (f'server {{ hostname mail.example.com }}\ndomain example.com {{ mailbox a {{ sieve {{ '
            f'if header "subject" contains "x{char}y" {{ discard }} }} }} }}\n')
    path = tmp_path / "site.mailspec"
    path.write_text(text)
    run = mailspec("check", str(path))
    assert run.returncode == 1 and "E0105" in run.stderr and f"<U+{ord(char):04X}>" in run.stderr
    assert char not in run.stderr


def test_a_byte_order_mark_has_its_own_message(tmp_path):
    path = tmp_path / "site.mailspec"
    path.write_text("\ufeff" + SERVER)
    run = mailspec("check", str(path))
    assert run.returncode == 1 and "E0106" in run.stderr and "byte-order mark" in run.stderr


def test_a_huge_bad_word_prints_a_bounded_diagnostic(tmp_path):
    path = tmp_path / "site.mailspec"
    path.write_text("server { hostname " + "x" * 10_000_000 + "$ }\n")
    run = mailspec("check", str(path))
    assert run.returncode == 1 and len(run.stderr) < 2000, len(run.stderr)
    too_long = tmp_path / "word.mailspec"
    too_long.write_text(SERVER + "domain " + "y" * 1_000_000 + ".example { }\n")
    run = mailspec("check", str(too_long))
    assert run.returncode == 1 and len(run.stderr) < 2000, len(run.stderr)


# ---------------------------------------------------------------- items 14, 15: depth and speed


NESTED = {
    "sieve ifs": "domain a.example {{ mailbox a {{ sieve {{ {open}keep; {close} }} }} }}",
    "nots": "domain a.example {{ mailbox a {{ sieve {{ if {nots}true {{ keep }} }} }} }}",
    "allofs": "domain a.example {{ mailbox a {{ sieve {{ if {allofs}true{parens} {{ keep }} }} }} }}",
    "braces": "domain a.example {{ {domains}{closes} }}",
}


@pytest.mark.parametrize("kind", NESTED)
def test_deep_nesting_gets_a_diagnostic_not_a_crash(tmp_path, kind):
    n = 1000
    body = NESTED[kind].format(open="if true { " * n, close="} " * n, nots="not " * n, allofs="allof( " * n,
                               parens=")" * n, domains="limits { " * n, closes="} " * n)
    run = mailspec("check", str(spec(tmp_path, SERVER + body + "\n")))
    assert run.returncode == 1 and "E0107" in run.stderr, run.stderr[-2000:]


def test_a_long_import_chain_gets_a_diagnostic(tmp_path):
    for i in range(1, 490):
        spec(tmp_path, f'import "f{i + 1}.mailspec"\n', f"f{i}.mailspec")
    spec(tmp_path, "domain a.example { }\n", "f490.mailspec")
    run = mailspec("check", str(spec(tmp_path, SERVER + 'import "f1.mailspec"\n')))
    assert run.returncode == 1 and "E0207" in run.stderr, run.stderr[-2000:]


def test_a_long_alias_chain_gets_a_diagnostic(tmp_path):
    aliases = "".join(f"  alias a{i} -> a{i + 1}\n" for i in range(1500))
    text = SERVER + f"domain a.example {{\n  mailbox m {{ }}\n{aliases}  alias a1500 -> m\n}}\n"
    run = mailspec("check", str(spec(tmp_path, text)))
    assert run.returncode == 1 and "E0420" in run.stderr, run.stderr[-2000:]
    short = "".join(f"  alias a{i} -> a{i + 1}\n" for i in range(20))
    text = SERVER + f"domain a.example {{\n  mailbox m {{ }}\n{short}  alias a20 -> m\n}}\n"
    run = mailspec("check", str(spec(tmp_path, text)))
    assert "E0420" not in run.stderr


@pytest.mark.parametrize("filler", [" " * 20_000, "# a comment\n" * 2_000])
def test_lexing_is_linear_before_a_bad_character(filler):
    """The lexer's one regex must cover the text in one pass: when it could not match
    at a bad character, it retried at every blank before it (quadratic; 30 s for 200,000
    spaces). Timings are in bench/compile.py."""
    from mailspec.syntax import tokens

    text = SERVER + filler + "$ rest"
    found = list(tokens("t", text))
    assert "".join(text[t.gap.start:t.gap.end] + t.text for t in found) == text
    assert [t.kind for t in found[-3:]] == ["OTHER", "WORD", "$END"]  # the bad character is a token


# ---------------------------------------------------------------- items 21, 22: small fixes and warnings

HASH = ("$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6ZDvuFWpUZ8hJTQ."
        "ivwSwz4/Ebzn.eKM.Tddy1")
BCRYPT = "$2y$05$abcdefghijklmnopqrstuuAbCdEfGhIjKlMnOpQrStUvWxYzAbC12"


def test_the_local_part_help_names_what_it_accepts(tmp_path):
    result = check_text(tmp_path, SERVER + 'domain example.com { mailbox "a:b" { } }\n')
    (diagnostic,) = [d for d in result.diagnostics if d.code == "E0304"]
    assert "'" in diagnostic.help and "- _ only" not in diagnostic.help
    assert check_text(tmp_path, SERVER + "domain example.com { mailbox \"o'neil\" { password \"{SHA512-CRYPT}"
                      + HASH + '" } }\n').ok


def test_a_lower_case_scheme_is_not_called_plaintext(tmp_path):
    result = check_text(tmp_path, SERVER + 'domain example.com { mailbox a { password "{blf-crypt}'
                        + BCRYPT.replace("$05$", "$12$") + '" } }\n')
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.spec.domains[0].mailboxes[0].password.scheme == "BLF-CRYPT"
    plain = check_text(tmp_path, SERVER + 'domain example.com { mailbox a { password "{plain}x" } }\n')
    assert not plain.ok and "plaintext" in plain.diagnostics[0].message


def test_a_root_imported_by_another_root_is_no_duplicate(tmp_path):
    root = spec(tmp_path, 'import "dom.mailspec"\n' + SERVER, "root.mailspec")
    dom = spec(tmp_path, "domain a.example { }\n", "dom.mailspec")
    for order in ((root, dom), (dom, root)):
        run = mailspec("check", *map(str, order))
        assert run.returncode == 0 and "E0202" not in run.stderr, run.stderr


def test_shipped_examples_and_the_readme_are_canonical(tmp_path):
    from conftest import ROOT

    from mailspec.fmt import format_text

    for path in sorted((ROOT / "examples").glob("*.mailspec")):
        assert format_text(str(path), path.read_text()) == path.read_text(), path
    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("## The language at a glance\n\n```\n", 1)[1].split("```", 1)[0]
    assert format_text("README.md", snippet) == snippet


def test_the_readme_lists_every_exit_code():
    from conftest import ROOT

    from mailspec.cli import EXIT_INTERNAL, EXIT_OK, EXIT_SPEC, EXIT_USAGE

    line = (ROOT / "README.md").read_text().split("Exit codes:", 1)[1].split("\n\n", 1)[0]
    for code in (EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL):
        assert f" {code} " in line, code


def test_an_auto_reply_that_has_ended_is_warned_about(tmp_path):
    text = SERVER + ('domain example.com { mailbox a { password "{SHA512-CRYPT}' + HASH + '"\n'
                     '  auto_reply { subject "Away"; body "Back soon."; until UNTIL } } }\n')
    assert "W0504" in codes(check_text(tmp_path, text.replace("UNTIL", "2020-01-31")))
    assert "W0504" not in codes(check_text(tmp_path, text.replace("UNTIL", "2999-01-31")))


def test_sieve_redirects_to_itself_and_back_and_forth_are_warned_about(tmp_path):
    box = 'mailbox {name} {{ password "{{SHA512-CRYPT}}' + HASH + '"; sieve {{ redirect "{to}" }} }}\n'
    itself = check_text(tmp_path, SERVER + "domain example.com {\n" + box.format(name="a", to="a@example.com") + "}\n")
    assert "W0505" in codes(itself)
    loop = check_text(tmp_path, SERVER + "domain example.com {\n" + box.format(name="a", to="b@example.com")
                      + box.format(name="b", to="a@example.com") + "}\n")
    assert codes(loop).count("W0506") == 1
    fine = check_text(tmp_path, SERVER + "domain example.com {\n" + box.format(name="a", to="b@example.com")
                      + box.format(name="b", to="c@outside.example") + "}\n")
    assert not {"W0505", "W0506"} & set(codes(fine))


def test_a_domain_that_mixes_scripts_is_warned_about(tmp_path):
    mixed = check_text(tmp_path, SERVER + "domain p\u0430ypal.example { }\n")  # a Cyrillic а
    assert "W0507" in codes(mixed)
    assert "W0507" not in codes(check_text(tmp_path, SERVER + "domain bücher.example { }\n"))
    assert "W0507" not in codes(check_text(tmp_path, SERVER + "domain пример.example { }\n"))


@pytest.mark.parametrize(("hashed", "weak"), [
    ("{BLF-CRYPT}" + BCRYPT.replace("$05$", "$04$"), True),
    ("{BLF-CRYPT}" + BCRYPT.replace("$05$", "$12$"), False),
    ("{SHA512-CRYPT}" + HASH.replace("$6$", "$6$rounds=1000$"), True),
    ("{SHA512-CRYPT}" + HASH, False),
    ("{ARGON2ID}$argon2id$v=19$m=4096,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", True),
    ("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", False),
])
def test_weak_hash_costs_are_warned_about(tmp_path, hashed, weak):
    result = check_text(tmp_path, SERVER + f'domain example.com {{ mailbox a {{ password "{hashed}" }} }}\n')
    assert result.ok and ("W0317" in codes(result)) == weak, codes(result)


# ---------------------------------------------------------------- item 18: the brace never closed


def test_an_unclosed_brace_points_at_the_brace_not_the_end(tmp_path):
    text = (SERVER + "domain example.com {\n  mailbox alice {\n    quota 1 GiB\n"
            "  mailbox bob {\n    quota 2 GiB\n  }\n}\n")
    result = check_text(tmp_path, text)
    (diagnostic,) = result.diagnostics
    primary = diagnostic.labels[0].span
    assert text[primary.start] == "{" and text.count("\n", 0, primary.start) == 2  # alice's brace
    secondary = diagnostic.labels[1].span
    assert text[secondary.start] == "}" and text.count("\n", 0, secondary.start) == 7  # the last line


# ---------------------------------------------------------------- item 17: every syntax error


def test_every_syntax_error_is_reported_not_just_the_first(tmp_path):
    text = (SERVER + "domain example.com {\n  mailbox alice { qouta 2 GiB }\n"
            '  mailbox bob { password "abc }\n  alias x -> y ^ z\n  list l { members a, b }\n'
            "  mailbx carol { }\n}\n")
    result = check_text(tmp_path, text)
    found = [(d.code, result.sources[d.labels[0].span.file].position(d.labels[0].span.start).line)
             for d in result.diagnostics]
    assert found == [("E0101", 3), ("E0103", 4), ("E0104", 5), ("E0101", 7)]


def test_syntax_errors_are_capped(tmp_path):
    lines = "".join(f"  mailbox m{i} {{ qouta{i} 1 }}\n" for i in range(40))
    result = check_text(tmp_path, SERVER + "domain a.example {\n" + lines + "}\n")
    assert len(result.diagnostics) == 20 and all(d.code == "E0101" for d in result.diagnostics)
    assert "stopped after 20 syntax errors" in result.diagnostics[-1].notes[-1]


_COMPONENTS = st.lists(st.sampled_from(["a", "ab", "b", "a.b", "..a", "b c"]), max_size=4)


@given(_COMPONENTS, _COMPONENTS)
def test_inside_agrees_with_commonpath_on_real_paths(path, directory):
    """`inside` is a prefix test for speed: it must say what commonpath says."""
    from mailspec.paths import inside

    path, directory = "/" + "/".join(path), "/" + "/".join(directory)
    assert inside(path, directory) == (os.path.commonpath([path, directory]) == directory)
