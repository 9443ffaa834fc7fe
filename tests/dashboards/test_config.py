from __future__ import annotations

from pathlib import Path

import pytest

from dashboards.config import Config, ConfigError, check, load_config


def test_defaults_match_the_architecture():
    cfg = Config()
    assert cfg.datasource_uids() == {
        "prometheus": "prometheus", "loki": "loki", "postgres-audit": "grafana-postgresql-datasource"}
    assert cfg.app_selector == 'job="fastapi-app"'
    assert cfg.keycloak_selector == 'job="keycloak"'
    assert cfg.app_service == "fastapi-app"
    assert cfg.slo.availability == 0.995
    assert cfg.slo.latency_p95_seconds == 0.25


def test_yaml_overrides_nested_values_and_keeps_the_rest(tmp_path: Path):
    path = tmp_path / "c.yml"
    path.write_text("app_service: shop\ndatasources:\n  loki: logs-eu\nslo:\n  availability: 0.999\n  "
                    "latency_p95_seconds: 1\n")
    cfg = load_config(path)
    assert cfg.app_service == "shop"
    assert cfg.datasources.loki == "logs-eu"
    assert cfg.datasources.prometheus == "prometheus"
    assert cfg.slo.availability == 0.999
    assert cfg.slo.latency_p95_seconds == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app_servce: x\n", "unknown config key(s): app_servce"),
        ("slo:\n  availabilty: 0.9\n", "unknown config key(s) in slo: availabilty"),
        ("datasources: loki\n", "datasources: expected a mapping"),
        ("app_service: 3\n", "app_service: expected str, got int"),
    ],
)
def test_bad_yaml_is_an_error_naming_the_key(tmp_path: Path, text: str, message: str):
    path = tmp_path / "c.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(path)


def test_a_yaml_override_reaches_every_panel(tmp_path: Path):
    from dashboards.grafana import artifacts as grafana

    path = tmp_path / "c.yml"
    path.write_text("datasources:\n  prometheus: prom-b\n")
    cfg = load_config(path)
    for dashboard in grafana.dashboards(cfg).values():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["prometheus_datasource"]["current"]["value"] == "prom-b"
        assert "'uid': 'prometheus'" not in str(dashboard)


def test_the_defaults_pass_every_check():
    assert check(Config()) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("stack:\n  ports:\n    app: 99999\n", "stack.ports.app: 99999 is not a TCP port (1..65535)"),
        ('app_job: my"job\n', "app_job: 'my\"job' is not a name"),
        ("slo:\n  availability: 1.5\n", "slo.availability: 1.5 is not a ratio strictly between 0 and 1"),
        ("prometheus:\n  app_scrape_interval: soon\n", "prometheus.app_scrape_interval: 'soon' is not a non-zero"),
        ("alerting:\n  docs_base_url: https://github.com/example-org/x/blob/main/docs\n",
         "alerting.docs_base_url: 'https://github.com/example-org/x/blob/main/docs' is a placeholder"),
        ("endpoints:\n  loki_url: loki:3100\n", "endpoints.loki_url: 'loki:3100' is not an http(s) URL"),
    ],
)
def test_out_of_range_or_malformed_values_are_refused_by_key(tmp_path: Path, text: str, problem: str):
    path = tmp_path / "c.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.problems) == 1, caught.value.problems
    assert caught.value.problems[0].startswith(f"{path}: {problem}")


def test_the_cli_reports_the_root_cause_alone_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from dashboards import build

    path = tmp_path / "c.yml"
    path.write_text('app_job: my"job\n')
    assert build.main(["--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "config error (1 problem(s)), nothing written:"
    assert len(err) == 2 and "app_job" in err[1]
    assert not (tmp_path / "out").exists()
