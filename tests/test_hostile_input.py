"""Hostile input against the real service process (``python -m app.serve``): each probe that
schemathesis or a person found, as a test. Integers and strings bounded at the edge, no database
text in answers or audit rows, limits on every byte of the request head, WebSocket frames that all
count, sockets that do not outlive their token, secrets redacted from every logged URL."""

from __future__ import annotations

import contextlib
import select
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.app_process import AppProcess
from tests.support.problems import assert_problem, check_problem

ALL_ROLES = ("get-authors", "create-author", "delete-author")
INT64_OVERFLOW = "9223372036854775808"


def bearer(app: AppProcess, username: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {app.token(username, ALL_ROLES)}"}


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def send_until_answered(port: int, head: bytes, filler_bytes: int, chunk: int = 64 * 1024) -> tuple[bytes, int]:
    """Send ``head`` then up to ``filler_bytes`` more of one header's value; stop when the server answers.
    Returns the answer and how many bytes were sent."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        block = b"a" * chunk
        try:
            while sent < filler_bytes:
                if select.select([sock], [], [], 0)[0]:
                    break  # answered
                sock.sendall(block)
                sent += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
    return answer, sent


def status_and_problem(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower(), answer[:300]
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    env = {"SERVER_HEADER_TIMEOUT_SECONDS": "1.5", "SERVER_KEEPALIVE_TIMEOUT_SECONDS": "1"}
    with AppProcess(env, workdir=tmp_path_factory.mktemp("hostile")) as service:
        yield service


def audit_errors(db: Path, request_id: str, timeout: float = 10.0) -> tuple[int, str | None]:
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT response_status, error_message FROM user_actions WHERE request_id = ?",
                               (request_id,)).fetchone()
        if row or time.monotonic() > deadline:
            assert row, f"no audit row for {request_id}"
            return row
        time.sleep(0.1)


# --- integers and strings at the edge ----------------------------------------------------------
@pytest.mark.parametrize(("path", "field"), [
    (f"/api/authors?offset={INT64_OVERFLOW}", "offset"),
    ("/api/authors?offset=2147483648", "offset"),
    (f"/api/authors?limit={INT64_OVERFLOW}", "limit"),
    (f"/api/authors/{INT64_OVERFLOW}", "author_id"),
    ("/api/authors/2147483648", "author_id"),
])
def test_integers_past_the_databases_range_are_422_naming_the_field(app: AppProcess, path: str, field: str) -> None:
    with app.client() as client:
        response = client.get(path, headers=bearer(app, f"ints-{field}"))
    body = assert_problem(response, 422, "validation_failed")
    assert [e["loc"][-1] for e in body["errors"]] == [field]
    status, error = audit_errors(app.workdir / "app.db", body["request_id"])
    assert status == 422 and "SELECT" not in (error or "") and "OverflowError" not in (error or "")


def test_nul_in_text_is_422_naming_the_field_over_http_and_websocket(app: AppProcess) -> None:
    with app.client() as client:
        for body, field in (({"name": "Ada\x00"}, "name"), ({"name": "Ada", "bio": "a\x00b"}, "bio")):
            problem = assert_problem(client.post("/api/authors", json=body, headers=bearer(app, "nul")), 422)
            assert [e["loc"] for e in problem["errors"]] == [["body", field]]
    with connect(f"ws://127.0.0.1:{app.port}/ws?token={app.token('nul-ws', ALL_ROLES)}") as ws:
        ws.send(orjson.dumps({"pkg_id": 3, "req_id": "n", "data": {"name": "Ada\x00"}}).decode())
        reply = orjson.loads(ws.recv(timeout=10))
    assert reply["status_code"] == 422 and "NUL" in check_problem(reply["error"], 422)["detail"]


def test_websocket_ids_past_the_databases_range_are_422(app: AppProcess) -> None:
    with connect(f"ws://127.0.0.1:{app.port}/ws?token={app.token('ws-ids', ALL_ROLES)}") as ws:
        for author_id in (2**31, 2**63 - 1, True):
            ws.send(orjson.dumps({"pkg_id": 2, "req_id": "i", "data": {"author_id": author_id}}).decode())
            reply = orjson.loads(ws.recv(timeout=10))
            assert reply["status_code"] == 422, reply


def test_name_lengths_are_checked_as_sent(app: AppProcess) -> None:
    with app.client() as client:
        assert client.post("/api/authors", json={"name": "\f"}, headers=bearer(app, "len")).status_code == 201
        too_long = client.post("/api/authors", json={"name": " " + "x" * 200}, headers=bearer(app, "len"))
    assert_problem(too_long, 422, "validation_failed")


def test_a_405_allows_every_method_of_the_path(app: AppProcess) -> None:
    with app.client() as client:
        for path, allowed in (("/api/authors", "GET, POST"), ("/api/authors/1", "DELETE, GET")):
            response = client.patch(path, headers=bearer(app, "allow"))
            assert_problem(response, 405, "method_not_allowed")
            assert response.headers["allow"] == allowed


def test_the_openapi_documents_every_status_with_the_problem_schema(app: AppProcess) -> None:
    with app.client() as client:
        spec = client.get("/openapi.json").json()
    problem_ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    common = {"400", "401", "403", "413", "414", "422", "429", "431", "500", "503"}
    expected = {("/api/authors", "get"): common | {"200"}, ("/api/authors", "post"): common | {"201", "409", "415"},
                ("/api/authors/{author_id}", "get"): common | {"200", "404"},
                ("/api/authors/{author_id}", "delete"): common | {"204", "404"},
                ("/health", "get"): {"200", "414", "431", "500", "503"}}
    for (path, method), statuses in expected.items():
        responses = spec["paths"][path][method]["responses"]
        assert set(responses) == statuses, (path, method)
        assert all(responses[s]["content"] == problem_ref for s in statuses if int(s) >= 400)


# --- database text never leaves ----------------------------------------------------------------
def test_a_database_error_is_stored_as_a_classified_reason(tmp_path: Path) -> None:
    with AppProcess(workdir=tmp_path) as app, app.client() as client:
        with sqlite3.connect(tmp_path / "app.db") as db:
            db.execute("DROP TABLE authors")
        body = assert_problem(client.get("/api/authors?offset=5", headers=bearer(app)), 500, "internal_error")
        assert audit_errors(tmp_path / "app.db", body["request_id"]) == (500, "internal_error: OperationalError")


# --- every byte of the request head ------------------------------------------------------------
def test_a_64_mib_header_is_431_before_the_server_reads_it(app: AppProcess) -> None:
    before = rss_bytes(app.proc.pid)
    answer, sent = send_until_answered(app.port, b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: ", 64 * 1024 * 1024)
    status, problem = status_and_problem(answer)
    assert (status, problem["reason"]) == (431, "headers_too_large")
    assert sent < 8 * 1024 * 1024, f"{sent:,} bytes went out before the answer"
    assert rss_bytes(app.proc.pid) - before < 8 * 1024 * 1024  # was +205 MB for 200 MiB


def test_a_60_kb_path_is_414_and_never_logged(app: AppProcess) -> None:
    path = "/api/authors/" + "9" * 60_000
    answer, _ = send_until_answered(app.port, f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode(), 0)
    status, problem = status_and_problem(answer)
    assert (status, problem["reason"]) == (414, "uri_too_long")
    time.sleep(0.2)
    assert "9" * 10_000 not in app.output()
    [line] = app.wait_for_lines(lambda ln: ln.get("message") == "request refused by the server"
                                and ln.get("reason") == "uri_too_long")
    assert line["status_code"] == 414 and line["level"] == "warning"


def test_a_head_sent_a_byte_at_a_time_is_cut_off_with_408(app: AppProcess) -> None:
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        try:
            for byte in b"X-Slow: " + b"a" * 100:
                sock.sendall(bytes([byte]))  # each byte keeps a naive idle timer from firing
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = sock.recv(65536)
    status, problem = status_and_problem(answer)
    assert (status, problem["reason"]) == (408, "request_timeout")
    assert 1.4 < time.monotonic() - start < 5


def test_idle_and_silent_connections_are_closed(app: AppProcess) -> None:
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as silent:
        start = time.monotonic()
        assert silent.recv(100) == b""  # never sent a byte: closed after the header timeout
        assert 1.4 < time.monotonic() - start < 5
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as idle:
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}"):  # the whole response: head and JSON body
            answer += idle.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        assert idle.recv(100) == b""  # kept alive, then closed after SERVER_KEEPALIVE_TIMEOUT_SECONDS
        assert 0.9 < time.monotonic() - start < 4


def test_connections_past_the_maximum_are_503(tmp_path: Path) -> None:
    with AppProcess({"SERVER_MAX_CONNECTIONS": "3"}, workdir=tmp_path) as app:
        held = [socket.create_connection(("127.0.0.1", app.port), timeout=10) for _ in range(3)]
        try:
            time.sleep(0.2)
            answer, _ = send_until_answered(app.port, b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n", 0)
            status, problem = status_and_problem(answer)
            assert (status, problem["reason"]) == (503, "too_many_connections")
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        with app.client() as client:
            assert client.get("/health").status_code == 200  # closed ones free their slots


# --- WebSocket ---------------------------------------------------------------------------------
def test_300_malformed_frames_close_the_socket_after_a_bounded_number(tmp_path: Path) -> None:
    env = {"WS_MESSAGES_PER_MINUTE": "60", "WS_MAX_REFUSED_FRAMES": "10"}
    with AppProcess(env, workdir=tmp_path) as app:
        url = f"ws://127.0.0.1:{app.port}/ws?token={app.token('flooder', ALL_ROLES)}"
        replies: list[dict[str, Any]] = []
        with connect(url) as ws:
            with contextlib.suppress(ConnectionClosed):  # the close may come while frames are still going out
                for i in range(300):
                    ws.send("{not json" if i % 2 else orjson.dumps({"pkg_id": 99, "req_id": f"r{i}"}).decode())
            with pytest.raises(ConnectionClosed) as closed:
                while True:  # the replies that came before the close, then the close
                    replies.append(orjson.loads(ws.recv(timeout=10)))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert len(replies) == 10 and {r["status_code"] for r in replies} == {400, 404}
        deadline, rows = time.monotonic() + 10, 0
        while rows < 10 and time.monotonic() < deadline:  # the audit writer's batches
            time.sleep(0.2)
            with sqlite3.connect(tmp_path / "app.db") as db:
                [(rows,)] = db.execute("SELECT count(*) FROM user_actions WHERE resource LIKE 'WS /ws%'").fetchall()
        time.sleep(0.5)  # nothing more comes
        with sqlite3.connect(tmp_path / "app.db") as db:
            [(rows,)] = db.execute("SELECT count(*) FROM user_actions WHERE resource LIKE 'WS /ws%'").fetchall()
        assert rows == 10
        assert len([ln for ln in app.json_lines() if ln.get("message") == "ws message"]) == 10


def test_frames_count_against_the_limit_before_they_are_parsed(tmp_path: Path) -> None:
    env = {"WS_MESSAGES_PER_MINUTE": "5", "WS_MAX_REFUSED_FRAMES": "100"}
    with AppProcess(env, workdir=tmp_path) as app, \
            connect(f"ws://127.0.0.1:{app.port}/ws?token={app.token('counted', ALL_ROLES)}") as ws:
        statuses = []
        for _ in range(7):
            ws.send("{not json")
            statuses.append(orjson.loads(ws.recv(timeout=10))["status_code"])
    assert statuses == [400] * 5 + [429] * 2


def test_a_socket_is_closed_when_its_token_expires(tmp_path: Path) -> None:
    with AppProcess({"AUTH_LEEWAY_SECONDS": "0"}, workdir=tmp_path) as app:
        token = app.token("brief", ALL_ROLES, ttl_seconds=2)
        with connect(f"ws://127.0.0.1:{app.port}/ws?token={token}") as ws:
            ws.send(orjson.dumps({"pkg_id": 1, "req_id": "before", "data": {"limit": 1}}).decode())
            assert orjson.loads(ws.recv(timeout=10))["status_code"] == 200
            start = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                notice = orjson.loads(ws.recv(timeout=10))  # idle: no message needed to notice
                check_problem(notice["error"], 401, "expired")
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert time.monotonic() - start < 4


def test_frames_are_limited_in_bytes_while_received(app: AppProcess) -> None:
    """10,000 emoji are 40 kB, over the 16 KiB limit though only 10,000 characters; the server closes
    with 1009 while receiving, whatever the frame's size, instead of buffering it for a 413."""
    url = f"ws://127.0.0.1:{app.port}/ws?token={app.token('bytes', ALL_ROLES)}"
    for frame in ("\U0001f600" * 10_000, "x" * (8 * 1024 * 1024)):
        with connect(url, max_size=None) as ws:
            ws.send(frame)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


# --- secrets in logged URLs --------------------------------------------------------------------
def test_a_non_jwt_token_is_redacted_from_every_logged_url(app: AppProcess) -> None:
    secret = "abc-not-a-jwt-51"
    with connect(f"ws://127.0.0.1:{app.port}/ws?token={secret}&password=pw-{secret}") as ws:
        ws.recv(timeout=10)  # why it was refused, then the close
    lines = app.wait_for_lines(lambda ln: "WebSocket /ws?token=" in ln.get("message", ""))
    assert lines and all("token=[REDACTED]" in ln["message"] for ln in lines)
    assert secret not in app.output()
