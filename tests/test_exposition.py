"""The cached text encoder must write exactly what prometheus-client writes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from fastapi_lookout.exposition import _is_openmetrics_underscores, encode_openmetrics, encode_text

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


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


def test_fast_text_encoding_is_byte_identical_to_prometheus_client():
    registry, c = a_registry()
    for _ in range(2):  # the second run is served from the prefix cache
        assert encode_text(registry) == generate_latest(registry)
    c.labels("late", "eu").inc()  # a series born after the cache was filled
    assert encode_text(registry) == generate_latest(registry)


def test_fast_openmetrics_encoding_is_byte_identical_to_prometheus_client():
    registry, c = a_registry()
    c.labels("with-exemplar", "eu").inc(2, {"request_id": 'r"1\\x'})
    for _ in range(2):
        assert encode_openmetrics(registry) == generate_openmetrics(registry)
    c.labels("late", "eu").inc()
    assert encode_openmetrics(registry) == generate_openmetrics(registry)
    assert b"# {request_id=" in encode_openmetrics(registry)


def test_what_prometheus_asks_for_is_served_by_the_fast_openmetrics_encoder():
    encoder, content_type = choose_encoder(PROMETHEUS_ACCEPT)
    assert content_type.startswith("application/openmetrics-text")
    assert _is_openmetrics_underscores(encoder)
