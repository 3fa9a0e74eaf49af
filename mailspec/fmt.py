"""`mailspec fmt`: one canonical layout for a spec file, comments kept.

The layout is printed from the syntax tree: one statement per line, two spaces per
block level, `, ` between values, ` -> ` before targets, strings quoted the one way
the lexer reads back. Comments are taken from the text between tokens: a comment on
the line where a statement ends stays behind it, any other comment goes on its own
line before the next statement (or before the closing `}`). A blank line between two
statements is kept as one. tests/test_fmt.py holds fmt to being idempotent, to
keeping the syntax tree (so the model) and to keeping every comment.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from mailspec.syntax import Entry, SieveNode, Text, parse, tokens

INDENT = "  "
_COMMENT = re.compile(r"#[^\n]*")


class Comment(NamedTuple):
    start: int
    text: str


def quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def word(text: Text) -> str:
    return quote(text.value) if text.quoted else text.value


def comments(text: str) -> list[Comment]:
    """Every comment, found in the text between tokens (never inside a string)."""
    found = []
    for token in tokens("", text):
        found += [Comment(m.start(), m.group().rstrip())
                  for m in _COMMENT.finditer(text, token.gap.start, token.gap.end)]
    return found


def format_text(file: str, text: str) -> str:
    """The canonical text of one file; SpecError if it does not parse."""
    printer = _Printer(text, comments(text))
    printer.items(parse(file, text), 0, len(text))
    return "\n".join(printer.lines).strip("\n") + "\n" if printer.lines else ""


class _Printer:
    def __init__(self, source: str, found: list[Comment]):
        self.source = source
        self.pending = list(found)
        self.lines: list[str] = []
        self.last_end: int | None = None  # source offset where the last printed statement ended
        self.commented = False

    def emit(self, depth: int, line: str) -> None:
        self.lines.append(INDENT * depth + line)
        self.commented = False  # whether the last line already ends in a comment

    def blank_line_before(self, start: int) -> None:
        previous = self.last_end
        if previous is not None and self.lines and self.lines[-1] != "" and \
                "\n\n" in re.sub(r"[ \t\r]+", "", self.source[previous:start]):
            self.lines.append("")

    def flush_comments(self, before: int, depth: int) -> None:
        """Print the comments that start before `before`: trailing ones behind the last
        statement's line, the others on their own lines."""
        while self.pending and self.pending[0].start < before:
            comment = self.pending.pop(0)
            trailing = self.last_end is not None and self.lines and not self.commented and \
                "\n" not in self.source[self.last_end:comment.start]
            if trailing:
                self.lines[-1] += "  " + comment.text
                self.commented = True
            else:
                self.blank_line_before(comment.start)
                self.emit(depth, comment.text)
                self.last_end = comment.start + len(comment.text)

    def items(self, nodes, depth: int, closing: int) -> None:
        self.last_end = None  # a block's first comment never trails its header
        for node in nodes:
            self.flush_comments(node.span.start, depth)
            self.blank_line_before(node.span.start)
            if isinstance(node, Entry):
                self.entry(node, depth)
            else:
                self.command(node, depth)
            self.last_end = node.span.end
        self.flush_comments(closing, depth)

    def block(self, head: str, nodes, depth: int, closing: int) -> None:
        """`head { … }` around `nodes`; `closing` is where the `}` is in the source."""
        if not nodes and not any(c.start < closing for c in self.pending):
            self.emit(depth, head + " {}")
            return
        self.emit(depth, head + " {")
        self.items(nodes, depth + 1, closing)
        self.emit(depth, "}")

    def entry(self, entry: Entry, depth: int) -> None:
        head = entry.key
        if entry.values:
            head += " " + ", ".join(" ".join(word(w) for w in v.words) for v in entry.values)
        if entry.targets is not None:
            head += " -> " + ", ".join(" ".join(word(w) for w in v.words) for v in entry.targets)
        if entry.body is None:
            self.emit(depth, head)
        else:
            self.block(head, entry.body, depth, entry.span.end - 1)

    # ---------------------------------------------------------------- sieve

    def command(self, node: SieveNode, depth: int) -> None:
        if node.kind == "sieve_block":
            self.block("sieve", node.children[0], depth, node.span.end - 1)
        elif node.kind == "if_command":
            test, body, *branches = node.children
            heads = [f"if {self.test(test)}"]
            bodies = [body]
            for branch in branches:
                if branch.kind == "elsif_branch":
                    heads.append(f"elsif {self.test(branch.children[0])}")
                    bodies.append(branch.children[1])
                else:
                    heads.append("else")
                    bodies.append(branch.children[0])
            # Each body's `}` comes just before the next branch, the last one ends the command.
            ends = [branch.span.start for branch in branches] + [node.span.end - 1]
            self.emit(depth, heads[0] + " {")
            for index, commands in enumerate(bodies):
                self.items(commands, depth + 1, ends[index])
                self.emit(depth, "}" if index == len(bodies) - 1 else "} " + heads[index + 1] + " {")
        else:
            self.emit(depth, self.action(node))

    def action(self, node: SieveNode) -> str:
        parts = [node.kind] + [word(t) for t in node.texts]
        for option in node.children:  # vacation's subject and days
            parts += [option.kind.removeprefix("vacation_")] + [word(t) for t in option.texts]
        return " ".join(parts)

    def test(self, node: SieveNode) -> str:
        kind = node.kind.removesuffix("_test")
        if kind in ("allof", "anyof"):
            return f"{kind}(" + ", ".join(self.test(t) for t in node.children) + ")"
        if kind == "not":
            return "not " + self.test(node.children[0])
        return " ".join([kind] + [word(t) for t in node.texts])
