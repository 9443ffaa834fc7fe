"""The PromQL checker, rule by rule: which labels each operator hands up, and where every rule applies.

The label set a sub-expression carries is read through the checker's own report: ``count by (zz_probe) (<expr>)``
names every label available beneath it, or says nothing when the set is unknown (an error already reported below).
A small catalog keeps each expectation visible here.
"""

from __future__ import annotations

import re

import pytest

from dashboards.catalogs import MetricCatalog, expand
from dashboards.validate import promql

CAT = MetricCatalog(
    {
        **expand("req_total", "counter", {"method", "code"}, "app"),
        **expand("mem_bytes", "gauge", {"area", "pool"}, "app"),
        **expand("info", "gauge", {"version"}, "app"),
        **expand("lat_seconds", "histogram", {"method"}, "app"),
    },
    {"lat_seconds": "histogram"},
)
RI = "[$__rate_interval]"
REQ = f"rate(req_total{RI})"
BASE = {"job", "instance"}
MEM = {"area", "pool", *BASE}
REQ_LABELS = {"method", "code", *BASE}
UNKNOWN = "unknown metric 'nope' (not in the app or Keycloak catalog)"
COUNTER = "counter 'req_total' must be read through rate(), increase() or irate()"
PROBE = re.compile(r"^count by/without label 'zz_probe' does not exist on the series beneath it \(available: (.*)\)$")


def labels_of(expr: str) -> tuple[set[str] | None, list[str]]:
    """(labels the expression carries, or None when unknown; the other problems found in it)."""
    problems = promql.check(f"count by (zz_probe) ({expr})", CAT)
    probes = [m.group(1) for p in problems if (m := PROBE.match(p))]
    others = [p for p in problems if not PROBE.match(p)]
    if not probes:
        return None, others
    (available,) = probes
    return (set() if available == "none" else set(available.split(", "))), others


# --- selectors --------------------------------------------------------------------------------------------------


def test_a_selector_carries_its_catalog_labels_plus_job_and_instance_but_never_name():
    assert labels_of("mem_bytes") == (MEM, [])


def test_an_unknown_label_on_a_selector_names_the_labels_the_series_has():
    assert promql.check('mem_bytes{zone="a"}', CAT) == ["label 'zone' does not exist on mem_bytes (labels: area, pool)"]


def test_a_selector_without_a_metric_name_is_refused_and_its_labels_are_unknown():
    assert promql.check('{job="x"}', CAT) == ['selector {job="x"} has no metric name']
    assert labels_of('{job="x"}') == (None, ['selector {job="x"} has no metric name'])


# --- aggregations -----------------------------------------------------------------------------------------------


def test_sum_by_keeps_only_the_grouping_labels():
    assert labels_of("sum by (area) (mem_bytes)") == ({"area"}, [])


def test_sum_without_drops_only_the_named_labels():
    assert labels_of("sum without (pool) (mem_bytes)") == ({"area", *BASE}, [])


def test_sum_without_over_an_unknown_metric_carries_unknown_labels():
    assert labels_of("sum without (pool) (nope)") == (None, [UNKNOWN])


def test_an_aggregation_without_grouping_keeps_no_label_and_says_none_is_available():
    assert labels_of("sum(mem_bytes)") == (set(), [])
    assert promql.check("sum by (area) (sum(mem_bytes))", CAT) == [
        "sum by/without label 'area' does not exist on the series beneath it (available: none)"]


@pytest.mark.parametrize("op", ["topk", "bottomk", "limitk", "limit_ratio"])
def test_selecting_aggregations_keep_every_label_of_the_series(op):
    param = "0.5" if op == "limit_ratio" else "3"
    assert labels_of(f"{op}({param}, mem_bytes)") == (MEM, [])


def test_an_aggregation_parameter_is_checked_like_any_expression():
    assert promql.check("topk(scalar(nope), mem_bytes)", CAT) == [UNKNOWN]
    assert promql.check("quantile(scalar(sum(req_total)), mem_bytes)", CAT) == [COUNTER]


# --- functions --------------------------------------------------------------------------------------------------


def test_a_counter_inside_a_non_rate_function_is_still_a_counter_read_as_a_value():
    assert promql.check("abs(req_total)", CAT) == [COUNTER]
    assert promql.check("abs(mem_bytes)", CAT) == []


def test_a_function_keeps_the_labels_of_its_vector_argument():
    assert labels_of("abs(mem_bytes)") == (MEM, [])
    assert labels_of("clamp(mem_bytes, 0, 1)") == (MEM, [])
    assert labels_of("vector(1)") == (set(), [])


def test_a_function_of_an_unknown_metric_carries_unknown_labels():
    assert labels_of("abs(nope)") == (None, [UNKNOWN])


def test_label_replace_adds_the_destination_label():
    assert labels_of('label_replace(mem_bytes, "zone", "$1", "area", "(.*)")') == ({"zone", *MEM}, [])


def test_label_replace_reads_a_parenthesised_destination_label():
    assert labels_of('label_replace(mem_bytes, ("zone"), "$1", "area", "(.*)")') == ({"zone", *MEM}, [])


def test_label_replace_of_an_unknown_metric_carries_unknown_labels():
    assert labels_of('label_replace(nope, "zone", "$1", "area", "(.*)")') == (None, [UNKNOWN])


def test_histogram_quantile_drops_le_and_keeps_the_other_grouping_labels():
    query = f"histogram_quantile(0.9, sum by (le, method) (rate(lat_seconds_bucket{RI})))"
    assert labels_of(query) == ({"method"}, [])


def test_histogram_quantile_without_le_beneath_says_so():
    assert promql.check(f"histogram_quantile(0.9, sum by (method) (rate(lat_seconds_bucket{RI})))", CAT) == [
        "histogram_quantile() needs the 'le' label kept by the aggregation beneath it"]


def test_histogram_quantile_of_an_unknown_metric_carries_unknown_labels():
    assert labels_of("histogram_quantile(0.9, nope)") == (None, [UNKNOWN])


# --- binary operators -------------------------------------------------------------------------------------------


def test_both_sides_of_a_binary_operator_are_checked_as_values():
    assert promql.check("nope / mem_bytes", CAT) == [UNKNOWN]
    assert promql.check("mem_bytes / nope", CAT) == [UNKNOWN]
    assert promql.check("req_total / 2", CAT) == [COUNTER]
    assert promql.check("2 / req_total", CAT) == [COUNTER]


def test_arithmetic_with_a_number_keeps_the_vector_sides_labels():
    assert labels_of("mem_bytes * 2") == (MEM, [])
    assert labels_of("2 * mem_bytes") == (MEM, [])
    assert labels_of("(2) * mem_bytes") == (MEM, [])
    assert labels_of("mem_bytes * (2)") == (MEM, [])


def test_vector_arithmetic_without_matching_keeps_the_left_sides_labels():
    assert labels_of(f"mem_bytes / {REQ}") == (MEM, [])


def test_or_carries_the_labels_of_either_side():
    assert labels_of(f"mem_bytes or {REQ}") == (MEM | REQ_LABELS, [])


def test_or_with_an_unknown_side_carries_unknown_labels():
    assert labels_of("nope or mem_bytes") == (None, [UNKNOWN])
    assert labels_of("mem_bytes or nope") == (None, [UNKNOWN])


@pytest.mark.parametrize("op", ["and", "unless"])
def test_and_unless_keep_the_left_sides_labels_even_with_on(op):
    assert labels_of(f"mem_bytes {op} on(job) info") == (MEM, [])


def test_on_keeps_only_the_matching_labels():
    assert labels_of("mem_bytes / on(job, instance) info") == (BASE, [])


def test_group_left_adds_the_labels_it_copies_from_the_other_side():
    assert labels_of("mem_bytes * on(job) group_left(version) info") == ({"job", "version"}, [])


def test_group_right_adds_the_labels_it_copies_from_the_other_side():
    assert labels_of("info * on(job) group_right(area) mem_bytes") == ({"job", "area"}, [])


def test_ignoring_keeps_the_left_sides_labels():
    assert labels_of("mem_bytes / ignoring(pool) info") == (MEM, [])


def test_an_on_label_on_one_side_only_is_enough():
    assert promql.check("mem_bytes / on(area) info", CAT) == []
    assert promql.check("mem_bytes / on(version) info", CAT) == []


def test_an_on_label_on_neither_side_is_reported_with_the_operator():
    assert promql.check("mem_bytes / on(zone) info", CAT) == ["on/ignoring label 'zone' exists on neither side of '/'"]


# --- parentheses, unary minus, subqueries -----------------------------------------------------------------------


def test_parenthesised_expressions_are_walked():
    assert promql.check("sum((nope))", CAT) == [UNKNOWN]
    assert promql.check("sum((req_total))", CAT) == [COUNTER]
    assert labels_of("(mem_bytes)") == (MEM, [])


def test_unary_minus_is_walked():
    assert promql.check("-nope", CAT) == [UNKNOWN]
    assert promql.check("-req_total", CAT) == [COUNTER]
    assert labels_of("-(mem_bytes)") == (MEM, [])


def test_a_parenthesised_matrix_keeps_the_rate_argument_rules():
    assert promql.check(f"rate((req_total{RI}))", CAT) == []
    assert promql.check(f"rate((mem_bytes{RI}))", CAT) == [
        "'mem_bytes' is a gauge, not a counter: rate() of it is meaningless"]


def test_a_subquery_is_refused_and_what_it_reads_is_still_checked_as_a_value():
    problems = promql.check(f"max_over_time(req_total{RI[:-1]}:1m])", CAT)
    assert problems == [
        "range [$__rate_interval:1m] must be [$__rate_interval] (Grafana keeps it >= 4 scrape intervals), "
        "or [$__range] in an instant query",
        "subqueries are not used in dashboards; use a recording rule",
        COUNTER,
    ]
    assert labels_of(f"max_over_time(mem_bytes{RI[:-1]}:1m])")[0] == MEM


# --- ranges -----------------------------------------------------------------------------------------------------


def test_the_dashboard_range_is_refused_in_a_range_query_by_default():
    assert promql.check("sum(increase(req_total[$__range]))", CAT) == [
        "range [$__range] must be [$__rate_interval] (Grafana keeps it >= 4 scrape intervals), "
        "or [$__range] in an instant query"]


@pytest.mark.parametrize("rng", ["$__range", "${__range}", "$__rate_interval", "${__rate_interval}"])
def test_an_instant_query_may_read_the_dashboard_range_in_either_spelling(rng):
    assert promql.check(f"sum(increase(req_total[{rng}]))", CAT, instant=True) == []


def test_an_instant_querys_range_problem_offers_the_dashboard_range():
    assert promql.check("sum(increase(req_total[5m]))", CAT, instant=True) == [
        "range [5m] must be [$__rate_interval] (Grafana keeps it >= 4 scrape intervals) or [$__range]"]


def test_strings_are_blanked_before_ranges_are_read():
    assert promql.check('mem_bytes{area="[5m]"}', CAT) == []
    assert promql.check('mem_bytes["5m"]', CAT)[0] == (
        'range [""] must be [$__rate_interval] (Grafana keeps it >= 4 scrape intervals), '
        "or [$__range] in an instant query")


# --- series_read and label_values -------------------------------------------------------------------------------


def test_series_read_names_every_series_a_query_selects_known_or_not():
    assert promql.series_read(f"sum({REQ}) / mem_bytes + nope + lat_seconds", CAT) == {
        "req_total", "mem_bytes", "nope", "lat_seconds"}


def test_series_read_of_a_label_values_query_names_its_selector():
    assert promql.series_read('label_values(info{job="x"}, version)', CAT) == {"info"}


def test_series_read_of_a_query_that_does_not_parse_is_empty():
    assert promql.series_read("sum(mem_bytes", CAT) == set()


def test_label_values_of_an_unknown_metric_reports_only_the_metric():
    assert promql.check_label_values("label_values(nope, job)", CAT) == [UNKNOWN]
    assert promql.check_label_values("label_values(sum by (area) (mem_bytes), area)", CAT) == []
    assert promql.check_label_values("label_values(sum by (area) (mem_bytes), pool)", CAT) == [
        "label 'pool' does not exist on sum by (area) (mem_bytes)"]


def test_a_variable_query_may_read_a_counter_directly():
    assert promql.check_label_values("label_values(req_total, method)", CAT) == []
