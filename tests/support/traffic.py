"""Drives the reference service through every outcome the dashboards and audit panels show.

Returns what was sent (status expected per request id) so tests can match
responses, log lines and audit rows by request id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.sync.client import connect

from tests.support.app_process import AppProcess

ALL_ROLES = ("get-authors", "create-author", "delete-author")


@dataclass
class Sent:
    http: dict[str, tuple[str, int]] = field(default_factory=dict)
    """request id -> (label, status received)"""
    ws: dict[str, tuple[str, int]] = field(default_factory=dict)
    """request id of each WebSocket package -> (label, status_code in the reply)"""
    secrets: list[str] = field(default_factory=list)
    """Values that must never appear in logs or audit rows."""
    scrape: str = ""
    """``/metrics`` right after the traffic, for exact counts."""


def rid() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


def drive(app: AppProcess, *, flood: bool = True, websocket: bool = True) -> Sent:
    sent = Sent()
    admin = app.token("alice", ALL_ROLES)
    reader = app.token("bob", ("get-authors",))
    expired = app.token("carol", ALL_ROLES, ttl_seconds=-120)
    sent.secrets += [admin, reader, expired, "hunter2-password"]

    def call(label: str, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        request_id = rid()
        headers = {"X-Correlation-ID": request_id, **kwargs.pop("headers", {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = client.request(method, path, headers=headers, **kwargs)
        sent.http[request_id] = (label, response.status_code)
        return response

    name = f"Author {uuid.uuid4().hex[:8]}"
    with app.client() as client:
        call("list", "GET", "/api/authors", admin)
        created = call("create", "POST", "/api/authors", admin, json={"name": name, "bio": "x"})
        author_id = created.json()["id"]
        call("get", "GET", f"/api/authors/{author_id}", reader)
        call("duplicate", "POST", "/api/authors", admin, json={"name": name})
        call("missing_author", "GET", "/api/authors/999999", admin)
        call("no_token", "GET", "/api/authors")
        call("garbage_token", "GET", "/api/authors", "not-a-jwt")
        call("expired_token", "GET", "/api/authors", expired)
        call("forbidden", "POST", "/api/authors", reader, json={"name": "nope"})
        call("invalid_body", "POST", "/api/authors", admin, json={"name": "", "password": "hunter2-password"})
        call("too_large", "POST", "/api/authors", admin, content=b"x" * (70 * 1024),
             headers={"content-type": "application/json"})
        call("unmatched_api", "GET", "/api/does-not-exist", admin)
        call("method_not_allowed", "PUT", "/api/authors", admin)
        call("delete", "DELETE", f"/api/authors/{author_id}", admin)
        call("health", "GET", "/health")
        call("unmatched", "GET", "/no/such/page")
        if flood:
            flooder = app.token("mallory", ALL_ROLES)
            sent.secrets.append(flooder)
            for _ in range(30):
                call("flood", "GET", "/api/authors?limit=1", flooder)

    if websocket:
        url = f"ws://127.0.0.1:{app.port}/ws"
        with connect(f"{url}?token={admin}") as ws:
            frames: list[tuple[str, Any]] = [
                ("ws_list", {"pkg_id": 1, "req_id": "r1", "data": {}}),
                ("ws_create", {"pkg_id": 3, "req_id": "r2", "data": {"name": f"WS {uuid.uuid4().hex[:8]}"}}),
                ("ws_unknown_pkg", {"pkg_id": 99, "req_id": "r3", "data": {}}),
                ("ws_malformed", "this is not json"),
                ("ws_invalid", {"pkg_id": 2, "req_id": "r4", "data": {"author_id": "x"}}),
            ]
            for label, frame in frames:
                ws.send(frame if isinstance(frame, str) else orjson.dumps(frame).decode())
                reply = orjson.loads(ws.recv(timeout=10))
                sent.ws[reply["request_id"]] = (label, reply["status_code"])
        with connect(f"{url}?token={reader}") as ws:
            ws.send(orjson.dumps({"pkg_id": 3, "req_id": "r5", "data": {"name": "denied"}}).decode())
            reply = orjson.loads(ws.recv(timeout=10))
            sent.ws[reply["request_id"]] = ("ws_forbidden", reply["status_code"])
        with connect(f"{url}?token=bad") as ws:  # accepted, told why, closed with 4401
            orjson.loads(ws.recv(timeout=10))
    return sent
