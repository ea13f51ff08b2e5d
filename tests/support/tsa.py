"""A local RFC 3161 timestamp authority for tests: ``openssl ts -reply`` behind HTTP.

Each POSTed TimeStampReq (``application/timestamp-query``) is answered by running ``openssl ts
-reply`` with the test PKI's TSA key and certificate; the reply includes the TSA's chain. The
server binds 127.0.0.1 on a free port and counts the requests it answered.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support.pki import TestPKI

_CONFIG = """
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = {cert}
signer_key = {key}
certs = {root}
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
other_policies = 1.3.6.1.4.1.99999.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


class LocalTSA:
    def __init__(self, pki: TestPKI, workdir: Path) -> None:
        self.pki = pki
        self.workdir = workdir
        (workdir / "serial").write_text("01\n")
        self.config = workdir / "tsa.cnf"
        self.config.write_text(
            _CONFIG.format(dir=workdir, cert=pki.tsa_cert, key=pki.tsa_key, root=pki.root)
        )
        self.requests = 0
        self._lock = threading.Lock()
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Type") != "application/timestamp-query":
                    self.send_error(415, "want application/timestamp-query")
                    return
                try:
                    reply = tsa.reply(body)
                except subprocess.CalledProcessError as exc:
                    self.send_error(500, exc.stderr.decode(errors="replace")[:200])
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsr"

    def reply(self, query: bytes) -> bytes:
        with self._lock, tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            tsq, tsr = Path(tmp) / "q.tsq", Path(tmp) / "r.tsr"
            tsq.write_bytes(query)
            subprocess.run(
                ["openssl", "ts", "-reply", "-config", str(self.config), "-queryfile", str(tsq),
                 "-out", str(tsr)],
                check=True,
                capture_output=True,
            )  # fmt: skip
            self.requests += 1
            return tsr.read_bytes()


@contextmanager
def local_tsa(pki: TestPKI, workdir: Path) -> Iterator[LocalTSA]:
    workdir.mkdir(parents=True, exist_ok=True)
    tsa = LocalTSA(pki, workdir)
    thread = threading.Thread(target=tsa.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tsa
    finally:
        tsa.server.shutdown()
        tsa.server.server_close()
        thread.join(10)
