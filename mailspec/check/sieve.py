"""Sieve rules the checker enforces: actions Pigeonhole refuses to run together."""

from __future__ import annotations

from collections.abc import Callable

from mailspec import model
from mailspec.check import errors
from mailspec.diagnostics import Diagnostic
from mailspec.source import Span

# Pairs that Pigeonhole rejects when both run on one message (RFC 5429, RFC 5230).
_CONFLICTS = {
    "reject": {"fileinto", "keep", "redirect", "vacation", "reject"},
    "fileinto": {"reject"},
    "keep": {"reject"},
    "redirect": {"reject"},
    "vacation": {"reject", "vacation"},
}

State = dict[str, Span]  # actions that may already have run on some path -> where


def check_sieve(mailbox: model.Mailbox, check_redirect: Callable) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    state: State = {}
    if mailbox.auto_reply is not None:
        state["vacation"] = mailbox.auto_reply.span

    def run(commands, state: State) -> State | None:
        """The state after `commands`, or None when every path through them stops."""
        for command in commands:
            if isinstance(command, model.If):
                results = [run(branch.body, dict(state)) for branch in command.branches]
                results.append(run(command.otherwise, dict(state)) if command.otherwise is not None
                               else dict(state))
                live = [r for r in results if r is not None]
                if not live:
                    return None
                state = {}
                for result in live:
                    for name, span in result.items():
                        state.setdefault(name, span)
                continue
            for other in sorted(_CONFLICTS.get(command.name, ()) & state.keys()):
                out.append(errors.sieve_conflict(command.span, command.name, other, state[other]))
            if isinstance(command, model.Redirect):
                check_redirect(command.to, command.span)
            if isinstance(command, model.Stop):
                return None
            state.setdefault(command.name, command.span)
        return state

    run(mailbox.sieve, state)
    return out
