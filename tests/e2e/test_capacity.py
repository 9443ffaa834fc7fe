"""Capacity figures for the README's sizing table, measured on real processes and written to the report
(``build/reports/capacity.{json,md}``, see ``tests/support/capacity.py``):

- series per 100 routes: a generated FastAPI app with 200 templated routes, instrumented with
  ``fastapi_lookout.instrument``, run by uvicorn; /metrics counted before and after touching routes;
- PostgreSQL bytes per audit row: rows shaped like the reference service's (read back from a real run)
  written through ``AuditWriter`` into a real PostgreSQL, ``pg_total_relation_size`` before and after;
- Prometheus memory per series: a real Prometheus (Debian's 2.42) scraping copies of the reference
  service's real exposition, resident memory before and after.

The series per reference instance and the remote-write bytes per sample come from ``test_scale_out.py``.
The assertions are wide bounds: they catch a broken measurement, not a slower machine.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.migrations import upgrade
from fastapi_lookout.audit import AuditEvent, AuditWriter
from fastapi_lookout.audit.engine import create_engine
from fastapi_lookout.audit.schema import user_actions
from tests.support import capacity, process, victoria
from tests.support import prometheus as prom
from tests.support.app_process import AppProcess
from tests.support.binaries import free_port, require
from tests.support.postgres import PostgresServer
from tests.support.traffic import drive

pytestmark = pytest.mark.realserver

ROOT = Path(__file__).resolve().parents[2]
ROUTES = 200
SECONDS_PER_DAY = 86_400


def _series(url: str) -> int:
    text = httpx.get(url, timeout=10).text
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


# --- series per route --------------------------------------------------------------------------------------
GENERATED_APP = '''
import os

from fastapi import FastAPI

from fastapi_lookout import instrument

app = FastAPI()


def _handler(i):
    async def handler(item_id: int) -> dict:
        return {"route": i, "item": item_id}
    return handler


for i in range(int(os.environ["ROUTES"])):
    app.add_api_route(f"/api/r{i}/{{item_id}}", _handler(i), methods=["GET"], name=f"r{i}")
instrument(app, configure_logs=False)
'''


@pytest.fixture(scope="module")
def generated_app() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="routes-app-"))
    (root / "routes_app.py").write_text(GENERATED_APP)
    port = free_port()
    env = {**os.environ, "ROUTES": str(ROUTES), "PYTHONPATH": os.pathsep.join([str(root), str(ROOT)])}
    proc = process.start_ready(
        [sys.executable, "-m", "uvicorn", "routes_app:app", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        f"http://127.0.0.1:{port}/metrics", root / "uvicorn.log", "the generated app", env=env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop(proc)


def test_series_per_100_routes(generated_app):
    """Each templated route a client reaches adds its request counter (per status), duration histogram and
    in-progress gauge; a second status on the same routes adds only counter series."""
    metrics = f"{generated_app}/metrics"

    def touch(routes: range, item: str) -> None:
        with httpx.Client(base_url=generated_app, timeout=10) as client:
            for i in routes:
                client.get(f"/api/r{i}/{item}")

    idle = _series(metrics)
    touch(range(0, 100), "1")
    first_hundred = _series(metrics)
    touch(range(100, 200), "1")
    second_hundred = _series(metrics)
    touch(range(0, 100), "not-a-number")  # 422 on the first 100 routes
    second_status = _series(metrics)
    per_100 = second_hundred - first_hundred
    figures = {
        "routes_in_app": ROUTES,
        "series_before_any_request": idle,
        "series_per_100_routes_one_status": per_100,
        "series_per_100_routes_each_further_status": second_status - second_hundred,
        "series_per_route": per_100 / 100,
    }
    capacity.record("series_per_route", figures)
    assert first_hundred - idle >= per_100  # the first requests also start the process-wide series
    assert 100 * 5 <= per_100 <= 100 * 40, figures
    assert second_status - second_hundred == 100, figures  # one counter series per (route, status)


# --- PostgreSQL bytes per audit row --------------------------------------------------------------------------
ROWS = 20_000


async def _reference_shaped_rows(url: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(sa.select(user_actions).order_by(user_actions.c.id))
            return [dict(r._mapping) for r in result]
    finally:
        await engine.dispose()


async def _write(url: str, shapes: list[dict[str, Any]], rows: int) -> None:
    engine = create_engine(url)
    writer = AuditWriter(engine, queue_max_size=rows + 1, batch_size=1000, batch_timeout_seconds=0.05,
                         retry_max_seconds=1, shutdown_timeout_seconds=60, spool_path=None)
    start = datetime.now(UTC)
    for i in range(rows):
        shape = shapes[i % len(shapes)]
        assert writer.enqueue(AuditEvent(
            timestamp=start + timedelta(milliseconds=i), action_type=shape["action_type"],
            resource=shape["resource"], outcome=shape["outcome"], response_status=shape["response_status"],
            duration_ms=shape["duration_ms"], user_id=shape["user_id"], username=shape["username"],
            user_roles=shape["user_roles"], ip_address=shape["ip_address"], user_agent=shape["user_agent"],
            request_id=uuid.uuid4().hex, request_data=shape["request_data"], error_message=shape["error_message"],
        ))
    await writer.start()
    deadline = time.monotonic() + 120
    while writer.pending:
        assert time.monotonic() < deadline, "the writer did not drain"
        await asyncio.sleep(0.01)
    await writer.stop()
    await engine.dispose()


def _sizes(pg: PostgresServer, db: str) -> dict[str, int]:
    out = pg.psql("SELECT pg_total_relation_size('user_actions'), pg_relation_size('user_actions'), "
                  "pg_indexes_size('user_actions'), count(*) FROM user_actions", db=db).stdout.strip()
    total, heap, indexes, rows = (int(x) for x in out.split("|"))
    return {"total": total, "heap": heap, "indexes": indexes, "rows": rows}


def test_postgresql_bytes_per_audit_row(postgres_server: PostgresServer, tmp_path: Path):
    db = f"cap_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(db)
    url = postgres_server.url(db)
    upgrade(url)
    with AppProcess({"DATABASE_URL": url, "DATABASE_MIGRATE_ON_START": "false"}, workdir=tmp_path) as app:
        drive(app)  # every outcome the service audits; its rows are the shapes written below
        deadline = time.monotonic() + 30
        while not (shapes := asyncio.run(_reference_shaped_rows(url))) or len(shapes) < 40:
            assert time.monotonic() < deadline, "the service's audit rows did not arrive"
            time.sleep(0.2)
    before = _sizes(postgres_server, db)
    asyncio.run(_write(url, shapes, ROWS))
    after = _sizes(postgres_server, db)
    assert after["rows"] - before["rows"] == ROWS
    per_row = {k: round((after[k] - before[k]) / ROWS, 1) for k in ("total", "heap", "indexes")}
    figures = {
        "rows_written": ROWS,
        "row_shapes_from_the_reference_service": len(shapes),
        "bytes_per_row": per_row,
        "rows_per_day_per_audited_request_per_second": SECONDS_PER_DAY,
        "gib_per_day_at_10_audited_requests_per_second": round(10 * SECONDS_PER_DAY * per_row["total"] / 2**30, 2),
        "postgresql": postgres_server.psql("SHOW server_version", db=db).stdout.strip(),
    }
    capacity.record("audit_postgresql", figures)
    assert 200 < per_row["total"] < 3000, figures
    assert per_row["heap"] + per_row["indexes"] <= per_row["total"] + 1


# --- Prometheus memory per series ------------------------------------------------------------------------------
COPIES = 200
_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)")


def _copies(exposition: str, copies: int) -> dict[str, float]:
    """The reference exposition ``copies`` times, each copy's series told apart by a ``copy`` label."""
    base = []
    for line in exposition.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = (match.group(2) or "{}")[1:-1]
            base.append((match.group(1), labels, float(match.group(3))))
    out = {}
    for k in range(copies):
        for name, labels, value in base:
            out[f'{name}{{{labels + "," if labels else ""}copy="{k}"}}'] = value
    return out


def test_prometheus_resident_memory_per_series(service):
    require("Prometheus", prom.binary(), "apt-get install prometheus")
    _, sent = service
    with victoria.StandInExporter() as exporter, prom.PrometheusServer({"copies": [exporter.address]}) as prometheus:
        prometheus.wait_scraped(samples=3)

        def resident() -> tuple[float, float, float]:
            m = victoria.scrape(f"{prometheus.url}/metrics")
            return (m["process_resident_memory_bytes"], m["go_memstats_heap_inuse_bytes"],
                    m["prometheus_tsdb_head_series"])

        rss0, heap0, series0 = resident()
        copies = _copies(sent.scrape, COPIES)
        exporter.put(copies)
        prometheus.wait_for(f"scrape_samples_scraped{{job=\"copies\"}} >= {len(copies)}", timeout=60,
                            what="the copies scraped")
        prometheus.wait_more_scrapes(15, timeout=90)  # a head chunk with samples in every series
        rss1, heap1, series1 = resident()
    added = series1 - series0
    figures = {
        "prometheus": subprocess.run([prom.binary() or "prometheus", "--version"], capture_output=True,
                                     text=True).stdout.splitlines()[0],
        "series_added": added,
        "reference_series_per_copy": len(copies) // COPIES,
        "resident_bytes_per_series": round((rss1 - rss0) / added),
        "heap_inuse_bytes_per_series": round((heap1 - heap0) / added),
        "samples_per_series_at_measurement": 15,
    }
    capacity.record("prometheus_memory", figures)
    assert added >= len(copies) * 0.99
    assert 500 < figures["resident_bytes_per_series"] < 50_000, figures
