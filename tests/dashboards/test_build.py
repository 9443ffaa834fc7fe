"""The build CLI: determinism, --check, --out, validation failures, the artifact registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dashboards import build
from dashboards.config import Config, DsType
from dashboards.grafana import artifacts as grafana
from dashboards.registry import Registry
from tests.support.binaries import require

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, str(ROOT / "scripts" / "build_dashboards.py")]
GRAFANA = {
    "grafana/dashboards/fastapi-metrics.json", "grafana/dashboards/keycloak-metrics.json",
    "grafana/dashboards/audit-logs.json", "grafana/dashboards/application-logs.json",
    "grafana/provisioning/datasources/datasources.yml", "grafana/provisioning/dashboards/dashboards.yml",
}


@pytest.fixture(scope="module")
def node_ready() -> None:
    from dashboards.validate import logql

    require("node and the LogQL grammar", logql.available(), "apt-get install nodejs; npm ci")


def clear_caches() -> None:
    from dashboards.observables import collect
    from dashboards.stack.prometheus import artifacts

    grafana._dashboards.cache_clear()
    collect.cache_clear()
    artifacts.rule_files.cache_clear()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)


def expected() -> set[str]:
    return {str(a.path) for a in build.load_generators().artifacts.values()}


def test_registry_holds_every_artifact():
    paths = expected()
    assert paths >= GRAFANA
    for prefix in ("prometheus/", "loki/", "alloy/", "docker-compose.yml"):
        assert any(p.startswith(prefix) for p in paths), prefix


def test_two_builds_are_identical_bytes(node_ready):
    first = build.render_all()
    clear_caches()
    second = build.render_all()
    assert first == second
    for rel, data in first.items():
        assert data.endswith(b"\n"), rel
        assert b"\r" not in data


def test_cli_writes_then_check_passes_then_stale_and_missing_files_are_named(tmp_path, node_ready):
    wrote = _run("--out", str(tmp_path))
    assert wrote.returncode == 0, wrote.stderr
    n = len(expected())
    assert f"{n} artifacts validated, {n} written" in wrote.stdout
    assert {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()} == expected()
    assert _run("--out", str(tmp_path), "--check").returncode == 0

    stale = tmp_path / "grafana/dashboards/audit-logs.json"
    stale.write_text(stale.read_text().replace("Audit logs", "Audit logz"))
    (tmp_path / "grafana/provisioning/dashboards/dashboards.yml").unlink()
    checked = _run("--out", str(tmp_path), "--check")
    assert checked.returncode == 1
    assert "stale: grafana/dashboards/audit-logs.json" in checked.stderr
    assert "missing: grafana/provisioning/dashboards/dashboards.yml" in checked.stderr

    again = _run("--out", str(tmp_path))
    assert f"2 written, {n - 2} unchanged" in again.stdout
    assert _run("--out", str(tmp_path), "--check").returncode == 0


def test_committed_artifacts_are_up_to_date(node_ready):
    result = _run("--check")
    assert result.returncode == 0, result.stderr


def test_unknown_config_key_is_a_clear_cli_error(tmp_path):
    conf = tmp_path / "c.yml"
    conf.write_text("prometheus_uid: x\n")
    result = _run("--config", str(conf), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "unknown config key(s): prometheus_uid" in result.stderr


def test_config_override_changes_the_output(tmp_path, node_ready):
    conf = tmp_path / "c.yml"
    conf.write_text("datasources:\n  loki: loki-eu\n")
    files = build.render_all(conf)
    logs = json.loads(files["grafana/dashboards/application-logs.json"])
    variable = next(v for v in logs["templating"]["list"] if v["name"] == "loki_datasource")
    assert variable["current"] == {"text": "loki-eu", "value": "loki-eu"}
    assert b"uid: loki-eu" in files["grafana/provisioning/datasources/datasources.yml"]


def test_a_broken_panel_fails_the_build_naming_dashboard_and_panel(monkeypatch, tmp_path, node_ready):
    from dashboards.queries import fastapi as fq

    monkeypatch.setattr(fq, "ws_active", lambda cfg, scope=None: "sum(ws_connections_open)")
    clear_caches()
    try:
        code = build.main(["--out", str(tmp_path)])
    finally:
        clear_caches()
    assert code == 1
    assert not (tmp_path / "grafana").exists()  # nothing written


def test_validation_message_names_dashboard_panel_and_problem(monkeypatch, node_ready):
    from dashboards.queries import fastapi as fq

    monkeypatch.setattr(fq, "ws_active", lambda cfg, scope=None: "sum(ws_connections_open)")
    clear_caches()
    try:
        with pytest.raises(build.ValidationFailed) as failed:
            build.render_all()
    finally:
        clear_caches()
    assert failed.value.problems == [
        "fastapi-metrics / panel 'Open connections now' [A]: unknown metric 'ws_connections_open' "
        "(not in the app or Keycloak catalog)",
        "metric ws_connections_active is read by no observable: add one, or list it as deliberately unobserved "
        "with a reason"]


def test_another_generator_registers_without_touching_the_cli():
    reg = Registry()

    @reg.artifact("prometheus-config", "prometheus/prometheus.yml")
    def prom(cfg: Config) -> bytes:
        return b"global: {}\n"

    @reg.validator("always-fine")
    def fine(cfg: Config) -> list[str]:
        return []

    assert build.render_all(registry=reg) == {"prometheus/prometheus.yml": b"global: {}\n"}
    with pytest.raises(ValueError, match="registered twice"):
        reg.artifact("prometheus-config", "other.yml")(prom)


def test_datasource_provisioning_has_the_fixed_uids_and_no_secret(cfg, node_ready):
    import yaml

    data = yaml.safe_load(build.render_all()["grafana/provisioning/datasources/datasources.yml"])
    by_uid = {d["uid"]: d for d in data["datasources"]}
    assert set(by_uid) == set(cfg.datasource_uids())
    assert {uid: d["type"] for uid, d in by_uid.items()} == cfg.datasource_uids()
    pg = by_uid["postgres-audit"]
    assert pg["user"] == "grafana_reader"
    assert pg["jsonData"]["database"] == "app"
    assert pg["secureJsonData"]["password"] == "$__env{GRAFANA_DB_PASSWORD}"
    exemplar = by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]
    assert exemplar["name"] == "request_id"
    assert exemplar["url"].startswith("/d/application-logs?var-request_id=$${__value.raw}")
    assert by_uid["loki"]["jsonData"]["derivedFields"][0]["name"] == "request_id"


def test_every_panel_datasource_defaults_to_a_provisioned_uid(built, cfg):
    from dashboards.validate.panels import datasource_defaults, resolved

    provisioned = {(t, u) for u, t in cfg.datasource_uids().items()}
    used: set[tuple[str, ...]] = set()
    for dashboard in built.values():
        defaults = datasource_defaults(dashboard)
        used |= {tuple(resolved(p["datasource"], defaults).values()) for p in dashboard["panels"]
                 if p["type"] != "row"}
        assert used <= provisioned
        assert all(p["datasource"]["uid"].startswith("${") for p in dashboard["panels"] if p["type"] != "row")
    assert {t for t, _ in used} == {str(k) for k in DsType}
