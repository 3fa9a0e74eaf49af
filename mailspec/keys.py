"""DKIM keys and the SRS secret for a spec, made once and kept: `mailspec keys` writes them 0600 from the
first byte into a directory outside the deploy tree, and never replaces one without
`force`. The deploy directory names them by path under the spec's `server { keys … }`;
`mailspec dns` reads their public halves. The SRS secret (postsrsd's, one line of
random base64) signs the addresses that forwarded mail leaves with: every MX of a domain
must share it, and a new one breaks bounces to the addresses the old one made.

Formats are the ones rspamd reads: RSA as PKCS#8 PEM, ed25519 as rspamd's own base64 of
the 32-byte seed followed by the 32-byte public key."""

from __future__ import annotations

import base64
import binascii
import os
import secrets

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailspec import model
from mailspec.certs import write_private
from mailspec.model import KeyType

SRS_SECRET = "srs.secret"  # relative to the keys directory
RSA_EXPECTED = "it is not a 2048-bit RSA private key in PEM, as `key rsa-2048` says"


class KeyProblem(Exception):
    """A key file that is missing, unreadable, or not the type the spec says."""


@attrs.frozen
class DkimKey:
    domain: str  # the domain block's name: its alias domains sign with the same key
    selector: str
    type: KeyType

    @property
    def path(self) -> str:
        """Relative to the keys directory."""
        return f"dkim/{self.domain}.{self.selector}.key"


def dkim_keys(spec: model.Spec) -> list[DkimKey]:
    """Every key the spec publishes: each signing domain's selector and standby."""
    return [DkimKey(d.name, selector, d.dkim.key) for d in spec.domains if d.dkim.sign
            for selector in d.dkim.selectors]


def key_files(spec: model.Spec) -> list[str]:
    """Every file `mailspec keys` makes for the spec, relative to the keys directory."""
    return [key.path for key in dkim_keys(spec)] + [SRS_SECRET]


def _private_bytes(key_type: KeyType) -> bytes:
    if key_type is KeyType.RSA2048:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed + public) + b"\n"


def public_key(data: bytes, key_type: KeyType) -> str:
    """The `p=` of the DKIM record (base64): RSA's SubjectPublicKeyInfo, ed25519's raw key.
    Raises KeyProblem when `data` is not a private key of `key_type`."""
    if key_type is KeyType.RSA2048:
        try:
            key = serialization.load_pem_private_key(data, None)
        except (ValueError, TypeError):
            raise KeyProblem(RSA_EXPECTED) from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != 2048:
            raise KeyProblem(RSA_EXPECTED)
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 64 or ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32]).public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw) != raw[32:]:
        raise KeyProblem("it is not an ed25519 key in rspamd's format, as `key ed25519` says")
    return base64.b64encode(raw[32:]).decode()


def read_public(directory: str, key: DkimKey) -> str:
    path = os.path.join(directory, key.path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(16384)
    except OSError as error:
        raise KeyProblem(f"cannot read {path}: {(error.strerror or str(error)).lower()}") from None
    try:
        return public_key(data, key.type)
    except KeyProblem as problem:
        raise KeyProblem(f"{path}: {problem}") from None


def make_keys(spec: model.Spec, directory: str, force: bool = False) -> tuple[list[str], list[str]]:
    """Create the keys the spec needs in `directory`: (written paths, kept paths). An
    existing key of the right type is kept; one of the wrong type is a KeyProblem unless
    `force` (a new key under an old selector breaks mail until DNS caches expire)."""
    written, kept = [], []
    os.makedirs(os.path.join(directory, "dkim"), mode=0o700, exist_ok=True)
    for key in dkim_keys(spec):
        path = os.path.join(directory, key.path)
        if os.path.exists(path) and not force:
            read_public(directory, key)
            kept.append(path)
            continue
        write_private(path, _private_bytes(key.type))
        written.append(path)
    path = os.path.join(directory, SRS_SECRET)
    if os.path.exists(path) and not force:
        kept.append(path)
    else:
        write_private(path, base64.b64encode(secrets.token_bytes(24)) + b"\n")
        written.append(path)
    return written, kept
