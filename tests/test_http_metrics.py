"""The lock-free request series must expose exactly what prometheus-client's own metrics would."""

from __future__ import annotations

import random

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from fastapi_lookout import metrics
from fastapi_lookout.exposition import encode_openmetrics, encode_text
from fastapi_lookout.http_metrics import EXEMPLAR_INTERVAL_SECONDS, HttpMetrics


def catalog_twins(registry: CollectorRegistry | None) -> tuple[Counter, Histogram, Gauge]:
    """Fresh objects with the catalog's names, help, labels and buckets (``registry=None``: as the catalog
    declares its own, for ``HttpMetrics`` to report)."""
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
    ours = HttpMetrics(*catalog_twins(None), buckets=metrics.LATENCY_BUCKETS, registry=ours_registry,
                       exemplars=False)
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
    assert encode_text(ours_registry) == ours_text  # the rendered lines say what the samples say
    assert encode_openmetrics(ours_registry) == generate_openmetrics(ours_registry)


def test_exemplars_carry_the_request_id_and_refresh_at_most_once_a_second_per_bucket():
    registry = CollectorRegistry()
    ours = HttpMetrics(*catalog_twins(None), buckets=metrics.LATENCY_BUCKETS, registry=registry)
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
    assert encode_openmetrics(registry).decode() == text  # the rendered lines carry the same exemplars


def test_the_service_registry_reports_the_catalog_names_once():
    names = [metric.name for metric in REGISTRY.collect()]
    for metric in (metrics.HTTP_REQUESTS, metrics.HTTP_REQUEST_DURATION, metrics.HTTP_REQUESTS_IN_PROGRESS):
        family = metric.describe()[0].name
        assert names.count(family) == 1, family


def test_the_catalog_histogram_and_the_request_series_share_their_buckets():
    assert metrics.HTTP.bounds == metrics.LATENCY_BUCKETS
    assert tuple(metrics.HTTP_REQUEST_DURATION._upper_bounds[:-1]) == metrics.LATENCY_BUCKETS  # test-only peek


def test_a_scrape_reuses_unchanged_series_and_renders_changed_ones_again():
    ours_registry, reference_registry = CollectorRegistry(), CollectorRegistry()
    ours = HttpMetrics(*catalog_twins(None), buckets=metrics.LATENCY_BUCKETS, registry=ours_registry,
                       exemplars=False)
    counter, histogram, gauge = catalog_twins(reference_registry)

    def request(method: str, endpoint: str, status: int, duration: float, *, finish: bool = True) -> None:
        series = ours.series(method, endpoint)
        series.start()
        gauge.labels(method, endpoint).inc()
        histogram.labels(method, endpoint)
        if finish:
            series.finish(status, duration, 0.0, "r")
            gauge.labels(method, endpoint).dec()
            counter.labels(method, endpoint, str(status)).inc()
            histogram.labels(method, endpoint).observe(duration)

    for i in range(50):
        request("GET", f"/r{i}", 200, 0.003 * i)
    for step in range(4):
        assert sorted_lines(encode_text(ours_registry)) == sorted_lines(generate_latest(reference_registry)), step
        request("GET", f"/r{step}", 500, 0.7)  # one series changes: a new status, another bucket
        request("POST", "/new", 201, 0.0)  # a new series; a zero duration still counts
        request("GET", "/r10", 200, 0.2, finish=False)  # only the in-progress gauge moves
    assert sorted_lines(encode_text(ours_registry)) == sorted_lines(generate_latest(reference_registry))


def test_odd_route_templates_and_huge_counts_are_written_as_prometheus_client_writes_them():
    registry = CollectorRegistry()
    ours = HttpMetrics(*catalog_twins(None), buckets=metrics.LATENCY_BUCKETS, registry=registry)
    for endpoint in ('/100%/{x}', '/a"b\\c', "/ünïcode/%d%s%%"):
        series = ours.series("GET", endpoint)
        series.start()
        series.finish(200, 0.2, 1.0, "r%1")
    assert encode_text(registry) == generate_latest(registry)
    assert encode_openmetrics(registry) == generate_openmetrics(registry)
    busy = ours.series("GET", "/busy")
    busy.start()
    busy.finish(200, 0.2, 1.0, "r")
    busy.counts[0] += 2_345_678  # as if that many requests had been that fast
    busy.statuses[200] += 2_345_678
    assert b'le="0.005",method="GET"} 2.345678e+06' in encode_text(registry)
    assert encode_text(registry) == generate_latest(registry)
    assert encode_openmetrics(registry) == generate_openmetrics(registry)


def test_what_is_counted_on_the_catalog_objects_directly_reaches_the_scrape():
    ours_registry = CollectorRegistry()
    requests, duration, in_progress = catalog_twins(None)
    ours = HttpMetrics(requests, duration, in_progress, buckets=metrics.LATENCY_BUCKETS, registry=ours_registry,
                       exemplars=False)
    series = ours.series("GET", "/api/authors")
    series.start()
    series.finish(200, 0.02, 0.0, "r")
    requests.labels("GET", "/api/authors", "200").inc(2)  # the same series: added up
    requests.labels("GET", "/elsewhere", "204").inc()  # a series only counted directly
    duration.labels("GET", "/api/authors").observe(0.3)
    in_progress.labels("GET", "/api/authors").inc()
    get = ours_registry.get_sample_value
    assert get("http_requests_total", {"method": "GET", "endpoint": "/api/authors", "status_code": "200"}) == 3
    assert get("http_requests_total", {"method": "GET", "endpoint": "/elsewhere", "status_code": "204"}) == 1
    assert get("http_request_duration_seconds_count", {"method": "GET", "endpoint": "/api/authors"}) == 2
    assert get("http_request_duration_seconds_bucket",
               {"method": "GET", "endpoint": "/api/authors", "le": "0.025"}) == 1
    assert get("http_requests_in_progress", {"method": "GET", "endpoint": "/api/authors"}) == 1
    assert encode_text(ours_registry) == generate_latest(ours_registry)


def test_the_service_catalog_counter_counted_directly_reaches_the_service_registry():
    labels = {"method": "GET", "endpoint": "/counted-by-hand", "status_code": "299"}
    metrics.HTTP_REQUESTS.labels(*labels.values()).inc()
    try:
        assert REGISTRY.get_sample_value("http_requests_total", labels) == 1
    finally:
        metrics.HTTP_REQUESTS.remove(*labels.values())
