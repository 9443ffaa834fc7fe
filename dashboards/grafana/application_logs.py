"""``application-logs``: the service's JSON lines in Loki, filtered by stream labels and ``| json`` fields."""

from __future__ import annotations

from fastapi_lookout.metrics import HTTP_METHODS, HTTP_REQUESTS, OTHER_METHOD

from ..catalogs.app import series_name
from ..config import Config, DsType
from ..observables.model import Link
from ..queries import label_values
from ..queries import logs as q
from . import uids
from .house import Datasource
from .layout import Layout, Row, cells
from .variables import Variable, custom_variable, datasources, query_variable, textbox

MATCH_ALL = ".*"
"""All for field filters: also matches lines that lack the field (Loki sees an empty label)."""
ANY_STREAM = ".+"
"""All for the service label, which every stream has: Loki needs one matcher that cannot match the empty string."""
ANY_LEVEL = ".*"
"""All for level, which only JSON lines have: ``.+`` would drop Keycloak's, PostgreSQL's, Grafana's lines."""


def variables(cfg: Config, kinds: set[DsType]) -> list[Variable]:
    lk, prom = Datasource(DsType.LOKI), Datasource(DsType.PROMETHEUS)
    requests = f"{series_name(HTTP_REQUESTS)}{{{cfg.app_selector}}}"
    # endpoint and status values come from the service's metrics: the same route templates the logs carry
    return [
        *datasources(cfg, [DsType.PROMETHEUS, DsType.LOKI]),
        query_variable("service", "Service", lk, q.service_values(cfg), all_value=ANY_STREAM),
        query_variable("level", "Level", lk, q.level_values(cfg), all_value=ANY_LEVEL),
        textbox("user_id", "User id"),
        query_variable("endpoint", "Endpoint", prom, label_values(requests, "endpoint"), all_value=MATCH_ALL),
        custom_variable("method", "Method", [*sorted(HTTP_METHODS), OTHER_METHOD], all_value=MATCH_ALL),
        query_variable("status_code", "Status", prom, label_values(requests, "status_code"), all_value=MATCH_ALL),
        textbox("request_id", "Request id"),
    ]


LAYOUT = Layout(
    uid=uids.LOGS,
    title="Application logs",
    description="JSON log lines from Loki. Stream labels: service, level, environment; everything else is a | json "
                "field.",
    rows=(
        Row("Volume and errors", cells(("logs.volume", 16), "logs.levels", ("logs.error_rate", 16),
                                       ("logs.top_error_services", 8), ("logs.errors", 24, 12))),
        Row("Lines by kind", cells(("logs.http", 24, 12), ("logs.websocket", 12, 10), ("logs.rate_limits", 12, 10),
                                   ("logs.auth_failures", 12, 10), ("logs.all", 12, 10))),
    ),
    variables=variables,
    tags=("logs", "observability-bundle"),
    links=(Link("FastAPI service", f"/d/{uids.FASTAPI}"), Link("Audit logs", f"/d/{uids.AUDIT}")),
)
