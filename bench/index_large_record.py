"""Memory of indexing a WARC that holds one very large record (issue 14).

Writes, with attest's own writer, a WARC whose one page links to a ``--mb`` MB response record
(a video-like binary body, stored precompressed, and an HTML body of the same size, one WARC
each), then runs ``attest index`` on each in a fresh process and reports its peak RSS (the
largest resident set of the indexing process and any worker it waited for) and its wall and
CPU time. With ``--compare REF``, the same WARCs are indexed by the code of git revision REF
(checked out in a temporary worktree, same venv), interleaved, for an A/B in one run.

    .venv/bin/python bench/index_large_record.py --mb 300 --repeat 3 --compare 46738bb
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.warc.write import Block, RecordSpec, WarcFileWriter, sha256_label  # noqa: E402

CHUNK = 4 * 1024 * 1024


def body_file(path: Path, size: int, kind: str) -> tuple[str, str]:
    """Write the HTTP response (head + body) to ``path``; its block and payload digests."""
    block, payload = hashlib.sha256(), hashlib.sha256()
    ctype = "video/mp4" if kind == "video" else "text/html; charset=utf-8"
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {size}\r\n\r\n").encode()
    seed = hashlib.sha256(kind.encode()).digest()
    with open(path, "wb") as out:
        out.write(head)
        block.update(head)
        written = 0
        counter = 0
        if kind == "html":
            out.write(b"<html><body>")
            block.update(b"<html><body>")
            payload.update(b"<html><body>")
            written = 12
        while written < size:
            if kind == "video":  # incompressible: a keyed stream of SHA-256 blocks
                piece = b"".join(
                    hashlib.sha256(seed + (counter + i).to_bytes(8, "big")).digest()
                    for i in range(CHUNK // 32)
                )
                counter += CHUNK // 32
            else:
                piece = (b"<p>Paragraph %d of a very long page, with words.</p>\n" % counter) * 4096
                counter += 1
            piece = piece[: size - written]
            out.write(piece)
            block.update(piece)
            payload.update(piece)
            written += len(piece)
    return sha256_label(block), sha256_label(payload)


def make_warc(directory: Path, mb: int, kind: str) -> Path:
    name = (
        f"attest-bench-20261207000000000000-00000-{'a' * 8 if kind == 'video' else 'b' * 8}.warc.gz"
    )
    target = directory / "store" / "warcs" / "bench" / "2026" / "12" / "07" / name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    message = directory / f"{kind}.http"
    block_digest, payload_digest = body_file(message, mb * 1024 * 1024, kind)
    writer = WarcFileWriter(target.with_suffix(".open"), name)
    writer.write_warcinfo([("software", "attest bench"), ("attest-run-id", "bench")])
    url = f"http://bench.example/{kind}"
    with open(message, "rb") as stream:
        writer.write(
            RecordSpec(
                record_type="response",
                block=Block(
                    length=message.stat().st_size,
                    stream=stream,
                    block_digest=block_digest,
                    payload_digest=payload_digest,
                ),
                target_uri=url,
                content_type="application/http; msgtype=response",
                precompressed=kind == "video",
                date=datetime(2026, 12, 7, tzinfo=UTC),
            )
        )
    writer.close()
    target.with_suffix(".open").rename(target)
    message.unlink()
    return target


def index_once(code: Path, warc_store: Path, work: Path) -> dict[str, float]:
    """``attest index`` of one store, by the code at ``code``, in a fresh process and data home."""
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = dict(os.environ, ATTEST_HOME=str(home), ATTEST_STORE=warc_store.as_uri())
    env.pop("ATTEST_INDEX", None)
    # The measuring process is this one's child: its peak RSS is the children's after it ends.
    script = (
        "import resource, subprocess, sys, time, json, os\n"
        "start = time.perf_counter()\n"
        "p = subprocess.run([sys.executable, '-m', 'cli', 'index', '--workers', '1', '--json'],"
        " capture_output=True, text=True)\n"
        "wall = time.perf_counter() - start\n"
        "use = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'rc': p.returncode, 'wall_s': wall, 'cpu_s': use.ru_utime + use.ru_stime,"
        " 'peak_rss_mb': use.ru_maxrss / 1024, 'out': p.stdout[-2000:], 'err': p.stderr[-2000:]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=code, env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"attest index failed ({code}): {result['err']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare", metavar="REF", help="also index with this git revision")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "attest-bench-large"
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    stores = {}
    for kind in ("video", "html"):
        directory = args.workdir / f"{kind}-{args.mb}"
        warc = make_warc(directory, args.mb, kind)
        stores[kind] = directory / "store"
        print(f"{kind}: {warc} ({warc.stat().st_size / 1e6:.0f} MB)", flush=True)
    codes = {"HEAD": ROOT}
    worktree = None
    if args.compare:
        worktree = Path(tempfile.mkdtemp(prefix="attest-bench-ref-"))
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree),
                        args.compare], check=True, capture_output=True)  # fmt: skip
        codes[args.compare] = worktree
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    try:
        for _ in range(args.repeat):
            for label, code in codes.items():
                for kind, store in stores.items():
                    one = index_once(code, store, args.workdir / "run")
                    results.setdefault(label, {}).setdefault(kind, []).append(one)
                    print(f"{label:>10} {kind:>5}: peak RSS {one['peak_rss_mb']:.0f} MB, "
                          f"wall {one['wall_s']:.1f} s, CPU {one['cpu_s']:.1f} s", flush=True)  # fmt: skip
    finally:
        if worktree is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(worktree)], check=False)  # fmt: skip
    print(f"\nmedians of {args.repeat} ({args.mb} MB record):")
    summary = {}
    for label, kinds in results.items():
        for kind, runs in kinds.items():
            med = {
                k: statistics.median(r[k] for r in runs) for k in ("peak_rss_mb", "wall_s", "cpu_s")
            }
            summary[f"{label} {kind}"] = med
            print(f"  {label:>10} {kind:>5}: peak RSS {med['peak_rss_mb']:.0f} MB, "
                  f"wall {med['wall_s']:.1f} s, CPU {med['cpu_s']:.1f} s")  # fmt: skip
    out = (
        ROOT
        / "bench"
        / "results"
        / f"index-large-record-{args.mb}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"mb": args.mb, "repeat": args.repeat, "summary": summary,
                               "runs": results}, indent=1))  # fmt: skip
    print(f"results: {out}")


if __name__ == "__main__":
    main()
