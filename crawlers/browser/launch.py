"""Which browser, how it is started, and the capture context that goes into ``warcinfo``.

The browser is Debian's Chromium (``apt-get install chromium``), driven by Playwright; all its
traffic goes through the run's recorder, so what the WARC holds is what the origins sent. Each
page gets a fresh browser context: no cookies, no storage, no login, the same viewport, time
zone and locale every time; they are written into the run's ``warcinfo``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from typing import Any

#: Where Debian puts the browser: the real binary first (the wrapper script sources
#: /etc/chromium.d and prints noise on some machines).
from archive.chromium import find_chromium as _find_chromium
from archive.errors import ConfigError

CHROMIUM_FLAGS = (
    "--no-sandbox",  # CI and the DAG workers run as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",  # QUIC would go around the HTTP proxy, unrecorded
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    "--hide-scrollbars",
    "--no-pings",
    "--disable-breakpad",
    "--disable-client-side-phishing-detection",
    "--disable-field-trial-config",
    # zstd bodies cannot be read back by the WARC tools; without it Chromium offers gzip, br.
    # The rest are background services that would otherwise call Google through the recorder.
    "--disable-features=ZstdContentEncoding,MediaRouter,OptimizationHints,Translate,"
    "OptimizationGuideModelDownloading,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions,"
    "SafeBrowsing,PrivacySandboxSettings4,IsolateOrigins,site-per-process",
)


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium that renders pages: ``ATTEST_CHROMIUM``, else Debian's."""
    return _find_chromium(explicit or os.environ.get("ATTEST_CHROMIUM"), purpose="browser capture")


@lru_cache(maxsize=4)
def chromium_version(executable: str) -> str:
    try:
        out = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"{executable} --version failed: {exc}") from exc
    return out.strip().splitlines()[-1] if out.strip() else "unknown"


@dataclass(frozen=True)
class BrowserSettings:
    """How pages are rendered; one value per run, recorded in its ``warcinfo``."""

    executable: str
    proxy_url: str
    user_agent: str
    viewport_width: int = 1280
    viewport_height: int = 900
    timezone: str = "UTC"
    locale: str = "en-US"
    headless: bool = True
    #: Pages at once (each in its own context).
    concurrency: int = 2
    #: Pages per browser process before it is restarted (memory stays flat on long runs).
    recycle_after: int = 200
    page_timeout_s: float = 45.0
    extra_flags: tuple[str, ...] = field(default=())

    def launch_options(self) -> dict[str, Any]:
        return {
            "executable_path": self.executable,
            "headless": self.headless,
            "args": [*CHROMIUM_FLAGS, *self.extra_flags],
            # Playwright adds <-loopback> so that even 127.0.0.1 goes through the proxy.
            "proxy": {"server": self.proxy_url},
            "handle_sigint": False,
            "handle_sigterm": False,
            "handle_sighup": False,
        }

    def context_options(self, source: str) -> dict[str, Any]:
        from crawlers.recorder.protocol import SOURCE_HEADER

        return {
            "viewport": {"width": self.viewport_width, "height": self.viewport_height},
            "user_agent": self.user_agent,
            "locale": self.locale,
            "timezone_id": self.timezone,
            # The recorder terminates TLS with its own CA and checks the origin's certificate
            # itself (a failure is a tls_error outcome); the browser sees the recorder's.
            "ignore_https_errors": True,
            "service_workers": "block",
            "accept_downloads": False,
            "extra_http_headers": {SOURCE_HEADER: source},
        }

    def capture_context(self) -> dict[str, str]:
        """The ``warcinfo`` fields that say how pages were rendered."""
        return {
            "browser": f"{chromium_version(self.executable)} ({self.executable})",
            "browser-automation": f"playwright {metadata.version('playwright')}",
            "browser-viewport": f"{self.viewport_width}x{self.viewport_height}",
            "browser-user-agent": self.user_agent,
            "browser-profile": "fresh context per page: no cookies, no storage, no login",
            "browser-timezone": self.timezone,
            "browser-locale": self.locale,
            "browser-headless": "yes" if self.headless else "no",
        }
