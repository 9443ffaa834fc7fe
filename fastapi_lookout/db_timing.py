"""``db_query_duration_seconds{operation}`` for any SQLAlchemy engine, with one call.

    from fastapi_lookout.db_timing import time_queries
    time_queries(engine)          # an Engine or an AsyncEngine

Every statement the engine sends is observed from just before the driver's
cursor runs it to just after it returns or fails, labelled by its first SQL
keyword: ``select``, ``insert``, ``update``, ``delete``, else ``other`` (a
bounded set, whatever SQL the service sends). Statements that fail are
observed too: a slow timeout is exactly what the panel must show.
Needs SQLAlchemy (the ``audit`` extra brings it); imports it only when called.
"""

from __future__ import annotations

import time
from typing import Any, Final

from fastapi_lookout.metrics import DB_QUERY_DURATION

__all__ = ["STATEMENT_OPERATIONS", "operation_of", "time_queries"]

STATEMENT_OPERATIONS: Final = ("select", "insert", "update", "delete")
OTHER: Final = "other"
_ATTRIBUTE: Final = "_fastapi_lookout_started"
_KNOWN: Final = frozenset(STATEMENT_OPERATIONS)


def operation_of(statement: str) -> str:
    """The statement's first keyword if it is one of ``STATEMENT_OPERATIONS``, else ``other``."""
    head = statement.lstrip(" \t\r\n(")[:7].lower()
    word = head.split(None, 1)[0] if head else ""
    return word if word in _KNOWN else OTHER


def time_queries(engine: Any) -> None:
    """Observe every statement of ``engine`` (sync or async); a second call on the same engine is a no-op."""
    import sqlalchemy as sa

    sync_engine = getattr(engine, "sync_engine", engine)
    if sa.event.contains(sync_engine, "before_cursor_execute", _started):
        return
    sa.event.listen(sync_engine, "before_cursor_execute", _started)
    sa.event.listen(sync_engine, "after_cursor_execute", _finished)
    sa.event.listen(sync_engine, "handle_error", _failed)


def _started(_conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool) -> None:
    if context is not None:
        setattr(context, _ATTRIBUTE, time.perf_counter())


def _observe(context: Any, statement: str) -> None:
    started = getattr(context, _ATTRIBUTE, None)
    if started is not None:
        setattr(context, _ATTRIBUTE, None)
        DB_QUERY_DURATION.labels(operation_of(statement)).observe(time.perf_counter() - started)


def _finished(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
    _observe(context, statement)


def _failed(exception_context: Any) -> None:
    context = exception_context.execution_context
    if context is not None and exception_context.statement is not None:
        _observe(context, exception_context.statement)
