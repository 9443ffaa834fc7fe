"""The reference service: ``uvicorn app.main:app`` runs with no outside services.

It is the workload every dashboard, rule and LogQL query of this repository
reads, and it uses exactly the public ``instrument(app)`` call that users apply
to their own services.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.tokens import build_verifier
from app.db import create_engine
from app.limits import BodySizeLimit
from app.ratelimit import SlidingWindowLimiter
from app.routes import authors, health, ws
from app.settings import Settings, get_settings
from fastapi_lookout import instrument
from fastapi_lookout.audit import AuditMaintenance, AuditProcessWriter, AuditWriter
from fastapi_lookout.db_timing import time_queries
from fastapi_lookout.logging import configure_logging

SWEEP_SECONDS = 30.0


async def _sweep(limiters: list[SlidingWindowLimiter]) -> None:
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        for limiter in limiters:
            await limiter.sweep()


def _audit_writer(
    settings: Settings, engine: AsyncEngine, log_settings: dict[str, Any]
) -> AuditWriter | AuditProcessWriter:
    options: dict[str, Any] = {
        "queue_max_size": settings.audit_queue_max_size,
        "batch_size": settings.audit_batch_size,
        "batch_timeout_seconds": settings.audit_batch_timeout_seconds,
        "retry_max_seconds": settings.audit_retry_max_seconds,
        "shutdown_timeout_seconds": settings.audit_shutdown_timeout_seconds,
        "spool_path": settings.audit_spool_path,
        "request_data_max_bytes": settings.audit_request_data_max_bytes,
        "hmac_key": settings.audit_key(),
    }
    if settings.audit_writer_process:
        return AuditProcessWriter(settings.database_url, **options, log_settings=log_settings)
    return AuditWriter(engine, **options)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    log_settings = {
        "level": settings.log_level,
        "console_format": settings.log_console_format,
        "environment": settings.environment,
        "service": settings.app_name,
        "error_file": settings.log_error_file or None,
        "loki_url": settings.loki_url,
    }
    configure_logging(**log_settings)
    engine = create_engine(settings.database_url)
    time_queries(engine)
    writer = _audit_writer(settings, engine, log_settings) if settings.audit_enabled else None
    maintenance = AuditMaintenance(
        engine,
        hmac_key=settings.audit_key(),
        verify_interval_seconds=settings.audit_verify_interval_seconds,
        retention_days=settings.audit_retention_days,
    )
    limiters = [
        SlidingWindowLimiter("ip", settings.rate_limit_ip_per_minute, settings.rate_limit_ip_burst),
        SlidingWindowLimiter("user", settings.rate_limit_per_minute, settings.rate_limit_burst),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.database_migrate_on_start:
            from app.migrations import upgrade_async

            await upgrade_async(settings.database_url)
        if writer is not None:
            await writer.start()
            maintenance.start()
        sweeper = asyncio.create_task(_sweep(limiters))
        try:
            yield
        finally:
            sweeper.cancel()
            await maintenance.stop()
            if writer is not None:
                await writer.stop()
            await app.state.token_verifier.aclose()
            await engine.dispose()
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(os.getpid())

    app = FastAPI(title="Authors service", version=settings.app_version, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.audit_writer = writer
    app.state.audit_maintenance = maintenance
    app.state.token_verifier = build_verifier(settings)
    app.state.ip_limiter, app.state.user_limiter = limiters
    app.state.ws_registry = ws.ConnectionRegistry()
    app.include_router(health.router)
    app.include_router(authors.router)
    app.include_router(ws.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    instrument(
        app,
        audit=writer,
        metrics_token=settings.metrics_token,
        configure_logs=False,
        version=settings.app_version,
        environment=settings.environment,
        service=settings.app_name,
    )
    return app


app = create_app()
