"""TLS material for a spec, as the classic how-to makes it by hand with openssl: a
private CA and a server certificate for the hostname and the served domains' mail names,
signed by that CA. Keys are written 0600 and never go into a deploy directory.

The certificate stays small whatever the number of domains: OpenSSL clients refuse a
handshake message over 100 KiB, which 1,600 names reach. Beyond MAX_NAMES (the most a
public CA puts in one certificate) it names the hostname only, where MX records and
clients point anyway."""

from __future__ import annotations

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailspec import model
from mailspec.paths import write_with_mode

MAX_NAMES = 100
CA_DAYS = 3650
SERVER_DAYS = 397  # what browsers and most clients accept for a leaf certificate


def all_mail_names(spec: model.Spec) -> list[str]:
    """The names clients may use: the hostname, `mail.` plus each served domain name, and
    the names of the web site (autoconfig, autodiscover, mta-sts)."""
    from mailspec.backends.nginx import web_names

    return list(dict.fromkeys([spec.server.hostname, *(f"mail.{n}" for d in spec.domains for n in d.names),
                               *web_names(spec)]))


def mail_names(spec: model.Spec) -> list[str]:
    """The names the certificate covers: all of them up to MAX_NAMES, else the hostname."""
    names = all_mail_names(spec)
    return names if len(names) <= MAX_NAMES else names[:1]


def write_private(path: str, data: bytes) -> None:
    write_with_mode(path, data, 0o600)


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_or_create_ca(out: str, hostname: str, now: datetime.datetime):
    key_path, cert_path = os.path.join(out, "ca.key"), os.path.join(out, "ca.crt")
    if os.path.exists(key_path) and os.path.exists(cert_path):  # keep the CA clients trust
        with open(key_path, "rb") as key_file, open(cert_path, "rb") as cert_file:
            return (serialization.load_pem_private_key(key_file.read(), None),
                    x509.load_pem_x509_certificate(cert_file.read()))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"mailspec CA for {hostname}")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    write_with_mode(key_path, _pem_key(key), 0o600)
    write_with_mode(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return key, cert


def make_certificates(spec: model.Spec, out: str) -> dict[str, str]:
    """Write ca.key, ca.crt, server.key and server.crt (with the chain) into `out`."""
    os.makedirs(out, mode=0o700, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, ca_cert = _load_or_create_ca(out, spec.server.hostname, now)
    key = ec.generate_private_key(ec.SECP256R1())
    names = mail_names(spec)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {name: os.path.join(out, name) for name in ("ca.key", "ca.crt", "server.key", "server.crt")}
    write_with_mode(paths["server.key"], _pem_key(key), 0o600)
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    write_with_mode(paths["server.crt"], chain, 0o644)
    return paths
