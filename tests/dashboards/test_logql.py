"""LogQL: Loki's grammar (node) for syntax; stream labels and ``| json`` fields against the contract."""

from __future__ import annotations

import pytest

from dashboards.catalogs.logs import LOG_FIELDS, STREAM_LABELS
from dashboards.config import Config
from dashboards.grafana import artifacts as grafana
from dashboards.queries import logs as lq
from dashboards.validate import logql
from dashboards.validate.panels import targets, validate

pytestmark = pytest.mark.usefixtures("node_logql")


def _check(query: str, fields: frozenset[str] = LOG_FIELDS) -> list[str]:
    return logql.check(logql.parse_batch([query])[0], fields)


def _loki_queries(built) -> list[str]:
    return [t.expr for d in built.values() for t in targets(d) if t.ds_type == "loki" and not t.is_variable]


def test_every_generated_logql_query_parses_and_uses_known_names(built, cfg):
    queries = _loki_queries(built)
    assert len(queries) >= 12
    parsed = logql.parse_batch(queries)
    problems = {q: logql.check(p, LOG_FIELDS) for q, p in zip(queries, parsed, strict=True)}
    assert {q: p for q, p in problems.items() if p} == {}
    assert all(p.ok for p in parsed)


def test_one_node_process_checks_the_whole_batch_with_details():
    parsed = logql.parse_batch([
        '{service=~"$service", level="error"} |= "x" | json | user_id=~`${user_id:regex}.*` | status_code >= 500'
        ' | line_format "{{.method}} {{ .endpoint | lower }}"',
        'sum by (service, level) (count_over_time({service="a"} | json | __error__="" [$__auto]))',
    ])
    first, second = parsed
    assert first.stream_labels == ("service", "level")
    assert first.label_filters == (("user_id", True), ("status_code", True))
    assert first.line_format_fields == ("method", "endpoint")
    assert first.parsers == ("Json",)
    assert second.grouping == ("service", "level")


def test_a_field_not_in_the_known_set_fails():
    query = '{service="fastapi-app"} | json | tenant_id="acme"'
    assert _check(query) == ["field 'tenant_id' in a | json filter is not a field the app logs"]
    assert _check('{service="fastapi-app"} | json | user_id="u1"') == []
    assert _check('{service="fastapi-app"} | json | user_id="u1"', LOG_FIELDS - {"user_id"}) == [
        "field 'user_id' in a | json filter is not a field the app logs"]


def test_a_syntax_error_fails_with_the_parsers_message_and_position():
    problems = _check('{service="fastapi-app"} |= "x" | json | status_code >= ')
    assert len(problems) == 1
    assert problems[0].startswith("LogQL does not parse: syntax error at position ")
    parsed = logql.parse_batch(['sum(count_over_time({service="a"} [5m])'])[0]
    assert not parsed.ok and parsed.position is not None


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ('{request_id="abc"}', "stream selector uses label 'request_id', which Alloy does not set"),
        ('{service="a", endpoint="/x"} | json', "stream selector uses label 'endpoint'"),
        ('{service="a"} | user_id="u"', "label filter on 'user_id' before any parser"),
        ('{service="a"} | json | line_format "{{.tenant}}"', "line_format uses 'tenant'"),
        ('sum by (tenant) (count_over_time({service="a"} | json [1m]))', "grouping label 'tenant'"),
        ('sum(rate({service="a"} | json | unwrap latency [1m]))', "unwrap of 'latency'"),
    ],
)
def test_stream_labels_and_fields_are_held_to_the_contract(query, problem):
    problems = _check(query)
    assert any(problem in p for p in problems), problems


def test_stream_selectors_use_only_alloy_labels(built):
    for parsed in logql.parse_batch(_loki_queries(built)):
        assert set(parsed.stream_labels) <= STREAM_LABELS


def test_the_empty_request_id_default_matches_every_line():
    # textbox default "" -> `.*`: lines without the field match too (Loki sees an empty label)
    assert "request_id=~`${request_id:regex}.*`" in lq.field_filters(Config())


def test_build_context_checks_logql_and_names_the_panel(built, cfg, monkeypatch):
    from dashboards.observables import collect

    monkeypatch.setattr(lq, "websocket_logs", lambda c: '{service=~"$service"} | json | socket_id="1"')
    grafana._dashboards.cache_clear()
    collect.cache_clear()
    try:
        problems = [str(p) for p in validate(grafana.dashboards(cfg), grafana.context(cfg))]
    finally:
        grafana._dashboards.cache_clear()
        collect.cache_clear()
    assert problems == ["application-logs / panel 'WebSocket logs' [A]: field 'socket_id' in a | json filter "
                        "is not a field the app logs"]

