"""Drop-in observability for any FastAPI app: ``instrument(app)``.

With no other argument it adds Prometheus metrics (the catalog in
``metrics.py``), ``/metrics``, correlation ids (``X-Correlation-ID``) and one
JSON access line per request. Options, by keyword:

- ``audit``: an object with ``enqueue(AuditEvent) -> bool`` (the
  ``AuditProcessWriter`` or ``AuditWriter``); every request under ``audit_prefixes`` becomes one row;
- ``metrics_path`` (default ``/metrics``) and ``metrics_token`` (require
  ``Authorization: Bearer <token>`` on scrapes);
- ``configure_logs``: configure structlog/stdlib logging (default True;
  pass False when the application configures logging itself);
- ``version`` / ``environment``: the ``app_info`` labels.

The layer wraps the whole middleware stack, including Starlette's error
handling, so it sees every status code a client sees and no middleware added
later can sit outside it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fastapi_lookout.context import SCOPE_KEY, RequestContext
from fastapi_lookout.logging import configure_logging
from fastapi_lookout.metrics import set_app_info
from fastapi_lookout.middleware import AuditSink, ObservabilityMiddleware

__all__ = ["RequestContext", "instrument"]


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    ctx: RequestContext | None = request.scope.get(SCOPE_KEY)
    body: dict[str, Any] = {"error": "internal_error"}
    if ctx is not None:
        body["request_id"] = ctx.request_id
    return JSONResponse(body, status_code=500)


def instrument(
    app: FastAPI,
    *,
    audit: AuditSink | None = None,
    audit_prefixes: tuple[str, ...] = ("/api",),
    metrics_path: str = "/metrics",
    metrics_token: str | None = None,
    configure_logs: bool = True,
    version: str = "0.0.0",
    environment: str = "development",
    service: str = "app",
) -> FastAPI:
    if getattr(app.state, "observability_instrumented", False):
        raise RuntimeError("instrument() was already applied to this app")
    app.state.observability_instrumented = True
    if configure_logs:
        configure_logging(environment=environment, service=service)
    set_app_info(version, environment)
    if Exception not in app.exception_handlers and 500 not in app.exception_handlers:
        app.add_exception_handler(Exception, _internal_error)

    build_stack = app.build_middleware_stack

    def build_instrumented_stack() -> Any:
        return ObservabilityMiddleware(
            build_stack(),
            routes=app.router.routes,
            audit=audit,
            audit_prefixes=audit_prefixes,
            metrics_path=metrics_path,
            metrics_token=metrics_token,
        )

    app.build_middleware_stack = build_instrumented_stack  # type: ignore[method-assign]
    return app
