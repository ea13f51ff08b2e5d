"""RFC 3161 timestamps: asking timestamp authorities, and checking their tokens offline.

A bundle carries, in ``datapackage-digest.json``, one entry per configured TSA::

    {"tsa": URL, "token": base64 DER TimeStampResp, "chain": PEM certificates, "time": genTime}

Each token's message imprint is the SHA-256 of ``datapackage.json`` (the hash the digest file
states), so ``openssl ts -verify -digest <hex> -in token.tsr -CAfile <trusted TSA root>`` checks
it without attest. Requests ask for the TSA's certificate in the token (``certReq``); ``chain``
adds the rest of the TSA's chain from its configured chain file, if any.

Checking a token (:func:`check_token`): its status is granted; its imprint is the expected
digest; the signed attributes' message digest is that of the TSTInfo; the TSA certificate
(``timeStamping`` usage, valid at the stamped time) signed them; and that certificate chains,
signature by signature, to a root. The chain ending at a root the verifier trusts is a separate
verdict: a sound token from an authority nobody trusts is reported as untrusted.

Tokens are parsed with asn1crypto, which accepts what real TSAs send (OpenSSL's TSA, for one,
does not sort the certificate SET as strict DER would), and signatures are checked with
cryptography.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from asn1crypto import algos, cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from archive.errors import ConfigError, TimestampError
from archive.trust.signing import Trust, load_certificates

TSQ_TYPE = "application/timestamp-query"
TSR_TYPE = "application/timestamp-reply"
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class Authority:
    url: str
    chain: tuple[x509.Certificate, ...] = ()


def authorities(urls: list[str], chains: list[str]) -> list[Authority]:
    """TSAs from settings: URLs, and optionally a PEM chain file per URL, by position (an
    empty entry: that authority has no chain file; empty entries at the end are dropped)."""
    chains = list(chains)
    while chains and not chains[-1]:
        chains.pop()
    if len(chains) > len(urls):
        raise ConfigError(f"ATTEST_TSA_CHAINS names {len(chains)} files for {len(urls)} TSA URLs")
    found = []
    for number, url in enumerate(urls):
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"ATTEST_TSA_URLS: {url!r} is not an http(s) URL")
        chain_file = chains[number] if number < len(chains) else ""
        chain = (
            tuple(load_certificates(Path(chain_file), "ATTEST_TSA_CHAINS")) if chain_file else ()
        )
        found.append(Authority(url, chain))
    return found


def _pem(certs: list[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)


@dataclass
class _Token:
    status: int
    imprint: bytes
    imprint_algorithm: str
    gen_time: datetime
    nonce: int | None
    signed: cms.SignedData | None


def _parse(der: bytes) -> _Token:
    """A TimeStampResp, leniently parsed (ValueError if it is not one)."""
    try:
        response = tsp.TimeStampResp.load(der)
        status = (
            int(response["status"]["status"].native == "granted_with_mods")
            if response["status"]["status"].native in ("granted", "granted_with_mods")
            else 2
        )
        token = response["time_stamp_token"]
        if token.native is None:
            raise ValueError(f"no token (status {response['status']['status'].native})")
        signed = token["content"]
        info = signed["encap_content_info"]["content"].parsed
        imprint = info["message_imprint"]
        return _Token(
            status,
            bytes(imprint["hashed_message"].native),
            str(imprint["hash_algorithm"]["algorithm"].native),
            info["gen_time"].native,
            info["nonce"].native,
            signed,
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not an RFC 3161 TimeStampResp: {exc}") from exc


def _certificates(signed: cms.SignedData) -> list[x509.Certificate]:
    found = []
    for choice in signed["certificates"] or []:
        if choice.name == "certificate":
            found.append(x509.load_der_x509_certificate(choice.chosen.dump()))
    return found


def request(authority: Authority, data: bytes, *, timeout: float = 30.0) -> dict[str, Any]:
    """Ask one TSA for a token over SHA-256(data); the entry stored in the bundle."""
    nonce = secrets.randbits(63)
    query = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": tsp.MessageImprint(
                {
                    "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                    "hashed_message": hashlib.sha256(data).digest(),
                }
            ),
            "nonce": nonce,
            "cert_req": True,
        }
    )
    try:
        answer = httpx.post(
            authority.url,
            content=query.dump(),
            headers={"Content-Type": TSQ_TYPE, "Accept": TSR_TYPE},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise TimestampError(f"timestamp authority {authority.url}: {exc}") from exc
    if answer.status_code != 200:
        raise TimestampError(
            f"timestamp authority {authority.url}: HTTP {answer.status_code} {answer.text[:200]!r}"
        )
    try:
        token = _parse(answer.content)
    except ValueError as exc:
        raise TimestampError(f"timestamp authority {authority.url}: {exc}") from exc
    if token.status > 1 or token.imprint != hashlib.sha256(data).digest():
        raise TimestampError(
            f"timestamp authority {authority.url}: refused, or stamped another digest"
        )
    if token.nonce != nonce:
        raise TimestampError(f"timestamp authority {authority.url}: the nonce does not match")
    assert token.signed is not None
    chain = _certificates(token.signed)
    chain += [c for c in authority.chain if c not in chain]
    return {
        "tsa": authority.url,
        "token": base64.b64encode(answer.content).decode("ascii"),
        "chain": _pem(chain),
        "time": token.gen_time.isoformat(),
    }


@dataclass
class TokenCheck:
    tsa: str
    time: datetime | None = None
    valid: bool = False
    trusted: bool = False
    problems: list[str] = field(default_factory=list)


def _verify_with(
    public_key: Any, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm
) -> None:
    """Raise InvalidSignature unless ``public_key`` signed ``data`` (ECDSA or RSA PKCS#1 v1.5)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(algorithm))
    elif isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
    else:
        raise InvalidSignature(f"unsupported key type {type(public_key).__name__}")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject or cert.signature_hash_algorithm is None:
        return False
    try:
        _verify_with(
            issuer.public_key(),
            cert.signature,
            cert.tbs_certificate_bytes,
            cert.signature_hash_algorithm,
        )
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def _path(
    leaf: x509.Certificate, pool: list[x509.Certificate], at: datetime
) -> list[x509.Certificate]:
    """Leaf to a self-signed root through ``pool``, each link's signature checked."""
    path = [leaf]
    while path[-1].issuer != path[-1].subject or not _issued_by(path[-1], path[-1]):
        issuer = next((c for c in pool if c not in path and _issued_by(path[-1], c)), None)
        if issuer is None:
            raise ValueError(f"no issuer found for {path[-1].subject.rfc4514_string()}")
        path.append(issuer)
    for cert in path:
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise ValueError(f"{cert.subject.rfc4514_string()} was not valid at {at.isoformat()}")
    return path


def _signer(
    signed: cms.SignedData, certs: list[x509.Certificate]
) -> tuple[cms.SignerInfo, x509.Certificate]:
    infos = list(signed["signer_infos"])
    if len(infos) != 1:
        raise ValueError(f"{len(infos)} signers, expected one")
    info = infos[0]
    sid = info["sid"]
    if sid.name != "issuer_and_serial_number":
        wanted = bytes(sid.chosen.native)
        for cert in certs:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            except x509.ExtensionNotFound:
                continue
            if ski.digest == wanted:
                return info, cert
        raise ValueError("the TSA's certificate is not in the token or its chain")
    serial = sid.chosen["serial_number"].native
    issuer = sid.chosen["issuer"].dump()
    for cert in certs:
        if cert.serial_number == serial and cert.issuer.public_bytes() == issuer:
            return info, cert
    raise ValueError("the TSA's certificate is not in the token or its chain")


def _check_signature(signed: cms.SignedData, info: cms.SignerInfo, cert: x509.Certificate) -> None:
    digest_name = info["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise ValueError(f"unsupported digest {digest_name}")
    algorithm = _HASHES[digest_name]()
    content = signed["encap_content_info"]["content"].contents
    attrs = info["signed_attrs"]
    if not attrs:
        raise ValueError("the token has no signed attributes")
    message_digest = next(
        (a["values"][0].native for a in attrs if a["type"].native == "message_digest"), None
    )
    computed = hashes.Hash(algorithm)
    computed.update(content)
    if message_digest != computed.finalize():
        raise ValueError("the signed message digest does not match the TSTInfo")
    # The signature covers the DER of the attributes as a SET (RFC 5652, 5.4).
    signed_bytes = b"\x31" + attrs.dump()[1:]
    try:
        _verify_with(cert.public_key(), bytes(info["signature"].native), signed_bytes, algorithm)
    except InvalidSignature as exc:
        raise ValueError("the TSA's signature does not verify") from exc
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or ExtendedKeyUsageOID.TIME_STAMPING not in usage:
        raise ValueError("the signing certificate is not for time stamping")


def check_token(entry: Any, data: bytes, trust: Trust) -> TokenCheck:
    """Check one stored token over SHA-256(data) against its chain and the trust anchors."""
    if not isinstance(entry, dict):
        return TokenCheck("?", problems=["a timestamp entry is not an object"])
    check = TokenCheck(str(entry.get("tsa", "?")))
    try:
        token = _parse(base64.b64decode(entry["token"], validate=True))
    except (KeyError, TypeError, ValueError) as exc:
        check.problems.append(f"token unreadable: {exc}")
        return check
    check.time = token.gen_time
    if token.status > 1:
        check.problems.append("the authority did not grant the token")
        return check
    want = (
        hashlib.new(token.imprint_algorithm, data).digest()
        if token.imprint_algorithm in _HASHES
        else b""
    )
    if token.imprint != want:
        check.problems.append(
            f"stamps digest {token.imprint.hex()}, not datapackage.json's {hashlib.sha256(data).hexdigest()}"
        )
        return check
    assert token.signed is not None
    try:
        pool = x509.load_pem_x509_certificates(str(entry.get("chain", "")).encode("ascii"))
    except ValueError:
        pool = []
    pool += [c for c in _certificates(token.signed) if c not in pool]
    try:
        info, cert = _signer(token.signed, pool)
        _check_signature(token.signed, info, cert)
        path = _path(cert, pool + trust.roots, token.gen_time)
    except (ValueError, KeyError, TypeError) as exc:
        check.problems.append(f"token does not verify: {exc}")
        return check
    check.valid = True
    check.trusted = any(c in trust.roots for c in path)
    if not check.trusted:
        check.problems.append(
            f"the TSA's chain ends at {path[-1].subject.rfc4514_string()}, which is not a trusted root (--trust, ATTEST_TRUST)"
        )
    return check
