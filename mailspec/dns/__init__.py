"""The DNS records a spec's domains need (records.py), as zone text or JSON (zone.py),
and the live check against published DNS (live.py)."""
