"""What the recorder process is told when it starts (written as JSON into the run's spool)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class RecorderConfig:
    spool: str
    run_id: str
    default_source: str
    ca_dir: str
    #: warcinfo fields for every file, and per source id.
    warcinfo_common: list[tuple[str, str]] = field(default_factory=list)
    warcinfo_sources: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    max_warc_size: int = 1_000_000_000
    gzip_level: int = 6
    allow_networks: str = ""
    #: A static resolver table (name -> addresses), replacing DNS; for tests and pinned hosts.
    hosts: dict[str, list[str]] | None = None
    ca_bundles: list[str] = field(default_factory=list)
    socket_timeout: float = 30.0
    max_resource_size: int | None = None
    listen: str = "127.0.0.1"
    port: int = 0
    threads: int = 64
    #: Keep the recorder's threads on one CPU (see ``crawlers.recorder.__main__``).
    one_cpu: bool = True
    #: Refuse proxied requests that name no source: they are not part of a capture (a
    #: browser's own background traffic), so they are neither sent upstream nor recorded.
    require_source: bool = False
    #: The run's secret, the password of its proxy credentials (see crawlers.recorder.proxy):
    #: with one, every request must carry them. None: the ``Attest-Source`` header names the
    #: source (tools and benches that run a recorder of their own).
    secret: str | None = None
    parent_pid: int | None = None
    #: A WebSocket transcript is written as a record once it holds this many bytes or is this
    #: many seconds old (and when the connection ends): a crash loses at most one part.
    websocket_part_bytes: int = 16 * 1024 * 1024
    websocket_part_seconds: float = 60.0

    def dump(self, path: Path) -> None:
        """Write the config, readable by its owner only: it holds the run's secret."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(asdict(self), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> RecorderConfig:
        raw = json.loads(path.read_text())
        raw["warcinfo_common"] = [tuple(x) for x in raw.get("warcinfo_common", [])]
        raw["warcinfo_sources"] = {
            k: [tuple(x) for x in v] for k, v in raw.get("warcinfo_sources", {}).items()
        }
        return cls(**raw)
