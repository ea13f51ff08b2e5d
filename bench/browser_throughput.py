"""Browser capture throughput: attest vs a plain Playwright loop, same pages, same concurrency.

    .venv/bin/python bench/browser_throughput.py --pages 300 --concurrency 2 --repeat 3
    .venv/bin/python bench/browser_throughput.py --pages 1000 --concurrency 2 --repeat 1 --tools attest

Serves the demo web from its own process (``python -m demoweb --social-posts N``: a
profile ``@bench`` whose N post pages are rendered client-side from JSON), then, interleaved
repetition by repetition, renders every post page:

- ``attest``: ``attest crawl --sources`` with the post URLs as seeds of a ``profile`` source:
  Chromium through the recorder, post behaviors, full-page screenshot, DOM and text snapshots
  as WARC records, page metadata, verification and upload to the file store;
- ``plain``: a Playwright loop on the same Chromium, nothing recorded: a fresh context per page,
  ``goto`` with ``networkidle``, full-page screenshot, ``page.content()``.

Reports per tool the median over repetitions of pages/min (pages over the wall time of the
whole command), CPU seconds per page (user+system of the whole process tree, Chromium
included; the fixture server is not counted) and peak RSS of the tree, with RSS at 25/50/75/100%
of the run (flat memory shows as equal quartiles).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crawl_throughput import ROOT, Sample, measure

PLAIN_LOOP = r"""
import asyncio, json, sys
from playwright.async_api import async_playwright
from crawlers.browser.launch import CHROMIUM_FLAGS, find_chromium

async def main(urls, concurrency):
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=find_chromium(), headless=True,
                                          args=list(CHROMIUM_FLAGS))
        queue = list(urls)
        done = 0
        async def worker():
            nonlocal done
            while queue:
                url = queue.pop()
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await context.new_page()
                await page.goto(url, wait_until="networkidle")
                await page.screenshot(full_page=True)
                await page.content()
                await context.close()
                done += 1
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await browser.close()
    print(json.dumps({"pages": done}))

urls = json.load(open(sys.argv[1]))
asyncio.run(main(urls, int(sys.argv[2])))
"""


def run_attest(urls: list[str], concurrency: int, work: Path, code: Path | None = None) -> Sample:
    """``attest crawl`` of the posts, with this checkout's code or another's (``--compare``)."""
    home = work / "attest-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    seeds = "\n".join(f'      - "{u}"' for u in urls)
    registry = home / "bench.yaml"
    registry.write_text(
        f"""sources:
  - id: bench
    kind: profile
    seeds:
{seeds}
    profile: {{platform: generic, max_posts: {len(urls)}}}
    scope: {{max_pages: {len(urls) + 10}}}
    politeness: {{concurrency_per_host: {concurrency}}}
"""
    )
    env = dict(
        os.environ,
        ATTEST_HOME=str(home),
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        ATTEST_BROWSER_CONCURRENCY=str(concurrency),
    )
    env.pop("ATTEST_STORE", None)
    launcher = [str(ROOT / ".venv/bin/attest")]
    if code is not None:
        launcher = [sys.executable, "-m", "cli"]
        env["PYTHONPATH"] = str(code)
    cmd = [*launcher, "crawl", "--sources", str(registry), "--json"]
    sample, out = measure("attest", cmd, env, code or ROOT)
    summary = json.loads(out)
    sample.articles = int(summary["outcomes"].get("captured", 0))
    sample.fetches = int(summary["fetches"])
    sample.warc_bytes = int(summary["warc_bytes"])
    return sample


def run_plain(urls: list[str], concurrency: int, work: Path) -> Sample:
    listing = work / "urls.json"
    listing.write_text(json.dumps(urls))
    cmd = [sys.executable, "-c", PLAIN_LOOP, str(listing), str(concurrency)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    sample, out = measure("plain", cmd, env, ROOT)
    sample.articles = int(json.loads(out)["pages"])
    sample.fetches = sample.articles
    return sample


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tools", default="attest,plain")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="CHECKOUT",
        help="also run attest from another checkout (tool 'attest-compare'), interleaved",
    )
    args = parser.parse_args()
    tools = args.tools.split(",")
    if args.compare is not None:
        tools.insert(0, "attest-compare")
    server = subprocess.Popen(
        [sys.executable, "-m", "demoweb", "--social-posts", str(args.pages)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        origin = json.loads(server.stdout.readline())["social"]
        sys.path.insert(0, str(ROOT))
        from demoweb.social import DEFAULT_PROFILES, Profile, SocialSite

        site = SocialSite((*DEFAULT_PROFILES, Profile("bench", "Bench", posts=args.pages)))
        urls = [origin + p.permalink_path for p in site.posts("bench")]
        samples: dict[str, list[Sample]] = {t: [] for t in tools}
        with tempfile.TemporaryDirectory(prefix="attest-bench-") as tmp:
            work = Path(tmp)
            for i in range(args.repeat):
                for tool in tools:
                    if tool == "attest-compare":
                        sample = run_attest(urls, args.concurrency, work, args.compare.resolve())
                    else:
                        run = run_attest if tool == "attest" else run_plain
                        sample = run(urls, args.concurrency, work)
                    samples[tool].append(sample)
                    print(
                        f"[{i + 1}/{args.repeat}] {tool:6} {sample.articles} pages "
                        f"{60 * sample.pages_per_s:6.1f} pages/min  "
                        f"{sample.cpu_s / max(1, sample.articles):.3f} CPU s/page  "
                        f"peak {sample.peak_rss_mb:.0f} MB  quartiles {sample.rss_quartiles_mb}",
                        flush=True,
                    )
    finally:
        server.terminate()
        server.wait()
    print(f"\n{args.pages} post pages, concurrency {args.concurrency}, median of {args.repeat}")
    print("| tool   | pages/min | CPU s/page | peak RSS MB | RSS at 25/50/75/100% (MB) |")
    print("|--------|----------:|-----------:|------------:|---------------------------|")
    result = {}
    for tool, runs in samples.items():
        ppm = statistics.median(60 * s.pages_per_s for s in runs)
        cpu = statistics.median(s.cpu_s / max(1, s.articles) for s in runs)
        peak = statistics.median(s.peak_rss_mb for s in runs)
        quart = min(runs, key=lambda s: abs(s.peak_rss_mb - peak)).rss_quartiles_mb
        print(f"| {tool:6} | {ppm:9.1f} | {cpu:10.3f} | {peak:11.0f} | {quart} |")
        result[tool] = {
            "pages_per_min": ppm,
            "cpu_s_per_page": cpu,
            "peak_rss_mb": peak,
            "runs": [asdict(s) for s in runs],
        }
    if "attest" in result and "plain" in result:
        a, p = result["attest"], result["plain"]
        print(
            f"\nattest/plain: time per page {p['pages_per_min'] / a['pages_per_min']:.2f}x, "
            f"CPU per page {a['cpu_s_per_page'] / p['cpu_s_per_page']:.2f}x"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"browser-{stamp}.json"
    args_json = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    path.write_text(json.dumps({"args": args_json, "results": result}, indent=1))
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
