#!/usr/bin/env python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make a test CA and a server certificate signed by it (for the Samba AD DC, the lab, the tests).

    python tests/harness/make_ca.py --out DIR --names dc1,localhost,127.0.0.1

writes, in DIR:
  ca.pem, ca.key          the CA (ca.key mode 0600)
  server.pem, server.key  the server certificate (CN = the first name; every name in
                          subjectAltName, IP addresses as iPAddress entries) and its key (0600)

Idempotent: files that exist are kept (a missing server certificate is signed with the existing
CA). ``--force`` makes everything new. Importable: ``make_ca(out, names)`` returns the paths.
The mounted directory for the Samba image (tests/images/samba) needs exactly ca.pem, server.pem
and server.key.
"""

import argparse
import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write(path, data, mode):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _san(name):
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_ca(out, names, ca_name="juno.hub test CA", force=False):
    """Create (or keep) ca.pem/ca.key and server.pem/server.key in ``out`` for ``names``.

    Returns a dict with the paths: ``ca``, ``ca_key``, ``cert``, ``key``.
    """
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        raise ValueError("at least one name is needed for the server certificate")
    os.makedirs(out, exist_ok=True)
    paths = {k: os.path.join(out, f) for k, f in
             (("ca", "ca.pem"), ("ca_key", "ca.key"), ("cert", "server.pem"), ("key", "server.key"))}
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(hours=1)

    if force or not (os.path.exists(paths["ca"]) and os.path.exists(paths["ca_key"])):
        ca_key = _key()
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "juno.hub tests"),
                             x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write(paths["ca_key"], _key_pem(ca_key), 0o600)
        _write(paths["ca"], ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        force = True  # a new CA invalidates the old server certificate

    if force or not (os.path.exists(paths["cert"]) and os.path.exists(paths["key"])):
        with open(paths["ca_key"], "rb") as fh:
            ca_key = serialization.load_pem_private_key(fh.read(), password=None)
        with open(paths["ca"], "rb") as fh:
            ca_cert = x509.load_pem_x509_certificate(fh.read())
        key = _key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write(paths["key"], _key_pem(key), 0o600)
        _write(paths["cert"], cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", required=True, help="directory for ca.pem, ca.key, server.pem, server.key")
    parser.add_argument("--names", required=True,
                        help="comma-separated DNS names and IP addresses for the server certificate (first = CN)")
    parser.add_argument("--ca-name", default="juno.hub test CA", help="common name of the CA")
    parser.add_argument("--force", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)
    paths = make_ca(args.out, args.names.split(","), ca_name=args.ca_name, force=args.force)
    for kind in ("ca", "cert", "key"):
        print(paths[kind])
    return 0


if __name__ == "__main__":
    sys.exit(main())
