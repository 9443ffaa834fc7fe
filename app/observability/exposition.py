"""The ``/metrics`` endpoint as a bare ASGI callable (no routing, auth, rate limit or audit).

Content negotiation follows Prometheus: OpenMetrics (with exemplars) when the
scraper asks for it, text format 0.0.4 otherwise. In multiprocess mode every
scrape merges the workers' files, so counts from all workers add up.
"""

from __future__ import annotations

import hmac
import os

import orjson
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import Receive, Scope, Send


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


class MetricsEndpoint:
    def __init__(self, token: str | None = None) -> None:
        self._expected = f"Bearer {token}".encode() if token else None

    def authorised(self, scope: Scope) -> bool:
        if self._expected is None:
            return True
        return hmac.compare_digest(_header(scope, b"authorization"), self._expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Answers the scrape and returns the status code it sent."""
        if not self.authorised(scope):
            body = orjson.dumps({"error": "unauthorized", "reason": "metrics token required"})
            await _respond(send, 401, b"application/json", body, [(b"www-authenticate", b"Bearer")])
            return 401
        encoder, content_type = choose_encoder(_header(scope, b"accept").decode("latin-1"))
        body = encoder(_registry())
        await _respond(send, 200, content_type.encode(), body)
        return 200


async def _respond(
    send: Send, status: int, content_type: bytes, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
