"""scripts/check_panels.py against a real Prometheus (scraping a tiny exporter) and the real PostgreSQL."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from dashboards.config import DsType
from dashboards.grafana import uids
from dashboards.validate import live as live_check
from dashboards.validate import live_cli
from dashboards.validate.live import ERROR, NO_DATA, OK, DirectRunner, Window, check_dashboard
from fastapi_lookout import metrics
from tests.dashboards.conftest import READER, insert_rows
from tests.support import prometheus as prom
from tests.support.binaries import free_port, require

SQL_ONLY = frozenset({str(DsType.POSTGRES)})
SERVED = ("http_requests", "http_request_duration_seconds", "app_info", "ws_connections_active")
"""Catalog families the exporter serves; every other panel must come out as "no data"."""


class Exporter:
    """Serves a few catalog metrics in text format; counters grow on every scrape so rate() is non-zero."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        specs = {s.name: s for s in metrics.CATALOG}
        kinds = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}
        self.m = {name: kinds[specs[name].kind](name, specs[name].help, specs[name].labels, registry=self.registry)
                  for name in SERVED}
        self.m["app_info"].labels("1.0", "3.11", "test").set(1)
        self.m["ws_connections_active"].set(3)
        self.port = free_port()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                exporter.tick()
                body = generate_latest(exporter.registry)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tick(self) -> None:
        for status in ("200", "200", "500"):
            self.m["http_requests"].labels("GET", "/api/authors", status).inc()
        self.m["http_request_duration_seconds"].labels("GET", "/api/authors").observe(0.07)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def prometheus() -> Iterator[str]:
    from dashboards.config import Config

    require("Prometheus", prom.binary(), "apt-get install prometheus")
    exporter = Exporter()
    try:
        with prom.PrometheusServer({prom.job_name(Config().app_selector): [f"127.0.0.1:{exporter.port}"]}) as server:
            server.wait_scraped(samples=4, timeout=30)
            yield server.url
    finally:
        exporter.close()


def _window() -> Window:
    return Window.last(timedelta(minutes=2), step_seconds=2, rate_interval="10s")


def _by_panel(results):
    return {r.panel: r for r in results}


def test_panels_with_data_no_data_and_zero_defaults(prometheus, built):
    results = _by_panel(check_dashboard(built[uids.FASTAPI], DirectRunner(prometheus=prometheus), _window(),
                                        only=frozenset({"prometheus"})))
    assert results["Request rate [A]"].status == OK
    assert results["Error ratio (5xx) [A]"].status == OK
    assert results["Latency p50 / p95 / p99 [B]"].status == OK
    assert results["Latency p95 by endpoint [A]"].status == OK  # $endpoint resolved from label_values
    assert results["Open connections now [A]"].status == OK
    assert results["Build running now [A]"].status == OK
    assert results["Unmatched requests [A]"].status == OK  # or on() vector(0)
    assert results["Rate-limit hits by type [A]"].status == NO_DATA  # not served by this exporter
    assert results["Queue size now [A]"].status == NO_DATA
    assert not any(r.status == ERROR for r in results.values()), [r for r in results.values() if r.status == ERROR]
    assert not any(name.startswith(("Recent errors", "Rate-limit events")) for name in results)  # Loki skipped


def test_a_broken_query_is_reported_as_an_error(prometheus, built):
    broken = json.loads(json.dumps(built[uids.FASTAPI]))
    panel = next(p for p in broken["panels"] if p["title"] == "Request rate")
    panel["targets"][0]["expr"] = "sum(rate(http_requests_total[$__rate_interval])"
    results = _by_panel(check_dashboard(broken, DirectRunner(prometheus=prometheus), _window(),
                                        only=frozenset({"prometheus"})))
    assert results["Request rate [A]"].status == ERROR
    assert "HTTP 400" in results["Request rate [A]"].detail


def test_an_unreachable_datasource_is_an_error(built):
    results = check_dashboard(built[uids.KEYCLOAK], DirectRunner(prometheus=f"http://127.0.0.1:{free_port()}"),
                              _window())
    assert results and all(r.status == ERROR and "cannot reach" in r.detail for r in results)


def test_cli_prints_a_table_of_problem_panels_and_fails(prometheus, tmp_path, capsys):
    from dashboards.config import Config
    from dashboards.grafana import artifacts as grafana

    path = tmp_path / "fastapi-metrics.json"
    path.write_text(json.dumps(grafana.dashboards(Config())[uids.FASTAPI]))
    code = live_cli.main(["--prometheus", prometheus, "--dashboards", str(path), "--since", "2m",
                            "--rate-interval", "10s", "--step", "2"])
    out = capsys.readouterr().out
    assert code == 1
    assert "DASHBOARD" in out and "STATUS" in out
    assert re.search(r"fastapi-metrics\s+Rate-limit hits by type \[A\]\s+no data", out), out
    assert "Request rate [A]" not in out.split("\n", 1)[1]  # panels with data are not listed
    assert re.match(r"\d+ queries in 1 dashboard\(s\): \d+ ok, \d+ no data, 0 errors", out)


def test_audit_panels_return_data_live_and_a_broken_one_errors(postgres_server, audit_db, built):
    insert_rows(postgres_server, audit_db, now=datetime.now(UTC))
    runner = DirectRunner(postgres=postgres_server.dsn(audit_db, user=READER))
    window = Window.last(timedelta(hours=6))
    results = check_dashboard(built[uids.AUDIT], runner, window, only=SQL_ONLY)
    assert len(results) == 10
    assert [r for r in results if r.status != OK] == []

    broken = json.loads(json.dumps(built[uids.AUDIT]))
    panel = next(p for p in broken["panels"] if p["title"] == "Top users (top 15)")
    panel["targets"][0]["rawSql"] = panel["targets"][0]["rawSql"].replace('"username"', '"user_name"', 1)
    results = _by_panel(check_dashboard(broken, runner, window, only=SQL_ONLY))
    assert results["Top users (top 15) [A]"].status == ERROR
    assert "user_name" in results["Top users (top 15) [A]"].detail


def test_audit_panels_outside_the_data_range_are_no_data(postgres_server, audit_db, built):
    runner = DirectRunner(postgres=postgres_server.dsn(audit_db, user=READER))
    window = Window(datetime(2001, 1, 1, tzinfo=UTC), datetime(2001, 1, 2, tzinfo=UTC))
    results = _by_panel(check_dashboard(built[uids.AUDIT], runner, window, only=SQL_ONLY))
    assert results["Recent events (last 100) [A]"].status == NO_DATA
    assert results["Events over time by outcome [A]"].status == NO_DATA


class FakeGrafana:
    """Answers /api/ds/query and the datasource proxy like Grafana does, recording what it was sent."""

    def __init__(self) -> None:
        self.queries: list[dict] = []
        self.auth: set[str] = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.auth.add(self.headers.get("Authorization", ""))
                label = self.path.split("/label/")[1].split("/")[0]
                self._reply(200, {"status": "success", "data": {"job": ["fastapi-app"]}.get(label, ["a", "b.c"])})

            def do_POST(self) -> None:
                fake.auth.add(self.headers.get("Authorization", ""))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                query = body["queries"][0]
                fake.queries.append(query)
                text = query.get("expr") or query.get("rawSql") or ""
                if "ws_connections_active" in text:
                    return self._reply(400, {"message": "bad query", "results": {"A": {"error": "parse error"}}})
                if "rate_limit_hits_total" in text:
                    result = {"frames": [{"schema": {"fields": []}, "data": {"values": [[], []]}}]}
                elif "audit_queue_size" in text:
                    result = {"error": "query timed out", "status": 500}
                else:
                    result = {"frames": [{"schema": {"fields": []}, "data": {"values": [[1, 2], [0.5, 0.7]]}}]}
                return self._reply(200, {"results": {"A": result}})

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_through_grafana_ds_query(built):
    fake = FakeGrafana()
    try:
        runner = live_check.GrafanaRunner(fake.url, "tok")
        results = _by_panel(check_dashboard(built[uids.FASTAPI], runner, Window.last(timedelta(hours=1))))
    finally:
        fake.server.shutdown()
    assert fake.auth == {"Bearer tok"}
    assert results["Request rate [A]"].status == OK
    assert results["Rate-limit hits by type [A]"].status == NO_DATA
    connections = results["Open connections now [A]"]
    assert connections.status == ERROR and "HTTP 400" in connections.detail
    assert results["Queue size now [A]"].status == ERROR and "timed out" in results["Queue size now [A]"].detail
    assert results["Recent errors [A]"].status == OK  # Loki panels go through Grafana too
    sent = {q["expr"] for q in fake.queries}
    # dashboard variables interpolated (All is the variable's allValue), Grafana built-ins left to Grafana
    assert 'sum(rate(http_requests_total{job=~"fastapi-app",instance=~".+"}[$__range]))' in sent
    assert not any("$job" in e or "$instance" in e for e in sent)
    assert all(q["datasource"]["uid"] in {"prometheus", "loki"} for q in fake.queries)


def test_multi_values_are_regex_escaped_as_grafana_does_and_all_uses_the_all_value():
    variables = live_check.Variables(values={"instance": ["a", "b.c"], "job": []}, all_value={"job": ".+"},
                                     multi={"instance", "job"})
    query = 'up{job=~"$job",instance=~"$instance",request_id=~`${rid:regex}`}'
    assert variables.format(query, "prometheus") == 'up{job=~".+",instance=~"(a|b\\\\.c)",request_id=~`${rid:regex}`}'
