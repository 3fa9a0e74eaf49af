"""`mailspec passwd`: a password hash in Dovecot's `{SCHEME}` form, made with maintained
libraries, so an administrator's laptop needs no Dovecot.

ARGON2ID is the default: the strongest scheme Dovecot 2.3 verifies (through libsodium,
which takes one lane only: parallelism 1). BLF-CRYPT is bcrypt. SHA512-CRYPT is not
offered: Python's crypt module is gone from 3.13, and passlib is no longer kept."""

from __future__ import annotations

SCHEMES = ("ARGON2ID", "BLF-CRYPT")
DEFAULT = "ARGON2ID"
# What `doveadm pw -s ARGON2ID` makes (3 passes over 64 MiB), above OWASP's minimum: each
# login's check costs that much memory in Dovecot's auth worker.
ARGON2_TIME, ARGON2_MEMORY_KIB = 3, 65536
BCRYPT_COST = 12  # the check warns below 10 (W0317)


def hash_password(password: str, scheme: str = DEFAULT) -> str:
    if not password:
        raise ValueError("the password is empty")
    if scheme == "ARGON2ID":
        from argon2 import PasswordHasher, Type

        hasher = PasswordHasher(time_cost=ARGON2_TIME, memory_cost=ARGON2_MEMORY_KIB, parallelism=1,
                                type=Type.ID)
        return "{ARGON2ID}" + hasher.hash(password)
    if scheme == "BLF-CRYPT":
        import bcrypt

        encoded = password.encode()
        if len(encoded) > 72:
            raise ValueError("bcrypt reads only the first 72 bytes of a password; this one is longer")
        return "{BLF-CRYPT}" + bcrypt.hashpw(encoded, bcrypt.gensalt(BCRYPT_COST)).decode()
    raise ValueError(f"unknown scheme {scheme}")
