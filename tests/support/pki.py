"""A throwaway PKI for tests: a root CA, a timestamp authority's certificate, a domain
certificate and organisation keys, written as PEM files in a directory.

Certificates carry the extensions strict verifiers ask for (basic constraints, key usage, key
identifiers, SAN; the TSA's critical ``timeStamping`` extended key usage).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "attest test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _write_certs(certs: list[x509.Certificate], path: Path) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    eku: list[x509.ObjectIdentifier] | None = None,
    eku_critical: bool = False,
    dns: list[str] | None = None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=eku_critical)
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class TestPKI:
    """Paths of the PEM files a test needs."""

    root: Path  # the trusted root (trust file)
    tsa_key: Path
    tsa_cert: Path
    tsa_chain: Path  # TSA certificate then root
    org_key: Path  # an organisation's signing key
    org_public: Path  # its public key (trust file)
    stranger_key: Path  # a key nobody trusts
    domain_key: Path
    domain_chain: Path  # domain certificate then root
    domain: str


def make_pki(directory: Path, *, label: str = "test") -> TestPKI:
    directory.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _issue(f"{label} root CA", root_key, None, root_key, ca=True)
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa = _issue(
        f"{label} TSA",
        tsa_key,
        root,
        root_key,
        ca=False,
        eku=[ExtendedKeyUsageOID.TIME_STAMPING],
        eku_critical=True,
    )
    domain = "evidence.attest.test"
    domain_key = ec.generate_private_key(ec.SECP256R1())
    domain_cert = _issue(
        domain,
        domain_key,
        root,
        root_key,
        ca=False,
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
        dns=[domain],
    )
    org_key = ec.generate_private_key(ec.SECP384R1())
    stranger = ec.generate_private_key(ec.SECP384R1())
    org_public = directory / "org.pub.pem"
    org_public.write_bytes(
        org_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return TestPKI(
        root=_write_certs([root], directory / "root.pem"),
        tsa_key=_write_key(tsa_key, directory / "tsa.key"),
        tsa_cert=_write_certs([tsa], directory / "tsa.pem"),
        tsa_chain=_write_certs([tsa, root], directory / "tsa-chain.pem"),
        org_key=_write_key(org_key, directory / "org.pem"),
        org_public=org_public,
        stranger_key=_write_key(stranger, directory / "stranger.pem"),
        domain_key=_write_key(domain_key, directory / "domain.key"),
        domain_chain=_write_certs([domain_cert, root], directory / "domain-chain.pem"),
        domain=domain,
    )
