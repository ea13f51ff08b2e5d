"""Connections from the recorder to origins, kept alive and reused per origin.

A connection is taken for one exchange and given back only when the response ended on its own
framing (so the next response starts at the next byte). No liveness check is made when one is
taken: if the origin closed it meanwhile, the exchange sees the connection end before any byte
of a response and is retried once on a new connection (see ``RecordingHandler._exchange``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

OriginKey = tuple[str, int, bool]  # host, port, TLS


@dataclass
class Upstream:
    sock: socket.socket
    remote_ip: str
    #: The TLS connection's certificate chain and parameters (None for plain HTTP).
    tls_info: dict[str, Any] | None = None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class OriginPool:
    """Idle upstream connections, at most ``per_origin`` per origin. Thread-safe."""

    def __init__(self, per_origin: int = 12) -> None:
        self.per_origin = per_origin
        self._idle: dict[OriginKey, list[Upstream]] = defaultdict(list)
        self._lock = threading.Lock()

    def take(self, key: OriginKey) -> Upstream | None:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def give(self, key: OriginKey, upstream: Upstream) -> None:
        with self._lock:
            idle = self._idle[key]
            if len(idle) < self.per_origin:
                idle.append(upstream)
                return
        upstream.close()

    def close(self) -> None:
        with self._lock:
            idle = [u for conns in self._idle.values() for u in conns]
            self._idle.clear()
        for upstream in idle:
            upstream.close()
