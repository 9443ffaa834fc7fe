"""A real HTTP server standing in for Keycloak's JWKS endpoint.

The verifier is tested against real sockets, real timeouts and real HTTP
errors, not a patched client: the document, the status and the delay can be
changed while it runs, and it counts the fetches it answered.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tests.support.binaries import free_port

CERTS_PATH = "/realms/test/protocol/openid-connect/certs"


class JwksServer:
    """``with JwksServer(doc) as jwks:`` serves ``doc`` at ``jwks.url`` until the block ends."""

    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.document: dict[str, Any] = document if document is not None else {"keys": []}
        self.status = 200
        self.delay = 0.0
        """Seconds each response waits before being sent (cut short when the server stops)."""
        self._requests = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}{CERTS_PATH}"

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    def fail(self, status: int = 500) -> None:
        self.status = status

    def hang(self, seconds: float = 60.0) -> None:
        self.delay = seconds

    def recover(self) -> None:
        self.status, self.delay = 200, 0.0

    def start(self) -> JwksServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner._requests += 1
                if owner.delay:
                    owner._stopping.wait(owner.delay)
                if self.path != CERTS_PATH:
                    status, body = 404, b'{"error":"not found"}'
                elif owner.status != 200:
                    status, body = owner.status, b'{"error":"unavailable"}'
                else:
                    status, body = 200, json.dumps(owner.document).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="jwks-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
