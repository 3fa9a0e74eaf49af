"""The diff as text (for a terminal, coloured when it is one), Markdown (a pull-request
comment, summary line first) or JSON (for tools)."""

from __future__ import annotations

import json

import attrs
import click

from mailspec.diff.changes import AddressChange, Change, Diff, DomainChange, Where
from mailspec.diff.sides import Loaded

TITLES = {"sending": "Sending", "lists": "Lists", "limits": "Limits and quotas", "sieve": "Sieve",
          "server": "Server and security"}


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def summary(found: Diff) -> str:
    if found.empty:
        return "no change in meaning"
    external = {a for entry in (*found.addresses, *found.domains) for a in entry.newly_external}
    parts = []
    if found.addresses:
        parts.append(_plural(len(found.addresses), "address changes delivery", "addresses change delivery"))
    if found.domains:
        parts.append(_plural(len(found.domains), "domain changes what unknown addresses do",
                             "domains change what unknown addresses do"))
    if external:
        parts.append(f"{_plural(len(external), 'new external destination')}")
    widened = [c for c in found.section("sending") if c.risky]
    if widened:
        parts.append(f"{_plural(len(widened), 'widened send-as right')}")
    risky = [c for c in found.changes if c.risky and c.section != "sending"]
    if risky:
        parts.append(_plural(len(risky), "setting that widens access", "settings that widen access"))
    others = len([c for c in found.changes if not c.risky])
    if others:
        parts.append(f"{_plural(others, 'other change')}")
    return ", ".join(parts)


class _Places:
    def __init__(self, old: Loaded, new: Loaded):
        self.sides = {"old": old, "new": new}

    def one(self, where: Where) -> dict:
        path, line, column = self.sides[where.side].where(where)
        return {"side": where.side, "file": path, "line": line, "column": column}

    def text(self, wheres) -> str:
        shown = [self.one(w) for w in wheres]
        return ", ".join(f"{p['file']}:{p['line']}:{p['column']}" for p in shown)


def _files_lines(found: Diff) -> list[str]:
    return [f"{name}: {c.added} added, {c.changed} changed, {c.removed} removed" for name, c in found.files]


# ---------------------------------------------------------------- text

def text(found: Diff, old: Loaded, new: Loaded) -> str:
    places, out = _Places(old, new), [click.style(summary(found), bold=True)]

    def heading(title: str) -> None:
        out.extend(["", click.style(title, bold=True, underline=True)])

    def entry(subject: str, before: str, after: str, wheres, warnings=(), items: Change | None = None) -> None:
        out.append(f"  {click.style(subject, bold=True)}" + (f"  ({places.text(wheres)})" if wheres else ""))
        out.append(click.style(f"    - {before}", fg="red"))
        out.append(click.style(f"    + {after}", fg="green"))
        if items is not None:
            out.extend(click.style(f"        - {item}", fg="red") for item in items.removed)
            out.extend(click.style(f"        + {item}", fg="green") for item in items.added)
        out.extend(click.style(f"    ! {w}", fg="yellow", bold=True) for w in warnings)

    if found.addresses or found.domains:
        heading("Receiving")
        for a in found.addresses:
            entry(a.address, a.before.shown(), a.after.shown(), a.where, _external(a))
            if a.tagged_differs:
                out.append(f"    with an extension ({_tag(a.address)}):")
                out.append(click.style(f"    - {a.tagged_before.shown()}", fg="red"))
                out.append(click.style(f"    + {a.tagged_after.shown()}", fg="green"))
        for d in found.domains:
            entry(d.domain, d.before.shown(), d.after.shown(), d.where, _external(d))
    for section, title in TITLES.items():
        changes = found.section(section)
        if changes:
            heading(title)
            for c in changes:
                entry(c.subject, c.before, c.after, c.where, [f"widens: {c.risky}"] if c.risky else [],
                      c if c.section == "sieve" else None)
    if found.files:
        heading("Generated files")
        out.extend("  " + line for line in _files_lines(found))
    return "\n".join(out) + "\n"


def _tag(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}+…@{domain}"


def _tagged(entry: AddressChange) -> list[str]:
    return [f"with an extension: {entry.tagged_before.shown()} → {entry.tagged_after.shown()}"] \
        if entry.tagged_differs else []


def _external(entry: AddressChange | DomainChange) -> list[str]:
    return [f"now leaves the organisation: {', '.join(entry.newly_external)}"] if entry.newly_external else []


# ---------------------------------------------------------------- markdown

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(found: Diff, old: Loaded, new: Loaded) -> str:
    places = _Places(old, new)
    out = ["## mailspec diff", "", f"**{summary(found)}**"]

    def table(title: str, head: str, rows: list[tuple[str, ...]]) -> None:
        out.extend(["", f"### {title}", "", f"| {head} | before | after | note | declared at |",
                    "|---|---|---|---|---|"])
        out.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)

    if found.addresses:
        table("Receiving", "address", [(f"`{a.address}`", a.before.shown(), a.after.shown(),
                                        "<br>".join([*_tagged(a), *(f"⚠️ {w}" for w in _external(a))]),
                                        places.text(a.where))
                                       for a in found.addresses])
    if found.domains:
        table("Receiving: domains", "domain", [(f"`{d.domain}`", d.before.shown(), d.after.shown(),
                                                "; ".join(f"⚠️ {w}" for w in _external(d)), places.text(d.where))
                                               for d in found.domains])
    for section, title in TITLES.items():
        changes = found.section(section)
        if changes:
            table(title, "what", [(f"`{c.subject}`", c.before, c.after, _note(c), places.text(c.where))
                                  for c in changes])
    if found.files:
        out.extend(["", "### Generated files", "", "| daemon | added | changed | removed |", "|---|---|---|---|"])
        out.extend(f"| {name} | {c.added} | {c.changed} | {c.removed} |" for name, c in found.files)
    return "\n".join(out) + "\n"


def _note(change: Change) -> str:
    notes = [f"⚠️ widens: {change.risky}"] if change.risky else []
    if change.section == "sieve":
        notes += [f"removed: {r}" for r in change.removed] + [f"added: {r}" for r in change.added]
    return "<br>".join(f"`{n}`" if n.startswith(("added", "removed")) else n for n in notes)


# ---------------------------------------------------------------- json

def to_json(found: Diff, old: Loaded, new: Loaded) -> str:
    places = _Places(old, new)

    def plain(record) -> dict:
        data = attrs.asdict(record, recurse=True, filter=lambda field, _: field.name != "where")
        data["where"] = [places.one(w) for w in record.where]
        if hasattr(record, "newly_external"):
            data["newly_external"] = list(record.newly_external)
        return data

    sections: dict[str, list] = {name: [] for name in TITLES}
    for change in found.changes:
        sections[change.section].append({k: v for k, v in plain(change).items() if k != "section"})
    document = {"summary": summary(found), "changed": not found.empty,
                "receiving": [plain(a) for a in found.addresses], "domains": [plain(d) for d in found.domains],
                **sections, "files": {name: attrs.asdict(c) for name, c in found.files}}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


RENDERERS = {"text": text, "markdown": markdown, "json": to_json}


def render(found: Diff, old: Loaded, new: Loaded, output_format: str) -> str:
    return RENDERERS[output_format](found, old, new)

