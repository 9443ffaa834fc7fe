"""The cached text encoder must write exactly what prometheus-client writes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary, generate_latest

from app.observability.exposition import encode_text


def test_fast_text_encoding_is_byte_identical_to_prometheus_client():
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
    for _ in range(2):  # the second run is served from the prefix cache
        assert encode_text(registry) == generate_latest(registry)
    c.labels("late", "eu").inc()  # a series born after the cache was filled
    assert encode_text(registry) == generate_latest(registry)
