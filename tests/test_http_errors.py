"""Day-one edges of the real service process: one problem-details shape for every error status,
limits decided before work (the body limit whatever the framing, authentication before the body
is read, /metrics read-only), rate-limit headers of the window that refused, UTC timestamps."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.app_process import AppProcess
from tests.support.binaries import free_port
from tests.support.problems import assert_problem

MAX_BODY = 2000
ALL_ROLES = ("get-authors", "create-author", "delete-author")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    env = {"MAX_BODY_BYTES": str(MAX_BODY), "RATE_LIMIT_BURST": "5", "RATE_LIMIT_PER_MINUTE": "1000"}
    with AppProcess(env, workdir=tmp_path_factory.mktemp("http-errors")) as service:
        yield service


def bearer(app: AppProcess, *roles: str, username: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {app.token(username, roles or ALL_ROLES)}"}


def chunks(total: int, size: int = 500) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


def raw_exchange(port: int, head: bytes, body: bytes = b"", timeout: float = 10.0) -> bytes:
    """Send ``head`` and ``body`` on a fresh connection, never finishing a chunked body; the answer's bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer


def problem_of(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower(), head
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


# --- one shape --------------------------------------------------------------------------------
CASES: list[tuple[str, int, str, dict[str, Any]]] = [
    ("malformed JSON", 400, "malformed_json",
     {"method": "POST", "url": "/api/authors", "content": b"{nope", "headers": {"content-type": "application/json"}}),
    ("two Authorization headers", 400, "duplicate_authorization",
     {"method": "GET", "url": "/api/authors",
      "headers": [("authorization", "Bearer a"), ("authorization", "Bearer b")]}),
    ("no token", 401, "missing", {"method": "GET", "url": "/api/authors", "token": False}),
    ("garbage token", 401, "malformed",
     {"method": "GET", "url": "/api/authors", "headers": {"authorization": "Bearer not-a-jwt"}}),
    ("missing role", 403, "forbidden", {"method": "DELETE", "url": "/api/authors/1", "roles": ("get-authors",)}),
    ("missing author", 404, "not_found", {"method": "GET", "url": "/api/authors/2147483647"}),
    ("unknown route", 404, "not_found", {"method": "GET", "url": "/no/such/page"}),
    ("method of no route", 405, "method_not_allowed", {"method": "PUT", "url": "/api/authors"}),
    ("POST /metrics", 405, "method_not_allowed", {"method": "POST", "url": "/metrics"}),
    ("duplicate name", 409, "conflict", {"method": "POST", "url": "/api/authors", "json": {"name": "Taken"}}),
    ("declared body over the limit", 413, "payload_too_large",
     {"method": "POST", "url": "/api/authors", "content": b"x" * (MAX_BODY + 1),
      "headers": {"content-type": "application/json"}}),
    ("chunked body over the limit", 413, "payload_too_large",
     {"method": "POST", "url": "/api/authors", "content": "chunks", "headers": {"content-type": "application/json"}}),
    ("not JSON", 415, "unsupported_media_type",
     {"method": "POST", "url": "/api/authors", "content": b"name=x", "headers": {"content-type": "text/plain"}}),
    ("query out of range", 422, "validation_failed", {"method": "GET", "url": "/api/authors?limit=0"}),
    ("invalid body", 422, "validation_failed", {"method": "POST", "url": "/api/authors", "json": {"name": ""}}),
]


@pytest.mark.parametrize(("label", "status", "reason", "sent"), CASES, ids=[c[0] for c in CASES])
def test_every_error_status_answers_one_problem_shape(
    app: AppProcess, label: str, status: int, reason: str, sent: dict[str, Any]
) -> None:
    request = dict(sent)
    roles = request.pop("roles", ALL_ROLES)
    headers = request.pop("headers", {})
    if request.pop("token", True) and not any(k.lower() == "authorization" for k, *_ in
                                              (headers.items() if isinstance(headers, dict) else headers)):
        headers = {**bearer(app, *roles, username=label), **headers}  # a user each: no burst between cases
    if request.get("content") == "chunks":
        request["content"] = chunks(MAX_BODY * 4)
    with app.client() as client:
        if status == 409:
            client.post("/api/authors", json={"name": "Taken"}, headers=bearer(app))
        response = client.request(headers=headers, **request)
    body = assert_problem(response, status, reason)
    assert body["title"] and body["detail"] and body["type"] == "about:blank"
    if status == 405:
        assert response.headers["allow"] == ("GET, HEAD" if request["url"] == "/metrics" else "GET, POST")
    if status == 422:
        assert body["errors"] and all(set(e) == {"loc", "msg", "type"} for e in body["errors"])


def test_a_burst_refusal_is_a_problem_reporting_the_burst_limit(app: AppProcess) -> None:
    headers = bearer(app, "get-authors", username="burster")
    with app.client() as client:
        responses = [client.get("/api/authors?limit=1", headers=headers) for _ in range(8)]
    [refused, *_] = [r for r in responses if r.status_code == 429]
    body = assert_problem(refused, 429, "rate_limited")
    assert body["limit_type"] == "user" and body["retry_after"] == 1
    # the per-minute budget (1000) is untouched: the burst (5 per second) is what refused
    assert (refused.headers["x-ratelimit-limit"], refused.headers["x-ratelimit-window"]) == ("5", "1")
    assert refused.headers["x-ratelimit-remaining"] == "0" and refused.headers["retry-after"] == "1"


def test_websocket_error_replies_carry_the_problem_fields(app: AppProcess) -> None:
    from websockets.sync.client import connect

    from tests.support.problems import check_problem

    with connect(f"ws://127.0.0.1:{app.port}/ws?token={app.token('wsuser', ('get-authors',))}") as ws:
        for frame, status, reason in [("not json", 400, "malformed"),
                                      (orjson.dumps({"pkg_id": 99, "req_id": "r"}), 404, "unknown_package"),
                                      (orjson.dumps({"pkg_id": 3, "req_id": "r", "data": {"name": "x"}}), 403,
                                       "forbidden")]:
            ws.send(frame if isinstance(frame, str) else frame.decode())
            reply = orjson.loads(ws.recv(timeout=10))
            assert reply["status_code"] == status
            assert check_problem(reply["error"], status, reason)["request_id"] == reply["request_id"]
    with connect(f"ws://127.0.0.1:{app.port}/ws?token=expired") as ws:
        check_problem(orjson.loads(ws.recv(timeout=10))["error"], 401, "malformed")


# --- limits before work ------------------------------------------------------------------------
CHUNKED_HEAD = (b"POST /api/authors HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n")


def test_a_chunked_body_over_the_limit_is_413_as_soon_as_it_passes_it(app: AppProcess) -> None:
    """The body never ends: the answer comes after MAX_BODY bytes, not after buffering all of it."""
    token = app.token("alice", ALL_ROLES)
    chunk = b"%x\r\n%s\r\n" % (MAX_BODY + 1, b"x" * (MAX_BODY + 1))
    status, body = problem_of(raw_exchange(app.port, CHUNKED_HEAD + f"Authorization: Bearer {token}\r\n\r\n".encode(),
                                           chunk))
    assert (status, body["reason"]) == (413, "payload_too_large")


def test_without_a_token_a_chunked_body_is_refused_401_before_it_is_read(app: AppProcess) -> None:
    chunk = b"%x\r\n%s\r\n" % (MAX_BODY + 1, b"x" * (MAX_BODY + 1))
    status, body = problem_of(raw_exchange(app.port, CHUNKED_HEAD + b"\r\n", chunk))
    assert (status, body["reason"]) == (401, "missing")
    status, body = problem_of(raw_exchange(app.port, CHUNKED_HEAD + b"\r\n", b"5\r\n{nope\r\n"))  # not even read
    assert (status, body["reason"]) == (401, "missing")


def test_metrics_answers_get_and_head_only(app: AppProcess) -> None:
    with app.client() as client:
        assert client.get("/metrics").status_code == 200
        head = client.head("/metrics")
        assert head.status_code == 200 and head.content == b""
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            refused = client.request(method, "/metrics")
            assert_problem(refused, 405, "method_not_allowed")
            assert refused.headers["allow"] == "GET, HEAD"


def test_created_at_is_utc_with_its_offset(app: AppProcess) -> None:
    with app.client() as client:
        created = client.post("/api/authors", json={"name": "Clock"}, headers=bearer(app, username="clock")).json()
    assert created["created_at"].endswith("+00:00")


# --- 500 and 503 -------------------------------------------------------------------------------
def test_a_database_failure_is_a_500_problem_without_sql_in_the_answer_or_the_audit_row(tmp_path: Path) -> None:
    with AppProcess(workdir=tmp_path) as app:
        token = bearer(app)
        with sqlite3.connect(tmp_path / "app.db") as db:
            db.execute("DROP TABLE authors")
        with app.client() as client:
            response = client.get("/api/authors?limit=7", headers=token)
            body = assert_problem(response, 500, "internal_error")
            assert "SELECT" not in response.text and "authors" not in body["detail"]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with sqlite3.connect(tmp_path / "app.db") as db:
                    row = db.execute("SELECT error_message FROM user_actions WHERE request_id = ?",
                                     (body["request_id"],)).fetchone()
                if row:
                    break
                time.sleep(0.1)
        assert row == ("internal_error: OperationalError",)
        assert "SELECT" in app.output()  # the log line keeps the traceback for whoever debugs it


def test_unreachable_keycloak_is_a_503_problem(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/certs"
    env = {"AUTH_JWKS_URL": dead, "AUTH_ISSUER": "http://kc"}
    with AppProcess(env, workdir=tmp_path) as app, app.client() as client:
        assert_problem(client.get("/api/authors", headers=bearer(app)), 503, "jwks_unavailable")


def test_an_unreachable_database_is_a_503_health_problem(postgres_server, postgres_db: str, tmp_path: Path) -> None:
    with AppProcess({"DATABASE_URL": postgres_server.url(postgres_db)}, workdir=tmp_path) as app:
        postgres_server.psql(f'ALTER DATABASE "{postgres_db}" WITH ALLOW_CONNECTIONS false')
        postgres_server.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{postgres_db}'")
        with app.client() as client:
            health = client.get("/health")
        postgres_server.psql(f'ALTER DATABASE "{postgres_db}" WITH ALLOW_CONNECTIONS true')
    assert_problem(health, 503, "database_unavailable")


def test_httpx_sees_problem_content_type_as_json(app: AppProcess) -> None:
    """Clients that only know JSON still parse it (``+json`` suffix)."""
    response = httpx.get(f"{app.base_url}/nowhere")
    assert response.headers["content-type"].endswith("+json") and response.json()["status"] == 404


def test_the_audit_row_keeps_the_problems_detail_as_its_error_message(app: AppProcess) -> None:
    with app.client() as client:
        unknown = assert_problem(client.get("/api/nowhere", headers=bearer(app, username="audited")), 404)
        invalid = assert_problem(client.get("/api/authors?limit=0", headers=bearer(app, username="audited")), 422)
    expected = {unknown["request_id"]: "Not Found", invalid["request_id"]: invalid["detail"]}
    deadline, found = time.monotonic() + 10, {}
    while len(found) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        with sqlite3.connect(app.workdir / "app.db") as db:
            found = dict(db.execute("SELECT request_id, error_message FROM user_actions WHERE request_id IN (?, ?)",
                                    tuple(expected)).fetchall())
    assert found == expected and invalid["detail"].startswith("query.limit: ")
