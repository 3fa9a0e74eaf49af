"""hypothesis strategies for spec text: token lists that follow the grammar's shape,
with keywords in every position, and the gaps (blanks, comments) between tokens."""

from hypothesis import strategies as st

from mailspec.syntax.lexer import lexer
from mailspec.syntax.parser import BARE_ACTIONS, MATCHES, SIZE_OPS, TEXT_ACTIONS

LEXER = lexer()

KEYWORDS = sorted(LEXER.keywords)
WORDS = st.sampled_from(KEYWORDS + ["alice", "example.org", "25", "MiB", "a@b.c", "10.0.0.0/8"])
STRINGS = st.sampled_from(['"x"', '"a \\"q\\" \\\\ b"', '""', '"é\\n"', '"{;}"'])
GAPS = st.sampled_from([" ", "\n", "  ", " # note\n", "\t", ""])


def joined(tokens: list[str]):
    """The tokens as text, each followed by whitespace, a comment or nothing."""
    return st.lists(GAPS, min_size=len(tokens), max_size=len(tokens)).map(
        lambda gaps: "".join(t + g for t, g in zip(tokens, gaps, strict=True)))


SIEVE_TEST = st.deferred(lambda: st.one_of(
    st.builds(lambda k, a, m, b: [k, a, m, b], st.sampled_from(["header", "address", "envelope"]),
              WORDS | STRINGS, st.sampled_from(sorted(MATCHES)), WORDS | STRINGS),
    st.builds(lambda o, n, u: ["size", o, n] + u, st.sampled_from(sorted(SIZE_OPS)), WORDS,
              st.sampled_from([[], ["K"], ["if"]])),
    st.builds(lambda t: ["exists", t], WORDS | STRINGS),
    st.builds(lambda k, ts: [k, "("] + sum(([*t, ","] for t in ts), [])[:-1] + [")"],
              st.sampled_from(["allof", "anyof"]), st.lists(SIEVE_TEST, min_size=1, max_size=3)),
    st.builds(lambda t: ["not"] + t, SIEVE_TEST),
    st.sampled_from([["true"], ["false"]]),
))
SIEVE_COMMAND = st.deferred(lambda: st.one_of(
    st.builds(lambda k, t: [k, t], st.sampled_from(sorted(TEXT_ACTIONS)), WORDS | STRINGS),
    st.sampled_from([[k] for k in sorted(BARE_ACTIONS)] + [[";"]]),
    st.builds(lambda t, c: ["redirect", t] + c, WORDS | STRINGS, st.sampled_from([[], ["copy"]])),
    st.builds(lambda t, o: ["vacation", t] + sum(o, []), WORDS | STRINGS, st.lists(
        st.one_of(st.builds(lambda s: ["subject", s], WORDS | STRINGS),
                  st.builds(lambda d: ["days", d], WORDS)), max_size=2)),
    st.builds(lambda t, b, e: ["if"] + t + b + e, SIEVE_TEST, st.deferred(lambda: SIEVE_BODY),
              st.sampled_from([[], ["else", "{", "}"], ["elsif", "true", "{", "keep", "}"]])),
))
SIEVE_BODY = st.lists(SIEVE_COMMAND, max_size=3).map(lambda cs: ["{"] + sum(cs, []) + ["}"])

VALUE = st.lists(WORDS | STRINGS, min_size=1, max_size=3)
VALUES = st.lists(VALUE, min_size=1, max_size=3).map(lambda vs: sum(([*v, ","] for v in vs), [])[:-1])
ENTRY = st.deferred(lambda: st.builds(
    lambda k, v, a, b: [k] + v + a + b,
    st.sampled_from(sorted(LEXER.statement_words)),
    st.one_of(st.just([]), VALUES),
    st.one_of(st.just([]), VALUES.map(lambda v: ["->"] + v)),
    st.one_of(st.just([]), st.lists(ITEM, max_size=3).map(lambda items: ["{"] + sum(items, []) + ["}"])),
))
ITEM = st.one_of(ENTRY, SIEVE_BODY.map(lambda b: ["sieve"] + b), st.just([";"]))
SPEC = st.lists(ITEM, max_size=4).map(lambda items: sum(items, []))


