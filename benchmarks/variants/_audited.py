"""``ours`` plus an audit row for every request: the app both audit variants build.

``BENCH_DATABASE_URL`` picks the database (``make bench`` gives it a throwaway
PostgreSQL, as the service uses; default: a SQLite file in a temp dir).
``BENCH_AUDIT_BATCH_TIMEOUT`` (default 0.5 s): under wrk's load batches fill to
``batch_size`` long before it; ``instructions.py`` raises it so that a writer
slowed 50x by valgrind batches as it would at full speed, and
``BENCH_AUDIT_SHUTDOWN_TIMEOUT`` (default 10 s) so that a writer process still
importing its modules under valgrind when the server stops is waited for.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from _base import create_app, devnull_stream
from fastapi import FastAPI

from app.migrations import upgrade
from fastapi_lookout import instrument
from fastapi_lookout.audit import AuditWriter
from fastapi_lookout.audit.engine import create_engine
from fastapi_lookout.audit.process import AuditProcessWriter
from fastapi_lookout.logging import configure_logging


def audited_app(*, process: bool) -> FastAPI:
    """``process``: the service's default writer (a child process); else the writer task in the app's loop."""
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(url)
    options: dict[str, Any] = {
        "queue_max_size": 100_000, "batch_size": 1000,
        "batch_timeout_seconds": float(os.environ.get("BENCH_AUDIT_BATCH_TIMEOUT", "0.5")),
        "retry_max_seconds": 5, "spool_path": None,
        "shutdown_timeout_seconds": float(os.environ.get("BENCH_AUDIT_SHUTDOWN_TIMEOUT", "10")),
    }
    writer = (AuditProcessWriter(url, **options) if process
              else AuditWriter(create_engine(url), **options))

    @contextlib.asynccontextmanager
    async def lifespan(_app: object) -> AsyncIterator[None]:
        await writer.start()
        yield
        await writer.stop()

    app = create_app()
    app.router.lifespan_context = lifespan
    instrument(app, audit=writer, configure_logs=False)
    configure_logging(stream=devnull_stream())
    return app
