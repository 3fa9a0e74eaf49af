"""Putting a compiled deploy on a server as a generation, NixOS-style (docs/switch.md).

    store.py     the generations under /var/lib/mailspec, the `current` link, the lock
    build.py     one generation built from a deploy tree: the one install procedure
    daemons.py   reload or restart what changed, and the health check
    activate.py  switch, rollback and gc: the steps in order, with the plan shown first

The live /etc/postfix and /etc/dovecot are links through /var/lib/mailspec/current to a
generation, so a switch is one rename of `current`: no daemon ever reads a mix.
"""
