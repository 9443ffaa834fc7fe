"""docker-compose.yml, .env.example, Dockerfile: valid for docker-compose, pinned, healthy-ordered, complete."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.config import Config
from dashboards.grafana import provisioning
from dashboards.stack import compose
from dashboards.validate import compose as compose_check
from tests.support.binaries import require

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return yaml.safe_load((ROOT / compose.PATH).read_text())


def _compose(*args: str, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    require("docker-compose", binary, "apt-get install docker-compose")
    env = {k: v for k, v in os.environ.items() if k not in compose.SECRETS}  # only the env file counts
    argv = [str(binary), "--project-directory", str(ROOT), "-f", str(ROOT / compose.PATH)]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    return subprocess.run([*argv, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
                          check=False)


def test_docker_compose_config_accepts_the_file_with_the_example_env():
    for profile in ([], ["--profile", compose.TRAFFIC_PROFILE]):
        result = _compose(*profile, "config", "-q", env_file=ROOT / compose.ENV_EXAMPLE_PATH)
        assert result.returncode == 0, result.stderr
    services = _compose("--profile", compose.TRAFFIC_PROFILE, "config", "--services",
                        env_file=ROOT / compose.ENV_EXAMPLE_PATH).stdout.split()
    assert sorted(services) == sorted(compose.services(Config()))


def test_docker_compose_refuses_to_start_without_a_secret(tmp_path):
    env = tmp_path / "partial.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in compose.EXAMPLE_VALUES.items() if k != "GRAFANA_ADMIN_PASSWORD"))
    result = _compose("config", "-q", env_file=env)
    assert result.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD (see .env.example)" in result.stderr


def test_every_service_is_pinned_healthchecked_and_waits_for_healthy_dependencies(data):
    services = data["services"]
    for name, svc in services.items():
        image = svc["image"]
        assert compose_check.pinned(image) and not image.endswith(":latest"), (name, image)
        assert svc["healthcheck"]["test"][0] == "CMD", name
        for dep, how in svc.get("depends_on", {}).items():
            assert how == {"condition": "service_healthy"}, (name, dep)
    roots = {n for n, s in services.items() if not s.get("depends_on")}
    assert roots == {"postgres", "alert-webhook", "loki"}
    assert compose_check.check(data, Config()) == []


def test_every_mounted_repo_path_exists(data):
    mounted = [v.split(":")[0] for s in data["services"].values() for v in s.get("volumes", []) if v.startswith("./")]
    assert mounted
    missing = [path for path in mounted if not (ROOT / path).exists()]
    assert missing == [], "mounted but not in the repository: " + ", ".join(missing)


def test_named_volumes_are_declared_and_only_the_docker_socket_comes_from_the_host(data):
    host = [v for s in data["services"].values() for v in s.get("volumes", []) if v.startswith("/")]
    assert host == ["/var/run/docker.sock:/var/run/docker.sock:ro"]
    named = {v.split(":")[0] for s in data["services"].values() for v in s.get("volumes", [])
             if not v.startswith(("./", "/"))}
    assert named == set(data["volumes"])


def test_env_example_lists_exactly_the_variables_compose_reads(data):
    text = (ROOT / compose.PATH).read_text()
    referenced = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = dict(line.split("=", 1) for line in (ROOT / compose.ENV_EXAMPLE_PATH).read_text().splitlines()
                   if line and not line.startswith("#"))
    assert set(example) == referenced == set(compose.SECRETS)
    assert all(value.startswith("demo-only-") for value in example.values())
    assert len(re.findall(r"\$\{[A-Z_]+\}", text)) == 0  # every reference fails loudly when unset (:?)


def test_no_literal_passwords_in_any_service(data):
    for name, svc in data["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${") and ":?" in str(value), (name, key)


def test_app_service_name_is_the_loki_service_label_and_prometheus_can_reach_it(data):
    cfg = Config()
    app = data["services"][cfg.app_service]
    assert app["build"] == "."
    assert app["networks"]["default"]["aliases"] == [cfg.prometheus.app_target.split(":")[0]]
    env = app["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://app:${APP_DB_PASSWORD:?")
    assert env["LOG_CONSOLE_FORMAT"] == "json" and env["ENVIRONMENT"] == cfg.stack.app_environment
    assert data["services"]["traffic"]["profiles"] == ["traffic"]
    assert data["services"]["traffic"]["image"] == app["image"]


def test_keycloak_runs_with_metrics_events_slos_and_the_realm_import(data):
    kc = data["services"]["keycloak"]
    assert kc["command"] == ["start-dev", "--import-realm"]
    env = kc["environment"]
    assert {k: env[k] for k in ("KC_METRICS_ENABLED", "KC_EVENT_METRICS_USER_ENABLED", "KC_EVENT_METRICS_USER_TAGS",
                                "KC_HTTP_METRICS_SLOS", "KC_HEALTH_ENABLED")} == {
        "KC_METRICS_ENABLED": "true", "KC_EVENT_METRICS_USER_ENABLED": "true",
        "KC_EVENT_METRICS_USER_TAGS": "realm,clientId", "KC_HTTP_METRICS_SLOS": "100,250,500,1000",
        "KC_HEALTH_ENABLED": "true"}
    assert kc["image"].startswith("quay.io/keycloak/keycloak:26.")
    assert "./keycloak/realm-demo.json:/opt/keycloak/data/import/realm-demo.json:ro" in kc["volumes"]


def test_grafana_mounts_dashboards_where_the_provider_looks_and_has_no_default_admin(data):
    graf = data["services"]["grafana"]
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert path == provisioning.DASHBOARDS_PATH
    assert f"./grafana/dashboards:{path}:ro" in graf["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in graf["volumes"]
    env = graf["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    datasources = (ROOT / "grafana/provisioning/datasources/datasources.yml").read_text()
    assert "$__env{GRAFANA_DB_PASSWORD}" in datasources and "GRAFANA_DB_PASSWORD" in env


def test_prometheus_alloy_and_loki_flags(data):
    prom = data["services"]["prometheus"]
    assert {"--enable-feature=exemplar-storage", "--web.enable-lifecycle"} <= set(prom["command"])
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in prom["volumes"]
    alloy = data["services"]["alloy"]
    assert "--server.http.listen-addr=0.0.0.0:12345" in alloy["command"]
    assert "./alloy/config.alloy:/etc/alloy/config.alloy:ro" in alloy["volumes"]
    assert data["services"]["loki"]["command"] == ["-config.file=/etc/loki/loki.yml"]
    assert "loki-data:/loki" in data["services"]["loki"]["volumes"]


def test_published_ports_are_on_loopback_only(data):
    for name, svc in data["services"].items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    assert "ports" not in data["services"]["postgres"]


def _mutated(change: Any) -> list[str]:
    data = copy.deepcopy(compose.compose(Config()))
    change(data["services"])
    return compose_check.check(data, Config())


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["loki"].update(image="grafana/loki:latest"), "loki: image 'grafana/loki:latest' is not pinned"),
        (lambda s: s["loki"].update(image="grafana/loki"), "loki: image 'grafana/loki' is not pinned"),
        (lambda s: s["alloy"].pop("healthcheck"), "alloy: no healthcheck"),
        (lambda s: s["grafana"].update(depends_on={"loki": {"condition": "service_started"}}),
         "grafana: depends_on loki without condition: service_healthy"),
        (lambda s: s["grafana"].update(depends_on={"lokki": {"condition": "service_healthy"}}),
         "grafana: depends on unknown service 'lokki'"),
        (lambda s: s["loki"].update(depends_on={"alloy": {"condition": "service_healthy"}}), "depends_on cycle"),
        (lambda s: s["grafana"].update(depends_on={"traffic": {"condition": "service_healthy"}}),
         "grafana: depends on traffic, which only runs in the traffic profile"),
        (lambda s: s["loki"]["volumes"].append("loki-wal:/wal"), "loki: volume 'loki-wal' is not declared"),
        (lambda s: s["grafana"]["environment"].update(GF_SECURITY_ADMIN_PASSWORD="admin"),
         "grafana: GF_SECURITY_ADMIN_PASSWORD is a literal password"),
        (lambda s: s["grafana"]["environment"].update(X="${UNLISTED:?x}"), "reads ${UNLISTED}"),
        (lambda s: s["fastapi-app"].pop("networks"), "prometheus.app_target 'app:8000': no compose service or alias"),
        (lambda s: s.update(app=s.pop("fastapi-app")), "no service named 'fastapi-app'"),
    ],
)
def test_checker_names_each_broken_service(change, expected):
    found = _mutated(change)
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(("image", "ok"), [("postgres:16.9", True), ("quay.io/keycloak/keycloak:26.2.5", True),
                                          ("localhost:5000/app", False), ("x@sha256:" + "0" * 64, True),
                                          ("prom/prometheus:latest", False), ("", False)])
def test_pinned_means_a_real_tag_or_digest(image, ok):
    assert compose_check.pinned(image) is ok


# -- the image -----------------------------------------------------------------------------------

def test_dockerfile_is_pinned_slim_non_root_runtime_only_with_a_python_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", text, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-bookworm)?", base)
    (user,) = re.findall(r"^USER (\S+)", text, re.M)
    assert user.split(":")[0] not in ("root", "0")
    assert "pip install '/src[reference]'" in text and "[test]" not in text
    assert re.search(r'^CMD \["python", "-m", "app.serve", "--host", "0.0.0.0", "--port", "8000"\]', text, re.M)
    healthcheck = re.search(r"^HEALTHCHECK .*\n.*", text, re.M)
    assert healthcheck and "/health" in healthcheck.group() and "python" in healthcheck.group()
    assert "curl" not in text
    assert "PROMETHEUS_MULTIPROC_DIR" in text and "-delete" in text


def test_multiproc_dir_is_emptied_by_the_entrypoint(tmp_path):
    text = (ROOT / "Dockerfile").read_text()
    entry = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    assert entry
    argv = yaml.safe_load(entry.group(1))  # JSON array
    stale = tmp_path / "multiproc"
    stale.mkdir()
    (stale / "counter_1.db").write_text("stale")
    result = subprocess.run([*argv, "ls", "-A", str(stale)], env={"PROMETHEUS_MULTIPROC_DIR": str(stale),
                                                                   "PATH": os.environ["PATH"]},
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # emptied, then the command ran
    plain = subprocess.run([*argv, "echo", "ran"], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True,
                           check=False)
    assert plain.stdout == "ran\n"


def test_dockerignore_sends_only_what_pip_install_needs():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!fastapi_lookout/", "!app/", "!dashboards/"} <= set(lines)
    copied = {src for line in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
              for src in line.split()}
    assert copied == {"pyproject.toml", "README.md", "fastapi_lookout", "app", "dashboards"}
