"""Instructions per request through a real uvicorn server, counted by callgrind: deterministic.

Wall-clock and CPU-time ratios on a shared VM move by 10-20 % between runs
(the bare app alone swung 6.0k-9.4k requests/s here); instruction counts do
not. Each variant runs under ``valgrind --tool=callgrind`` (uvicorn, uvloop,
httptools: everything in user space; the kernel's side of the syscalls is not
counted) and answers N1 and then, in a second run, N2 sequential GETs on one
keep-alive connection after 200 warm-up requests; (I(N2) - I(N1)) / (N2 - N1)
is the per-request cost with start-up and shutdown cancelled out.

One connection means one request per event-loop iteration: the least batching
of access lines and audit rows there can be, so ``ours`` is measured at its
most expensive. ``ours_audit`` writes its rows into a throwaway PostgreSQL
(the writer's in-process work is counted; the database's is not).

    .venv/bin/python benchmarks/instructions.py [--small 500] [--large 2500] [--variant ours ...]

Needs valgrind (``apt-get install valgrind``); about 25 s of CPU per run,
two runs per variant, two at a time.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.support.postgres import PostgresServer  # noqa: E402

VARIANTS = ("bare", "instrumentator", "ours", "ours_audit")
PATH = "/api/items/42"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def drive(port: int, requests: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("GET", PATH)
            conn.getresponse().read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    for _ in range(200 + requests):
        conn.request("GET", PATH)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {PATH} answered {response.status}")
    conn.close()


def count(variant: str, requests: int, env: dict[str, str]) -> int:
    """Instructions of one whole server run (start, warm-up, ``requests`` GETs, graceful stop)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-cg-") as tmp:
        log = Path(tmp) / "valgrind.log"
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", f"--log-file={log}",
                sys.executable, "-m", "uvicorn", f"{variant}:app", "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1", "--no-access-log", "--loop", "uvloop", "--http", "httptools",
                "--log-level", "warning"]
        run_env = {**os.environ, **env, "PYTHONHASHSEED": "0",
                   "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE / "variants")])}
        server = subprocess.Popen(argv, cwd=HERE / "variants", env=run_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            drive(port, requests)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=300)
        found = re.search(r"Collected : (\d+)", log.read_text())
        if found is None:
            raise RuntimeError(f"no callgrind total for {variant}:\n{log.read_text()[-2000:]}")
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--large", type=int, default=2500)
    parser.add_argument("--variant", action="append", choices=VARIANTS)
    args = parser.parse_args()
    variants = args.variant or list(VARIANTS)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    server = None
    if "ours_audit" in variants:
        server = PostgresServer()
        server.start()
    try:
        jobs = []
        for variant in variants:
            for n in (args.small, args.large):
                job_env: dict[str, str] = {}
                if variant == "ours_audit" and server is not None:  # one database per run: its own chain
                    server.create_database(f"bench_{n}")
                    job_env["BENCH_DATABASE_URL"] = server.url(f"bench_{n}")
                jobs.append((variant, n, job_env))
        with ThreadPoolExecutor(max_workers=2) as pool:
            totals = dict(zip(((v, n) for v, n, _ in jobs),
                              pool.map(lambda job: count(*job), jobs), strict=True))
    finally:
        if server is not None:
            server.destroy()
    per_request = {v: (totals[v, args.large] - totals[v, args.small]) / (args.large - args.small) for v in variants}
    base = per_request.get("bare")
    print(f"callgrind, {args.large - args.small} requests (N={args.small} vs N={args.large}), one keep-alive "
          f"connection, GET {PATH}, uvicorn 1 worker uvloop/httptools\n")
    print("| variant | instructions/request | vs bare | added |")
    print("|---|---:|---:|---:|")
    for variant in variants:
        value = per_request[variant]
        ratio = f"{value / base:.3f}" if base else "-"
        added = f"+{value - base:,.0f}" if base else "-"
        print(f"| {variant} | {value:,.0f} | {ratio} | {added} |")


if __name__ == "__main__":
    main()
