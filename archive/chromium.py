"""Finding Debian's Chromium, for browser capture and for printing a bundle's report PDF."""

from __future__ import annotations

import os
import shutil

from archive.errors import ConfigError

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")


def find_chromium(explicit: str | None = None, *, purpose: str) -> str:
    """``explicit`` (the ``ATTEST_CHROMIUM`` setting: a path or a name on PATH), else Debian's
    Chromium; a :class:`ConfigError` saying what could not be done (``purpose``) if none."""
    if explicit:
        found = explicit if os.sep in explicit else shutil.which(explicit)
        if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
            raise ConfigError(
                f"Chromium {explicit!r} (ATTEST_CHROMIUM) is not an executable file: no {purpose}"
            )
        return found
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium")
    if found:
        return found
    raise ConfigError(
        f"no Chromium found for {purpose} (looked for {', '.join(CHROMIUM_CANDIDATES)} and "
        "chromium on PATH): install it with `apt-get install chromium`, or set ATTEST_CHROMIUM "
        "to its path"
    )
