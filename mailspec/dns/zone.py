"""Zone fragments as text that nsd, Knot and BIND load, and the same records as JSON."""

from __future__ import annotations

import json

from mailspec.dns.records import TTL, Fragment, Record

MAX_STRING = 255  # one <character-string> (RFC 1035 3.3)


def quoted(text: str) -> str:
    """A TXT value as zone text: strings of at most 255 bytes, each quoted."""
    data = text.encode("ascii")
    chunks = [data[i:i + MAX_STRING].decode("ascii") for i in range(0, len(data), MAX_STRING)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def line(record: Record) -> str:
    value = quoted(record.value) if record.type == "TXT" else record.value
    return f"; {record.why}\n{record.name} {TTL} IN {record.type} {value}\n"


def zone_text(fragments: list[Fragment], spec_name: str) -> str:
    parts = [f"; DNS records for {spec_name}, made by `mailspec dns`. Publish each fragment in the zone "
             "it names.\n"]
    for fragment in fragments:
        parts.append(f"\n; ---- zone {fragment.origin}\n")
        parts += [f"; {note}\n" for note in fragment.notes]
        parts += [line(record) for record in fragment.records]
    return "".join(parts)


def zone_json(fragments: list[Fragment]) -> str:
    return json.dumps([{"zone": f.origin, "notes": list(f.notes),
                        "records": [{"name": r.name, "type": r.type, "ttl": TTL, "value": r.value,
                                     "why": r.why, "required": r.required} for r in f.records]}
                       for f in fragments], indent=2) + "\n"
