"""Zone fragments as text that nsd, Knot and BIND load, and the same records as JSON."""

from __future__ import annotations

import json
import re

from mailspec.dns.records import TTL, Fragment, Record

MAX_STRING = 255  # one <character-string> (RFC 1035 3.3)
ZONE_MARK = re.compile(r"^; ---- zone (\S+)\n", re.M)


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


def split_zones(printed: str) -> dict[str, str]:
    """`mailspec dns` output -> {origin: that zone's part of it}."""
    parts = ZONE_MARK.split(printed)[1:]
    return dict(zip(parts[0::2], parts[1::2], strict=True))


def standalone(origin: str, body: str, server: str = "127.0.0.1") -> str:
    """A whole zone for a test DNS server: the apex records a DNS host adds (its name
    server at `server`), then `body` as printed."""
    return (f"$ORIGIN {origin}\n$TTL 3600\n@ IN SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 300\n"
            f"@ IN NS ns.{origin}\nns IN A {server}\n{body}")
