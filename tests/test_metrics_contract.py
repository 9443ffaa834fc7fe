"""The metrics contract, read from the real process's ``/metrics`` after real traffic."""

from __future__ import annotations

import random
import re
import string
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fastapi_lookout import metrics
from fastapi_lookout.metrics import CATALOG
from tests.support.app_process import AppProcess
from tests.support.problems import assert_problem

ROUTE_TEMPLATES = {"/api/authors", "/api/authors/{author_id}", "/health", "/ws", metrics.UNMATCHED_ENDPOINT}


def scrape(app: AppProcess, **headers: str) -> str:
    response = httpx.get(f"{app.base_url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def own_series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")
            and not line.startswith(("python_", "process_"))]


def test_every_catalog_family_is_exposed_with_its_type_and_labels(service):
    app, _ = service
    exposed = families(scrape(app))
    for spec in CATALOG:
        family = exposed.get(spec.name)
        assert family is not None, f"{spec.name} missing from /metrics"
        assert family.type == spec.kind, (spec.name, family.type)
        for sample in family.samples:
            expected = set(spec.labels) | ({"le"} if sample.name.endswith("_bucket") else set())
            assert set(sample.labels) == expected, (sample.name, sample.labels)


def test_traffic_fills_the_series_dashboards_read(service):
    _, sent = service
    exposed = families(sent.scrape)

    def total(name: str, sample_name: str, **labels: str) -> float:
        return sum(s.value for s in exposed[name].samples
                   if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()))

    for status in ("200", "201", "204", "401", "403", "404", "405", "409", "413", "422", "429"):
        assert total("http_requests", "http_requests_total", status_code=status) > 0, status
    assert total("ws_connections", "ws_connections_total", status="accepted") == 2
    assert total("ws_connections", "ws_connections_total", status="rejected_auth") == 1
    assert total("ws_messages_received", "ws_messages_received_total") == 6
    assert total("rate_limit_hits", "rate_limit_hits_total", limit_type="user") > 0
    assert total("auth_attempts", "auth_attempts_total", status="expired") == 1
    assert total("auth_attempts", "auth_attempts_total", status="malformed") >= 1
    assert total("auth_attempts", "auth_attempts_total", status="forbidden") >= 2
    assert total("app_info", "app_info", environment="test") == 1
    assert total("db_query_duration_seconds", "db_query_duration_seconds_count", operation="insert") >= 2


def test_endpoint_label_is_always_a_route_template(service):
    app, _ = service
    for family in text_string_to_metric_families(scrape(app)):
        for sample in family.samples:
            if "endpoint" in sample.labels:
                assert sample.labels["endpoint"] in ROUTE_TEMPLATES, sample


def test_unmatched_paths_share_one_series(service):
    app, _ = service
    rng = random.Random(7)
    with app.client() as client:
        client.get("/warm/up")
        before = len(own_series(scrape(app)))
        for _ in range(2000):
            path = "/" + "/".join("".join(rng.choices(string.ascii_letters, k=8)) for _ in range(3))
            assert client.get(path).status_code == 404
    assert len(own_series(scrape(app))) == before


def test_made_up_methods_collapse_to_one_value(service):
    app, _ = service
    with app.client() as client:
        for i in range(50):
            client.request(f"BREW{i}", "/api/authors")
    methods = {s.labels["method"] for f in text_string_to_metric_families(scrape(app))
               for s in f.samples if "method" in s.labels}
    assert methods <= metrics.HTTP_METHODS | {metrics.OTHER_METHOD}
    assert metrics.OTHER_METHOD in methods


def test_latency_histogram_carries_request_id_exemplars_in_openmetrics(service):
    app, _ = service
    # A bucket's exemplar is refreshed at most once a second: probe until one of ours is the one shown.
    sent: set[str] = set()
    deadline = time.monotonic() + 10
    with app.client() as client:
        while True:
            probe = f"exemplar-probe-{len(sent)}"
            client.get("/health", headers={"X-Correlation-ID": probe})
            sent.add(probe)
            text = scrape(app, Accept="application/openmetrics-text; version=1.0.0")
            shown = set(re.findall(r'http_request_duration_seconds_bucket\{[^}]*endpoint="/health"[^}]*\}'
                                   r' \S+ # \{request_id="([^"]+)"\}', text))
            if shown & sent or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert text.rstrip().endswith("# EOF")
    assert shown & sent, shown
    assert "# {" not in scrape(app)  # text format 0.0.4 has no exemplars


def test_metrics_endpoint_is_not_counted_audited_or_rate_limited(service):
    app, _ = service
    for _ in range(40):  # more than the per-second IP burst would allow on /api
        scrape(app)
    assert 'endpoint="/metrics"' not in scrape(app)


def test_metrics_token_is_required_when_configured(tmp_path):
    with AppProcess({"METRICS_TOKEN": "s3cret-scrape"}, workdir=tmp_path) as app:
        missing = httpx.get(f"{app.base_url}/metrics")
        assert_problem(missing, 401, "missing")  # the one error format, here too
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = httpx.get(f"{app.base_url}/metrics", headers={"Authorization": "Bearer nope"})
        assert_problem(wrong, 401, "invalid_token")
        assert "nope" not in wrong.text
        ok = httpx.get(f"{app.base_url}/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert ok.status_code == 200 and "http_requests_total" in ok.text
