"""One audit row as a service knows it, before the writer normalises it: ``AuditEvent``.

Imports nothing beyond the standard library, so the request path (the
middleware, a user's WebSocket handler) can build events without the audit
extra's database packages. Fields are keyword-only: fourteen values, ten of
them strings, where a positional call with two swapped would store a user id
as a username without any error.

The writer process moves events between processes as plain tuples (they
pickle several times faster than objects): ``event_values`` and
``event_from_values`` are that seam, and the only place the field order counts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, Final

__all__ = [
    "FIELD_NAMES",
    "OUTCOMES",
    "OUTCOME_DENIED",
    "OUTCOME_ERROR",
    "OUTCOME_SUCCESS",
    "AuditEvent",
    "event_from_values",
    "event_values",
    "outcome_for_status",
]

OUTCOME_SUCCESS, OUTCOME_ERROR, OUTCOME_DENIED = "success", "error", "permission_denied"
OUTCOMES: Final = (OUTCOME_SUCCESS, OUTCOME_ERROR, OUTCOME_DENIED)


def outcome_for_status(status_code: int) -> str:
    """401 and 403 are refusals, not failures: the audit dashboard colours them apart."""
    if status_code < 400:
        return OUTCOME_SUCCESS
    if status_code in (401, 403):
        return OUTCOME_DENIED
    return OUTCOME_ERROR


@dataclass(slots=True, kw_only=True)
class AuditEvent:
    """One ``user_actions`` row minus ``id``, as the middleware knows it."""

    timestamp: datetime | float  # tz-aware UTC (naive is taken as UTC), or seconds since the epoch
    action_type: str
    resource: str
    outcome: str
    response_status: int
    duration_ms: float
    user_id: str | None = None
    username: str | None = None
    user_roles: str | None = None  # comma-separated
    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    request_data: Any = None  # redacted and capped by the writer
    error_message: str | None = None


FIELD_NAMES: Final = tuple(f.name for f in dataclasses.fields(AuditEvent))
event_values: Final = attrgetter(*FIELD_NAMES)
"""The event's field values as one tuple, in ``FIELD_NAMES`` order (one C call)."""


def event_from_values(values: tuple[Any, ...]) -> AuditEvent:
    """The inverse of ``event_values``: a tuple of the wrong length is an error, not a shifted row."""
    if len(values) != len(FIELD_NAMES):
        raise ValueError(f"an audit event has {len(FIELD_NAMES)} fields, got {len(values)}")
    return AuditEvent(**dict(zip(FIELD_NAMES, values, strict=True)))
