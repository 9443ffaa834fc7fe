"""HTTP request metrics (count, latency, in progress) updated without a lock per request.

prometheus-client takes a mutex and walks three method calls for every
``inc``/``observe``; for the three series every request touches that was more
than half of the instrumentation's cost. Here each (method, endpoint) gets one
``RouteSeries`` of plain counters that the middleware updates on the event
loop thread, and ``HttpMetrics.collect`` turns them into the same families,
names, labels and buckets that the catalog's ``Counter``/``Histogram``/``Gauge``
declare (a test holds the two byte-identical). The catalog objects stay the one
definition of those metrics; in single-process mode they are unregistered and
this collector speaks for them.

In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) values must reach the
shared files, so ``SharedRouteSeries`` writes through to the catalog objects
instead (exemplars are not kept there: a limit of prometheus-client's
multiprocess storage).

Reads at scrape time are not synchronised with updates: a scrape racing a
request may see its count and not yet its sum, never a torn bucket list
(``_count`` is derived from the same snapshot as the buckets).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

EXEMPLAR_INTERVAL_SECONDS = 1.0
"""Prometheus keeps one exemplar per bucket per scrape: refreshing one more often is work nobody reads."""


class Series(Protocol):
    def start(self) -> None: ...

    def finish(self, status: int, duration: float, now: float, request_id: str) -> None: ...


class RouteSeries:
    """The request series of one (method, endpoint) in this process.

    ``counts[i]`` holds the requests whose duration fell in bucket ``i`` (not
    cumulative; the last slot is ``+Inf``); ``statuses`` counts answers per code.
    """

    __slots__ = ("bounds", "counts", "exemplar_at", "exemplars", "in_progress", "labels", "statuses", "total")

    def __init__(self, labels: tuple[str, str], bounds: tuple[float, ...], exemplars: bool) -> None:
        self.labels = labels
        self.bounds = bounds
        self.in_progress = 0
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.statuses: dict[int, int] = {}
        self.exemplars: list[Exemplar | None] | None = [None] * (len(bounds) + 1) if exemplars else None
        self.exemplar_at = [-EXEMPLAR_INTERVAL_SECONDS] * (len(bounds) + 1)

    def start(self) -> None:
        self.in_progress += 1

    def finish(self, status: int, duration: float, now: float, request_id: str) -> None:
        """``now`` is any monotonic clock in seconds (the caller's ``perf_counter`` at the end)."""
        self.in_progress -= 1
        bucket = bisect_left(self.bounds, duration)
        self.counts[bucket] += 1
        self.total += duration
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        if self.exemplars is not None and now - self.exemplar_at[bucket] >= EXEMPLAR_INTERVAL_SECONDS:
            self.exemplar_at[bucket] = now
            self.exemplars[bucket] = Exemplar({"request_id": request_id}, duration, time.time())


class SharedRouteSeries:
    """Multiprocess mode: the same updates, written through to prometheus-client's shared files."""

    __slots__ = ("_duration", "_endpoint", "_in_progress", "_method", "_requests", "_statuses")

    def __init__(self, metrics: HttpMetrics, method: str, endpoint: str) -> None:
        self._method, self._endpoint = method, endpoint
        self._requests = metrics.requests
        self._in_progress = metrics.in_progress.labels(method, endpoint)
        self._duration = metrics.duration.labels(method, endpoint)
        self._statuses: dict[int, Counter] = {}

    def start(self) -> None:
        self._in_progress.inc()

    def finish(self, status: int, duration: float, now: float, request_id: str) -> None:
        self._in_progress.dec()
        counter = self._statuses.get(status)
        if counter is None:
            counter = self._statuses[status] = self._requests.labels(self._method, self._endpoint, str(status))
        counter.inc()
        self._duration.observe(duration)


class HttpMetrics(Collector):
    """The three per-request families, one ``Series`` per (method, endpoint)."""

    def __init__(
        self,
        requests: Counter,
        duration: Histogram,
        in_progress: Gauge,
        *,
        registry: CollectorRegistry | None,
        shared: bool = False,
        exemplars: bool = True,
    ) -> None:
        self.requests, self.duration, self.in_progress = requests, duration, in_progress
        self.shared = shared
        self.exemplars = exemplars and not shared
        self._bounds = tuple(duration._upper_bounds[:-1])  # the catalog's buckets, without +Inf
        self._le = (*(floatToGoString(b) for b in self._bounds), "+Inf")
        self._series: dict[tuple[str, str], RouteSeries | SharedRouteSeries] = {}
        if registry is not None and not shared:
            for metric in (requests, duration, in_progress):
                registry.unregister(metric)
            registry.register(self)

    def series(self, method: str, endpoint: str) -> Series:
        key = (method, endpoint)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = (
                SharedRouteSeries(self, method, endpoint) if self.shared
                else RouteSeries(key, self._bounds, self.exemplars)
            )
        return found

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def _families(self) -> tuple[Metric, Metric, Metric]:
        return (
            Metric(self.requests._name, self.requests._documentation, "counter"),
            Metric(self.duration._name, self.duration._documentation, "histogram"),
            Metric(self.in_progress._name, self.in_progress._documentation, "gauge"),
        )

    def collect(self) -> Iterator[Metric]:
        if self.shared:  # the catalog objects are registered and report themselves
            return iter(())
        requests, duration, in_progress = self._families()
        total_name, bucket_name = requests.name + "_total", duration.name + "_bucket"
        count_name, sum_name = duration.name + "_count", duration.name + "_sum"
        for series in list(self._series.values()):
            assert isinstance(series, RouteSeries)
            method, endpoint = series.labels
            labels = {"method": method, "endpoint": endpoint}
            for status, value in list(series.statuses.items()):
                requests.samples.append(
                    Sample(total_name, {**labels, "status_code": str(status)}, float(value)))
            counts = list(series.counts)  # one snapshot: buckets and _count agree
            exemplars = list(series.exemplars) if series.exemplars is not None else None
            cumulative = 0
            for i, le in enumerate(self._le):
                cumulative += counts[i]
                duration.samples.append(Sample(bucket_name, {**labels, "le": le}, float(cumulative), None,
                                               exemplars[i] if exemplars is not None else None))
            duration.samples.append(Sample(count_name, labels, float(cumulative)))
            duration.samples.append(Sample(sum_name, labels, series.total))
            in_progress.samples.append(Sample(in_progress.name, labels, float(series.in_progress)))
        return iter((requests, duration, in_progress))
