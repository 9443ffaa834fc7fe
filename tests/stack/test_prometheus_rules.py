"""Recording and alert rules: promtool check and unit tests, the build's validator, and broken rules caught."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dashboards import build
from dashboards.config import Config
from dashboards.registry import REGISTRY
from dashboards.stack.prometheus import artifacts
from dashboards.stack.prometheus.rules import Alert, Case, Fired, Group, RuleFile
from dashboards.validate import rules as check
from tests.support.binaries import require, which

CFG = Config()


def render_prometheus(cfg: Config, out: Path) -> Path:
    """Every prometheus/ artifact rendered from ``cfg`` into ``out`` (what the build writes)."""
    build.load_generators(("dashboards.stack.prometheus.artifacts",))
    for artifact in REGISTRY.artifacts.values():
        if artifact.path.parts[0] == "prometheus":
            path = out / artifact.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(artifact.render(cfg))
    return out / "prometheus"


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = which("promtool")
    require("promtool", binary, "apt-get install prometheus")
    return subprocess.run([str(binary), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_prometheus(CFG, tmp_path_factory.mktemp("prom"))


def _rule_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / "rules").glob("*.yml"))


def _test_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / "tests").glob("*.yml"))


# --- promtool ---------------------------------------------------------------------------------
def test_promtool_check_rules_passes_lint_included(rendered: Path):
    result = promtool("check", "rules", *_rule_files(rendered), cwd=rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lint" not in (result.stdout + result.stderr).lower()


def test_promtool_unit_tests_pass(rendered: Path):
    result = promtool("test", "rules", *_test_files(rendered), cwd=rendered)
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_rules_and_tests_are_what_the_code_generates(rendered: Path):
    repo = Path(__file__).resolve().parents[2] / "prometheus"
    for path in sorted(rendered.rglob("*")):
        if path.is_file():
            committed = repo / path.relative_to(rendered)
            assert committed.is_file(), f"{committed} missing: run scripts/build_dashboards.py"
            assert committed.read_bytes() == path.read_bytes(), f"{committed} stale: run scripts/build_dashboards.py"


# --- every alert proven both ways ------------------------------------------------------------------
def test_every_alert_has_a_firing_and_a_silent_promtool_case(rendered: Path):
    alerts = {rule["alert"] for path in (rendered / "rules").glob("*.yml")
              for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule}
    firing, silent = set(), set()
    for path in (rendered / "tests").glob("*.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case["exp_alerts"] else silent).add(case["alertname"])
    assert len(alerts) >= 14
    assert sorted(alerts - firing) == [], "alerts without a firing case"
    assert sorted(alerts - silent) == [], "alerts without a case where they must stay silent"


def _alerts(root: Path) -> list[dict]:
    return [rule for path in sorted((root / "rules").glob("*.yml"))
            for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_severity_summary_description_runbook_and_a_link_to_its_panel(rendered: Path):
    """Without a docs location in the config, runbook_url opens the alert's own panel in Grafana (it resolves
    wherever the stack runs) and the runbook's first lines travel with the alert."""
    from dashboards.docs.runbooks import placement
    from dashboards.observables import collect

    observables = collect(CFG)
    for rule in _alerts(rendered):
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        owner = observables.owner_of(rule["alert"])
        uid, panel = placement(CFG, owner.name)
        assert annotations["runbook_url"] == f"http://localhost:3000/d/{uid}?viewPanel={panel}"
        assert annotations["runbook"] == owner.runbook.first_lines()


def test_with_a_docs_location_runbook_url_points_at_the_alerts_entry(tmp_path: Path):
    cfg = dataclasses.replace(CFG, alerting=dataclasses.replace(
        CFG.alerting, docs_base_url="https://git.internal/ops/monitoring/blob/main/docs"))
    runbooks = (Path(__file__).resolve().parents[2] / "docs" / "runbooks.md").read_text()
    for rule in _alerts(render_prometheus(cfg, tmp_path)):
        url = rule["annotations"]["runbook_url"]
        assert url == f"https://git.internal/ops/monitoring/blob/main/docs/runbooks.md#{rule['alert'].lower()}"
        assert f"## {rule['alert']}\n" in runbooks  # the heading GitHub anchors as #<alert in lower case>


def test_recordings_follow_level_metric_operations(rendered: Path):
    records = [rule["record"] for path in (rendered / "rules").glob("*.yml")
               for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "record" in rule]
    assert {"job:http_requests:rate5m", "job:http_requests_errors:ratio_rate5m",
            "job_endpoint:http_request_duration_seconds:p95_5m"} <= set(records)
    assert all(check.RECORDING_NAME.match(r) for r in records)


def test_error_ratio_sums_both_sides_by_job():
    expr = next(r.expr for r in artifacts.rule_files(CFG)[0].recordings()
                if r.record == "job:http_requests_errors:ratio_rate5m")
    numerator, denominator = expr.split(" / ")
    assert numerator.startswith("(sum by (job) (rate(") and 'status_code=~"5.."' in numerator
    assert denominator == 'sum by (job) (rate(http_requests_total{job="fastapi-app"}[5m]))'


# --- the validator gates the build ---------------------------------------------------------------------
def test_generated_rules_pass_the_validator():
    assert check.rule_problems(artifacts.rule_files(CFG), CFG) == []


def _with_alert(expr: str) -> tuple[RuleFile, ...]:
    alert = Alert("Broken", expr, "warning", "s", "d", annotations={"runbook": "r", "runbook_url": "https://x#broken"})
    cases = (Case("Broken", "fires", (), "1m", (Fired({"severity": "warning"}),)), Case("Broken", "silent", (), "1m"))
    return (*artifacts.rule_files(CFG), RuleFile("broken", (Group("broken", (alert,)),), cases))


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ('http_request_total{job="fastapi-app"} > 0', "unknown metric 'http_request_total'"),
        ('http_requests_total{job="fastapi-app"} > 0', "counter 'http_requests_total' must be read through rate()"),
        ('rate(http_requests_total{job="fastapi-app",status="500"}[5m]) > 0', "label 'status' does not exist"),
        ('sum by (path) (rate(http_requests_total{job="fastapi-app"}[5m])) > 0', "label 'path' does not exist"),
        ('rate(http_requests_total{job="fastapi"}[5m]) > 0', "job 'fastapi' is not scraped"),
        ('jvm_gc_overhead{job="fastapi-app"} > 0', "jvm_gc_overhead is exported by job 'keycloak'"),
        ('job:http_requests:rate5m{endpoint="/x"} > 0', "label 'endpoint' does not exist on job:http_requests:rate5m"),
        ("rate(http_requests_total[5m] > 0", "PromQL does not parse"),
    ],
)
def test_a_broken_rule_is_refused_naming_file_rule_and_problem(expr: str, problem: str):
    problems = check.rule_problems(_with_alert(expr), CFG)
    assert any(p.startswith("prometheus/rules/broken.yml Broken: ") and problem in p for p in problems), problems


def test_an_alert_without_a_silent_case_or_runbook_is_refused():
    alert = Alert("Lonely", "up == 0", "page", "s", "")
    problems = check.rule_problems((RuleFile("x", (Group("x", (alert,)),), (Case("Lonely", "f", (), "1m",
                                                                                   (Fired({"severity": "page"}),)),)),),
                                   CFG)
    text = "\n".join(problems)
    assert "severity 'page' is not one of critical, warning" in text
    assert "annotation 'description' is missing" in text and "annotation 'runbook_url' is missing" in text
    assert "alert Lonely has no case where it must stay silent" in text


def test_a_latency_objective_between_buckets_fails_the_build():
    cfg = dataclasses.replace(CFG, slo=dataclasses.replace(CFG.slo, latency_p95_seconds=0.3))
    assert any("0.3 is not a bucket boundary" in p for p in REGISTRY.validators["prometheus-rules"](cfg))


def test_the_build_fails_on_a_broken_rule_and_writes_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    build.load_generators(("dashboards.stack.prometheus.artifacts",))
    broken = dict(artifacts.BUILDERS)
    original = broken["app-alerts"]

    def typo(cfg: Config) -> RuleFile:
        good = original(cfg)
        group = good.groups[0]
        first = dataclasses.replace(group.rules[0], expr=group.rules[0].expr.replace("http_requests_total", "http_req"))
        return dataclasses.replace(good, groups=(dataclasses.replace(group, rules=(first, *group.rules[1:])),))

    broken["app-alerts"] = typo
    monkeypatch.setattr(artifacts, "BUILDERS", broken)
    artifacts.rule_files.cache_clear()
    try:
        problems = REGISTRY.validators["prometheus-rules"](CFG)
    finally:
        artifacts.rule_files.cache_clear()
    assert any("AppHighErrorRatio: unknown metric 'http_req'" in p for p in problems), problems


# --- broken copies fail promtool ------------------------------------------------------------------------
def test_a_changed_threshold_fails_the_unit_tests(rendered: Path, tmp_path: Path):
    copy = Path(shutil.copytree(rendered, tmp_path / "prometheus"))
    rules = copy / "rules" / "app-alerts.yml"
    rules.write_text(rules.read_text().replace("> 0.05", "> 0.5"))
    result = promtool("test", "rules", "tests/app-alerts.yml", cwd=copy)
    assert result.returncode != 0
    assert "AppHighErrorRatio" in result.stdout + result.stderr


def test_a_syntax_error_fails_check_rules(rendered: Path, tmp_path: Path):
    copy = Path(shutil.copytree(rendered, tmp_path / "prometheus"))
    rules = copy / "rules" / "audit-alerts.yml"
    rules.write_text(rules.read_text().replace("(increase(", "(increase((", 1))  # unbalanced parenthesis
    result = promtool("check", "rules", "rules/audit-alerts.yml", cwd=copy)
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


def test_the_old_self_division_bug_would_fail_the_single_5xx_case(rendered: Path, tmp_path: Path):
    """The design we replace divided each 5xx series by itself: any single error read 100%."""
    copy = Path(shutil.copytree(rendered, tmp_path / "prometheus"))
    rules = copy / "rules" / "app-alerts.yml"
    correct = next(a.expr for a in artifacts.rule_files(CFG)[3].alerts() if a.name == "AppHighErrorRatio")
    five = 'http_requests_total{job="fastapi-app",status_code=~"5.."}'
    buggy = f"sum by (job) (rate({five}[5m]) / rate({five}[5m])) > 0.05"
    text = rules.read_text()
    assert "\n".join(f"      {line}" for line in correct.splitlines()) in text
    rules.write_text(text.replace("\n".join(f"      {line}" for line in correct.splitlines()), f"      {buggy}"))
    result = promtool("test", "rules", "tests/app-alerts.yml", cwd=copy)
    assert result.returncode != 0
    assert "name: AppHighErrorRatio: a single 5xx a minute among 1000 requests," in result.stdout + result.stderr
