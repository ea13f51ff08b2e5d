"""The whole fixture web: news, NGO and social sites and an HTTPS host, each on its own port."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fixtureweb.http import FixtureServer
from fixtureweb.news import NewsSite
from fixtureweb.ngo import NgoSite
from fixtureweb.platforms import BlueskySite, MastodonSite, TelegramSite
from fixtureweb.social import DEFAULT_PROFILES, Profile, SocialSite
from fixtureweb.tlsca import TestCA, make_test_ca


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
            articles=self.articles, slow=self.slow, photos=self.photos, markup_kb=self.markup_kb
        )
        self.ngo = NgoSite(releases=self.releases)
        bench = (Profile("bench", "Bench Example", posts=self.social_posts),)
        self.social = SocialSite(DEFAULT_PROFILES + (bench if self.social_posts else ()))
        self.telegram = TelegramSite()
        self.mastodon = MastodonSite()
        self.bluesky = BlueskySite()

    def start(self) -> FixtureWeb:
        self.servers["news"] = FixtureServer(self.news, keep_log=self.keep_log).start()
        self.servers["ngo"] = FixtureServer(self.ngo, keep_log=self.keep_log).start()
        for name in ("social", "telegram", "mastodon", "bluesky"):
            site = getattr(self, name)
            self.servers[name] = FixtureServer(site, keep_log=self.keep_log).start()
        if self.tls:
            workdir = self.workdir or Path(tempfile.mkdtemp(prefix="attest-fixture-ca-"))
            self.ca = make_test_ca(workdir, ["127.0.0.1", "secure.fixture.test", "localhost"])
            self.servers["secure"] = FixtureServer(
                NgoSite(releases=3), tls=self.ca.server_context(), keep_log=self.keep_log
            ).start()
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def url(self, site: str, path: str = "/") -> str:
        return self.servers[site].origin + path

    def __enter__(self) -> FixtureWeb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
