"""The per-run spool: where WARC files are written before they reach the store.

Layout of ``<spool_root>/<run_id>/``::

    run.lock                 flock held by the live run (inherited by its recorder process)
    run.json                 who made this spool: run id, sources, start time, Airflow context
    <name>.warc.gz.open      a file being written (gzip per record)
    <name>.warc.gz           a closed file, waiting to be verified and uploaded

A spool whose lock can be taken belongs to a dead run; :func:`seal_open_file` then cuts each
``.open`` file after its last complete record and closes it, so ``attest recover`` (or the next
run) can verify and upload it. Nothing in a spool is deleted until the store has confirmed the
upload by checksum.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from threading import Lock
from typing import Any

from archive import failpoints
from archive.errors import IntegrityError, SpoolLocked
from archive.warc.read import verify_warc
from archive.warc.write import (
    DEFAULT_GZIP_LEVEL,
    Clock,
    RecordSpec,
    WarcFileWriter,
    WrittenRecord,
    utc_now,
)

log = logging.getLogger(__name__)

OPEN_SUFFIX = ".warc.gz.open"
CLOSED_SUFFIX = ".warc.gz"
DEFAULT_MAX_WARC_SIZE = 1_000_000_000
# The prefix is ``attest-<source id>``: no slash or leading dot, so a name is one key segment.
#: An attest WARC's file name: ``<prefix>-<20-digit time>-<serial>-<run id's first 8>.warc.gz``
WARC_NAME = re.compile(
    r"^(?P<prefix>[A-Za-z0-9][A-Za-z0-9._-]*)-(?P<ts>\d{20})-(?P<serial>\d{5})"
    r"-(?P<run>[0-9a-f]{8})\.warc\.gz$"
)
_SOURCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_source_id(value: str) -> bool:
    """Whether ``value`` can name a source in file names and store keys."""
    return bool(_SOURCE_RE.match(value)) and len(value) <= 63


class RunSpool:
    """One run's spool directory and its lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    @classmethod
    def create(cls, root: Path, run_id: str, info: dict[str, Any]) -> RunSpool:
        path = root / run_id
        path.mkdir(parents=True, exist_ok=False)
        spool = cls(path)
        spool.acquire()
        (path / "run.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        return spool

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def lock_fd(self) -> int:
        if self._lock_fd is None:
            raise SpoolLocked(f"{self.path}: lock not held")
        return self._lock_fd

    def acquire(self) -> None:
        """Take the run lock; raises :class:`SpoolLocked` if a live process holds it."""
        if self._lock_fd is not None:
            return  # already ours; a second flock on a new descriptor would fail against it
        fd = os.open(self.path / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise SpoolLocked(f"{self.path}: in use by a live run") from exc
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def info(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.path / "run.json").read_text())
        except (OSError, ValueError):
            return {}
        return data

    def open_files(self) -> list[Path]:
        return sorted(self.path.glob("*" + OPEN_SUFFIX))

    def closed_files(self) -> list[Path]:
        return sorted(p for p in self.path.glob("*" + CLOSED_SUFFIX) if p.is_file())

    def is_empty(self) -> bool:
        return not self.open_files() and not self.closed_files()

    def remove_if_done(self) -> bool:
        """Delete the spool directory once every WARC in it has been uploaded."""
        if not self.is_empty():
            return False
        for name in ("run.json", "run.lock", "ledger.jsonl", "recorder.json", "recorder.log"):
            (self.path / name).unlink(missing_ok=True)
        for leftover in self.path.iterdir():
            log.warning("spool %s keeps unexpected file %s", self.path, leftover.name)
            return False
        self.release()
        self.path.rmdir()
        return True


def dead_spools(root: Path) -> Iterator[RunSpool]:
    """Spools under ``root`` whose run is no longer alive, each returned locked."""
    if not root.is_dir():
        return
    for path in sorted(p for p in root.iterdir() if p.is_dir()):
        spool = RunSpool(path)
        try:
            spool.acquire()
        except SpoolLocked:
            continue
        yield spool


def warc_filename(prefix: str, moment: datetime, serial: int, run_id: str) -> str:
    stamp = moment.strftime("%Y%m%d%H%M%S%f")
    return f"{prefix}-{stamp}-{serial:05d}-{run_id.replace('-', '')[:8]}{CLOSED_SUFFIX}"


def store_key(filename: str, source_id: str) -> str:
    """``warcs/<source>/<yyyy>/<mm>/<dd>/<filename>``, the date taken from the filename."""
    match = WARC_NAME.match(filename)
    if not match:
        raise IntegrityError(f"{filename}: not an attest WARC file name")
    if not _SOURCE_RE.match(source_id):
        raise IntegrityError(f"{source_id!r}: not a source id usable in a store key")
    ts = match["ts"]
    return f"warcs/{source_id}/{ts[0:4]}/{ts[4:6]}/{ts[6:8]}/{filename}"


def source_of(filename: str) -> str:
    """The source id encoded in an attest WARC file name (``attest-<source>-...``)."""
    match = WARC_NAME.match(filename)
    if not match or not match["prefix"].startswith("attest-"):
        raise IntegrityError(f"{filename}: not an attest WARC file name")
    return match["prefix"][len("attest-") :]


class RotatingWarcWriter:
    """Writes one source's records into a run's spool, rotating files by size.

    Each new file starts with a ``warcinfo`` record. Thread-safe: the recorder's handler
    threads call :meth:`write` concurrently.
    """

    def __init__(
        self,
        spool_dir: Path,
        source_id: str,
        run_id: str,
        warcinfo: Callable[[str], list[tuple[str, str]]],
        *,
        max_size: int = DEFAULT_MAX_WARC_SIZE,
        clock: Clock = utc_now,
        gzip_level: int = DEFAULT_GZIP_LEVEL,
        on_closed: Callable[[Path], None] | None = None,
    ) -> None:
        self.spool_dir = spool_dir
        self.source_id = source_id
        self.run_id = run_id
        self._warcinfo = warcinfo
        self.max_size = max_size
        self._clock = clock
        self._gzip_level = gzip_level
        self._on_closed = on_closed
        self._writer: WarcFileWriter | None = None
        self._serial = 0
        self._lock = Lock()
        self.records_written = 0
        self.bytes_written = 0

    def _open(self) -> WarcFileWriter:
        name = warc_filename(f"attest-{self.source_id}", self._clock(), self._serial, self.run_id)
        self._serial += 1
        writer = WarcFileWriter(
            self.spool_dir / (name + ".open"), name, clock=self._clock, gzip_level=self._gzip_level
        )
        try:
            written = writer.write_warcinfo(self._warcinfo(name))
        except BaseException:
            # A file without its warcinfo is no WARC of ours: leave no empty .open file behind.
            writer.close()
            writer.path.unlink(missing_ok=True)
            raise
        self.records_written += 1
        self.bytes_written += written.length
        return writer

    def write(self, spec: RecordSpec) -> WrittenRecord:
        with self._lock:
            written = self._current().write(spec)
            self.records_written += 1
            self.bytes_written += written.length
            return written

    def write_many(self, specs: list[RecordSpec]) -> list[WrittenRecord]:
        """Write records that belong together (request + response) into the same file."""
        with self._lock:
            # All or nothing: a request must never be kept without its response.
            out = self._current().write_group(specs)
            self.records_written += len(out)
            self.bytes_written += sum(written.length for written in out)
            return out

    def _current(self) -> WarcFileWriter:
        """The file to write to (the lock held): a new one once the last has reached
        ``max_size``."""
        if self._writer is not None and self._writer.size >= self.max_size:
            self._close_current()
        if self._writer is None:
            self._writer = self._open()
        return self._writer

    def _close_current(self) -> None:
        writer = self._writer
        if writer is None:
            return
        self._writer = None
        writer.close()
        failpoints.failpoint("spool.rotate-before-rename")
        final = writer.path.with_name(writer.filename)
        os.rename(writer.path, final)
        failpoints.failpoint("spool.rotate-after-rename")
        if self._on_closed is not None:
            self._on_closed(final)

    def close(self) -> None:
        with self._lock:
            self._close_current()


@dataclass
class SealResult:
    path: Path | None
    records: int
    cut_bytes: int


def seal_open_file(path: Path) -> SealResult:
    """Close an ``.open`` file left by a dead run: keep every complete record, cut the rest.

    A record counts as complete when its gzip member is whole and its block is as long as its
    ``Content-Length`` says. A digest mismatch is damage, not an interruption, and raises.
    """
    verdict = verify_warc(path, keep_records=False)
    size = path.stat().st_size
    keep = verdict.good_until
    # An interrupted write leaves exactly one kind of problem: the file ends inside the last
    # record. Anything else (a bad digest, garbage mid-file) is damage and is left for a human.
    damage = [p for p in verdict.problems if p.check != "truncated"]
    if (
        size > 0
        and damage
        and not (damage[0].check == "format" and damage[0].offset == 0 and not verdict.record_count)
    ):
        raise IntegrityError(f"{path}: refusing to seal a damaged file: {damage[0]}")
    if keep == 0:
        path.unlink()
        return SealResult(None, 0, size)
    if keep < size:
        os.truncate(path, keep)
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
    final = path.with_name(path.name[: -len(".open")])
    os.rename(path, final)
    return SealResult(final, verdict.record_count, size - keep)


__all__ = [
    "CLOSED_SUFFIX",
    "DEFAULT_GZIP_LEVEL",
    "DEFAULT_MAX_WARC_SIZE",
    "OPEN_SUFFIX",
    "RotatingWarcWriter",
    "RunSpool",
    "SealResult",
    "dead_spools",
    "seal_open_file",
    "source_of",
    "store_key",
    "warc_filename",
]
