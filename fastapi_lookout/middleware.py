"""The one pure-ASGI layer around the whole application.

Per HTTP request it: resolves the route template, accepts or mints the
correlation id, binds log context, counts and times the request, writes one
access line and enqueues one audit row (for audited path prefixes). It sits
outside Starlette's error handling, so 400/401/403/404/405/413/422/429/500 are
all seen with their real status.

Hot-path rules: per (method, path) one cached tuple holds everything the
request's route decides (labels, route name, series, audited); the request
series are updated lock-free (``http_metrics``); headers are read through one
``dict()``; the request context is published with one contextvar
``set``/``reset``; the only per-request closure is ``send``'s wrapper, which
returns ``send``'s awaitable rather than being a coroutine; one
``orjson.dumps`` for the access line. ``benchmarks/instructions.py`` counts
what each change costs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterable
from typing import Any, Protocol

import orjson
import structlog
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_lookout import correlation, metrics, problems
from fastapi_lookout.audit.event import AuditEvent, outcome_for_status
from fastapi_lookout.context import CURRENT, SCOPE_KEY, RequestContext
from fastapi_lookout.exposition import MetricsEndpoint
from fastapi_lookout.http_metrics import Series
from fastapi_lookout.logging import access_log

_ROUTE_CACHE_MAX = 4096
_ERROR_BODY_MAX = 2048
_METRICS_METHODS = frozenset({"GET", "HEAD"})
_log = structlog.get_logger("app.errors")


_Route = tuple[str, str, str, Series, bool]
"""Per (method, path): method label, endpoint template, route name, request series, audited."""


class AuditSink(Protocol):
    def enqueue(self, event: AuditEvent) -> bool: ...


class RouteResolver:
    """Route template and name for a request, before the router runs (the in-progress
    gauge needs the label up front). Not cached here: HTTP requests go through the
    middleware's per-(method, path) route cache, WebSocket connections resolve once each.

    FastAPI >= 0.12x keeps included routers as lazy branches whose routes are only
    reachable through ``effective_route_contexts()``; older versions flatten them
    into ``app.router.routes``. Both shapes are walked once, on first use.
    """

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._routes = routes
        self._flat: list[tuple[Any, str, str]] | None = None

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
        if self._flat is None:
            self._flat = self._flatten(self._routes)
        partial = None
        for route, path, name in self._flat:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return path, name
            if match is Match.PARTIAL and partial is None:
                partial = (path, name)
        return partial or (metrics.UNMATCHED_ENDPOINT, metrics.UNMATCHED_ENDPOINT)

    def allowed_methods(self, scope: Scope) -> list[str]:
        """Every method of every route whose path matches (a 405's ``Allow``), sorted."""
        if self._flat is None:
            self._flat = self._flatten(self._routes)
        methods: set[str] = set()
        for route, _, _ in self._flat:
            route_methods = getattr(route, "methods", None)
            if route_methods and route.matches(scope)[0] is not Match.NONE:
                methods.update(route_methods)
        return sorted(methods)


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
        self._routes: dict[tuple[str, str], _Route] = {}

    def _route(self, scope: Scope) -> _Route:
        """What a (method, path) always gets: labels, route name, series, audited; cached, bounded."""
        key = (scope["method"], scope["path"])
        method = key[0] if key[0] in metrics.HTTP_METHODS else metrics.OTHER_METHOD
        template, name = self.resolver.resolve(scope)
        audited = self.audit is not None and key[1].startswith(self.audit_prefixes)
        route = (method, template, name, metrics.HTTP.series(method, template), audited)
        if len(self._routes) >= _ROUTE_CACHE_MAX:
            self._routes.clear()
        self._routes[key] = route
        return route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """HTTP requests are handled inline (one coroutine less per request); the rest is delegated."""
        if scope["type"] != "http" or scope["path"] == self.metrics_path:
            await self._other(scope, receive, send)
            return
        start = time.perf_counter()
        route = self._routes.get((scope["method"], scope["path"])) or self._route(scope)
        method, template, route_name, series, audited = route
        headers = dict(scope["headers"])  # one C call; names are lower-case bytes, the last one wins
        rid = correlation.accept(headers.get(correlation.HEADER))
        ctx = scope[SCOPE_KEY] = RequestContext(rid)
        token = CURRENT.set(ctx)
        series.start()

        status = 0  # 0: no response started yet
        error_body = bytearray() if audited else None
        rid_header = (correlation.HEADER, rid.encode())

        def send_wrapper(message: Message) -> Awaitable[None]:
            # Not a coroutine: the caller awaits ``send``'s own awaitable (one frame less per message).
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                sent_headers = message.get("headers")
                message["headers"] = [*sent_headers, rid_header] if sent_headers else [rid_header]
            elif error_body is not None and status >= 400 and len(error_body) < _ERROR_BODY_MAX:
                error_body.extend(message.get("body", b"")[: _ERROR_BODY_MAX - len(error_body)])
            return send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            started, status = status != 0, 500
            # The exception's text stays in the log line (with its traceback): a database error's
            # would put SQL and bound parameters into the audit row.
            ctx.error_message = ctx.error_message or f"internal_error: {type(exc).__name__}"
            metrics.APP_ERRORS.labels(type(exc).__name__, template).inc()
            _log.error("unhandled exception", exc_info=exc, endpoint=template, method=method,
                       error_type=type(exc).__name__)
            if not started:
                await problems.send_problem(send, scope, 500, "internal_error", headers=[rid_header])
        finally:
            end = time.perf_counter()
            duration = end - start
            if not status:  # the app returned without answering: the server sends a 500
                status = 500
            series.finish(status, duration, end, rid)
            client = scope.get("client")
            client_ip = client[0] if client else None
            access_log(
                {"request_id": rid, "user_id": ctx.user_id, "method": method, "endpoint": template,
                 "path": scope["path"], "status_code": status,
                 "duration_ms": int(duration * 1_000_000.0 + 0.5) / 1000.0,  # _millis(), inline
                 "client_ip": client_ip},
                "info" if status < 500 else "error",
            )
            if audited:
                self._audit(ctx, scope, route_name, status, duration, client_ip, headers.get(b"user-agent"),
                            error_body)
            CURRENT.reset(token)

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
                timestamp=time.time(),  # epoch seconds: pickles in a seventh of a datetime's time
                action_type=ctx.action_type or route_name,
                resource=f"{scope['method'][:16]} {scope['path']}"[:512],
                outcome=outcome_for_status(status),
                response_status=status,
                duration_ms=_millis(duration),
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

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["method"] not in _METRICS_METHODS:  # a scrape reads; anything else is refused
                await problems.send_problem(send, scope, 405, "method_not_allowed",
                                            f"{scope['method'][:16]} is not allowed here; allowed: GET, HEAD",
                                            headers=[(b"allow", b"GET, HEAD")])
                return
            await self.metrics_endpoint(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- WebSocket --------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = correlation.accept(dict(scope["headers"]).get(correlation.HEADER))
        ctx = scope[SCOPE_KEY] = RequestContext(rid)
        token = CURRENT.set(ctx)
        template, _ = self.resolver.resolve(scope)
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            metrics.APP_ERRORS.labels(type(exc).__name__, template).inc()
            _log.error("unhandled exception", exc_info=exc, endpoint=template, error_type=type(exc).__name__)
        finally:
            CURRENT.reset(token)


def _millis(seconds: float) -> float:
    """Milliseconds rounded to 3 decimals, like ``round(seconds * 1000, 3)`` at a third of its cost."""
    return int(seconds * 1_000_000.0 + 0.5) / 1000.0


def _error_text(body: bytearray | None) -> str | None:
    """The ``detail`` of a problem-details body (or the ``message`` of an older JSON one), for the audit row."""
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
