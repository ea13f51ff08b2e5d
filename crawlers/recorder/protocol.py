"""The headers and methods the crawler and the recorder speak to each other.

Kept apart from :mod:`crawlers.recorder.proxy` so that the crawler process (spiders,
middlewares, the record client) does not import warcprox, which it never runs: that import
alone cost the crawler about 0.2 s of CPU per run.
"""

from __future__ import annotations

import base64
import binascii

SOURCE_HEADER = "Attest-Source"
CAPTURE_ID_HEADER = "Attest-Capture-Id"
OUTCOME_HEADER = "Attest-Outcome"
RECORDER_ERROR_HEADER = "Attest-Recorder-Error"
WARC_DATE_HEADER = "Attest-Warc-Date"
PAYLOAD_DIGEST_HEADER = "Attest-Payload-Digest"
BLOCK_DIGEST_HEADER = "Attest-Block-Digest"
RECORD_METHOD = "ATTEST_RECORD"
BATCH_CONTENT_TYPE = "application/x-attest-records+json"

#: The proxy authentication scheme and realm: a client names its source as the user name and
#: proves it belongs to the run with the run's secret as the password.
PROXY_AUTH_HEADER = "Proxy-Authorization"
PROXY_REALM = "attest recorder"


def proxy_credentials(source: str, secret: str) -> str:
    """The ``Proxy-Authorization`` value that attributes a request to ``source``."""
    token = base64.b64encode(f"{source}:{secret}".encode()).decode("ascii")
    return f"Basic {token}"


def parse_proxy_credentials(value: str) -> tuple[str, str] | None:
    """(source, secret) of a ``Proxy-Authorization: Basic`` value, or None if it is not one."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None
