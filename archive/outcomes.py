"""The fixed vocabulary of fetch outcomes.

Every fetch ends with exactly one outcome, recorded per URL (in the WARC and the run's ledger)
and counted per run. Later stages (index, reports, evidence) rely on these exact strings.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    CAPTURED = "captured"
    REDIRECT = "redirect"
    HTTP_ERROR = "http_error"  # 4xx/5xx, body captured
    DNS_ERROR = "dns_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    TLS_ERROR = "tls_error"
    ROBOTS_DISALLOWED = "robots_disallowed"
    EGRESS_REFUSED = "egress_refused"
    OUT_OF_SCOPE = "out_of_scope"
    # browser capture
    LOGIN_WALL = "login_wall"
    SUSPENDED = "suspended"
    REMOVED = "removed"
    RATE_LIMITED = "rate_limited"
    #: The browser rendered the page, but within its bounds the page's requests did not
    #: settle or its content did not appear (even in a second, fresh try): what it showed is
    #: recorded, and never counted as captured.
    INCOMPLETE = "incomplete"
    #: A URL that cannot be fetched at all (no http(s) scheme, no host, a bad port, spaces, too
    #: long): nothing was sent; the reason is recorded.
    INVALID_URL = "invalid_url"


#: Outcomes where the server answered and its response is in the WARC.
RESPONSE_OUTCOMES = frozenset({Outcome.CAPTURED, Outcome.REDIRECT, Outcome.HTTP_ERROR})

#: Outcomes of a fetch that failed before any response; the recorder writes a metadata record.
FAILURE_OUTCOMES = frozenset(
    {
        Outcome.DNS_ERROR,
        Outcome.TIMEOUT,
        Outcome.CONNECTION_ERROR,
        Outcome.TLS_ERROR,
        Outcome.EGRESS_REFUSED,
        Outcome.INVALID_URL,
    }
)

#: Failures worth retrying with backoff (transient by nature).
TRANSIENT_OUTCOMES = frozenset({Outcome.TIMEOUT, Outcome.CONNECTION_ERROR})


def outcome_for_status(status: int) -> Outcome:
    """Classify an HTTP status the server sent."""
    if 300 <= status < 400:
        return Outcome.REDIRECT
    if status >= 400:
        return Outcome.HTTP_ERROR
    return Outcome.CAPTURED
