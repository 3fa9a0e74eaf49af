from mailspec.pipeline import check

HASH = ("{SHA512-CRYPT}$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6Z"
        "DvuFWpUZ8hJTQ.ivwSwz4/Ebzn.eKM.Tddy1")


def codes(tmp_path, body: str, server: str = "server { hostname mail.example.com }") -> list[str]:
    spec = tmp_path / "site.mailspec"
    spec.write_text(server + "\n" + body.replace("HASH", HASH))
    return sorted(d.code for d in check([str(spec)]).diagnostics)


def test_valid_spec_has_no_diagnostics(tmp_path):
    assert codes(tmp_path, 'domain example.com { mailbox alice { password "HASH" } }') == []


def test_all_errors_are_reported_together(tmp_path):
    found = codes(tmp_path, """
domain example.com {
  mailbox alice { password "HASH" }
  alias a -> nobody
  alias b -> c
  alias c -> b
  catch_all ghost
}""")
    assert found == ["E0401", "E0406", "E0407"]


def test_alias_in_domain_alias_resolves(tmp_path):
    assert codes(tmp_path, """
domain example.com { also example.net; mailbox alice { password "HASH" } }
domain other.example { alias x -> alice@example.net }""") == []


def test_external_targets_are_fine(tmp_path):
    assert codes(tmp_path, 'domain example.com { alias x -> someone@elsewhere.example }') == []


def test_send_as_external_needs_declaration(tmp_path):
    body = 'domain example.com { mailbox a { password "HASH"; send_as %s } }'
    assert codes(tmp_path, body % "me@gmail.example") == ["E0411"]
    assert codes(tmp_path, body % "external me@gmail.example") == []


def test_send_as_unknown_local_address(tmp_path):
    body = 'domain example.com { mailbox a { password "HASH"; send_as salse } alias sales -> a }'
    assert codes(tmp_path, body) == ["E0401"]


def test_announcer_must_be_member(tmp_path):
    body = """domain example.com {
      mailbox a { password "HASH" }  mailbox b { password "HASH" }
      list n { members a; post announcer; announcer %s } }"""
    assert codes(tmp_path, body % "b") == ["E0412"]
    assert codes(tmp_path, body % "a") == []


def test_sieve_conflicts_follow_paths(tmp_path):
    body = 'domain example.com { mailbox a { password "HASH"; sieve { %s } } }'
    assert codes(tmp_path, body % 'reject "no"; keep') == ["E0413"]
    assert codes(tmp_path, body % 'if true { reject "no"; stop } keep') == []
    assert codes(tmp_path, body % 'if true { reject "no" } else { fileinto "x" }') == []
    assert codes(tmp_path, body % 'vacation "a"; vacation "b"') == ["E0413"]


def test_auto_reply_conflicts_with_reject(tmp_path):
    body = ('domain example.com { mailbox a { password "HASH"; '
            'auto_reply { subject "s"; body "b" } sieve { reject "no" } } }')
    assert codes(tmp_path, body) == ["E0413"]


def test_limits(tmp_path):
    body = """domain example.com { limits { mailboxes 2; quota 3 GiB }
      mailbox a { password "HASH"; quota 2 GiB } mailbox b { password "HASH"; quota 1 GiB } }"""
    assert codes(tmp_path, body) == []
    assert codes(tmp_path, body.replace("quota 1 GiB", "quota 2 GiB")) == ["E0408"]
    assert codes(tmp_path, body.replace("mailboxes 2", "mailboxes 1")) == ["E0409"]


def test_warnings_do_not_fail(tmp_path):
    spec = tmp_path / "site.mailspec"
    spec.write_text("server { hostname mail.example.com }\ndomain example.com { mailbox a { } }")
    result = check([str(spec)])
    assert [d.code for d in result.diagnostics] == ["W0501"]
    assert result.ok


def test_unreachable_alias_warning(tmp_path):
    server = "server { hostname m.example.com; filters { reject_recipient old@example.com } }"
    body = 'domain example.com { mailbox a { password "HASH" } alias old -> a }'
    assert codes(tmp_path, body, server) == ["W0502"]


def test_idna_domain_is_lowered_to_a_label(tmp_path):
    spec = tmp_path / "site.mailspec"
    spec.write_text('server { hostname mail.example.com }\ndomain bücher.example { }')
    result = check([str(spec)])
    assert [d.name for d in result.spec.domains] == ["xn--bcher-kva.example"]
