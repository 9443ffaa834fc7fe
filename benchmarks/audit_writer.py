"""Audit writer throughput into a real PostgreSQL, against a naive one-INSERT-per-row writer.

Starts a throwaway PostgreSQL cluster (Debian's binaries), builds the schema
with the app's migrations, then
- ours: fills ``AuditWriter``'s queue with N rows, then times from ``start()`` until all
  are committed (the sustained rate of the writer task: hash chain, COPY, commit),
  and the CPU the writer costs the process it runs in (what an in-process
  writer takes from request handling; the database's own CPU is not counted);
- ours, the service's default: ``AuditProcessWriter``, whose child process runs the
  same writer; timed from the first ``enqueue`` (100 rows per event-loop iteration,
  as under load) until the child has acknowledged every row, with the app
  process's CPU per row (handing rows over) reported apart;
- naive: one INSERT and one commit per row (what a request handler writing its
  own audit row does), over the same engine.

    .venv/bin/python benchmarks/audit_writer.py [--rows 50000] [--naive-rows 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.migrations import upgrade_async
from fastapi_lookout.audit import AuditEvent, AuditWriter
from fastapi_lookout.audit.engine import create_engine
from fastapi_lookout.audit.process import AuditProcessWriter
from fastapi_lookout.audit.schema import user_actions
from tests.support.postgres import PostgresServer


def event(i: int) -> AuditEvent:
    return AuditEvent(
        timestamp=datetime.now(UTC), action_type="list_authors", resource=f"GET /api/authors?page={i}",
        outcome="success", response_status=200, duration_ms=1.5, user_id="u-1", username="alice",
        user_roles="get-authors", ip_address="127.0.0.1", user_agent="bench", request_id=f"bench-{i:08d}",
        request_data={"limit": 10, "offset": i},
    )


async def ours(url: str, rows: int, batch: int) -> tuple[float, float]:
    engine = create_engine(url)
    writer = AuditWriter(engine, queue_max_size=rows + 1, batch_size=batch, batch_timeout_seconds=0.05,
                         retry_max_seconds=1, shutdown_timeout_seconds=60, spool_path=None)
    for i in range(rows):  # enqueue cost is paid by each request (see asgi_overhead.py), not by the writer
        assert writer.enqueue(event(i))
    start, cpu = time.perf_counter(), time.process_time()
    await writer.start()
    while writer.pending:
        await asyncio.sleep(0.005)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    await writer.stop()
    await engine.dispose()
    return rows / took, cpu / rows * 1e6


async def ours_process(url: str, rows: int, batch: int) -> tuple[float, float]:
    writer = AuditProcessWriter(url, queue_max_size=rows + 1, batch_size=batch, batch_timeout_seconds=0.05,
                                retry_max_seconds=1, shutdown_timeout_seconds=60, spool_path=None)
    await writer.start()
    assert writer.enqueue(event(-1))  # the child is up (imports, connection) before the clock starts
    while writer.pending:
        await asyncio.sleep(0.005)
    events = [event(i) for i in range(rows)]
    start, cpu = time.perf_counter(), time.process_time()
    for i, e in enumerate(events):
        assert writer.enqueue(e)
        if i % 100 == 99:
            await asyncio.sleep(0)
    while writer.pending:
        await asyncio.sleep(0.005)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    await writer.stop()
    return rows / took, cpu / rows * 1e6


async def naive(url: str, rows: int) -> float:
    engine = create_engine(url)
    start = time.perf_counter()
    for i in range(rows):
        e = event(i)
        async with engine.begin() as conn:
            await conn.execute(sa.insert(user_actions).values(
                timestamp=e.timestamp, action_type=e.action_type, resource=e.resource, outcome=e.outcome,
                response_status=e.response_status, duration_ms=e.duration_ms, user_id=e.user_id,
                username=e.username, user_roles=e.user_roles, ip_address=e.ip_address, user_agent=e.user_agent,
                request_id=e.request_id, request_data=e.request_data))
    took = time.perf_counter() - start
    await engine.dispose()
    return rows / took


async def amain(args: argparse.Namespace) -> None:
    server = PostgresServer()
    server.start()
    try:
        results = []
        for name in ("bench_ours", "bench_naive"):
            server.create_database(name)
            await upgrade_async(server.url(name))
        for batch in args.batch:
            results.append((f"AuditWriter, batch {batch}", *await ours(server.url("bench_ours"), args.rows, batch)))
        for batch in args.batch:
            results.append((f"AuditProcessWriter (default), batch {batch}",
                            *await ours_process(server.url("bench_ours"), args.rows, batch)))
        naive_rate = await naive(server.url("bench_naive"), args.naive_rows)
    finally:
        server.destroy()
    print("| writer | rows/s | vs naive | CPU in the app process, µs/row |")
    print("|---|---:|---:|---:|")
    for name, rate, cpu in results:
        print(f"| {name} ({args.rows:,} rows) | {rate:,.0f} | {rate / naive_rate:.1f}x | {cpu:.1f} |")
    print(f"| naive: one INSERT + commit per row ({args.naive_rows:,} rows) | {naive_rate:,.0f} | 1.0x | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--naive-rows", type=int, default=3_000)
    parser.add_argument("--batch", type=int, action="append")
    args = parser.parse_args()
    args.batch = args.batch or [500, 2000]
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
