"""RFC 3161 timestamps (archive/trust/timestamps.py): asking a TSA, and checking its tokens.

A local timestamp authority (``openssl ts -reply`` behind HTTP on 127.0.0.1, support/tsa.py)
with a throwaway PKI answers real requests; the tokens it returns are checked as a verifier
would: over the right data, signed by a time-stamping certificate, chaining to a trusted root.
A second PKI stands for an authority nobody trusts.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from asn1crypto import tsp
from cryptography import x509
from support.pki import make_pki
from support.tsa import LocalTSA, local_tsa

from archive.errors import ConfigError, TimestampError
from archive.trust.signing import Trust, load_trust
from archive.trust.timestamps import Authority, authorities, check_token, request
from demoweb.http import FixtureServer, Reply
from demoweb.http import Request as SiteRequest

if TYPE_CHECKING:
    from support.pki import TestPKI

DATA = b'{"profile": "data-package", "resources": []}\n'


@dataclass
class Authorities:
    pki: TestPKI
    tsa: LocalTSA
    trust: Trust  # the test PKI's root
    stranger: Trust  # the root of another PKI


@pytest.fixture(scope="module")
def tsas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authorities]:
    base = tmp_path_factory.mktemp("timestamps")
    pki = make_pki(base / "pki")
    other = make_pki(base / "other", label="other")
    with local_tsa(pki, base / "tsa") as tsa:
        yield Authorities(pki, tsa, load_trust([pki.root]), load_trust([other.root]))


@pytest.fixture(scope="module")
def entry(tsas: Authorities) -> dict[str, Any]:
    """One token over DATA, as a bundle stores it."""
    return request(Authority(tsas.tsa.url), DATA)


# --- asking for a token ----------------------------------------------------------------------


def test_a_token_stamps_the_data_with_the_authoritys_time_and_certificate(
    tsas: Authorities, entry: dict[str, Any]
) -> None:
    before = datetime.now(UTC)
    fresh = request(Authority(tsas.tsa.url), DATA)
    after = datetime.now(UTC)
    assert set(fresh) == {"tsa", "token", "chain", "time"}
    assert fresh["tsa"] == tsas.tsa.url
    stamped = datetime.fromisoformat(fresh["time"])
    # openssl stamps whole seconds (accuracy secs:1)
    assert before - timedelta(seconds=2) <= stamped <= after + timedelta(seconds=2)
    response = tsp.TimeStampResp.load(base64.b64decode(fresh["token"]))
    info = response["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    imprint = info["message_imprint"]
    assert imprint["hash_algorithm"]["algorithm"].native == "sha256"
    assert imprint["hashed_message"].native == hashlib.sha256(DATA).digest()
    # certReq: the TSA's certificate travels with the token, so the entry's chain names it.
    chain = x509.load_pem_x509_certificates(fresh["chain"].encode())
    tsa_cert = x509.load_pem_x509_certificate(tsas.pki.tsa_cert.read_bytes())
    assert tsa_cert in chain
    # Each request carries a nonce of its own: two tokens over the same data differ.
    assert fresh["token"] != entry["token"]


def test_a_configured_chain_file_is_added_to_the_tokens_certificates(
    tsas: Authorities, tmp_path: Path
) -> None:
    extra = make_pki(tmp_path / "extra", label="extra")
    chain_file = tmp_path / "chain.pem"
    chain_file.write_bytes(tsas.pki.tsa_chain.read_bytes() + extra.root.read_bytes())
    (authority,) = authorities([tsas.tsa.url], [str(chain_file)])
    assert len(authority.chain) == 3
    stamped = request(authority, DATA)
    chain = x509.load_pem_x509_certificates(stamped["chain"].encode())
    extra_root = x509.load_pem_x509_certificate(extra.root.read_bytes())
    assert extra_root in chain  # only the chain file has it
    assert len(chain) == len(set(chain)), "a certificate in both is listed once"


def test_authorities_come_from_urls_with_optional_chain_files() -> None:
    found = authorities(["http://127.0.0.1:1/a", "https://tsa.example/b"], [""])
    assert found == [Authority("http://127.0.0.1:1/a"), Authority("https://tsa.example/b")]
    with pytest.raises(ConfigError, match=re.escape("'ftp://tsa.example' is not an http")):
        authorities(["ftp://tsa.example"], [])
    with pytest.raises(ConfigError, match="ATTEST_TSA_CHAINS names 2 files for 1 TSA URLs"):
        authorities(["http://127.0.0.1:1/"], ["a.pem", "b.pem"])


def test_an_unreachable_authority_is_a_timestamp_error_naming_it(unused_port: int) -> None:
    url = f"http://127.0.0.1:{unused_port}/tsr"
    with pytest.raises(TimestampError, match=re.escape(f"timestamp authority {url}: ")):
        request(Authority(url), DATA, timeout=5)


@pytest.fixture
def not_a_tsa() -> Iterator[FixtureServer]:
    """A web server that answers 404 at /missing and an HTML page (200) anywhere else."""

    def answer(req: SiteRequest) -> Reply:
        if req.path == "/missing":
            return Reply(404, "Not Found", [("Content-Type", "text/html")], b"<h1>no TSA</h1>")
        return Reply(headers=[("Content-Type", "text/html")], body=b"<p>hello</p>")

    server = FixtureServer(answer).start()
    yield server
    server.stop()


def test_an_http_error_or_an_answer_that_is_no_token_is_refused(not_a_tsa: FixtureServer) -> None:
    missing = f"{not_a_tsa.origin}/missing"
    with pytest.raises(TimestampError, match=re.escape(f"{missing}: HTTP 404")):
        request(Authority(missing), DATA)
    page = f"{not_a_tsa.origin}/page"
    with pytest.raises(TimestampError, match=re.escape(f"{page}: not an RFC 3161 TimeStampResp")):
        request(Authority(page), DATA)


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- checking a token ------------------------------------------------------------------------


def test_a_sound_token_from_a_trusted_authority_is_valid_and_trusted(
    tsas: Authorities, entry: dict[str, Any]
) -> None:
    check = check_token(entry, DATA, tsas.trust)
    assert (check.valid, check.trusted, check.problems) == (True, True, [])
    assert check.tsa == tsas.tsa.url
    assert check.time == datetime.fromisoformat(entry["time"])


def test_a_sound_token_from_an_authority_nobody_trusts_is_valid_but_untrusted(
    tsas: Authorities, entry: dict[str, Any]
) -> None:
    for trust in (Trust(), tsas.stranger):
        check = check_token(entry, DATA, trust)
        assert (check.valid, check.trusted) == (True, False)
        (problem,) = check.problems
        assert "which is not a trusted root (--trust, ATTEST_TRUST)" in problem
        assert "test root CA" in problem


def test_a_token_over_other_data_names_both_digests(
    tsas: Authorities, entry: dict[str, Any]
) -> None:
    other = DATA + b" "
    check = check_token(entry, other, tsas.trust)
    assert not check.valid
    assert check.problems == [
        f"stamps digest {hashlib.sha256(DATA).hexdigest()}, not datapackage.json's "
        f"{hashlib.sha256(other).hexdigest()}"
    ]


def test_a_token_whose_signature_was_changed_does_not_verify(
    tsas: Authorities, entry: dict[str, Any]
) -> None:
    der = bytearray(base64.b64decode(entry["token"]))
    der[-1] ^= 0x01  # the last byte of the TSA's signature (the SignerInfo ends the token)
    changed = dict(entry, token=base64.b64encode(bytes(der)).decode())
    check = check_token(changed, DATA, tsas.trust)
    assert not check.valid
    assert check.problems == ["token does not verify: the TSA's signature does not verify"]


def test_a_token_whose_time_was_changed_no_longer_matches_its_signed_digest(
    tsas: Authorities, entry: dict[str, Any]
) -> None:
    der = base64.b64decode(entry["token"])
    stamped = datetime.fromisoformat(entry["time"])
    # The TSTInfo's genTime, a GeneralizedTime: the only 15-character time in the token.
    gen_time = stamped.strftime("%Y%m%d%H%M%SZ").encode()
    assert der.count(gen_time) == 1
    earlier = (stamped - timedelta(days=3)).strftime("%Y%m%d%H%M%SZ").encode()
    rewritten = dict(entry, token=base64.b64encode(der.replace(gen_time, earlier)).decode())
    check = check_token(rewritten, DATA, tsas.trust)
    assert not check.valid
    assert check.problems == [
        "token does not verify: the signed message digest does not match the TSTInfo"
    ]


def test_a_token_without_its_issuers_certificates_does_not_chain(
    tsas: Authorities, tmp_path: Path
) -> None:
    """A TSA that sends only its own certificate, with no chain configured and no trusted
    root: nothing issued it, as far as the verifier can tell."""
    bare = make_pki(tmp_path / "bare", label="bare")
    workdir = tmp_path / "tsa"
    with local_tsa(bare, workdir) as tsa:
        # No extra certificates in the reply: only the TSA's own (certReq).
        tsa.config.write_text(tsa.config.read_text().replace(f"certs = {bare.root}\n", ""))
        stamped = request(Authority(tsa.url), DATA)
    check = check_token(stamped, DATA, Trust())
    assert not check.valid
    (problem,) = check.problems
    assert problem.startswith("token does not verify: no issuer found for ")
    assert "bare TSA" in problem
    # Given the root as a trust anchor, the same token chains and is trusted.
    trusted = check_token(stamped, DATA, load_trust([bare.root]))
    assert (trusted.valid, trusted.trusted, trusted.problems) == (True, True, [])


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ("not an object", "a timestamp entry is not an object"),
        ({"tsa": "x"}, "token unreadable: 'token'"),
        ({"tsa": "x", "token": "***"}, "token unreadable: "),
        (
            {"tsa": "x", "token": base64.b64encode(b"\x30\x03\x02\x01\x00").decode()},
            "token unreadable: not an RFC 3161 TimeStampResp",
        ),
    ],
)
def test_an_unreadable_entry_is_named_not_raised(
    tsas: Authorities, stored: Any, problem: str
) -> None:
    check = check_token(stored, DATA, tsas.trust)
    assert not check.valid
    (found,) = check.problems
    assert found.startswith(problem)
