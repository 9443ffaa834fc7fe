"""The config loader in process: every value it refuses or accepts, and how it lists the problems.

Each problem is one line naming the key and what is wrong with the value; structural problems (unknown keys,
wrong types, a non-mapping) are all listed at once, and range checks run only once the shape is right.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from dashboards.config import Audit, Config, ConfigError, Endpoints, Ports, Prometheus, check, load_config


def _problems(tmp_path: Path, text: str) -> list[str]:
    """The problems ``load_config`` lists for ``text``, without the file-name prefix."""
    path = tmp_path / "c.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    prefix = f"{path}: "
    assert all(p.startswith(prefix) for p in caught.value.problems), caught.value.problems
    return [p.removeprefix(prefix) for p in caught.value.problems]


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "c.yml"
    path.write_text(text)
    return load_config(path)


# --- ConfigError and load_config's framing ---------------------------------------------------------------------------


def test_config_error_message_joins_the_problems_with_semicolons():
    error = ConfigError(["a: bad", "b: worse"])
    assert str(error) == "a: bad; b: worse"
    assert error.problems == ["a: bad", "b: worse"]
    assert isinstance(error, ValueError)


def test_no_path_gives_the_defaults():
    assert load_config() == Config()
    assert load_config(None) == Config()


def test_an_empty_file_gives_the_defaults(tmp_path: Path):
    assert _load(tmp_path, "") == Config()
    assert _load(tmp_path, "# nothing set\n") == Config()


def test_a_missing_file_is_one_problem_naming_the_file(tmp_path: Path):
    path = tmp_path / "missing.yml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{path}: ")
    assert "No such file" in caught.value.problems[0]


def test_unparsable_yaml_is_one_problem_naming_the_file(tmp_path: Path):
    path = tmp_path / "c.yml"
    path.write_text("slo: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{path}: ")
    assert "while parsing" in caught.value.problems[0]
    assert isinstance(caught.value.__cause__, Exception)


# --- structure: mappings, unknown keys, types ------------------------------------------------------------------------


def test_a_top_level_that_is_not_a_mapping_is_named_config(tmp_path: Path):
    assert _problems(tmp_path, "- a\n- b\n") == ["config: expected a mapping, got list"]
    assert _problems(tmp_path, "just text\n") == ["config: expected a mapping, got str"]


def test_a_nested_section_that_is_not_a_mapping_is_named_by_its_path(tmp_path: Path):
    assert _problems(tmp_path, "stack:\n  ports: 3\n") == ["stack.ports: expected a mapping, got int"]


def test_unknown_keys_are_listed_sorted_with_the_known_ones(tmp_path: Path):
    assert _problems(tmp_path, "slo:\n  zeta: 1\n  alpha: 2\n") == [
        "unknown config key(s) in slo: alpha, zeta; known: audit_duration_ok_ms, audit_duration_warn_ms, "
        "availability, latency_p95_seconds, latency_quantile"
    ]


def test_unknown_top_level_keys_name_no_section(tmp_path: Path):
    (problem,) = _problems(tmp_path, "bogus: 1\n")
    assert problem.startswith("unknown config key(s): bogus; known: alerting, app_job, app_selector, app_service, ")


def test_every_structural_problem_is_listed_at_once(tmp_path: Path):
    text = "bogus: 1\napp_service: 3\nslo:\n  availability: high\n  extra: 1\nstack:\n  ports:\n    app: '80'\n"
    assert _problems(tmp_path, text) == [
        "unknown config key(s): bogus; known: " + ", ".join(sorted(f.name for f in dataclasses.fields(Config))),
        "app_service: expected str, got int",
        "unknown config key(s) in slo: extra; known: audit_duration_ok_ms, audit_duration_warn_ms, availability, "
        "latency_p95_seconds, latency_quantile",
        "slo.availability: expected float, got str",
        "stack.ports.app: expected int, got str",
    ]


def test_range_checks_wait_until_the_shape_is_right(tmp_path: Path):
    # The bad port is a range problem: it is not reported next to a type problem (the root cause comes first).
    assert _problems(tmp_path, "app_service: 3\nstack:\n  ports:\n    app: 99999\n") == [
        "app_service: expected str, got int"
    ]
    assert _problems(tmp_path, "stack:\n  ports:\n    app: 99999\n") == [
        "stack.ports.app: 99999 is not a TCP port (1..65535)"
    ]


def test_an_int_is_accepted_for_a_float_and_stored_as_float(tmp_path: Path):
    cfg = _load(tmp_path, "slo:\n  audit_duration_ok_ms: 300\n")
    assert cfg.slo.audit_duration_ok_ms == 300.0
    assert type(cfg.slo.audit_duration_ok_ms) is float


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("slo:\n  availability: true\n", "slo.availability: expected float, got bool"),
        ("stack:\n  ports:\n    app: 80.0\n", "stack.ports.app: expected int, got float"),
        ("stack:\n  ports:\n    app: true\n", "stack.ports.app: expected int, got bool"),
        ("features:\n  audit: 1\n", "features.audit: expected bool, got int"),
        ("app_job: null\n", "app_job: expected str, got NoneType"),
    ],
)
def test_a_value_of_the_wrong_type_is_named_with_both_types(tmp_path: Path, text: str, problem: str):
    assert _problems(tmp_path, text) == [problem]


def test_an_explicit_selector_overrides_the_derived_one(tmp_path: Path):
    cfg = _load(tmp_path, "app_selector: 'job=~\"shop.*\"'\n")
    assert cfg.app_selector == 'job=~"shop.*"'


def test_a_job_override_moves_the_derived_selector(tmp_path: Path):
    cfg = _load(tmp_path, "app_job: shop\n")
    assert cfg.app_selector == 'job="shop"'
    assert cfg.keycloak_selector == 'job="keycloak"'


def test_overrides_keep_every_other_default(tmp_path: Path):
    cfg = _load(tmp_path, "features:\n  keycloak: false\nstack:\n  ports:\n    grafana: 3001\n")
    assert cfg.features.keycloak is False
    assert cfg.stack.ports.grafana == 3001
    default = Config()
    assert dataclasses.replace(cfg.features, keycloak=True) == default.features
    assert dataclasses.replace(cfg.stack.ports, grafana=3000) == default.stack.ports
    assert cfg.stack.loki == default.stack.loki
    assert cfg.alerting == default.alerting


# --- values: names ---------------------------------------------------------------------------------------------------


NAME_PROBLEM = ("is not a name: letters, digits, '_', '.', ':', '-', starting with a letter, digit or '_' "
                "(it is written into PromQL, LogQL, YAML and URLs unquoted)")


def test_a_bad_name_gets_the_whole_explanation(tmp_path: Path):
    assert _problems(tmp_path, "app_service: '-shop'\n") == [f"app_service: '-shop' {NAME_PROBLEM}"]


@pytest.mark.parametrize("name", ["a", "_x", "9lives", "shop.eu:v1-b_2", "a" * 128])
def test_names_of_the_allowed_form_are_accepted(tmp_path: Path, name: str):
    assert _load(tmp_path, f"app_job: '{name}'\n").app_job == name


@pytest.mark.parametrize("name", ["a" * 129, "-a", ".a", "a b", "a/b", "a\"b", "a{b}"])
def test_names_of_another_form_or_longer_than_128_are_refused(tmp_path: Path, name: str):
    assert _problems(tmp_path, f"app_job: '{name}'\n") == [f"app_job: {name!r} {NAME_PROBLEM}"]


# --- values: ports, ratios, positive and non-negative numbers ---------------------------------------------------------


@pytest.mark.parametrize("port", [1, 65535])
def test_the_port_range_ends_are_accepted(tmp_path: Path, port: int):
    assert _load(tmp_path, f"stack:\n  ports:\n    alloy: {port}\n").stack.ports.alloy == port


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_ports_outside_1_to_65535_are_refused(tmp_path: Path, port: int):
    assert _problems(tmp_path, f"stack:\n  ports:\n    alloy: {port}\n") == [
        f"stack.ports.alloy: {port} is not a TCP port (1..65535)"
    ]


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1])
def test_ratios_must_lie_strictly_between_0_and_1(tmp_path: Path, value: float):
    assert _problems(tmp_path, f"slo:\n  availability: {value}\n") == [
        f"slo.availability: {float(value)!r} is not a ratio strictly between 0 and 1"
    ]


def test_ratios_inside_the_range_are_accepted(tmp_path: Path):
    cfg = _load(tmp_path, "slo:\n  availability: 0.999\nalerting:\n  error_ratio: 0.001\n")
    assert (cfg.slo.availability, cfg.alerting.error_ratio) == (0.999, 0.001)


@pytest.mark.parametrize("value", [0, -5])
def test_counts_and_rates_must_be_greater_than_zero(tmp_path: Path, value: int):
    assert _problems(tmp_path, f"alerting:\n  slo_min_requests: {value}\n") == [
        f"alerting.slo_min_requests: {value} must be greater than 0"
    ]


def test_a_positive_count_is_accepted(tmp_path: Path):
    assert _load(tmp_path, "alerting:\n  slo_min_requests: 1\n").alerting.slo_min_requests == 1


def test_panel_thresholds_may_be_zero_but_not_negative(tmp_path: Path):
    assert _load(tmp_path, "panels:\n  log_errors_per_second: 0\n").panels.log_errors_per_second == 0.0
    assert _problems(tmp_path, "panels:\n  log_errors_per_second: -0.5\n") == [
        "panels.log_errors_per_second: -0.5 must not be negative"
    ]


def test_string_fields_under_numeric_patterns_are_not_range_checked(tmp_path: Path):
    # alerting.slo_excluded_endpoints falls under "alerting.*" (greater than 0) but is a regex string.
    cfg = _load(tmp_path, "alerting:\n  slo_excluded_endpoints: '/health|/ready'\n  webhook_url_dir: /run/hooks\n")
    assert cfg.alerting.slo_excluded_endpoints == "/health|/ready"


def test_keys_declared_after_a_skipped_string_are_still_checked(tmp_path: Path):
    # group_wait comes after slo_excluded_endpoints (skipped); the check goes on past it.
    assert _problems(tmp_path, "alerting:\n  group_wait: soon\n") == [
        "alerting.group_wait: 'soon' is not a non-zero Prometheus duration (e.g. 15s, 5m, 1h30m)"
    ]


# --- values: durations -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["15s", "5m", "1h30m", "720h", "1d", "250ms", "1h0m0s"])
def test_prometheus_durations_are_accepted(tmp_path: Path, value: str):
    assert _load(tmp_path, f"alerting:\n  target_down_for: '{value}'\n").alerting.target_down_for == value


@pytest.mark.parametrize("value", ["0s", "5", "5 m", "m", "1m1h", "soon"])
def test_zero_or_malformed_durations_are_refused(tmp_path: Path, value: str):
    assert _problems(tmp_path, f"alerting:\n  target_down_for: '{value}'\n") == [
        f"alerting.target_down_for: {value!r} is not a non-zero Prometheus duration (e.g. 15s, 5m, 1h30m)"
    ]


# --- values: URLs ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://loki:3100", "https://logs.acme.io/loki"])
def test_http_and_https_urls_are_accepted(tmp_path: Path, url: str):
    assert _load(tmp_path, f"endpoints:\n  loki_url: '{url}'\n").endpoints.loki_url == url


@pytest.mark.parametrize("url", ["ftp://loki:3100", "loki:3100", "http://", "https:///path", "/loki"])
def test_other_schemes_or_urls_without_a_host_are_refused(tmp_path: Path, url: str):
    assert _problems(tmp_path, f"endpoints:\n  loki_url: '{url}'\n") == [
        f"endpoints.loki_url: {url!r} is not an http(s) URL"
    ]


def test_a_non_string_url_is_reported_not_raised():
    cfg = dataclasses.replace(Config(), endpoints=Endpoints(loki_url=5))  # type: ignore[arg-type]
    assert check(cfg) == ["endpoints.loki_url: 5 is not an http(s) URL"]


def test_remote_write_url_may_be_empty_but_not_malformed(tmp_path: Path):
    assert _load(tmp_path, "prometheus:\n  remote_write_url: ''\n").prometheus.remote_write_url == ""
    assert _problems(tmp_path, "prometheus:\n  remote_write_url: mimir\n") == [
        "prometheus.remote_write_url: 'mimir' is not an http(s) URL"
    ]


def test_docs_base_url_may_be_a_real_place(tmp_path: Path):
    url = "https://github.com/acme/shop/blob/main/docs"
    assert _load(tmp_path, f"alerting:\n  docs_base_url: '{url}'\n").alerting.docs_base_url == url


@pytest.mark.parametrize("host", ["example.org", "example.com", "example.net", "example-org"])
def test_docs_base_url_on_a_placeholder_host_is_refused(tmp_path: Path, host: str):
    url = f"https://{host}/docs" if "." in host else f"https://github.com/{host}/x/blob/main/docs"
    assert _problems(tmp_path, f"alerting:\n  docs_base_url: '{url}'\n") == [
        f"alerting.docs_base_url: {url!r} is a placeholder: links there would not resolve "
        "(leave it empty or set the real place)"
    ]


def test_docs_base_url_that_is_no_url_is_refused(tmp_path: Path):
    assert _problems(tmp_path, "alerting:\n  docs_base_url: docs/\n") == [
        "alerting.docs_base_url: 'docs/' is not an http(s) URL"
    ]


# --- values: replica label and value ---------------------------------------------------------------------------------


def test_the_replica_label_may_be_empty(tmp_path: Path):
    # Empty is documented as "no replica label"; empty strings are not range-checked.
    assert _load(tmp_path, "prometheus:\n  replica_label: ''\n").prometheus.replica_label == ""


def test_empty_strings_are_not_range_checked(tmp_path: Path):
    cfg = _load(tmp_path, "app_job: ''\nalerting:\n  target_down_for: ''\n")
    assert (cfg.app_job, cfg.alerting.target_down_for) == ("", "")


def test_the_replica_label_must_be_a_prometheus_label_name(tmp_path: Path):
    assert _problems(tmp_path, "prometheus:\n  replica_label: my-replica\n") == [
        "prometheus.replica_label: 'my-replica' is not a Prometheus label name"
    ]
    assert _load(tmp_path, "prometheus:\n  replica_label: __replica\n").prometheus.replica_label == "__replica"


@pytest.mark.parametrize("label", ["cluster", "job", "instance"])
def test_the_replica_label_must_not_replace_a_reserved_label(tmp_path: Path, label: str):
    assert _problems(tmp_path, f"prometheus:\n  replica_label: {label}\n") == [
        f"prometheus.replica_label: {label!r} is taken (it would replace {label!r} on every series); "
        "choose another, e.g. 'replica'"
    ]


def test_a_non_string_replica_label_is_reported_not_raised():
    cfg = dataclasses.replace(Config(), prometheus=Prometheus(replica_label=7))  # type: ignore[arg-type]
    assert check(cfg) == ["prometheus.replica_label: 7 is not a Prometheus label name"]


@pytest.mark.parametrize("value", ["${PROM_REPLICA}", "${_X1}", "prom-a", "eu-1.b"])
def test_the_replica_is_a_variable_reference_or_a_plain_value(tmp_path: Path, value: str):
    assert _load(tmp_path, f"prometheus:\n  replica: '{value}'\n").prometheus.replica == value


@pytest.mark.parametrize("value", ["${1X}", "$PROM_REPLICA", "${PROM REPLICA}", "a b", "-a"])
def test_any_other_replica_value_is_refused(tmp_path: Path, value: str):
    assert _problems(tmp_path, f"prometheus:\n  replica: '{value}'\n") == [
        f"prometheus.replica: {value!r} is neither a ${{VARIABLE}} reference nor a plain label value"
    ]


def test_a_non_string_replica_is_reported_not_raised():
    cfg = dataclasses.replace(Config(), prometheus=Prometheus(replica=3))  # type: ignore[arg-type]
    assert check(cfg) == ["prometheus.replica: 3 is neither a ${VARIABLE} reference nor a plain label value"]


# --- values: host:port -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["postgres:5432", "db.internal:1", "db:65535"])
def test_host_port_pairs_are_accepted(tmp_path: Path, value: str):
    assert _load(tmp_path, f"audit:\n  host: '{value}'\n").audit.host == value


def test_the_port_is_what_follows_the_last_colon(tmp_path: Path):
    assert _load(tmp_path, "audit:\n  host: 'db:a:5432'\n").audit.host == "db:a:5432"


@pytest.mark.parametrize("value", ["postgres", "postgres:", ":5432", "5432", "²", "db:x", "db:0", "db:65536",
                                   "db host:5432", "-db:5432"])
def test_anything_but_host_colon_port_is_refused(tmp_path: Path, value: str):
    assert _problems(tmp_path, f"audit:\n  host: '{value}'\n") == [f"audit.host: {value!r} is not host:port"]


def test_scrape_targets_are_host_port_too(tmp_path: Path):
    assert _problems(tmp_path, "prometheus:\n  app_target: app\n") == ["prometheus.app_target: 'app' is not host:port"]


def test_a_value_a_check_cannot_read_has_the_wrong_form(tmp_path: Path):
    # '²' passes str.isdigit but int() refuses it: the check's ValueError becomes a listed problem.
    assert _problems(tmp_path, "audit:\n  host: 'db:²'\n") == ["audit.host: 'db:²' has the wrong form"]
    ports = Ports(bind_address=5)  # type: ignore[arg-type]
    cfg = dataclasses.replace(Config(), stack=dataclasses.replace(Config().stack, ports=ports))
    assert check(cfg) == ["stack.ports.bind_address: 5 has the wrong form"]


# --- values: the rest of the rule table ------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["0.0.0.0", "::1", "localhost", "fe80::1"])
def test_bind_addresses_are_ip_addresses_or_localhost(tmp_path: Path, address: str):
    assert _load(tmp_path, f"stack:\n  ports:\n    bind_address: '{address}'\n").stack.ports.bind_address == address


def test_a_bind_address_that_is_a_host_name_is_refused(tmp_path: Path):
    assert _problems(tmp_path, "stack:\n  ports:\n    bind_address: grafana.local\n") == [
        "stack.ports.bind_address: 'grafana.local' is not an IP address"
    ]


def test_the_health_path_must_be_a_url_path(tmp_path: Path):
    assert _load(tmp_path, "stack:\n  app_health_path: /api/v1/health\n").stack.app_health_path == "/api/v1/health"
    assert _problems(tmp_path, "stack:\n  app_health_path: health\n") == [
        "stack.app_health_path: 'health' is not a URL path"
    ]


def test_problems_come_in_declaration_order_with_their_keys():
    cfg = dataclasses.replace(
        Config(), app_job="a b", audit=Audit(host="db"), endpoints=Endpoints(prometheus_url="prom:9090"))
    assert check(cfg) == [
        f"app_job: 'a b' {NAME_PROBLEM}",
        "audit.host: 'db' is not host:port",
        "endpoints.prometheus_url: 'prom:9090' is not an http(s) URL",
    ]


def test_booleans_are_never_range_checked():
    # A bool under a numeric pattern (here via check on a built config) is a switch, not a number.
    cfg = dataclasses.replace(Config(), slo=dataclasses.replace(Config().slo, latency_p95_seconds=False))
    assert check(cfg) == []


# --- the rule table: every checked key refuses a value of the wrong form ---------------------------------------------

NAME_KEYS = ["app_job", "keycloak_job", "app_service", "datasources.prometheus", "datasources.loki",
             "datasources.postgres_audit", "stack.app_environment", "stack.keycloak_realm",
             "stack.keycloak_client_id", "stack.app_db_user", "stack.keycloak_db", "audit.database",
             "audit.reader_user", "prometheus.self_job", "prometheus.alertmanager_job", "prometheus.alloy_job",
             "prometheus.cluster"]
PORT_KEYS = [f"stack.ports.{p}" for p in ("app", "keycloak", "prometheus", "alertmanager", "loki", "alloy", "grafana")]
HOST_PORT_KEYS = ["audit.host"] + [f"prometheus.{t}_target" for t in ("app", "keycloak", "self", "alertmanager",
                                                                       "alloy")]
URL_KEYS = ["endpoints.prometheus_url", "endpoints.loki_url", "alerting.grafana_url", "alerting.pager_webhook_url",
            "alerting.ticket_webhook_url", "prometheus.remote_write_url"]
DURATION_KEYS = ["prometheus.scrape_interval", "prometheus.evaluation_interval", "prometheus.app_scrape_interval",
                 "prometheus.keycloak_scrape_interval", "alerting.target_down_for", "alerting.group_wait",
                 "alerting.group_interval", "alerting.repeat_interval", "stack.loki.retention_period"]
RATIO_KEYS = ["alerting.error_ratio", "alerting.keycloak_failed_login_ratio", "alerting.keycloak_heap_warning",
              "alerting.keycloak_heap_critical", "alerting.keycloak_gc_overhead", "slo.availability",
              "slo.latency_quantile"]
POSITIVE_KEYS = ["alerting.error_ratio_min_requests", "alerting.rate_limit_hits_per_minute",
                 "alerting.auth_failures_per_minute", "alerting.keycloak_failed_logins_per_minute",
                 "alerting.keycloak_min_logins", "alerting.audit_queue_warning", "alerting.audit_queue_critical",
                 "alerting.audit_stall_seconds", "alerting.audit_verification_stale_seconds",
                 "alerting.slo_period_days", "alerting.slo_min_requests", "alerting.audit_unverified_rows_warning",
                 "slo.latency_p95_seconds", "slo.audit_duration_ok_ms", "slo.audit_duration_warn_ms",
                 "stack.loki.ingestion_rate_mb", "stack.loki.ingestion_burst_size_mb",
                 "stack.loki.per_stream_rate_limit_mb", "stack.loki.max_label_names_per_series"]
NON_NEGATIVE_KEYS = ["panels.unhandled_exceptions_per_second", "panels.http_client_error_status",
                     "panels.keycloak_cache_hit_ratio_critical", "panels.log_errors_per_second"]


def _yaml_at(key: str, value: object) -> str:
    data: object = value
    for part in reversed(key.split(".")):
        data = {part: data}
    return yaml.safe_dump(data)


def _get(cfg: Config, key: str) -> object:
    value: object = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _cases() -> list[tuple[str, object, str]]:
    cases: list[tuple[str, object, str]] = []
    cases += [(k, "a b", "'a b' is not a name") for k in NAME_KEYS]
    cases += [(k, 0, "0 is not a TCP port") for k in PORT_KEYS]
    cases += [(k, "nohost", "'nohost' is not host:port") for k in HOST_PORT_KEYS]
    cases += [(k, "nope", "'nope' is not an http(s) URL") for k in URL_KEYS]
    cases += [(k, "soon", "'soon' is not a non-zero Prometheus duration") for k in DURATION_KEYS]
    cases += [(k, 1.5, "1.5 is not a ratio strictly between 0 and 1") for k in RATIO_KEYS]
    for k in POSITIVE_KEYS:
        bad = -1 if isinstance(_get(Config(), k), int) else -1.0
        cases.append((k, bad, f"{bad!r} must be greater than 0"))
    for k in NON_NEGATIVE_KEYS:
        bad = -1 if isinstance(_get(Config(), k), int) else -1.0
        cases.append((k, bad, f"{bad!r} must not be negative"))
    cases += [
        ("prometheus.replica_label", "a-b", "'a-b' is not a Prometheus label name"),
        ("prometheus.replica", "a b", "'a b' is neither a ${VARIABLE} reference"),
        ("alerting.docs_base_url", "https://example.org/docs", "'https://example.org/docs' is a placeholder"),
        ("stack.ports.bind_address", "grafana.local", "'grafana.local' is not an IP address"),
        ("stack.app_health_path", "health", "'health' is not a URL path"),
    ]
    return cases


@pytest.mark.parametrize(("key", "bad", "problem"), _cases(), ids=lambda v: v if isinstance(v, str) else None)
def test_every_checked_key_refuses_a_value_of_the_wrong_form(tmp_path: Path, key: str, bad: object, problem: str):
    (listed,) = _problems(tmp_path, _yaml_at(key, bad))
    assert listed.startswith(f"{key}: {problem}"), listed


@pytest.mark.parametrize("key", ["environment", "dashboard_folder", "prometheus.remote_write_tenant",
                                 "alerting.webhook_url_dir", "alerting.slo_excluded_endpoints"])
def test_free_text_keys_take_any_string(tmp_path: Path, key: str):
    # slo_excluded_endpoints and webhook_url_dir fall under "alerting.*" (greater than 0) but are strings.
    assert _get(_load(tmp_path, _yaml_at(key, "any text: (at|all)")), key) == "any text: (at|all)"
