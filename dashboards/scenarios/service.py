"""The reference service's metrics over a history: a healthy day, and the incidents a scenario switches on.

Names and label values come from the library's catalog (``fastapi_lookout.metrics``), so a renamed metric or
label breaks the scenarios as it breaks the panels. Rates are per second; times are seconds before the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from prometheus_client.metrics import MetricWrapperBase

from fastapi_lookout import metrics as m

from .world import Job, World

Window = Callable[[float], bool]
NEVER: Final[Window] = lambda t: False  # noqa: E731 - a window that never holds
FAST: Final = 0.02
"""Seconds every request takes while healthy."""
VERIFY_EVERY: Final = 60


@dataclass(frozen=True)
class Incidents:
    """What goes wrong, and when (each a window of time before the end)."""

    reads_fail: Window = NEVER
    """Every GET /api/authors answers 500 (the database refuses reads)."""
    slow_author: Window = NEVER
    """GET /api/authors/{author_id} is hot (most of the traffic) and takes 2 s."""
    audit_db_down: Window = NEVER
    """The audit database refuses writes: the queue fills, batches fail, rows are dropped."""
    spooled_at: float | None = None
    """A restart spooled the queue's rows at this time."""
    foreign_spool_from: float | None = None
    """From this time, a spool of another database waits for a reviewer."""
    verification_errors: Window = NEVER
    """The chain verifier cannot read the database."""
    chain_broken: Window = NEVER
    """The verifier finds the chain altered."""
    attack: Window = NEVER
    """Credential stuffing reaches the service: rate limits and refused tokens."""


def family(metric: MetricWrapperBase) -> str:
    return metric.describe()[0].name


ROUTES: Final = (
    # method, endpoint, status, requests per second while healthy
    ("GET", "/api/authors", "200", 4.0),
    ("GET", "/api/authors/{author_id}", "200", 2.0),
    ("GET", "/api/authors/{author_id}", "404", 0.1),
    ("POST", "/api/authors", "201", 0.5),
    ("POST", "/api/authors", "409", 0.05),
    ("POST", "/api/authors", "422", 0.05),
    ("DELETE", "/api/authors/{author_id}", "204", 0.1),
    ("GET", "/api/authors", "401", 0.05),
    ("DELETE", "/api/authors/{author_id}", "403", 0.02),
    ("GET", "/api/authors", "429", 0.01),
    ("GET", "/health", "200", 0.2),
    ("GET", m.UNMATCHED_ENDPOINT, "404", 0.05),
)
HOT: Final = 30.0
"""Requests per second of the slow endpoint while it is hot."""


def requests(inc: Incidents) -> list[tuple[str, str, str, Callable[[float], float]]]:
    out = []
    for method, endpoint, status, rate in ROUTES:
        if (method, endpoint, status) == ("GET", "/api/authors", "200"):
            out.append((method, endpoint, status, lambda t, r=rate: 0.0 if inc.reads_fail(t) else r))
            out.append((method, endpoint, "500", lambda t, r=rate: r if inc.reads_fail(t) else 0.0))
        elif (method, endpoint, status) == ("GET", "/api/authors/{author_id}", "200"):
            out.append((method, endpoint, status, lambda t, r=rate: HOT if inc.slow_author(t) else r))
        else:
            out.append((method, endpoint, status, lambda t, r=rate: r))
    return out


def http(world: World, job: Job, inc: Incidents) -> None:
    routes = requests(inc)
    for method, endpoint, status, rate in routes:
        world.counter(job, family(m.HTTP_REQUESTS), {"method": method, "endpoint": endpoint, "status_code": status},
                      rate)
    pairs = sorted({(method, endpoint) for method, endpoint, _, _ in routes})
    for method, endpoint in pairs:
        mine = [r for mt, ep, _, r in routes if (mt, ep) == (method, endpoint)]
        slow = endpoint == "/api/authors/{author_id}" and method == "GET"
        world.histogram(job, family(m.HTTP_REQUEST_DURATION), {"method": method, "endpoint": endpoint},
                        lambda t, mine=mine: sum(r(t) for r in mine),
                        lambda t, slow=slow: 2.0 if slow and inc.slow_author(t) else FAST, m.LATENCY_BUCKETS)
        busy = 1.0 if method == "GET" else 0.0
        world.gauge(job, family(m.HTTP_REQUESTS_IN_PROGRESS), {"method": method, "endpoint": endpoint},
                    lambda t, slow=slow, busy=busy: 60.0 if slow and inc.slow_author(t) else busy)
    world.counter(job, family(m.APP_ERRORS), {"error_type": "OperationalError", "handler": "/api/authors"},
                  lambda t: 4.0 if inc.reads_fail(t) else 0.0)
    world.gauge(job, family(m.APP_INFO), {"version": "0.2.0", "python_version": "3.11.7", "environment": "demo"},
                lambda t: 1.0)
    for operation, rate, seconds in (("select", 6.0, 0.002), ("insert", 0.5, 0.004), ("delete", 0.1, 0.003),
                                     ("update", 0.0, 0.0), ("other", 0.0, 0.0), ("audit_insert", 1.0, 0.01)):
        world.histogram(job, family(m.DB_QUERY_DURATION), {"operation": operation},
                        lambda t, r=rate: r, lambda t, s=seconds: s, m.FAST_BUCKETS)


def websocket(world: World, job: Job) -> None:
    world.gauge(job, family(m.WS_CONNECTIONS_ACTIVE), {}, lambda t: 3.0)
    for status, rate in (("accepted", 0.01), ("rejected_auth", 0.001), ("rejected_limit", 0.0)):
        world.counter(job, family(m.WS_CONNECTIONS), {"status": status}, lambda t, r=rate: r)
    world.counter(job, family(m.WS_MESSAGES_RECEIVED), {}, lambda t: 1.0)
    world.counter(job, family(m.WS_MESSAGES_SENT), {}, lambda t: 1.0)
    for pkg in ("1", "2", "3"):
        world.histogram(job, family(m.WS_MESSAGE_PROCESSING_DURATION), {"pkg_id": pkg}, lambda t: 0.3,
                        lambda t: 0.005, m.LATENCY_BUCKETS)


def protection(world: World, job: Job, inc: Incidents) -> None:
    for limit in m.RATE_LIMIT_TYPES:
        world.counter(job, family(m.RATE_LIMIT_HITS), {"limit_type": limit},
                      lambda t, limit=limit: (2.0 if inc.attack(t) else 0.01) if limit == "user" else 0.0)
    healthy = {"success": 6.0, "missing": 0.03, "expired": 0.02, "forbidden": 0.02}
    for status in m.AUTH_STATUSES:
        world.counter(job, family(m.AUTH_ATTEMPTS), {"status": status},
                      lambda t, s=status: (1.5 if inc.attack(t) else 0.0) if s == "invalid_signature"
                      else healthy.get(s, 0.0))


def audit(world: World, job: Job, inc: Incidents, span: int) -> None:
    """The writer and the chain; queue, drops and stalls follow from the outage window."""
    audited = sum(rate for method, endpoint, _, rate in ROUTES if endpoint.startswith("/api"))
    cap, drain = 3000.0, 60.0
    steps = _writer(inc, audited, cap, drain, span, job.interval)

    def at(t: float, key: str) -> float:
        return steps[min(steps, key=lambda s: abs(s - t))][key]

    world.gauge(job, family(m.AUDIT_QUEUE_SIZE), {}, lambda t: at(t, "queue"))
    world.counter(job, family(m.AUDIT_EVENTS_ENQUEUED), {}, lambda t: audited - at(t, "drop_rate"))
    world.counter(job, family(m.AUDIT_EVENTS_WRITTEN), {}, lambda t: at(t, "write_rate"))
    world.counter(job, family(m.AUDIT_EVENTS_DROPPED), {}, lambda t: at(t, "drop_rate"))
    spooled = inc.spooled_at
    world.counter(job, family(m.AUDIT_EVENTS_SPOOLED), {},
                  lambda t: 150.0 / job.interval if spooled is not None and spooled <= t < spooled + job.interval
                  else 0.0)
    world.counter(job, family(m.AUDIT_WRITE_FAILURES), {}, lambda t: 0.2 if inc.audit_db_down(t) else 0.0)
    world.histogram(job, family(m.AUDIT_BATCH_DURATION), {}, lambda t: 0.0 if inc.audit_db_down(t) else 1.0,
                    lambda t: 0.01, m.FAST_BUCKETS)
    world.gauge(job, family(m.AUDIT_LAST_WRITE), {}, lambda t: world.end + at(t, "last_write"))
    world.gauge(job, family(m.AUDIT_SPOOL_FOREIGN_ROWS), {},
                lambda t: 320.0 if inc.foreign_spool_from is not None and t >= inc.foreign_spool_from else 0.0)
    chain(world, job, inc, audited)


def chain(world: World, job: Job, inc: Incidents, rate: float) -> None:
    def head(t: float) -> float:
        return round(rate * (t + 8 * 3600))

    def last_ok(t: float) -> float:
        """The last verification that completed, intact or broken (errors complete nothing)."""
        k = t - (t % VERIFY_EVERY)
        while inc.verification_errors(k):
            k -= VERIFY_EVERY
        return k

    world.gauge(job, family(m.AUDIT_CHAIN_HEAD_SEQ), {}, head)
    world.gauge(job, family(m.AUDIT_CHAIN_VERIFIED_SEQ), {},
                lambda t: head(last_ok(t)) if not inc.chain_broken(t) else head(-60 * 60))
    world.gauge(job, family(m.AUDIT_CHAIN_LAST_VERIFICATION), {}, lambda t: world.end + last_ok(t))
    world.gauge(job, family(m.AUDIT_CHAIN_BROKEN), {}, lambda t: 1.0 if inc.chain_broken(t) else 0.0)
    per = 1.0 / VERIFY_EVERY
    for result, window in (("ok", lambda t: not (inc.verification_errors(t) or inc.chain_broken(t))),
                           ("broken", inc.chain_broken), ("error", inc.verification_errors)):
        world.counter(job, family(m.AUDIT_CHAIN_VERIFICATIONS), {"result": result},
                      lambda t, w=window: per if w(t) else 0.0)
    world.counter(job, family(m.AUDIT_ROWS_PRUNED), {}, lambda t: 0.0)


def _writer(inc: Incidents, audited: float, cap: float, drain: float, span: int,
            step: int) -> dict[float, dict[str, float]]:
    """The writer's state at each scrape: its queue, what it writes and drops per second, its last write."""
    queue, last_write, out = 0.0, float(-span), {}
    for k in range(span // step, -1, -1):
        t = float(-k * step)
        down = inc.audit_db_down(t)
        if down:
            room = cap - queue
            taken = min(audited * step, room)
            drop_rate = (audited * step - taken) / step
            queue += taken
            write_rate = 0.0
        else:
            drop_rate = 0.0
            backlog = min(queue, (drain - audited) * step) if queue else 0.0
            queue -= backlog
            write_rate = audited + backlog / step
            last_write = t
        out[t] = {"queue": queue, "write_rate": write_rate, "drop_rate": drop_rate, "last_write": last_write}
    return out


def reference_service(world: World, job: Job, inc: Incidents) -> None:
    world.up(job)
    http(world, job, inc)
    websocket(world, job)
    protection(world, job, inc)
    audit(world, job, inc, world.span)
