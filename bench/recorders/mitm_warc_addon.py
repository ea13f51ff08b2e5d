"""A mitmproxy addon that records every exchange as WARC/1.1 with warcio (benchmark candidate).

Runs inside ``bench/.venv-mitm`` (mitmproxy 11.0.2 + warcio), never in the app venv::

    bench/.venv-mitm/bin/mitmdump -q -s bench/recorders/mitm_warc_addon.py \
        --listen-host 127.0.0.1 --listen-port 8081 --set ssl_insecure=true --set warc_dir=/tmp/w

What it writes, one gzip member per record, into ``<warc_dir>/mitm-<time>-<pid>.warc.gz``:

- a ``warcinfo`` record;
- per exchange a ``request`` and a ``response`` record (``WARC-Concurrent-To`` both ways),
  ``WARC-Date`` with microseconds (the request's start), ``WARC-IP-Address`` from
  ``flow.server_conn.peername``, ``sha256:<hex>`` block and payload digests;
- the response as mitmproxy saw it: HTTP version, status, reason, header fields in received
  order and case, and ``flow.response.raw_content`` (Content-Encoding still applied);
- the origin's TLS chain (``flow.server_conn.certificate_list``, PEM) in a ``metadata`` record,
  once per host, port and leaf certificate.

mitmproxy removes chunked transfer coding while reading, and its flows do not keep the framing.
A response that arrived chunked is therefore stored de-chunked, and the record says so: its
``Transfer-Encoding`` header is renamed ``X-Archive-Orig-Transfer-Encoding`` in place, so
readers do not try to de-chunk a body that is no longer chunked.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from mitmproxy import ctx, http
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

WARC_VERSION = "1.1"


class HexSha256:
    """A warcio-compatible digester that prints ``sha256:<lowercase hex>``."""

    def __init__(self, _type: str = "sha256") -> None:
        self._hash = hashlib.sha256()

    def update(self, buf: bytes) -> None:
        self._hash.update(buf)

    def __str__(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class Sha256WarcWriter(WARCWriter):  # type: ignore[misc]
    @staticmethod
    def _create_digester() -> HexSha256:
        return HexSha256()


def warc_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fields(fields: Any) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in fields]


class WarcRecorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._writer: Sha256WarcWriter | None = None
        self._chains_seen: set[tuple[str, int, str]] = set()
        self.exchanges = 0

    def load(self, loader: Any) -> None:
        loader.add_option("warc_dir", str, "", "Directory for the WARC file.")

    def running(self) -> None:
        directory = Path(ctx.options.warc_dir or ".")
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        name = f"mitm-{stamp}-{os.getpid()}.warc.gz"
        self._path = directory / name
        self._file = open(directory / (name + ".open"), "xb")  # noqa: SIM115 - closed in done()
        self._writer = Sha256WarcWriter(self._file, gzip=True, warc_version=WARC_VERSION)
        info = {
            "software": "mitmproxy 11 + warcio (attest bench addon)",
            "format": "WARC File Format 1.1",
        }
        self._writer.write_record(
            self._writer.create_warcinfo_record(name, info)  # type: ignore[no-untyped-call]
        )

    def response(self, flow: http.HTTPFlow) -> None:
        assert self._writer is not None
        req, resp = flow.request, flow.response
        if resp is None:
            return
        writer = self._writer
        date = warc_date(req.timestamp_start)
        url = req.url
        peer = flow.server_conn.peername
        ip = peer[0] if peer else None

        req_sh = StatusAndHeaders(
            f"{req.method} {req.path} {req.http_version}",
            _fields(req.headers.fields),
            is_http_request=True,
        )
        resp_fields = []
        for name, value in _fields(resp.headers.fields):
            if name.lower() == "transfer-encoding" and "chunked" in value.lower():
                name = "X-Archive-Orig-Transfer-Encoding"
            resp_fields.append((name, value))
        resp_sh = StatusAndHeaders(
            f"{resp.status_code} {resp.reason}", resp_fields, protocol=resp.http_version
        )
        body = resp.raw_content or b""
        resp_headers = {"WARC-Date": date}
        if ip:
            resp_headers["WARC-IP-Address"] = ip
        response = writer.create_warc_record(
            url,
            "response",
            payload=io.BytesIO(body),
            length=len(body),
            warc_headers_dict=resp_headers,
            http_headers=resp_sh,
        )
        req_body = req.raw_content or b""
        request = writer.create_warc_record(
            url,
            "request",
            payload=io.BytesIO(req_body),
            length=len(req_body),
            warc_headers_dict={"WARC-Date": date},
            http_headers=req_sh,
        )
        response_id = response.rec_headers.get_header("WARC-Record-ID")
        request.rec_headers.add_header("WARC-Concurrent-To", response_id)
        response.rec_headers.add_header(
            "WARC-Concurrent-To", request.rec_headers.get_header("WARC-Record-ID")
        )
        records = [request, response]
        chain = self._chain_record(flow, url, date, response_id)
        if chain is not None:
            records.append(chain)
        with self._lock:
            for record in records:
                writer.write_record(record)
            self.exchanges += 1

    def _chain_record(self, flow: http.HTTPFlow, url: str, date: str, response_id: str) -> Any:
        conn = flow.server_conn
        if not conn.certificate_list or not conn.address:
            return None
        leaf = conn.certificate_list[0]
        key = (str(conn.address[0]), int(conn.address[1]), leaf.fingerprint().hex())
        with self._lock:
            if key in self._chains_seen:
                return None
            self._chains_seen.add(key)
        info = {
            "host": key[0],
            "port": key[1],
            "peer_ip": conn.peername[0] if conn.peername else None,
            "tls_version": conn.tls_version,
            "cipher": conn.cipher,
            "chain": [
                {
                    "sha256": cert.fingerprint().hex(),
                    "subject": str(cert.subject),
                    "pem": cert.to_pem().decode("ascii"),
                }
                for cert in conn.certificate_list
            ],
        }
        data = json.dumps(info, indent=1, sort_keys=True).encode("utf-8")
        assert self._writer is not None
        return self._writer.create_warc_record(
            url,
            "metadata",
            payload=io.BytesIO(data),
            length=len(data),
            warc_content_type="application/json; profile=tls-chain",
            warc_headers_dict={"WARC-Date": date, "WARC-Concurrent-To": response_id},
        )

    def done(self) -> None:
        if self._file is None or self._path is None:
            return
        with self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.rename(str(self._path) + ".open", self._path)
            self._file = None


addons = [WarcRecorder()]
