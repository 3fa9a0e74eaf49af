"""redis backend: the store rspamd keeps what it learns in (bayes), its greylisting
records and its rate buckets. mailspec runs an instance of its own
(`redis-server@mailspec`, on a port of its own), so a Redis the host already has, and
its data, are left alone. It listens on loopback only, and asks for a password: any
local user could reach it there and poison bayes, the greylist or the rate buckets."""

from __future__ import annotations

from mailspec import model
from mailspec.backends import render
from mailspec.layout import Layout


def emit(spec: model.Spec, layout: Layout) -> dict[str, str]:
    return {"redis/redis.conf": render(__name__, "redis.conf.j2", port=layout.ports.redis, data=layout.redis_db,
                                       log=layout.redis_log, pid=layout.redis_pid,
                                       password=layout.redis_password)}


PRIVATE_FILES = frozenset()
