"""Crash points for the durability tests: where a kill -9 hurts most, on demand.

``ATTEST_FAILPOINT=name[@N][,name[@N]...]`` makes the process group die (SIGKILL, like a
machine losing power, minus the page cache) the N-th time (default: first) execution passes
``failpoint(name)``. Unset, a failpoint costs one boolean test. The names:

``warc.mid-record``           half of a record's bytes written
``warc.after-record``         a record complete, the next not begun
``spool.rotate-before-rename`` a full file fsynced, still named ``.open``
``spool.rotate-after-rename``  the old file closed, the next not yet opened
``ship.before-put``           a verified WARC about to be uploaded
``ship.after-put``            the store has confirmed it; the spool copy is still there
``store.file-before-link``    the file store's temporary copy written, not yet linked
"""

from __future__ import annotations

import os
import signal
import threading

_counts: dict[str, int] = {}
_targets: dict[str, int] = {}
for _item in (os.environ.get("ATTEST_FAILPOINT") or "").split(","):
    _item = _item.strip()
    if _item:
        _name, _, _n = _item.partition("@")
        _targets[_name] = int(_n) if _n else 1

ACTIVE = bool(_targets)
_lock = threading.Lock()


def failpoint(name: str) -> None:
    if not ACTIVE or name not in _targets:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        hit = _counts[name] == _targets[name]
    if hit:
        try:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
