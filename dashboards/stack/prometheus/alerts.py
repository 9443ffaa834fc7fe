"""Alert rule files, assembled from the observables that define the alerts (``dashboards.observables``).

Every alert is written once, inside the observable whose panel shows what it
watches, with the cases that prove it fires and stays silent; this module only
groups them by rule file. A feature switched off takes its observables, and
so its alerts and cases, with it.
"""

from __future__ import annotations

from typing import Final

from ...config import Config
from ...observables import collect
from .rules import Group, RuleFile

ALERT_FILES: Final = {"targets": "targets", "app-alerts": "app", "keycloak-alerts": "keycloak",
                      "audit-alerts": "audit"}
"""Rule file stem -> its group's name."""


def rule_file(cfg: Config, stem: str) -> RuleFile:
    observables = [o for o in collect(cfg) if o.rule_file == stem]
    alerts = tuple(a for o in observables for a in o.alerts)
    cases = tuple(c for o in observables for c in o.cases)
    return RuleFile(stem, (Group(ALERT_FILES[stem], alerts),) if alerts else (), cases)
