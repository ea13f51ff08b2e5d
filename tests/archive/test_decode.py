"""archive.warc.decode: archived bodies back to documents (chunking, gzip, deflate, br), or a clear no."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from archive.errors import IntegrityError, UnsupportedEncoding
from archive.warc.decode import dechunk, decode_body, encodings

DOCUMENT = (
    "<!doctype html><html><body><h1>Statement</h1><p>Ōtaki harbour, 28 November: the "
    "council confirms the spill.</p></body></html>\n"
).encode() * 20


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def chunked(body: bytes, size: int = 100) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("header", [None, "", "identity", " Identity "])
def test_identity_and_no_encoding_hand_back_the_bytes(header: str | None) -> None:
    assert decode_body(DOCUMENT, header) == DOCUMENT


@pytest.mark.parametrize("header", ["gzip", "GZIP", "x-gzip", " gzip "])
def test_gzip(header: str) -> None:
    assert decode_body(gzip.compress(DOCUMENT), header) == DOCUMENT


def test_gzip_with_two_members_decodes_both() -> None:
    half = len(DOCUMENT) // 2
    body = gzip.compress(DOCUMENT[:half]) + gzip.compress(DOCUMENT[half:])
    assert decode_body(body, "gzip") == DOCUMENT


def test_gzip_members_padded_with_zero_bytes() -> None:
    body = gzip.compress(b"first ") + b"\x00\x00" + gzip.compress(b"second")
    assert decode_body(body, "gzip") == b"first second"


def test_deflate_zlib_wrapped() -> None:
    body = zlib.compress(DOCUMENT)
    assert body[:1] == b"\x78"  # a zlib header
    assert decode_body(body, "deflate") == DOCUMENT


def test_deflate_raw_as_some_servers_send_it() -> None:
    body = raw_deflate(DOCUMENT)
    with pytest.raises(zlib.error):
        zlib.decompress(body)  # not a zlib stream
    assert decode_body(body, "deflate") == DOCUMENT


def test_br_with_googles_brotli() -> None:
    body = brotli.compress(DOCUMENT)
    assert body != DOCUMENT
    assert decode_body(body, "br") == DOCUMENT


@pytest.mark.parametrize(
    ("header", "encode"),
    [
        ("gzip, br", lambda d: brotli.compress(gzip.compress(d))),
        ("br, gzip", lambda d: gzip.compress(brotli.compress(d))),
        ("deflate, gzip", lambda d: gzip.compress(zlib.compress(d))),
        ("gzip,deflate,br", lambda d: brotli.compress(zlib.compress(gzip.compress(d)))),
        ("identity, gzip", lambda d: gzip.compress(d)),
    ],
)
def test_stacked_encodings_are_undone_last_applied_first(header: str, encode: object) -> None:
    assert callable(encode)
    assert decode_body(encode(DOCUMENT), header) == DOCUMENT


def test_stacked_encodings_in_the_wrong_order_do_not_decode() -> None:
    body = brotli.compress(gzip.compress(DOCUMENT))  # gzip applied first, then br
    with pytest.raises(UnsupportedEncoding):
        decode_body(body, "br, gzip")  # claims br first: gzip would be undone first


def test_chunked_then_gzip() -> None:
    body = chunked(gzip.compress(DOCUMENT), size=37)
    assert decode_body(body, "gzip", chunked=True) == DOCUMENT
    with pytest.raises(UnsupportedEncoding, match="gzip"):
        decode_body(body, "gzip")  # the chunk framing is not gzip


def test_chunked_identity_with_extensions_and_trailers() -> None:
    body = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    assert decode_body(body, None, chunked=True) == b"hello world"
    assert dechunk(body) == b"hello world"


@pytest.mark.parametrize(
    "body",
    [
        b"5\r\nhel",  # ends inside a chunk
        b"zz\r\nhello\r\n0\r\n\r\n",  # not hex
        b"5\r\nhello\r\n",  # no last chunk
        b"",
    ],
)
def test_broken_chunk_framing_is_an_integrity_error(body: bytes) -> None:
    with pytest.raises(IntegrityError):
        decode_body(body, None, chunked=True)


@pytest.mark.parametrize("name", ["zstd", "compress", "x-compress", "sdch", "aes128gcm"])
def test_unsupported_encodings_are_named(name: str) -> None:
    with pytest.raises(UnsupportedEncoding) as caught:
        decode_body(DOCUMENT, name)
    assert repr(name) in str(caught.value)
    assert "gzip, deflate and br" in str(caught.value)


def test_an_unsupported_encoding_inside_a_stack_is_named() -> None:
    with pytest.raises(UnsupportedEncoding, match="'zstd'"):
        decode_body(gzip.compress(DOCUMENT), "zstd, gzip")


def test_corrupt_gzip() -> None:
    body = bytearray(gzip.compress(DOCUMENT))
    body[len(body) // 2] ^= 0xFF
    with pytest.raises(UnsupportedEncoding, match="gzip"):
        decode_body(bytes(body), "gzip")


def test_plain_bytes_labelled_gzip() -> None:
    with pytest.raises(UnsupportedEncoding, match="does not decode as gzip"):
        decode_body(DOCUMENT, "gzip")


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", raw_deflate),
        ("br", brotli.compress),
    ],
)
def test_truncated_streams_are_refused_not_half_decoded(name: str, encode: object) -> None:
    assert callable(encode)
    whole = encode(DOCUMENT)
    with pytest.raises(UnsupportedEncoding, match=name):
        decode_body(whole[: len(whole) // 2], name)


def test_corrupt_br() -> None:
    with pytest.raises(UnsupportedEncoding, match="br"):
        decode_body(b"\xff" * 64, "br")


@pytest.mark.parametrize("name", ["gzip", "deflate", "br", "gzip, br"])
def test_an_empty_body_stays_empty(name: str) -> None:
    # HEAD, 204 and 304 responses carry the header with no body at all.
    assert decode_body(b"", name) == b""


def test_encodings_header_parsing() -> None:
    assert encodings(None) == []
    assert encodings("") == []
    assert encodings(" GZip , br,, ") == ["gzip", "br"]
