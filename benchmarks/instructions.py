"""Instructions per request through a real uvicorn server, counted by callgrind: deterministic.

Wall-clock and CPU-time ratios on a shared VM move by 10-20 % between runs
(the bare app alone swung 6.0k-9.4k requests/s here); instruction counts do
not. Each variant runs under ``valgrind --tool=callgrind`` (uvicorn, uvloop,
httptools: everything in user space; the kernel's side of the syscalls is not
counted) and answers N1 and then, in a second run, N2 GETs after 200 warm-up
requests; (I(N2) - I(N1)) / (N2 - N1) is the per-request cost with start-up
and shutdown cancelled out.

One connection means one request per event-loop iteration: the least batching
of access lines and audit rows there can be, so ``ours`` is measured at its
most expensive. 32 connections, each sending its next request as soon as the
last is answered (wrk's closed loop, from a thread per connection), keep the
server saturated as wrk -c32 does: several requests per loop iteration, the
case the throughput target is about. The audit variants write their rows
into a throwaway PostgreSQL (the database's work is not counted) in batches
of 1,000 rows: at wrk's rates the batch fills long before the writer's 0.5 s
timeout, but under valgrind (about 50x slower) that timeout would cut
batches to a few rows and charge each row a share of a per-batch
transaction that full-speed traffic does not pay, so the timeout is lifted
here. (I(2500) - I(500)) then spans exactly two batches; rows left at
shutdown are written by the lifespan's stop in both runs. ``ours_audit``
uses the service's default writer, a child process: valgrind follows it
(``--trace-children``) and its instructions are reported apart, as they run
on another core; ``ours_audit_inline`` runs the writer in the server's loop.

    .venv/bin/python benchmarks/instructions.py [--small 500] [--large 2500] [--variant ours ...]
        [--connections 1 --connections 32]

Needs valgrind (``apt-get install valgrind``); about 25 s of CPU per run,
two runs per variant and connection count, two at a time.
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

VARIANTS = ("bare", "instrumentator", "ours", "ours_audit", "ours_audit_inline")
AUDITED = ("ours_audit", "ours_audit_inline")
PATH = "/api/items/42"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connect(port: int, deadline: float) -> http.client.HTTPConnection:
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            conn.request("GET", PATH)
            conn.getresponse().read()
            return conn
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _get(conn: http.client.HTTPConnection, n: int) -> None:
    for _ in range(n):
        conn.request("GET", PATH)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {PATH} answered {response.status}")


def drive(port: int, requests: int, connections: int = 1, timeout: float = 600.0) -> None:
    """200 warm-up GETs, then ``requests`` more, spread over ``connections`` keep-alive connections
    that each send their next request as soon as the last is answered (wrk's closed loop)."""
    deadline = time.monotonic() + timeout
    conns = [_connect(port, deadline) for _ in range(connections)]
    _get(conns[0], 200)
    share, extra = divmod(requests, connections)
    with ThreadPoolExecutor(max_workers=connections) as pool:
        list(pool.map(_get, conns, [share + (i < extra) for i in range(connections)]))
    for conn in conns:
        conn.close()


def count(variant: str, requests: int, env: dict[str, str], connections: int = 1) -> tuple[int, int]:
    """Instructions of one whole server run (start, warm-up, ``requests`` GETs, graceful stop): the
    server process's, and those of the processes it started (the audit writer process), summed."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-cg-") as tmp:
        logs = Path(tmp)
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", "--trace-children=yes",
                f"--log-file={logs}/valgrind.%p.log",
                sys.executable, "-m", "uvicorn", f"{variant}:app", "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1", "--no-access-log", "--loop", "uvloop", "--http", "httptools",
                "--log-level", "warning", "--timeout-keep-alive", "3600"]  # idle while others warm up
        run_env = {**os.environ, **env, "PYTHONHASHSEED": "0",
                   "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE / "variants")])}
        server = subprocess.Popen(argv, cwd=HERE / "variants", env=run_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            drive(port, requests, connections)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=300)
        totals = {}
        for log in logs.glob("valgrind.*.log"):
            found = re.search(r"Collected : (\d+)", log.read_text())
            if found is None:
                raise RuntimeError(f"no callgrind total for {variant} in {log.name}:\n{log.read_text()[-2000:]}")
            totals[int(log.name.split(".")[1])] = int(found.group(1))
        own = totals.pop(server.pid)  # valgrind runs the server in the process Popen started
        return own, sum(totals.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--large", type=int, default=2500)
    parser.add_argument("--variant", action="append", choices=VARIANTS)
    parser.add_argument("--connections", type=int, action="append",
                        help="concurrent keep-alive connections (repeatable; default: 1 and 32)")
    args = parser.parse_args()
    variants = args.variant or list(VARIANTS)
    levels = args.connections or [1, 32]
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    server = None
    if any(v in AUDITED for v in variants):
        server = PostgresServer()
        server.start()
    try:
        jobs = []
        for conns in levels:
            for variant in variants:
                for n in (args.small, args.large):
                    job_env: dict[str, str] = {}
                    if variant in AUDITED and server is not None:  # one database per run: its own chain
                        server.create_database(f"{variant}_{conns}_{n}")
                        job_env["BENCH_DATABASE_URL"] = server.url(f"{variant}_{conns}_{n}")
                        job_env["BENCH_AUDIT_BATCH_TIMEOUT"] = "3600"  # see the module docstring
                        job_env["BENCH_AUDIT_SHUTDOWN_TIMEOUT"] = "1200"
                    jobs.append((variant, n, job_env, conns))
        with ThreadPoolExecutor(max_workers=2) as pool:
            totals = dict(zip(((v, n, c) for v, n, _, c in jobs),
                              pool.map(lambda job: count(*job), jobs), strict=True))
    finally:
        if server is not None:
            server.destroy()
    span = args.large - args.small
    print(f"callgrind, {span} requests (N={args.small} vs N={args.large}) on 1 and on 32 keep-alive connections, "
          f"GET {PATH}, uvicorn 1 worker uvloop/httptools\n")
    print("| variant | " + " | ".join(f"{c} conn: instructions/request | vs bare" for c in levels) + " |")
    print("|---|" + "---:|---:|" * len(levels))
    def per_request(variant: str, conns: int, which: int) -> float:
        return (totals[variant, args.large, conns][which] - totals[variant, args.small, conns][which]) / span

    for variant in variants:
        cells = []
        for conns in levels:
            value = per_request(variant, conns, 0)
            base = per_request("bare", conns, 0) if "bare" in variants else None
            cells += [f"{value:,.0f}", f"{value / base:.3f} (+{value - base:,.0f})" if base else "-"]
        print(f"| {variant} | " + " | ".join(cells) + " |")
    helpers = [v for v in variants if any(per_request(v, c, 1) for c in levels)]
    if helpers:
        print("\nProcesses the server started (the audit writer process, on another core), per request:\n")
        print("| variant | " + " | ".join(f"{c} conn: instructions/request" for c in levels) + " |")
        print("|---|" + "---:|" * len(levels))
        for variant in helpers:
            print(f"| {variant} | " + " | ".join(f"{per_request(variant, c, 1):,.0f}" for c in levels) + " |")


if __name__ == "__main__":
    main()
