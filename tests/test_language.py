"""The language schema (mailspec/language.py) is the one description of the language:
the model, the lowering, the grammar and the messages agree with it."""

from __future__ import annotations

import re

import attrs
import pytest

from mailspec import language
from mailspec.diagnostics import did_you_mean
from mailspec.fmt import format_text
from mailspec.language import BLOCKS, Custom, Nested
from mailspec.lower.lower import Lowerer
from mailspec.pipeline import check
from mailspec.syntax import grammar, parse, statement_words

KEYWORDS = [(b, k) for b in BLOCKS.values() for k in b.keywords]
HASH_FILE = "secrets/alice.hash"


@pytest.mark.parametrize("block, keyword", KEYWORDS, ids=lambda x: getattr(x, "name", ""))
def test_each_keyword_fills_a_model_field_and_says_what_it_is(block, keyword):
    assert keyword.about and keyword.example.startswith(keyword.name + " ") or keyword.example == keyword.name
    if block.model is not None:
        assert keyword.field in attrs.fields_dict(block.model), (block.name, keyword.name)
        if keyword.name not in block.required:  # what a spec does not say has a default
            assert block.default(keyword) is not attrs.NOTHING, keyword.name
    if isinstance(keyword.takes, Custom):
        assert callable(getattr(Lowerer, keyword.takes.method, None)), keyword.takes.method
    if isinstance(keyword.takes, Nested):
        assert BLOCKS[keyword.block].model is not None
    if keyword.block is not None:
        assert keyword.block in BLOCKS
    assert (keyword.order is not None) == (keyword.repeats and block.model is not None), keyword.name


def test_every_block_is_reachable_from_the_top_level():
    reached, todo = set(), [language.TOP.name]
    while todo:
        name = todo.pop()
        reached.add(name)
        todo += [k.block for k in BLOCKS[name].keywords if k.block and k.block not in reached]
    assert reached == set(BLOCKS)


def test_the_grammar_takes_its_statement_keywords_from_the_schema():
    written = (language.__file__.replace("mailspec/language.py", "grammar/mailspec.lark"))
    hand_written = re.findall(r'"(\w+)"', open(written, encoding="utf-8").read().split("!key:")[1].split("\n")[0])
    assert hand_written == []  # the rule's line holds only the placeholder
    assert "!key: KEYWORDS" not in grammar.text()
    assert statement_words() == frozenset(language.statement_keywords()) | {"sieve"}


def _statement(keyword, skip: set[str], depth: int = 0) -> str:
    """A keyword's example; a block keyword's `{ }` holds every keyword of its block."""
    if keyword.block is None:
        return "  " * depth + keyword.example
    head = keyword.example.split("{")[0].rstrip()
    inner = [_statement(k, skip, depth + 1) for k in BLOCKS[keyword.block].keywords
             if k.name not in skip and f"{keyword.name}.{k.name}" not in skip]
    return "\n".join(["  " * depth + head + " {", *inner, "  " * depth + "}"])


# Two specs between them hold every keyword but `import` (it needs a second file, and
# tests/lower has its own tests). The checker refuses `host` with `socket` (E0419) and
# mail to a send_only mailbox (E0415), and `acme` with the tls block's `cert` and `key`
# (E0318), so those go into the second spec. `block.keyword` skips one keyword of a block.
EVERY_KEYWORD = [
    {"import", "socket", "send_only", "acme"},
    {"import", "host", "port", "catch_all", "alias", "list", "aliases", "send_as", "tls.cert", "tls.key"},
]


@pytest.mark.parametrize("skip", EVERY_KEYWORD, ids=["host", "socket"])
def test_a_spec_of_every_keyword_checks_and_formats(tmp_path, skip):
    """Every example of the schema, each in its block, makes a spec that checks without
    errors: the examples are real, and each keyword reaches the model."""
    text = "\n".join(_statement(k, skip) for k in language.TOP.keywords if k.name not in skip) + "\n"
    (tmp_path / "secrets").mkdir()
    (tmp_path / HASH_FILE).write_text(language._EXAMPLE_HASH + "\n")
    spec_file = tmp_path / "spec.mailspec"
    spec_file.write_text(text)
    result = check([str(spec_file)])
    assert [d for d in result.diagnostics if d.is_error] == [], text
    assert format_text("spec", format_text("spec", text)) == format_text("spec", text)
    spec = result.spec
    assert spec.server.vmail.uid == 5000 and spec.server.filters.spam_score == 5
    mailbox = spec.domains[0].mailboxes[0]
    assert mailbox.auto_reply.days == 7 and mailbox.forwards and mailbox.keep_copy and mailbox.quota
    assert mailbox.send_only == ("send_only" not in skip)
    assert [d.name for d in spec.domains[0].also] == ["example.org"]


def test_the_two_specs_hold_every_keyword_but_import():
    assert set.intersection(*EVERY_KEYWORD) == {"import"}


@pytest.mark.parametrize("keyword", sorted(language.homes()))
def test_a_keyword_in_the_wrong_block_is_told_where_it_belongs(tmp_path, keyword):
    homes = language.homes()[keyword]
    wrong = next(b for b in ("a vmail block", "a limits block") if b not in homes)
    head = "vmail" if wrong == "a vmail block" else "domain example.com { limits"
    tail = "" if wrong == "a vmail block" else " }"
    spec_file = tmp_path / "spec.mailspec"
    spec_file.write_text(f"server {{ hostname mail.example.com }}\n{head} {{\n  {keyword} x\n}}{tail}\n"
                         if head != "vmail" else
                         f"server {{ hostname mail.example.com\n  vmail {{\n    {keyword} x\n  }}\n}}\n")
    found = [d for d in check([str(spec_file)]).diagnostics if d.code == "E0301"]
    assert len(found) == 1, found
    assert found[0].message == f"`{keyword}` is not allowed in {wrong}"
    assert list(found[0].notes) == [f"`{keyword}` belongs in {' or '.join(homes)}"]


def test_a_misspelt_keyword_gets_the_nearest_of_its_block():
    for block in BLOCKS.values():
        if block is language.TOP:
            continue
        for keyword in block.keywords:
            wrong = keyword.name[:-1] + "q"
            if wrong in language.homes():
                continue
            assert did_you_mean(wrong, list(block.by_name)) == f"did you mean `{keyword.name}`?", wrong


def test_the_walk_parses_the_examples_as_one_statement_each():
    for _block, keyword in KEYWORDS:
        nodes = parse("example", keyword.example)
        assert len(nodes) == 1 and nodes[0].key == keyword.name, keyword.example


RUN_ON = """server {
  hostname mail.example.com
  message_size_limt 30 MiB
}
domain example.com {
  mailbox bob {
    password "%s"
    quota 1 GiB
    quote 2 GiB
  }
}
"""


def test_a_misspelt_keyword_on_its_own_line_is_named_not_the_value_above_it(tmp_path):
    """A line break ends a statement only before a keyword, so a misspelt one on the next
    line is read as more of the value above it. The error names the misspelt word."""
    spec_file = tmp_path / "spec.mailspec"
    spec_file.write_text(RUN_ON % language._EXAMPLE_HASH)
    text = spec_file.read_text()
    found = sorted(check([str(spec_file)]).diagnostics, key=lambda d: d.primary_span.start)
    assert [d.code for d in found] == ["E0301", "E0301"], found
    server, mailbox = found
    assert server.message == "`message_size_limt` is not allowed in the server block"
    assert server.help == "did you mean `message_size_limit`?"
    assert text[server.primary_span.start:server.primary_span.end] == "message_size_limt"
    assert any("`hostname`" in note and "line 2" in note for note in server.notes), server.notes
    assert mailbox.message == "`quote` is not allowed in a mailbox block"
    assert mailbox.help == "did you mean `quota`?"
    assert any("`quota`" in note and "line 8" in note for note in mailbox.notes), mailbox.notes


def test_a_value_that_goes_on_over_a_line_break_is_still_read_when_it_is_valid(tmp_path):
    spec_file = tmp_path / "spec.mailspec"
    spec_file.write_text(RUN_ON.replace("  message_size_limt 30 MiB\n", "").replace("    quote 2 GiB\n", "")
                         .replace("quota 1 GiB", "quota 1\n      GiB") % language._EXAMPLE_HASH)
    result = check([str(spec_file)])
    assert result.ok, result.diagnostics
    [domain] = result.spec.domains
    assert domain.mailboxes[0].quota == 1024**3
