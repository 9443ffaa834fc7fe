"""LogQL of the ``application-logs`` dashboard (and the app's log panels elsewhere).

Stream selectors use only the labels Alloy sets (service, level, environment);
every other field is filtered after ``| json``. Free-text variables are matched
with ``=~`<escaped value>.*``` so the empty default matches every line, including
lines without that field, and a full id still narrows to that id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..catalogs import logs as contract
from ..config import Config

AUTO = "$__auto"
RANGE = "$__range"


def _selector(cfg: Config, *matchers: str) -> str:
    env = (f'environment="{cfg.environment}"',) if cfg.environment else ()
    return "{" + ", ".join((*matchers, *env)) + "}"


def _levels(levels: Sequence[str]) -> str:
    return f'level=~"{"|".join(levels)}"'


def app_stream(cfg: Config, levels: Sequence[str] = ()) -> str:
    """The app's own streams (``service`` label from the config)."""
    return _selector(cfg, f'service="{cfg.app_service}"', *((_levels(levels),) if levels else ()))


def stream(cfg: Config) -> str:
    return _selector(cfg, 'service=~"$service"', 'level=~"$level"')


def error_stream(cfg: Config) -> str:
    return _selector(cfg, 'service=~"$service"', _levels(contract.ERROR_LEVELS))


def field_filters(cfg: Config) -> str:
    """The dashboard's field variables, applied after ``| json`` in every panel."""
    return (
        " | user_id=~`${user_id:regex}.*`"
        ' | endpoint=~"$endpoint" | method=~"$method" | status_code=~"$status_code"'
        " | request_id=~`${request_id:regex}.*`"
    )


FILTERED: Final = ("user_id", "endpoint", "method", "status_code", "request_id")
"""The fields ``field_filters`` reads: all a metric query over lines needs to extract."""


def _parsed(cfg: Config, base: str, *stages: str, fields: Sequence[str] = ()) -> str:
    """``fields``: extract only these (``| json a, b``); a metric query names them, so Loki does not parse every
    field of every line (timestamps, messages) before counting."""
    json = f"json {', '.join(fields)}" if fields else "json"
    return " | ".join((f"{base} | {json}", *stages)) + field_filters(cfg)


def _count(cfg: Config, base: str, by: str, window: str, fn: str = "count_over_time") -> str:
    return f'sum by ({by}) ({fn}({_parsed(cfg, base, fields=FILTERED)} | __error__="" [{window}]))'


# --- variables -----------------------------------------------------------------------------
def service_values(cfg: Config) -> str:
    return "label_values(service)"


def level_values(cfg: Config) -> str:
    return "label_values(level)"


# --- panels ----------------------------------------------------------------------------------
def volume_by_service_level(cfg: Config) -> str:
    return _count(cfg, stream(cfg), "service, level", AUTO)


def level_distribution(cfg: Config) -> str:
    return _count(cfg, stream(cfg), "level", RANGE)


def error_logs(cfg: Config) -> str:
    return _parsed(cfg, error_stream(cfg))


def error_rate_by_service(cfg: Config) -> str:
    return _count(cfg, error_stream(cfg), "service", AUTO, fn="rate")


def top_services_by_errors(cfg: Config) -> str:
    return f"topk(10, {_count(cfg, error_stream(cfg), 'service', RANGE)})"


def http_request_logs(cfg: Config) -> str:
    base = f'{stream(cfg)} |= "{contract.ACCESS_MESSAGE}"'
    return (_parsed(cfg, base, f'logger="{contract.ACCESS_LOGGER}"')
            + ' | line_format "{{.status_code}} {{.method}} {{.endpoint}} {{.duration_ms}}ms'
              ' request_id={{.request_id}} user_id={{.user_id}}"')


def websocket_logs(cfg: Config) -> str:
    return (_parsed(cfg, stream(cfg), f'logger="{contract.WS_LOGGER}"')
            + ' | line_format "{{.message}} pkg_id={{.pkg_id}} status={{.status}}'
              ' connection_id={{.connection_id}} user_id={{.user_id}}"')


def rate_limit_logs(cfg: Config) -> str:
    base = f'{stream(cfg)} |= "{contract.RATELIMIT_MESSAGE}"'
    return (_parsed(cfg, base, f'logger="{contract.RATELIMIT_LOGGER}"')
            + ' | line_format "{{.limit_type}} {{.method}} {{.endpoint}} client_ip={{.client_ip}}'
              ' user_id={{.user_id}}"')


def auth_failure_logs(cfg: Config) -> str:
    messages = "|".join(contract.AUTH_MESSAGES)
    return (_parsed(cfg, stream(cfg), f'logger="{contract.AUTH_LOGGER}"', f'message=~"{messages}"')
            + ' | line_format "{{.message}}: {{.reason}} {{.method}} {{.endpoint}} user_id={{.user_id}}"')


def all_lines(cfg: Config) -> str:
    return _parsed(cfg, stream(cfg))
