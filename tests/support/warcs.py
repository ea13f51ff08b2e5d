"""Reading a store's WARCs back for assertions, with warcio as an independent reader."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator


@dataclass
class Rec:
    file: Path
    offset: int
    type: str
    id: str
    target: str | None
    headers: dict[str, str]
    block: bytes  # the whole record block, as stored
    http_status: int | None

    @property
    def http_head(self) -> bytes:
        return self.block.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"

    @property
    def http_body(self) -> bytes:
        """The HTTP body exactly as stored (content and transfer encodings kept)."""
        return self.block.split(b"\r\n\r\n", 1)[1]

    def json(self) -> Any:
        return json.loads(self.block)


def read_records(paths: list[Path]) -> list[Rec]:
    out: list[Rec] = []
    for path in paths:
        with open(path, "rb") as fh:
            it = ArchiveIterator(fh, no_record_parse=True)
            for record in it:
                headers = {k: v for k, v in record.rec_headers.headers}
                block = record.raw_stream.read()
                status = None
                if record.rec_type == "response" and block.startswith(b"HTTP/"):
                    status = int(block.split(b" ", 2)[1])
                out.append(
                    Rec(
                        path,
                        it.get_record_offset(),
                        record.rec_type,
                        headers["WARC-Record-ID"],
                        headers.get("WARC-Target-URI"),
                        headers,
                        block,
                        status,
                    )
                )
    return out


def store_warcs(store_root: Path) -> list[Path]:
    return sorted(store_root.rglob("*.warc.gz"))
