"""``teeprover certs dev``: a self-signed development certificate and key for the HTTPS listener.

For local testing of ``TEEPROVER_TLS_PORT`` only: the certificate is valid for
``localhost``, ``127.0.0.1`` and ``::1``, signed by itself, and must never be
used in production (use a certificate from a real CA there).  The key is an
ECDSA P-256 key written with mode 0600.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_NAME = "dev-cert.pem"
KEY_NAME = "dev-key.pem"
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


def make_dev_cert(
    directory: Path,
    *,
    hosts: tuple[str, ...] = DEFAULT_HOSTS,
    days: int = 30,
    now: dt.datetime | None = None,
) -> tuple[Path, Path]:
    """Write ``dev-cert.pem`` and ``dev-key.pem`` into ``directory``; returns (cert, key) paths."""
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "localhost"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TEE Prover development (INSECURE)")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def register(sub: Any) -> None:
    p = sub.add_parser("certs", help="TLS certificates")
    csub = p.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    dev = csub.add_parser("dev", help="write a self-signed development certificate and key (INSECURE: local use only)")
    dev.add_argument("-o", "--output", type=Path, default=Path("."), metavar="DIR",
                     help="directory for dev-cert.pem and dev-key.pem (default: current directory)")
    dev.add_argument("--host", action="append", dest="hosts", metavar="NAME",
                     help="DNS name or IP address for the certificate (repeatable; "
                          "default: localhost, 127.0.0.1, ::1)")
    dev.add_argument("--days", type=int, default=30, help="validity in days (default 30)")
    dev.set_defaults(func=_dev)


def _dev(args: argparse.Namespace) -> int:
    if args.days < 1:
        print("--days must be >= 1")
        return 2
    cert, key = make_dev_cert(args.output, hosts=tuple(args.hosts or DEFAULT_HOSTS), days=args.days)
    print(f"certificate: {cert}")
    print(f"key:         {key}")
    print(f"use: TEEPROVER_TLS_PORT=6443 TEEPROVER_TLS_CERT={cert} TEEPROVER_TLS_KEY={key} teeprover serve all")
    print("INSECURE: a self-signed development certificate; never use it in production")
    return 0
