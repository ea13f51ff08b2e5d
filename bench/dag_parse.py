"""Parse time of attest's DAG files for a large registry, Airflow's own import excluded.

    .venv/bin/python bench/dag_parse.py --sources 200 --repeat 7

Writes a registry of ``--sources`` sources into a temporary directory (a mix like a real one:
news sites with sitemaps and feeds, press pages with listings, profiles of several posts, lists
of pages; every third with no schedule), then, ``--repeat`` times, in a fresh Python process
each (Airflow configures itself when imported, and a module is imported once per process):

1. imports ``airflow`` and ``airflow.sdk`` and builds a throwaway mapped DAG with params and a
   cron schedule (what Airflow loads for any DAG file: not the DAG files' cost; untimed);
2. **DAG files**: executes ``dags/attest_sources.py`` and ``dags/capture_url.py`` as Airflow's
   parser does (a module each; timed): reading the registry, one DAG per source;
3. **DagBag**: parses the whole ``dags/`` folder again as the DAG processor does
   (``BundleDagBag``: ``.airflowignore``, each file's module, Airflow's per-DAG checks; timed),
   and checks it found one DAG per source plus ``capture_url`` and no import error.

Reports wall and CPU time, median, min and max of each over the repetitions (the issue's
budget: the DAG files under 2 s for 200 sources, judged on the median wall time) and writes them to ``bench/results/dag-parse-<time>.json``.
Airflow runs on a throwaway SQLite home; nothing is written to a database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "dags"
RESULTS = ROOT / "bench" / "results"
BUDGET_S = 2.0

CHILD = textwrap.dedent(
    """
    import importlib.util, json, sys, time
    from datetime import UTC, datetime
    from pathlib import Path

    dags = Path(sys.argv[1])
    import airflow  # noqa: F401  (Airflow's own import: not timed)
    from airflow.sdk import DAG, Param, TriggerRule, task

    with DAG("warm_up", schedule="0 0 * * *", start_date=datetime(2026, 1, 1, tzinfo=UTC),
             params={"p": Param(None)}):
        @task(trigger_rule=TriggerRule.ALL_DONE)
        def step(x: int) -> int:
            return x
        step.expand(x=[1])
    from airflow.dag_processing.dagbag import BundleDagBag

    sys.path.insert(0, str(dags))
    started, cpu = time.perf_counter(), time.process_time()
    found = 0
    for name in ("attest_sources", "capture_url"):
        spec = importlib.util.spec_from_file_location(f"bench_{name}", dags / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found += sum(1 for v in vars(module).values() if type(v).__name__ == "DAG")
    files_s, files_cpu_s = time.perf_counter() - started, time.process_time() - cpu

    started, cpu = time.perf_counter(), time.process_time()
    bag = BundleDagBag(dag_folder=dags, bundle_path=dags, bundle_name="dags-folder")
    bag_s, bag_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    print("RESULT " + json.dumps({"files_s": files_s, "files_cpu_s": files_cpu_s,
                                  "bag_s": bag_s, "bag_cpu_s": bag_cpu_s, "dags": len(bag.dags),
                                  "import_errors": {str(k): v for k, v in bag.import_errors.items()}}))
    """
)

KINDS = ("news", "press", "profile", "pages")


def source_yaml(n: int) -> str:
    """One registry entry; its URLs are ${VARIABLES}, as real registries often have."""
    kind = KINDS[n % len(KINDS)]
    origin = f"${{BENCH_ORIGIN}}/site-{n}"
    schedule = "" if n % 3 == 0 else f'\n    schedule: "{n % 60} */{1 + n % 12} * * *"'
    if kind == "news":
        body = f"""
    kind: news
    seeds: ["{origin}/"]
    scope: {{max_depth: 2, max_pages: 500}}
    discovery: {{sitemaps: true, feeds: ["{origin}/rss.xml"]}}"""
    elif kind == "press":
        body = f"""
    kind: press
    seeds: ["{origin}/"]
    scope: {{max_depth: 2, max_pages: 300}}
    discovery:
      listings:
        - url: "{origin}/press/"
          next: "a[rel~=next]"
          items: "ul.releases a"
      attachments: [pdf]"""
    elif kind == "profile":
        posts = "\n".join(f'      - "{origin}/@account/post/{n}{i:03d}"' for i in range(8))
        body = f"""
    kind: profile
    seeds:
{posts}
    profile: {{platform: generic, max_posts: 50, max_feed_pages: 5}}"""
    else:
        pages = "\n".join(f'      - "{origin}/article/{i}.html"' for i in range(12))
        body = f"""
    kind: news
    seeds:
{pages}
    scope: {{max_depth: 0}}"""
    return f"""
  - id: bench-{n:04d}
    title: Bench source {n}{body}
    politeness: {{delay: 1, concurrency_per_host: {1 + n % 4}, robots: obey}}{schedule}
"""


def write_registry(directory: Path, sources: int) -> Path:
    """The registry in files of 50 sources, as a team would keep it."""
    registry = directory / "sources"
    registry.mkdir()
    for start in range(0, sources, 50):
        entries = "".join(source_yaml(n) for n in range(start, min(start + 50, sources)))
        (registry / f"bench-{start // 50:02d}.yaml").write_text("sources:" + entries)
    return registry


def run_once(registry: Path, home: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CTX_"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        ATTEST_SOURCES=str(registry),
        ATTEST_CASES=str(home / "cases"),
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(DAGS)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"parse run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="attest-dag-parse-") as tmp:
        work = Path(tmp)
        registry = write_registry(work, args.sources)
        (work / "cases").mkdir()
        runs = []
        for i in range(args.repeat):
            result = run_once(registry, work / f"home-{i}")
            if result["import_errors"]:
                raise SystemExit(f"import errors: {result['import_errors']}")
            if result["dags"] != args.sources + 1:
                raise SystemExit(f"{result['dags']} DAGs, not {args.sources} sources + capture_url")
            runs.append(result)
            print(
                f"run {i + 1}/{args.repeat}: DAG files {result['files_s']:.3f} s "
                f"(CPU {result['files_cpu_s']:.3f} s), DagBag of dags/ {result['bag_s']:.3f} s "
                f"(CPU {result['bag_cpu_s']:.3f} s), {result['dags']} DAGs",
                flush=True,
            )
    out = {
        "bench": "dag_parse",
        "sources": args.sources,
        "repeat": args.repeat,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "dag_files_s": summary([r["files_s"] for r in runs]),
        "dag_files_cpu_s": summary([r["files_cpu_s"] for r in runs]),
        "dagbag_s": summary([r["bag_s"] for r in runs]),
        "dagbag_cpu_s": summary([r["bag_cpu_s"] for r in runs]),
        "budget_s": BUDGET_S,
    }
    verdict = "within" if out["dag_files_s"]["median"] < BUDGET_S else "OVER"
    print(
        f"{args.sources} sources, median of {args.repeat}: DAG files "
        f"{out['dag_files_s']['median']:.3f} s, CPU {out['dag_files_cpu_s']['median']:.3f} s "
        f"({verdict} the {BUDGET_S:.0f} s budget); DagBag of dags/ "
        f"{out['dagbag_s']['median']:.3f} s, CPU {out['dagbag_cpu_s']['median']:.3f} s"
    )
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = RESULTS / f"dag-parse-{args.sources}-{stamp}.json"
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"results: {path.relative_to(ROOT)}")
    return 0 if verdict == "within" else 1


if __name__ == "__main__":
    sys.exit(main())
