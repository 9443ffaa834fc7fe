"""Scrape cost as work grows: ``/metrics`` at 300, 2,500 and 25,000 series, and what a scrape does to requests.

The app (``variants/routes.py``) has N routes ``/r{i}/{item_id}``; every route is hit with GET, POST,
DELETE and one GET that fails validation (422), so ``instrument(app)`` holds about 49 series per route
(N is chosen for each target). Each server is a real uvicorn (uvloop, httptools).

1. **Scrape cost** per target: the series and bytes of ``/metrics``, and scrape times over HTTP on an
   idle server with Prometheus's ``Accept`` header (OpenMetrics), for ours (one worker; four workers
   with ``PROMETHEUS_MULTIPROC_DIR``) and prometheus-fastapi-instrumentator on the same app; beside
   them prometheus-client's own ``generate_latest`` on the very registry ours serves, timed inside
   the server (``/_bench/encode``).
2. **The scrape's hold on the event loop**, measured in a separate process that loads the same library
   (for multiprocess: over the four workers' live files): the wall and CPU time of one ``/metrics`` call
   through the ASGI app, the longest stretch it kept the event loop from running anything else and the
   longest garbage-collector pause in it; on a first scrape, when nothing changed since the last, and
   after a round of traffic over every route.
3. **Requests during scrapes** at the largest target: wrk -t1 -c32 on ``GET /plain`` with no scrapes
   and with one scrape a second, interleaved round by round for every variant (bare FastAPI beside);
   for ours also with a body the size of a scrape, rendered once, fetched once a second (what moving
   2.4 MB a second costs on this machine: the floor under any exporter).

    .venv/bin/python benchmarks/scaling.py [--targets 300 2500 25000] [--rounds 3] [--duration 10]
        [--json results/scaling.json] [--skip-wrk | --skip-scrapes]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from overhead import CLK_TCK, WRK_LUA, count_series, free_port  # noqa: E402

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
SERIES_PER_ROUTE = 49  # 3 methods x (12 buckets + _count + _sum + in progress) + 4 statuses
BASE_SERIES = 150  # the rest of the catalog, python_/process_ and /plain's series


def log(message: str) -> None:
    """Progress, on stderr: stdout has the tables."""
    print(message, file=sys.stderr, flush=True)


def routes_for(target: int) -> int:
    return max(1, round((target - BASE_SERIES) / SERIES_PER_ROUTE))


# -- servers --------------------------------------------------------------------------------------
class Server:
    def __init__(self, lib: str, routes: int, workers: int = 1) -> None:
        self.lib, self.routes, self.workers = lib, routes, workers
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
        self.env = {**os.environ, "BENCH_ROUTES": str(routes), "BENCH_LIB": lib,
                    "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE / "variants")])}
        if workers > 1:
            (self.dir / "prom").mkdir()
            self.env["PROMETHEUS_MULTIPROC_DIR"] = str(self.dir / "prom")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"{self.lib}" + (f" ({self.workers} workers)" if self.workers > 1 else "")

    def start(self) -> Server:
        argv = [sys.executable, "-m", "uvicorn", "routes:app", "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.workers), "--no-access-log", "--log-level", "warning", "--loop", "uvloop",
                "--http", "httptools"]
        log = (self.dir / "server.log").open("ab")
        self.proc = subprocess.Popen(argv, cwd=HERE / "variants", env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{(self.dir / 'server.log').read_text()[-3000:]}")
            try:
                if get(self.port, "/plain")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def worker_connections(self) -> list[http.client.HTTPConnection]:
        """One keep-alive connection to each worker (a connection stays with the worker that accepted it)."""
        found: dict[int, http.client.HTTPConnection] = {}
        deadline = time.monotonic() + 120  # workers still starting are not accepting yet
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("GET", "/_bench/pid")
            pid = json.loads(conn.getresponse().read())["pid"]
            if pid in found:
                conn.close()
                time.sleep(0.05)
            else:
                found[pid] = conn
            if len(found) == self.workers:
                return list(found.values())
        raise RuntimeError(f"reached {len(found)} of {self.workers} workers")

    def drive(self) -> None:
        """Every route, every method, one 422, through every worker (each worker then holds every series)."""
        conns = self.worker_connections()
        threads = [threading.Thread(target=drive_routes, args=(conn, self.routes)) for conn in conns]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for conn in conns:
            conn.close()


def get(port: int, path: str, accept: str = "*/*", timeout: float = 60) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": accept})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def drive_routes(conn: http.client.HTTPConnection, routes: int) -> None:
    for i in range(routes):
        for method, path, expected in (("GET", f"/r{i}/1", 200), ("POST", f"/r{i}/1", 200),
                                       ("DELETE", f"/r{i}/1", 200), ("GET", f"/r{i}/x", 422)):
            conn.request(method, path)
            response = conn.getresponse()
            response.read()
            if response.status != expected:
                raise RuntimeError(f"{method} {path} -> {response.status}")


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server.start()
    finally:
        server.stop()


# -- 1. scrape cost -------------------------------------------------------------------------------
def scrape_times(conn: http.client.HTTPConnection, n: int, path: str = "/metrics") -> tuple[list[float], bytes]:
    times, body = [], b""
    for _ in range(n):
        start = time.perf_counter()
        conn.request("GET", path, headers={"Accept": PROMETHEUS_ACCEPT})
        response = conn.getresponse()
        body = response.read()
        times.append((time.perf_counter() - start) * 1000)
        if response.status != 200:
            raise RuntimeError(f"{path} -> {response.status}")
    return times, body


def encode_times(port: int, n: int) -> dict[str, float]:
    """prometheus-client's encoders on the server's own registry, timed in the server; median of n."""
    text, om = [], []
    for _ in range(n):
        _, body = get(port, "/_bench/encode")
        found = json.loads(body)
        text.append(found["text"]["ms"])
        om.append(found["openmetrics"]["ms"])
    return {"generate_latest_ms": statistics.median(text), "openmetrics_generate_latest_ms": statistics.median(om)}


def tree_cpu_ms(root: int, include_root: bool = True) -> float:
    """CPU time so far of process ``root`` and every process below it (workers, the multiprocess
    exporter a worker starts), in 10 ms ticks: divide a difference by many scrapes."""
    parents, ticks = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)], ticks[int(entry)] = int(fields[1]), int(fields[11]) + int(fields[12])
    below, found = {root}, True
    while found:
        found = False
        for pid, parent in parents.items():
            if parent in below and pid not in below:
                below.add(pid)
                found = True
    if not include_root:
        below.discard(root)
    return sum(ticks.get(pid, 0) for pid in below) / CLK_TCK * 1000


def server_cpu_ms(server: Server) -> float:
    assert server.proc is not None
    return tree_cpu_ms(server.proc.pid)


def scrape_row(server: Server, scrapes: int) -> dict[str, Any]:
    """Scrapes over one keep-alive connection (one worker): after two that warm it up, the steady state."""
    server.drive()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    first, _ = scrape_times(conn, 2)  # the first renders everything (four workers: starts the exporter)
    cpu = server_cpu_ms(server)
    times, body = scrape_times(conn, scrapes)
    cpu = (server_cpu_ms(server) - cpu) / scrapes
    conn.close()
    counted = count_series(body.decode())
    row = {"variant": server.name, "routes": server.routes, "series": counted["series_total"],
           "bytes": len(body), "scrape_ms_median": statistics.median(times), "scrape_ms_max": max(times),
           "server_cpu_ms": cpu, "first_scrape_ms": first[0]}
    if server.lib == "ours":
        row.update(encode_times(server.port, 5))
    return row


# -- 2. the event loop during a scrape (in a probe process) -------------------------------------------
TICK = 0.0005


async def held(call: Callable[[], Awaitable[None]]) -> dict[str, float]:
    """For one ``call()``, in ms: wall and CPU time (CPU is less disturbed by other load on the machine),
    the longest stretch the loop went without running another task meanwhile (wall: how late a task
    waking every ``TICK`` woke; CPU: what the process spent in that stretch, without the time the OS
    gave other processes), the longest garbage-collector pause inside, and the CPU time of the processes
    this one started (the multiprocess exporter)."""
    loop = asyncio.get_running_loop()
    gaps: list[tuple[float, float]] = []
    pauses: list[float] = []
    started = [0.0]
    done = False

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started[0])

    async def probe() -> None:  # wakes every TICK: how late it wakes is how long something held the loop
        last, last_cpu = loop.time(), time.process_time()
        while not done:
            await asyncio.sleep(TICK)
            now, now_cpu = loop.time(), time.process_time()
            gaps.append((max(0.0, now - last - TICK), now_cpu - last_cpu))
            last, last_cpu = now, now_cpu

    helpers = tree_cpu_ms(os.getpid(), include_root=False)
    task = asyncio.ensure_future(probe())
    await asyncio.sleep(0)
    gc.callbacks.append(on_gc)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        await call()
    finally:
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        gc.callbacks.remove(on_gc)
        done = True
    await task
    helpers = tree_cpu_ms(os.getpid(), include_root=False) - helpers
    return {"wall": wall * 1000, "cpu": cpu * 1000, "hold": max(g[0] for g in gaps) * 1000,
            "hold_cpu": max(g[1] for g in gaps) * 1000, "gc": max(pauses, default=0.0) * 1000,
            "helpers": helpers}


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    """Median wall and CPU time of some scrapes; their longest hold and GC pause."""
    return {**{k: statistics.median(r[k] for r in runs) for k in ("wall", "cpu")},
            "helpers": statistics.mean(r["helpers"] for r in runs),  # 10 ms ticks: a mean says more
            **{k: max(r[k] for r in runs) for k in ("hold", "hold_cpu", "gc")}}


def probe_main(routes: int, port: int | None) -> None:
    """Runs in its own process (``--probe``): imports the library as the server does, scrapes through
    the ASGI app and reports wall time and the loop's longest hold, idle and after traffic."""
    sys.path[:0] = [str(ROOT), str(HERE / "variants")]
    os.environ["BENCH_ROUTES"], os.environ["BENCH_LIB"] = str(routes), "ours"
    import routes as routes_app  # the same app the servers run

    app = routes_app.app
    body: list[bytes] = []

    async def call(method: str, path: str, accept: bytes = b"*/*") -> int:
        status = 0

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message.get("body"):
                body.append(message["body"])

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
                 "headers": [(b"host", b"127.0.0.1"), (b"accept", accept)], "client": ("127.0.0.1", 5000),
                 "server": ("127.0.0.1", 8000), "state": {}}
        await app(scope, receive, send)
        return status

    async def traffic() -> None:
        if port is not None:  # multiprocess: the server's workers write the files
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            await asyncio.to_thread(drive_routes, conn, routes)
            conn.close()
            return
        for i in range(routes):
            for method, path in (("GET", f"/r{i}/1"), ("POST", f"/r{i}/1"), ("DELETE", f"/r{i}/1"),
                                 ("GET", f"/r{i}/x")):
                await call(method, path)

    async def scrape() -> None:
        body.clear()
        if await call("GET", "/metrics", PROMETHEUS_ACCEPT.encode()) != 200:
            raise RuntimeError("scrape failed")

    async def main() -> dict[str, Any]:
        await traffic()
        first = await held(scrape)
        idle = [await held(scrape) for _ in range(5)]
        changed = []
        for _ in range(3):
            await traffic()
            changed.append(await held(scrape))
        return {"first": first, "idle": summary(idle), "changed": summary(changed), "bytes": len(b"".join(body))}

    print("PROBE_JSON " + json.dumps(asyncio.run(main())))


def probe(routes: int, server: Server | None = None) -> dict[str, Any]:
    env = dict(os.environ)
    argv = [sys.executable, str(Path(__file__).resolve()), "--probe", str(routes)]
    if server is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = server.env["PROMETHEUS_MULTIPROC_DIR"]
        argv += ["--probe-port", str(server.port)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=HERE)
    if "PROBE_JSON " not in out.stdout:
        raise RuntimeError(f"probe failed: {out.stdout[-2000:]} {out.stderr[-3000:]}")
    return json.loads(out.stdout.split("PROBE_JSON ", 1)[1].splitlines()[0])


# -- 3. requests during scrapes -------------------------------------------------------------------
class Scraper(threading.Thread):
    """One scrape a second, as Prometheus would at a 1 s interval; keeps the scrape times."""

    def __init__(self, port: int, path: str = "/metrics") -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.times, self.stopped = port, path, [], threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            start = time.perf_counter()
            status, _ = get(self.port, self.path, PROMETHEUS_ACCEPT)
            if status == 200:
                self.times.append((time.perf_counter() - start) * 1000)


def wrk(port: int, duration: int, lua: Path, scrapes: str | None) -> dict[str, Any]:
    """wrk on ``/plain``; ``scrapes``: the path fetched once a second meanwhile, if any."""
    scraper = Scraper(port, scrapes) if scrapes else None
    if scraper is not None:
        scraper.start()
    try:
        out = subprocess.run(["wrk", "-t1", "-c32", f"-d{duration}s", "--timeout", "10s", "-s", str(lua),
                              f"http://127.0.0.1:{port}/plain"], capture_output=True, text=True, check=True).stdout
    finally:
        if scraper is not None:
            scraper.stopped.set()
            scraper.join()
    found = json.loads(out.split("WRK_JSON ", 1)[1].splitlines()[0])
    lat = found["latency_us"]
    return {"rps": found["requests"] / (found["duration_us"] / 1e6), "p50": lat["p50"] / 1000,
            "p99": lat["p99"] / 1000, "p999": lat["p999"] / 1000, "max": lat["max"] / 1000,
            "errors": sum(found["errors"].values()), "scrapes": scraper.times if scraper else []}


def latency_rows(servers: list[Server], rounds: int, duration: int) -> list[dict[str, Any]]:
    lua = Path(tempfile.mkdtemp(prefix="bench-wrk-")) / "report.lua"
    lua.write_text(WRK_LUA)
    runs: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for server in servers:  # warm-up; first scrapes (the first render, starting the exporter) are timed elsewhere
        wrk(server.port, 2, lua, None)
        if server.lib != "bare":
            get(server.port, "/metrics", PROMETHEUS_ACCEPT)
        if server.lib == "ours" and server.workers == 1:
            get(server.port, "/_bench/static")  # renders the static body once
    for r in range(rounds):
        for server in servers:
            modes: list[str | None] = [None]
            if server.lib != "bare":
                modes.append("/metrics")
            if server.lib == "ours" and server.workers == 1:
                modes.append("/_bench/static")
            for scrapes in modes if r % 2 == 0 else modes[::-1]:
                runs.setdefault((server.name, scrapes), []).append(wrk(server.port, duration, lua, scrapes))
                log(f"  round {r + 1} {server.name} scrapes={scrapes}: {runs[server.name, scrapes][-1]['p999']:.1f}"
                    " ms p99.9")
    rows = []
    for (name, scrapes), found in runs.items():
        scrape_ms = [t for run in found for t in run["scrapes"]]
        rows.append({
            "variant": name, "scrapes": scrapes,
            **{k: statistics.median(run[k] for run in found) for k in ("rps", "p50", "p99", "p999")},
            "max": max(run["max"] for run in found), "errors": sum(run["errors"] for run in found),
            "scrape_ms_median": statistics.median(scrape_ms) if scrape_ms else None,
            "scrape_ms_max": max(scrape_ms) if scrape_ms else None,
        })
    return rows


# -- report ------------------------------------------------------------------------------------
def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def report(scrapes: list[dict[str, Any]], probes: list[dict[str, Any]], latency: list[dict[str, Any]]) -> str:
    out = ["| variant | routes | series | bytes | first scrape ms | then: scrape ms median (max), HTTP, idle server | "
           "server CPU ms per scrape | prometheus-client `generate_latest` ms, same registry: text (OpenMetrics) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in scrapes:
        pc = (f"{r['generate_latest_ms']:.1f} ({r['openmetrics_generate_latest_ms']:.1f})"
              if "generate_latest_ms" in r else "-")
        first = f"{r['first_scrape_ms']:.1f}" if "first_scrape_ms" in r else "-"
        out.append(f"| {r['variant']} | {r['routes']} | {r['series']:,} | {r['bytes']:,} | {first} | "
                   f"{r['scrape_ms_median']:.1f} ({r['scrape_ms_max']:.1f}) | {r['server_cpu_ms']:.1f} | {pc} |")
    out += ["", "In-process scrape through the ASGI app: wall ms / CPU ms of the process scraping (+ of the "
            "multiprocess exporter it started) (longest hold of the event loop, wall / CPU ms; longest GC pause "
            "in it, ms):", "",
            "| variant | series | first scrape | nothing changed since the last (median of 5) | "
            "after a request on every route (median of 3) |", "|---|---:|---:|---:|---:|"]

    def cell(found: dict[str, float]) -> str:
        helpers = f" + exporter {found['helpers']:.0f}" if found.get("helpers") else ""
        return (f"{found['wall']:.1f} / {found['cpu']:.1f}{helpers} ({found['hold']:.1f} / {found['hold_cpu']:.1f}; "
                f"GC {found['gc']:.1f})")

    for p in probes:
        out.append(f"| {p['variant']} | {p['series']:,} | {cell(p['first'])} | {cell(p['idle'])} | "
                   f"{cell(p['changed'])} |")
    if latency:
        out += ["", "| variant | scrapes | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | scrape ms median (max) "
                "under load | errors |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        names = {None: "none", "/metrics": "/metrics 1/s", "/_bench/static": "same-size static body 1/s"}
        for r in latency:
            scrape = (f"{fmt(r['scrape_ms_median'])} ({fmt(r['scrape_ms_max'])})"
                      if r["scrape_ms_median"] is not None else "-")
            out.append(f"| {r['variant']} | {names[r['scrapes']]} | {r['rps']:,.0f} | {r['p50']:.2f} | "
                       f"{r['p99']:.2f} | {r['p999']:.2f} | {r['max']:.1f} | {scrape} | {r['errors']} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[300, 2500, 25000])
    parser.add_argument("--workers", type=int, default=4, help="workers of the multiprocess variant")
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--skip-wrk", action="store_true")
    parser.add_argument("--skip-scrapes", action="store_true", help="only the wrk section")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--probe", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--probe-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe is not None:
        probe_main(args.probe, args.probe_port)
        return
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"prometheus-client {version('prometheus-client')}, uvicorn {version('uvicorn')} (uvloop, httptools)\n")
    scrapes, probes = [], []
    for target in [] if args.skip_scrapes else args.targets:
        n = routes_for(target)
        for lib, workers in (("ours", 1), ("ours", args.workers), ("instrumentator", 1)):
            if workers > 1 and target != max(args.targets):
                continue
            with running(Server(lib, n, workers)) as server:
                row = scrape_row(server, args.scrapes)
                scrapes.append(row)
                log(f"{row}")
                if lib == "ours":
                    found = probe(n, server if workers > 1 else None)
                    probes.append({"variant": server.name, "series": row["series"], **found})
                    log(f"  probe {probes[-1]}")
    latency = []
    if not args.skip_wrk:
        n = routes_for(max(args.targets))
        servers = [Server("bare", n), Server("ours", n), Server("ours", n, args.workers), Server("instrumentator", n)]
        try:
            for server in servers:
                server.start()
                if server.lib != "bare":
                    server.drive()
            latency = latency_rows(servers, args.rounds, args.duration)
        finally:
            for server in servers:
                server.stop()
    text = report(scrapes, probes, latency)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"scrapes": scrapes, "probes": probes, "latency": latency}, indent=2) + "\n")


if __name__ == "__main__":
    main()
