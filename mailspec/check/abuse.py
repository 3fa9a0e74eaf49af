"""Rules for the defences against spam and abuse: settings that contradict each other
and would leave the server either open or refusing good mail."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailspec.check import errors

if TYPE_CHECKING:
    from mailspec.check.check import Checker


def check_abuse(checker: Checker) -> None:
    spec, out = checker.spec, checker.out
    server = spec.server.spam
    if server.reject <= server.mark:
        out.append(errors.reject_not_above_mark(server.span, "the server", server.mark, server.reject))
    for domain in spec.domains:
        own = domain.spam
        if own.mark is None and own.reject is None:
            continue
        mark, reject = own.mark or server.mark, own.reject or server.reject
        if reject <= mark:
            out.append(errors.reject_not_above_mark(own.span, domain.name, mark, reject))
    screen = spec.server.postscreen
    if screen is not None and screen.dnsbl:
        total = sum(site.weight for site in screen.dnsbl)
        if total < screen.threshold:
            out.append(errors.dnsbl_below_threshold(screen.span, total, screen.threshold))
