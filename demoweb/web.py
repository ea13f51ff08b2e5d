"""The whole fixture web: news, NGO and social sites and an HTTPS host, each on its own port.

Ports are free ones the system picks unless ``ports`` names some (``{"news": 8781}``): the
demo serves on fixed ports so that its case file can name the pages' URLs. A port that is
taken stops :meth:`FixtureWeb.start` with an :class:`OSError` naming the site and the port.
With ``case=True`` the sites also serve the demo case's pages (:mod:`demoweb.case`).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from demoweb.case import CASE_ARTICLES, CASE_PROFILES, CASE_RELEASES
from demoweb.http import FixtureServer, Handler
from demoweb.news import NewsSite
from demoweb.ngo import NgoSite
from demoweb.platforms import BlueskySite, MastodonSite, TelegramSite
from demoweb.social import DEFAULT_PROFILES, Profile, SocialSite
from demoweb.tlsca import TestCA, make_test_ca

#: The plain-HTTP sites, in the order they start.
SITES = ("news", "ngo", "social", "telegram", "mastodon", "bluesky")


@dataclass
class FixtureWeb:
    articles: int = 40
    releases: int = 25
    slow: bool = False
    tls: bool = False
    keep_log: bool = False
    photos: int = 0
    markup_kb: int = 0
    #: For benchmarks: a social profile ``bench`` with this many posts.
    social_posts: int = 0
    workdir: Path | None = None
    #: The demo case's pages (news articles, NGO releases, social accounts and a tag page).
    case: bool = False
    #: Fixed ports by site name (news, ngo, social, telegram, mastodon, bluesky, secure).
    ports: dict[str, int] = field(default_factory=dict)
    news: NewsSite = field(init=False)
    ngo: NgoSite = field(init=False)
    social: SocialSite = field(init=False)
    telegram: TelegramSite = field(init=False)
    mastodon: MastodonSite = field(init=False)
    bluesky: BlueskySite = field(init=False)
    servers: dict[str, FixtureServer] = field(default_factory=dict)
    ca: TestCA | None = None

    def __post_init__(self) -> None:
        self.news = NewsSite(
            articles=self.articles,
            slow=self.slow,
            photos=self.photos,
            markup_kb=self.markup_kb,
            case_articles=CASE_ARTICLES if self.case else (),
        )
        self.ngo = NgoSite(releases=self.releases, case_releases=CASE_RELEASES if self.case else ())
        bench = (Profile("bench", "Bench Example", posts=self.social_posts),)
        self.social = SocialSite(
            DEFAULT_PROFILES
            + (bench if self.social_posts else ())
            + (CASE_PROFILES if self.case else ())
        )
        self.telegram = TelegramSite()
        self.mastodon = MastodonSite()
        self.bluesky = BlueskySite()

    def start(self) -> FixtureWeb:
        unknown = set(self.ports) - {*SITES, "secure"}
        if unknown:
            raise ValueError(f"no fixture site named {', '.join(sorted(unknown))}")
        try:
            for name in SITES:
                self._serve(name, getattr(self, name))
            if self.tls:
                workdir = self.workdir or Path(tempfile.mkdtemp(prefix="attest-fixture-ca-"))
                self.ca = make_test_ca(workdir, ["127.0.0.1", "secure.fixture.test", "localhost"])
                self._serve("secure", NgoSite(releases=3), tls=self.ca.server_context())
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self, name: str, site: Handler, tls: ssl.SSLContext | None = None) -> None:
        port = self.ports.get(name, 0)
        server = FixtureServer(site, port=port, tls=tls, keep_log=self.keep_log)
        try:
            self.servers[name] = server.start()
        except OSError as exc:
            why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise OSError(
                exc.errno, f"the {name} site cannot listen on {server.host}:{port}: {why}"
            ) from exc

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def url(self, site: str, path: str = "/") -> str:
        return self.servers[site].origin + path

    def __enter__(self) -> FixtureWeb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
