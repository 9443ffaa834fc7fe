"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health", name="health")
async def health(request: Request) -> JSONResponse:
    """200 when the database answers; 503 (with the reason) when it does not."""
    body: dict[str, Any] = {"status": "ok", "version": request.app.version}
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        body["database"] = "ok"
    except Exception as exc:
        body.update(status="degraded", database=f"unavailable: {type(exc).__name__}")
        return JSONResponse(body, status_code=503)
    writer = getattr(request.app.state, "audit_writer", None)
    if writer is not None:
        body["audit_pending"] = writer.pending
        # Rows spooled for another database, set aside at start: healthy, but waiting for a reviewer.
        body["audit_spool_foreign_rows"] = writer.foreign_spool_rows
    return JSONResponse(body)
