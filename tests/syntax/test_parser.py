import pytest

from mailspec.diagnostics import SpecError
from mailspec.syntax import Entry, SieveNode, parse


def keys(nodes):
    return [n.key for n in nodes if isinstance(n, Entry)]


def test_statements_values_and_blocks():
    nodes = parse("t", 'server { hostname mail.example.com; networks 10.0.0.0/8, [::1]/128 }')
    (server,) = nodes
    assert server.key == "server" and server.values == ()
    assert keys(server.body) == ["hostname", "networks"]
    networks = server.body[1]
    assert [v.text for v in networks.values] == ["10.0.0.0/8", "[::1]/128"]


def test_multi_word_values_and_strings():
    (entry,) = parse("t", 'quota 2 GiB')
    assert [w.value for w in entry.values[0].words] == ["2", "GiB"]
    (entry,) = parse("t", r'subject "Say \"hi\"\n"')
    assert entry.values[0].words[0].value == 'Say "hi"\n'
    assert entry.values[0].words[0].quoted


def test_arrow_targets():
    (entry,) = parse("t", "alias sales -> alice, bob@example.net")
    assert entry.values[0].text == "sales"
    assert [v.text for v in entry.targets] == ["alice", "bob@example.net"]


def test_keyword_as_value_on_the_same_line():
    (entry,) = parse("t", "list team { post announcer; announcer boss }")
    post, announcer = entry.body
    assert (post.key, post.values[0].text) == ("post", "announcer")
    assert (announcer.key, announcer.values[0].text) == ("announcer", "boss")


def test_flag_then_keyword_on_the_next_line():
    (entry,) = parse("t", "mailbox a {\n  keep_copy\n  send_only\n}")
    assert keys(entry.body) == ["keep_copy", "send_only"]
    assert all(e.values == () for e in entry.body)


def test_spans_point_at_the_text():
    text = "domain example.com {\n  mailbox alice { }\n}"
    (domain,) = parse("t", text)
    mailbox = domain.body[0]
    assert text[mailbox.span.start:mailbox.span.end] == "mailbox alice { }"
    assert text[mailbox.key_span.start:mailbox.key_span.end] == "mailbox"


def test_comments_and_semicolons_are_ignored():
    nodes = parse("t", "# a comment\n;;server { hostname a.example; # trailing\n };")
    assert keys(nodes) == ["server"]


def test_sieve_block():
    (entry,) = parse("t", 'mailbox a { sieve { if header "subject" contains "x" { fileinto "J"; stop } '
                          'else { keep } } }')
    (sieve,) = entry.body
    assert isinstance(sieve, SieveNode) and sieve.kind == "sieve_block"
    (if_command,) = sieve.children[0]
    test, body, otherwise = if_command.children
    assert test.kind == "header_test" and [t.value for t in test.texts] == ["subject", "contains", "x"]
    assert [c.kind for c in body] == ["fileinto", "stop"]
    assert otherwise.kind == "else_branch"


@pytest.mark.parametrize("text, code, where", [
    ("domain x { mailbox a { qouta 2 } }", "E0101", "qouta"),
    ("domain x {", "E0102", "{"),  # the brace that is never closed
    ('hostname "abc', "E0103", '"'),
    ("hostname a ^", "E0104", "^"),
])
def test_syntax_errors(text, code, where):
    with pytest.raises(SpecError) as caught:
        parse("t", text)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == code
    span = diagnostic.primary_span
    assert text[span.start:span.end] == where


def test_typo_gets_a_suggestion():
    with pytest.raises(SpecError) as caught:
        parse("t", "domain x { mailbox a { qouta 2 } }")
    assert caught.value.diagnostics[0].help == "did you mean `quota`?"
