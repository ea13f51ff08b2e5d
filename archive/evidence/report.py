"""The human report of an evidence bundle: ``evidence/report.html`` and ``evidence/report.pdf``.

``render_report`` turns a bundle's manifest into one self-contained HTML page for people: per
claim, its text, source and gap status; per capture, the URL, times, hashes, how it was made
and its screenshot; then numbered verification steps and one POSIX ``sh`` script (element
``#verify-script``) that checks the bundle with ``unzip``, ``sha256sum`` and ``openssl`` alone.
Everything is inline (CSS, screenshots as ``data:`` URIs) and a Content-Security-Policy forbids
any fetch, so the page renders the same offline, in any browser and in the PDF.

``print_pdf`` prints that HTML with a headless Chromium subprocess (Debian's, or the one the
caller names), offline and with a throwaway profile, so ``archive/`` needs no Playwright.

The script trusts nothing the bundle says about keys: the organisation's public key (or, for a
domain-signed bundle, the root certificates of the web) and the timestamp authorities' root
certificates are inputs the verifier obtains independently.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import tempfile
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from archive.chromium import find_chromium as _find_chromium
from archive.errors import ConfigError, ReportError

TEMPLATES = Path(__file__).parent / "templates"

#: Debian's real Chromium binary first (the /usr/bin wrapper sources /etc/chromium.d).

#: Headless printing, offline: no background services, no DNS, a throwaway profile (added
#: per run). The page itself forbids every fetch with its Content-Security-Policy.
PDF_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-pdf-header-footer",
    "--generate-pdf-document-outline",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--no-pings",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--disable-features=Translate,OptimizationHints,MediaRouter,SafeBrowsing,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater",
)

#: Bundle paths the script can name without quoting surprises (no shell, glob or JSON escapes).
_SAFE_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*")
_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
_SOFTWARE_LABELS = {
    "software": "Software",
    "recorder": "Recorder",
    "scrapy-version": "Scrapy",
    "python-version": "Python",
}


# --- the HTML ---------------------------------------------------------------------------------


def render_report(
    manifest: dict[str, Any],
    *,
    files: list[str],
    screenshots: dict[str, bytes],
    signing: dict[str, Any],
    tsas: list[str],
    script: str | None = None,
) -> str:
    """The report page for a bundle whose ``evidence/manifest.json`` is ``manifest``.

    ``files`` are the bundle's files as ``datapackage.json`` lists them, in order;
    ``screenshots`` maps the record id of a ``urn:view:`` record to its image bytes;
    ``signing`` is ``{"mode": "key"|"domain", "public_key_sha256": hex, "domain": name}``
    (optionally ``"created"``: the signed time, else the manifest's); ``tsas`` are the
    timestamp authorities' URLs in the order of their tokens; ``script`` is the bundle's
    ``evidence/verify.sh`` (made here by :func:`bundle_script` when not given).
    """
    if script is None:
        script = bundle_script(manifest, files=files, signing=signing, tsas=tsas)
    claims = [_claim_view(claim, screenshots) for claim in manifest.get("claims", [])]
    summary = manifest.get("summary") or {}
    return (
        _environment()
        .get_template("report.html")
        .render(
            case=str(manifest.get("case", "")),
            title=str(manifest.get("title", "")),
            created=_when(manifest.get("created")),
            claims=claims,
            files=files,
            signing=_signing_view(signing),
            tsas=tsas,
            script=script,
            script_path=SCRIPT_PATH,
            gap_links=int(summary.get("gap_links") or sum(len(c["gaps"]) for c in claims)),
            example_file=next(
                (f for f in files if not f.startswith("evidence/report.")),
                "archive/data.warc.gz",
            ),
        )
    )


def bundle_script(
    manifest: dict[str, Any], *, files: list[str], signing: dict[str, Any], tsas: list[str]
) -> str:
    """The bundle's ``evidence/verify.sh``: :func:`verify_script` for this manifest."""
    return verify_script(
        files,
        signing=signing,
        tsas=tsas,
        case=str(manifest.get("case", "")),
        signed_at=str(signing.get("created") or manifest.get("created", "")),
    )


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _when(value: Any) -> str:
    """``2026-05-14T08:00:00.123456Z`` as ``2026-05-14 08:00:00.123456 UTC`` (as given if not)."""
    text = str(value or "")
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text):
        return text.replace("T", " ").removesuffix("Z") + " UTC"
    return text or "-"


#: Captures of one claim shown in full (screenshot, provenance, linked records); the rest are
#: listed one line each, so a claim backed by thousands of posts stays a readable (and quickly
#: printed) report. The manifest holds every capture's full details either way.
DETAILED_CAPTURES = 20


def _claim_view(claim: dict[str, Any], screenshots: dict[str, bytes]) -> dict[str, Any]:
    listed = claim.get("captures") or []
    captures = [_capture_view(c, screenshots) for c in listed[:DETAILED_CAPTURES]]
    brief = [
        {
            "url": str(c.get("url", "")),
            "captured": _when(c.get("captured")),
            "status": c.get("status"),
            "payload_sha256": str(c.get("payload_sha256") or "-"),
            "record_id": str(c.get("record_id", "")),
            "method": _method_label(c.get("method") or {}),
        }
        for c in listed[DETAILED_CAPTURES:]
    ]
    links = [
        {
            "link": str(link.get("link", "")),
            "status": str(link.get("status") or "gap"),
            "why": str(link.get("why") or ""),
            "captures": len(link.get("captures") or []),
            "incomplete": len(link.get("incomplete") or []),
            "quote": link.get("quote"),
            "reason": str(link.get("any_record_reason") or ""),
        }
        for link in claim.get("links") or []
    ]
    withdrawn = [
        {
            key: str(w.get(key) or "-")
            for key in (
                "record_id",
                "linked_by",
                "linked_at",
                "withdrawn_by",
                "withdrawn_at",
                "reason",
            )
        }
        | {"still": bool(w.get("still_evidence"))}
        for w in claim.get("withdrawn") or []
    ]
    gaps = [str(g) for g in claim.get("gaps") or []]
    return {
        "brief": brief,
        "count": len(listed),
        "id": str(claim.get("id", "")),
        "kind": str(claim.get("kind") or "claim"),
        "text": str(claim.get("text", "")),
        "source": str(claim.get("source") or "-"),
        "notes": str(claim.get("notes") or ""),
        "gap": bool(gaps) or not listed,
        "uncaptured": not listed,
        "gaps": gaps,
        "links": links,
        "withdrawn": withdrawn,
        "captures": captures,
    }


#: The per-page capture facts shown, in this order, with their labels.
_METHOD_LABELS = {
    "software": "Software",
    "browser": "Browser",
    "automation": "Automation",
    "viewport": "Viewport",
    "behaviors": "Behaviors run",
    "complete": "Page complete",
    "final_url": "Final URL",
    "seconds": "Seconds to capture",
}


def _method_label(method: dict[str, Any]) -> str:
    kind = method.get("method")
    if kind == "crawler":
        return "crawler (HTTP fetch, no browser)"
    if kind == "browser":
        return "browser (rendered in Chromium)"
    return str(method.get("note") or "not recorded for this page")


def _method_view(method: dict[str, Any]) -> dict[str, Any]:
    """How the page was captured, from its own metadata record: a label and the facts."""
    rows = []
    for key, label in _METHOD_LABELS.items():
        if key in method:
            rows.append((label, _plain(method[key])))
    return {
        "label": _method_label(method),
        "recorded": method.get("method") is not None,
        "rows": rows,
        "note": str(method.get("note") or "") if method.get("method") else "",
    }


def _plain(value: Any) -> str:
    """A recorded value as one line of text (objects and lists as compact JSON)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


def _quote_view(check: dict[str, Any]) -> dict[str, Any]:
    text = {
        "rendered": "the text the browser showed (urn:text:)",
        "html": "the text of the HTML document",
    }.get(str(check.get("text")), "")
    return {
        "quote": str(check.get("quote") or ""),
        "found": bool(check.get("found")),
        "text": text or "no text of this capture is indexed",
        "record": str(check.get("text_record") or "-"),
        "shown": str(check.get("shown") or ""),
        "before": str(check.get("before") or ""),
        "after": str(check.get("after") or ""),
    }


def _capture_view(capture: dict[str, Any], screenshots: dict[str, bytes]) -> dict[str, Any]:
    linked = [
        {
            key: str(record.get(key) or "")
            for key in ("record_id", "type", "url", "block_sha256", "role")
        }
        for record in capture.get("linked_records") or []
    ]
    shots = [
        _screenshot_view(record, screenshots[record["record_id"]])
        for record in linked
        if record["url"].startswith("urn:view:") and record["record_id"] in screenshots
    ]
    post = capture.get("post") or {}
    return {
        "url": str(capture.get("url", "")),
        "capture_id": str(capture.get("capture_id") or "-"),
        "replay_path": str((capture.get("archive_links") or {}).get("replay") or ""),
        "raw_path": str((capture.get("archive_links") or {}).get("raw") or ""),
        "captured": _when(capture.get("captured")),
        "record_id": str(capture.get("record_id", "")),
        "record_type": str(capture.get("record_type") or ""),
        "status": str(capture.get("status") or "-"),
        "mime": str(capture.get("mime") or "-"),
        "outcome": str(capture.get("outcome") or "not recorded for this page"),
        "block_sha256": str(capture.get("block_sha256") or "-"),
        "payload_sha256": str(capture.get("payload_sha256") or "-"),
        "server_ip": str(capture.get("server_ip") or "-"),
        "run_id": str(capture.get("run_id") or "-"),
        "source": str(capture.get("source") or "-"),
        "user_agent": str(capture.get("user_agent") or "not recorded for this page"),
        "method": _method_view(capture.get("method") or {}),
        "warc_software": _software(capture.get("warc_software") or {}),
        "post": [str(post.get(k) or "-") for k in ("platform", "account", "post_id")]
        if post
        else None,
        "post_time": str(post.get("platform_time") or ""),
        "post_time_shown": str(post.get("platform_time_shown") or ""),
        "role": str(capture.get("role") or ""),
        "found_by": str(capture.get("found_by") or "-"),
        "quotes": [_quote_view(q) for q in capture.get("quotes") or []],
        "linked": linked,
        "screenshots": shots,
        "tls": _tls_view(capture.get("tls")),
    }


def _tls_view(tls: Any) -> dict[str, Any] | None:
    """The origin's certificate chain, as fingerprints: what the recorder saw and checked."""
    if not isinstance(tls, dict):
        return None
    return {
        "version": str(tls.get("tls_version") or "-"),
        "verified": tls.get("verified"),
        "error": str(tls.get("verify_error") or ""),
        "chain": [
            (str(s or "-"), str(f or "-"))
            for s, f in zip(tls.get("subjects") or [], tls.get("chain_sha256") or [], strict=False)
        ],
    }


def _software(info: dict[str, Any]) -> list[tuple[str, str]]:
    """warcinfo's software fields with readable labels, in a stable order."""
    rows = []
    for key in sorted(info, key=lambda k: (k not in _SOFTWARE_LABELS, k)):
        label = _SOFTWARE_LABELS.get(key) or key.replace("-", " ").capitalize()
        rows.append((label, str(info[key])))
    return rows


def _screenshot_view(record: dict[str, str], image: bytes) -> dict[str, Any]:
    """The image as a ``data:`` URI, and whether its SHA-256 is the record's block digest."""
    digest = f"sha256:{hashlib.sha256(image).hexdigest()}"
    mime = next((m for magic, m in _IMAGE_TYPES if image.startswith(magic)), None)
    return {
        "record_id": record["record_id"],
        "url": record["url"],
        "sha256": digest,
        "matches": digest == record["block_sha256"],
        "src": f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}" if mime else None,
    }


def _signing_view(signing: dict[str, Any]) -> dict[str, str]:
    mode = str(signing.get("mode") or "key")
    if mode not in ("key", "domain", "none"):
        raise ReportError(f"signing mode {mode!r}: expected 'key', 'domain' or 'none'")
    return {
        "mode": mode,
        "fingerprint": str(signing.get("public_key_sha256") or ""),
        "domain": str(signing.get("domain") or ""),
    }


# --- the verification script ----------------------------------------------------------------

#: The verification script's path in the bundle (listed in ``datapackage.json``).
SCRIPT_PATH = "evidence/verify.sh"
#: Longest line of the script: it is printed unwrapped in the report's PDF (A4, monospace).
SCRIPT_WIDTH = 100

_PRELUDE = r"""#!/bin/sh
# evidence/verify.sh: checks an evidence bundle with sha256sum and openssl.
# Case: @CASE@
#
# Extract the bundle, and run this script in its top directory (where datapackage.json is):
#
#   unzip bundle.wacz -d bundle && cd bundle
@USAGE@
#
# The keys are inputs you obtain yourself (from the organisation, from each timestamp
# authority), never from the bundle. It prints OK, FAILED or NOT CHECKED per check and exits
# with 0 when every check passed, 1 when one failed, 2 when an input was missing (so a check
# could not run), 3 when all passed but no timestamp authority dated the bundle. It writes only
# into a temporary directory, removed when it ends. If attest is installed and WACZ names the
# bundle file, `attest verify` also checks every WARC record's own digests.
@INPUTS@
WACZ=${WACZ:-}
nl='
'
failed=0
missing=0
unstamped=0
ok() { printf 'OK           %s\n' "$*"; }
fail() { printf 'FAILED       %s\n' "$*"; failed=$((failed + 1)); }
unchecked() { printf 'NOT CHECKED  %s\n' "$*"; missing=$((missing + 1)); }
# json_value DOC KEY [N]: the Nth string value of "KEY" in the JSON text DOC. In JSON text the
# characters "KEY": " can only start a value of that key (quotes inside strings are escaped).
json_value() {
  rest=$1
  n=${3:-1}
  while [ "$n" -gt 0 ]; do
    case $rest in
      *"\"$2\": \""*) rest=${rest#*"\"$2\": \""} ;;
      *) return 1 ;;
    esac
    n=$((n - 1))
  done
  printf '%s' "${rest%%\"*}"
}
# line_after TEXT LABEL: the rest of the line of TEXT that starts with LABEL
line_after() {
  case $1 in
    *"$2"*) rest=${1#*"$2"}; printf '%s' "${rest%%"$nl"*}" ;;
    *) printf '(none)' ;;
  esac
}
# one_line TEXT: the lines of TEXT joined with " / ", without openssl's chatter
one_line() {
  joined=
  saved_ifs=$IFS
  IFS=$nl
  set -f
  for l in $1; do
    case $l in
      "Using configuration from"* | "Warning: certificate from"*) ;;
      *) joined="${joined:+$joined / }$l" ;;
    esac
  done
  IFS=$saved_ifs
  set +f
  printf '%s' "$joined"
}
# sha256_of FILE: the SHA-256 (hex) of FILE
sha256_of() {
  h=$(sha256sum < "$1")
  printf '%s' "${h%% *}"
}
# listed NAME: whether NAME is one of the bundle's files
listed() {
  case "$nl$files$nl" in
    *"$nl$1$nl"*) return 0 ;;
  esac
  return 1
}

for name in datapackage.json datapackage-digest.json; do
  if [ ! -f "$name" ]; then
    echo "FAILED       $name: not here; run this in the extracted bundle's top directory"
    exit 1
  fi
done
work=${TMPDIR:-/tmp}/attest-verify.$$
if ! mkdir -m 700 "$work"; then
  echo "FAILED       cannot make the working directory $work"
  exit 1
fi
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM
package=$(cat datapackage.json)
digest=$(cat datapackage-digest.json)
"""

_FILES = r"""
echo "Step 1: each file's SHA-256 is the one datapackage.json lists"
files='@FILES@'
set -f
saved_ifs=$IFS
IFS=$nl
for f in $files; do
  if [ ! -f "$f" ]; then
    fail "$f: missing from the bundle"
    continue
  fi
  h=$(sha256_of "$f")
  case $package in
    *"\"path\": \"$f\", \"hash\": \"sha256:$h\""*) ok "$f sha256:$h" ;;
    *) fail "$f: its SHA-256 is $h, not the one datapackage.json lists" ;;
  esac
done
for dir in @DIRS@; do
  [ -d "$dir" ] || continue
  for name in $(find "$dir" -type f); do
    listed "$name" || fail "$name: not one of the bundle's listed files (no hash covers it)"
  done
done
IFS=$saved_ifs
set +f

echo "Step 2: the SHA-256 of datapackage.json is the one datapackage-digest.json states"
package_sha256=$(sha256_of datapackage.json)
case $digest in
  *"\"hash\": \"sha256:$package_sha256\""*) ok "datapackage.json sha256:$package_sha256" ;;
  *) fail "datapackage.json: its SHA-256 is $package_sha256, not the one the digest states" ;;
esac
printf 'sha256:%s' "$package_sha256" > "$work/signed-hash.txt"
"""

_KEY = r"""
echo "Step 3: the organisation's signature over sha256:$package_sha256"
if [ -z "$PUBKEY" ]; then
  unchecked "signature: set PUBKEY to the organisation's public key (PEM), got from it"
elif [ ! -r "$PUBKEY" ]; then
  fail "signature: cannot read PUBKEY=$PUBKEY"
else
  key_sha256=$(openssl pkey -pubin -in "$PUBKEY" -outform DER | sha256sum)
  key_sha256=${key_sha256%% *}
  named=@FINGERPRINT@
  if [ "$key_sha256" = "$named" ]; then
    ok "$PUBKEY is the key this bundle names (SHA-256 $key_sha256)"
  else
    fail "$PUBKEY: its SHA-256 is $key_sha256; this bundle names $named"
  fi
  signer_key=$PUBKEY
  check_signature signatureDer
fi
"""

_DOMAIN = r"""
@DOMAIN@
signed_at=@SIGNED_AT@
echo "Step 3: the signature over sha256:$package_sha256 by the certificate of $domain"
if [ ! -r "$CERT_ROOTS" ]; then
  unchecked "signature: set CERT_ROOTS to the web's root certificates (PEM) you trust"
elif cert=$(json_value "$digest" domainCert); then
  printf '%b' "$cert" > "$work/domain-cert.pem"
  if out=$(openssl verify -CAfile "$CERT_ROOTS" -untrusted "$work/domain-cert.pem" \
      -purpose sslserver -verify_hostname "$domain" -attime @SIGNED_EPOCH@ \
      "$work/domain-cert.pem" 2>&1); then
    ok "certificate for $domain at $signed_at: $(one_line "$out")"
  else
    fail "certificate for $domain at $signed_at: $(one_line "$out")"
  fi
  openssl x509 -in "$work/domain-cert.pem" -pubkey -noout > "$work/domain-key.pem"
  signer_key=$work/domain-key.pem
  check_signature signature
else
  fail "datapackage-digest.json holds no domainCert"
fi
"""

_UNSIGNED = r"""
echo "Step 3: the signature"
fail "signature: this bundle was exported unsigned; nothing shows who made it"
"""

_SIGNATURE = r"""
# check_signature FIELD: the signature in FIELD of the digest file, by $signer_key
check_signature() {
  if signature=$(json_value "$digest" "$1"); then
    printf '%s' "$signature" | openssl base64 -d -A > "$work/signature.der"
    if out=$(openssl dgst -sha256 -verify "$signer_key" -signature "$work/signature.der" \
        "$work/signed-hash.txt" 2>&1); then
      ok "signature: $(one_line "$out")"
    else
      fail "signature: $(one_line "$out")"
    fi
  else
    fail "signature: datapackage-digest.json holds none"
  fi
}
"""

_TIMESTAMPS = r"""
echo "Step 4: the timestamps over sha256:$package_sha256"
if [ -z "$TSA_ROOTS" ] || [ ! -r "$TSA_ROOTS" ]; then
  unchecked "timestamps: set TSA_ROOTS to the authorities' root certificates (PEM)"
else
  i=0
  while [ "$i" -lt @TOKENS@ ]; do
    i=$((i + 1))
    tsa=$(json_value "$digest" tsa "$i") || tsa="authority $i"
    if ! token=$(json_value "$digest" token "$i"); then
      fail "timestamp $i ($tsa): datapackage-digest.json holds no token $i"
      continue
    fi
    printf '%s' "$token" | openssl base64 -d -A > "$work/tsa-$i.tsr"
    rest=${digest#*"$token"}
    untrusted=
    if chain=$(json_value "${rest%%"\"token\": \""*}" chain) && [ -n "$chain" ]; then
      printf '%b' "$chain" > "$work/tsa-$i-chain.pem"
      untrusted="-untrusted $work/tsa-$i-chain.pem"
    fi
    # $untrusted is split into its two words on purpose
    if out=$(openssl ts -verify -digest "$package_sha256" -in "$work/tsa-$i.tsr" \
        -CAfile "$TSA_ROOTS" $untrusted 2>&1); then
      text=$(openssl ts -reply -in "$work/tsa-$i.tsr" -text 2>/dev/null)
      at=$(line_after "$text" 'Time stamp: ')
      ok "timestamp $i ($tsa): $at by $(line_after "$text" 'TSA: ')"
    else
      fail "timestamp $i ($tsa): $(one_line "$out")"
    fi
  done
fi
"""

_NO_TIMESTAMPS = r"""
echo "Step 4: the timestamps"
echo "NOT TIMESTAMPED  no timestamp authority dated this bundle: the signature shows who"
echo "             signed it, not when it existed"
unstamped=1
"""

_ATTEST = r"""
echo "Step 5: every WARC record's own digests (attest verify, if installed)"
if [ -z "$WACZ" ]; then
  echo "SKIPPED      set WACZ to the bundle file to run attest verify on it"
elif ! command -v attest > /dev/null 2>&1; then
  echo "SKIPPED      attest is not installed: step 1 checked the WARC file as a whole"
else
  set --
  for anchor in @ANCHORS@; do
    [ -n "$anchor" ] && set -- "$@" --trust "$anchor"
  done
  out=$(attest verify "$@" "$WACZ" 2>&1)
  code=$?
  case $code in
    0 | 3) ok "attest verify $WACZ: $(one_line "$out")" ;;
    *) fail "attest verify $WACZ (exit status $code): $(one_line "$out")" ;;
  esac
fi
"""

_END = r"""
echo
if [ "$failed" -gt 0 ]; then
  echo "$failed CHECK(S) FAILED"
  exit 1
fi
if [ "$missing" -gt 0 ]; then
  echo "NOT VERIFIED: $missing check(s) could not run; set the inputs named above"
  exit 2
fi
if [ "$unstamped" -eq 1 ]; then
  echo "ALL CHECKS PASSED, BUT NOT TIMESTAMPED: signed and intact, with no independent time"
  exit 3
fi
echo "ALL CHECKS PASSED"
exit 0
"""


def verify_script(
    files: list[str],
    *,
    signing: dict[str, Any],
    tsas: list[str],
    case: str = "",
    signed_at: str = "",
) -> str:
    """The POSIX ``sh`` script (``evidence/verify.sh``) that checks an extracted bundle with
    ``sha256sum`` and ``openssl``.

    Run in the bundle's top directory, it hashes every listed file and finds its exact
    ``datapackage.json`` line, flags files no hash covers, checks ``datapackage-digest.json``,
    the signature (against the public key the verifier supplies as ``PUBKEY``, or the domain
    certificate against the roots in ``CERT_ROOTS``) and each RFC 3161 token (``TSA_ROOTS``),
    then runs ``attest verify`` on ``WACZ`` if attest is installed; OK/FAILED/NOT CHECKED per
    check; exit status 0 all passed, 1 one failed, 2 an input missing, 3 not timestamped.
    No line is longer than :data:`SCRIPT_WIDTH`, so the report prints it unwrapped.
    """
    for name in files:
        if (
            not _SAFE_PATH.fullmatch(name)
            or len(name) > SCRIPT_WIDTH
            or name
            in (
                "datapackage.json",
                "datapackage-digest.json",
            )
        ):
            raise ReportError(f"bundle file {name!r}: not a path the verification script can name")
    view = _signing_view(signing)
    inputs, usage = _inputs(view, tsas)
    script = _PRELUDE.replace("@INPUTS@", inputs).replace("@USAGE@", usage)
    script = script.replace("@CASE@", _comment(case)[: SCRIPT_WIDTH - 8])
    dirs = sorted({f.split("/", 1)[0] for f in files if "/" in f}) or ["evidence"]
    # One name a line inside single quotes: _SAFE_PATH names hold no quote and no blank.
    script += _FILES.replace("@FILES@", "\n".join(files)).replace(
        "@DIRS@", " ".join(_sh_quote(d) for d in dirs)
    )
    if view["mode"] != "none":
        script += _SIGNATURE
    if view["mode"] == "none":
        script += _UNSIGNED
    elif view["mode"] == "key":
        if not re.fullmatch(r"[0-9a-f]{64}", view["fingerprint"]):
            raise ReportError("signing: public_key_sha256 must be 64 lowercase hex digits")
        script += _KEY.replace("@FINGERPRINT@", _sh_quote(view["fingerprint"]))
    else:
        script += (
            _DOMAIN.replace("@DOMAIN@", _sh_assign("domain", view["domain"]))
            .replace("@SIGNED_EPOCH@", str(_epoch(signed_at)))
            .replace("@SIGNED_AT@", _sh_quote(signed_at[:60]))
        )
    if tsas:
        script += _TIMESTAMPS.replace("@TOKENS@", str(len(tsas)))
    else:
        script += _NO_TIMESTAMPS
    anchors = {"none": [], "key": ['"$PUBKEY"'], "domain": ['"$CERT_ROOTS"']}[view["mode"]]
    if tsas:
        anchors.append('"$TSA_ROOTS"')
    script += _ATTEST.replace("@ANCHORS@", " ".join(anchors) or "''")
    script += _END
    too_long = [line for line in script.splitlines() if len(line) > SCRIPT_WIDTH]
    if too_long:
        raise ReportError(f"verification script line longer than {SCRIPT_WIDTH}: {too_long[0]!r}")
    return script


def _inputs(view: dict[str, str], tsas: list[str]) -> tuple[str, str]:
    """The input variables at the top of the script, and its usage line (a comment)."""
    stamps = " TSA_ROOTS=tsa-roots.pem" if tsas else ""
    if view["mode"] == "none":
        lines = ["# (unsigned bundle: no key to check)"]
        usage = f"#  {stamps} sh evidence/verify.sh" if stamps else "#   sh evidence/verify.sh"
    elif view["mode"] == "key":
        lines = ["PUBKEY=${PUBKEY:-}  # the organisation's public key (PEM), got from it"]
        usage = f"#   PUBKEY=organisation-public-key.pem{stamps} sh evidence/verify.sh"
    else:
        lines = [
            "CERT_ROOTS=${CERT_ROOTS:-/etc/ssl/certs/ca-certificates.crt}  # web roots you trust"
        ]
        usage = f"#  {stamps} sh evidence/verify.sh" if stamps else "#   sh evidence/verify.sh"
    if tsas:
        lines.append("TSA_ROOTS=${TSA_ROOTS:-}  # the timestamp authorities' root certificates")
    return "\n".join(lines), usage


def _epoch(when: str) -> int:
    """Seconds since 1970 (``openssl verify -attime``) of an ISO 8601 time, UTC if unzoned."""
    try:
        parsed = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReportError(f"signing time {when!r} is not an ISO 8601 time") from exc
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def _sh_quote(text: str) -> str:
    """``text`` as one single-quoted shell word."""
    return "'" + text.replace("'", "'\\''") + "'"


def _sh_assign(name: str, value: str, width: int = 60) -> str:
    """``name=value`` as shell lines no longer than the script's width: a long value is
    assigned in pieces, each appended to the last (``name=$name'...'``)."""
    pieces = [value[i : i + width] for i in range(0, len(value), width)] or [""]
    lines = [f"{name}={_sh_quote(pieces[0])}"]
    lines += [f"{name}=${name}{_sh_quote(p)}" for p in pieces[1:]]
    return "\n".join(lines)


def _comment(text: str) -> str:
    """``text`` fit for a shell comment line."""
    return " ".join(text.split()) or "(unnamed)"


# --- the PDF ----------------------------------------------------------------------------------


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium that prints the report: ``explicit`` (``ATTEST_CHROMIUM``), else Debian's."""
    return _find_chromium(explicit, purpose="report PDF")


def print_pdf(
    html: str, output: Path, *, chromium: str | None = None, timeout: float = 120.0
) -> None:
    """Print ``html`` to the PDF file ``output`` with headless Chromium, offline.

    Raises :class:`ConfigError` if there is no such Chromium, :class:`ReportError` if it fails,
    times out or writes no PDF.
    """
    executable = find_chromium(chromium)
    with tempfile.TemporaryDirectory(prefix="attest-report-") as tmp:
        work = Path(tmp)
        page, pdf, profile = work / "report.html", work / "report.pdf", work / "profile"
        page.write_text(html, encoding="utf-8")
        command = [
            executable,
            *PDF_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ]
        returncode, stderr = _run(command, work, timeout, executable)
        data = pdf.read_bytes() if pdf.is_file() else b""
        if returncode != 0 or not data.startswith(b"%PDF-"):
            tail = "\n".join(stderr.strip().splitlines()[-8:])
            raise ReportError(
                f"{executable} did not print the report PDF (exit status {returncode}"
                f"{', no PDF written' if not data else ''}): {tail or 'no message'}"
            )
        output.write_bytes(data)


def _run(command: list[str], work: Path, timeout: float, executable: str) -> tuple[int, str]:
    """Run Chromium in its own process group (killed whole on timeout); its code and stderr."""
    env = {
        **os.environ,
        "HOME": str(work),
        "XDG_CONFIG_HOME": str(work / "config"),
        "XDG_CACHE_HOME": str(work / "cache"),
    }
    try:
        process = subprocess.Popen(
            command,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise ConfigError(f"Chromium {executable!r} could not be started: {exc}") from exc
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ReportError(
            f"{executable} did not print the report PDF within {timeout:g} s; it was stopped"
        ) from None
    return process.returncode, stderr.decode("utf-8", "replace")
