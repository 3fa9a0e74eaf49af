"""Checker diagnostics (E04xx errors, W05xx warnings)."""

from __future__ import annotations

from mailspec.diagnostics import Diagnostic, did_you_mean
from mailspec.model import Address
from mailspec.source import Span


def unknown_reference(span: Span, what: str, address: Address, candidates: list[str]) -> Diagnostic:
    hint = did_you_mean(address.local, candidates)
    return Diagnostic.error(
        "E0401", f"{what} points to unknown address `{address}`", span,
        f"no mailbox, alias or list `{address.local}` in domain {address.domain}",
        help=hint or f"declare it in domain {address.domain}, or fix the name")


def duplicate_domain(span: Span, name: str, first: Span) -> Diagnostic:
    return Diagnostic.error("E0402", f"domain `{name}` is declared twice", span, "declared again here",
                            secondary=[(first, "first declared here")],
                            help="merge the two declarations into one block")


def duplicate_mailbox(span: Span, address: Address, first: Span) -> Diagnostic:
    return Diagnostic.error("E0403", f"mailbox `{address}` is declared twice", span, "declared again here",
                            secondary=[(first, "first declared here")], help="remove one of them")


def duplicate_address(span: Span, address: Address, kind: str, first_kind: str, first: Span) -> Diagnostic:
    return Diagnostic.error("E0404", f"`{address}` is declared twice ({first_kind}, then {kind})", span,
                            f"{kind} declared here", secondary=[(first, f"{first_kind} declared here")],
                            help="an address can have one meaning: keep one declaration")


def shadows_mailbox(span: Span, address: Address, kind: str, mailbox: Span) -> Diagnostic:
    return Diagnostic.error("E0405", f"{kind} `{address}` shadows a mailbox", span, f"this {kind}",
                            secondary=[(mailbox, "the mailbox it would hide")],
                            help="mail to this address would never reach the mailbox: rename the "
                                 f"{kind}, or use `forward` in the mailbox")


def alias_cycle(span: Span, chain: list[Address]) -> Diagnostic:
    return Diagnostic.error("E0406", "aliases form a cycle", span, "this alias is part of the cycle",
                            notes=[" -> ".join(str(a) for a in chain)],
                            help="mail in a cycle bounces with `mail forwarding loop`: break one link")


def unknown_catch_all(span: Span, address: Address, candidates: list[str]) -> Diagnostic:
    hint = did_you_mean(address.local, candidates)
    return Diagnostic.error("E0407", f"catch-all points to unknown mailbox `{address}`", span,
                            "no such mailbox, alias or list", help=hint or "name an existing mailbox")


def quota_over_limit(span: Span, domain: str, total: str, limit: str) -> Diagnostic:
    return Diagnostic.error("E0408", f"mailbox quotas in `{domain}` add up to {total}, over the limit of {limit}",
                            span, "limit set here", help="lower some quotas or raise `limits { quota }`")


def unlimited_mailbox(span: Span, domain: str) -> Diagnostic:
    return Diagnostic.error("E0408", f"this mailbox has no quota, but `{domain}` limits the total quota",
                            span, "no quota", help="give the mailbox a quota, like `quota 1 GiB`")


def too_many_mailboxes(span: Span, domain: str, count: int, limit: int) -> Diagnostic:
    return Diagnostic.error("E0409", f"`{domain}` has {count} mailboxes, over its limit of {limit}", span,
                            "limit set here", help="remove mailboxes or raise `limits { mailboxes }`")


def bad_forward(span: Span, what: str, address: Address, reason: str) -> Diagnostic:
    return Diagnostic.error("E0410", f"{what} to `{address}` cannot be delivered", span, reason,
                            help="forward to an existing address, or to an outside one")


def send_as_foreign(span: Span, address: Address) -> Diagnostic:
    return Diagnostic.error(
        "E0411", f"send-as right to `{address}`, a domain this server does not serve", span,
        "not served here",
        help=f"if this login may really send as an outside address, write `external {address}`")


def announcer_not_member(span: Span, address: Address) -> Diagnostic:
    return Diagnostic.error("E0412", f"announcer `{address}` is not a member of the list", span,
                            "not in `members`", help="add the announcer to `members`")


def missing_announcer(span: Span) -> Diagnostic:
    return Diagnostic.error("E0412", "the list posts by announcer but names none", span,
                            "`post announcer` without `announcer`", help="add: announcer alice")


def sieve_conflict(span: Span, action: str, other: str, other_span: Span) -> Diagnostic:
    return Diagnostic.error("E0413", f"`{action}` cannot run together with `{other}`", span,
                            f"`{action}` here", secondary=[(other_span, f"`{other}` can run on the same message")],
                            help="Pigeonhole refuses this pair at delivery time; put `stop` after one, "
                                 "or make them exclusive with if/else")


def domain_alias_collision(span: Span, name: str, first: Span, first_kind: str) -> Diagnostic:
    return Diagnostic.error("E0414", f"`{name}` is already {first_kind}", span, "declared again as a domain alias",
                            secondary=[(first, first_kind)], help="a name can be one domain or one domain alias")


def send_only_target(span: Span, what: str, address: Address, mailbox: Span) -> Diagnostic:
    return Diagnostic.error("E0415", f"{what} delivers to send-only mailbox `{address}`", span,
                            "would deliver here", secondary=[(mailbox, "declared send-only")],
                            help="a send-only mailbox receives no mail: point this elsewhere")


def not_served(span: Span, what: str, address: Address) -> Diagnostic:
    return Diagnostic.error("E0417", f"{what} `{address}` is not in a domain this server serves", span,
                            "not served here", help="use an address in one of the declared domains")


def no_password(span: Span, address: Address) -> Diagnostic:
    return Diagnostic.warning("W0501", f"mailbox `{address}` has no password", span, "cannot log in",
                              help="add `password \"{SHA512-CRYPT}…\"` so its owner can read mail")


def unreachable(span: Span, what: str, address: Address) -> Diagnostic:
    return Diagnostic.warning("W0502", f"no one can reach {what} `{address}`", span,
                              "refused by `reject_recipient`",
                              help="remove it, or remove the address from `reject_recipient`")


def sieve_never_runs(span: Span, address: Address) -> Diagnostic:
    return Diagnostic.warning("W0503", f"the sieve rules and auto-reply of `{address}` never run", span,
                              "all mail to this mailbox is forwarded",
                              help="add `keep_copy` to keep a local copy that the rules act on")


def mysql_setting_missing(span: Span, setting: str, example: str) -> Diagnostic:
    return Diagnostic.error("E0418", f"the mysql backend needs `{setting}`", span,
                            f"no `{setting}` in this block", help=f"add `{example}`")


def mysql_host_and_socket(span: Span) -> Diagnostic:
    return Diagnostic.error("E0419", "the mysql backend has both `host` and `socket`", span,
                            "connect over one of them",
                            help="keep `socket` for a local server, `host` (and `port`) for a remote one")


def alias_chain_too_long(span: Span, start: Address, limit: int) -> Diagnostic:
    return Diagnostic.error("E0420", f"mail to `{start}` passes through more than {limit} aliases",
                            span, "the chain goes on here",
                            help="point the aliases at their final recipients directly")


def auto_reply_over(span: Span, address: Address, until) -> Diagnostic:
    return Diagnostic.warning("W0504", f"the auto-reply of `{address}` ended on {until.isoformat()}",
                              span, "already past: it never replies",
                              help="remove the auto-reply, or move `until` to a later date")


def redirect_to_itself(span: Span, address: Address) -> Diagnostic:
    return Diagnostic.warning("W0505", f"a Sieve rule of `{address}` redirects mail to the mailbox itself",
                              span, "redirects back here",
                              help="use `keep` or `fileinto` to keep the mail in this mailbox")


def redirect_loop(span: Span, source: Address, target: Address, back: Span) -> Diagnostic:
    return Diagnostic.warning("W0506", f"`{source}` and `{target}` redirect mail to each other", span,
                              f"redirects to `{target}`", secondary=[(back, f"redirects back to `{source}`")],
                              help="mail matching both rules bounces between them until it loops out; "
                                   "remove one of the redirects")


def mixed_scripts(span: Span, name: str, found: list[str]) -> Diagnostic:
    return Diagnostic.warning("W0507", f"the domain `{name}` mixes scripts ({', '.join(found)})", span,
                              "letters from more than one script",
                              help="a name that mixes scripts can pass for another (a homograph); "
                                   "check that this is the domain you mean")


# ---------------------------------------------------------------- mail authentication


def spf_too_many_lookups(span: Span, domain: str, lookups: int) -> Diagnostic:
    return Diagnostic.error(
        "E0423", f"the SPF record of {domain} needs {lookups} DNS lookups, more than the 10 SPF allows",
        span, "this domain's SPF record",
        notes=["receivers treat such a record as an error (permerror), so SPF fails for every message"],
        help="remove `spf_include`s you no longer use, or give the server's `addresses` so that the "
             "record names them instead of `mx`")


def dmarc_report_outside(span: Span, domain: str, address: Address) -> Diagnostic:
    return Diagnostic.warning(
        "W0520", f"DMARC reports for {domain} go to {address}, in a domain this spec does not serve",
        span, "an outside report address",
        notes=[f"receivers send them only if {address.domain} publishes "
               f"`{domain}._report._dmarc.{address.domain} TXT \"v=DMARC1\"` (RFC 7489 7.1)"],
        help=f"ask the owner of {address.domain} to publish it; `mailspec dns --check` looks for it")


def unsigned_domain(span: Span | None, domain: str) -> Diagnostic:
    return Diagnostic.warning(
        "W0521", f"mail from {domain} is not DKIM-signed", span, "signing turned off",
        notes=["Gmail and Outlook refuse or junk unsigned mail whose SPF fails, as it does when "
               "a message is forwarded"],
        help="remove `dkim no` unless another system signs this domain's mail")


def ed25519_only(span: Span | None, domain: str) -> Diagnostic:
    return Diagnostic.warning(
        "W0522", f"{domain} signs with an ed25519 key only", span, "ed25519 selector",
        notes=["many receivers do not verify ed25519 signatures (RFC 8463) and see the mail as unsigned"],
        help="sign with `key rsa-2048`, which every receiver verifies")


def acme_names_over_limit(span: Span | None, names: int, limit: int) -> Diagnostic:
    return Diagnostic.warning(
        "W0523", f"the ACME certificate would need {names} names, more than the {limit} a CA puts in one",
        span, "the certificate names the hostname only",
        notes=["clients and senders that fetch autoconfig, autodiscover or the MTA-STS policy from "
               "<name>.<domain> then fail to verify it"],
        help=f"split the domains between servers: at most {limit} names each (the hostname, and "
             "autoconfig, autodiscover and mta-sts of each domain name)")


def sts_without_certificate(span: Span | None) -> Diagnostic:
    return Diagnostic.error(
        "E0421", "MTA-STS `mode enforce` with the default self-signed certificate", span,
        "enforced here",
        notes=["senders that enforce MTA-STS verify the certificate of our MX against public CAs, "
               "and refuse to deliver when it fails"],
        help="point `tls { cert …; key … }` at a certificate from a public CA, or use `mode testing`")


# ---------------------------------------------------------------- abuse defence


def reject_not_above_mark(span: Span | None, where: str, mark: int, reject: int) -> Diagnostic:
    return Diagnostic.error(
        "E0422", f"{where} refuses spam from score {reject}, which is not above the score {mark} "
        "that marks it", span, "these spam scores",
        notes=["mail between the two scores is marked and filed as spam; with `reject` at or below "
               "`mark`, no message is ever marked and everything spammy is refused instead"],
        help=f"make `reject` larger than `mark`, for example `mark {mark}; reject {mark + 9}`")


def dnsbl_below_threshold(span: Span | None, total: int, threshold: int) -> Diagnostic:
    return Diagnostic.warning(
        "W0524", f"the DNS blocklists' weights add up to {total}, below the threshold {threshold}", span,
        "no client is ever refused",
        notes=["postscreen refuses a client whose blocklist weights reach the threshold"],
        help=f"lower `threshold` to {total} or less, or give the blocklists larger weights")
