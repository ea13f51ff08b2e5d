"""Turning an archived HTTP payload back into the document: chunking, then Content-Encoding.

The WARC keeps the body as the server sent it (compressed, sometimes chunked). Readers want
the document: ``attest get`` writes it decoded, and text extraction reads it. gzip, deflate
(zlib-wrapped or raw, as servers send both) and br are decoded; anything else raises
:class:`~archive.errors.UnsupportedEncoding` naming the encoding, rather than handing back
bytes that look like the document and are not.

br uses Google's ``brotli`` module directly (warcio's br decoder expects the abandoned
``brotlipy`` API and fails next to Scrapy's Brotli: see the stack notes).
"""

from __future__ import annotations

import zlib

from archive.errors import IntegrityError, UnsupportedEncoding

#: Refuse to inflate a payload beyond this (a decompression bomb in a hostile capture).
MAX_DECODED = 512 * 1024 * 1024


def dechunk(body: bytes, *, prefix: bool = False) -> bytes:
    """Undo HTTP/1.1 chunked transfer coding; IntegrityError when the framing is broken.

    ``prefix``: ``body`` is a prefix of a chunked body, cut anywhere: as much of the entity as
    it holds, and never an error."""
    out = bytearray()
    pos = 0

    def broken(why: str) -> bytes:
        if prefix:
            return bytes(out)
        raise IntegrityError(why)

    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            return broken("chunked body ends inside a chunk-size line")
        size_text = body[pos:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return broken(f"bad chunk size {size_text[:20]!r}")
        pos = end + 2
        if size == 0:
            return bytes(out)
        chunk = body[pos : pos + size]
        out += chunk
        if len(chunk) < size:
            return broken("chunked body ends inside a chunk")
        pos += size + 2


def _inflate(data: bytes, wbits: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, MAX_DECODED)
    if inflater.unconsumed_tail:
        raise UnsupportedEncoding(f"decoded payload exceeds {MAX_DECODED} bytes")
    out += inflater.flush()
    if not inflater.eof:
        raise zlib.error("deflate stream ends early")
    return out


def _gunzip(data: bytes) -> bytes:
    # Several gzip members may follow each other (RFC 1952); decode them all.
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out += inflater.decompress(data, MAX_DECODED - len(out))
        if inflater.unconsumed_tail:
            raise UnsupportedEncoding(f"decoded payload exceeds {MAX_DECODED} bytes")
        out += inflater.flush()
        if not inflater.eof:
            raise zlib.error("gzip stream ends early")
        data = inflater.unused_data.lstrip(b"\x00")
    return bytes(out)


def _deflate(data: bytes) -> bytes:
    try:
        return _inflate(data, zlib.MAX_WBITS)
    except zlib.error:
        return _inflate(data, -zlib.MAX_WBITS)


def _unbrotli(data: bytes) -> bytes:
    import brotli  # Google's Brotli (a Scrapy dependency)

    decompressor = brotli.Decompressor()
    # Bounded output: a small hostile payload cannot inflate without limit in memory.
    parts = [decompressor.process(data, output_buffer_limit=1024 * 1024)]
    size = len(parts[0])
    while not decompressor.is_finished():
        chunk = decompressor.process(b"", output_buffer_limit=1024 * 1024)
        if not chunk and decompressor.can_accept_more_data():
            break  # it wants more input than there is: truncated
        parts.append(chunk)
        size += len(chunk)
        if size > MAX_DECODED:
            raise UnsupportedEncoding(f"decoded payload exceeds {MAX_DECODED} bytes")
    out = b"".join(parts)
    if not decompressor.is_finished():
        raise brotli.error("br stream ends early")
    return out


_DECODERS = {
    "gzip": _gunzip,
    "x-gzip": _gunzip,
    "deflate": _deflate,
    "br": _unbrotli,
}


def encodings(header: str | None) -> list[str]:
    return [e.strip().lower() for e in (header or "").split(",") if e.strip()]


def decode_body(body: bytes, content_encoding: str | None, *, chunked: bool = False) -> bytes:
    """The document bytes of an archived payload (Content-Encodings undone, last first)."""
    if chunked:
        body = dechunk(body)
    for name in reversed(encodings(content_encoding)):
        if name == "identity":
            continue
        if not body and name in _DECODERS:
            continue  # no body at all (HEAD, 204, 304) under a Content-Encoding header
        decoder = _DECODERS.get(name)
        if decoder is None:
            raise UnsupportedEncoding(
                f"Content-Encoding {name!r} is not supported (attest decodes gzip, deflate and br); "
                "the raw record is available with --record"
            )
        try:
            body = decoder(body)
        except UnsupportedEncoding:
            raise
        except Exception as exc:  # zlib.error, brotli.error: the archived bytes are not valid
            raise UnsupportedEncoding(f"the payload does not decode as {name}: {exc}") from exc
    return body


def decode_prefix(
    body: bytes, content_encoding: str | None, *, chunked: bool = False, limit: int
) -> bytes:
    """The first bytes (at most ``limit``) of the document a PREFIX of an archived payload
    holds: like :func:`decode_body`, but a body cut short decodes as far as it goes."""
    if chunked:
        body = dechunk(body, prefix=True)
    for name in reversed(encodings(content_encoding)):
        if name == "identity" or not body:
            continue
        if name in ("gzip", "x-gzip", "deflate"):
            wbits = 16 + zlib.MAX_WBITS if name != "deflate" else zlib.MAX_WBITS
            try:
                body = zlib.decompressobj(wbits).decompress(body, limit)
            except zlib.error:
                if name != "deflate":
                    raise UnsupportedEncoding(f"the payload does not decode as {name}") from None
                try:
                    body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, limit)
                except zlib.error as exc:
                    raise UnsupportedEncoding(f"the payload does not decode as {name}") from exc
        elif name == "br":
            import brotli

            try:
                body = brotli.Decompressor().process(body, output_buffer_limit=limit)
            except brotli.error as exc:
                raise UnsupportedEncoding(f"the payload does not decode as br: {exc}") from exc
        else:
            raise UnsupportedEncoding(f"Content-Encoding {name!r} is not supported")
    return body[:limit]
