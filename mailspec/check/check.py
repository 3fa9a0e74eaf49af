"""Cross-entity rules over the lowered model."""

from __future__ import annotations

import datetime
import unicodedata
from typing import NamedTuple

import idna

from mailspec import model
from mailspec.check import errors
from mailspec.check.abuse import check_abuse
from mailspec.check.mail_auth import check_mail_auth
from mailspec.check.sieve import check_sieve
from mailspec.diagnostics import Diagnostic
from mailspec.model import Address, Ref
from mailspec.semantics import access_listed
from mailspec.source import Span


def _human_size(size: int) -> str:
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


MAX_ALIAS_CHAIN = 100  # aliases through aliases; Postfix itself stops at 1000


class Declared(NamedTuple):
    """What declares an address: a mailbox, an alias, a list or a mailbox's alias."""

    kind: str  # "mailbox", "alias", "list" or "mailbox alias"
    span: Span
    owner: object  # the Mailbox, Alias or MailingList (a mailbox alias: its mailbox)


class Checker:
    def __init__(self, spec: model.Spec):
        self.spec = spec
        self.out: list[Diagnostic] = []
        self.domains: dict[str, model.Domain] = {}
        self.alias_domains: dict[str, str] = {}  # alias domain -> its domain
        self.declared: dict[Address, Declared] = {}
        self.locals: dict[str, list[str]] = {}  # domain -> declared local parts (for "did you mean")
        self.redirected: dict[Address, list[tuple[Address, Span]]] = {}  # mailbox -> Sieve redirects

    def check_backend(self) -> None:
        backend = self.spec.server.backend
        if backend.kind is not model.BackendKind.MYSQL:
            return
        required = (("database", "database mail"), ("user", "user mailspec"),
                    ("password_file", 'password_file "/etc/mailspec/mysql.cnf"'))
        for setting, example in required:
            if getattr(backend, setting) is None:
                self.out.append(errors.mysql_setting_missing(backend.span, setting, example))
        if backend.host is not None and backend.socket is not None:
            self.out.append(errors.mysql_host_and_socket(backend.span))

    def run(self) -> list[Diagnostic]:
        self.check_backend()
        self.index_domains()
        self.index_addresses()
        self.check_references()
        self.check_limits()
        self.check_cycles()
        self.check_mailboxes()
        check_mail_auth(self)
        check_abuse(self)
        return self.out

    # ---------------------------------------------------------------- indexes

    def index_domains(self) -> None:
        for domain in self.spec.domains:
            for name, span in zip(domain.names, (domain.span, *(a.span for a in domain.also)), strict=True):
                found = scripts(name)
                if len(found) > 1:
                    self.out.append(errors.mixed_scripts(span, idna.decode(name), sorted(found)))
            if domain.name in self.domains:
                self.out.append(errors.duplicate_domain(domain.span, domain.name,
                                                        self.domains[domain.name].span))
                continue
            self.domains[domain.name] = domain
        first_alias: dict[str, Span] = {}
        for domain in self.domains.values():
            for also in domain.also:
                if also.name in self.domains:
                    self.out.append(errors.domain_alias_collision(
                        also.span, also.name, self.domains[also.name].span, "a served domain"))
                elif also.name in first_alias:
                    self.out.append(errors.domain_alias_collision(
                        also.span, also.name, first_alias[also.name], "a domain alias"))
                else:
                    first_alias[also.name] = also.span
                    self.alias_domains[also.name] = domain.name

    def canonical(self, address: Address) -> Address:
        """The address in its real domain (domain aliases deliver to the same names)."""
        return model.canonical(address, self.alias_domains)

    def served(self, address: Address) -> bool:
        return address.domain in self.domains or address.domain in self.alias_domains

    def declare(self, address: Address, kind: str, span: Span, owner: object) -> None:
        first = self.declared.get(address)
        if first is None:
            self.declared[address] = Declared(kind, span, owner)
            self.locals.setdefault(address.domain, []).append(address.local)
        elif first.kind == kind == "mailbox":
            self.out.append(errors.duplicate_mailbox(span, address, first.span))
        elif first.kind == "mailbox":
            self.out.append(errors.shadows_mailbox(span, address, kind, first.span))
        else:
            self.out.append(errors.duplicate_address(span, address, kind, first.kind, first.span))

    def index_addresses(self) -> None:
        domains = self.domains.values()
        for domain in domains:  # mailboxes first, so that aliases are reported as shadowing
            for mailbox in domain.mailboxes:
                self.declare(domain.address(mailbox.local), "mailbox", mailbox.span, mailbox)
        for domain in domains:
            for alias in domain.aliases:
                self.declare(domain.address(alias.local), "alias", alias.span, alias)
            for mailing_list in domain.lists:
                self.declare(domain.address(mailing_list.local), "list", mailing_list.span, mailing_list)
            for mailbox in domain.mailboxes:
                for ref in mailbox.aliases:
                    if not self.served(ref.address):
                        self.out.append(errors.not_served(ref.span, "mailbox alias", ref.address))
                        continue
                    self.declare(self.canonical(ref.address), "mailbox alias", ref.span, mailbox)

    # ---------------------------------------------------------------- references

    def lookup(self, ref: Ref, what: str) -> Declared | None:
        """The declaration a served address refers to; reports unknown ones. None if external."""
        if not self.served(ref.address):
            return None
        address = self.canonical(ref.address)
        found = self.declared.get(address)
        if found is None:
            self.out.append(errors.unknown_reference(ref.span, what, address,
                                                     self.locals.get(address.domain, [])))
        return found

    def delivers_to_send_only(self, ref: Ref, what: str, found: Declared | None) -> None:
        if found and found.kind == "mailbox" and found.owner.send_only:
            self.out.append(errors.send_only_target(ref.span, what, self.canonical(ref.address), found.span))

    def check_references(self) -> None:
        rejected = set(self.spec.server.filters.reject_recipients)
        for domain in self.domains.values():
            if domain.catch_all is not None:
                ref = domain.catch_all
                if self.served(ref.address):
                    found = self.declared.get(self.canonical(ref.address))
                    if found is None:
                        self.out.append(errors.unknown_catch_all(
                            ref.span, self.canonical(ref.address), self.locals.get(ref.address.domain, [])))
                    self.delivers_to_send_only(ref, "the catch-all", found)
            for alias in domain.aliases:
                for ref in alias.targets:
                    what = f"alias `{alias.local}`"
                    self.delivers_to_send_only(ref, what, self.lookup(ref, what))
                self.warn_unreachable(alias.span, "alias", domain.address(alias.local), rejected)
            for mailing_list in domain.lists:
                self.check_list(domain, mailing_list)
                self.warn_unreachable(mailing_list.span, "list", domain.address(mailing_list.local), rejected)

    def warn_unreachable(self, span: Span, what: str, address: Address, rejected: set[str]) -> None:
        if rejected and access_listed(rejected, str(address), self.spec.server.recipient_delimiter):
            self.out.append(errors.unreachable(span, what, address))

    def check_list(self, domain: model.Domain, mailing_list: model.MailingList) -> None:
        what = f"list `{mailing_list.local}`"
        for ref in mailing_list.members:
            self.delivers_to_send_only(ref, what, self.lookup(ref, what))
        announcer = mailing_list.announcer
        if mailing_list.post is model.Post.ANNOUNCER:
            if announcer is None:
                self.out.append(errors.missing_announcer(mailing_list.span))
            elif self.canonical(announcer.address) not in {self.canonical(m.address) for m in mailing_list.members}:
                self.out.append(errors.announcer_not_member(announcer.span, announcer.address))

    # ---------------------------------------------------------------- limits

    def check_limits(self) -> None:
        for domain in self.domains.values():
            limits = domain.limits
            if limits.mailboxes is not None and len(domain.mailboxes) > limits.mailboxes:
                self.out.append(errors.too_many_mailboxes(domain.span, domain.name,
                                                          len(domain.mailboxes), limits.mailboxes))
            if limits.quota is not None:
                unlimited = [m for m in domain.mailboxes if m.quota is None]
                for mailbox in unlimited:
                    self.out.append(errors.unlimited_mailbox(mailbox.span, domain.name))
                total = sum(m.quota or 0 for m in domain.mailboxes)
                if not unlimited and total > limits.quota:
                    self.out.append(errors.quota_over_limit(domain.span, domain.name,
                                                            _human_size(total), _human_size(limits.quota)))

    # ---------------------------------------------------------------- cycles

    def edges(self) -> dict[Address, list[tuple[Address, Span]]]:
        """Who each local address passes mail on to, as Postfix expands virtual aliases."""
        graph: dict[Address, list[tuple[Address, Span]]] = {}
        for domain in self.domains.values():
            for alias in domain.aliases:
                graph[domain.address(alias.local)] = [(self.canonical(r.address), alias.span) for r in alias.targets]
            for mailing_list in domain.lists:
                graph[domain.address(mailing_list.local)] = [
                    (self.canonical(r.address), mailing_list.span) for r in mailing_list.members]
            for mailbox in domain.mailboxes:
                if not mailbox.forwards:
                    continue
                own = domain.address(mailbox.local)
                targets = [(self.canonical(r.address), mailbox.span) for r in mailbox.forwards
                           if self.canonical(r.address) != own]
                if targets:
                    graph[own] = targets
        return graph

    def check_cycles(self) -> None:
        """Alias cycles, and chains longer than MAX_ALIAS_CHAIN: a depth-first walk with
        an explicit stack (a chain of thousands of aliases must not exhaust Python's)."""
        graph = self.edges()
        done: set[Address] = set()
        reported: set[frozenset] = set()
        for start in sorted(graph):
            if start in done or not graph[start]:
                continue
            if not any(target in graph for target, _ in graph[start]):
                done.add(start)  # the common case: every target is a mailbox or outside
                continue
            path: list[Address] = [start]
            on_path = {start}
            stack = [iter(graph[start])]
            while stack:
                step = next(stack[-1], None)
                if step is None:
                    stack.pop()
                    finished = path.pop()
                    on_path.discard(finished)
                    done.add(finished)
                    continue
                node, span = step
                if node in on_path:
                    cycle = path[path.index(node):] + [node]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        self.out.append(errors.alias_cycle(span, cycle))
                    continue
                if node in done or node not in graph:
                    continue
                if len(path) == MAX_ALIAS_CHAIN:
                    self.out.append(errors.alias_chain_too_long(span, path[0], MAX_ALIAS_CHAIN))
                    return
                path.append(node)
                on_path.add(node)
                stack.append(iter(graph[node]))

    # ---------------------------------------------------------------- mailboxes

    def check_mailboxes(self) -> None:
        for domain in self.domains.values():
            for mailbox in domain.mailboxes:
                address = domain.address(mailbox.local)
                if mailbox.password is None:
                    self.out.append(errors.no_password(mailbox.span, address))
                if mailbox.send_only:
                    for ref in mailbox.aliases:
                        self.out.append(errors.send_only_target(ref.span, "mailbox alias",
                                                                self.canonical(ref.address), mailbox.span))
                for ref in mailbox.forwards:
                    target = self.canonical(ref.address)
                    if target == address and not mailbox.keep_copy:
                        self.out.append(errors.bad_forward(ref.span, "forward", target,
                                                           "the mailbox forwards to itself"))
                    elif target != address:
                        self.delivers_to_send_only(ref, "forward", self.lookup(ref, "forward"))
                for ref in mailbox.send_as:
                    if not self.served(ref.address):
                        if not ref.external:
                            self.out.append(errors.send_as_foreign(ref.span, ref.address))
                    else:
                        self.lookup(ref, "send-as right")
                runs_locally = not mailbox.forwards or mailbox.keep_copy
                if not runs_locally and (mailbox.sieve or mailbox.auto_reply):
                    self.out.append(errors.sieve_never_runs(mailbox.span, address))
                if mailbox.sieve or mailbox.auto_reply is not None:
                    self.out.extend(check_sieve(mailbox, self.redirect_problem))
                reply = mailbox.auto_reply
                if reply is not None and reply.until is not None and reply.until < datetime.date.today():
                    self.out.append(errors.auto_reply_over(reply.span, address, reply.until))
                for target, span in redirects(mailbox.sieve) if mailbox.sieve else ():
                    target = self.canonical(target)
                    if target == address:
                        self.out.append(errors.redirect_to_itself(span, address))
                    else:
                        self.redirected.setdefault(address, []).append((target, span))
        for source, targets in sorted(self.redirected.items()):
            for target, span in targets:
                back = [s for t, s in self.redirected.get(target, ()) if t == source]
                if back and source < target:
                    self.out.append(errors.redirect_loop(span, source, target, back[0]))

    def redirect_problem(self, ref_address: Address, span: Span) -> None:
        """Sieve redirects are checked like forwards."""
        if self.served(ref_address):
            self.lookup(Ref(ref_address, span=span), "redirect")


def redirects(commands) -> list[tuple[Address, Span]]:
    """Every Sieve redirect in `commands`, in any branch (nesting is bounded by the parser)."""
    found = []
    for command in commands:
        if isinstance(command, model.If):
            for branch in command.branches:
                found += redirects(branch.body)
            found += redirects(command.otherwise or ())
        elif isinstance(command, model.Redirect):
            found.append((command.to, command.span))
    return found


def scripts(name: str) -> set[str]:
    """The Unicode scripts mixed within one label of a domain name (by the characters'
    names); empty when every label keeps to one script."""
    if "xn--" not in name:  # plain ASCII: one script
        return set()
    try:
        text = idna.decode(name)
    except (idna.IDNAError, UnicodeError):
        return set()
    mixed = set()
    for label in text.split("."):
        found = {unicodedata.name(c, "UNKNOWN").split()[0] for c in label if c.isalpha()}
        if len(found) > 1:
            mixed |= found
    return mixed


def check_spec(spec: model.Spec) -> list[Diagnostic]:
    return Checker(spec).run()
