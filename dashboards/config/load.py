"""Reading a YAML override onto the defaults, and checking every value for range and form.

Problems are collected, not raised one at a time, and reported root cause
first: a value of the wrong type or form is named by its key before anything
is rendered from it, so one bad job name is one problem, not fifty broken
queries.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from .model import Config

__all__ = ["ConfigError", "check", "load_config"]


class ConfigError(ValueError):
    """A config that cannot be applied; ``problems`` names each offending key, root causes first."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


Check = Callable[[Any], str | None]
"""Returns what is wrong with a value, or None."""

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
_DURATION = re.compile(r"^(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?$")


def _name(value: Any) -> str | None:
    if not isinstance(value, str) or not _NAME.match(value) or len(value) > 128:
        return (f"{value!r} is not a name: letters, digits, '_', '.', ':', '-', starting with a letter, digit or "
                "'_' (it is written into PromQL, LogQL, YAML and URLs unquoted)")
    return None


def _port(value: Any) -> str | None:
    return None if isinstance(value, int) and 1 <= value <= 65535 else f"{value!r} is not a TCP port (1..65535)"


def _ratio(value: Any) -> str | None:
    return None if 0 < value < 1 else f"{value!r} is not a ratio strictly between 0 and 1"


def _positive(value: Any) -> str | None:
    return None if value > 0 else f"{value!r} must be greater than 0"


def _non_negative(value: Any) -> str | None:
    return None if value >= 0 else f"{value!r} must not be negative"


def _duration(value: Any) -> str | None:
    if isinstance(value, str) and value and value != "0s" and _DURATION.match(value):
        return None
    return f"{value!r} is not a non-zero Prometheus duration (e.g. 15s, 5m, 1h30m)"


def _url(value: Any) -> str | None:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{value!r} is not an http(s) URL"
    return None


def _url_or_empty(value: Any) -> str | None:
    return None if value == "" else _url(value)


_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
RESERVED_EXTERNAL_LABELS: Final = frozenset({"cluster", "job", "instance"})
"""Labels the replica label must not be: the HA pair's own name and what every scraped series carries."""


def _replica_label(value: Any) -> str | None:
    if not isinstance(value, str) or not _LABEL_NAME.match(value):
        return f"{value!r} is not a Prometheus label name"
    if value in RESERVED_EXTERNAL_LABELS:
        return f"{value!r} is taken (it would replace {value!r} on every series); choose another, e.g. 'replica'"
    return None


def _replica_value(value: Any) -> str | None:
    if isinstance(value, str) and (_ENV_REFERENCE.match(value) or _NAME.match(value)):
        return None
    return f"{value!r} is neither a ${{VARIABLE}} reference nor a plain label value"


def _host_port(value: Any) -> str | None:
    host, _, port = str(value).rpartition(":")
    if not host or not port.isdigit() or _port(int(port)) or not _NAME.match(host):
        return f"{value!r} is not host:port"
    return None


PLACEHOLDER_HOSTS: Final = ("example.org", "example.com", "example.net", "example-org")


def _not_placeholder(value: Any) -> str | None:
    if any(p in str(value) for p in PLACEHOLDER_HOSTS):
        return f"{value!r} is a placeholder: links there would not resolve (leave it empty or set the real place)"
    return _url_or_empty(value)


RULES: Final[tuple[tuple[str, Check], ...]] = (
    ("app_job", _name), ("keycloak_job", _name), ("app_service", _name),
    ("datasources.*", _name),
    ("stack.ports.bind_address", lambda v: None if re.fullmatch(r"[\d.]+|[0-9a-fA-F:]+|localhost", v)
     else f"{v!r} is not an IP address"),
    ("stack.ports.*", _port),
    ("stack.app_environment", _name),
    ("stack.app_health_path", lambda v: None if re.fullmatch(r"/[\w./-]*", v) else f"{v!r} is not a URL path"),
    ("stack.keycloak_realm", _name), ("stack.keycloak_client_id", _name),
    ("stack.app_db_user", _name), ("stack.keycloak_db", _name),
    ("audit.database", _name), ("audit.reader_user", _name), ("audit.host", _host_port),
    ("endpoints.*", _url),
    ("prometheus.*_interval", _duration), ("prometheus.*_target", _host_port), ("prometheus.*_job", _name),
    ("prometheus.remote_write_url", _url_or_empty), ("prometheus.cluster", _name),
    ("prometheus.replica_label", _replica_label), ("prometheus.replica", _replica_value),
    ("alerting.target_down_for", _duration), ("alerting.group_*", _duration), ("alerting.repeat_interval", _duration),
    ("alerting.docs_base_url", _not_placeholder), ("alerting.grafana_url", _url),
    ("alerting.pager_webhook_url", _url), ("alerting.ticket_webhook_url", _url),
    ("alerting.*_ratio", _ratio), ("alerting.keycloak_heap_*", _ratio), ("alerting.keycloak_gc_overhead", _ratio),
    ("alerting.*", _positive),
    ("slo.availability", _ratio), ("slo.latency_quantile", _ratio), ("slo.*", _positive),
    ("stack.loki.retention_period", _duration), ("stack.loki.*_mb", _positive),
    ("stack.loki.max_label_names_per_series", _positive),
    ("panels.*", _non_negative),
)
"""Key pattern -> check; the first pattern matching a key decides (specific patterns come first)."""


def _leaves(obj: Any, path: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{path}.{f.name}" if path else f.name
        if dataclasses.is_dataclass(value):
            out += _leaves(value, key)
        else:
            out.append((key, value))
    return out


def check(config: Config) -> list[str]:
    """Every value out of range or form, by key, in the order the keys are declared."""
    problems = []
    for key, value in _leaves(config):
        rule = next((c for pattern, c in RULES if fnmatch.fnmatchcase(key, pattern)), None)
        if rule is None or isinstance(value, bool) or (value == "" and rule is not _url_or_empty):
            continue
        if isinstance(value, str) and rule in (_positive, _non_negative, _ratio):
            continue
        try:
            problem = rule(value)
        except (TypeError, ValueError):
            problem = f"{value!r} has the wrong form"
        if problem:
            problems.append(f"{key}: {problem}")
    return problems


def _merge(cls: type[Any], base: Any, data: Any, path: str, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
        return base
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(data) - set(fields))
    if unknown:
        where = f" in {path}" if path else ""
        problems.append(f"unknown config key(s){where}: {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            continue
        current = getattr(base, key)
        key_path = f"{path}.{key}" if path else key
        if dataclasses.is_dataclass(current):
            changes[key] = _merge(type(current), current, value, key_path, problems)
        elif isinstance(current, float) and type(value) in (int, float):
            changes[key] = float(value)
        elif type(value) is type(current) or (isinstance(current, str) and type(value) is str):
            changes[key] = value
        else:
            problems.append(f"{key_path}: expected {type(current).__name__}, got {type(value).__name__}")
    return dataclasses.replace(base, **changes)


def load_config(path: Path | None = None) -> Config:
    """Defaults from code, overridden by a YAML file; unknown keys, wrong types and out-of-range values are
    errors (all of them at once), never ignored."""
    config = Config()
    if path is None:
        return config
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: {exc}"]) from exc
    problems: list[str] = []
    merged = _merge(Config, config, data, "", problems)
    problems += check(merged) if not problems else []
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return merged
