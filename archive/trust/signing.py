"""Signing a bundle's datapackage digest, and checking a signature against trust anchors.

The signature follows the WACZ Signing and Verification recommendation (0.1.0): the
``signedData`` of ``datapackage-digest.json`` holds the signed ``hash`` (``sha256:<hex>`` of
``datapackage.json``), ``created`` (equal to the datapackage's own ``created``), the software
and an ECDSA signature (SHA-256, DER, base64) over the ASCII ``hash`` string, made with either

- an **organisation key**: ``publicKey`` (base64 DER SubjectPublicKeyInfo) is stored beside the
  signature; who owns the key is established out of band (the verifier's trust file). Here
  ``signature`` is in the WebCrypto form (IEEE P1363, ``r || s``), as ArchiveWeb.page writes it and
  ReplayWeb.page checks it (with a P-384 key, which ``attest keygen`` makes); ``signatureDer``
  holds the same signature DER-encoded, the form ``openssl dgst -verify`` reads; or
- a **domain certificate**: ``domain`` and ``domainCert`` (the PEM chain); the chain must lead
  to a trusted root and name the domain, and an RFC 3161 ``timeSignature`` over the signature
  (with its ``timestampCert`` chain) shows when it was made.

The private key never leaves the signer. A valid signature by a key nobody trusts is reported
as untrusted, which fails verification: anyone can make a valid signature.

Trust anchors are PEM files holding ``PUBLIC KEY`` blocks (trusted organisation keys) and
``CERTIFICATE`` blocks (trusted roots for domain certificates and timestamp authorities).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from archive.errors import ConfigError

SPEC_VERSION = "0.1.0"
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.+?-----END \1-----", re.S)


@dataclass(frozen=True)
class Signer:
    """The key a bundle is signed with, and, in domain mode, its certificate chain."""

    key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...] = ()
    domain: str | None = None

    @property
    def mode(self) -> str:
        return "domain" if self.chain else "key"

    def public_der(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def fingerprint(public_der: bytes) -> str:
    """SHA-256 of a DER SubjectPublicKeyInfo: how a key is named to people."""
    return hashlib.sha256(public_der).hexdigest()


def generate_key(private_path: Path) -> Path:
    """A new P-384 organisation key (mode 0600) and its public key beside it (``.pub.pem``)."""
    public_path = private_path.with_name(private_path.name.removesuffix(".pem") + ".pub.pem")
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(f"{path}: exists; keys are never overwritten")
    private_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public_path


def load_signer(key_path: Path, cert_path: Path | None = None, domain: str | None = None) -> Signer:
    """The signing key (PEM, unencrypted) and, for domain mode, its certificate chain."""
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"ATTEST_SIGNING_KEY={str(key_path)!r}: {exc.strerror}") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(
            f"ATTEST_SIGNING_KEY={str(key_path)!r}: not a PEM private key: {exc}"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(
            f"ATTEST_SIGNING_KEY={str(key_path)!r}: an ECDSA key is required (WACZ signing)"
        )
    if cert_path is None:
        return Signer(key)
    chain = tuple(load_certificates(cert_path, "ATTEST_SIGNING_CERT"))
    if not chain:
        raise ConfigError(f"ATTEST_SIGNING_CERT={str(cert_path)!r}: holds no certificate")
    leaf_key = (
        chain[0]
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    if leaf_key != Signer(key).public_der():
        raise ConfigError(
            f"ATTEST_SIGNING_CERT={str(cert_path)!r}: its first certificate is not for the signing key"
        )
    if not domain:
        names = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = names.get_values_for_type(x509.DNSName)
        if not dns:
            raise ConfigError(f"ATTEST_SIGNING_CERT={str(cert_path)!r}: names no domain")
        domain = dns[0]
    return Signer(key, chain, domain)


def load_certificates(path: Path, setting: str) -> list[x509.Certificate]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}={str(path)!r}: {exc.strerror}") from exc
    try:
        return x509.load_pem_x509_certificates(raw)
    except ValueError as exc:
        raise ConfigError(f"{setting}={str(path)!r}: not PEM certificates: {exc}") from exc


def sign(signer: Signer, digest: str, created: str, software: str) -> dict[str, Any]:
    """``signedData`` for a ``sha256:<hex>`` digest (without the domain mode's timeSignature)."""
    signature = signer.key.sign(digest.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    data: dict[str, Any] = {
        "hash": digest,
        "created": created,
        "software": software,
        "version": SPEC_VERSION,
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    if signer.mode == "key":
        data["signature"] = base64.b64encode(_raw(signature, signer.key.curve)).decode("ascii")
        data["signatureDer"] = base64.b64encode(signature).decode("ascii")
        data["publicKey"] = base64.b64encode(signer.public_der()).decode("ascii")
    else:
        data["domain"] = signer.domain
        data["domainCert"] = "".join(
            c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in signer.chain
        )
    return data


def _size(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


def _raw(der: bytes, curve: ec.EllipticCurve) -> bytes:
    """A DER ECDSA signature as IEEE P1363 ``r || s`` (WebCrypto's form)."""
    r, s = decode_dss_signature(der)
    size = _size(curve)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _der(signature: bytes, curve: ec.EllipticCurve) -> bytes:
    """Either form in, DER out: a raw signature is exactly twice the curve's size (a DER one
    of that length re-encodes to itself)."""
    size = _size(curve)
    if len(signature) != 2 * size:
        return signature
    parsed = _parsed(signature)
    if parsed is not None and encode_dss_signature(*parsed) == signature:
        return signature
    r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    return encode_dss_signature(r, s)


# --- trust and verification -------------------------------------------------------------------


@dataclass
class Trust:
    """Trust anchors: organisation public keys and root certificates."""

    public_keys: dict[str, str] = field(default_factory=dict)  # fingerprint -> source file
    roots: list[x509.Certificate] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.public_keys and not self.roots

    def trusts_key(self, public_der: bytes) -> bool:
        wanted = fingerprint(public_der)
        if wanted in self.public_keys:
            return True
        return any(
            fingerprint(
                root.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            == wanted
            for root in self.roots
        )


def load_trust(paths: list[Path]) -> Trust:
    """Read PEM trust files: ``PUBLIC KEY`` and ``CERTIFICATE`` blocks; errors name the file."""
    trust = Trust()
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"trust file {str(path)!r}: {exc.strerror}") from exc
        blocks = list(_PEM_BLOCK.finditer(raw))
        if not blocks:
            raise ConfigError(f"trust file {str(path)!r}: no PEM PUBLIC KEY or CERTIFICATE in it")
        for block in blocks:
            kind = block.group(1).decode("ascii")
            try:
                if kind == "PUBLIC KEY":
                    key = serialization.load_pem_public_key(block.group(0))
                    der = key.public_bytes(
                        serialization.Encoding.DER,
                        serialization.PublicFormat.SubjectPublicKeyInfo,
                    )
                    trust.public_keys[fingerprint(der)] = str(path)
                elif kind == "CERTIFICATE":
                    trust.roots.append(x509.load_pem_x509_certificate(block.group(0)))
                else:
                    raise ConfigError(
                        f"trust file {str(path)!r}: a {kind} block; only PUBLIC KEY and CERTIFICATE belong there"
                    )
            except (ValueError, UnsupportedAlgorithm) as exc:
                raise ConfigError(f"trust file {str(path)!r}: unreadable {kind}: {exc}") from exc
    return trust


@dataclass
class SignatureCheck:
    """What a signature check found: ``problems`` empty means valid and trusted."""

    signer: str = ""  # "key <fingerprint>" or "domain <name>"
    valid: bool = False
    trusted: bool = False
    problems: list[str] = field(default_factory=list)


def _created(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def verify_signed_data(
    signed: Any, *, package_hash: str, package_created: Any, trust: Trust
) -> SignatureCheck:
    """Check ``signedData`` against the datapackage's hash and ``created``, and trust."""
    check = SignatureCheck()
    if not isinstance(signed, dict):
        check.problems.append("the bundle is not signed (no signedData in datapackage-digest.json)")
        return check
    if signed.get("hash") != package_hash:
        check.problems.append(
            f"signs {signed.get('hash')!r}, but datapackage.json hashes to {package_hash}"
        )
    if signed.get("created") != package_created:
        check.problems.append(
            f"created {signed.get('created')!r} differs from datapackage.json's {package_created!r}"
        )
    try:
        signature = base64.b64decode(signed["signature"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        check.problems.append(f"no readable signature: {exc}")
        return check
    message = str(signed.get("hash", "")).encode("ascii", "replace")
    if "publicKey" in signed:
        _verify_key_mode(signed, signature, message, trust, check)
    elif "domainCert" in signed:
        _verify_domain_mode(signed, signature, message, trust, check)
    else:
        check.problems.append("signedData has neither publicKey nor domainCert")
    return check


def _parsed(der: bytes) -> tuple[int, int] | None:
    try:
        return decode_dss_signature(der)
    except ValueError:
        return None


def _check_signature(
    public_key: Any, signature: bytes, message: bytes, check: SignatureCheck
) -> None:
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        check.problems.append("the signing key is not an ECDSA key")
        return
    try:
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        check.problems.append(f"the signature does not match the signed hash ({check.signer})")
        return
    check.valid = True


def _verify_key_mode(
    signed: dict[str, Any], signature: bytes, message: bytes, trust: Trust, check: SignatureCheck
) -> None:
    try:
        der = base64.b64decode(signed["publicKey"], validate=True)
        public_key = serialization.load_der_public_key(der)
    except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
        check.problems.append(f"publicKey is not a readable public key: {exc}")
        return
    check.signer = f"key {fingerprint(der)}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        signature = _der(signature, public_key.curve)
        if "signatureDer" in signed:
            try:
                copy = base64.b64decode(signed["signatureDer"], validate=True)
            except (TypeError, ValueError) as exc:
                check.problems.append(f"signatureDer unreadable: {exc}")
                return
            if _parsed(copy) != _parsed(signature):
                check.problems.append("signatureDer is not the same signature as signature")
                return
    _check_signature(public_key, signature, message, check)
    check.trusted = trust.trusts_key(der)
    if check.valid and not check.trusted:
        check.problems.append(
            f"signed by an untrusted key (SHA-256 {fingerprint(der)}): the signature is valid, "
            "but no trust anchor (--trust or ATTEST_TRUST) holds this key"
        )


def _verify_domain_mode(
    signed: dict[str, Any], signature: bytes, message: bytes, trust: Trust, check: SignatureCheck
) -> None:
    try:
        chain = x509.load_pem_x509_certificates(str(signed["domainCert"]).encode("ascii"))
    except ValueError as exc:
        check.problems.append(f"domainCert is not a readable PEM chain: {exc}")
        return
    domain = str(signed.get("domain") or "")
    check.signer = f"domain {domain}"
    _check_signature(chain[0].public_key(), signature, message, check)
    created = _created(signed.get("created"))
    if not trust.roots:
        check.problems.append(f"signed for {domain}, but no trusted root certificate is configured")
        return
    if created is None:
        check.problems.append(f"created {signed.get('created')!r} is not an ISO 8601 time")
        return
    try:
        verifier = (
            PolicyBuilder()
            .store(Store(trust.roots))
            .time(created)
            .build_server_verifier(x509.DNSName(domain))
        )
        verifier.verify(chain[0], chain[1:])
    except (VerificationError, ValueError) as exc:
        check.problems.append(
            f"the domain certificate for {domain!r} does not chain to a trusted root at {signed.get('created')}: {exc}"
        )
        return
    check.trusted = True
