"""Defaults of both audit writers (and of the reference service's settings).

A module of constants only: importing it registers no metric, so a server's supervisor process can read it.
``spool_path`` has no default: where rows the database cannot take by shutdown are kept (or ``None``: counted
as dropped) is a decision per service.
"""

from __future__ import annotations

from typing import Final

QUEUE_MAX_SIZE: Final = 10_000
"""Rows held in memory before new ones are dropped (``audit_events_dropped_total``)."""
BATCH_SIZE: Final = 500
BATCH_TIMEOUT_SECONDS: Final = 1.0
RETRY_MAX_SECONDS: Final = 30.0
SHUTDOWN_TIMEOUT_SECONDS: Final = 10.0
