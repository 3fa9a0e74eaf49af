"""Reference semantics of a mailbox's Sieve rules: the actions Pigeonhole takes.

`sieve_eval(commands, message, envelope)` runs the model's commands (RFC 5228 with
fileinto, copy, imap4flags, reject, envelope and vacation) on one message and returns
the actions as Pigeonhole's `sieve-test` names them. tests/test_sieve_eval.py holds
it to `sieve-test` on generated rules and messages.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import fnmatch
import re

import attrs

from mailspec import model

_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@attrs.frozen
class Envelope:
    sender: str
    recipient: str


@attrs.frozen
class Outcome:
    actions: tuple[str, ...]  # in order, e.g. "store message in folder: Junk [\\seen]"
    implicit_keep: bool


def _flags(flags: list[str]) -> str:
    # Pigeonhole lower-cases system flags and prints the set in its own order.
    shown = sorted(f.lower() if f.startswith("\\") else f for f in flags)
    return f" [{' '.join(shown)}]" if shown else ""


class _Run:
    def __init__(self, raw: bytes, envelope: Envelope):
        self.message = email.message_from_bytes(raw, policy=email.policy.compat32)
        self.size = len(raw)
        self.envelope = envelope
        self.actions: list[str | tuple[str]] = []  # a (folder,) is a store, flags in `stored`
        self.stored: dict[str, list[str]] = {}  # folder -> its flags, for merging
        self.flags: list[str] = []
        self.keep = True  # implicit keep
        self.stopped = False

    def raw_headers(self, name: str) -> list[str]:
        # Unfolded, as Sieve sees them.
        return [re.sub(r"\r?\n[ \t]", " ", v).strip() for v in self.message.get_all(name, [])]

    def headers(self, name: str) -> list[str]:
        """Unfolded, with RFC 2047 encoded words decoded (RFC 5228, 2.7.2)."""
        return [str(email.header.make_header(email.header.decode_header(v)))
                for v in self.raw_headers(name)]

    def matches(self, match: model.Match, value: str, key: str) -> bool:
        value, key = value.translate(_ASCII_FOLD), key.translate(_ASCII_FOLD)  # i;ascii-casemap
        if match is model.Match.IS:
            return value == key
        if match is model.Match.CONTAINS:
            return key in value
        return fnmatch.fnmatchcase(value, key.replace("[", "[[]"))

    def test(self, test: model.Test) -> bool:
        if isinstance(test, model.CompareTest):
            if test.kind == "envelope":
                values = [self.envelope.sender if test.name.lower() == "from" else self.envelope.recipient]
            elif test.kind == "address":
                values = [a for _, a in email.utils.getaddresses(self.raw_headers(test.name)) if a]
            else:
                values = self.headers(test.name)
            return any(self.matches(test.match, v, test.key) for v in values)
        if isinstance(test, model.SizeTest):
            return self.size > test.limit if test.over else self.size < test.limit
        if isinstance(test, model.ExistsTest):
            return bool(self.message.get_all(test.name))
        if isinstance(test, model.AllOf):
            return all(self.test(t) for t in test.tests)
        if isinstance(test, model.AnyOf):
            return any(self.test(t) for t in test.tests)
        if isinstance(test, model.Not):
            return not self.test(test.test)
        return test.value

    def add(self, action: str) -> None:
        if action not in self.actions:  # Pigeonhole merges duplicate actions
            self.actions.append(action)

    def store(self, folder: str) -> None:
        """Storing twice into one folder is one action, with the flags of both."""
        if folder not in self.stored:
            self.stored[folder] = []
            self.actions.append((folder,))
        flags = self.stored[folder]
        flags += [f for f in self.flags if f not in flags]

    def commands(self, commands) -> None:
        for command in commands:
            if self.stopped:
                return
            if isinstance(command, model.If):
                for branch in command.branches:
                    if self.test(branch.test):
                        self.commands(branch.body)
                        break
                else:
                    if command.otherwise is not None:
                        self.commands(command.otherwise)
            else:
                self.action(command)

    def action(self, action: model.Action) -> None:
        match action:
            case model.Stop():
                self.stopped = True
            case model.AddFlag(flag):
                if flag not in self.flags:
                    self.flags.append(flag)
            case model.FileInto() | model.Keep():
                self.store(action.folder if isinstance(action, model.FileInto) else "INBOX")
                self.keep = False
            case model.Redirect(copy=copy):
                line = describe_action(action).removesuffix(" (and keep)")
                if line not in self.actions:  # a repeated redirect is dropped whole, :copy or not
                    self.actions.append(line)
                    self.keep = self.keep and copy
            case model.Discard() | model.Reject():
                self.add(describe_action(action))
                self.keep = False
            case model.Vacation():
                self.add(describe_action(action))


def describe_action(action: model.Action) -> str:
    """One action in the words `sieve-test` uses for what it does."""
    match action:
        case model.FileInto(folder):
            return f"store message in folder: {folder}"
        case model.Keep():
            return "store message in folder: INBOX"
        case model.Redirect(to, copy):
            return f"redirect message to: <{to}>" + (" (and keep)" if copy else "")
        case model.Reject(reason):
            return f"reject message with reason: {reason}"
        case model.Discard():
            return "discard"
        case model.Vacation():
            return "send vacation message"
        case model.AddFlag(flag):
            return f"add flag {flag}"
    return action.name  # stop


def describe_test(test: model.Test) -> str:
    match test:
        case model.CompareTest(kind, name, match, key):
            return f'{kind} {name} {match.value} "{key}"'
        case model.SizeTest(over, limit):
            return f"size {'over' if over else 'under'} {limit} B"
        case model.ExistsTest(name):
            return f"exists {name}"
        case model.AllOf(tests):
            return "all of (" + ", ".join(describe_test(t) for t in tests) + ")"
        case model.AnyOf(tests):
            return "any of (" + ", ".join(describe_test(t) for t in tests) + ")"
        case model.Not(inner):
            return "not " + describe_test(inner)
    return "true" if test.value else "false"


def describe(command: model.Command) -> str:
    """A rule on one line: `if header subject contains "x": store message in folder: Junk`."""
    if not isinstance(command, model.If):
        return describe_action(command)
    parts = []
    for number, branch in enumerate(command.branches):
        body = "; ".join(describe(c) for c in branch.body) or "nothing"
        parts.append(f"{'if' if number == 0 else 'elsif'} {describe_test(branch.test)}: {body}")
    if command.otherwise is not None:
        parts.append("else: " + ("; ".join(describe(c) for c in command.otherwise) or "nothing"))
    return " ".join(parts)


def sieve_eval(commands: tuple[model.Command, ...], raw: bytes, envelope: Envelope) -> Outcome:
    run = _Run(raw, envelope)
    run.commands(commands)
    actions = [f"store message in folder: {a[0]}{_flags(run.stored[a[0]])}" if isinstance(a, tuple)
               else a for a in run.actions]
    if run.keep:
        actions.append(f"implicit: store message in folder: INBOX{_flags(run.flags)}")
    return Outcome(tuple(actions), run.keep)
