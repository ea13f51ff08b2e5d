"""Capture the confinement probe page inside a network namespace and count what leaked.

Run as ``unshare -n python confinement_probe.py HOME RESULT`` (``tests/e2e/test_confinement.py``
does): in a namespace of its own, where only ``lo`` exists, it brings ``lo`` up, listens on a
forbidden address (127.0.0.2: a UDP port for STUN/TURN, a TCP port for WebSocket, fetch and
beacon), counts every packet on ``lo`` to an address other than 127.0.0.1 with a raw socket,
serves the probe page (and its WebSocket echo) on 127.0.0.1, and captures it in the browser
(``attest crawl``) with only 127.0.0.1/32 allowed. What it saw, and the bytes the echo received
and sent on each WebSocket, go to RESULT as JSON. Nothing can leave the namespace.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from demoweb.http import FixtureServer
from demoweb.probes import ProbeSite

FORBIDDEN = "127.0.0.2"
ALLOWED = ipaddress.ip_address("127.0.0.1")
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
ROOT = Path(__file__).resolve().parents[2]


class LoopbackCounter:
    """Every packet sent on ``lo`` to an address other than 127.0.0.1 (or ::1)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
        self.sock.settimeout(0.2)
        self.leaks: list[dict[str, Any]] = []
        self.seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            if addr[2] != PACKET_OUTGOING:  # each packet on lo is seen going out and coming in
                continue
            self.seen += 1
            ethertype = int.from_bytes(frame[12:14], "big")
            if ethertype == 0x0800:
                ip = frame[14:]
                dst: Any = ipaddress.IPv4Address(ip[16:20])
                proto, header = ip[9], (ip[0] & 0x0F) * 4
            elif ethertype == 0x86DD:
                ip = frame[14:]
                dst = ipaddress.IPv6Address(ip[24:40])
                proto, header = ip[6], 40
            else:
                continue
            if dst == ALLOWED or (dst.version == 6 and dst.is_loopback):
                continue
            port = int.from_bytes(ip[header + 2 : header + 4], "big") if proto in (6, 17) else None
            self.leaks.append({"dst": str(dst), "proto": proto, "port": port})

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class ForbiddenListeners:
    """A UDP and a TCP listener on the forbidden address, counting what reaches them."""

    def __init__(self) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((FORBIDDEN, 3478))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind((FORBIDDEN, 0))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        self.tcp_port = self.tcp.getsockname()[1]
        self.datagrams = 0
        self.connections = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._count_udp, daemon=True),
            threading.Thread(target=self._count_tcp, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _count_udp(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.udp.recvfrom(65535)
                self.datagrams += 1

    def _count_tcp(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = self.tcp.accept()
                self.connections += 1
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self.udp.close()
        self.tcp.close()


def main(home: Path, result: Path) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # A network interface besides lo, as a real machine has (WebRTC gathers no candidates on
    # loopback alone): one end of a veth pair whose other end is in this namespace too, so its
    # packets go nowhere; a documentation address; no IPv6, so the kernel itself stays quiet.
    for command in (
        ["ip", "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"],
        ["sysctl", "-qw", "net.ipv6.conf.probe0.disable_ipv6=1"],
        ["sysctl", "-qw", "net.ipv6.conf.probe1.disable_ipv6=1"],
        ["ip", "addr", "add", "192.0.2.1/24", "dev", "probe0"],
        ["ip", "link", "set", "probe0", "up"],
        ["ip", "link", "set", "probe1", "up"],
    ):
        subprocess.run(command, check=True)
    counter = LoopbackCounter()
    listeners = ForbiddenListeners()
    site = ProbeSite()
    page = FixtureServer(site, keep_log=True).start()
    url = (
        f"{page.origin}/leak.html?forbidden={FORBIDDEN}:{listeners.tcp_port}&stun={FORBIDDEN}:3478"
    )
    env = dict(
        os.environ,
        ATTEST_HOME=str(home),
        ATTEST_ALLOW_NETWORKS="127.0.0.1/32",
        ATTEST_DOWNLOAD_TIMEOUT="10",
    )
    env.pop("ATTEST_STORE", None)
    # The page is complete once it shows its log (``#done``), after every call was made.
    registry = home / "sources.yaml"
    registry.write_text(
        "sources:\n"
        "  - id: probe\n"
        "    kind: profile\n"
        f'    seeds: ["{url}"]\n'
        '    profile: {platform: generic, permalink_pattern: "/leak[.]html$", '
        'content_ready: "#done"}\n'
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cli", "crawl", "--sources", str(registry), "--json"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        time.sleep(0.5)  # anything still on its way
    finally:
        page.stop()
        listeners.stop()
        counter.stop()
    result.write_text(
        json.dumps(
            {
                "url": url,
                "origin": page.origin,
                "forbidden": f"{FORBIDDEN}:{listeners.tcp_port}",
                "returncode": proc.returncode,
                "stdout": proc.stdout,
                "stderr": proc.stderr[-4000:],
                "packets_seen": counter.seen,
                "leaks": counter.leaks,
                "udp_datagrams": listeners.datagrams,
                "tcp_connections": listeners.connections,
                "page_requests": [r.target for r in page.requests],
                "websockets": [
                    {
                        "received": base64.b64encode(received).decode(),
                        "sent": base64.b64encode(sent).decode(),
                    }
                    for received, sent in zip(
                        site.websocket.received, site.websocket.sent, strict=True
                    )
                ],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
