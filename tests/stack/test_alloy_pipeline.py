"""The Alloy log pipeline as deployed (alloy/config.alloy): references resolve, labels stay low-cardinality,
per-request fields ride as structured metadata, and non-JSON lines pass through unharmed."""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from dashboards.catalogs.logs import LEVELS, LOG_FIELDS, STREAM_LABELS
from dashboards.config import Config, Endpoints
from dashboards.stack.alloy import pipeline
from dashboards.stack.alloy.artifacts import PATH, problems
from dashboards.stack.alloy.syntax import Attribute, Block, Document, Ref, block, render
from dashboards.validate import alloy as check
from dashboards.validate.alloy_parse import parse

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
BRIEF_HIGH_CARDINALITY = ("request_id", "user_id", "username", "endpoint", "path", "status_code", "method",
                          "client_ip", "duration_ms")


def deployed() -> Document:
    return parse((ROOT / PATH).read_text())


def _replace_component(doc: Document, component: str, new: Block) -> Document:
    return Document(tuple(new if isinstance(s, Block) and s.id == component else s for s in doc.body))


def _with_stage(doc: Document, stage: Block) -> Document:
    proc = next(b for b in doc.blocks() if b.name == "loki.process")
    return _replace_component(doc, proc.id, Block(proc.name, proc.label, (*proc.body, stage)))


# -- the deployed file ------------------------------------------------------------------------------

def test_deployed_config_parses_and_passes_every_check():
    assert problems((ROOT / PATH).read_text()) == []


def test_pipeline_for_another_loki_matches_the_golden_file():
    cfg = dataclasses.replace(Config(), endpoints=Endpoints(loki_url="http://loki-eu.example:3100/"))
    text = render(pipeline.pipeline(cfg))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        (GOLDEN / "alloy_config.alloy").write_text(text)
    assert (GOLDEN / "alloy_config.alloy").read_text() == text
    assert 'url = "http://loki-eu.example:3100/loki/api/v1/push"' in text


def test_stream_labels_are_exactly_the_exported_set_the_logql_checker_uses():
    assert set(check.stream_labels(deployed())) == pipeline.STREAM_LABELS == STREAM_LABELS
    assert {"service", "level", "environment", "container"} == pipeline.STREAM_LABELS


def test_pipeline_is_docker_discovery_relabel_source_process_write():
    doc = deployed()
    kinds = [b.name for b in doc.blocks() if b.label is not None]
    assert kinds == ["discovery.docker", "discovery.relabel", "loki.source.docker", "loki.process", "loki.write"]
    comps = check.components(doc)
    relabel = comps["discovery.relabel.containers"]
    rules = {r.attrs().get("target_label"): r.attrs() for r in relabel.blocks("rule")}
    assert rules["service"]["source_labels"] == ["__meta_docker_container_label_com_docker_compose_service"]
    assert rules["container"]["source_labels"] == ["__meta_docker_container_name"]
    source = comps["loki.source.docker.containers"].attrs()
    assert source["targets"] == Ref("discovery.relabel.containers.output")
    assert comps["loki.write.default"].blocks("endpoint")[0].attrs()["url"] == "http://loki:3100/loki/api/v1/push"


def test_per_request_fields_are_structured_metadata_not_labels():
    proc = check.components(deployed())["loki.process.json_lines"]
    stages = {s.name: s.attrs() for s in proc.blocks()}
    assert set(stages["stage.structured_metadata"]["values"]) == {"request_id", "user_id"}
    assert set(stages["stage.labels"]["values"]) == {"level", "environment"}
    assert stages["stage.timestamp"] == {"source": "timestamp", "format": "RFC3339"}


# -- the checker refuses what the old design did ------------------------------------------------------

@pytest.mark.parametrize("field", BRIEF_HIGH_CARDINALITY)
def test_checker_rejects_a_high_cardinality_field_promoted_by_stage_labels(field):
    doc = _with_stage(deployed(), block("stage.labels", None, values={field: ""}))
    found = check.check_labels(doc)
    assert found == [f"loki.process.json_lines stage.labels: {field!r} is promoted to a stream label (one stream "
                     "per value); keep it in the line or in stage.structured_metadata"]


def test_checker_rejects_the_old_designs_alloy_pipeline():
    """request_id, user_id, endpoint and status_code as labels: four problems, one per label."""
    old = _with_stage(deployed(), block("stage.labels", None,
                                        values={"request_id": "", "user_id": "", "endpoint": "", "status_code": ""}))
    labelled = [p.split("'")[1] for p in check.check_labels(old)]
    assert sorted(labelled) == ["endpoint", "request_id", "status_code", "user_id"]
    assert problems(render(old))  # and the build's validator refuses it too


@pytest.mark.parametrize(
    ("component", "where"),
    [
        (block("discovery.relabel", "bad", block("rule", None, source_labels=["x"], target_label="user_id"),
               targets=Ref("discovery.docker.containers.targets")), "discovery.relabel.bad rule"),
        (block("loki.source.docker", "bad", host="h", targets=[], labels={"client_ip": "1.2.3.4"},
               forward_to=[Ref("loki.write.default.receiver")]), "loki.source.docker.bad labels"),
        (block("loki.write", "bad", block("endpoint", None, url="u"), external_labels={"username": "x"}),
         "loki.write.bad external_labels"),
    ],
)
def test_checker_finds_labels_set_outside_the_process_stage(component, where):
    doc = Document((*deployed().body, component))
    assert any(p.startswith(where) for p in check.check_labels(doc)), check.check_labels(doc)


def test_checker_rejects_labelmap():
    doc = Document((*deployed().body, block("discovery.relabel", "all", block("rule", None, action="labelmap",
                                                                              regex="__meta_docker_(.+)"),
                                            targets=[])))
    assert check.check_labels(doc) == ["discovery.relabel.all rule: labelmap copies an unbounded set of labels "
                                       "onto streams"]


def test_relabel_rules_that_keep_or_set_internal_labels_are_not_stream_labels():
    doc = Document((block("discovery.relabel", "x", block("rule", None, source_labels=["a"], action="keep"),
                          block("rule", None, source_labels=["a"], target_label="__tmp"), targets=[]),))
    assert check.stream_labels(doc) == {}


# -- references ---------------------------------------------------------------------------------------

def test_checker_names_a_reference_to_an_undefined_component():
    doc = deployed()
    source = check.components(doc)["loki.source.docker.containers"]
    broken = Block(source.name, source.label, tuple(
        Attribute("forward_to", [Ref("loki.process.jsonlines.receiver")]) if isinstance(s, Attribute)
        and s.name == "forward_to" else s for s in source.body))
    assert check.check_references(_replace_component(doc, source.id, broken)) == [
        "loki.source.docker.containers forward_to: 'loki.process.jsonlines.receiver' references a component that is "
        "not defined ('loki.process.jsonlines')"]


def test_checker_names_an_export_the_component_type_does_not_have():
    doc = Document((block("loki.write", "default", block("endpoint", None, url="u")),
                    block("loki.source.docker", "x", host="h", targets=[],
                          forward_to=[Ref("loki.write.default.output")])))
    assert check.check_references(doc) == [
        "loki.source.docker.x forward_to: 'loki.write.default.output': loki.write exports receiver, not 'output'"]


def test_checker_finds_duplicates_unknown_types_and_stray_blocks():
    doc = Document((block("loki.write", "a"), block("loki.write", "a"), block("loki.writer", "b"), block("rule")))
    assert check.check_references(doc) == [
        "loki.write.a: defined twice", "loki.writer.b: unknown component type 'loki.writer'",
        "rule: unlabelled top-level block is neither a component nor a setting"]


def test_references_inside_nested_objects_and_calls_are_checked():
    doc = Document((block("loki.write", "w", block("endpoint", None, url="u"),
                          external_labels={"a": Ref("discovery.docker.nowhere.targets")}),))
    assert len(check.check_references(doc)) == 1


def test_checker_requires_sources_to_be_extracted_and_json_fields_to_be_logged():
    doc = _with_stage(deployed(), block("stage.structured_metadata", None, values={"trace_id": ""}))
    assert check.check_extraction(doc, LOG_FIELDS) == [
        "loki.process.json_lines stage.structured_metadata: 'trace_id' reads 'trace_id', which no earlier stage "
        "extracts"]
    doc = _with_stage(deployed(), block("stage.json", None, expressions={"tenant": "tenant_id"}))
    assert check.check_extraction(doc, LOG_FIELDS) == [
        "loki.process.json_lines stage.json: 'tenant' reads 'tenant_id', which the application never logs"]


# -- what the stages do to real lines -------------------------------------------------------------------

def simulate(doc: Document, line: str, target_labels: dict[str, str]) -> dict[str, Any]:
    """The loki.process stages this pipeline uses, as Alloy documents them; unknown stages fail the test."""
    proc = check.components(doc)["loki.process.json_lines"]
    extracted: dict[str, Any] = {}
    labels, metadata, ts = dict(target_labels), {}, None
    for stage in proc.blocks():
        attrs = stage.attrs()
        if stage.name == "stage.json":
            try:
                parsed = orjson.loads(line)
            except orjson.JSONDecodeError:
                parsed = None  # logged at debug by Alloy; the entry continues unchanged
            if isinstance(parsed, dict):
                for name, expr in attrs["expressions"].items():
                    if (expr or name) in parsed:
                        extracted[name] = parsed[expr or name]
        elif stage.name == "stage.timestamp":
            if attrs["source"] in extracted:
                assert attrs["format"] == "RFC3339"
                ts = datetime.fromisoformat(str(extracted[attrs["source"]]))
        elif stage.name in ("stage.labels", "stage.structured_metadata"):
            into = labels if stage.name == "stage.labels" else metadata
            for name, source in attrs["values"].items():
                if (source or name) in extracted:
                    into[name] = str(extracted[source or name])
        else:
            raise AssertionError(f"simulate() does not know {stage.name}")
    return {"line": line, "labels": labels, "metadata": metadata, "timestamp": ts}


TARGET = {"service": "fastapi-app", "container": "bundle-fastapi-app-1"}


def test_real_app_lines_get_level_environment_labels_and_request_metadata(service):
    app, sent = service
    doc = deployed()
    entries = [simulate(doc, raw, TARGET) for raw in app.output().splitlines() if raw.strip()]
    assert entries
    for entry in entries:
        assert set(entry["labels"]) <= pipeline.STREAM_LABELS
        assert entry["labels"]["level"] in LEVELS
        assert entry["labels"]["environment"] == "test"
        assert entry["timestamp"] is not None and entry["timestamp"].tzinfo is not None
    with_ids = {e["metadata"].get("request_id") for e in entries}
    assert set(sent.http) <= with_ids  # every request's access line carries its id as metadata
    assert any("user_id" in e["metadata"] for e in entries)


@pytest.mark.parametrize(
    ("service_name", "line"),
    [
        ("keycloak", '2025-01-15 12:00:00,123 WARN  [org.keycloak.events] (executor-thread-1) type="LOGIN_ERROR", '
                     'realmId="x", clientId="authors-app", userId="null", error="invalid_user_credentials"'),
        ("postgres", "2025-01-15 12:00:00.123 UTC [42] LOG:  database system is ready to accept connections"),
        ("grafana", 'logger=context userId=0 orgId=0 t=2025-01-15T12:00:00Z level=info msg="Request Completed"'),
        ("odd", '["a json array, not an object"]'),
    ],
)
def test_non_json_lines_pass_through_unchanged_with_their_target_labels(service_name, line):
    labels = {"service": service_name, "container": f"bundle-{service_name}-1"}
    entry = simulate(deployed(), line, labels)
    assert entry == {"line": line, "labels": labels, "metadata": {}, "timestamp": None}


def test_nothing_in_the_pipeline_drops_lines():
    proc = check.components(deployed())["loki.process.json_lines"]
    assert not [s for s in proc.blocks() if s.name in ("stage.drop", "stage.sampling", "stage.limit")]
    assert proc.blocks("stage.json")[0].attrs().get("drop_malformed", False) is False
