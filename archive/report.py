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
) -> str:
    """The report page for a bundle whose ``evidence/manifest.json`` is ``manifest``.

    ``files`` are the bundle's files as ``datapackage.json`` lists them, in order;
    ``screenshots`` maps the record id of a ``urn:view:`` record to its image bytes;
    ``signing`` is ``{"mode": "key"|"domain", "public_key_sha256": hex, "domain": name}``
    (optionally ``"created"``: the signed time, else the manifest's); ``tsas`` are the
    timestamp authorities' URLs in the order of their tokens.
    """
    script = verify_script(
        files, signing=signing, tsas=tsas, case=str(manifest.get("case", "")),
        signed_at=str(signing.get("created") or manifest.get("created", "")),
    )  # fmt: skip
    claims = [_claim_view(claim, screenshots) for claim in manifest.get("claims", [])]
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
            example_file=next(
                (f for f in files if not f.startswith("evidence/report.")),
                "archive/data.warc.gz",
            ),
        )
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
        {"url": str(c.get("url", "")), "captured": _when(c.get("captured")),
         "status": c.get("status"), "payload_sha256": str(c.get("payload_sha256") or "-"),
         "record_id": str(c.get("record_id", ""))}
        for c in listed[DETAILED_CAPTURES:]
    ]  # fmt: skip
    return {
        "brief": brief,
        "count": len(listed),
        "id": str(claim.get("id", "")),
        "kind": str(claim.get("kind") or "claim"),
        "text": str(claim.get("text", "")),
        "source": str(claim.get("source") or "-"),
        "notes": str(claim.get("notes") or ""),
        "gap": bool(claim.get("gap")) or not captures,
        "not_found": [str(n) for n in claim.get("not_found") or []],
        "captures": captures,
    }


def _capture_view(capture: dict[str, Any], screenshots: dict[str, bytes]) -> dict[str, Any]:
    linked = [
        {key: str(record.get(key) or "") for key in ("record_id", "type", "url", "block_sha256",
                                                     "role")}
        for record in capture.get("linked_records") or []
    ]  # fmt: skip
    shots = [
        _screenshot_view(record, screenshots[record["record_id"]])
        for record in linked
        if record["url"].startswith("urn:view:") and record["record_id"] in screenshots
    ]
    post = capture.get("post") or {}
    return {
        "url": str(capture.get("url", "")),
        "captured": _when(capture.get("captured")),
        "record_id": str(capture.get("record_id", "")),
        "record_type": str(capture.get("record_type") or ""),
        "status": str(capture.get("status") or "-"),
        "mime": str(capture.get("mime") or "-"),
        "block_sha256": str(capture.get("block_sha256") or "-"),
        "payload_sha256": str(capture.get("payload_sha256") or "-"),
        "server_ip": str(capture.get("server_ip") or "-"),
        "run_id": str(capture.get("run_id") or "-"),
        "source": str(capture.get("source") or "-"),
        "user_agent": str(capture.get("user_agent") or "-"),
        "software": _software(capture.get("software") or {}),
        "post": [str(post.get(k) or "-") for k in ("platform", "account", "post_id")]
        if post else None,
        "role": str(capture.get("role") or ""),
        "found_by": str(capture.get("found_by") or "-"),
        "quote_shown": capture.get("quote_shown"),
        "linked": linked,
        "screenshots": shots,
        "tls": _tls_view(capture.get("tls")),
    }  # fmt: skip


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

_PRELUDE = r"""#!/bin/sh
# Checks the evidence bundle of case @CASE@ with unzip, sha256sum and openssl only.
# Run it in an empty directory holding the inputs below: it writes its working files
# (signed-hash.txt, signature.der, ...) there and nowhere else. It prints OK or FAILED for
# each check (numbered as the report's steps) and exits with status 0 only if every check
# passed.
BUNDLE=bundle.wacz
@INPUTS@
nl='
'
failed=0
ok() { printf 'OK      %s\n' "$*"; }
fail() { printf 'FAILED  %s\n' "$*"; failed=$((failed + 1)); }
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
# sha256_of NAME: the SHA-256 (hex) of the file NAME inside the bundle
sha256_of() {
  h=$(unzip -p "$BUNDLE" "$1" | sha256sum)
  printf '%s' "${h%% *}"
}
# in_bundle NAME: whether the bundle holds the file NAME
in_bundle() { unzip -qq -l "$BUNDLE" "$1" >/dev/null 2>&1; }

for input in @REQUIRED@; do
  if [ ! -r "$input" ]; then
    echo "FAILED  cannot read $input: set the inputs at the top of this script"
    exit 1
  fi
done
for name in datapackage.json datapackage-digest.json; do
  if ! in_bundle "$name"; then
    echo "FAILED  $name: missing from $BUNDLE (or $BUNDLE is not a ZIP file)"
    exit 1
  fi
done
package=$(unzip -p "$BUNDLE" datapackage.json)
digest=$(unzip -p "$BUNDLE" datapackage-digest.json)
"""

_FILES = r"""
echo "Step 2: each file's SHA-256 is the one datapackage.json lists"
for f in @FILES@; do
  if ! in_bundle "$f"; then
    fail "$f: missing from the bundle"
    continue
  fi
  h=$(sha256_of "$f")
  case $package in
    *"\"path\": \"$f\", \"hash\": \"sha256:$h\""*) ok "$f sha256:$h" ;;
    *) fail "$f: its SHA-256 is $h, not the one datapackage.json lists" ;;
  esac
done
set -f
saved_ifs=$IFS
IFS=$nl
for name in $(unzip -Z1 "$BUNDLE"); do
  case $name in
    */ | datapackage.json | datapackage-digest.json | @CASES@) ;;
    *) fail "$name: in the bundle but not one of its listed files (no hash covers it)" ;;
  esac
done
IFS=$saved_ifs
set +f

echo "Step 3: the SHA-256 of datapackage.json is the one datapackage-digest.json states"
package_sha256=$(sha256_of datapackage.json)
case $digest in
  *"\"hash\": \"sha256:$package_sha256\""*) ok "datapackage.json sha256:$package_sha256" ;;
  *) fail "datapackage.json: its SHA-256 is $package_sha256, not the one datapackage-digest.json states" ;;
esac
printf 'sha256:%s' "$package_sha256" > signed-hash.txt
"""

_KEY = r"""
echo "Step 4: the organisation's signature over sha256:$package_sha256"
key_sha256=$(openssl pkey -pubin -in "$PUBKEY" -outform DER | sha256sum)
key_sha256=${key_sha256%% *}
if [ "$key_sha256" = @FINGERPRINT@ ]; then
  ok "$PUBKEY is the key this bundle names (SHA-256 $key_sha256)"
else
  fail "$PUBKEY: its SHA-256 is $key_sha256, but this bundle names the key "@FINGERPRINT@
fi
SIGNER_KEY=$PUBKEY
"""

_DOMAIN = r"""
echo "Step 4: the signature over sha256:$package_sha256 by the certificate of "@DOMAIN@
if cert=$(json_value "$digest" domainCert); then
  printf '%b' "$cert" > domain-cert.pem
  if out=$(openssl verify -CAfile "$CERT_ROOTS" -untrusted domain-cert.pem -purpose sslserver \
      -verify_hostname @DOMAIN@ -attime @SIGNED_EPOCH@ domain-cert.pem 2>&1); then
    ok "certificate for "@DOMAIN@" at "@SIGNED_AT@": $(one_line "$out")"
  else
    fail "certificate for "@DOMAIN@" at "@SIGNED_AT@": $(one_line "$out")"
  fi
  openssl x509 -in domain-cert.pem -pubkey -noout > domain-key.pem
else
  fail "datapackage-digest.json holds no domainCert"
  : > domain-key.pem
fi
SIGNER_KEY=domain-key.pem
"""

_UNSIGNED = r"""
echo "Step 4: the signature"
fail "signature: this bundle was exported unsigned; nothing shows who made it"
"""

_SIGNATURE = r"""if signature=$(json_value "$digest" @SIGFIELD@); then
  printf '%s' "$signature" | openssl base64 -d -A > signature.der
  if out=$(openssl dgst -sha256 -verify "$SIGNER_KEY" -signature signature.der signed-hash.txt 2>&1); then
    ok "signature: $(one_line "$out")"
  else
    fail "signature: $(one_line "$out")"
  fi
else
  fail "signature: datapackage-digest.json holds none"
fi
"""

_TIMESTAMPS = r"""
echo "Step 5: the timestamps over sha256:$package_sha256"
i=0
for tsa in @TSAS@; do
  i=$((i + 1))
  if ! token=$(json_value "$digest" token "$i"); then
    fail "timestamp $i ($tsa): datapackage-digest.json holds no token $i"
    continue
  fi
  printf '%s' "$token" | openssl base64 -d -A > "tsa-$i.tsr"
  rest=${digest#*"$token"}
  untrusted=
  if chain=$(json_value "${rest%%"\"token\": \""*}" chain) && [ -n "$chain" ]; then
    printf '%b' "$chain" > "tsa-$i-chain.pem"
    untrusted="-untrusted tsa-$i-chain.pem"
  fi
  # $untrusted is split into its two words on purpose
  if out=$(openssl ts -verify -digest "$package_sha256" -in "tsa-$i.tsr" -CAfile "$TSA_ROOTS" $untrusted 2>&1); then
    text=$(openssl ts -reply -in "tsa-$i.tsr" -text 2>/dev/null)
    ok "timestamp $i ($tsa): $(line_after "$text" 'Time stamp: ') by $(line_after "$text" 'TSA: ')"
  else
    fail "timestamp $i ($tsa): $(one_line "$out")"
  fi
done
"""

_END = r"""
echo
if [ "$failed" -eq 0 ]; then
  echo "ALL CHECKS PASSED"
  exit 0
fi
echo "$failed CHECK(S) FAILED"
exit 1
"""


def verify_script(
    files: list[str],
    *,
    signing: dict[str, Any],
    tsas: list[str],
    case: str = "",
    signed_at: str = "",
) -> str:
    """The POSIX ``sh`` script that checks a bundle with ``unzip``, ``sha256sum``, ``openssl``.

    It hashes every listed file and finds its exact ``datapackage.json`` line, flags files no
    hash covers, checks ``datapackage-digest.json``, the signature (against the public key the
    verifier supplies, or the domain certificate against the roots they trust) and each RFC
    3161 token, printing OK/FAILED per check; exit status 0 only if all passed.
    """
    for name in files:
        if not _SAFE_PATH.fullmatch(name) or name in (
            "datapackage.json",
            "datapackage-digest.json",
        ):
            raise ReportError(f"bundle file {name!r}: not a path the verification script can name")
    view = _signing_view(signing)
    inputs, required = _inputs(view, tsas)
    script = _PRELUDE.replace("@INPUTS@", inputs).replace("@REQUIRED@", required)
    script = script.replace("@CASE@", _comment(case))
    quoted = [_sh_quote(f) for f in files] or ["''"]
    script += _FILES.replace("@FILES@", " ".join(quoted)).replace("@CASES@", " | ".join(quoted))
    if view["mode"] == "none":
        script += _UNSIGNED
    elif view["mode"] == "key":
        if not re.fullmatch(r"[0-9a-f]{64}", view["fingerprint"]):
            raise ReportError("signing: public_key_sha256 must be 64 lowercase hex digits")
        script += _KEY.replace("@FINGERPRINT@", _sh_quote(view["fingerprint"]))
    else:
        script += (
            _DOMAIN.replace("@DOMAIN@", _sh_quote(view["domain"]))
            .replace("@SIGNED_EPOCH@", str(_epoch(signed_at)))
            .replace("@SIGNED_AT@", _sh_quote(signed_at))
        )
    if view["mode"] != "none":
        # An organisation key's signature is also stored DER-encoded, the form openssl reads.
        field = "signatureDer" if view["mode"] == "key" else "signature"
        script += _SIGNATURE.replace("@SIGFIELD@", field)
    if tsas:
        script += _TIMESTAMPS.replace("@TSAS@", " ".join(_sh_quote(t) for t in tsas))
    return script + _END


def _inputs(view: dict[str, str], tsas: list[str]) -> tuple[str, str]:
    """The input variables at the top of the script, and the list it checks are readable."""
    if view["mode"] == "none":
        lines = ["# (unsigned bundle: no key to check)"]
        required = ['"$BUNDLE"']
    elif view["mode"] == "key":
        lines = [
            "PUBKEY=organisation-public-key.pem  # obtained from the organisation, not the bundle"
        ]
        required = ['"$BUNDLE"', '"$PUBKEY"']
    else:
        lines = [
            "CERT_ROOTS=/etc/ssl/certs/ca-certificates.crt  # the web's root certificates you trust"
        ]
        required = ['"$BUNDLE"', '"$CERT_ROOTS"']
    if tsas:
        lines.append("TSA_ROOTS=tsa-roots.pem  # the timestamp authorities' root certificates")
        required.append('"$TSA_ROOTS"')
    return "\n".join(lines), " ".join(required)


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
        command = [executable, *PDF_FLAGS, f"--user-data-dir={profile}",
                   f"--print-to-pdf={pdf}", page.as_uri()]  # fmt: skip
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
    env = {**os.environ, "HOME": str(work), "XDG_CONFIG_HOME": str(work / "config"),
           "XDG_CACHE_HOME": str(work / "cache")}  # fmt: skip
    try:
        process = subprocess.Popen(
            command, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
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
