"""Serialisation in one place: sorted keys, two-space indent, trailing newline, no timestamps.

Byte-for-byte stable output is what lets ``--check`` compare committed files
with the code, so nothing here may depend on time, dict order or the machine.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from grafanalib import core
from grafanalib._gen import DashboardEncoder

# Keys grafanalib's Dashboard still writes for pre-schema-14 Grafana; Grafana 11 ignores them.
_LEGACY_DASHBOARD_KEYS = ("__inputs", "gnetId", "hideControls", "rows", "sharedCrosshair", "style")


def dashboard_dict(dash: core.Dashboard) -> dict[str, Any]:
    """The dashboard as plain JSON data (what is written, and what the validators read)."""
    data: dict[str, Any] = json.loads(json.dumps(dash.to_json_data(), cls=DashboardEncoder))
    for key in _LEGACY_DASHBOARD_KEYS:
        data.pop(key, None)
    return data


def json_bytes(data: Any) -> bytes:
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (long PromQL, SQL) as literal blocks, so they read as written."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|" if "\n" in data else None)


_Dumper.add_representer(str, _str)
_Dumper.add_multi_representer(str, _str)  # str subclasses (the config's derived selectors)


def yaml_bytes(data: Any, header: str = "") -> bytes:
    """YAML in insertion order under a ``#`` comment header (one comment line per header line)."""
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)
    prefix = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return (prefix + body).encode()
