"""The one pure-ASGI layer around the whole application.

Per HTTP request it: resolves the route template, accepts or mints the
correlation id, binds log context, counts and times the request, writes one
access line and enqueues one audit row (for audited path prefixes). It sits
outside Starlette's error handling, so 400/401/403/404/405/413/422/429/500 are
all seen with their real status.

Hot-path rules: no per-request closures beyond ``send``'s wrapper, label
children cached per (method, template[, status]), route templates cached per
path in a bounded dict, one ``orjson.dumps`` for the access line.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import structlog
from prometheus_client.metrics import Counter, Gauge, Histogram
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import correlation, metrics
from app.observability.audit import AuditEvent, outcome_for_status
from app.observability.context import SCOPE_KEY, RequestContext
from app.observability.exposition import MetricsEndpoint
from app.observability.logging import access_log

_ROUTE_CACHE_MAX = 4096
EXEMPLAR_INTERVAL_SECONDS = 1.0
_ERROR_BODY_MAX = 2048
_log = structlog.get_logger("app.errors")


class AuditSink(Protocol):
    def enqueue(self, event: AuditEvent) -> bool: ...


class RouteResolver:
    """Route template and name for a request, before the router runs (the in-progress
    gauge needs the label up front). Cached per (method, path), bounded.

    FastAPI >= 0.12x keeps included routers as lazy branches whose routes are only
    reachable through ``effective_route_contexts()``; older versions flatten them
    into ``app.router.routes``. Both shapes are walked once, on first use.
    """

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._routes = routes
        self._flat: list[tuple[Any, str, str]] | None = None
        self._cache: dict[tuple[str, str], tuple[str, str]] = {}

    @staticmethod
    def _flatten(routes: Iterable[Any]) -> list[tuple[Any, str, str]]:
        flat: list[tuple[Any, str, str]] = []
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            if callable(contexts):
                for context in contexts():
                    original = getattr(context, "original_route", None)
                    path = getattr(context, "path_format", None) or getattr(original, "path_format", "/")
                    flat.append((context, path, getattr(original, "name", None) or "unnamed"))
                continue
            path = getattr(route, "path_format", None) or getattr(route, "path", "") or "/"
            flat.append((route, path, getattr(route, "name", None) or "unnamed"))
        return flat

    def resolve(self, scope: Scope) -> tuple[str, str]:
        key = (scope.get("method", ""), scope["path"])
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if self._flat is None:
            self._flat = self._flatten(self._routes)
        found = (metrics.UNMATCHED_ENDPOINT, metrics.UNMATCHED_ENDPOINT)
        partial = None
        for route, path, name in self._flat:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                found = (path, name)
                break
            if match is Match.PARTIAL and partial is None:
                partial = (path, name)
        else:
            if partial is not None:
                found = partial
        if len(self._cache) >= _ROUTE_CACHE_MAX:
            self._cache.clear()
        self._cache[key] = found
        return found


def _headers(scope: Scope) -> tuple[bytes | None, bytes | None]:
    rid = agent = None
    for key, value in scope["headers"]:
        if key == correlation.HEADER:
            rid = value
        elif key == b"user-agent":
            agent = value
    return rid, agent


class ObservabilityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Iterable[BaseRoute],
        audit: AuditSink | None = None,
        audit_prefixes: tuple[str, ...] = ("/api",),
        metrics_path: str = "/metrics",
        metrics_token: str | None = None,
    ) -> None:
        self.app = app
        self.resolver = RouteResolver(routes)
        self.audit = audit
        self.audit_prefixes = audit_prefixes
        self.metrics_path = metrics_path
        self.metrics_endpoint = MetricsEndpoint(metrics_token)
        self.exemplars = not metrics.MULTIPROCESS
        self._route_series: dict[tuple[str, str], tuple[Gauge, Histogram]] = {}
        """Per (method, template): the in-progress gauge and latency histogram children, one lookup."""
        self._requests: dict[tuple[str, str, int], Counter] = {}
        self._exemplar_at: dict[tuple[str, str, int], float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["path"] == self.metrics_path:
                await self.metrics_endpoint(scope, receive, send)
                return
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- HTTP -------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        method = scope["method"] if scope["method"] in metrics.HTTP_METHODS else metrics.OTHER_METHOD
        raw_rid, agent = _headers(scope)
        rid = correlation.accept(raw_rid)
        template, route_name = self.resolver.resolve(scope)
        ctx = RequestContext(rid)
        scope[SCOPE_KEY] = ctx
        audited = self.audit is not None and scope["path"].startswith(self.audit_prefixes)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)

        route_key = (method, template)
        series = self._route_series.get(route_key)
        if series is None:
            series = self._route_series[route_key] = (
                metrics.HTTP_REQUESTS_IN_PROGRESS.labels(method, template),
                metrics.HTTP_REQUEST_DURATION.labels(method, template),
            )
        in_progress, hist = series
        in_progress.inc()

        status = 500
        started = False
        error_body = bytearray() if audited else None
        rid_header = (correlation.HEADER, rid.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                headers = message.get("headers")
                message["headers"] = [*headers, rid_header] if headers else [rid_header]
            elif error_body is not None and status >= 400 and len(error_body) < _ERROR_BODY_MAX:
                error_body.extend(message.get("body", b"")[: _ERROR_BODY_MAX - len(error_body)])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            status = 500
            ctx.error_message = ctx.error_message or f"{type(exc).__name__}: {exc}"[:500]
            metrics.APP_ERRORS.labels(type(exc).__name__, template).inc()
            _log.error("unhandled exception", exc_info=exc, endpoint=template, method=method,
                       error_type=type(exc).__name__)
            if not started:
                body = orjson.dumps({"error": "internal_error", "request_id": rid})
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json"), rid_header]})
                await send({"type": "http.response.body", "body": body})
        finally:
            in_progress.dec()
            duration = time.perf_counter() - start
            self._record(hist, method, template, status, duration, rid)
            client = scope.get("client")
            client_ip = client[0] if client else None
            access_log(
                {"request_id": rid, "user_id": ctx.user_id, "method": method, "endpoint": template,
                 "path": scope["path"], "status_code": status, "duration_ms": round(duration * 1000.0, 3),
                 "client_ip": client_ip},
                "info" if status < 500 else "error",
            )
            if audited:
                self._audit(ctx, scope, route_name, status, duration, client_ip, agent, error_body)
            structlog.contextvars.clear_contextvars()

    def _record(self, hist: Histogram, method: str, template: str, status: int, duration: float, rid: str) -> None:
        counter_key = (method, template, status)
        counter = self._requests.get(counter_key)
        if counter is None:
            counter = self._requests[counter_key] = metrics.HTTP_REQUESTS.labels(method, template, str(status))
        counter.inc()
        if self.exemplars:
            # Prometheus keeps one exemplar per bucket per scrape: refreshing a bucket's exemplar more
            # than once a second is work nobody reads (it cost twice the plain observation).
            bucket = (method, template, bisect_left(metrics.LATENCY_BUCKETS, duration))
            now = time.monotonic()
            if now - self._exemplar_at.get(bucket, -EXEMPLAR_INTERVAL_SECONDS) >= EXEMPLAR_INTERVAL_SECONDS:
                self._exemplar_at[bucket] = now
                hist.observe(duration, {"request_id": rid})
                return
        hist.observe(duration)

    def _audit(
        self, ctx: RequestContext, scope: Scope, route_name: str, status: int, duration: float,
        client_ip: str | None, agent: bytes | None, error_body: bytearray | None,
    ) -> None:
        assert self.audit is not None
        error = ctx.error_message
        if error is None and status >= 400:
            error = _error_text(error_body) or f"HTTP {status}"
        self.audit.enqueue(
            AuditEvent(
                timestamp=datetime.now(UTC),
                action_type=ctx.action_type or route_name,
                resource=f"{scope['method'][:16]} {scope['path']}"[:512],
                outcome=outcome_for_status(status),
                response_status=status,
                duration_ms=round(duration * 1000.0, 3),
                user_id=ctx.user_id,
                username=ctx.username,
                user_roles=",".join(ctx.roles) if ctx.roles else None,
                ip_address=client_ip,
                user_agent=agent.decode("latin-1")[:512] if agent else None,
                request_id=ctx.request_id,
                request_data=ctx.audit_data,
                error_message=error,
            )
        )

    # -- WebSocket --------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_rid, _ = _headers(scope)
        rid = correlation.accept(raw_rid)
        scope[SCOPE_KEY] = RequestContext(rid)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        template, _ = self.resolver.resolve(scope)
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            metrics.APP_ERRORS.labels(type(exc).__name__, template).inc()
            _log.error("unhandled exception", exc_info=exc, endpoint=template, error_type=type(exc).__name__)
        finally:
            structlog.contextvars.clear_contextvars()


def _error_text(body: bytearray | None) -> str | None:
    """The ``detail``/``message`` of a JSON error body, for the audit row."""
    if not body:
        return None
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:500].decode("utf-8", "replace")
    if isinstance(data, dict):
        detail = data.get("detail", data)
        if isinstance(detail, dict):
            detail = detail.get("message") or detail.get("reason") or detail
        return str(detail)[:500]
    return str(data)[:500]
