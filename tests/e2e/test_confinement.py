"""Every byte the browser sends goes through the recorder; nothing reaches a forbidden address.

A page on an allowed origin (127.0.0.1) opens an ``RTCPeerConnection`` with a STUN/TURN server,
WebSockets, ``fetch`` and ``sendBeacon`` calls, to a forbidden loopback address (127.0.0.2, not
in ``ATTEST_ALLOW_NETWORKS``) and to its own origin. The capture runs in a network namespace of
its own (``unshare -n``, :mod:`confinement_probe`), where listeners on the forbidden address
count datagrams and connections and a raw socket counts every packet sent to it: all must stay
at zero, while the allowed calls are in the WARC.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.warcs import read_records, store_warcs

pytestmark = pytest.mark.e2e

PROBE = Path(__file__).with_name("confinement_probe.py")


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    return (
        subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode == 0
    )


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not _namespaces_work():
        pytest.skip("needs `unshare -n` (root or user namespaces) to confine the browser")
    home = tmp_path_factory.mktemp("confined-home")
    result = home / "result.json"
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, str(PROBE), str(home), str(result)],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    seen: dict[str, Any] = json.loads(result.read_text())
    assert seen["returncode"] == 0, seen["stdout"] + seen["stderr"]
    seen["records"] = read_records(store_warcs(home / "store"))
    return seen


def test_nothing_reaches_a_forbidden_address(probe: dict[str, Any]) -> None:
    # The counter was listening: it saw the capture's own traffic on lo.
    assert probe["packets_seen"] > 0
    assert probe["leaks"] == [], "packets to forbidden addresses"
    assert probe["udp_datagrams"] == 0, "STUN/TURN went around the recorder"
    assert probe["tcp_connections"] == 0


def test_the_page_made_every_call(probe: dict[str, Any]) -> None:
    url = probe["url"]
    text = next(r for r in probe["records"] if r.target == f"urn:text:{url}").block.decode()
    for attempt in ("webrtc ", "ws://" + probe["forbidden"], "fetch ", "beacon allowed true"):
        assert attempt in text, text
    assert "candidate" not in text or "typ srflx" not in text


def test_the_allowed_calls_are_recorded(probe: dict[str, Any]) -> None:
    origin = probe["origin"]
    records = probe["records"]
    for path in ("/allowed-fetch", "/allowed-beacon"):
        assert path in probe["page_requests"]
        kinds = {r.type for r in records if r.target == origin + path}
        assert {"request", "response"} <= kinds, path
    beacon = next(
        r for r in records if r.type == "request" and r.target == origin + "/allowed-beacon"
    )
    assert beacon.block.startswith(b"POST /allowed-beacon ")
    assert beacon.block.endswith(b"probe-beacon-payload")


def test_the_forbidden_calls_are_refused_and_recorded_as_such(probe: dict[str, Any]) -> None:
    forbidden = "http://" + probe["forbidden"]
    refused = [
        r.json()
        for r in probe["records"]
        if r.type == "metadata"
        and "attest-outcome" in r.headers.get("Content-Type", "")
        and (r.target or "").startswith(forbidden)
    ]
    assert {o["url"] for o in refused} >= {
        forbidden + "/forbidden-fetch",
        forbidden + "/forbidden-beacon",
    }
    assert {o["outcome"] for o in refused} == {"egress_refused"}
    assert not any(
        r.type in ("request", "response") and (r.target or "").startswith(forbidden)
        for r in probe["records"]
    )
