"""Reading a gzip member of stored deflate blocks without inflating it (archive.warc.read).

Records whose blocks are compressed already (images, gzip bodies) are written as stored
blocks; reads check them by slicing those blocks out. The slices must be exactly what zlib
inflates, and anything that is not plainly such a member must be left to zlib.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib

import pytest

from archive.warc.read import stored_member
from archive.warc.write import _StoredGzip


def attest_stored(data: bytes, pieces: int = 3) -> bytes:
    """A member as attest's writer makes it for a precompressed block, in several calls."""
    writer = _StoredGzip()
    step = max(1, -(-len(data) // pieces))
    out = b"".join(writer.compress(data[i : i + step]) for i in range(0, len(data), step))
    return out + writer.flush()


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 300_000])
def test_the_pieces_are_what_zlib_inflates(size: int) -> None:
    data = os.urandom(size)
    for member in (attest_stored(data), zlib.compress(data, 0, wbits=31)):
        assert gzip.decompress(member) == data
        pieces = stored_member(member)
        assert pieces is not None
        assert b"".join(pieces) == data


def test_pieces_are_views_of_the_member_not_copies() -> None:
    member = bytearray(attest_stored(b"x" * 100_000))
    pieces = stored_member(member)
    assert pieces is not None
    assert all(piece.obj is member for piece in pieces)


def test_a_compressed_member_is_left_to_zlib() -> None:
    assert stored_member(gzip.compress(b"hello " * 1000)) is None


def rewrite_crc_and_size(member: bytes, plain: bytes) -> bytes:
    return member[:-8] + struct.pack("<II", zlib.crc32(plain), len(plain) & 0xFFFFFFFF)


def test_a_changed_byte_under_a_stale_crc_is_left_to_zlib() -> None:
    data = os.urandom(1000)
    member = bytearray(attest_stored(data, pieces=1))
    member[20] ^= 1
    assert stored_member(bytes(member)) is None
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(bytes(member))


def test_a_changed_byte_with_its_crc_recomputed_reads_as_changed() -> None:
    """CRC-32 is no protection against tampering: the slices then hold the changed bytes,
    which the record's digests (checked by the caller) do not match."""
    data = os.urandom(1000)
    member = bytearray(attest_stored(data, pieces=1))
    member[20] ^= 1
    changed = bytes(data[:5]) + bytes([data[5] ^ 1]) + data[6:]
    fixed = rewrite_crc_and_size(bytes(member), changed)
    pieces = stored_member(fixed)
    assert pieces is not None
    assert b"".join(pieces) == changed == gzip.decompress(fixed)


@pytest.mark.parametrize(
    "damage",
    [
        "flags",  # an optional field (FNAME) after the header: not read here
        "padding",  # stray bits in a stored block's header byte, which zlib ignores
        "length",  # LEN and NLEN disagree
        "trailing",  # bytes after the member
        "truncated",  # the member cut short
        "size",  # the trailer's size is wrong (CRC right)
    ],
)
def test_anything_but_a_plain_stored_member_is_left_to_zlib(damage: str) -> None:
    data = os.urandom(500)
    member = bytearray(attest_stored(data, pieces=1))
    if damage == "flags":
        member[3] = 0x08
    elif damage == "padding":
        member[10] |= 0x08
    elif damage == "length":
        member[13] ^= 1
    elif damage == "trailing":
        member += b"\x00"
    elif damage == "truncated":
        del member[-3:]
    elif damage == "size":
        member[-4:] = struct.pack("<I", len(data) + 1)
    assert stored_member(bytes(member)) is None


def test_two_members_are_not_one() -> None:
    one = attest_stored(b"a" * 100)
    assert stored_member(one + one) is None
    assert gzip.GzipFile(fileobj=io.BytesIO(one + one)).read() == b"a" * 200
