"""Who may use the retrieval service: tokens, roles and sessions.

Tokens live in a JSON file (``ATTEST_TOKENS``) as SHA-256 hashes, never in clear::

    [{"actor": "alice@ngo.example", "role": "investigator", "sha256": "<hex of the token>"}]

Roles are cumulative: ``investigator`` may read (find, replay, search, metadata); ``legal`` may
also export; ``admin`` may also manage. A request shows a token as ``Authorization: Bearer
<token>``, or carries the session cookie the web page's login form sets. With no tokens file the
service is open and must bind a loopback address (the embedded default).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from archive.errors import AccessDenied, ConfigError

ROLES = ("investigator", "legal", "admin")
SESSION_COOKIE = "attest_session"
SESSION_SECONDS = 12 * 3600


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


class Gate:
    """Checks requests against the tokens; keeps login sessions in memory."""

    def __init__(self, tokens: dict[str, Principal]) -> None:
        self.tokens = tokens
        self._sessions: dict[str, tuple[Principal, float]] = {}

    @property
    def open(self) -> bool:
        return not self.tokens

    def check_token(self, token: str) -> Principal | None:
        digest = token_hash(token)
        for known, principal in self.tokens.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None

    def login(self, token: str) -> str:
        principal = self.check_token(token)
        if principal is None:
            raise AccessDenied("unknown token")
        session = secrets.token_urlsafe(32)
        self._sessions[session] = (principal, time.monotonic() + SESSION_SECONDS)
        return session

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
            found = self.check_token(token.strip())
            if found is None:
                raise AccessDenied("unknown token")
        elif session:
            held = self._sessions.get(session)
            if held is not None and held[1] > time.monotonic():
                found = held[0]
            else:
                self._sessions.pop(session, None)
        if found is None:
            raise AccessDenied("a token is required (Authorization: Bearer <token>, or log in)")
        if not found.may(role):
            raise AccessDenied(f"{found.actor} ({found.role}) may not do this (needs {role})")
        return found
