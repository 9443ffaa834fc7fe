"""Grafana provisioning: the datasources (with the fixed uids every panel uses) and the dashboard provider."""

from __future__ import annotations

from typing import Any

from ..config import Config, DsType
from . import uids

DASHBOARDS_PATH = "/var/lib/grafana/dashboards"
"""Where docker-compose mounts grafana/dashboards inside the Grafana container."""


def _grafana_literal(text: str) -> str:
    """Provisioning files expand ``$VAR``/``${VAR}`` from the environment; ``$$`` keeps a literal ``$``."""
    return text.replace("$", "$$")


def datasources(cfg: Config) -> dict[str, Any]:
    ds = cfg.datasources
    logs_of_request = f"/d/{uids.LOGS}?var-request_id=${{__value.raw}}"
    return {
        "apiVersion": 1,
        "prune": True,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": ds.prometheus,
                "type": str(DsType.PROMETHEUS),
                "access": "proxy",
                "url": cfg.endpoints.prometheus_url,
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    "httpMethod": "POST",
                    # the scrape interval Grafana assumes for $__rate_interval (panels reading a job scraped at
                    # another interval set their own min interval)
                    "timeInterval": cfg.prometheus.scrape_interval,
                    "exemplarTraceIdDestinations": [
                        # exemplars carry the request id; open that request's log lines (Loki) in the logs dashboard
                        {"name": "request_id", "url": _grafana_literal(logs_of_request),
                         "urlDisplayLabel": "Logs of this request"},
                    ],
                },
            },
            {
                "name": "Loki",
                "uid": ds.loki,
                "type": str(DsType.LOKI),
                "access": "proxy",
                "url": cfg.endpoints.loki_url,
                "editable": False,
                "jsonData": {
                    "maxLines": 1000,
                    # request_id is structured metadata (Alloy): matched by label, so the link appears on every
                    # logs panel, also those whose line_format rewrites the line
                    "derivedFields": [
                        {
                            "name": "request_id",
                            "matcherType": "label",
                            "matcherRegex": "request_id",
                            "url": _grafana_literal(logs_of_request),
                            "urlDisplayLabel": "All lines of this request",
                        },
                    ],
                },
            },
            *([{
                "name": "PostgreSQL audit",
                "uid": ds.postgres_audit,
                "type": str(DsType.POSTGRES),
                "access": "proxy",
                "url": cfg.audit.host,
                "user": cfg.audit.reader_user,
                "editable": False,
                "jsonData": {
                    "database": cfg.audit.database,
                    "sslmode": "disable",
                    "postgresVersion": 1500,
                    "timescaledb": False,
                    "maxOpenConns": 5,
                },
                # read-only role; the password comes from Grafana's environment, never from this file
                "secureJsonData": {"password": f"$__env{{{cfg.audit.password_env}}}"},
            }] if cfg.features.audit else []),
        ],
    }


def dashboard_provider(cfg: Config) -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "observability-bundle",
                "orgId": 1,
                "folder": cfg.dashboard_folder,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": DASHBOARDS_PATH, "foldersFromFilesStructure": False},
            }
        ],
    }
