"""Scrapy's downloader, with per-host concurrency actually enforced.

On the asyncio reactor, Scrapy 2.19's ``Downloader._process_queue`` schedules each download as
a task and counts it against its slot (``slot.transferring``) only when the task starts. The
loop that fills the free slots runs before any of those tasks start, so it empties the whole
queue: a source with ``concurrency_per_host: 2`` was measured with 20 requests in flight to one
host. This subclass counts a request from the moment it is scheduled (the task's own
``transferring.add`` is then a no-op, and its ``finally`` frees the slot as before). Politeness
is part of capturing public sites; see ``tests/e2e/test_politeness.py``.
"""

from __future__ import annotations

from time import monotonic

from scrapy.core.downloader import Downloader, Slot
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import _schedule_coro


class PoliteDownloader(Downloader):
    def _process_queue(self, slot: Slot) -> None:
        # Scrapy 2.19's method, plus the one line marked below.
        if slot.latercall:
            return
        now = monotonic()
        delay = slot.download_delay()
        if delay:
            penalty = delay - now + slot.lastseen
            if penalty > 0:
                slot.latercall = call_later(penalty, self._latercall, slot)
                return
        while slot.queue and slot.free_transfer_slots() > 0:
            slot.lastseen = now
            request, queue_dfd = slot.queue.popleft()
            slot.transferring.add(request)  # counted now, not when the task starts
            _schedule_coro(self._wait_for_download(slot, request, queue_dfd))
            if delay:
                self._process_queue(slot)
                break
