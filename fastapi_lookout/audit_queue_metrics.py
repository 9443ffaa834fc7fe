"""``audit_events_enqueued_total`` and ``audit_queue_size`` without a lock per audited request.

prometheus-client takes a mutex and walks three calls per ``inc``/``set``;
``AuditWriter.enqueue`` did both for every audited request. Here a writer's
``enqueue`` calls ``accepted``, which adds one to ``enqueued`` (a plain int,
updated on the event loop's thread) and names the writer; collection reports the total and that writer's
``pending`` under the catalog's names, types and help (a test holds the
exposition byte-identical to prometheus-client's objects). As with
``http_metrics``, the catalog objects stay the one definition: the catalog
registers this collector in their place, and what is counted or set on them
directly is added in.

In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) the values must reach the
shared files, so with ``shared`` ``accepted`` and ``report`` write through to
the catalog objects, and this collector reports nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample


class HasPending(Protocol):
    @property
    def pending(self) -> int: ...


class AuditQueueMetrics(Collector):
    def __init__(
        self, enqueued: Counter, queue_size: Gauge, *, registry: CollectorRegistry | None, shared: bool = False
    ) -> None:
        self.enqueued_metric, self.queue_size_metric = enqueued, queue_size
        self.shared = shared
        self.enqueued = 0
        """Rows accepted by every writer of this process (single-process mode)."""
        self.writer: HasPending | None = None
        """The writer that last accepted a row or changed its backlog: one writer per process."""
        if registry is not None and not shared:
            registry.register(self)

    def accepted(self, writer: HasPending) -> None:
        """``writer`` accepted one row: a plain count, read at collection (no lock per row)."""
        self.enqueued += 1
        self.writer = writer
        if self.shared:
            self.enqueued_metric.inc()
            self.queue_size_metric.set(writer.pending)

    def report(self, writer: HasPending) -> None:
        """The writer's backlog changed (a batch committed, rows spooled or dropped)."""
        self.writer = writer
        if self.shared:
            self.queue_size_metric.set(writer.pending)

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def _families(self) -> tuple[Metric, Metric]:
        """Fresh, empty families named, typed and documented as the catalog's objects describe themselves."""
        enqueued, queue_size = (Metric(family.name, family.documentation, family.type)
                                for metric in (self.enqueued_metric, self.queue_size_metric)
                                for family in metric.describe())
        return enqueued, queue_size

    def collect(self) -> Iterator[Metric]:
        if self.shared:  # the catalog objects write to their files, which report
            return iter(())
        enqueued, queue_size = self._families()
        writer = self.writer
        pending = writer.pending if writer is not None else 0
        enqueued_total = float(self.enqueued) + _value(self.enqueued_metric)
        enqueued.samples.append(Sample(enqueued.name + "_total", {}, enqueued_total))
        queue_size.samples.append(Sample(queue_size.name, {}, float(pending) + _value(self.queue_size_metric)))
        return iter((enqueued, queue_size))


def _value(metric: Counter | Gauge) -> float:
    """What was counted or set on a catalog object directly (its ``_created`` sample aside)."""
    return sum((s.value for family in metric.collect() for s in family.samples if not s.name.endswith("_created")), 0.0)
