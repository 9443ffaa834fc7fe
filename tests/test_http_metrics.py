"""The lock-free request series must expose exactly what prometheus-client's own metrics would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from fastapi_lookout import metrics
from fastapi_lookout.http_metrics import EXEMPLAR_INTERVAL_SECONDS, HttpMetrics


def catalog_twins(registry: CollectorRegistry) -> tuple[Counter, Histogram, Gauge]:
    """Fresh objects with the catalog's names, help, labels and buckets."""
    spec = {s.name: s for s in metrics.CATALOG}
    req, dur, prog = (spec[m._name] for m in (metrics.HTTP_REQUESTS, metrics.HTTP_REQUEST_DURATION,
                                              metrics.HTTP_REQUESTS_IN_PROGRESS))
    return (
        Counter(req.name, req.help, req.labels, registry=registry),
        Histogram(dur.name, dur.help, dur.labels, buckets=metrics.LATENCY_BUCKETS, registry=registry),
        Gauge(prog.name, prog.help, prog.labels, registry=registry),
    )


def sorted_lines(text: bytes) -> list[bytes]:
    return sorted(text.splitlines())


def test_same_requests_give_the_same_exposition_as_prometheus_client():
    ours_registry, reference_registry = CollectorRegistry(), CollectorRegistry()
    ours = HttpMetrics(*catalog_twins(ours_registry), registry=ours_registry, exemplars=False)
    counter, histogram, gauge = catalog_twins(reference_registry)
    rng = random.Random(7)
    routes = [("GET", "/api/authors"), ("POST", "/api/authors"), ("GET", "unmatched"), ("OTHER", "/health")]
    edges = [*metrics.LATENCY_BUCKETS, 0.0, 99.0]  # exactly on a bucket bound counts in that bucket (le)
    open_requests = []
    for i in range(3000):
        method, endpoint = rng.choice(routes)
        status = rng.choice([200, 201, 401, 404, 500])
        duration = rng.choice(edges) if i % 5 == 0 else rng.expovariate(20)
        series = ours.series(method, endpoint)
        series.start()
        if i % 97 == 0:  # some stay in progress at scrape time
            open_requests.append((method, endpoint))
            gauge.labels(method, endpoint).inc()
            continue
        series.finish(status, duration, float(i), f"req-{i}")
        counter.labels(method, endpoint, str(status)).inc()
        histogram.labels(method, endpoint).observe(duration)
        gauge.labels(method, endpoint)
    assert open_requests
    ours_text, reference_text = generate_latest(ours_registry), generate_latest(reference_registry)
    assert sorted_lines(ours_text) == sorted_lines(reference_text)
    assert b'http_requests_in_progress{endpoint="' in ours_text


def test_exemplars_carry_the_request_id_and_refresh_at_most_once_a_second_per_bucket():
    registry = CollectorRegistry()
    ours = HttpMetrics(*catalog_twins(registry), registry=registry)
    series = ours.series("GET", "/api/authors")
    for i, now in enumerate([100.0, 100.2, 100.9]):  # the same bucket within a second: the first one stays
        series.start()
        series.finish(200, 0.003, now, f"first-{i}")
    series.start()
    series.finish(200, 0.003, 100.0 + EXEMPLAR_INTERVAL_SECONDS, "later")
    series.start()
    series.finish(200, 0.7, 100.1, "slow")  # another bucket has its own clock
    text = generate_openmetrics(registry).decode()
    bucket_5ms = next(line for line in text.splitlines() if 'le="0.005"' in line)
    bucket_1s = next(line for line in text.splitlines() if 'le="1.0"' in line)
    assert '# {request_id="later"} 0.003' in bucket_5ms
    assert '# {request_id="slow"} 0.7' in bucket_1s


def test_the_service_registry_reports_the_catalog_names_once():
    from prometheus_client import REGISTRY

    names = [metric.name for metric in REGISTRY.collect()]
    for metric in (metrics.HTTP_REQUESTS, metrics.HTTP_REQUEST_DURATION, metrics.HTTP_REQUESTS_IN_PROGRESS):
        assert names.count(metric._name) == 1, metric._name
