"""HTTP request metrics (count, latency, in progress) updated without a lock per request.

prometheus-client takes a mutex and walks three method calls for every
``inc``/``observe``; for the three series every request touches that was more
than half of the instrumentation's cost. Here each (method, endpoint) gets one
``RouteSeries`` of plain counters that the middleware updates on the event
loop thread, and ``HttpMetrics.collect`` turns them into the same families,
names, labels and buckets that the catalog's ``Counter``/``Histogram``/``Gauge``
declare (a test holds the two byte-identical). The catalog objects stay the one
definition of those metrics; the catalog registers this collector in their
place, and anything counted on them directly is added in.

A scrape reuses the text of every series whose counts did not change since the
last one (``_Texts``, handed over as ``RenderedFamily`` lines).

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
from itertools import accumulate
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

from fastapi_lookout.text_format import RenderedFamily, count_text, exemplar_text, go_float, label_value

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


class _RouteText:
    """The exposition lines of one ``RouteSeries`` as of its last render.

    The lines are %-templates built once per series (every label escaped, ``%`` doubled), filled by
    one C-level formatting call per render: ``%d.0`` is how prometheus-client writes a count below a
    million; larger counts go through ``count_text``. Exemplar texts are kept until the bucket's
    exemplar is replaced."""

    __slots__ = ("counts", "duration", "duration_openmetrics", "exemplars", "in_progress", "in_progress_line",
                 "in_progress_template", "openmetrics_template", "requests", "status_template", "text_template")

    def __init__(self, series: RouteSeries, names: dict[str, str], le: tuple[str, ...]) -> None:
        method, endpoint = label_value(series.labels[0]), label_value(series.labels[1])
        labels = f'endpoint="{endpoint}",method="{method}"'

        def literal(text: str) -> bytes:
            return text.replace("%", "%%").encode()

        buckets = [literal(f'{names["bucket"]}{{endpoint="{endpoint}",le="{b}",method="{method}"}} ') for b in le]
        tail = literal(f"{names['count']}{{{labels}}} ") + b"%d.0\n" + literal(f"{names['sum']}{{{labels}}} ") + b"%b\n"
        self.text_template = b"".join(b + b"%d.0\n" for b in buckets) + tail
        self.openmetrics_template = b"".join(b + b"%d.0%b\n" for b in buckets) + tail
        self.status_template = literal(f'{names["total"]}{{{labels},status_code="') + b'%d"} %b\n'
        self.in_progress_template = literal(f"{names['in_progress']}{{{labels}}} ") + b"%b\n"
        self.counts: list[int] | None = None
        self.in_progress = 0
        self.exemplars: dict[int, tuple[Exemplar, bytes]] = {}
        self.requests = self.duration = self.duration_openmetrics = self.in_progress_line = b""

    def update(self, series: RouteSeries) -> bool:
        """Renders the lines again if the series changed since; says whether it did."""
        if self.counts == series.counts and self.in_progress == series.in_progress:
            return False
        self.counts, self.in_progress = list(series.counts), series.in_progress
        template = self.status_template
        self.requests = b"".join([template % (status, count_text(n).encode()) for status, n in series.statuses.items()])
        cumulative = list(accumulate(self.counts))
        total = go_float(series.total).encode()
        if cumulative[-1] < 1_000_000:
            self.duration = self.text_template % (*cumulative, cumulative[-1], total)
        else:  # counts Go writes with an exponent
            self.duration = self.text_template.replace(b"%d.0", b"%b") % (
                *(count_text(n).encode() for n in cumulative), count_text(cumulative[-1]).encode(), total)
        self.duration_openmetrics = self.duration
        if series.exemplars is not None and any(series.exemplars):
            texts = [self._exemplar(i, e) for i, e in enumerate(series.exemplars)]
            if cumulative[-1] < 1_000_000:
                args: list[int | bytes] = [x for pair in zip(cumulative, texts, strict=True) for x in pair]
                self.duration_openmetrics = self.openmetrics_template % (*args, cumulative[-1], total)
            else:
                args = [x for n, e in zip(cumulative, texts, strict=True) for x in (count_text(n).encode(), e)]
                self.duration_openmetrics = self.openmetrics_template.replace(b"%d.0", b"%b") % (
                    *args, count_text(cumulative[-1]).encode(), total)
        self.in_progress_line = self.in_progress_template % go_float(series.in_progress).encode()
        return True

    def _exemplar(self, bucket: int, exemplar: Exemplar | None) -> bytes:
        if exemplar is None:
            return b""
        kept = self.exemplars.get(bucket)
        if kept is None or kept[0] is not exemplar:
            kept = self.exemplars[bucket] = (exemplar, exemplar_text(exemplar).encode())
        return kept[1]


class _Texts:
    """The seam of the fast scrape: the three families' text, kept between scrapes. ``refresh()`` renders
    again the series that changed since the last one (most routes see no request between two scrapes;
    rendering every line each time was most of a scrape at 25,000 series), a family's text is joined
    again only when one of its series changed."""

    def __init__(self, metrics: HttpMetrics) -> None:
        self._metrics = metrics
        self._routes: dict[tuple[str, str], _RouteText] = {}
        self._bodies: dict[tuple[int, bool], bytes] = {}

    def refresh(self) -> Iterator[bytes]:
        """Brings every series' text up to date; yields ``b""`` between batches (a caller may pause there)."""
        routes, metrics, changed = self._routes, self._metrics, False
        for n, (key, series) in enumerate(list(metrics._series.items())):
            assert isinstance(series, RouteSeries)
            text = routes.get(key)
            if text is None:
                text = routes[key] = _RouteText(series, metrics._names, metrics._le)
            if text.update(series):
                changed = True
            if n % 16 == 15:
                yield b""
        if changed:
            self._bodies.clear()

    def body(self, which: int, openmetrics: bool) -> bytes:
        """All lines of one family (0: requests, 1: duration, 2: in progress) as of the last refresh."""
        found = self._bodies.get((which, openmetrics))
        if found is None:
            texts = self._routes.values()
            if which == 0:
                found = b"".join([t.requests for t in texts])
            elif which == 1:
                found = b"".join([t.duration_openmetrics if openmetrics else t.duration for t in texts])
            else:
                found = b"".join([t.in_progress_line for t in texts])
            self._bodies[which, openmetrics] = found
        return found


class HttpMetrics(Collector):
    """The three per-request families, one ``Series`` per (method, endpoint).

    ``requests``, ``duration`` and ``in_progress`` are the catalog's objects: their names, help and
    labels are the families'; ``buckets`` are ``duration``'s. In single-process mode this collector
    reports the three families (registered in ``registry``): the middleware's series plus anything
    counted on those objects directly (a user may), added up per label set. In multiprocess mode
    (``shared``) the middleware writes through to the catalog objects, whose files report.
    """

    def __init__(
        self,
        requests: Counter,
        duration: Histogram,
        in_progress: Gauge,
        *,
        buckets: tuple[float, ...],
        registry: CollectorRegistry | None,
        shared: bool = False,
        exemplars: bool = True,
    ) -> None:
        self.requests, self.duration, self.in_progress = requests, duration, in_progress
        self.shared = shared
        self.exemplars = exemplars and not shared
        self.bounds = tuple(sorted(b for b in buckets if b != float("inf")))
        self._le = (*(floatToGoString(b) for b in self.bounds), "+Inf")
        self._series: dict[tuple[str, str], RouteSeries | SharedRouteSeries] = {}
        self._texts = _Texts(self)
        requests_family, duration_family, in_progress_family = self._families()
        self._names = {"total": requests_family.name + "_total", "bucket": duration_family.name + "_bucket",
                       "count": duration_family.name + "_count", "sum": duration_family.name + "_sum",
                       "in_progress": in_progress_family.name}
        if registry is not None and not shared:
            registry.register(self)

    def series(self, method: str, endpoint: str) -> Series:
        key = (method, endpoint)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = (
                SharedRouteSeries(self, method, endpoint) if self.shared
                else RouteSeries(key, self.bounds, self.exemplars)
            )
        return found

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def _families(self) -> tuple[Metric, Metric, Metric]:
        """Fresh, empty families named, typed and documented as the catalog's objects describe themselves."""
        requests, duration, in_progress = (
            Metric(family.name, family.documentation, family.type)
            for metric in (self.requests, self.duration, self.in_progress) for family in metric.describe()
        )
        return requests, duration, in_progress

    def collect(self) -> Iterator[Metric]:
        if self.shared:  # the catalog objects write to their files, which report
            return iter(())
        theirs = [family for metric in (self.requests, self.duration, self.in_progress)
                  for family in metric.collect() if family.samples]
        if theirs:
            return iter(self._merged(theirs))
        refreshed: list[bool] = []  # once per collection, by whichever family is written first

        def lines(which: int, openmetrics: bool) -> Iterator[bytes]:
            if not refreshed:
                refreshed.append(True)
                yield from self._texts.refresh()
            yield self._texts.body(which, openmetrics)

        return iter(
            RenderedFamily(family.name, family.documentation, family.type,
                           lambda openmetrics, which=which: lines(which, openmetrics),
                           lambda which=which: self._samples()[which])
            for which, family in enumerate(self._families())
        )

    def _samples(self) -> tuple[list[Sample], list[Sample], list[Sample]]:
        requests: list[Sample] = []
        duration: list[Sample] = []
        in_progress: list[Sample] = []
        names = self._names
        for series in list(self._series.values()):
            assert isinstance(series, RouteSeries)
            method, endpoint = series.labels
            labels = {"method": method, "endpoint": endpoint}
            for status, value in list(series.statuses.items()):
                requests.append(Sample(names["total"], {**labels, "status_code": str(status)}, float(value)))
            counts = list(series.counts)  # one snapshot: buckets and _count agree
            exemplars = list(series.exemplars) if series.exemplars is not None else None
            cumulative = 0
            for i, le in enumerate(self._le):
                cumulative += counts[i]
                duration.append(Sample(names["bucket"], {**labels, "le": le}, float(cumulative), None,
                                       exemplars[i] if exemplars is not None else None))
            duration.append(Sample(names["count"], labels, float(cumulative)))
            duration.append(Sample(names["sum"], labels, series.total))
            in_progress.append(Sample(names["in_progress"], labels, float(series.in_progress)))
        return requests, duration, in_progress

    def _merged(self, theirs: list[Metric]) -> list[Metric]:
        """The families with what was counted on the catalog objects directly added in, per sample."""
        families = self._families()
        for family, ours in zip(families, self._samples(), strict=True):
            merged: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {
                (s.name, tuple(sorted(s.labels.items()))): s for s in ours}
            for their in theirs:
                if their.name != family.name:
                    continue
                for s in their.samples:
                    key = (s.name, tuple(sorted(s.labels.items())))
                    mine = merged.get(key)
                    merged[key] = s if mine is None else mine._replace(
                        value=mine.value + s.value, exemplar=mine.exemplar or s.exemplar)
            family.samples = list(merged.values())
        return list(families)
