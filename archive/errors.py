"""attest's exceptions: one small hierarchy, each class a domain event.

Every error attest raises on purpose derives from :class:`AttestError`; third-party errors are
wrapped with ``raise ... from exc`` so the cause stays visible. Each branch maps to what the
caller should do:

- :class:`ConfigError` (bad settings, registry, arguments): **stop** before anything changes;
  :class:`HoldUnsupported` is one: the store has no legal holds (a file store, or a bucket
  without Object Lock), so none was placed or recorded.
- :class:`CaptureError` (one fetch could not be made): **skip** the URL; it is recorded as an
  outcome, never dropped.
- :class:`StorageError` (the store failed or is unreachable): **retry later**; WARCs stay in
  the spool until a later run or ``attest recover`` uploads them.
- :class:`SpoolError` (spool locked, disk full): **stop** the run cleanly with what was written
  kept intact.
- :class:`IntegrityError` (a digest or structure check failed): **stop** and report; never
  "repair" evidence.
- :class:`RecorderError`, :class:`CrawlFailed` (the recording proxy or a crawl failed): **stop**
  the run; what was recorded is still shipped.
- :class:`IndexDatabaseError` (the index database failed): **retry** ``attest index``; the WARCs
  are safe in the store and the index can always be rebuilt from them.
- :class:`NotFound` (no capture matches a query), :class:`UnsupportedEncoding` (an archived
  payload cannot be decoded), :class:`AccessDenied` (a service request lacks a valid token or
  role; :class:`RoleRequired`, :class:`LoginThrottled`): **report** to the user; nothing was
  changed.
- :class:`CustodyError` (the custody log's hash chain does not verify): **stop** and report.
- :class:`ReportError` (the human report could not be printed: Chromium failed or timed out):
  **stop** the export; a missing Chromium is a :class:`ConfigError` naming the executable.
- :class:`TimestampError` (a timestamp authority failed or answered wrongly): **stop** the
  export; no bundle is written without the tokens it was configured to carry.
"""

from __future__ import annotations


class AttestError(Exception):
    """Base of every error attest raises on purpose."""


class ConfigError(AttestError):
    """Settings, arguments or input files are invalid. Nothing has been changed."""


class HoldUnsupported(ConfigError):
    """The store cannot place legal holds (a file store, or a bucket without Object Lock)."""


class RegistryError(ConfigError):
    """A source registry file is invalid; names the file, the entry and the field."""

    def __init__(self, path: str, entry: str | None, field: str | None, message: str) -> None:
        self.path = path
        self.entry = entry
        self.field = field
        self.reason = message
        where = path
        if entry is not None:
            where += f": source {entry!r}"
        if field:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class CaseError(ConfigError):
    """A case file is invalid; names the file, the claim and the field."""

    def __init__(self, path: str, claim: str | None, field: str | None, message: str) -> None:
        self.path = path
        self.claim = claim
        self.field = field
        where = path
        if claim is not None:
            where += f": claim {claim!r}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class CaptureError(AttestError):
    """A single fetch could not be captured; the URL gets the failure outcome named here."""

    outcome = "connection_error"


class CaptureRefused(CaptureError):
    """The egress guard refused a target address (private, loopback, metadata, ...)."""

    outcome = "egress_refused"

    def __init__(self, host: str, address: str, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        super().__init__(f"refused to connect to {host} ({address}): {reason}")


class DnsFailure(CaptureError):
    """The target host name did not resolve."""

    outcome = "dns_error"


class ConnectFailure(CaptureError):
    """The connection was refused, reset or unreachable."""

    outcome = "connection_error"


class FetchTimeout(CaptureError):
    """Connecting or reading took longer than allowed."""

    outcome = "timeout"


class TlsFailure(CaptureError):
    """The TLS handshake with the origin failed."""

    outcome = "tls_error"


class StorageError(AttestError):
    """The object store failed; data stays in the spool and is uploaded later."""


class StoreUnavailable(StorageError):
    """The store could not be reached or refused the operation."""


class ObjectExists(StorageError):
    """An object key already exists with different content; keys are never overwritten."""


class SpoolError(AttestError):
    """The spool cannot be used (locked by a live run, unreadable)."""


class SpoolLocked(SpoolError):
    """Another live process holds this spool's lock."""


class DiskFull(SpoolError):
    """Writing to the spool failed for lack of space; what was written is kept intact."""


class IntegrityError(AttestError):
    """A verification failed: the bytes are not what their digests or structure say."""


class DigestMismatch(IntegrityError):
    """A recomputed digest differs from the recorded one."""


class TruncatedRecord(IntegrityError):
    """A WARC record or gzip member ends before its declared length."""


class CrawlFailed(AttestError):
    """A crawl could not run (a spider failed to start or crashed)."""


class RecorderError(AttestError):
    """The recording proxy could not start or stopped unexpectedly."""


class IndexDatabaseError(AttestError):
    """The index database could not be read or written."""


class NotFound(AttestError):
    """No capture matches the query."""


class UnsupportedEncoding(AttestError):
    """An archived payload uses a Content-Encoding attest cannot decode (or it does not decode)."""


class AccessDenied(AttestError):
    """A request to the retrieval service has no valid token, or its role may not do this."""


class RoleRequired(AccessDenied):
    """The caller is known, but its role falls short of what the request needs (HTTP 403)."""


class LoginThrottled(AccessDenied):
    """Too many failed logins from one address; ``retry_after`` seconds until the next try."""

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class CustodyError(AttestError):
    """The custody log is broken: an entry's hash or its link to the previous one is wrong."""


class TimestampError(AttestError):
    """A timestamp authority could not be reached, refused, or answered with a wrong token."""


class ReportError(AttestError):
    """The bundle's human report could not be rendered or printed to PDF."""
