"""A hypothesis strategy for valid specs, printed as .mailspec text.

A generated spec is a plain description (domains, mailboxes, aliases, lists) that can be
printed in any declaration order: the order must not change the compiled output.
Aliases only point at earlier names, so there are no cycles, and chains get deep.
Shrinking gives small specs; `render` shows a failing one as readable text.
"""

from __future__ import annotations

import random

import attrs
from hypothesis import strategies as st

HASH = ("{SHA512-CRYPT}$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6Z"
        "DvuFWpUZ8hJTQ.ivwSwz4/Ebzn.eKM.Tddy1")
LOCALS = ["alice", "bob", "carol", "dave", "erin", "frank", "o'neil", "x.y", "mx-1", "z_9"]
OUTSIDE = ["friend@outside.example", "ops@partner.example"]


@attrs.frozen
class Mailbox:
    local: str
    quota_mib: int | None
    forwards: tuple[str, ...]
    keep_copy: bool
    send_only: bool
    send_as: tuple[str, ...] = ()  # names in the domain, or `external …` (mutations add them: tests/test_diff.py)


@attrs.frozen
class Domain:
    name: str
    also: tuple[str, ...]
    plus: bool
    catch_all: str | None
    mailboxes: tuple[Mailbox, ...]
    aliases: tuple[tuple[str, tuple[str, ...]], ...]  # (local, targets), in dependency order
    lists: tuple[tuple[str, tuple[str, ...]], ...]
    dkim: str = "default"  # or "no", or "ed25519"


@st.composite
def domains(draw, index: int) -> Domain:
    name = f"d{index}.example"
    locals_ = draw(st.lists(st.sampled_from(LOCALS), min_size=1, max_size=5, unique=True))
    mailboxes = []
    for local in locals_:
        forwards = tuple(draw(st.lists(st.sampled_from(OUTSIDE), max_size=2, unique=True)))
        mailboxes.append(Mailbox(local, draw(st.none() | st.integers(1, 2048)), forwards,
                                 bool(forwards) and draw(st.booleans()),
                                 not forwards and draw(st.booleans())))
    receiving = [m.local for m in mailboxes if not m.send_only]
    names = list(receiving)
    aliases = []
    for number in range(draw(st.integers(0, 7))):
        if not names:
            break
        local = f"alias{number}"
        targets = draw(st.lists(st.sampled_from(names[-3:] + OUTSIDE[:1]), min_size=1, max_size=3,
                                unique=True))
        aliases.append((local, tuple(targets)))
        names.append(local)
    lists = []
    if receiving and draw(st.booleans()):
        lists.append(("team", tuple(draw(st.lists(st.sampled_from(receiving + OUTSIDE), min_size=1,
                                                  max_size=4, unique=True)))))
    return Domain(name, tuple(f"alias{index}-{n}.example" for n in range(draw(st.integers(0, 2)))),
                  draw(st.booleans()), draw(st.none() | st.sampled_from(receiving or [None])),
                  tuple(mailboxes), tuple(aliases), tuple(lists),
                  draw(st.sampled_from(["default", "default", "no", "ed25519"])))


@attrs.frozen
class Spec:
    domains: tuple[Domain, ...]
    reject_recipients: tuple[str, ...]  # addresses and domains, for the filters block


@st.composite
def specs(draw) -> Spec:
    found = tuple(draw(domains(i)) for i in range(draw(st.integers(1, 3))))
    names = sorted({f"{m.local}@{d.name}" for d in found for m in d.mailboxes if "'" not in m.local}
                   | {f"alias0@{d.name}" for d in found if d.aliases} | set(OUTSIDE) | {"partner.example"})
    rejected = draw(st.lists(st.sampled_from(names), max_size=2, unique=True))
    return Spec(found, tuple(sorted(rejected)))


SPECS = specs()


def quoted(local: str) -> str:
    return f'"{local}"' if "'" in local else local


def render(spec: Spec, seed: int | None = None, server_lines: tuple[str, ...] = ()) -> str:
    """The spec as text; with a seed, domains, mailboxes, aliases, lists and filters are
    shuffled. `server_lines` go into the server block."""
    shuffle = random.Random(seed).shuffle if seed is not None else (lambda items: None)
    blocks = []
    for domain in _shuffled(spec.domains, shuffle):
        lines = [f"domain {domain.name} {{"]
        if domain.also:
            lines.append(f"  also {', '.join(domain.also)}")
        lines.append(f"  plus_addressing {'yes' if domain.plus else 'no'}")
        lines += {"default": [], "no": ["  dkim no"], "ed25519": ["  dkim { selector ed1; key ed25519 }"]}[domain.dkim]
        if domain.catch_all:
            lines.append(f"  catch_all {quoted(domain.catch_all)}")
        statements = []
        for box in domain.mailboxes:
            body = [f'password "{HASH}"']
            if box.quota_mib:
                body.append(f"quota {box.quota_mib} MiB")
            if box.forwards:
                body.append(f"forward {', '.join(box.forwards)}")
            if box.keep_copy:
                body.append("keep_copy")
            if box.send_only:
                body.append("send_only")
            if box.send_as:
                body.append(f"send_as {', '.join(box.send_as)}")
            statements.append(f"  mailbox {quoted(box.local)} {{ {'; '.join(body)} }}")
        statements += [f"  alias {local} -> {', '.join(quoted(t) for t in targets)}"
                       for local, targets in domain.aliases]
        statements += [f"  list {local} {{ members {', '.join(quoted(m) for m in members)} }}"
                       for local, members in domain.lists]
        shuffle(statements)
        blocks.append("\n".join(lines + statements + ["}"]))
    server = ["server {", "  hostname mail.example.com", *(f"  {line}" for line in server_lines)]
    if spec.reject_recipients:
        server.append(f"  filters {{ reject_recipient {', '.join(_shuffled(spec.reject_recipients, shuffle))} }}")
    return "\n".join(server + ["}"] + blocks) + "\n"


def render_files(spec: Spec, seed: int | None = None) -> dict[str, str]:
    """The usual layout: a root file that imports one file per domain (imports shuffled
    with the seed, like everything else)."""
    shuffle = random.Random(seed).shuffle if seed is not None else (lambda items: None)
    text = render(spec, seed)
    server, *domain_blocks = text.split("\ndomain ")
    files = {f"domains/{block.split(' ', 1)[0]}.mailspec": "domain " + block.rstrip("\n") + "\n"
             for block in domain_blocks}
    imports = [f'import "{name}"' for name in files]
    shuffle(imports)
    files["spec.mailspec"] = server + "\n" + "\n".join(imports) + "\n"
    return files


def _shuffled(items, shuffle) -> list:
    items = list(items)
    shuffle(items)
    return items


def addresses(spec: Spec) -> list[str]:
    """Addresses worth routing: every declared name in every domain name, plus tagged,
    mixed-case, unknown and outside ones."""
    found = set(OUTSIDE) | {"Friend+Tag@Outside.example"}
    for domain in spec.domains:
        locals_ = [m.local for m in domain.mailboxes] + [a for a, _ in domain.aliases] + \
            [name for name, _ in domain.lists]
        for name in (domain.name, *domain.also):
            found |= {f"{local}@{name}" for local in locals_}
            found.add(f"nobody@{name}")
        found.add(f"{locals_[0]}+tag@{domain.name}")
        found.add(f"{locals_[0].upper()}@{domain.name.upper()}")  # mixed case
        found.add(f"{locals_[-1].capitalize()}+Tag@{domain.name}")
        found |= {f"{locals_[-1]}+@{domain.name}", f"+{locals_[0]}@{domain.name}"}  # empty base or extension
    return sorted(found)
