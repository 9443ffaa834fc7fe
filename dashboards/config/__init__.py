"""The configuration: the typed model (``model``) and the YAML loader with its checks (``load``)."""

from .load import ConfigError, check, load_config
from .model import (
    Alerting,
    Audit,
    Config,
    Datasources,
    DsType,
    Endpoints,
    Features,
    Images,
    Loki,
    PanelThresholds,
    Ports,
    Prometheus,
    Slo,
    Stack,
)

__all__ = [
    "Alerting",
    "Audit",
    "Config",
    "ConfigError",
    "Datasources",
    "DsType",
    "Endpoints",
    "Features",
    "Images",
    "Loki",
    "PanelThresholds",
    "Ports",
    "Prometheus",
    "Slo",
    "Stack",
    "check",
    "load_config",
]
