"""The real service process on a real PostgreSQL: audit rows for every outcome,
flush on SIGTERM, survival of a database outage, multiprocess counting."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.migrations import upgrade
from tests.support.app_process import AppProcess
from tests.support.traffic import drive, rid

EXPECTED_OUTCOME = {
    200: "success", 201: "success", 204: "success",
    401: "permission_denied", 403: "permission_denied",
}


def outcome(status: int) -> str:
    return EXPECTED_OUTCOME.get(status, "error")


def rows(pg, db: str, where: str = "true") -> dict[str, tuple[str, int, str, str]]:
    out = pg.psql(
        "SELECT request_id, outcome, response_status, coalesce(username, ''), action_type"
        f" FROM user_actions WHERE {where}", db=db
    ).stdout
    result = {}
    for line in out.splitlines():
        request_id, outcome_, status, username, action = line.split("|")
        assert request_id not in result, f"duplicate row for {request_id}"
        result[request_id] = (outcome_, int(status), username, action)
    return result


def assert_graceful(app: AppProcess) -> None:
    """uvicorn re-raises SIGTERM after a graceful shutdown, so the exit status is -15 either way:
    the lifespan's last line proves the shutdown (and the audit flush in it) ran to the end."""
    assert app.proc.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in app.output()


def pg_app(pg, db: str, tmp_path: Path, **env: str) -> AppProcess:
    return AppProcess({"DATABASE_URL": pg.url(db), **env}, workdir=tmp_path)


def test_every_api_request_and_ws_message_has_one_row_with_its_outcome(postgres_server, postgres_db, tmp_path):
    with pg_app(postgres_server, postgres_db, tmp_path) as app:
        sent = drive(app)
    assert_graceful(app)
    stored = rows(postgres_server, postgres_db)
    for request_id, (label, status) in sent.http.items():
        if label in ("health", "unmatched"):  # outside /api: not audited
            assert request_id not in stored
            continue
        assert request_id in stored, label
        assert stored[request_id][:2] == (outcome(status), status), label
    for request_id, (label, status) in sent.ws.items():
        assert stored[request_id][:2] == (outcome(status), status), label
        assert stored[request_id][3].startswith("ws."), label
    statuses = {s for _, s in sent.http.values()} | {s for _, s in sent.ws.values()}
    assert {200, 201, 204, 401, 403, 404, 409, 413, 422, 429} <= statuses
    by_label = {label: stored[r] for r, (label, _) in sent.http.items() if r in stored}
    assert by_label["forbidden"][2] == "bob" and by_label["forbidden"][0] == "permission_denied"
    assert by_label["create"][3] == "create_author"
    assert by_label["unmatched_api"][3] == "unmatched"
    data = postgres_server.psql("SELECT request_data::text FROM user_actions", db=postgres_db).stdout
    for secret in sent.secrets:
        assert secret not in data
    assert "hunter2" not in data


def test_sigterm_flushes_every_acknowledged_row(postgres_server, postgres_db, tmp_path):
    # Rows would sit in memory for a minute: only the shutdown flush can write them.
    app = pg_app(postgres_server, postgres_db, tmp_path,
                 AUDIT_BATCH_TIMEOUT_SECONDS="60", AUDIT_BATCH_SIZE="100000").start()
    answered: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with app.client() as client:
            while not stop.is_set():
                request_id = rid()
                try:
                    response = client.get("/api/authors", headers={"X-Correlation-ID": request_id})
                except httpx.HTTPError:
                    return
                if response.status_code == 401:
                    answered.append(request_id)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(answered) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    app.stop(signal.SIGTERM)
    assert_graceful(app)
    stop.set()
    for t in threads:
        t.join()
    stored = rows(postgres_server, postgres_db)
    assert len(answered) >= 200
    missing = [r for r in answered if r not in stored]
    assert missing == []


def test_database_outage_keeps_rows_and_writes_them_after_recovery(postgres_server, postgres_db, tmp_path):
    with pg_app(postgres_server, postgres_db, tmp_path, AUDIT_RETRY_MAX_SECONDS="1") as app:
        sent: list[str] = []
        postgres_server.stop()
        try:
            with app.client() as client:
                for _ in range(25):
                    request_id = rid()
                    assert client.get("/api/authors", headers={"X-Correlation-ID": request_id}).status_code == 401
                    sent.append(request_id)
                time.sleep(1.5)  # let the writer fail at least once
                text = client.get("/metrics").text
        finally:
            postgres_server.start()
        samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples["audit_write_failures_total"] >= 1
        assert samples["audit_queue_size"] >= 1  # the backlog is visible while the database is down
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(rows(postgres_server, postgres_db)) < len(sent):
            time.sleep(0.2)
        assert sorted(rows(postgres_server, postgres_db)) == sorted(sent)
        failures = [ln for ln in app.json_lines() if ln["logger"] == "app.audit" and ln["level"] == "error"]
        assert failures, "the outage must be visible in the logs"


def test_two_workers_add_up_on_one_scrape(postgres_server, postgres_db, tmp_path):
    upgrade(postgres_server.url(postgres_db))
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(multiproc), "DATABASE_MIGRATE_ON_START": "false",
           "RATE_LIMIT_IP_PER_MINUTE": "100000", "RATE_LIMIT_IP_BURST": "100000"}
    app = AppProcess({"DATABASE_URL": postgres_server.url(postgres_db), **env}, workers=2, workdir=tmp_path)
    with app:
        n = 300
        with httpx.Client(base_url=app.base_url, timeout=10) as client:  # new connections spread over workers
            for _ in range(n):
                assert client.get("/api/authors", headers={"Connection": "close"}).status_code == 401
        text = httpx.get(f"{app.base_url}/metrics").text
        pids = {p.name.split("_")[-1] for p in multiproc.glob("counter_*.db")}
    total = sum(
        s.value for f in text_string_to_metric_families(text) for s in f.samples
        if s.name == "http_requests_total" and s.labels.get("endpoint") == "/api/authors"
    )
    assert total == n
    assert len(pids) == 2, f"both workers must have served requests, saw {pids}"


@pytest.fixture(autouse=True)
def _pg_is_up(postgres_server):
    yield
    if postgres_server.psql("SELECT 1", check=False).returncode != 0:
        postgres_server.start()
