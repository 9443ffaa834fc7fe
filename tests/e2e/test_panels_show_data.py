"""End to end: every panel of the generated dashboards shows data on the real stack.

One real Prometheus (1 s scrapes) scrapes the real service process (on a real
PostgreSQL, schema by its own migrations at start) as the app job and the
Keycloak stand-in as the Keycloak job, both job names from ``Config``. After
two rounds of the full traffic mix and a short, real database outage (the
5xx and unhandled-exception series), ``dashboards.validate.live`` runs every
Prometheus and SQL panel of the generated dashboards, the SQL ones as the
read-only ``grafana_reader``: none may fail and none may be empty, except the
few named in ``NO_DATA_ALLOWED`` with the reason. Loki is not installable
here: every LogQL query must parse with Loki's grammar, filter only on fields
that real log lines of this run carry, and have its literal filters met by
at least one of those lines.
"""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dashboards.catalogs import app as app_catalog
from dashboards.catalogs.logs import LOKI_SPECIAL_LABELS
from dashboards.config import Config, DsType
from dashboards.grafana import artifacts as grafana
from dashboards.grafana import uids
from dashboards.validate import logql, promql
from dashboards.validate.live import ERROR, NO_DATA, OK, DirectRunner, Result, Window, check_dashboard
from dashboards.validate.panels import Target, targets
from tests.dashboards.conftest import READER, create_reader
from tests.support import prometheus as prom
from tests.support.app_process import AppProcess
from tests.support.binaries import require
from tests.support.keycloak_exporter import KeycloakExporter, render
from tests.support.postgres import PostgresServer
from tests.support.traffic import ALL_ROLES, Sent, drive, rid

pytestmark = pytest.mark.realserver

CFG = Config()
APP_JOB = CFG.app_job
KEYCLOAK_JOB = CFG.keycloak_job
IDLE_KEYCLOAK_JOB = f"{KEYCLOAK_JOB}-idle"
"""A second Keycloak stand-in that never sees a login: what the lazy families look like before the first event."""
IDLE_CFG = dataclasses.replace(CFG, keycloak_job=IDLE_KEYCLOAK_JOB)
LIVE = frozenset({str(DsType.PROMETHEUS), str(DsType.POSTGRES)})
"""Datasources that run here; Loki panels are checked statically below."""

NO_DATA_ALLOWED: Mapping[tuple[str, str], str] = {
    # Empty: every panel of this run has data. (The status-class panel is one query whose classes come from
    # the data, so the 1xx class the service never answers is absent rather than an empty line.)
}


@dataclass
class Stack:
    prometheus: prom.PrometheusServer
    app: AppProcess
    keycloak: KeycloakExporter
    reader_dsn: str
    sent: list[Sent]
    outage_statuses: list[int]

    def window(self) -> Window:
        """Everything this run did; 1 s scrapes, so a 10 s rate window holds several samples."""
        return Window.last(timedelta(minutes=5), step_seconds=2, rate_interval="10s")

    def runner(self) -> DirectRunner:
        return DirectRunner(prometheus=self.prometheus.url, postgres=self.reader_dsn)


def _sum(job: str, expr: str) -> str:
    return expr.replace("JOB", f'job="{job}"')


def _at_least(n: float) -> Any:
    return lambda r: len(r) == 1 and prom.value(r[0]) >= n


def _database_outage(app: AppProcess, pg: PostgresServer) -> list[int]:
    """Real 5xx: with PostgreSQL stopped, reads fail (500, an unhandled exception) and /health says 503."""
    admin = app.token("erin", ALL_ROLES)
    statuses = []
    pg.stop()
    try:
        with app.client() as client:
            for path in ("/api/authors", "/api/authors/1", "/health"):
                response = client.get(path, headers={"Authorization": f"Bearer {admin}", "X-Correlation-ID": rid()})
                statuses.append(response.status_code)
    finally:
        pg.start()
    deadline = time.monotonic() + 30
    with app.client() as client:  # back to normal before the next round (the pool pre-pings)
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline, "the service did not recover from the database outage"
            time.sleep(0.1)
    return statuses


@pytest.fixture(scope="module")
def stack(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require("Prometheus", prom.binary(), "apt-get install prometheus")
    db = f"e2e_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(db)
    app = AppProcess({"DATABASE_URL": postgres_server.url(db), "AUDIT_RETRY_MAX_SECONDS": "1"},
                     workdir=Path(tmp_path_factory.mktemp("e2e-app")))
    with KeycloakExporter() as keycloak, KeycloakExporter(traffic=False) as idle, prom.PrometheusServer({
        APP_JOB: [f"127.0.0.1:{app.port}"], KEYCLOAK_JOB: [keycloak.target], IDLE_KEYCLOAK_JOB: [idle.target],
    }) as prometheus, app:  # Prometheus warms up while the app starts
        create_reader(postgres_server, db)  # user_actions exists: the app migrated at start
        prometheus.wait_scraped(samples=2)

        first = drive(app)
        with app.client() as client:  # a trailing slash: FastAPI's redirect, the service's only 3xx
            assert client.get("/api/authors/", headers={"X-Correlation-ID": rid()}).status_code == 307
        seen = len(first.http) + 1
        prometheus.wait_for(_sum(APP_JOB, "sum(http_requests_total{JOB})"), _at_least(seen),
                            what="the first round in Prometheus")
        outage = _database_outage(app, postgres_server)
        second = drive(app)
        seen += len(outage) + len(second.http)
        prometheus.wait_for(_sum(APP_JOB, "sum(http_requests_total{JOB})"), _at_least(seen),
                            what="every request in Prometheus")
        prometheus.wait_for(  # the audit writer caught up after the outage, and Prometheus saw it
            _sum(APP_JOB, "sum(audit_events_written_total{JOB}) >= sum(audit_events_enqueued_total{JOB}) > 0"
                          " and on() sum(audit_queue_size{JOB}) == 0"),
            what="every audit row written")
        prometheus.wait_more_scrapes(4)  # the 5xx series appeared last: rate() needs two of its samples
        yield Stack(prometheus, app, keycloak, postgres_server.dsn(db, user=CFG.audit.reader_user),
                    [first, second], outage)


@pytest.fixture(scope="module")
def built() -> dict[str, dict[str, Any]]:
    return grafana.dashboards(CFG)


def _live(dashboards: Mapping[str, Mapping[str, Any]], stack: Stack) -> list[Result]:
    window, runner = stack.window(), stack.runner()
    return [r for d in dashboards.values() for r in check_dashboard(d, runner, window, LIVE)]


# --- Prometheus and PostgreSQL: live -----------------------------------------------------------------------
def test_the_outage_produced_real_server_errors(stack):
    assert 500 in stack.outage_statuses and 503 in stack.outage_statuses, stack.outage_statuses
    errors = stack.prometheus.query(_sum(APP_JOB, "sum(app_errors_total{JOB})"))
    assert errors and prom.value(errors[0]) >= 1


def test_every_prometheus_and_sql_panel_shows_data(stack, built):
    assert CFG.audit.reader_user == READER  # the role the dashboards' tests create is the provisioned one
    results = _live(built, stack)
    checked = {r.dashboard for r in results}
    assert {uids.FASTAPI, uids.KEYCLOAK, uids.AUDIT} <= checked, checked
    errors = [r for r in results if r.status == ERROR]
    assert errors == [], "\n".join(f"{r.dashboard} / {r.panel}: {r.detail}" for r in errors)
    empty = {(r.dashboard, r.panel) for r in results if r.status == NO_DATA}
    assert empty - NO_DATA_ALLOWED.keys() == set(), "panels without data"
    # the allow-list stays as short as it can be: an entry that now has data must go
    assert NO_DATA_ALLOWED.keys() - empty == set(), "allowed panels that now have data: remove them"


def test_an_idle_keycloak_shows_zero_on_lazy_panels_and_nothing_on_ratios_of_nothing(stack):
    """Before the first login the lazy families do not exist: their rate panels show 0 (``or on() vector(0)``);
    the ratios over no traffic are honestly undefined (no series, or 0/0 = NaN): exactly those two are empty."""
    assert stack.prometheus.query(f'count(keycloak_user_events_total{{job="{IDLE_KEYCLOAK_JOB}"}})') == []
    dashboard = grafana.dashboards(IDLE_CFG)[uids.KEYCLOAK]
    results = {r.panel: r.status for r in check_dashboard(dashboard, stack.runner(), stack.window(), LIVE)}
    assert {p for p, s in results.items() if s != OK} == {"Login failure ratio [A]", "Cache hit ratio [A]"}
    lazy = ("Successful logins by realm [A]", "Failed logins by error and realm [A]", "5xx by URI [A]",
            "Token, refresh and logout events [A]", "Token event errors [A]", "Password validations by outcome [A]")
    assert all(results[p] == OK for p in lazy)


def test_prometheus_took_every_line_of_keycloaks_text_format(stack):
    assert stack.keycloak.accepts and all("text/plain" in a for a in stack.keycloak.accepts)
    samples = sum(1 for line in render(stack.keycloak.scrapes).decode().splitlines() if not line.startswith("#"))
    scraped = stack.prometheus.query(f'scrape_samples_scraped{{job="{KEYCLOAK_JOB}"}}')
    assert [prom.value(s) for s in scraped] == [samples]
    failed = stack.prometheus.query(_sum(KEYCLOAK_JOB, 'sum(rate(keycloak_user_events_total{JOB,error!=""}[10s]))'))
    assert failed and prom.value(failed[0]) > 0  # failed logins, growing


# --- negative: the live checker tells a missing series from a real one ------------------------------------
def _one_panel(*exprs: str) -> dict[str, Any]:
    ds = {"type": str(DsType.PROMETHEUS), "uid": CFG.datasources.prometheus}
    return {"uid": "e2e-negative", "templating": {"list": []}, "panels": [{
        "title": "Probe", "type": "timeseries", "datasource": ds,
        "targets": [{"refId": chr(ord("A") + i), "datasource": ds, "expr": e} for i, e in enumerate(exprs)],
    }]}


def test_a_metric_the_app_does_not_emit_and_a_nan_only_panel_are_no_data(stack):
    real = f'sum(rate(http_requests_total{{job="{APP_JOB}"}}[$__rate_interval]))'
    typo = f'sum(rate(http_request_total{{job="{APP_JOB}"}}[$__rate_interval]))'  # singular: not emitted
    wrong_label = (f'sum(rate(http_requests_total{{job="{APP_JOB}",endpoint="/api/authors/{{id}}"}}'
                   "[$__rate_interval]))")  # the template is {author_id}: the metric exists, this series never
    nothing = f'sum(rate(http_requests_total{{job="{APP_JOB}"}}[$__rate_interval])) * 0 / 0'  # NaN: drawn as nothing
    results = check_dashboard(_one_panel(real, typo, wrong_label, nothing), stack.runner(), stack.window(), LIVE)
    assert [(r.panel, r.status) for r in results] == [
        ("Probe [A]", OK), ("Probe [B]", NO_DATA), ("Probe [C]", NO_DATA), ("Probe [D]", NO_DATA)]
    # the static check catches the unknown name too, but only the live run catches the unknown label value
    catalog = app_catalog.catalog()
    assert promql.check(typo, catalog) and not promql.check(wrong_label, catalog)


# --- Loki: grammar, fields and literal filters against real log lines ---------------------------------------
_STRING = r'"((?:[^"\\]|\\.)*)"'
_LINE_FILTER = re.compile(r"\|=\s*" + _STRING)
_MATCHER = re.compile(r"(?:\||,|\{)\s*(\w+)\s*(=~|!~|!=|=)\s*" + _STRING)
_ALLOY_ONLY = frozenset({"service", "container"})
"""Stream labels Alloy derives from the container, not from the line: not checkable against a line."""


def _loki_targets(dashboards: Mapping[str, Mapping[str, Any]]) -> list[Target]:
    return [t for d in dashboards.values() for t in targets(d) if t.ds_type == DsType.LOKI and not t.is_variable]


def _matches(raw: str, line: Mapping[str, Any], expr: str) -> bool:
    """Whether one log line passes every literal (variable-free) line filter and matcher of ``expr``."""
    if not all(text in raw for text in _LINE_FILTER.findall(expr) if "$" not in text):
        return False
    for name, op, literal in _MATCHER.findall(expr):
        if "$" in literal or name in _ALLOY_ONLY or name in LOKI_SPECIAL_LABELS:
            continue
        value = "" if line.get(name) is None else str(line[name])
        hit = re.fullmatch(literal, value) is not None if "~" in op else value == literal
        if hit == op.startswith("!"):
            return False
    return True


@pytest.fixture(scope="module")
def logged(stack) -> list[tuple[str, dict[str, Any]]]:
    raw = [line for line in stack.app.output().splitlines() if line.startswith("{")]
    return list(zip(raw, stack.app.json_lines(), strict=True))


def test_every_logql_query_parses_and_filters_only_on_fields_real_lines_carry(built, logged):
    require("node and the LogQL grammar", logql.available(), "apt-get install nodejs; npm ci")
    fields = frozenset(key for _, line in logged for key in line)
    loki = _loki_targets(built)
    parsed = logql.parse_batch([t.expr for t in loki])
    problems = {f"{t.dashboard} / {t.label}": logql.check(p, fields) for t, p in zip(loki, parsed, strict=True)}
    assert {k: v for k, v in problems.items() if v} == {}
    filtered = {name for p in parsed for name, after in p.label_filters if after} - LOKI_SPECIAL_LABELS
    shown = {name for p in parsed for name in p.line_format_fields}
    assert filtered and shown, "the check above must not be vacuous"
    assert filtered | shown <= fields


def test_every_loki_panel_has_a_real_line_it_would_show(built, logged):
    missing = [f"{t.dashboard} / {t.label}: {t.expr}" for t in _loki_targets(built)
               if not any(_matches(raw, line, t.expr) for raw, line in logged)]
    assert missing == []
