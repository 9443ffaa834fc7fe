"""The named scenarios: a history each, and what every panel and alert must show in it, written down as data.

Times are minutes before the end of the history (the moment the dashboard is opened). Expectations name a
panel by dashboard and title; alerts by name, firing at a given time (and nothing else firing then).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ..grafana import uids
from .keycloak import Storm
from .service import Incidents
from .world import between

F, K, A = uids.FASTAPI, uids.KEYCLOAK, uids.AUDIT


@dataclass(frozen=True, slots=True)
class Expect:
    """What a panel reads: its colour, its value (stat: the reduced value; others: the peak), its last value."""

    colour: str | None = None
    value: float | None = None
    at_least: float | None = None
    last: float | None = None
    lowest_last: float | None = None
    """The lowest last value among the panel's series (one line per target: the one that is down)."""
    gapless_since: float | None = None
    """Minutes before the end from which every step has a point (no hole in the line)."""
    floor_since: tuple[float, float] | None = None
    """(minutes, value): from that many minutes before the end, the panel never draws below the value (no hole,
    and no dip to a zero that did not happen)."""
    text: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    story: str
    service: Incidents = field(default_factory=Incidents)
    keycloak: Storm = field(default_factory=Storm)
    app_down: tuple[tuple[float, float], ...] = ()
    """(from, to) minutes before the end where every scrape of the app fails."""
    keycloak_missed: tuple[float, ...] = ()
    """Minutes before the end where one Keycloak scrape failed."""
    panels: Mapping[tuple[str, str], Expect] = field(default_factory=dict)
    alerts: Mapping[float, frozenset[str]] = field(default_factory=dict)
    """Minutes before the end -> exactly the alerts firing then."""


NONE: Final = frozenset[str]()

SCENARIOS: Final = (
    Scenario(
        "healthy", "Steady traffic, nothing wrong: every panel has data, nothing is orange or red, nothing fires.",
        alerts={0: NONE, 30: NONE},
    ),
    Scenario(
        "5xx-burst", "From 30 to 20 minutes ago every GET /api/authors answered 500 (the database refused reads).",
        service=Incidents(reads_fail=between(30, 20)),
        panels={
            (F, "Error ratio (5xx)"): Expect(colour="red", at_least=0.05),
            (F, "Error ratio (5xx) over time"): Expect(colour="red", at_least=0.4, last=0.0),
            (F, "Unhandled exceptions"): Expect(at_least=3.5, last=0.0),
        },
        alerts={20: frozenset({"AppHighErrorRatio", "AppAvailabilityBudgetBurn"}), 0: NONE},
    ),
    Scenario(
        "audit-outage", "From 50 to 40 minutes ago the audit database refused writes: the queue filled, rows were "
        "dropped; a restart at 40 minutes spooled some and found a spool of another database.",
        service=Incidents(audit_db_down=between(50, 40), spooled_at=-40 * 60, foreign_spool_from=-40 * 60),
        panels={
            (F, "Dropped rows"): Expect(colour="red", at_least=1000),
            (F, "Write failures"): Expect(colour="red", at_least=100),
            (F, "Spooled rows"): Expect(colour="orange", value=150),
            (F, "Rows awaiting review now"): Expect(colour="orange", value=320),
            (F, "Queue size now"): Expect(colour="green", value=0),
        },
        alerts={41: frozenset({"AuditQueueBacklog", "AuditWriteFailures", "AuditEventsDropped", "AuditWriterStalled"}),
                0: frozenset({"AuditSpoolForeignRows"})},
    ),
    Scenario(
        "credential-stuffing", "For the last 15 minutes a failed-login storm hits Keycloak (its heap and database "
        "pool suffer; one scrape 7 minutes ago failed) and the service's rate limits and token checks.",
        service=Incidents(attack=between(15, 0)),
        keycloak=Storm(failed_logins=between(15, 0), heap_pressure=between(20, 0), gc_overhead=between(25, 0),
                       pool_waiters=between(15, 0)),
        keycloak_missed=(7,),
        panels={
            (K, "Failed logins by error and realm"): Expect(colour="red", last=1.0, floor_since=(13, 0.9)),
            (K, "Heap after GC"): Expect(colour="red", last=0.95),
            (K, "GC overhead now"): Expect(colour="red", value=0.3),
            (K, "Login failure ratio"): Expect(colour="red"),
            (F, "Rate-limit hits by type"): Expect(at_least=1.9),
        },
        alerts={0: frozenset({"KeycloakFailedLoginSpike", "KeycloakFailedLoginRatioHigh", "KeycloakHeapPressure",
                              "KeycloakGcOverhead", "KeycloakDbPoolWaiters", "AppRateLimitSpike",
                              "AppAuthFailuresHigh"})},
    ),
    Scenario(
        "slow-endpoint", "For the last hour GET /api/authors/{author_id} is hot (most of the traffic) and takes 2 s.",
        service=Incidents(slow_author=between(60, 0)),
        panels={
            (F, "Latency p95 by endpoint"): Expect(colour="red", at_least=1.0),
            (F, "Latency p50 / p95 / p99"): Expect(colour="red", at_least=1.0),
        },
        alerts={0: frozenset({"AppLatencyBudgetBurn"})},
    ),
    Scenario(
        "target-down", "For the last 10 minutes every scrape of the service failed.",
        app_down=((10, 0),),
        panels={(F, "Scrape targets up"): Expect(lowest_last=0.0)},
        alerts={0: frozenset({"TargetDown"})},
    ),
    Scenario(
        "chain-failing", "From 50 to 35 minutes ago the chain verifier could not read the database; from 25 minutes "
        "ago it finds the audit trail altered.",
        service=Incidents(verification_errors=between(50, 35), chain_broken=between(25, 0)),
        panels={
            (A, "Chain status, last verification"): Expect(colour="red", text="BROKEN"),
            (A, "Failed verifications"): Expect(colour="red", at_least=24),  # tiles: 25 broken, 15 errors
            (F, "Audit chain, last verification"): Expect(colour="red", text="BROKEN"),
        },
        alerts={36: frozenset({"AuditChainVerificationStale"}), 0: frozenset({"AuditChainBroken"})},
    ),
)

BY_NAME: Final = {s.name: s for s in SCENARIOS}
