"""Typed values: the plain-ASCII shortcut in `domain` must give what IDNA gives."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailspec.lower import values

LABEL = st.text(alphabet="abcXYZ019-_", min_size=0, max_size=8) | st.sampled_from(
    ["xn--", "xn--bcher-kva", "a" * 63, "a" * 64, "ab--c", "-a", "a-", "é", "ß", "1"])
NAME = st.lists(LABEL, min_size=1, max_size=4).map(".".join)


def outcome(function, *args):
    try:
        return function(*args)
    except values.Invalid:
        return values.Invalid


@given(NAME)
def test_plain_names_agree_with_idna(name):
    expected = outcome(values._idna, name, name.rstrip("."))
    if expected is not values.Invalid and expected.split(".")[-1].isdigit():
        expected = values.Invalid
    if not name.rstrip(".") or "." not in name.rstrip("."):
        expected = values.Invalid
    assert outcome(values.domain, name) == expected


@pytest.mark.parametrize(("written", "compiled"), [
    ("Example.COM", "example.com"),
    ("bücher.example", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
])
def test_domains_in_a_label_form(written, compiled):
    assert values.domain(written) == compiled


@pytest.mark.parametrize("bad", ["-a.example", "a-.example", "ab--c.example", "a_b.example",
                                 "example", "1.2.3.4", "a@b.example"])
def test_bad_domains_are_refused(bad):
    with pytest.raises(values.Invalid):
        values.domain(bad)
