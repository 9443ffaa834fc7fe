"""Dashboard uids (= file names, reachable at ``/d/<uid>``), fixed by the architecture."""

from __future__ import annotations

from typing import Final

FASTAPI: Final = "fastapi-metrics"
KEYCLOAK: Final = "keycloak-metrics"
AUDIT: Final = "audit-logs"
LOGS: Final = "application-logs"
ALL: Final = (FASTAPI, KEYCLOAK, AUDIT, LOGS)
