"""The log-line contract, read from the real process's stdout."""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from datetime import datetime

import jwt
import orjson
import pytest
from websockets.sync.client import connect

from fastapi_lookout.logging import BASE_FIELDS, LOG_FIELDS

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_every_line_is_json_with_the_declared_fields_only(service):
    app, _ = service
    raw_lines = [line for line in app.output().splitlines() if line.strip()]
    assert raw_lines
    for raw in raw_lines:
        line = orjson.loads(raw)  # every stdout line is one JSON object
        assert set(line) >= BASE_FIELDS, (set(BASE_FIELDS) - set(line), raw)
        assert set(line) <= LOG_FIELDS, (set(line) - LOG_FIELDS, raw)
        assert ISO_UTC.match(line["timestamp"]), line["timestamp"]
        datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
        assert line["level"] in {"debug", "info", "warning", "error", "critical"}


def test_one_access_line_per_request_with_template_and_echoed_id(service):
    app, sent = service
    access = defaultdict(list)
    for line in app.json_lines():
        if line["logger"] == "app.access":
            access[line["request_id"]].append(line)
    for request_id, (label, status) in sent.http.items():
        lines = access.get(request_id, [])
        assert len(lines) == 1, (label, request_id, len(lines))
        line = lines[0]
        assert line["status_code"] == status, label
        assert line["message"] == "http request"
        assert isinstance(line["duration_ms"], float)
        assert not re.search(r"/\d+", line["endpoint"]), line["endpoint"]  # template, never raw ids


def test_correlation_id_echoed_when_well_formed_and_replaced_otherwise(service):
    app, _ = service
    with app.client() as client:
        good = client.get("/health", headers={"X-Correlation-ID": "abc-123.def:9"})
        assert good.headers["x-correlation-id"] == "abc-123.def:9"
        for hostile in ("x" * 65, "bad id with spaces", "inject\"quote", "../../etc"):
            response = client.get("/health", headers={"X-Correlation-ID": hostile})
            assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-correlation-id"]), hostile
        assert re.fullmatch(r"[0-9a-f]{32}", client.get("/health").headers["x-correlation-id"])


def test_secrets_never_reach_the_logs(service):
    app, sent = service
    output = app.output() + (app.workdir / "errors.log").read_text(errors="replace")
    for secret in sent.secrets:
        assert secret not in output
    assert "hunter2" not in output


def test_library_loggers_are_named_and_rendered_as_json(service):
    app, _ = service
    loggers = {line["logger"] for line in app.json_lines()}
    assert "uvicorn.error" in loggers
    assert {"app.access", "app.auth", "app.ws", "app.ratelimit"} <= loggers


def test_no_context_leaks_between_concurrent_requests(service):
    app, _ = service
    tokens = {name: app.token(name, ("get-authors",)) for name in ("leak-a", "leak-b")}
    expected: dict[str, str | None] = {}
    lock = threading.Lock()

    def worker(index: int) -> None:
        with app.client() as client:
            for j in range(15):
                request_id = f"leak-{index}-{j}"
                user = ("leak-a", "leak-b", None)[(index + j) % 3]
                headers = {"X-Correlation-ID": request_id}
                if user:
                    headers["Authorization"] = f"Bearer {tokens[user]}"
                path = "/api/authors?limit=1" if user else "/api/authors"
                client.get(path, headers=headers)
                with lock:
                    expected[request_id] = user

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    subs = {name: jwt.decode(token, options={"verify_signature": False})["sub"] for name, token in tokens.items()}
    lines = app.wait_for_lines(lambda ln: str(ln.get("request_id", "")).startswith("leak-"), count=len(expected))
    seen = defaultdict(list)
    for line in lines:
        seen[line["request_id"]].append(line)
    assert set(seen) == set(expected)
    authenticated_access_lines = 0
    for request_id, user in expected.items():
        own = subs[user] if user else None
        for line in seen[request_id]:
            # Lines written before authentication (e.g. the IP rate limit) have no user yet;
            # a leak is any line carrying someone else's id.
            assert line.get("user_id") in (None, own), (request_id, line)
            if line["logger"] == "app.access" and line["status_code"] == 200:
                assert line["user_id"] == own, (request_id, line)
                authenticated_access_lines += 1
    assert authenticated_access_lines > 0


def test_no_context_leaks_between_websocket_connections(service):
    app, _ = service
    users = ("ws-a", "ws-b")
    tokens = {u: app.token(u, ("get-authors",)) for u in users}
    subs = {u: jwt.decode(t, options={"verify_signature": False})["sub"] for u, t in tokens.items()}
    url = f"ws://127.0.0.1:{app.port}/ws"
    replies: dict[str, str] = {}
    with connect(f"{url}?token={tokens['ws-a']}") as a, connect(f"{url}?token={tokens['ws-b']}") as b:
        for i in range(10):
            for user, sock in (("ws-a", a), ("ws-b", b)):
                sock.send(orjson.dumps({"pkg_id": 1, "req_id": f"{user}-{i}", "data": {"limit": 1}}).decode())
            for user, sock in (("ws-a", a), ("ws-b", b)):
                reply = orjson.loads(sock.recv(timeout=10))
                replies[reply["request_id"]] = user
    lines = app.wait_for_lines(lambda ln: ln.get("message") == "ws message" and ln["request_id"] in replies,
                               count=len(replies))
    assert len(lines) == len(replies)
    for line in lines:
        assert line["user_id"] == subs[replies[line["request_id"]]], line


def test_unique_request_ids_for_requests_without_one(service):
    app, _ = service
    with app.client() as client:
        ids = {client.get("/health").headers["x-correlation-id"] for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize(("logged", "shown"), [
    ('127.0.0.1:5 - "WebSocket /ws?token=abc" [accepted]', '127.0.0.1:5 - "WebSocket /ws?token=[REDACTED]" [accepted]'),
    ("/cb?state=1&access_token=x-y&Password=hunter2;api_key=k",
     "/cb?state=1&access_token=[REDACTED]&Password=[REDACTED];api_key=[REDACTED]"),
    ("/api/authors?author_id=3&limit=5", "/api/authors?author_id=3&limit=5"),
])
def test_secret_query_values_are_redacted_whatever_their_shape(logged, shown):
    from fastapi_lookout.redaction import redact_text

    assert redact_text(logged) == shown
