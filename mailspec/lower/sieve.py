"""Lowering of `sieve { … }` blocks into model Sieve commands."""

from __future__ import annotations

from mailspec import model
from mailspec.lower import errors, values
from mailspec.syntax import SieveNode, Text

_COMPARE_KINDS = {"header_test": "header", "address_test": "address", "envelope_test": "envelope"}
_ENVELOPE_PARTS = {"from", "to"}
_BARE_ACTIONS = {"discard": model.Discard, "keep": model.Keep, "stop": model.Stop}
_ADDRESS_HEADERS_HELP = "name a header such as \"from\", \"to\" or \"cc\""


class SieveLowerer:
    def __init__(self, owner):
        self.owner = owner  # the Lowerer: diagnostics go to its list

    def invalid(self, text: Text, problem: values.Invalid) -> None:
        self.owner.error(errors.invalid_value(text.span, problem.message, problem.help, "E0313"))

    def block(self, node: SieveNode, domain: str) -> list[model.Command]:
        return self.commands(node.children[0], domain)

    def commands(self, nodes, domain: str) -> list[model.Command]:
        found = (self.command(n, domain) for n in nodes)
        return [c for c in found if c is not None]

    def command(self, node: SieveNode, domain: str) -> model.Command | None:
        if node.kind == "if_command":
            test, body, *rest = node.children
            branches = [model.Branch(self.test(test), tuple(self.commands(body, domain)))]
            otherwise = None
            for extra in rest:
                if extra.kind == "elsif_branch":
                    branches.append(model.Branch(self.test(extra.children[0]),
                                                 tuple(self.commands(extra.children[1], domain))))
                else:
                    otherwise = tuple(self.commands(extra.children[0], domain))
            return model.If(tuple(branches), otherwise, node.span)
        return self.action(node, domain)

    def action(self, node: SieveNode, domain: str) -> model.Action | None:
        name = node.kind
        argument = node.texts[0] if node.texts else None
        try:
            if name == "fileinto":
                return model.FileInto(values.folder(argument.value), node.span)
            if name == "redirect":
                address, _ = values.address(argument.value, domain)
                copy = any(t.value == "copy" for t in node.texts[1:])
                return model.Redirect(address, copy, node.span)
            if name in ("reject", "addflag"):
                if not argument.value.strip():
                    raise values.Invalid(f"`{name}` needs a non-empty text")
                return (model.Reject if name == "reject" else model.AddFlag)(argument.value, node.span)
            if name == "vacation":
                return self.vacation(node)
        except values.Invalid as problem:
            self.invalid(argument, problem)
            return None
        return _BARE_ACTIONS[name](node.span)

    def vacation(self, node: SieveNode) -> model.Action | None:
        subject = days = None
        for option in node.children:
            text = option.texts[0]
            if option.kind == "vacation_subject":
                subject = text.value
            else:
                try:
                    days = values.integer(text.value, 1, 365)
                except values.Invalid as problem:
                    self.invalid(text, problem)
                    return None
        return model.Vacation(node.texts[0].value, subject, days, node.span)

    def test(self, node: SieveNode) -> model.Test:
        kind = node.kind
        if kind in _COMPARE_KINDS:
            name, match, key = node.texts
            if kind == "envelope_test" and name.value.lower() not in _ENVELOPE_PARTS:
                self.invalid(name, values.Invalid(f"`{name.value}` is not an envelope part",
                                                  'use "from" or "to"'))
            elif not name.value or any(c in name.value for c in ": \t\r\n"):
                self.invalid(name, values.Invalid(f"`{name.value}` is not a header name",
                                                  _ADDRESS_HEADERS_HELP))
            return model.CompareTest(_COMPARE_KINDS[kind], name.value.lower(),
                                     model.Match(match.value), key.value, node.span)
        if kind == "size_test":
            op, *amount = node.texts
            text = " ".join(t.value for t in amount)
            try:
                limit = values.size(text)
            except values.Invalid as problem:
                self.invalid(amount[0], problem)
                limit = 0
            return model.SizeTest(op.value == "over", limit, node.span)
        if kind == "exists_test":
            return model.ExistsTest(node.texts[0].value.lower(), node.span)
        if kind == "allof_test":
            return model.AllOf(tuple(self.test(t) for t in node.children), node.span)
        if kind == "anyof_test":
            return model.AnyOf(tuple(self.test(t) for t in node.children), node.span)
        if kind == "not_test":
            return model.Not(self.test(node.children[0]), node.span)
        return model.Constant(kind == "true_test", node.span)
