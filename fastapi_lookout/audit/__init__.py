"""The audit trail: one tamper-evident ``user_actions`` row per request, in your own database.

Install with the ``audit`` extra (SQLAlchemy, the drivers, Alembic). The public API:

- ``AuditEvent``, ``outcome_for_status``: what a service hands over (no database packages needed);
- ``AuditProcessWriter`` (rows written by a child process) and ``AuditWriter`` (a task in the
  app's loop): pass either as ``instrument(app, audit=...)``;
- ``AuditMaintenance``: periodic chain verification and retention in the service;
- ``verify_chain``, ``prune``, ``ChainBroken``, ``Hasher``: the reviewer's side;
- ``upgrade``, ``upgrade_async``: the migrations (``fastapi-lookout-audit migrate`` from a shell);
- ``create_engine`` and the tables in ``schema``.

Names are imported on first use, so ``from fastapi_lookout.audit import AuditEvent`` on the request
path does not load SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi_lookout.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from fastapi_lookout.audit.chain import Hasher
    from fastapi_lookout.audit.engine import create_engine
    from fastapi_lookout.audit.event import (
        OUTCOME_DENIED,
        OUTCOME_ERROR,
        OUTCOME_SUCCESS,
        OUTCOMES,
        AuditEvent,
        outcome_for_status,
    )
    from fastapi_lookout.audit.migrations import upgrade, upgrade_async
    from fastapi_lookout.audit.process import AuditProcessWriter
    from fastapi_lookout.audit.verifier import AuditMaintenance, ChainBroken, prune, verify_chain
    from fastapi_lookout.audit.writer import AuditWriter

_WHERE = {
    "AuditEvent": "event",
    "OUTCOMES": "event",
    "OUTCOME_DENIED": "event",
    "OUTCOME_ERROR": "event",
    "OUTCOME_SUCCESS": "event",
    "outcome_for_status": "event",
    "AuditWriter": "writer",
    "AuditProcessWriter": "process",
    "AuditMaintenance": "verifier",
    "ChainBroken": "verifier",
    "prune": "verifier",
    "verify_chain": "verifier",
    "Hasher": "chain",
    "create_engine": "engine",
    "upgrade": "migrations",
    "upgrade_async": "migrations",
}

__all__ = [
    "OUTCOMES",
    "OUTCOME_DENIED",
    "OUTCOME_ERROR",
    "OUTCOME_SUCCESS",
    "AuditEvent",
    "AuditMaintenance",
    "AuditProcessWriter",
    "AuditWriter",
    "ChainBroken",
    "Hasher",
    "create_engine",
    "outcome_for_status",
    "prune",
    "upgrade",
    "upgrade_async",
    "verify_chain",
]
assert sorted(__all__) == sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
