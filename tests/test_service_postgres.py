"""The real service process on a real PostgreSQL: audit rows for every outcome, and the audit
trail's promises under faults, with exact counts: every answered request keeps its row through
SIGTERM and through a 30 s database outage under load (and the hash chain still verifies after
both); an overflowing queue refuses exactly what its metric counts while requests never wait;
multiprocess counting."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.migrations import upgrade
from fastapi_lookout.audit.chain import Hasher
from fastapi_lookout.audit.engine import create_engine
from fastapi_lookout.audit.verifier import Verification, verify_chain
from tests.support.app_process import AppProcess
from tests.support.traffic import drive, rid

REPO = Path(__file__).resolve().parents[1]

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


NO_RATE_LIMIT = {"RATE_LIMIT_IP_PER_MINUTE": "100000000", "RATE_LIMIT_IP_BURST": "10000000"}


def scrape(app: AppProcess) -> dict[str, float]:
    """Unlabelled samples by name; labelled ones as ``name{k=v,...}``."""
    text = httpx.get(f"{app.base_url}/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def delta(after: dict[str, float], before: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def verify(pg, db: str) -> Verification:
    """What ``scripts/audit.py verify`` reports, as a value."""
    async def run() -> Verification:
        engine = create_engine(pg.url(db))
        try:
            return await verify_chain(engine, Hasher())
        finally:
            await engine.dispose()
    return asyncio.run(run())


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.2)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Load:
    """Threads sending audited requests (401: no database access) until stopped; records what was answered."""

    def __init__(self, app: AppProcess, threads: int = 4, pause: float = 0.0) -> None:
        self.app, self.pause = app, pause
        self.answered: list[str] = []
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        with self.app.client() as client:
            while not self._stop.is_set():
                request_id = rid()
                began = time.perf_counter()
                try:
                    response = client.get("/api/authors", headers={"X-Correlation-ID": request_id})
                except httpx.HTTPError:
                    return
                self.latencies.append(time.perf_counter() - began)
                if response.status_code == 401:
                    self.answered.append(request_id)
                if self.pause:
                    time.sleep(self.pause)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


def test_sigterm_during_load_keeps_exactly_the_answered_requests_rows(postgres_server, postgres_db, tmp_path):
    """SIGTERM with requests in flight: the set of rows is exactly the set of answered requests."""
    # Rows would sit in memory for a minute: only the shutdown flush can write them.
    app = pg_app(postgres_server, postgres_db, tmp_path, AUDIT_BATCH_TIMEOUT_SECONDS="60",
                 AUDIT_BATCH_SIZE="100000", **NO_RATE_LIMIT).start()
    with Load(app) as load:
        wait_for(lambda: len(load.answered) >= 300, 20, "300 answered requests")
        app.stop(signal.SIGTERM)  # the load threads are still sending: requests are in flight
        assert_graceful(app)
    stored = rows(postgres_server, postgres_db)  # also asserts no request id has two rows
    assert len(load.answered) >= 300
    assert set(stored) == set(load.answered)
    result = verify(postgres_server, postgres_db)
    assert result.ok and result.last_seq == len(load.answered), result.summary()


OUTAGE_SECONDS = 30.0
RETRY_MAX_SECONDS = 2.0
QUEUE_MAX = 50_000
ROW_CAP_BYTES = 9_400
"""The writer's documented per-row memory cap with default settings (fastapi_lookout/audit/writer.py)."""


def test_a_30_second_outage_under_load_loses_nothing_and_the_chain_still_verifies(
    postgres_server, postgres_db, tmp_path
):
    app = pg_app(postgres_server, postgres_db, tmp_path, AUDIT_RETRY_MAX_SECONDS=str(RETRY_MAX_SECONDS),
                 AUDIT_QUEUE_MAX_SIZE=str(QUEUE_MAX), AUDIT_VERIFY_INTERVAL_SECONDS="1", **NO_RATE_LIMIT)
    with app:
        with app.client() as client:
            warm = [rid() for _ in range(20)]
            for request_id in warm:
                client.get("/api/authors", headers={"X-Correlation-ID": request_id})
        wait_for(lambda: len(rows(postgres_server, postgres_db)) == len(warm), 10, "the warm-up rows")
        before, rss_before = scrape(app), rss_bytes(app.proc.pid)
        postgres_server.stop()
        try:
            backlog = []
            with Load(app, pause=0.005) as load:
                began = time.monotonic()
                while (elapsed := time.monotonic() - began) < OUTAGE_SECONDS:
                    time.sleep(min(5.0, OUTAGE_SECONDS - elapsed))
                    backlog.append(scrape(app)["audit_queue_size"])
            during, rss_during = scrape(app), rss_bytes(app.proc.pid)
        finally:
            postgres_server.start()
        sent = load.answered
        # The backlog is visible, whole, bounded, and nothing was written or dropped meanwhile.
        assert backlog == sorted(backlog) and backlog[-1] > 0, backlog
        assert during["audit_queue_size"] == len(sent) <= QUEUE_MAX
        assert delta(during, before, "audit_events_written_total") == 0
        assert delta(during, before, "audit_events_dropped_total") == 0
        assert rss_during - rss_before < len(sent) * ROW_CAP_BYTES + 50_000_000, (rss_before, rss_during)
        failures = delta(during, before, "audit_write_failures_total")
        # Retried with backoff (0.1 s doubling, capped at 2 s, jittered down by up to half): not a hot loop.
        assert 5 <= failures <= OUTAGE_SECONDS / (RETRY_MAX_SECONDS / 2) + 10, failures
        assert delta(during, before, "audit_chain_verifications_total{result=error}") >= 1

        wait_for(lambda: len(rows(postgres_server, postgres_db)) == len(warm) + len(sent), 60, "recovery")
        wait_for(lambda: scrape(app)["audit_chain_verified_seq"] == len(warm) + len(sent), 30,
                 "the periodic verifier to catch up")
        after = scrape(app)
    assert_graceful(app)
    assert set(rows(postgres_server, postgres_db)) == set(warm) | set(sent)  # exact: no loss, no duplicate
    assert delta(after, before, "audit_events_enqueued_total") == len(sent)
    assert delta(after, before, "audit_events_written_total") == len(sent)
    assert delta(after, before, "audit_events_dropped_total") == 0
    assert after["audit_queue_size"] == 0 and after["audit_chain_broken"] == 0
    assert after["audit_chain_head_seq"] == len(warm) + len(sent)
    failed = [ln for ln in app.json_lines() if ln["logger"] == "app.audit" and ln["message"] == "audit_write_failed"]
    assert len(failed) == delta(after, before, "audit_write_failures_total")  # each failure is a log line
    assert all(ln["level"] == "error" and ln["action"] == "retry" for ln in failed)
    assert [ln["attempt"] for ln in failed] == list(range(1, len(failed) + 1))  # one streak, counted up
    result = verify(postgres_server, postgres_db)
    assert result.ok and result.last_seq == len(warm) + len(sent), result.summary()


REQUEST_LATENCY_BOUND_SECONDS = 0.5
"""Documented in fastapi_lookout/audit/writer.py: enqueue never waits, whatever the queue or database do."""


def test_queue_overflow_counts_every_refusal_exactly_and_requests_never_wait(postgres_server, postgres_db, tmp_path):
    queue_max, batch = 200, 50
    app = pg_app(postgres_server, postgres_db, tmp_path, AUDIT_QUEUE_MAX_SIZE=str(queue_max),
                 AUDIT_BATCH_SIZE=str(batch), AUDIT_RETRY_MAX_SECONDS="0.5", AUDIT_VERIFY_INTERVAL_SECONDS="0",
                 **NO_RATE_LIMIT)
    with app:
        before = scrape(app)
        postgres_server.stop()
        try:
            with Load(app) as load:
                wait_for(lambda: len(load.answered) >= 3000, 60, "3000 answered requests")
            during = scrape(app)
        finally:
            postgres_server.start()
        wait_for(lambda: scrape(app)["audit_queue_size"] == 0, 30, "the backlog to drain")
        after = scrape(app)
    assert_graceful(app)
    sent, stored = load.answered, rows(postgres_server, postgres_db)
    dropped = delta(after, before, "audit_events_dropped_total")
    assert set(stored) <= set(sent)
    assert dropped == len(sent) - len(stored) > 0  # the metric is exactly the refused enqueues
    assert delta(after, before, "audit_events_enqueued_total") == len(stored)
    assert queue_max <= len(stored) <= queue_max + batch  # the queue, plus the batch being retried
    assert delta(during, before, "audit_events_dropped_total") == dropped  # all refused while it was full
    warnings = [ln for ln in app.json_lines() if ln["message"] == "audit_events_dropped"]
    assert sum(w["dropped"] for w in warnings) == dropped  # and every refusal is in the logs
    assert all(w["level"] == "warning" and set(w["reasons"]) == {"queue_full"} for w in warnings)
    assert len(warnings) < 20  # rate-limited: a flood is a few lines, not thousands
    worst = max(load.latencies)
    assert worst < REQUEST_LATENCY_BOUND_SECONDS, f"a request waited {worst:.3f} s during the overflow"
    assert verify(postgres_server, postgres_db).ok


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

        def written() -> float:  # each worker's writer process reports through its worker
            families = text_string_to_metric_families(httpx.get(f"{app.base_url}/metrics").text)
            return sum(s.value for f in families for s in f.samples if s.name == "audit_events_written_total")

        wait_for(lambda: written() == n, 20, "both workers' writers to report every row")
        pids = {p.name.split("_")[-1] for p in multiproc.glob("counter_*.db")}
    total = sum(
        s.value for f in text_string_to_metric_families(text) for s in f.samples
        if s.name == "http_requests_total" and s.labels.get("endpoint") == "/api/authors"
    )
    assert total == n
    assert len(pids) == 2, f"both workers (and no writer process) must have counter files, saw {pids}"
    enqueued = sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "audit_events_enqueued_total")
    assert enqueued == n  # every 401 is an audit row; each worker wrote its count through to its file


def writer_children(app: AppProcess) -> list[int]:
    """The audit writer processes the service has started (children of any of its threads)."""
    pids = []
    for task in Path(f"/proc/{app.proc.pid}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def test_a_spool_of_another_database_is_kept_reported_and_moved_only_by_the_reviewer(
    postgres_server, postgres_db, tmp_path
):
    """The observed contamination: one spool path (one directory), a second database. Its rows stay out of
    the second database, which reports them (log, metric, /health); the reviewer's replay puts them back
    where they belong and the chain there verifies."""
    spool = tmp_path / "audit-spool.jsonl"
    fast_stop = {"AUDIT_SHUTDOWN_TIMEOUT_SECONDS": "1", "AUDIT_RETRY_MAX_SECONDS": "0.2", **NO_RATE_LIMIT}
    first = pg_app(postgres_server, postgres_db, tmp_path, **fast_stop).start()
    with first.client() as client:
        warm = [rid() for _ in range(5)]
        for request_id in warm:
            client.get("/api/authors", headers={"X-Correlation-ID": request_id})
        wait_for(lambda: len(rows(postgres_server, postgres_db)) == len(warm), 10, "the warm-up rows")
        postgres_server.stop()
        try:
            stranded = [rid() for _ in range(20)]
            for request_id in stranded:
                assert client.get("/api/authors", headers={"X-Correlation-ID": request_id}).status_code == 401
            first.stop()  # the database is down: the rows are spooled, bound to it
        finally:
            postgres_server.start()
    assert_graceful(first)
    assert spool.exists()

    other_db = f"{postgres_db}_other"
    postgres_server.create_database(other_db)
    (tmp_path / "other").mkdir()
    second = AppProcess({"DATABASE_URL": postgres_server.url(other_db), "AUDIT_SPOOL_PATH": str(spool)},
                        workdir=tmp_path / "other")
    with second:
        [report] = second.wait_for_lines(lambda ln: ln.get("message") == "audit_spool_foreign")
        wait_for(lambda: scrape(second).get("audit_spool_foreign_rows") == 20, 10, "the gauge")
        health = httpx.get(f"{second.base_url}/health", timeout=10).json()
    assert health["status"] == "ok" and health["audit_spool_foreign_rows"] == 20
    assert report["rows"] == 20 and f"'{postgres_db}'" in report["spooled_for"]
    assert f"'{other_db}'" in report["database"] and report["level"] == "warning"
    assert rows(postgres_server, other_db) == {}  # nothing of the first database's reached the second
    assert not spool.exists()

    audit = [sys.executable, str(REPO / "scripts" / "audit.py"), "--database-url", postgres_server.url(postgres_db)]
    moved = subprocess.run([*audit, "replay", "--spool", report["path"]], capture_output=True, text=True, timeout=60)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert set(rows(postgres_server, postgres_db)) == set(warm) | set(stranded)
    checked = subprocess.run([*audit, "verify"], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and checked.stdout.startswith("OK: 25 rows verified"), checked.stdout
    assert list(tmp_path.glob("audit-spool.jsonl*")) == []


def test_a_signal_to_the_whole_service_as_it_starts_keeps_every_answered_requests_row(
    postgres_server, postgres_db, tmp_path
):
    """systemd's KillMode=control-group (or Ctrl-C) signals the service and its writer process at once,
    here while the writer may still be importing: it must not die, nor be restarted, nor spool anything."""
    app = AppProcess({"DATABASE_URL": postgres_server.url(postgres_db), **NO_RATE_LIMIT}, workdir=tmp_path,
                     new_session=True).start()
    answered = []
    with app.client() as client:
        for _ in range(10):
            request_id = rid()
            if client.get("/api/authors", headers={"X-Correlation-ID": request_id}).status_code == 401:
                answered.append(request_id)
    children = writer_children(app)
    app.stop(signal.SIGTERM, group=True)
    assert_graceful(app)
    assert len(children) == 1 and len(answered) == 10
    lines = [ln.get("message") for ln in app.json_lines()]
    assert "audit_writer_process_exited" not in lines and "audit_rows_spooled" not in lines
    assert set(rows(postgres_server, postgres_db)) == set(answered)
    assert not (tmp_path / "audit-spool.jsonl").exists()


@pytest.fixture(autouse=True)
def _pg_is_up(postgres_server):
    yield
    if postgres_server.psql("SELECT 1", check=False).returncode != 0:
        postgres_server.start()
