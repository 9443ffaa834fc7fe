"""WebSocket limits and frame handling against the real process."""

from __future__ import annotations

import httpx
import orjson
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.app_process import AppProcess


def metric(app: AppProcess, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{app.base_url}/metrics").text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_connection_and_message_limits(tmp_path):
    env = {"WS_MAX_CONNECTIONS_PER_USER": "2", "WS_MESSAGES_PER_MINUTE": "3", "WS_MAX_MESSAGE_BYTES": "200"}
    with AppProcess(env, workdir=tmp_path) as app:
        token = app.token("wsuser", ("get-authors",))
        url = f"ws://127.0.0.1:{app.port}/ws?token={token}"
        with connect(url) as first, connect(url):
            with connect(url) as third:
                reply = orjson.loads(third.recv(timeout=10))
                assert reply["error"]["reason"] == "too_many_connections"
                try:
                    third.recv(timeout=10)
                    raise AssertionError("the third connection must be closed")
                except ConnectionClosed as closed:
                    assert closed.rcvd.code == 4429
            statuses = []
            for i in range(4):
                first.send(orjson.dumps({"pkg_id": 1, "req_id": f"m{i}", "data": {"limit": 1}}).decode())
                statuses.append(orjson.loads(first.recv(timeout=10))["status_code"])
            assert statuses == [200, 200, 200, 429]
        with connect(url) as again:  # closed connections free their slots
            again.send(orjson.dumps({"pkg_id": "one", "req_id": "r"}).decode())
            assert orjson.loads(again.recv(timeout=10))["error"]["reason"] == "malformed"
            again.send("x" * 500)  # over WS_MAX_MESSAGE_BYTES: the server closes while receiving it
            try:
                again.recv(timeout=10)
                raise AssertionError("a frame over the size limit must close the connection")
            except ConnectionClosed as closed:
                assert closed.rcvd.code == 1009
        assert metric(app, "ws_connections_total", status="rejected_limit") == 1
        assert metric(app, "rate_limit_hits_total", limit_type="ws_connection") == 1
        assert metric(app, "rate_limit_hits_total", limit_type="ws_message") == 1
        assert metric(app, "ws_connections_active") == 0
