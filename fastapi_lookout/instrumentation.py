"""``instrument(app)``: drop-in observability for any FastAPI app (import it from ``fastapi_lookout``).

With no other argument it adds Prometheus metrics (the catalog in
``metrics.py``), ``/metrics``, correlation ids (``X-Correlation-ID``) and one
JSON access line per request. Options, by keyword:

- ``audit``: an object with ``enqueue(AuditEvent) -> bool`` (the
  ``AuditProcessWriter`` or ``AuditWriter``); every request under ``audit_prefixes`` becomes one row;
- ``metrics_path`` (default ``/metrics``) and ``metrics_token`` (require
  ``Authorization: Bearer <token>`` on scrapes);
- ``configure_logs``: configure structlog/stdlib logging (default True;
  pass False when the application configures logging itself);
- ``version`` / ``environment``: the ``app_info`` labels;
- ``problem_details`` (default True): every error answered as RFC 9457
  ``application/problem+json`` (``fastapi_lookout.problems``): HTTPException,
  Starlette's 404/405 (``Allow`` naming every method of the path), request
  validation (422 with the field errors; 400 for a body that is not JSON) and
  unhandled exceptions (500 with the request id); handlers the app already
  has for these are kept. Pass False to keep FastAPI's own error bodies.

The layer wraps the whole middleware stack, including Starlette's error
handling, so it sees every status code a client sees and no middleware added
later can sit outside it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from fastapi_lookout import problems
from fastapi_lookout.logging import configure_logging
from fastapi_lookout.metrics import set_app_info
from fastapi_lookout.middleware import AuditSink, ObservabilityMiddleware

__all__ = ["instrument"]


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
    problem_details: bool = True,
) -> FastAPI:
    if getattr(app.state, "observability_instrumented", False):
        raise RuntimeError("instrument() was already applied to this app")
    app.state.observability_instrumented = True
    if configure_logs:
        configure_logging(environment=environment, service=service)
    set_app_info(version, environment)
    if problem_details:
        problems.install_handlers(app)
        problems.document_problems(app)

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
