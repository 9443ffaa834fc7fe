"""The Keycloak stand-in serves what a stock Keycloak 26 serves, in Keycloak's own format quirks."""

from __future__ import annotations

import re
from collections import defaultdict
from itertools import pairwise

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from dashboards.catalogs import keycloak as catalog
from tests.support.keycloak_exporter import OPENMETRICS, TEXT_004, KeycloakExporter, java_double, render

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
"""What Prometheus 2.42 sends when it scrapes."""
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{.*\})? (?P<value>\S+)$")
JAVA_DOUBLE = re.compile(r"^(-?\d+\.\d+(E-?\d+)?|\+Inf|-Inf|NaN)$")
LAZY = ("keycloak_user_events_total", "keycloak_credentials_password_hashing_validations_total")


def _types(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def _samples(text: str) -> dict[tuple[str, str], float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            match = SAMPLE.match(line)
            assert match, line
            out[(match["name"], match["labels"] or "")] = float(match["value"])
    return out


def _family_of(types: dict[str, str], name: str) -> str:
    """The ``# TYPE`` family of a sample: ``x_bucket`` of histogram ``x``, ``x_total`` of counter ``x_total``."""
    if name in types:
        return name
    base = re.sub(r"_(bucket|count|sum)$", "", name)
    assert types.get(base) in ("histogram", "summary"), name
    return base


def test_java_doubles():
    assert [java_double(v) for v in (1.0, 0.0013, 1.476395008e9, 2.0e-4, 8388608.0, -1.0, 0.0, 1.8865590272e10,
                                      0.25, float("inf"))] == [
        "1.0", "0.0013", "1.476395008E9", "2.0E-4", "8388608.0", "-1.0", "0.0", "1.8865590272E10", "0.25", "+Inf"]


def test_every_catalog_family_is_served_with_its_type_and_only_its_labels():
    text = render(5).decode()
    types = _types(text)
    labels: dict[str, set[str]] = defaultdict(set)
    for line in text.splitlines():
        if not line.startswith("#"):
            match = SAMPLE.match(line)
            assert match, line
            family = _family_of(types, match["name"])
            labels[family] |= set(re.findall(r'(\w+)="', match["labels"] or ""))
    for family in catalog.FAMILIES:
        assert types.get(family.name) == family.type, family.name
        assert labels[family.name] - {"le"} <= set(family.labels), family.name
    assert {"client_id", "error", "event", "realm"} <= labels["keycloak_user_events_total"]
    assert sum(1 for _ in parse_text(text)) == len(types)  # and a real parser reads every family


def test_text_format_has_keycloaks_quirks():
    text = render(5).decode()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# TYPE "):
            assert lines[i - 1].startswith(f"# HELP {line.split()[2]} "), "HELP comes right before TYPE"
        elif not line.startswith("#"):
            match = SAMPLE.match(line)
            assert match and JAVA_DOUBLE.match(match["value"]), line
            assert match["labels"] is None or match["labels"].endswith(',}'), line
    assert "# TYPE keycloak_user_events_total counter" in lines  # counter families keep _total
    assert 'error="",event="login"' in text and 'error="invalid_user_credentials",event="login"' in text
    assert "1.476395008E9" in text and 'le="1.0",}' in text and 'le="0.25",}' in text
    assert 'outcome="SERVER_ERROR"' in text
    assert "# EOF" not in text
    caches = set(re.findall(r'vendor_statistics_approximate_entries\{cache="(\w+)"', text))
    assert {"realms", "users", "sessions", "authenticationSessions", "offlineSessions", "loginFailures"} <= caches


def test_openmetrics_for_a_bare_request():
    text = render(5, openmetrics=True).decode()
    assert text.endswith("# EOF\n")
    assert "# TYPE keycloak_user_events counter" in text and ",}" not in text
    families = {f.name: f.type for f in parse_openmetrics(text)}
    assert families["agroal_active_count"] == "gauge" and families["agroal_acquire_count"] == "counter"
    assert len(families) == len(catalog.FAMILIES)


def test_counters_grow_by_type_and_count_named_gauges_go_both_ways():
    scrapes = [render(n).decode() for n in range(2, 7)]
    types = _types(scrapes[0])
    values = [_samples(s) for s in scrapes]
    for key in values[0]:
        name = key[0]
        kind = types[_family_of(types, name)]
        series = [v[key] for v in values]
        if kind == "counter" and name != "jvm_info_total":  # Keycloak's info counter is 1, always
            assert all(b > a for a, b in pairwise(series)), key
        elif kind in ("histogram", "summary") and name.endswith("_count"):
            assert all(b >= a for a, b in pairwise(series)), key
    for gauge in ("agroal_active_count", "agroal_available_count", "agroal_awaiting_count"):
        assert types[gauge] == "gauge"
        series = [v[(gauge, '{datasource="default",}')] for v in values]
        assert any(b < a for a, b in pairwise(series)), gauge


def test_lazy_families_appear_with_the_first_event_and_never_on_an_idle_keycloak():
    first, later = render(1).decode(), render(2).decode()
    for family in LAZY:
        assert family not in first and family in later
    assert "SERVER_ERROR" not in first and "SERVER_ERROR" in later
    idle = [render(n, traffic=False).decode() for n in (1, 2, 3)]
    assert not any(family in text or "SERVER_ERROR" in text for text in idle for family in LAZY)
    requests = [_samples(t) for t in idle]
    key = next(k for k in requests[0] if k[0] == "http_server_requests_seconds_count" and "/token" in k[1])
    assert requests[0][key] == requests[2][key]  # nobody asks an idle Keycloak for tokens


@pytest.mark.parametrize(("accept", "content_type"), [
    (PROMETHEUS_ACCEPT, TEXT_004), ("text/plain", TEXT_004), ("", OPENMETRICS), ("*/*", OPENMETRICS),
    ("application/openmetrics-text; version=1.0.0", OPENMETRICS),
])
def test_the_format_follows_the_accept_header(accept, content_type):
    with KeycloakExporter() as kc:
        headers = {"Accept": accept} if accept else {}
        response = httpx.get(kc.url, headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == content_type
        assert response.text.endswith("# EOF\n") == (content_type == OPENMETRICS)
        assert httpx.get(f"http://{kc.target}/other").status_code == 404
        assert kc.scrapes == 1
