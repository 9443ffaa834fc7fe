"""The README's library examples, run as written: the instrument one alone, the audit one on a real database."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

from tests.test_readme import example


def _run(code: str, tmp_path: Path) -> dict:
    """Runs ``code`` in a fresh interpreter (instrument() configures logging once per process)."""
    script = tmp_path / "readme_example.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_instrument_example_serves_metrics_ids_and_problem_details(tmp_path):
    probe = textwrap.dedent("""
        import json
        from fastapi.testclient import TestClient
        from fastapi_lookout.logging import flush

        with TestClient(app) as client:
            missing = client.get("/nope")
            metrics = client.get("/metrics")
        flush()
        print(json.dumps({"missing": [missing.status_code, missing.headers["content-type"], missing.json()["reason"],
                                      bool(missing.headers.get("x-correlation-id"))],
                          "counted": 'endpoint="unmatched"' in metrics.text}))
    """)
    seen = _run(example("instrument") + "\n" + probe, tmp_path)
    assert seen["missing"] == [404, "application/problem+json", "not_found", True]
    assert seen["counted"]


def test_the_audit_example_writes_a_chained_row_and_times_queries(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    migrate = subprocess.run([sys.executable, "-m", "fastapi_lookout.audit", "--database-url", url, "migrate"],
                             capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr
    code = example("audit")
    assert 'DATABASE_URL = "postgresql+asyncpg://orders@db/orders"' in code
    code = code.replace('"postgresql+asyncpg://orders@db/orders"', repr(url))
    probe = textwrap.dedent("""
        import json
        import sqlalchemy as sa
        from fastapi.testclient import TestClient

        @app.get("/api/orders")
        async def orders():
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            return []

        with TestClient(app) as client:
            answered = client.get("/api/orders").status_code
            metrics = client.get("/metrics").text
        print(json.dumps({"answered": answered, "timed": 'db_query_duration_seconds_count{operation="select"}'
                          in metrics}))
    """)
    seen = _run(code + "\n" + probe, tmp_path)
    assert seen == {"answered": 200, "timed": True}

    from fastapi_lookout.audit import Hasher, create_engine, verify_chain
    from fastapi_lookout.audit.verifier import Verification

    async def check() -> tuple[list, Verification]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                query = "SELECT action_type, resource, response_status, seq FROM user_actions"
                rows = (await conn.execute(sa.text(query))).all()
            return rows, await verify_chain(engine, Hasher())
        finally:
            await engine.dispose()

    rows, verdict = asyncio.run(check())
    assert [tuple(r) for r in rows] == [("orders", "GET /api/orders", 200, 1)]  # action_type: the route name
    assert verdict.finding is None and verdict.rows == 1 and verdict.head_seq == 1
