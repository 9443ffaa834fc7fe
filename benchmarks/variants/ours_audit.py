"""Ours plus an audit row for every request, written by the batching AuditWriter.

``BENCH_DATABASE_URL`` picks the database (``make bench`` gives it a throwaway
PostgreSQL, as the service uses; default: a SQLite file in a temp dir). The
writer runs in the server process, so its CPU is paid here too.
``BENCH_AUDIT_BATCH_TIMEOUT`` (default 0.5 s): under wrk's load batches fill to
``batch_size`` long before it; ``instructions.py`` raises it so that a server
slowed 50x by valgrind batches as it would at full speed.
"""
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator

from _base import create_app, devnull_stream

from app.db import create_engine
from app.migrations import upgrade
from app.observability import instrument
from app.observability.audit import AuditWriter
from app.observability.logging import configure_logging

url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
upgrade(url)
writer = AuditWriter(
    create_engine(url), queue_max_size=100_000, batch_size=1000,
    batch_timeout_seconds=float(os.environ.get("BENCH_AUDIT_BATCH_TIMEOUT", "0.5")),
    retry_max_seconds=5, shutdown_timeout_seconds=10, spool_path=None,
)


@contextlib.asynccontextmanager
async def lifespan(_app: object) -> AsyncIterator[None]:
    await writer.start()
    yield
    await writer.stop()


app = create_app()
app.router.lifespan_context = lifespan
instrument(app, audit=writer, configure_logs=False)
configure_logging(stream=devnull_stream())
