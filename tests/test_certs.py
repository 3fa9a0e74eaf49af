"""`mailspec certs`: a private CA and a server certificate that the real openssl
verifies for every mail name of the spec; keys 0600; the CA is kept across runs."""

import os
import stat
import subprocess
import sys

from conftest import ROOT, checked, need_tool, valid_spec
from cryptography import x509

from mailspec.certs import mail_names


def run_certs(spec, out):
    return subprocess.run([sys.executable, "-m", "mailspec", "certs", str(spec), "--out", str(out)],
                          capture_output=True, text=True)


def test_certificates_verify_for_every_mail_name(tmp_path):
    openssl = need_tool("openssl")
    spec = valid_spec("idna")
    run = run_certs(spec, tmp_path / "tls")
    assert run.returncode == 0, run.stderr
    tls = tmp_path / "tls"
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE(os.stat(tls / key).st_mode) == 0o600
    names = mail_names(checked(spec).spec)
    assert any(n.startswith("mail.xn--") for n in names)  # IDNA names in A-label form
    for name in names:
        verify = subprocess.run([openssl, "verify", "-CAfile", str(tls / "ca.crt"), "-verify_hostname",
                                 name, "-purpose", "sslserver", str(tls / "server.crt")],
                                capture_output=True, text=True)
        assert verify.returncode == 0 and "OK" in verify.stdout, (name, verify.stdout, verify.stderr)
    wrong = subprocess.run([openssl, "verify", "-CAfile", str(tls / "ca.crt"), "-verify_hostname",
                            "mail.not-served.example", str(tls / "server.crt")], capture_output=True, text=True)
    assert wrong.returncode != 0
    certificate = x509.load_pem_x509_certificate((tls / "server.crt").read_bytes())
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(names)


def test_the_ca_is_kept_and_the_key_matches(tmp_path):
    spec = valid_spec("classic")
    assert run_certs(spec, tmp_path).returncode == 0
    first_ca = (tmp_path / "ca.crt").read_bytes()
    first_server = (tmp_path / "server.crt").read_bytes()
    assert run_certs(spec, tmp_path).returncode == 0
    assert (tmp_path / "ca.crt").read_bytes() == first_ca
    assert (tmp_path / "server.crt").read_bytes() != first_server
    check = subprocess.run(["openssl", "x509", "-noout", "-pubkey", "-in", str(tmp_path / "server.crt")],
                           capture_output=True, text=True, check=True).stdout
    from_key = subprocess.run(["openssl", "pkey", "-pubout", "-in", str(tmp_path / "server.key")],
                              capture_output=True, text=True, check=True).stdout
    assert check == from_key


def test_invalid_spec_makes_no_certificates(tmp_path):
    bad = ROOT / "fixtures" / "invalid" / "E0418-mysql-backend-without-user.mailspec"
    run = run_certs(bad, tmp_path / "tls")
    assert run.returncode == 1 and "E0418" in run.stderr
    assert not (tmp_path / "tls").exists()
