"""What every service of ``docker-compose.yml`` must have, and its agreement with Prometheus' targets."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ..config import Config
from ..stack.compose import ALERT_SINK, ENV_REF, SECRETS, TRAFFIC_PROFILE, host_of

__all__ = ["check", "pinned"]


def pinned(image: str) -> bool:
    """``name:tag`` (not ``latest``) or ``name@sha256:...``."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def check(data: dict[str, Any], cfg: Config | None = None) -> list[str]:
    """Structure every service must have; ``cfg`` adds the cross-checks with Prometheus' targets."""
    problems: list[str] = []
    svc: dict[str, Any] = data.get("services", {})
    declared = set(data.get("volumes") or {})
    names = set(svc)
    aliases = {alias for s in svc.values() for net in (s.get("networks") or {}).values()
               for alias in (net or {}).get("aliases", [])}
    for name, s in svc.items():
        image = s.get("image", "")
        if not pinned(image):
            problems.append(f"{name}: image {image!r} is not pinned to a tag (never latest)")
        if not (s.get("healthcheck") or {}).get("test"):
            problems.append(f"{name}: no healthcheck")
        for dep, how in (s.get("depends_on") or {}).items():
            if dep not in names:
                problems.append(f"{name}: depends on unknown service {dep!r}")
            if not isinstance(how, dict) or how.get("condition") != "service_healthy":
                problems.append(f"{name}: depends_on {dep} without condition: service_healthy")
            elif TRAFFIC_PROFILE in svc.get(dep, {}).get("profiles", []) and TRAFFIC_PROFILE not in s.get(
                    "profiles", []):
                problems.append(f"{name}: depends on {dep}, which only runs in the {TRAFFIC_PROFILE} profile")
        for volume in s.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith(("./", "/")) and source not in declared:
                problems.append(f"{name}: volume {source!r} is not declared under volumes:")
        for key, value in (s.get("environment") or {}).items():
            for var in ENV_REF.findall(str(value)):
                if var not in SECRETS:
                    problems.append(f"{name}: {key} reads ${{{var}}}, which .env.example does not list")
            if re.search(r"(?i)password", key) and "${" not in str(value):
                problems.append(f"{name}: {key} is a literal password; read it from the environment")
    problems += _cycles(svc)
    if cfg is not None:
        p = cfg.prometheus
        targets = [("app", p.app_target), ("alertmanager", p.alertmanager_target), ("alloy", p.alloy_target)]
        targets += [("keycloak", p.keycloak_target)] if cfg.features.keycloak else []
        for what, target in targets:
            if host_of(target) not in names | aliases:
                problems.append(f"prometheus.{what}_target {target!r}: no compose service or alias {host_of(target)!r}")
        if cfg.app_service not in names:
            problems.append(f"no service named {cfg.app_service!r}: Alloy's `service` label would not match the panels")
        sink = urlsplit(cfg.alerting.pager_webhook_url).hostname
        if not cfg.stack.reference_service and sink == ALERT_SINK:
            problems.append(f"alerting.pager_webhook_url / ticket_webhook_url still point at the reference service's "
                            f"{ALERT_SINK}, which only the reference stack runs: set your receivers' URLs")
    return problems


def _cycles(svc: dict[str, Any]) -> list[str]:
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> list[str]:
        if state.get(name) == 1:
            return [f"depends_on cycle: {' -> '.join([*path, name])}"]
        if state.get(name) == 2 or name not in svc:
            return []
        state[name] = 1
        found = [p for dep in (svc[name].get("depends_on") or {}) for p in visit(dep, [*path, name])]
        state[name] = 2
        return found

    return [p for name in svc for p in visit(name, [])]
