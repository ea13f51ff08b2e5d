"""Planning a DAG run: the registry read without its variables, batches, pools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cli
from archive.errors import ConfigError, RegistryError
from crawlers.orchestration.plan import (
    Batch,
    batch_source,
    plan_batches,
    plan_pools,
    pool_name,
    pool_specs,
    shared_hosts,
    source_hosts,
    task_slots,
)
from crawlers.registry import (
    SourceSpec,
    load_source,
    outline_registry,
    parse_registry,
)

ROOT = Path(__file__).resolve().parents[2]


def source(**raw: object) -> SourceSpec:
    doc = {"sources": [{"id": "s", "kind": "news", "seeds": ["https://a.example/"], **raw}]}
    return parse_registry(doc, "sources/x.yaml", {})[0]


def test_the_outline_needs_no_variable_and_carries_no_url() -> None:
    outlines = {o.id: o for o in outline_registry([ROOT / "sources"])}
    national = outlines["nc-news-national"]  # its URLs are ${VAR}s nobody set
    assert national.schedule == "0 */6 * * *"
    assert national.concurrency_per_host == 2
    assert national.seed_count == 1
    assert not national.independent_seeds
    assert outlines["demo-social"].independent_seeds
    assert "unresolved" not in repr(list(outlines.values()))


def test_the_outline_refuses_what_the_registry_refuses(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - {id: x, kind: news, seeds: ['${U}'], schedule: '61 * * * *'}\n")
    with pytest.raises(RegistryError, match=r"bad\.yaml: source 'x', field 'schedule'"):
        outline_registry([bad])


def test_one_source_resolves_without_the_variables_of_the_others(tmp_path: Path) -> None:
    registry = tmp_path / "two.yaml"
    registry.write_text(
        "sources:\n"
        "  - {id: mine, kind: news, seeds: ['${MINE}/']}\n"
        "  - {id: theirs, kind: news, seeds: ['${THEIRS}/']}\n"
    )
    spec = load_source([registry], "mine", {"MINE": "http://127.0.0.1:9"})
    assert spec.seeds == ("http://127.0.0.1:9/",)
    with pytest.raises(RegistryError, match=r"'theirs', field 'seeds\[0\]'.*THEIRS is not set"):
        load_source([registry], "theirs", {"MINE": "x"})
    with pytest.raises(RegistryError, match=r"'gone'.*no such source"):
        load_source([registry], "gone", {})


def test_a_crawl_is_one_batch_whatever_its_seeds() -> None:
    crawl = source(seeds=[f"https://a.example/{n}" for n in range(5)])
    (batch,) = plan_batches(crawl, 2)
    assert batch.seeds == crawl.seeds
    assert task_slots(crawl) == 4
    assert batch_source(crawl, batch) == crawl


def test_lists_of_pages_and_profiles_are_split_and_crawl_one_request_per_host() -> None:
    pages = source(seeds=[f"https://a.example/{n}" for n in range(5)], scope={"max_depth": 0},
                   politeness={"concurrency_per_host": 3})  # fmt: skip
    batches = plan_batches(pages, 2)
    assert [b.seeds for b in batches] == [
        ("https://a.example/0", "https://a.example/1"),
        ("https://a.example/2", "https://a.example/3"),
        ("https://a.example/4",),
    ]
    assert [b.label for b in batches] == [
        "1/3 https://a.example/0 (+1)", "2/3 https://a.example/2 (+1)", "3/3 https://a.example/4"
    ]  # fmt: skip
    crawled = batch_source(pages, batches[1])
    assert crawled.seeds == batches[1].seeds
    assert crawled.concurrency_per_host == 1
    assert Batch.from_dict(json.loads(json.dumps(batches[1].as_dict()))) == batches[1]
    profile = source(kind="profile", seeds=[f"https://s.example/@{n}" for n in range(3)])
    assert len(plan_batches(profile, 1)) == 3
    # Discovery shares a frontier: a depth-0 source with a feed stays whole.
    fed = source(scope={"max_depth": 0}, discovery={"feeds": ["https://a.example/rss"]})
    assert len(plan_batches(fed, 1)) == 1


def test_a_batch_planned_before_the_registry_changed_is_refused() -> None:
    pages = source(seeds=["https://a.example/1"], scope={"max_depth": 0})
    with pytest.raises(ConfigError, match=r"no seed 'https://a\.example/gone'"):
        batch_source(pages, Batch("s", 0, 1, ("https://a.example/gone",)))
    with pytest.raises(ConfigError, match="at least 1"):
        plan_batches(pages, 0)


def test_pools_have_the_per_host_concurrency_as_slots(tmp_path: Path) -> None:
    pools = pool_specs(outline_registry([ROOT / "sources" / "demo.yaml"]))
    assert {name: p["slots"] for name, p in pools.items()} == {
        "attest-source-demo-news": 8, "attest-source-demo-ngo": 4, "attest-source-demo-social": 8
    }  # fmt: skip
    out = tmp_path / "pools.json"
    code = cli.main(["airflow-pools", "--sources", str(ROOT / "sources" / "demo.yaml"),
                     "--write", str(out)])  # fmt: skip
    assert code == 0
    assert json.loads(out.read_text()) == pools


SHARED = """
sources:
  - id: pages
    kind: news
    seeds: ["${SITE}/a.html", "${SITE}/b.html"]
    scope: {max_depth: 0}
    politeness: {concurrency_per_host: 2, pool: site}
  - id: crawl
    kind: news
    seeds: ["${SITE}/"]
    discovery: {feeds: ["${FEEDS}/rss.xml"]}
    politeness: {concurrency_per_host: 2, pool: site}
  - id: elsewhere
    kind: news
    seeds: ["${OTHER}/"]
"""


def test_sources_naming_one_pool_share_it_with_its_slots(tmp_path: Path) -> None:
    registry = tmp_path / "sources.yaml"
    registry.write_text(SHARED)
    outlines = outline_registry([registry])
    assert [pool_name(o) for o in outlines] == [
        "attest-host-site", "attest-host-site", "attest-source-elsewhere"
    ]  # fmt: skip
    pools = pool_specs(outlines)
    assert {name: p["slots"] for name, p in pools.items()} == {
        "attest-host-site": 2, "attest-source-elsewhere": 4
    }  # fmt: skip
    assert "source pages" in pools["attest-host-site"]["description"]
    assert "source crawl" in pools["attest-host-site"]["description"]


def test_sources_of_one_pool_must_declare_the_same_per_host_concurrency(tmp_path: Path) -> None:
    registry = tmp_path / "sources.yaml"
    crawl_politeness = "concurrency_per_host: 2, pool: site}\n  - id: elsewhere"
    registry.write_text(SHARED.replace(crawl_politeness, crawl_politeness.replace("2", "3", 1)))
    with pytest.raises(RegistryError) as info:
        outline_registry([registry])
    message = str(info.value)
    assert str(registry) in message
    assert "'crawl'" in message
    assert "politeness.concurrency_per_host" in message
    assert "source pages" in message
    assert "has 2" in message


def test_hosts_crawled_from_two_pools_are_found_once_urls_are_resolved(tmp_path: Path) -> None:
    registry = tmp_path / "sources.yaml"
    registry.write_text(SHARED)
    env = {"SITE": "https://news.example", "FEEDS": "https://feeds.example:8443",
           "OTHER": "https://other.example"}  # fmt: skip
    specs = [load_source([registry], sid, env) for sid in ("pages", "crawl", "elsewhere")]
    assert source_hosts(specs[1]) == {"news.example", "feeds.example:8443"}
    assert shared_hosts(specs) == {}  # one pool per host
    env["OTHER"] = "https://NEWS.example:443/other/"  # the same host, from another pool
    specs[2] = load_source([registry], "elsewhere", env)
    assert shared_hosts(specs) == {
        "news.example": {"attest-host-site": ["pages", "crawl"],
                         "attest-source-elsewhere": ["elsewhere"]}
    }  # fmt: skip


def test_airflow_pools_refuses_a_registry_whose_pools_share_a_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "sources.yaml"
    registry.write_text(SHARED)
    out = tmp_path / "pools.json"
    monkeypatch.setenv("SITE", "https://news.example")
    monkeypatch.setenv("OTHER", "https://news.example/other/")
    monkeypatch.delenv("FEEDS", raising=False)  # crawl's feed unset: its hosts are unknown
    code = cli.main(["airflow-pools", "--sources", str(registry), "--write", str(out)])
    assert code != 0
    err = capsys.readouterr().err
    assert "news.example: attest-host-site (pages); attest-source-elsewhere (elsewhere)" in err
    assert "politeness.pool" in err
    assert "no pool changed" in err
    assert not out.exists()
    monkeypatch.setenv("OTHER", "https://other.example/")
    assert cli.main(["airflow-pools", "--sources", str(registry), "--write", str(out)]) == 0
    err = capsys.readouterr().err
    assert "not checked for shared hosts: crawl" in err
    assert "FEEDS is not set" in err
    assert set(json.loads(out.read_text())) == {"attest-host-site", "attest-source-elsewhere"}


def test_pool_plans_list_what_they_could_not_check_and_what_is_stale(tmp_path: Path) -> None:
    registry = tmp_path / "sources.yaml"
    registry.write_text(SHARED)
    env = {"SITE": "https://news.example", "OTHER": "https://news.example/other/"}
    with pytest.raises(ConfigError, match="no pool changed") as info:
        plan_pools([registry], env)
    assert "news.example: attest-host-site (pages); attest-source-elsewhere (elsewhere)" in str(
        info.value
    )
    env["OTHER"] = "https://other.example/"
    plan = plan_pools([registry], env)
    assert set(plan.pools) == {"attest-host-site", "attest-source-elsewhere"}
    assert [note.split(" ")[0] for note in plan.unchecked] == ["crawl"]
    assert "FEEDS is not set" in plan.unchecked[0]
    existing = [None, "default_pool", "attest-host-site", "attest-source-gone", "attest-host-old"]
    assert plan.stale(existing) == ["attest-source-gone", "attest-host-old"]
