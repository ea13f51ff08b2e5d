"""Each capture's own links in ``attest serve``, by record id: exact, whatever shares its second.

Memento URI-Ms (``/web/<14 digits>/<url>``) name a second, and several captures of one URL can
fall in one second; these links name one record:

=================================  ==============================================================
``/capture/<uuid>/replay``         the record replayed (pywb's frame; without pywb: as ``raw``)
``/capture/<uuid>/raw``            the record's payload exactly as archived (headers and
                                   Content-Encoding as sent), after its digests are checked
``/ui/capture/<uuid>``             the capture's page: hashes, IP, TLS chain, custody
``/api/capture/<uuid>``            the same as JSON
=================================  ==============================================================

``<uuid>`` is the record's ``WARC-Record-ID`` without ``<urn:uuid:`` and ``>``, in lowercase.
Bundles and reports link captures with :func:`capture_links`, so one format serves all.
"""

from __future__ import annotations

import re

from archive.errors import ConfigError

_RECORD_ID = re.compile(r"<?(?:urn:uuid:)?([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})>?")
#: One capture's path prefix in the service; pywb writes it into an exact replay's links.
CAPTURE_PREFIX = "/capture/"


def capture_uuid(record_id: str) -> str:
    """The lowercase UUID of ``<urn:uuid:...>`` (or of a bare UUID); ConfigError otherwise."""
    match = _RECORD_ID.fullmatch(record_id.strip())
    if not match:
        raise ConfigError(f"{record_id[:80]!r} is not a capture id (a UUID record id)")
    return match.group(1).lower()


def capture_links(record_id: str, base: str = "") -> dict[str, str]:
    """``{"replay", "raw", "page", "api"}``: a capture's links, under ``base`` (the service's
    origin, e.g. ``https://archive.example.org``; empty gives paths)."""
    uuid = capture_uuid(record_id)
    base = base.rstrip("/")
    return {
        "replay": f"{base}{CAPTURE_PREFIX}{uuid}/replay",
        "raw": f"{base}{CAPTURE_PREFIX}{uuid}/raw",
        "page": f"{base}/ui/capture/{uuid}",
        "api": f"{base}/api/capture/{uuid}",
    }
