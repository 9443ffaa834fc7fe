"""The log-line contract and the Loki stream labels, as the LogQL checker sees them."""

from __future__ import annotations

from typing import Final

from fastapi_lookout.logging import ACCESS_LOGGER, ACCESS_MESSAGE
from fastapi_lookout.logging import LOG_FIELDS as APP_LOG_FIELDS

STREAM_LABELS: Final = frozenset({"service", "level", "environment", "container"})
"""Labels the Alloy pipeline (stack/alloy/pipeline.py) sets on every stream (low cardinality), checked
against the rendered alloy/config.alloy at build time; LogQL stream selectors may use nothing else.
Everything else is a ``| json`` field."""
EVERY_STREAM_LABELS: Final = frozenset({"service", "container"})
"""The labels Alloy sets on every stream: a line that is not JSON (Keycloak, PostgreSQL, Grafana...) gets only
these, not ``level`` or ``environment``, which come from the JSON stage."""
STRUCTURED_METADATA: Final = ("request_id", "user_id")
"""Per-request fields Alloy attaches to each line without creating streams (needs Loki schema v13)."""

LOKI_SPECIAL_LABELS: Final = frozenset({"__error__", "__error_details__", "__line__"})

LOG_FIELDS: Final[frozenset[str]] = frozenset(APP_LOG_FIELDS)
"""Fields the app's JSON log lines carry (its contract); ``| json`` filters may use only these."""

# Logger names and messages of the log-line contract (the brief the app implements).
__all__ = ["ACCESS_LOGGER", "ACCESS_MESSAGE"]  # re-exported from the library: spelled once, there
WS_LOGGER: Final = "app.ws"
RATELIMIT_LOGGER: Final = "app.ratelimit"
RATELIMIT_MESSAGE: Final = "rate limit exceeded"
AUTH_LOGGER: Final = "app.auth"
AUTH_MESSAGES: Final = ("authentication failed", "permission denied")
ERROR_LEVELS: Final = ("error", "critical")
LEVELS: Final = ("debug", "info", "warning", "error", "critical")


_IN_THE_LINE = ("shown in the line itself: every logs panel shows the whole JSON line and Grafana's log details "
                "list each field; no query filters or counts by it")
UNOBSERVED: Final[dict[str, str]] = {
    "timestamp": "Alloy makes it the line's own timestamp (stage.timestamp)",
    "environment": "a stream label Alloy sets; selectors pin it when config.environment is set",
    **{name: _IN_THE_LINE for name in ("detail", "dropped", "error_type", "exception", "function", "line", "module",
                                       "path", "req_id", "required_role", "transport", "username")},
}
"""Log fields no LogQL query reads on purpose, each with the reason (the build names any other)."""
