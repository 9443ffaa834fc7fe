"""The observable is the unit: every artifact about a signal comes from its one definition, and the build says
by name what is missing instead of raising."""

from __future__ import annotations

import ast
import dataclasses
import difflib
import json
from pathlib import Path

import pytest

from dashboards import build
from dashboards.config import Config, DsType
from dashboards.grafana import artifacts as grafana
from dashboards.observables import AREAS, collect, http
from dashboards.observables import model as o
from dashboards.stack.prometheus import artifacts as prom_artifacts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh():
    """Caches cleared before and after: the test changes what the observables are."""

    def clear() -> None:
        grafana._dashboards.cache_clear()
        collect.cache_clear()
        prom_artifacts.rule_files.cache_clear()

    clear()
    yield
    clear()


def _obs(**kw) -> o.Observable:
    base = dict(name="x.y", title="T", description="why", unit="s", datasource=DsType.PROMETHEUS,
                queries=(o.Query("up"),), style=o.stat(), no_alert="test")
    return o.Observable(**{**base, **kw})


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"description": "  "}, "has no description"),
        ({"unit": ""}, "has no unit"),
        ({"queries": ()}, "has no query"),
        ({"no_alert": ""}, "has neither an alert nor a stated reason why not"),
        ({"thresholds": o.Thresholds((o.Step("red", 1),))}, "thresholds must start with a base step"),
    ],
)
def test_an_incomplete_definition_is_a_problem_naming_it_not_a_traceback(change, problem):
    problems = _obs(**change).problems()
    assert len(problems) == 1 and problems[0].startswith(f"observable x.y: {problem}"), problems


def test_a_complete_definition_has_no_problem():
    assert _obs().problems() == []


def test_the_build_lists_an_empty_description_with_every_other_problem(monkeypatch, fresh, tmp_path, capsys):
    real = http.observables

    def broken(cfg: Config) -> list[o.Observable]:
        found = real(cfg)
        return [dataclasses.replace(x, description="") if x.name == "http.request_rate" else x for x in found]

    monkeypatch.setattr(http, "observables", broken)
    assert build.main(["--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "observable http.request_rate: has no description" in err
    assert "Traceback" not in err and not (tmp_path / "grafana").exists()


def test_an_area_that_cannot_be_built_is_a_problem_too(monkeypatch, fresh):
    def explode(cfg: Config) -> list[o.Observable]:
        raise KeyError("no such threshold")

    monkeypatch.setattr(http, "observables", explode)
    assert collect(Config()).problems[0] == ("observables of http: cannot be built: KeyError: 'no such threshold'")


def test_a_catalog_metric_nobody_observes_fails_the_build_with_its_name(monkeypatch, fresh):
    from fastapi_lookout import metrics

    spec = metrics.MetricSpec("orders_placed", "counter", ("channel",), "Orders placed.")
    monkeypatch.setattr(metrics, "CATALOG", (*metrics.CATALOG, spec))
    monkeypatch.setattr(metrics, "exposed_series", lambda: {**dict(_exposed()), "orders_placed_total": ("channel",)})
    with pytest.raises(build.ValidationFailed) as failed:
        build.render_all()
    assert ("metric orders_placed is read by no observable: add one, or list it as deliberately unobserved with "
            "a reason") in failed.value.problems


def _exposed() -> dict[str, tuple[str, ...]]:
    from fastapi_lookout import metrics

    out: dict[str, tuple[str, ...]] = {}
    for spec in metrics.CATALOG:
        out.update(spec.series())
    return out


def test_adding_an_observable_touches_only_its_panel_its_docs_and_the_layout_below(monkeypatch, fresh):
    """The add-a-metric path: one observable and one placement by hand; every other panel keeps its id."""
    from dashboards.grafana import fastapi_metrics
    from dashboards.grafana.layout import Row, cells

    before = build.render_all()
    real = http.observables
    extra = o.Observable("http.request_count", "Requests in range", "Requests answered in the time range, by instance.",
                         "short", DsType.PROMETHEUS,
                         (o.Query('sum by (instance) (increase(http_requests_total{job=~"$job",instance=~"$instance"}'
                                  '[$__range]))', instant=True),),
                         o.stat(), no_alert="Traffic, not health.")
    monkeypatch.setattr(http, "observables", lambda cfg: [*real(cfg), extra])
    layout = fastapi_metrics.LAYOUT
    rows = (Row(layout.rows[0].title, (*layout.rows[0].cells, *cells(("http.request_count", 24)))), *layout.rows[1:])
    monkeypatch.setattr(grafana, "LAYOUTS", tuple(dataclasses.replace(x, rows=rows) if x.uid == layout.uid else x
                                                  for x in grafana.LAYOUTS))
    grafana._dashboards.cache_clear()
    collect.cache_clear()
    after = build.render_all()
    assert {k for k in after if before.get(k) != after[k]} == {
        "grafana/dashboards/fastapi-metrics.json", "docs/dashboards/fastapi-metrics.md"}
    old = {p["id"]: p for p in json.loads(before["grafana/dashboards/fastapi-metrics.json"])["panels"]}
    new = {p["id"]: p for p in json.loads(after["grafana/dashboards/fastapi-metrics.json"])["panels"]}
    assert set(new) - set(old) == {next(i for i, p in new.items() if p["title"] == "Requests in range")}
    first_row_end = max(p["gridPos"]["y"] + p["gridPos"]["h"] for i, p in old.items()
                        if p["type"] != "row" and p["gridPos"]["y"] < 30 and i in new)
    for pid, panel in old.items():
        if panel["gridPos"]["y"] < first_row_end:
            assert new[pid] == panel, panel["title"]  # above the new panel: not a single line changed
        else:
            assert {k: v for k, v in new[pid].items() if k != "gridPos"} == {
                k: v for k, v in panel.items() if k != "gridPos"}  # below it: only moved
    diff = difflib.unified_diff(before["docs/dashboards/fastapi-metrics.md"].decode().splitlines(),
                                after["docs/dashboards/fastapi-metrics.md"].decode().splitlines(), n=0)
    added = [line for line in diff if line.startswith("+") and not line.startswith("+++")]
    assert any("Requests in range" in line for line in added) and not any(line.startswith("-") for line in diff
                                                                           if not line.startswith("---"))


def test_every_alert_in_the_rule_files_is_defined_by_an_observable_or_an_slo_it_shows():
    cfg = Config()
    observables = collect(cfg)
    for rule_file in prom_artifacts.rule_files(cfg):
        for alert in rule_file.alerts():
            owner = observables.owner_of(alert.name)
            assert owner is not None and owner.runbook is not None, alert.name


def test_no_threshold_literal_outside_the_config():
    """Panel thresholds read the config: a number written into Thresholds.of(...) in a definition is refused
    (the config is where an SRE changes it, and where the alert reads it too)."""
    offenders = []
    for area in AREAS:
        tree = ast.parse(Path(area.__file__).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "of":
                for arg in node.args[1:]:
                    if isinstance(arg, ast.Tuple) and isinstance(arg.elts[0], ast.Constant):
                        offenders.append(f"{area.__name__}:{node.lineno}")
    assert offenders == []


def test_a_config_override_moves_the_panel_and_the_alert_together(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("alerting:\n  audit_queue_warning: 250\n  keycloak_heap_warning: 0.7\n")
    cfg = build.load_config(path)
    observables = collect(cfg).enabled
    queue = observables["audit.queue"]
    assert queue.thresholds.steps[1].value == 250 and "> 250" in queue.alerts[0].expr
    heap = observables["keycloak.heap_after_gc"]
    assert heap.thresholds.steps[1].value == 0.7 and "> 0.7" in heap.alerts[0].expr


def test_the_generator_keeps_its_modules_small():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "dashboards").rglob("*.py")}
    assert {k: v for k, v in sizes.items() if v > 400} == {}
