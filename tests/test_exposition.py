"""Our encoders must write exactly what prometheus-client's write, and a scrape must let requests run."""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

from fastapi_lookout.exposition import _format, encode_openmetrics, encode_text, join_cooperatively
from fastapi_lookout.text_format import RenderedFamily, count_text, go_float

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


class Collected:
    def __init__(self, *metrics: Metric) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        return list(self.metrics)


def a_registry() -> tuple[CollectorRegistry, Counter]:
    registry = CollectorRegistry()
    c = Counter("things_total", "Things\\ with \"quotes\"\nand lines.", ("kind", "zone"), registry=registry)
    h = Histogram("lat_seconds", "Latency.", ("endpoint",), registry=registry, buckets=(0.1, 1.0))
    g = Gauge("temp_celsius", "Temperature.", registry=registry)
    s = Summary("size_bytes", "Sizes.", registry=registry)
    i = Info("build", "Build info.", registry=registry)
    c.labels('a"b\\c\nd', "eu").inc(3)
    c.labels("plain", "us").inc(1e21)
    h.labels("/api/authors/{author_id}").observe(0.05, {"request_id": "x"})
    h.labels("unmatched").observe(5)
    g.set(float("nan"))
    s.observe(12.5)
    i.info({"version": "1.2.3"})
    return registry, c


def odd_families() -> Collected:
    """What a custom collector may hand over: timestamps, negative zero, units, a name with a colon
    (left to prometheus-client's encoder), gauge histograms, state sets, unknown types."""
    stamped = GaugeMetricFamily("stamped", "With a timestamp.", labels=["k"])
    stamped.add_metric(["a"], -0.0, timestamp=1700000000.25)
    stamped.add_metric(["b"], 1234567.0, timestamp=12.5)
    unit = Metric("disk_bytes", "With a unit.", "gauge", unit="bytes")
    unit.add_sample("disk_bytes", {}, 2.5e-9)
    colon = Metric("job:requests:rate5m", "A recording-rule style name.", "gauge")
    colon.add_sample("job:requests:rate5m", {"job": "x"}, 0.5)
    gauge_histogram = Metric("queue_wait", "A gauge histogram.", "gaugehistogram")
    for le, value in (("1.0", 2), ("+Inf", 3)):
        gauge_histogram.add_sample("queue_wait_bucket", {"le": le}, value)
    gauge_histogram.add_sample("queue_wait_gcount", {}, 3)
    gauge_histogram.add_sample("queue_wait_gsum", {}, 4.5)
    state = Metric("feature", "A state set.", "stateset")
    state.add_sample("feature", {"feature": "a"}, 1)
    unknown = Metric("mystery", "Untyped.", "unknown")
    unknown.add_sample("mystery", {}, 7)
    counter = Metric("hits", "A counter with an exemplar without timestamp.", "counter")
    counter.add_sample("hits_total", {}, 2, exemplar=Exemplar({"trace_id": "t\n1"}, 1.0))
    counter.add_sample("hits_created", {}, 1700000000.0)
    return Collected(stamped, unit, colon, gauge_histogram, state, unknown, counter)


def test_fast_text_encoding_is_byte_identical_to_prometheus_client():
    registry, c = a_registry()
    for _ in range(2):  # the second run is served from the prefix cache
        assert encode_text(registry) == generate_latest(registry)
    c.labels("late", "eu").inc()  # a series born after the cache was filled
    assert encode_text(registry) == generate_latest(registry)
    assert encode_text(odd_families()) == generate_latest(odd_families())


def test_fast_openmetrics_encoding_is_byte_identical_to_prometheus_client():
    registry, c = a_registry()
    c.labels("with-exemplar", "eu").inc(2, {"request_id": 'r"1\\x'})
    for _ in range(2):
        assert encode_openmetrics(registry) == generate_openmetrics(registry)
    c.labels("late", "eu").inc()
    assert encode_openmetrics(registry) == generate_openmetrics(registry)
    assert b"# {request_id=" in encode_openmetrics(registry)
    assert encode_openmetrics(odd_families()) == generate_openmetrics(odd_families())


def test_an_exemplar_where_openmetrics_allows_none_is_refused_as_prometheus_client_refuses_it():
    gauge = Metric("level", "A gauge.", "gauge")
    gauge.add_sample("level", {}, 1, exemplar=Exemplar({"a": "b"}, 1.0))
    with pytest.raises(ValueError, match="has exemplars"):
        generate_openmetrics(Collected(gauge))
    with pytest.raises(ValueError, match="has exemplars"):
        encode_openmetrics(Collected(gauge))


def test_numbers_are_written_as_prometheus_client_writes_them():
    rng = random.Random(3)
    values = [0.0, -0.0, 1.0, -1.0, 999_999.0, 1e6, 1_000_001.0, 1e16, 1e22, 2.5e-9, 0.1 + 0.2, math.inf, -math.inf,
              math.nan, 123456.5, -7.0, *(rng.uniform(-1e9, 1e9) for _ in range(2000)),
              *(float(rng.randrange(0, 3_000_000)) for _ in range(2000))]
    for value in values:
        assert go_float(value) == floatToGoString(value), value
    for count in [*range(0, 2000), 999_999, 1_000_000, 1_234_567, 10**16, 10**17]:
        assert count_text(count) == floatToGoString(count), count
        assert go_float(count) == floatToGoString(count), count


def test_a_rendered_family_reads_as_the_samples_it_describes():
    samples = [Sample("jobs_total", {"queue": "a"}, 3.0)]
    family = RenderedFamily("jobs", "Jobs.", "counter", lambda openmetrics: [b'jobs_total{queue="a"} 3.0\n'],
                            lambda: list(samples))
    plain = Metric("jobs", "Jobs.", "counter")
    plain.samples = list(samples)
    assert family.samples == samples and family == plain
    assert encode_text(Collected(family)) == generate_latest(Collected(plain))
    assert encode_openmetrics(Collected(family)) == generate_openmetrics(Collected(plain))


def test_what_prometheus_asks_for_is_served_by_the_fast_openmetrics_encoder():
    encoder, content_type = choose_encoder(PROMETHEUS_ACCEPT)
    assert content_type.startswith("application/openmetrics-text")
    assert _format(encoder) == "openmetrics"
    assert _format(choose_encoder("text/plain")[0]) == "text"
    assert _format(choose_encoder("")[0]) == "text"


async def test_building_a_body_hands_the_event_loop_back_between_pieces():
    turns: list[str] = []

    async def request() -> None:
        for _ in range(3):
            turns.append("request")
            await asyncio.sleep(0)

    def parts():
        for i in range(3):
            turns.append("scrape")
            yield f"line {i}\n".encode()

    task = asyncio.ensure_future(request())
    body = await join_cooperatively(parts(), slice_seconds=0.0)
    await task
    assert body == b"line 0\nline 1\nline 2\n"
    assert turns.index("request") < turns.index("scrape", 1)  # a request ran before the scrape's second step
