"""Crawl throughput: attest vs plain Scrapy (no recording) vs GNU wget, same pages, one run.

    .venv/bin/python bench/crawl_throughput.py --articles 2000 --profile news --repeat 3

Serves the fixture news site from its own process (``python -m demoweb``), then, for each
repetition, crawls it recursively with page requisites:

- ``attest``: ``attest crawl ORIGIN/`` (crawler + recorder processes, WARC/1.1, verify, store)
- ``scrapy``: attest's own spider and parse path with the recorder, the ledger and the metadata
  records switched off: plain Scrapy, same pages, nothing recorded
- ``wget``: ``wget -r -l inf -p --warc-file`` (gzip WARC), robots.txt obeyed as the others

and reports per tool the median over repetitions of: article pages/s (articles captured / wall
time of the whole command), CPU seconds per article page (user+system of the tool's whole
process tree; the fixture server is a separate process and not counted), peak RSS of the process
tree (sum), RSS at 25/50/75/100% of the run, and WARC bytes. Profiles: ``light`` is the test
fixture (small pages, one tiny image each); ``news`` gives each article 3 photos of 40 KB and
40 KB of inline markup, closer to real news pages.
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
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
PROFILES = {"light": [], "news": ["--photos", "3", "--markup-kb", "40"]}

PLAIN_SCRAPY = r"""
import json, sys
from crawlers.registry import adhoc_source
from crawlers.orchestration.run import run_scrapy
import settings
base = dict(settings.SCRAPY_SETTINGS)
base["DOWNLOADER_MIDDLEWARES"] = dict(base["DOWNLOADER_MIDDLEWARES"], **{"crawlers.middlewares.RecorderMiddleware": None})
base["ITEM_PIPELINES"] = {}
base["EXTENSIONS"] = {"scrapy.extensions.telnet.TelnetConsole": None}
base["ATTEST_RETRIES"] = 2
source = adhoc_source([sys.argv[1]], max_pages=100000, max_depth=1000)
stats = run_scrapy([source], base)["adhoc"]
print(json.dumps({"responses": stats.get("response_received_count", 0)}))
"""


@dataclass
class Sample:
    tool: str
    wall_s: float
    cpu_s: float
    articles: int
    fetches: int
    peak_rss_mb: float
    rss_quartiles_mb: list[float] = field(default_factory=list)
    warc_bytes: int = 0

    @property
    def pages_per_s(self) -> float:
        return self.articles / self.wall_s

    @property
    def cpu_ms_per_page(self) -> float:
        return 1000 * self.cpu_s / max(1, self.articles)


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def measure(tool: str, cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[Sample, str]:
    """Run ``cmd`` and sample its process tree: CPU (incl. reaped children) and RSS."""
    before = os.times()
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    ps = psutil.Process(proc.pid)
    series: list[tuple[float, float]] = []
    while proc.poll() is None:
        rss = 0
        for p in _tree(ps):
            try:
                rss += p.memory_info().rss
            except psutil.Error:
                continue
        series.append((time.monotonic() - start, rss / 1e6))
        time.sleep(0.1)
    out = proc.stdout.read() if proc.stdout else ""
    wall = time.monotonic() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    if proc.returncode not in (0, 8):  # wget exits 8 when some URL answered 4xx/5xx
        raise SystemExit(f"{tool} failed with exit code {proc.returncode}")
    peak = max((r for _, r in series), default=0.0)
    quartiles = []
    for q in (0.25, 0.5, 0.75, 1.0):
        at = [r for t, r in series if t <= q * wall]
        quartiles.append(round(at[-1], 1) if at else 0.0)
    return Sample(tool, wall, cpu, 0, 0, round(peak, 1), quartiles), out


def count_warc(paths: list[Path]) -> tuple[int, int, int]:
    """Article responses, all responses, bytes of the given WARC files."""
    from warcio.archiveiterator import ArchiveIterator

    articles = responses = size = 0
    for path in paths:
        size += path.stat().st_size
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh, no_record_parse=True):
                if rec.rec_type == "response":
                    responses += 1
                    uri = rec.rec_headers.get_header("WARC-Target-URI") or ""
                    if "/article/" in uri:
                        articles += 1
    return articles, responses, size


def run_attest(origin: str, work: Path, code: Path | None = None) -> Sample:
    """``attest crawl`` with this checkout's code, or with ``code`` (another checkout, e.g. a
    git worktree of an older commit, run with this venv: ``--compare``)."""
    home = work / "attest"
    env = dict(os.environ, ATTEST_HOME=str(home), ATTEST_ALLOW_NETWORKS="127.0.0.0/8")
    env.pop("ATTEST_STORE", None)
    launcher = [str(ROOT / ".venv/bin/attest")]
    if code is not None:
        launcher = [sys.executable, "-m", "cli"]
        env["PYTHONPATH"] = str(code)
    cmd = [
        *launcher,
        "crawl",
        origin + "/",
        "--max-pages",
        "100000",
        "--depth",
        "1000",
        "--json",
    ]
    sample, out = measure("attest", cmd, env, code or ROOT)
    summary = json.loads(out)
    warcs = sorted((home / "store").rglob("*.warc.gz"))
    sample.articles, sample.fetches, sample.warc_bytes = count_warc(warcs)
    assert summary["pages"] > 0
    return sample


def run_scrapy(origin: str, work: Path) -> Sample:
    env = dict(os.environ)
    sample, out = measure("scrapy", [sys.executable, "-c", PLAIN_SCRAPY, origin + "/"], env, ROOT)
    sample.fetches = json.loads(out.strip().splitlines()[-1])["responses"]
    return sample


def run_wget(origin: str, work: Path) -> Sample:
    target = work / "wget"
    target.mkdir()
    cmd = [
        "wget",
        "-q",
        "-r",
        "-l",
        "inf",
        "-p",
        "--warc-file",
        str(target / "out"),
        "--no-warc-keep-log",
        "-P",
        str(target / "files"),
        origin + "/",
    ]
    sample, _ = measure("wget", cmd, dict(os.environ), target)
    sample.articles, sample.fetches, sample.warc_bytes = count_warc([target / "out.warc.gz"])
    return sample


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="news")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tools", default="attest,scrapy,wget")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="CHECKOUT",
        help="also run attest from another checkout (tool 'attest-compare'), interleaved",
    )
    args = parser.parse_args()
    if shutil.which("wget") is None:
        raise SystemExit("wget is not installed (apt-get install wget)")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demoweb",
            "--articles",
            str(args.articles),
            *PROFILES[args.profile],
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        origin = json.loads(server.stdout.readline())["news"]
        # Warm the server's page cache, plain and gzip variants, so every tool and every
        # repetition meets the same server (it generates each page on first request).
        for compression in ("none", "auto"):
            warm = [
                "wget",
                "-q",
                "-r",
                "-l",
                "inf",
                "-p",
                "--delete-after",
                f"--compression={compression}",
            ]
            subprocess.run([*warm, "-P", "/tmp/attest-warm", origin + "/"], check=False)
        tools = {"attest": run_attest, "scrapy": run_scrapy, "wget": run_wget}
        chosen = [t for t in args.tools.split(",") if t]
        if args.compare is not None:
            checkout = args.compare.resolve()
            tools["attest-compare"] = lambda origin, work: run_attest(origin, work, checkout)
            chosen.insert(chosen.index("attest") if "attest" in chosen else 0, "attest-compare")
        samples: dict[str, list[Sample]] = {t: [] for t in chosen}
        for rep in range(args.repeat):
            for tool in chosen:  # interleaved, so drift on a noisy machine hits every tool alike
                with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-") as tmp:
                    sample = tools[tool](origin, Path(tmp))
                if tool == "scrapy":
                    sample.articles = args.articles
                samples[tool].append(sample)
                print(
                    f"rep {rep + 1} {tool:7s} wall {sample.wall_s:6.2f} s  articles {sample.articles}  "
                    f"fetches {sample.fetches}  cpu {sample.cpu_s:6.2f} s  peak rss {sample.peak_rss_mb} MB",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait()
    med = {
        t: {
            "pages_per_s": statistics.median(s.pages_per_s for s in ss),
            "cpu_ms_per_page": statistics.median(s.cpu_ms_per_page for s in ss),
            "peak_rss_mb": statistics.median(s.peak_rss_mb for s in ss),
            "wall_s": statistics.median(s.wall_s for s in ss),
            "warc_mb": statistics.median(s.warc_bytes for s in ss) / 1e6,
        }
        for t, ss in samples.items()
    }
    print(
        f"\nprofile {args.profile}, {args.articles} articles, median of {args.repeat} (interleaved)"
    )
    print(
        f"{'tool':8s} {'pages/s':>8s} {'CPU ms/page':>12s} {'peak RSS MB':>12s} {'wall s':>7s} {'WARC MB':>8s}"
    )
    for t, m in med.items():
        print(
            f"{t:8s} {m['pages_per_s']:8.1f} {m['cpu_ms_per_page']:12.2f} {m['peak_rss_mb']:12.1f} "
            f"{m['wall_s']:7.2f} {m['warc_mb']:8.1f}"
        )
    if "attest" in med and "wget" in med:
        print(
            f"attest/wget pages/s: {med['attest']['pages_per_s'] / med['wget']['pages_per_s']:.2f}x (floor 0.4x)"
        )
    if "attest" in med and "scrapy" in med:
        print(
            f"attest/scrapy CPU per page: {med['attest']['cpu_ms_per_page'] / med['scrapy']['cpu_ms_per_page']:.2f}x (ceiling 1.5x)"
        )
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"crawl-{args.profile}-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "median": med,
                "samples": {t: [asdict(s) for s in ss] for t, ss in samples.items()},
            },
            indent=1,
        )
    )
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
