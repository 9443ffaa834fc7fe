"""Every observable of the bundle, collected from the area modules, with the problems found in them.

An area module has ``observables(cfg) -> list[Observable]``; add one to
``AREAS`` and its panels can be placed on a dashboard by name, its alerts
land in their rule file and its runbook in the docs. Collecting never raises:
a definition that cannot be built, or that is incomplete, is a problem with
its name, reported by the build with all the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType

from ..config import Config
from . import audit_chain, audit_trail, audit_writer, http, keycloak_auth, keycloak_runtime, logs, service
from .model import Observable

__all__ = ["AREAS", "Observable", "Observables", "collect"]

AREAS: tuple[ModuleType, ...] = (
    http, service, audit_writer, audit_chain, audit_trail, keycloak_auth, keycloak_runtime, logs,
)


@dataclass(frozen=True)
class Observables:
    defined: dict[str, Observable] = field(default_factory=dict)
    """Every observable by name, whatever the features."""
    enabled: dict[str, Observable] = field(default_factory=dict)
    """Those whose feature is switched on: what renders."""
    problems: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Observable]:
        return iter(self.enabled.values())

    def owner_of(self, alert: str) -> Observable | None:
        """The enabled observable that defines ``alert`` (or, for alerts defined by an SLO spec, shows it)."""
        owners = [o for o in self.enabled.values() if alert in (a.name for a in o.alerts)]
        owners = owners or [o for o in self.enabled.values() if alert in o.alert_refs and o.runbook]
        return owners[0] if owners else None


@lru_cache(maxsize=16)
def collect(cfg: Config) -> Observables:
    defined: dict[str, Observable] = {}
    problems: list[str] = []
    for area in AREAS:
        try:
            found = area.observables(cfg)
        except Exception as exc:  # a definition that cannot be built is a problem to list, not a traceback
            problems.append(f"observables of {area.__name__.rsplit('.', 1)[-1]}: cannot be built: "
                            f"{type(exc).__name__}: {exc}")
            continue
        for obs in found:
            if obs.name in defined:
                problems.append(f"observable {obs.name}: defined twice")
                continue
            defined[obs.name] = obs
            problems += obs.problems()
    enabled = {name: obs for name, obs in defined.items() if cfg.enabled(obs.feature)}
    return Observables(defined, enabled, tuple(problems))
