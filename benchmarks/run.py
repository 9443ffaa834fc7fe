"""Every benchmark of the repository, one command: ``make bench``.

1. request overhead under wrk (``overhead.py``): bare FastAPI, the peer
   libraries and ours, interleaved round-robin in one run; ``ours_audit``
   writes its rows into a throwaway PostgreSQL from a writer process, as the
   service does, ``ours_audit_inline`` from a task in the server's loop;
2. instructions per request under callgrind (``instructions.py``): the
   deterministic version of 1 (on one and on 32 connections), for comparing
   commits on a noisy machine;
   in-process CPU per request (``asgi_overhead.py``);
3. ``/metrics`` scrape time at the reference cardinality, 1 and 2 workers (``scrape.py``); scrape cost
   as work grows, 300 / 2,500 / 25,000 series, one and four workers, and what scrapes do to
   concurrent requests (``scaling.py``, its last result in ``benchmarks/README.md``);
4. audit writer throughput into PostgreSQL vs one INSERT per row (``audit_writer.py``);
5. ``build_dashboards.py --check`` wall time.

Results go to ``benchmarks/results/latest.md``; the README quotes them.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
sys.path.insert(0, str(ROOT))

from tests.support.postgres import PostgresServer  # noqa: E402

OVERHEAD_VARIANTS = [
    "bare=variants/bare.py:app",
    "instrumentator=variants/instrumentator.py:app",
    "starlette_exporter=variants/starlette_exporter.py:app",
    "full_naive=variants/full_naive.py:app",
    f"ours=variants/ours.py:app@{ROOT}",
    f"ours_audit=variants/ours_audit.py:app@{ROOT}",
    f"ours_audit_inline=variants/ours_audit_inline.py:app@{ROOT}",
]


def run(title: str, argv: list[str], env: dict[str, str] | None = None) -> str:
    print(f"== {title}", flush=True)
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=HERE, capture_output=True, text=True, env={**os.environ, **(env or {})})
    out = proc.stdout.strip()
    if proc.returncode not in (0,):
        out += f"\n\n(exit {proc.returncode})\n{proc.stderr.strip()[-2000:]}"
    print(out, flush=True)
    return f"## {title}\n\n{out}\n\n_{time.monotonic() - start:.0f} s_\n"


def tables_only(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith("|") or not line.startswith("["))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=8)
    choices = ["overhead", "instructions", "asgi", "scrape", "scaling", "audit", "build"]
    parser.add_argument("--only", choices=choices, action="append")
    args = parser.parse_args()
    only = set(args.only or choices)
    (HERE / "results").mkdir(exist_ok=True)
    sections = [
        f"# Benchmark results\n\nMeasured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()} (`make bench`).\n"
    ]
    if "overhead" in only:
        argv = [PY, "overhead.py", *[a for v in OVERHEAD_VARIANTS for a in ("-V", v)], "--rounds", str(args.rounds),
                "--duration", str(args.duration), "--warmup", "2", "--scrapes", "20", "--json", "results/overhead.json"]
        database = PostgresServer()
        database.start()
        try:
            database.create_database("bench_audit")
            env = {"BENCH_DATABASE_URL": database.url("bench_audit")}
            sections.append(tables_only(run("Request overhead under wrk (-t1 -c32, 1 uvicorn worker)", argv, env)))
        finally:
            database.destroy()
    if "instructions" in only:
        if shutil.which("valgrind"):
            sections.append(run("Instructions per request (callgrind)", [PY, "instructions.py"]))
        else:
            sections.append("## Instructions per request (callgrind)\n\nskipped: valgrind is not installed\n")
    if "asgi" in only:
        sections.append(run("In-process CPU per request", [PY, "asgi_overhead.py", "--rounds", "7"]))
    if "scrape" in only:
        sections.append(run("/metrics scrape at the reference cardinality", [PY, "scrape.py"]))
    if "scaling" in only:
        sections.append(tables_only(run("Scrape cost as work grows (300 / 2,500 / 25,000 series)",
                                        [PY, "scaling.py", "--json", "results/scaling.json"])))
    if "audit" in only:
        sections.append(run("Audit writer into PostgreSQL", [PY, "audit_writer.py"]))
    if "build" in only:
        start = time.perf_counter()
        subprocess.run([PY, str(ROOT / "scripts/build_dashboards.py"), "--check"], check=True, capture_output=True)
        took = time.perf_counter() - start
        line = f"`build_dashboards.py --check` (every artifact, all static validation): {took:.2f} s wall"
        print(line)
        sections.append(f"## Generator\n\n{line}\n")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.md").write_text("\n".join(sections))
    print(f"wrote {results / 'latest.md'}")


if __name__ == "__main__":
    main()
