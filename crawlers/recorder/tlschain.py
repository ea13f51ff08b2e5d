"""The origin's TLS certificate chain, kept as evidence of who served a capture.

The recorder connects without verifying (it records what was served, valid or not), then reads
the chain the server presented, checks it against the trust store (certifi's bundle plus any
``ATTEST_CA_BUNDLE`` files) and writes one ``metadata`` record per host, source and run: the
certificates in PEM, their SHA-256 fingerprints, subjects, issuers, validity, the TLS version
and cipher, and whether the chain verified (and why not).
"""

from __future__ import annotations

import _ssl
import hashlib
import ipaddress
import json
import ssl
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from archive.warc.write import Block, RecordSpec

CHAIN_CONTENT_TYPE = "application/json; profile=attest-tls-chain"


def presented_chain(sock: ssl.SSLSocket) -> list[bytes]:
    """DER certificates the server sent, leaf first.

    Python 3.13 exposes ``get_unverified_chain()``; on 3.11 and 3.12 the same OpenSSL call is
    reachable on the private ``_sslobj``. Falls back to the leaf alone.
    """
    getter = getattr(sock, "get_unverified_chain", None)
    if getter is None:
        sslobj = getattr(sock, "_sslobj", None)
        getter = getattr(sslobj, "get_unverified_chain", None)
    if getter is not None:
        certs = getter() or []
        out = []
        for cert in certs:
            if isinstance(cert, bytes):
                out.append(cert)
            else:
                out.append(cert.public_bytes(_ssl.ENCODING_DER))
        if out:
            return out
    leaf = sock.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def load_trust_store(extra_bundles: Sequence[Path] = ()) -> Store | None:
    certs: list[x509.Certificate] = []
    try:
        import certifi

        certs.extend(x509.load_pem_x509_certificates(Path(certifi.where()).read_bytes()))
    except (ImportError, OSError, ValueError):
        pass
    for bundle in extra_bundles:
        certs.extend(x509.load_pem_x509_certificates(bundle.read_bytes()))
    return Store(certs) if certs else None


class TlsChainRecorder:
    def __init__(self, trust: Store | None) -> None:
        self._trust = trust
        self._seen: set[tuple[str, str, int, str]] = set()
        self._lock = threading.Lock()

    def describe(self, sock: ssl.SSLSocket, host: str, port: int) -> dict[str, Any]:
        ders = presented_chain(sock)
        certs = []
        parsed: list[x509.Certificate] = []
        for der in ders:
            cert = x509.load_der_x509_certificate(der)
            parsed.append(cert)
            certs.append(
                {
                    "sha256": hashlib.sha256(der).hexdigest(),
                    "subject": cert.subject.rfc4514_string(),
                    "issuer": cert.issuer.rfc4514_string(),
                    "serial": format(cert.serial_number, "x"),
                    "not_before": cert.not_valid_before_utc.isoformat(),
                    "not_after": cert.not_valid_after_utc.isoformat(),
                    "pem": cert.public_bytes(Encoding.PEM).decode("ascii"),
                }
            )
        verified, error = self._verify(parsed, host)
        cipher = sock.cipher()
        return {
            "host": host,
            "port": port,
            "peer_ip": sock.getpeername()[0],
            "tls_version": sock.version(),
            "cipher": cipher[0] if cipher else None,
            "chain": certs,
            "verified": verified,
            "verify_error": error,
            "observed": datetime.now(UTC).isoformat(),
        }

    def _verify(self, chain: list[x509.Certificate], host: str) -> tuple[bool, str | None]:
        if not chain:
            return False, "server presented no certificate"
        if self._trust is None:
            return False, "no trust store available"
        try:
            subject: x509.DNSName | x509.IPAddress = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            subject = x509.DNSName(host)
        try:
            verifier = PolicyBuilder().store(self._trust).build_server_verifier(subject)
            verifier.verify(chain[0], chain[1:])
        except VerificationError as exc:
            return False, str(exc)
        except ValueError as exc:
            return False, f"chain could not be checked: {exc}"
        return True, None

    def record_once(
        self, source: str, info: dict[str, Any], url: str, response_id: str, date: datetime
    ) -> RecordSpec | None:
        """A metadata record for this chain, the first time it is seen for host, port, source."""
        fingerprint = info["chain"][0]["sha256"] if info["chain"] else ""
        key = (source, info["host"], info["port"], fingerprint)
        with self._lock:
            if key in self._seen:
                return None
            self._seen.add(key)
        data = json.dumps(info, sort_keys=True, indent=1).encode("utf-8")
        return RecordSpec(
            record_type="metadata",
            block=Block.from_bytes(data),
            target_uri=url,
            content_type=CHAIN_CONTENT_TYPE,
            headers=[("WARC-Concurrent-To", response_id)],
            date=date,
        )
