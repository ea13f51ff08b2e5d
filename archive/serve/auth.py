"""Who may use the retrieval service: tokens, roles and sessions.

Tokens live in a JSON file (``ATTEST_TOKENS``) as SHA-256 hashes, never in clear::

    [{"actor": "alice@ngo.example", "role": "investigator", "sha256": "<hex of the token>"}]

Roles are cumulative: ``investigator`` may read (find, replay, search, metadata); ``legal`` may
also act on evidence (legal holds, bundle exports, claim links); ``admin`` may also manage the
service (seal the custody log). A request shows a token as ``Authorization: Bearer <token>``, or
carries the session cookie the web page's login form sets (each session also has a CSRF token,
which changes made with the cookie must echo). With no tokens file the service is open (every
caller is ``admin``) and must bind a loopback address (the embedded default).

Failed logins (an unknown token, from the form or in a header) are counted per client address:
after :data:`MAX_FAILURES` within :data:`FAILURE_WINDOW` seconds that address is refused (HTTP
429, ``Retry-After``) until the oldest failure is out of the window, even with a valid token, so
guessing gains nothing. Behind a reverse proxy on loopback, uvicorn takes the client address from
``X-Forwarded-For``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from archive.errors import AccessDenied, ConfigError, LoginThrottled, RoleRequired

ROLES = ("investigator", "legal", "admin")
SESSION_COOKIE = "attest_session"
SESSION_SECONDS = 12 * 3600
#: Failed logins an address may make within FAILURE_WINDOW seconds before it must wait.
MAX_FAILURES = 10
FAILURE_WINDOW = 300.0
#: Addresses remembered at most (the oldest are forgotten first).
MAX_TRACKED = 10_000


@dataclass(frozen=True)
class Principal:
    actor: str
    role: str

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_tokens(path: Path | None) -> dict[str, Principal]:
    """sha256 -> principal; ConfigError naming the file and entry when an entry is wrong."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read tokens: {exc}") from None
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a JSON list of {{actor, role, sha256}} entries")
    tokens: dict[str, Principal] = {}
    for i, entry in enumerate(data):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: not an object")
        actor, role, digest = entry.get("actor"), entry.get("role"), entry.get("sha256")
        if not isinstance(actor, str) or not actor.strip():
            raise ConfigError(f"{where}: field 'actor' must be a non-empty string")
        if role not in ROLES:
            raise ConfigError(
                f"{where}: field 'role' must be one of {', '.join(ROLES)}, not {role!r}"
            )
        if (
            not isinstance(digest, str)
            or len(digest) != 64
            or not all(c in "0123456789abcdef" for c in digest)
        ):
            raise ConfigError(
                f"{where}: field 'sha256' must be the token's SHA-256 in lowercase hex"
            )
        tokens[digest] = Principal(actor.strip(), role)
    if not tokens:
        raise ConfigError(f"{path}: holds no token")
    return tokens


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class LoginThrottle:
    """Failed logins per client address, in a sliding window."""

    def __init__(
        self,
        limit: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str) -> deque[float]:
        times = self._failures.get(client)
        if times is None:
            return deque()
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[client]
        return times

    def check(self, client: str) -> None:
        """LoginThrottled when ``client`` has used up its failed logins."""
        times = self._recent(client)
        if len(times) >= self.limit:
            wait = max(1, math.ceil(times[0] + self.window - self.clock()))
            raise LoginThrottled(
                f"too many failed logins from {client}: try again in {wait} s", wait
            )

    def failed(self, client: str) -> None:
        times = self._recent(client)
        times.append(self.clock())
        self._failures[client] = times
        self._failures.move_to_end(client)
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)


@dataclass(frozen=True)
class Session:
    principal: Principal
    expires: float
    #: what a change made with this session's cookie must carry (X-CSRF-Token)
    csrf: str


class Gate:
    """Checks requests against the tokens; keeps login sessions in memory."""

    def __init__(self, tokens: dict[str, Principal], throttle: LoginThrottle | None = None) -> None:
        self.tokens = tokens
        self.throttle = throttle or LoginThrottle()
        self._sessions: dict[str, Session] = {}

    @property
    def open(self) -> bool:
        return not self.tokens

    def check_token(self, token: str) -> Principal | None:
        digest = token_hash(token)
        for known, principal in self.tokens.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None

    def _known(self, token: str, client: str) -> Principal:
        """The token's principal; a failure counted against ``client``, or LoginThrottled."""
        self.throttle.check(client)
        principal = self.check_token(token)
        if principal is None:
            self.throttle.failed(client)
            raise AccessDenied("unknown token")
        return principal

    def login(self, token: str, client: str) -> str:
        principal = self._known(token, client)
        session = secrets.token_urlsafe(32)
        self._sessions[session] = Session(
            principal, time.monotonic() + SESSION_SECONDS, secrets.token_urlsafe(32)
        )
        return session

    def session(self, session: str | None) -> Session | None:
        """A live session by its cookie value (expired ones are forgotten)."""
        if not session:
            return None
        held = self._sessions.get(session)
        if held is not None and held.expires > time.monotonic():
            return held
        self._sessions.pop(session, None)
        return None

    def logout(self, session: str | None) -> None:
        if session:
            self._sessions.pop(session, None)

    def principal(
        self,
        authorization: str | None,
        session: str | None,
        client: str,
        *,
        role: str = "investigator",
    ) -> Principal:
        """The caller, or AccessDenied saying what is missing."""
        if self.open:
            return Principal(f"local:{client}", "admin")
        found: Principal | None = None
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AccessDenied("Authorization must be 'Bearer <token>'")
            found = self._known(token.strip(), client)
        else:
            held = self.session(session)
            found = held.principal if held is not None else None
        if found is None:
            raise AccessDenied("a token is required (Authorization: Bearer <token>, or log in)")
        require(found, role)
        return found


def require(principal: Principal, role: str) -> None:
    """RoleRequired unless ``principal``'s role includes ``role``."""
    if not principal.may(role):
        raise RoleRequired(
            f"{principal.actor} ({principal.role}) may not do this: it needs the {role} role"
        )
