"""``LOKI_URL``: lines pushed to Loki with the Alloy label set, and a hanging Loki never slows a request."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from tests.support.app_process import AppProcess
from tests.support.binaries import free_port


class FakeLoki(ThreadingHTTPServer):
    """Accepts pushes on /loki/api/v1/push and keeps the decoded streams."""

    def __init__(self) -> None:
        self.streams: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:
                body = handler.rfile.read(int(handler.headers["Content-Length"]))
                if handler.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                self.streams.extend(orjson.loads(body)["streams"])
                handler.send_response(204)
                handler.end_headers()

            def log_message(handler, *args: object) -> None:
                return

        super().__init__(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class HangingLoki:
    """Accepts TCP connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)


def test_lines_reach_loki_with_low_cardinality_labels(tmp_path):
    loki = FakeLoki()
    try:
        with AppProcess({"LOKI_URL": f"http://127.0.0.1:{loki.server_port}"}, workdir=tmp_path) as app:
            with app.client() as client:
                client.get("/health", headers={"X-Correlation-ID": "to-loki-1"})
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any("to-loki-1" in str(s) for s in loki.streams):
                time.sleep(0.05)
    finally:
        loki.shutdown()
    shipped = [s for s in loki.streams if any("to-loki-1" in v[1] for v in s["values"])]
    assert shipped, "the access line never reached Loki"
    assert shipped[0]["stream"] == {"service": "fastapi-app", "environment": "test", "level": "info"}
    line = orjson.loads(next(v[1] for v in shipped[0]["values"] if "to-loki-1" in v[1]))
    assert line["request_id"] == "to-loki-1" and line["logger"] == "app.access"


def test_a_hanging_loki_never_slows_requests(tmp_path):
    loki = HangingLoki()
    with AppProcess({"LOKI_URL": f"http://127.0.0.1:{loki.port}"}, workdir=tmp_path) as app, app.client() as client:
        # Each request must answer well inside the client's timeout although every push hangs.
        for i in range(300):
            response = client.get("/health", headers={"X-Correlation-ID": f"hang-{i}"}, timeout=2.0)
            assert response.status_code == 200
        assert loki.accepted, "the shipper never tried to reach Loki"
        lines = app.wait_for_lines(lambda ln: str(ln.get("request_id", "")).startswith("hang-"), count=300)
        assert len(lines) == 300  # stdout keeps every line whatever Loki does
    loki.sock.close()
