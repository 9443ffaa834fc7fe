"""The audit queue's two series, counted without a lock, must expose exactly what prometheus-client's would."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from fastapi_lookout import metrics
from fastapi_lookout.audit_queue_metrics import AuditQueueMetrics


@dataclass
class Backlog:
    pending: int = 0


def catalog_twins(registry: CollectorRegistry | None) -> tuple[Counter, Gauge]:
    """Fresh objects with the catalog's names and help (``registry=None``: as the catalog declares its own)."""
    spec = {s.name: s for s in metrics.CATALOG}
    enqueued, size = (spec[m.describe()[0].name] for m in (metrics.AUDIT_EVENTS_ENQUEUED, metrics.AUDIT_QUEUE_SIZE))
    return Counter(enqueued.name, enqueued.help, registry=registry), Gauge(size.name, size.help, registry=registry)


def test_same_counts_give_the_same_exposition_as_prometheus_client() -> None:
    ours_registry, reference_registry = CollectorRegistry(), CollectorRegistry()
    ours = AuditQueueMetrics(*catalog_twins(None), registry=ours_registry)
    counter, gauge = catalog_twins(reference_registry)
    assert generate_latest(ours_registry) == generate_latest(reference_registry)  # nothing yet: zeros

    writer = Backlog()
    for pending in (1, 2, 3, 2, 7):  # rows accepted, some committed in between
        ours.enqueued += 1
        counter.inc()
        writer.pending = pending
        ours.writer = writer
        gauge.set(pending)
    assert generate_latest(ours_registry) == generate_latest(reference_registry)
    assert generate_openmetrics(ours_registry) == generate_openmetrics(reference_registry)
    assert b"audit_events_enqueued_total 5.0" in generate_latest(ours_registry)

    writer.pending = 0  # a batch committed: the gauge follows the writer without being told
    gauge.set(0)
    assert generate_latest(ours_registry) == generate_latest(reference_registry)


def test_the_process_registry_reads_the_live_writer() -> None:
    assert not metrics.AUDIT_QUEUE.shared  # the test run is single-process
    before = metrics.REGISTRY.get_sample_value("audit_events_enqueued_total") or 0.0
    previous = metrics.AUDIT_QUEUE.writer
    try:
        metrics.AUDIT_QUEUE.enqueued += 2
        metrics.AUDIT_QUEUE.report(Backlog(pending=4))
        assert metrics.REGISTRY.get_sample_value("audit_events_enqueued_total") == before + 2
        assert metrics.REGISTRY.get_sample_value("audit_queue_size") == 4
    finally:
        metrics.AUDIT_QUEUE.enqueued -= 2
        metrics.AUDIT_QUEUE.writer = previous


def test_what_is_counted_on_the_catalog_objects_directly_reaches_the_scrape() -> None:
    registry = CollectorRegistry()
    counter, gauge = catalog_twins(None)
    ours = AuditQueueMetrics(counter, gauge, registry=registry)
    ours.accepted(Backlog(pending=2))
    counter.inc(3)
    gauge.set(1)
    assert registry.get_sample_value("audit_events_enqueued_total") == 4
    assert registry.get_sample_value("audit_queue_size") == 3


def test_multiprocess_mode_writes_through_to_the_catalog_objects() -> None:
    registry = CollectorRegistry()
    counter, gauge = catalog_twins(registry)
    shared = AuditQueueMetrics(counter, gauge, registry=registry, shared=True)
    shared.report(Backlog(pending=9))
    assert list(shared.collect()) == []  # the catalog objects (in their shared files) report themselves
    assert registry.get_sample_value("audit_queue_size") == 9
