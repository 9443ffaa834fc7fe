"""The LogQL contract checks rule by rule, on parse results written out by hand (no node needed), and how the
checker finds and runs Loki's grammar: where it looks, what it says when something is missing, what node sends back.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from dashboards.validate import logql

FIELDS = frozenset({"method", "status_code", "user_id"})
STREAMS = frozenset({"service", "level"})


def parsed(**kw) -> logql.Parsed:
    base = {"ok": True, "error": None, "position": None, "stream_labels": (), "label_filters": (), "grouping": (),
            "line_format_fields": (), "unwrap": (), "parsers": ()}
    return logql.Parsed(**{**base, **kw})


def check(**kw) -> list[str]:
    return logql.check(parsed(**kw), FIELDS, STREAMS)


# --- check: the contract ----------------------------------------------------------------------------------------


def test_a_query_that_does_not_parse_reports_only_the_parsers_message():
    assert check(ok=False, error="syntax error at position 3", stream_labels=("tenant",)) == [
        "LogQL does not parse: syntax error at position 3"]


def test_a_stream_label_alloy_does_not_set_names_the_allowed_ones():
    assert check(stream_labels=("service", "tenant")) == [
        "stream selector uses label 'tenant', which Alloy does not set (allowed: level, service); "
        "filter it after | json instead"]


def test_special_and_stream_label_filters_are_skipped_and_the_filters_after_them_still_checked():
    filters = (("__error__", False), ("level", False), ("tenant", True), ("user_id", False))
    assert check(label_filters=filters, parsers=("Json",)) == [
        "field 'tenant' in a | json filter is not a field the app logs",
        "label filter on 'user_id' before any parser: only stream labels exist there",
    ]


def test_grouping_by_a_logged_field_needs_a_parser():
    assert check(grouping=("user_id",)) == ["grouping label 'user_id' is neither a stream label nor a logged field"]
    assert check(grouping=("user_id",), parsers=("Json",)) == []


def test_grouping_by_stream_and_special_labels_needs_no_parser():
    assert check(grouping=("service", "__error__")) == []
    assert check(grouping=("service", "__error__"), parsers=("Json",)) == []


def test_grouping_by_an_unknown_name_fails_even_after_a_parser():
    assert check(grouping=("tenant",), parsers=("Json",)) == [
        "grouping label 'tenant' is neither a stream label nor a logged field"]


def test_line_format_may_use_logged_fields_and_stream_labels_only():
    assert check(line_format_fields=("method", "level", "tenant")) == [
        "line_format uses 'tenant', which is not a logged field"]


def test_unwrap_needs_a_logged_field():
    assert check(unwrap=("status_code", "level")) == ["unwrap of 'level', which is not a logged field"]


# --- _semantics: what Loki would compute --------------------------------------------------------------------------


BARE_JSON = ("a metric query parses every field of every line with a bare | json: name the fields it needs "
             "(| json a, b)")


def test_a_metric_query_with_a_bare_json_is_refused_and_later_stages_still_checked():
    assert check(metric=True, json_stages=(None, ("tenant",))) == [
        BARE_JSON, "| json extracts 'tenant', which is not a logged field"]


def test_a_bare_json_is_fine_outside_metric_queries_and_named_json_inside_them():
    assert check(json_stages=(None,)) == []
    assert check(metric=True, json_stages=(("method",),)) == []


def test_a_filter_on_a_field_no_named_json_stage_extracts_is_refused():
    assert check(json_stages=(("method",),), label_filters=(("status_code", True),), parsers=("Json",)) == [
        "filter on 'status_code', which no | json stage extracts"]


def test_every_problem_is_kept_when_a_filter_misses_its_json_stage():
    assert check(json_stages=(("method", "tenant"),), label_filters=(("status_code", True),), parsers=("Json",)) == [
        "| json extracts 'tenant', which is not a logged field",
        "filter on 'status_code', which no | json stage extracts",
    ]


def test_a_bare_json_stage_extracts_every_field_for_the_filters():
    stages = (("method",), None)
    assert check(json_stages=stages, label_filters=(("status_code", True),), parsers=("Json", "Json")) == []


def test_a_line_format_template_outside_the_subset_is_refused():
    assert check(templates=("{{.method}} ok", "{{.method")) == [
        "line_format template '{{.method': '{{' is never closed at position 0"]


# --- finding the grammar ----------------------------------------------------------------------------------------


def _fake_grammar(node_modules: Path) -> Path:
    grammar = node_modules / logql.GRAMMAR_PACKAGE
    grammar.mkdir(parents=True)
    (grammar / "index.es.js").write_text("")
    return grammar


def test_the_environment_variable_wins_over_the_working_directory(tmp_path, monkeypatch):
    env = _fake_grammar(tmp_path / "env" / "node_modules")
    _fake_grammar(tmp_path / "cwd" / "node_modules")
    monkeypatch.setenv("FASTAPI_LOOKOUT_NODE_MODULES", str(tmp_path / "env" / "node_modules"))
    monkeypatch.chdir(tmp_path / "cwd")
    assert logql.grammar_dir() == env


def test_the_nearest_node_modules_up_from_the_working_directory_is_used(tmp_path, monkeypatch):
    found = _fake_grammar(tmp_path / "a" / "node_modules")
    (tmp_path / "a" / "b" / "node_modules" / logql.GRAMMAR_PACKAGE).mkdir(parents=True)  # no index.es.js: skipped
    monkeypatch.delenv(logql.NODE_MODULES_ENV, raising=False)
    monkeypatch.chdir(tmp_path / "a" / "b")
    assert logql.grammar_dir() == found.resolve()


def test_the_checkout_the_package_runs_from_is_the_last_resort(tmp_path, monkeypatch):
    monkeypatch.delenv(logql.NODE_MODULES_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    grammar = logql.grammar_dir()
    assert grammar is not None
    assert grammar.parts[-3:] == ("node_modules", *logql.GRAMMAR_PACKAGE.split("/"))
    assert grammar.parents[2] in Path(logql.__file__).resolve().parents


def test_without_a_grammar_anywhere_the_checker_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.delenv(logql.NODE_MODULES_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(logql, "__file__", str(tmp_path / "pkg" / "validate" / "logql.py"))
    assert logql.grammar_dir() is None
    with pytest.raises(logql.LogQLToolError) as exc:
        logql.parse_batch(["{a=\"b\"}"], node="node")
    assert str(exc.value) == f"Loki's LogQL grammar (@grafana/lezer-logql) is not installed: {logql.INSTALL_HINT}"


def _which(present: set[str]):
    return SimpleNamespace(which=lambda name: f"/usr/bin/{name}" if name in present else None)


@pytest.mark.parametrize(
    ("node", "grammar", "expected"),
    [(True, True, True), (False, True, False), (True, False, False), (False, False, False)],
)
def test_the_checker_is_available_only_with_both_node_and_the_grammar(monkeypatch, tmp_path, node, grammar, expected):
    monkeypatch.setattr(logql, "shutil", _which({"node"} if node else set()))
    monkeypatch.setattr(logql, "grammar_dir", lambda: tmp_path if grammar else None)
    assert logql.available() is expected


def test_without_node_the_checker_says_node_is_missing(monkeypatch):
    monkeypatch.setattr(logql, "shutil", _which(set()))
    with pytest.raises(logql.LogQLToolError) as exc:
        logql.parse_batch(["{a=\"b\"}"])
    assert str(exc.value) == "node is not installed (needed for the LogQL grammar check)"


def test_an_empty_batch_starts_nothing(monkeypatch):
    monkeypatch.setattr(logql, "shutil", _which(set()))
    assert logql.parse_batch([]) == []


# --- running node -----------------------------------------------------------------------------------------------


def test_a_failing_checker_is_a_tool_error_with_its_exit_code_and_stderr(tmp_path):
    fake = tmp_path / "node"
    fake.write_text("#!/bin/sh\necho '  grammar exploded  ' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(logql.LogQLToolError) as exc:
        logql.parse_batch(["{a=\"b\"}"], node=str(fake))
    assert str(exc.value) == "LogQL checker failed (3): grammar exploded"


NODE_RESULT = {
    "ok": False, "error": {"message": "syntax error at position 4", "position": 4},
    "streamLabels": ["service"], "labelFilters": [{"name": "status_code", "afterParser": True}],
    "grouping": ["level"], "lineFormatFields": ["method"], "unwrap": ["duration_ms"], "parsers": ["Json"],
    "templates": ["{{.method}}"], "jsonStages": [None, ["method", "status_code"]],
    "streamMatchers": [{"name": "service", "op": "=~", "value": "__grafana_var_service__"}], "metric": True,
}


def test_what_node_reports_becomes_one_parsed_result_per_query_after_variables_are_replaced(monkeypatch):
    calls = []

    def run(cmd, **kwargs):
        calls.append((cmd, kwargs))
        ok = {**NODE_RESULT, "ok": True, "error": None}
        return SimpleNamespace(returncode=0, stdout=json.dumps([NODE_RESULT, ok]), stderr="")

    monkeypatch.setattr(logql, "subprocess", SimpleNamespace(run=run))
    first, second = logql.parse_batch(['{service=~"$service"}', "{a=`${x:regex}`}"], node="node")
    assert first == logql.Parsed(
        ok=False, error="syntax error at position 4", position=4, stream_labels=("service",),
        label_filters=(("status_code", True),), grouping=("level",), line_format_fields=("method",),
        unwrap=("duration_ms",), parsers=("Json",), templates=("{{.method}}",),
        json_stages=(None, ("method", "status_code")),
        stream_matchers=(("service", "=~", "__grafana_var_service__"),), metric=True,
    )
    assert (second.ok, second.error, second.position) == (True, None, None)
    ((cmd, kwargs),) = calls
    assert cmd == ["node", str(logql.SCRIPT), str(logql.grammar_dir())]
    assert json.loads(kwargs["input"]) == ['{service=~"__grafana_var_service__"}', "{a=`__grafana_var_x__`}"]
    assert 0 < kwargs["timeout"] <= 60, "a hung node must not hang the build"


@pytest.mark.skipif(not logql.available(), reason="node and the LogQL grammar are not installed")
def test_node_reports_matchers_metric_json_stages_and_templates():
    metric, logs = logql.parse_batch([
        'sum by (level) (count_over_time({service=~"$service", level!="debug"} | json method, status_code'
        ' | status_code >= 500 [$__auto]))',
        '{service="a"} | json | line_format "{{.method}} x"',
    ])
    assert metric.metric and not logs.metric
    assert metric.stream_matchers == (("service", "=~", "__grafana_var_service__"), ("level", "!=", "debug"))
    assert metric.json_stages == (("method", "status_code"),)
    assert logs.json_stages == (None,)
    assert logs.templates == ("{{.method}} x",)
