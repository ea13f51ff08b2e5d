"""Which browser, how it is started, and the capture context that goes into ``warcinfo``.

The browser is Debian's Chromium (``apt-get install chromium``), driven by Playwright; all its
traffic goes through the run's recorder, so what the WARC holds is what the origins sent. Each
page gets a fresh browser context: no cookies, no storage, no login, the same viewport, time
zone and locale every time; they are written into the run's ``warcinfo``.

Confinement: every byte the browser sends goes to the recorder, which checks it against the
egress guard. Chromium otherwise opens paths of its own around an HTTP proxy: WebRTC (STUN and
media over UDP), QUIC, DNS lookups for prefetch and preconnect, mDNS. The flags below close
each one (see :data:`CONFINEMENT_FLAGS`); ``tests/e2e/test_confinement.py`` proves it with
packets counted in a network namespace.

Attribution: each context reaches the recorder with proxy credentials of its own (the page's
source and the run's secret), so the browser's requests carry no header of attest's and are
sent exactly as the page made them (docs/adr/0003-browser-attribution.md).
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

#: Flags that keep every byte the browser sends on the way to the recorder.
CONFINEMENT_FLAGS = (
    # WebRTC may use no UDP that does not go through the proxy (and the HTTP proxy carries
    # none): no STUN, no media, no host candidates. --force-webrtc-ip-handling-policy alone
    # did not stop STUN on Debian's Chromium; this did.
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--force-webrtc-ip-handling-policy",
    "--disable-quic",  # QUIC (UDP) would go around the HTTP proxy, unrecorded
    "--dns-prefetch-disable",
    # Chromium resolves no name itself: through the proxy the recorder resolves (and checks)
    # each one. The proxy's own address is a literal; 127.0.0.1 stays reachable.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)

CHROMIUM_FLAGS = (
    "--no-sandbox",  # CI and the DAG workers run as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    *CONFINEMENT_FLAGS,
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
    "SafeBrowsing,PrivacySandboxSettings4,IsolateOrigins,site-per-process,"
    # mDNS (224.0.0.251) for WebRTC's local candidates, preconnects and prefetches.
    "WebRtcHideLocalIpsWithMdns,NetworkPrediction,Prerender2,SpeculationRulesPrefetchFuture",
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
    #: The run's secret (the password of each context's proxy credentials); None: the
    #: recorder takes requests without credentials (tools that run one of their own).
    proxy_secret: str | None = None
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
    #: Seconds a page gets to become complete (network idle, DOM stable, content ready).
    ready_timeout_s: float = 20.0
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
        # The context's own proxy credentials name its source: nothing is added to the page's
        # requests (a header would turn simple cross-origin requests into preflights).
        proxy: dict[str, str] = {"server": self.proxy_url}
        if self.proxy_secret is not None:
            proxy.update(username=source, password=self.proxy_secret)
        return {
            "proxy": proxy,
            "viewport": {"width": self.viewport_width, "height": self.viewport_height},
            "user_agent": self.user_agent,
            "locale": self.locale,
            "timezone_id": self.timezone,
            # The recorder terminates TLS with its own CA and checks the origin's certificate
            # itself (a failure is a tls_error outcome); the browser sees the recorder's.
            "ignore_https_errors": True,
            "service_workers": "block",
            "accept_downloads": False,
        }

    def page_context(self) -> dict[str, str]:
        """How each page is rendered, for its metadata record's ``capture``."""
        return {
            "browser": chromium_version(self.executable),
            "automation": f"playwright {metadata.version('playwright')}",
            "viewport": f"{self.viewport_width}x{self.viewport_height}",
            "user_agent": self.user_agent,
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
