"""The recursive-descent fast path must agree with the grammar-driven LALR driver:
wherever it returns a tree, the driver returns the same tree (spans included)."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import KEYWORDS, SPEC, STRINGS, WORDS, joined

from mailspec.syntax.lalr import ParseError, driver
from mailspec.syntax.lexer import lexer
from mailspec.syntax.parser import BARE_ACTIONS, MATCHES, SIZE_OPS, TEXT_ACTIONS, TEXT_TESTS, Fallback, FastParser

FIXTURES = Path(__file__).parents[2] / "fixtures"
DRIVER = driver()


def both(text: str):
    """(fast result or Fallback, driver result or ParseError)."""
    try:
        fast = FastParser(lexer(), "t", text).parse()
    except Fallback:
        fast = Fallback
    try:
        slow = DRIVER.parse("t", text)
    except ParseError:
        slow = ParseError
    return fast, slow


def assert_agree(text: str) -> None:
    fast, slow = both(text)
    if fast is not Fallback:
        assert fast == slow, text


def test_every_fixture_takes_the_fast_path_when_valid():
    texts = [p.read_text("utf-8") for p in sorted(FIXTURES.rglob("*.mailspec"))]
    assert len(texts) > 50
    for text in texts:
        fast, slow = both(text)
        if slow is not ParseError:
            assert fast == slow, text[:200]
        else:
            assert fast is Fallback


def test_sieve_keywords_match_the_grammar():
    literals = set(lexer().keywords)
    used = MATCHES | SIZE_OPS | set(TEXT_TESTS) | set(TEXT_ACTIONS) | BARE_ACTIONS
    assert used <= literals
    assert {"if", "elsif", "else", "allof", "anyof", "not", "true", "false", "size",
            "redirect", "copy", "vacation", "subject", "days", "sieve"} <= literals


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(SPEC.flatmap(joined))
def test_fast_path_agrees_on_grammatical_text(text):
    fast, slow = both(text)
    assert fast == slow or (fast is Fallback and slow is ParseError), text


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(SPEC, st.data())
def test_fast_path_agrees_on_mutated_text(tokens, data):
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.integers(0, len(tokens)))
        if tokens and data.draw(st.booleans()):
            del tokens[min(where, len(tokens) - 1)]
        else:
            tokens.insert(where, data.draw(WORDS | STRINGS | st.sampled_from(list("{}(),;") + ["->"])))
    assert_agree(data.draw(joined(tokens)))


@given(st.lists(st.sampled_from(list('ab "\\{};,()->#\n') + KEYWORDS), max_size=40).map("".join))
def test_fast_path_agrees_on_arbitrary_text(text):
    assert_agree(text)
