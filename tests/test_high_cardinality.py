"""25,000 series through real servers: the parsers accept them, a real Prometheus scrapes them in time,
and with four workers the totals are what the workers counted, across a worker's restart.

Not timed: ``benchmarks/scaling.py`` measures. The app is ``tests/support/many_routes.py`` (510 routes)
under uvicorn.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.support import prometheus
from tests.support.binaries import free_port, require, which

pytestmark = pytest.mark.realserver

ROOT = Path(__file__).resolve().parents[1]
ROUTES = 510
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
TEXT = "text/plain;version=0.0.4"


class Server:
    def __init__(self, tmp: Path, workers: int = 1) -> None:
        self.port, self.workers = free_port(), workers
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "MANY_ROUTES": str(ROUTES)}
        if workers > 1:
            self.multiproc = tmp / "prom"
            self.multiproc.mkdir()
            self.env["PROMETHEUS_MULTIPROC_DIR"] = str(self.multiproc)
        self.log = (tmp / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests.support.many_routes:app", "--host", "127.0.0.1", "--port",
             str(self.port), "--workers", str(workers), "--no-access-log", "--log-level", "warning",
             "--timeout-keep-alive", "600"],  # connections stay with their worker while others are driven
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.pids = self.connections(timeout=120)

    def connections(self, timeout: float = 60) -> dict[int, http.client.HTTPConnection]:
        """A keep-alive connection to every worker (each stays with the worker that accepted it)."""
        found: dict[int, http.client.HTTPConnection] = {}
        deadline = time.monotonic() + timeout
        while len(found) < self.workers:
            assert time.monotonic() < deadline, f"reached {sorted(found)} of {self.workers} workers"
            assert self.proc.poll() is None, "the server exited"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                pid = json.loads(request(conn, "GET", "/pid"))["pid"]
            except OSError:
                time.sleep(0.2)
                continue
            if pid in found:
                conn.close()
                time.sleep(0.05)
            else:
                found[pid] = conn
        return found

    def scrape(self, accept: str = OPENMETRICS) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            return request(conn, "GET", "/metrics", accept).decode()
        finally:
            conn.close()

    def stop(self) -> None:
        for conn in self.pids.values():
            conn.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def request(conn: http.client.HTTPConnection, method: str, path: str, accept: str = "*/*") -> bytes:
    conn.request(method, path, headers={"Accept": accept})
    response = conn.getresponse()
    return response.read()


def drive(conn: http.client.HTTPConnection, extra: int = 0) -> int:
    """Every route with GET, POST, DELETE and one 422, then ``extra`` more GETs of one route; returns
    how many requests were answered."""
    for i in range(ROUTES):
        for method, path in (("GET", f"/r{i}/1"), ("POST", f"/r{i}/1"), ("DELETE", f"/r{i}/1"), ("GET", f"/r{i}/x")):
            request(conn, method, path)
    for _ in range(extra):
        request(conn, "GET", "/r0/2")
    return ROUTES * 4 + extra


def route_requests(families: list) -> float:
    return sum(s.value for f in families for s in f.samples
               if s.name == "http_requests_total" and s.labels["endpoint"].startswith("/r"))


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("single"))
    try:
        drive(next(iter(server.pids.values())))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def four_workers(tmp_path_factory) -> Iterator[tuple[Server, dict[int, int]]]:
    server = Server(tmp_path_factory.mktemp("four"), workers=4)
    try:
        sent = {pid: drive(conn, extra=7 * n) for n, (pid, conn) in enumerate(server.pids.items())}
        yield server, sent
    finally:
        server.stop()


def test_25000_series_parse_with_prometheus_clients_parsers(single):
    openmetrics = list(parse_openmetrics(single.scrape()))
    text = list(parse_text(single.scrape(TEXT)))
    assert sum(len(f.samples) for f in openmetrics) >= 25_000
    assert sum(len(f.samples) for f in text) >= 25_000
    assert route_requests(openmetrics) == route_requests(text) == ROUTES * 4
    assert any(s.exemplar for f in openmetrics for s in f.samples if s.name.endswith("_bucket"))


def test_promtool_accepts_the_text_format_at_25000_series(single):
    promtool = which("promtool")
    require("promtool", promtool, "apt-get install prometheus")
    checked = subprocess.run([promtool, "check", "metrics"], input=single.scrape(TEXT).encode(), capture_output=True)
    assert checked.returncode == 0, checked.stdout.decode()[-2000:] + checked.stderr.decode()[-2000:]


@pytest.mark.parametrize("which_server", ["single", "four_workers"])
def test_a_real_prometheus_scrapes_25000_series_within_its_timeout(which_server, request):
    require("Prometheus", prometheus.binary(), "apt-get install prometheus")
    found = request.getfixturevalue(which_server)
    server = found if which_server == "single" else found[0]
    # at a 1 s interval Prometheus times a scrape out after 1 s: a tenth of its default 10 s
    with prometheus.PrometheusServer({"many": [f"127.0.0.1:{server.port}"]}) as prom:
        prom.wait_scraped(samples=3, timeout=90)
        samples = prom.wait_for('scrape_samples_scraped{job="many"}', lambda r: r and prometheus.value(r[0]) > 0)
        assert prometheus.value(samples[0]) >= 25_000
        assert prom.query('max_over_time(up{job="many"}[1m])') and all(
            prometheus.value(s) == 1 for s in prom.query('up{job="many"}'))
        counted = prom.query('sum(http_requests_total{job="many", endpoint=~"/r.*"})')
        expected = ROUTES * 4 if which_server == "single" else sum(found[1].values())
        assert prometheus.value(counted[0]) == expected


def test_four_workers_add_up_to_what_each_counted(four_workers, tmp_path):
    server, sent = four_workers
    assert len(sent) == 4 and len(set(sent.values())) == 4  # each worker counted a different amount
    scraped = server.scrape()
    assert route_requests(list(parse_openmetrics(scraped))) == sum(sent.values())
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(server.multiproc))
    reference = generate_latest(registry).decode()
    ours = server.scrape(TEXT)
    assert sorted(ours.splitlines()) == sorted(reference.splitlines())  # what prometheus-client would say


def test_a_restarted_worker_takes_nothing_back(four_workers):
    server, sent = four_workers
    before = route_requests(list(parse_text(server.scrape(TEXT))))
    killed = next(iter(server.pids))
    os.kill(killed, signal.SIGKILL)  # uvicorn starts a new worker in its place
    server.pids.pop(killed).close()
    server.pids = {**server.pids, **{pid: conn for pid, conn in server.connections(timeout=120).items()
                                     if pid not in server.pids}}
    assert killed not in server.pids and len(server.pids) == 4
    after = list(parse_text(server.scrape(TEXT)))
    assert route_requests(after) == before == sum(sent.values())  # its counts stay in its files
    assert all(s.value == 0 for f in after for s in f.samples if s.name == "http_requests_in_progress")
