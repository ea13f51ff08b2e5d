"""Small, valid binary assets made deterministically: PNG images, PDF files, a font stub."""

from __future__ import annotations

import hashlib
import struct
import zlib


def token(kind: str, n: int) -> str:
    """A unique, predictable token that tests search for in captured payloads."""
    return f"{kind.upper()}-{n:05d}-{hashlib.sha256(f'{kind}-{n}'.encode()).hexdigest()[:8]}"


def png(seed: int, width: int = 24, height: int = 16) -> bytes:
    """A tiny RGB PNG whose colours depend on ``seed``."""
    digest = hashlib.sha256(str(seed).encode()).digest()
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            i = (x + y * 3) % 30
            rows += bytes((digest[i], digest[i + 1], digest[(i + 2) % 32]))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def pdf(title: str, text: str) -> bytes:
    """A one-page PDF 1.4 with a text line; valid enough for any reader."""
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    content = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        f"<< /Title ({title}) >>".encode("latin-1", "replace"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def font_stub() -> bytes:
    """Bytes served as a web font (browsers ignore a bad font; crawlers must still keep it)."""
    return b"wOF2" + hashlib.sha256(b"attest-font").digest() * 8


WORDS = (
    "archive evidence influence rally flag statement minister conference press release "
    "network account post capture record court inquiry island assembly delegation memorandum "
    "cooperation solidarity independence movement election reform protest government official "
    "journalist visit report source claim denial parliament agreement video broadcast"
).split()


def sentences(seed: int, count: int) -> list[str]:
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
        out.append(" ".join(words).capitalize() + ".")
    return out
