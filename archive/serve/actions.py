"""Changes made through ``attest serve``: legal holds, bundle exports, claim links, custody seals.

Each is a POST of a JSON object, answered in JSON, calling the same library services as the CLI,
and needs a role (:mod:`archive.serve.auth`): a caller without a credential gets 401, a known
caller whose role falls short 403. Each one that succeeds is in the custody log under the
caller's actor.

============================  ======  =========================================================
``POST /api/holds``           legal   ``{"captures": [id...]}`` or ``{"case": id, "claims":
                                      [id...]}`` (all claims when none), ``"release": true`` to
                                      lift, ``"note"``: ``attest hold``; 409 on a store without
                                      legal holds
``POST /api/exports``         legal   ``{"case": id, "claims": [id...], "unsigned": false}``:
                                      ``attest export`` into ``<data home>/exports/``; the
                                      answer names the bundle and its download link
``GET /api/exports/<name>``   legal   the bundle file (its download is logged)
``POST /api/claims/link``     legal   ``{"case", "claim", "capture", "note",
                                      "any_record_reason"}``: ``attest claim link`` (a page only,
                                      unless a reason is given), the caller as annotator
``POST /api/claims/unlink``   legal   ``{"case", "claim", "capture", "reason"}``: ``attest claim
                                      unlink``, the link kept as withdrawn by the caller
``POST /api/custody/seal``    admin   ``{}``: a ``seal`` entry, then the unsealed entries
                                      written to the store as a segment
============================  ======  =========================================================

Cases are named by id only (never by path), among the configured case folders.

Cross-site requests cannot make these changes: the body must be ``application/json`` (which a
plain HTML form cannot send), an ``Origin`` header must name this service's host, and a request
authenticated by the web page's session cookie must echo the session's CSRF token in
``X-CSRF-Token`` (the page carries it in ``<meta name="attest-csrf">``). A request with a
Bearer token carries no ambient credential and needs no CSRF token.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from archive.errors import NotFound
from archive.evidence.cases import Case, case_by_id
from archive.evidence.claimlinks import record_link, withdraw_link
from archive.serve.auth import Principal, require

_CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_BUNDLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}\.wacz")
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class ActionSettings:
    """What the changes need beyond the index and store (from settings, by ``attest serve``)."""

    case_dirs: tuple[Path, ...] = ()
    #: where exports are written (``<data home>/exports``)
    exports: Path | None = None
    signing_key: Path | None = None
    signing_cert: Path | None = None
    tsa_urls: tuple[str, ...] = ()
    tsa_chains: tuple[str, ...] = field(default=())
    chromium: str | None = None


class Refused(Exception):
    """A change request refused before anything was done: its status and why."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def _service(request: Request) -> Any:
    return request.app.state.service


def _checked(request: Request, role: str) -> Principal:
    """The caller, allowed ``role`` and not tricked by another site (see the module's doc)."""
    principal: Principal = request.scope["attest.principal"]
    require(principal, role)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Refused(415, f"the body must be application/json, not {kind or 'none'!r}")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise Refused(403, f"cross-origin request from {origin} refused")
    if "attest.csrf" in request.scope:  # authenticated by the session cookie
        wanted = request.scope["attest.csrf"] or ""
        given = request.headers.get("x-csrf-token", "")
        if not wanted or not hmac.compare_digest(given.encode(), wanted.encode()):
            raise Refused(403, "X-CSRF-Token missing or wrong (the page's attest-csrf value)")
    return principal


async def _body(request: Request, known: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """The JSON object, each field of the expected type; Refused(400) naming what is wrong."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise Refused(413, f"the body is {len(raw)} bytes; at most {MAX_BODY}")
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise Refused(400, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Refused(400, "the body must be a JSON object")
    for name, value in data.items():
        if name not in known:
            raise Refused(400, f"unknown field {name!r} (known: {', '.join(sorted(known))})")
        if not isinstance(value, known[name]):
            raise Refused(400, f"field {name!r}: {json.dumps(value)[:80]} is not of the right type")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise Refused(400, f"field {name!r}: a list of strings")
    return data


def _case(settings: ActionSettings, case_id: str) -> Case:
    """A case by its id among the case folders (a path is never taken from a request)."""
    if not _CASE_ID.fullmatch(case_id):
        raise Refused(400, f"field 'case': {case_id[:80]!r} is not a case id")
    case = case_by_id(case_id, settings.case_dirs)
    if case is None:
        raise NotFound(f"no case with id {case_id!r} in the case folders")
    return case


def _answer(call: Any) -> Any:
    """Turns Refused into its JSON answer; other errors go to the app's handlers."""

    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await call(request)
        except Refused as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        return response

    return endpoint


# --- the actions ------------------------------------------------------------------------------


async def holds(request: Request) -> Response:
    from archive.evidence.holds import apply_holds, plan_for_captures, plan_for_claims

    principal = _checked(request, "legal")
    data = await _body(
        request, {"captures": list, "case": str, "claims": list, "release": bool, "note": str}
    )
    service = _service(request)
    if ("case" in data) == ("captures" in data):
        raise Refused(400, "give either 'captures' (capture ids) or 'case' (with 'claims')")
    if "claims" in data and "case" not in data:
        raise Refused(400, "'claims' needs 'case'")
    release = bool(data.get("release", False))

    def run() -> dict[str, Any]:
        store = service.store
        store.require_legal_holds()  # before anything else: changes nothing when it cannot
        if "case" in data:
            plan = plan_for_claims(
                service.db, store, _case(service.actions, data["case"]), data.get("claims", [])
            )
        else:
            plan = plan_for_captures(service.db, store, data["captures"])
        done = apply_holds(
            store,
            service.custody,
            plan,
            on=not release,
            actor=principal.actor,
            note=data.get("note"),
        )
        return {
            "action": "release" if release else "hold",
            "holds": [
                {
                    **vars(h),
                    **plan.details(h.key),
                    **({"kept_for": plan.kept[h.key]} if h.key in plan.kept else {}),
                }
                for h in done
            ],
            "gaps": plan.gaps,
        }

    return JSONResponse(await asyncio.to_thread(run))


async def exports(request: Request) -> Response:
    from archive.evidence.bundle import export_bundle
    from archive.trust.signing import load_signer
    from archive.trust.timestamps import authorities

    principal = _checked(request, "legal")
    data = await _body(request, {"case": str, "claims": list, "unsigned": bool})
    if "case" not in data:
        raise Refused(400, "field 'case' is required")
    service = _service(request)
    settings: ActionSettings = service.actions
    if settings.exports is None:
        raise Refused(409, "this service has no exports folder (no data home)")
    unsigned = bool(data.get("unsigned", False))
    key = settings.signing_key
    if not unsigned and (key is None or not key.is_file()):
        raise Refused(
            409,
            "no signing key is configured (ATTEST_SIGNING_KEY, or `attest keygen`): "
            'send "unsigned": true to export without a signature',
        )

    def run() -> dict[str, Any]:
        case = _case(settings, data["case"])
        claims = list(data.get("claims", []))
        for claim in claims:
            case.claim(claim)  # an unknown claim is refused before anything is written
        signer = None if unsigned or key is None else load_signer(key, settings.signing_cert)
        tsas = authorities(list(settings.tsa_urls), list(settings.tsa_chains))
        assert settings.exports is not None
        settings.exports.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        scope = "-".join(claims) if claims else "all"
        name = f"{case.id}-{scope}-{stamp}-{secrets.token_hex(3)}.wacz"
        if not _BUNDLE_NAME.fullmatch(name):
            name = f"{case.id}-{stamp}-{secrets.token_hex(3)}.wacz"
        report = export_bundle(
            service.db,
            service.store,
            case,
            settings.exports / name,
            claim_ids=claims,
            custody=service.custody,
            actor=principal.actor,
            signer=signer,
            tsas=tsas,
            chromium=settings.chromium,
        )
        service.custody.seal()
        return {
            "bundle": name,
            "download": f"/api/exports/{name}",
            "sha256": report.sha256,
            "records": report.records,
            "claims": report.claims,
            "gaps": report.gaps,
            "signed": signer is not None,
            "timestamps": [t.url for t in tsas],
        }

    return JSONResponse(await asyncio.to_thread(run), status_code=201)


async def export_file(request: Request) -> Response:
    principal: Principal = request.scope["attest.principal"]
    require(principal, "legal")
    service = _service(request)
    name = request.path_params["name"]
    folder = service.actions.exports
    if folder is None or not _BUNDLE_NAME.fullmatch(name) or not (folder / name).is_file():
        raise NotFound(f"no exported bundle {name[:100]!r}")
    await asyncio.to_thread(
        service.custody.append,
        "read",
        f"exports/{name}",
        {"via": "bundle download"},
        actor=principal.actor,
    )
    return FileResponse(folder / name, media_type="application/wacz+zip", filename=name)


def _required(data: dict[str, Any], *names: str) -> None:
    missing = [f for f in names if f not in data]
    if missing:
        raise Refused(400, f"field {missing[0]!r} is required")


async def claim_link(request: Request) -> Response:
    principal = _checked(request, "legal")
    data = await _body(
        request, {"case": str, "claim": str, "capture": str, "note": str, "any_record_reason": str}
    )
    _required(data, "case", "claim", "capture")
    service = _service(request)
    reason = data.get("any_record_reason")

    def run() -> dict[str, Any]:
        case = _case(service.actions, data["case"])
        row, new = record_link(
            service.db,
            service.custody,
            case,
            data["claim"],
            data["capture"],
            annotator=principal.actor,
            note=data.get("note"),
            any_record_reason=reason,
            via="attest serve",
        )
        return {
            "linked": new,
            "capture": row.record_id,
            "url": row.url,
            "case": case.id,
            "claim": data["claim"],
        }

    return JSONResponse(await asyncio.to_thread(run))


async def claim_unlink(request: Request) -> Response:
    principal = _checked(request, "legal")
    data = await _body(request, {"case": str, "claim": str, "capture": str, "reason": str})
    _required(data, "case", "claim", "capture", "reason")
    service = _service(request)

    def run() -> dict[str, Any]:
        case = _case(service.actions, data["case"])
        record_id, was = withdraw_link(
            service.db,
            service.custody,
            case,
            data["claim"],
            data["capture"],
            actor=principal.actor,
            reason=data["reason"],
            via="attest serve",
        )
        return {
            "withdrawn": True,
            "capture": record_id,
            "case": case.id,
            "claim": data["claim"],
            "linked_by": was.annotator,
        }

    return JSONResponse(await asyncio.to_thread(run))


async def custody_seal(request: Request) -> Response:
    principal = _checked(request, "admin")
    await _body(request, {})
    service = _service(request)

    def run() -> dict[str, Any]:
        entry = service.custody.append(
            "seal", "custody", {"via": "attest serve"}, actor=principal.actor
        )
        segment = service.custody.seal()
        return {"sealed": segment, "through": entry.seq}

    return JSONResponse(await asyncio.to_thread(run))


ACTION_ROUTES = [
    Route("/api/holds", _answer(holds), methods=["POST"]),
    Route("/api/exports", _answer(exports), methods=["POST"]),
    Route("/api/exports/{name}", export_file, methods=["GET", "HEAD"]),
    Route("/api/claims/link", _answer(claim_link), methods=["POST"]),
    Route("/api/claims/unlink", _answer(claim_unlink), methods=["POST"]),
    Route("/api/custody/seal", _answer(custody_seal), methods=["POST"]),
]
