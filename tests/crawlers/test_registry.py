"""The source registry: every shipped file loads, and bad input names file, source and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from archive.errors import ConfigError, RegistryError
from crawlers.registry import adhoc_source, load_registry, parse_registry, select_sources
from crawlers.urls import invalid_url_reason

ROOT = Path(__file__).resolve().parents[2]
DEMO_ENV = {
    "DEMO_NEWS": "http://127.0.0.1:8001",
    "DEMO_NGO": "http://127.0.0.1:8002",
    "DEMO_SOCIAL": "http://127.0.0.1:8003",
}


def good_source(**overrides: object) -> dict[str, object]:
    source: dict[str, object] = {"id": "s1", "kind": "news", "seeds": ["https://example.org/"]}
    source.update(overrides)
    return source


def error_for(doc: object, env: dict[str, str] | None = None) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        parse_registry(doc, "sources/x.yaml", env or {})
    return info.value


def test_demo_registry_loads_with_its_variables() -> None:
    specs = load_registry([ROOT / "sources" / "demo.yaml"], DEMO_ENV)
    assert [s.id for s in specs] == ["demo-news", "demo-ngo", "demo-social"]
    news, ngo, social = specs
    assert news.seeds == ("http://127.0.0.1:8001/",)
    assert news.sitemaps is True
    assert news.feeds == ("http://127.0.0.1:8001/rss.xml",)
    assert news.obey_robots
    assert news.schedule == "0 */6 * * *"
    assert ngo.kind == "press"
    assert [listing.url for listing in ngo.listings] == [
        "http://127.0.0.1:8002/press/",
        "http://127.0.0.1:8002/fr/communiques/",
    ]
    assert ngo.attachments == ("pdf",)
    assert social.kind == "profile"
    assert social.browser
    assert social.seeds[0] == "http://127.0.0.1:8003/@az_foreign_ministry_demo/post/7520000001"
    assert all("/post/" in seed for seed in social.seeds)


def test_template_refuses_to_run_until_its_urls_are_filled_in() -> None:
    with pytest.raises(RegistryError) as info:
        load_registry([ROOT / "sources" / "new-caledonia.yaml"], {})
    message = str(info.value)
    assert "new-caledonia.yaml" in message
    assert "source 'nc-news-national'" in message
    assert "field 'seeds[0]'" in message
    assert "NC_NEWS_SECTION_URL" in message


def test_template_is_valid_once_filled_in() -> None:
    text = (ROOT / "sources" / "new-caledonia.yaml").read_text()
    names = sorted(set(__import__("re").findall(r"\$\{([A-Z0-9_]+)\}", text)))
    env = {name: f"https://example.org/{name.lower()}/" for name in names}
    specs = load_registry([ROOT / "sources" / "new-caledonia.yaml"], env)
    assert {s.kind for s in specs} == {"news", "press", "profile"}
    assert {s.platform for s in specs if s.kind == "profile"} == {"generic", "telegram"}
    assert all(s.browser for s in specs if s.kind == "profile")


@pytest.mark.parametrize(
    ("source", "field", "fragment"),
    [
        (good_source(kind="blog"), "kind", "'blog' is not one of"),
        (good_source(id="Bad Id"), "id", "does not match"),
        (good_source(seeds=[]), "seeds", "should be non-empty"),
        (good_source(seeds=["ftp://example.org/"]), "seeds[0]", "does not match"),
        (good_source(politeness={"delay": -1}), "politeness.delay", "less than the minimum"),
        (good_source(politeness={"robots": "maybe"}), "politeness.robots", "is not one of"),
        (good_source(scope={"max_pages": 0}), "scope.max_pages", "less than the minimum"),
        (good_source(scope={"max_depht": 2}), "scope.max_depht", "Additional properties"),
        (good_source(schedule="every day"), "schedule", "not a cron expression"),
        (good_source(schedule="61 * * * *"), "schedule", "outside 0-59"),
        (
            good_source(politeness={"robots": "ignore"}),
            "politeness.robots_override_reason",
            "needs a recorded reason",
        ),
        (
            good_source(kind="profile", profile={"platform": "myspace"}),
            "profile.platform",
            "is not one of",
        ),
        (
            good_source(kind="profile", profile={"permalink_pattern": "/post/(["}),
            "profile.permalink_pattern",
            "not a valid regex",
        ),
        (
            good_source(profile={"platform": "generic"}),
            "profile",
            "only sources of kind 'profile'",
        ),
        (good_source(kind="profile", profile={"max_posts": 0}), "profile.max_posts", "minimum"),
    ],
)
def test_errors_name_the_file_the_source_and_the_field(
    source: dict[str, object], field: str, fragment: str
) -> None:
    error = error_for({"sources": [good_source(id="ok-one"), source]})
    assert error.path == "sources/x.yaml"
    assert error.field == field
    assert fragment in str(error)
    # The entry is named by its id when the id is usable, else by its position.
    assert error.entry in (source.get("id"), "#2")
    assert str(error).startswith("sources/x.yaml: source ")


def test_profile_sources_default_to_the_browser_and_the_generic_platform() -> None:
    (spec,) = parse_registry({"sources": [good_source(kind="profile")]}, "x.yaml", {})
    assert spec.browser
    assert spec.platform == "generic"
    assert spec.max_posts == 200
    (spec,) = parse_registry(
        {"sources": [good_source(kind="profile", browser=False, profile={"platform": "telegram"})]},
        "x.yaml",
        {},
    )
    assert not spec.browser
    assert spec.platform == "telegram"


def test_a_seed_can_ask_for_the_browser_on_its_own() -> None:
    doc = {
        "sources": [
            good_source(
                seeds=[
                    "https://example.org/",
                    {"url": "https://example.org/app", "browser": True},
                    {"url": "https://example.org/plain", "browser": False},
                ]
            )
        ]
    }
    (spec,) = parse_registry(doc, "x.yaml", {})
    assert spec.seeds == (
        "https://example.org/",
        "https://example.org/app",
        "https://example.org/plain",
    )
    assert spec.browser_seeds == {"https://example.org/app"}
    assert not spec.browser
    error = error_for({"sources": [good_source(seeds=[{"url": "https://example.org/"}])]})
    assert error.field == "seeds[0].browser"
    assert "'browser' is a required property" in str(error)


def test_missing_required_field_is_named() -> None:
    error = error_for({"sources": [{"id": "s1", "kind": "news"}]})
    assert error.entry == "s1"
    assert error.field == "seeds"


def test_duplicate_ids_are_refused_within_and_across_files(tmp_path: Path) -> None:
    error = error_for({"sources": [good_source(), good_source()]})
    assert error.entry == "s1"
    assert "duplicate" in str(error)
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    for path in (a, b):
        path.write_text(yaml.safe_dump({"sources": [good_source()]}))
    with pytest.raises(RegistryError) as info:
        load_registry([tmp_path])
    assert "also in" in str(info.value)
    assert str(a) in str(info.value)


def test_unreadable_and_malformed_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [\n")
    with pytest.raises(RegistryError, match=r"bad\.yaml: not valid YAML"):
        load_registry([bad])
    with pytest.raises(RegistryError, match=r"missing\.yaml: cannot read"):
        load_registry([tmp_path / "missing.yaml"])
    not_a_map = tmp_path / "list.yaml"
    not_a_map.write_text("- 1\n- 2\n")
    with pytest.raises(RegistryError, match=r"list\.yaml: expected a mapping"):
        load_registry([not_a_map])


def test_robots_override_is_kept_with_its_reason() -> None:
    reason = "the site owner asked us to archive its press room"
    (spec,) = parse_registry(
        {
            "sources": [
                good_source(politeness={"robots": "ignore", "robots_override_reason": reason})
            ]
        },
        "x.yaml",
        {},
    )
    assert not spec.obey_robots
    assert spec.robots_override_reason == reason


def test_adhoc_sources_check_their_urls() -> None:
    spec = adhoc_source(["https://example.org/a"], max_pages=5, max_depth=1)
    assert spec.seeds == ("https://example.org/a",)
    assert spec.max_pages == 5
    # A URL that cannot be fetched beside valid ones is kept: the crawl gives it the outcome
    # invalid_url. When none can be fetched, the input is refused, each URL with its reason.
    mixed = adhoc_source(["https://example.org/", "example.org"], max_pages=5, max_depth=1)
    assert mixed.seeds == ("https://example.org/", "example.org")
    with pytest.raises(RegistryError, match=r"URL\[0\] 'example.org' is not an http\(s\) URL"):
        adhoc_source(["example.org"], max_pages=5, max_depth=1)
    with pytest.raises(RegistryError, match=r"URL\[1\] 'http://a:99999/' cannot be parsed"):
        adhoc_source(["ftp://a/", "http://a:99999/"], max_pages=5, max_depth=1)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.org/" + "a" * 2100, "longer than 2083 characters"),
        ("http://example.org:99999/", "cannot be parsed: Port out of range"),
        ("http://ex ample.org/", "contains a space"),
        ("http://[::1", "cannot be parsed: Invalid IPv6 URL"),
        ("http://exa\x00mple.org/", "contains a control character"),
        ("http:///path", "has no host"),
        ("mailto:someone@example.org", "is not an http(s) URL"),
        ("http://bad_host!.org/", "is not a valid name"),
    ],
)
def test_urls_that_cannot_be_fetched_say_why(url: str, reason: str) -> None:
    assert reason in (invalid_url_reason(url) or "")


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/",
        "https://[::1]:8443/x?q=1",
        "http://127.0.0.1:8080/",
        "https://bücher.example/",
    ],
)
def test_urls_that_can_be_fetched(url: str) -> None:
    assert invalid_url_reason(url) is None


def test_a_registry_seed_that_cannot_be_fetched_names_its_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(
        'sources:\n  - id: s\n    kind: news\n    seeds: ["http://a.example/", "http://b.example:99999/"]\n'
    )
    with pytest.raises(
        RegistryError, match=r"sources.yaml: source 's', field 'seeds\[1\]'.*Port out of range"
    ):
        load_registry([path])


def test_sources_are_selected_by_id_in_registry_order() -> None:
    specs = load_registry([ROOT / "sources" / "demo.yaml"], DEMO_ENV)
    picked = select_sources(specs, ["demo-social", "demo-news"], what="--only", where="demo.yaml")
    assert [s.id for s in picked] == ["demo-news", "demo-social"]
    with pytest.raises(ConfigError, match=r"^--only: no source 'two' in demo\.yaml$"):
        select_sources(specs, ["demo-news", "two", "three"], what="--only", where="demo.yaml")
