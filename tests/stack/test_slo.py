"""SLO burn-rate generation: the window table scaled to a period, spec errors, golden rules, the traffic guard."""

from __future__ import annotations

import dataclasses
import os
from datetime import timedelta
from pathlib import Path

import pytest

from dashboards.config import Config
from dashboards.stack.prometheus import artifacts, slo
from dashboards.stack.prometheus.rules import format_duration, parse_duration
from tests.stack.test_prometheus_rules import promtool, render_prometheus

GOLDEN = Path(__file__).parent / "golden"
CFG = Config()
D, H, M = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.read_text() == text, f"{name} differs: UPDATE_GOLDEN=1 rewrites it after review"


def _table(windows: tuple[slo.ScaledWindow, ...]) -> list[tuple[str, str, str, float]]:
    return [(w.severity, format_duration(w.long), format_duration(w.short), w.burn_rate) for w in windows]


# --- window math ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (30 * D, [("critical", "1h", "5m", 14.4), ("critical", "6h", "30m", 6.0),
                  ("warning", "1d", "2h", 3.0), ("warning", "3d", "6h", 1.0)]),
        (28 * D, [("critical", "56m", "4m40s", 14.4), ("critical", "5h36m", "28m", 6.0),
                  ("warning", "22h24m", "1h52m", 3.0), ("warning", "2d19h12m", "5h36m", 1.0)]),
        (7 * D, [("critical", "14m", "1m10s", 14.4), ("critical", "1h24m", "7m", 6.0),
                 ("warning", "5h36m", "28m", 3.0), ("warning", "16h48m", "1h24m", 1.0)]),
        (90 * D, [("critical", "3h", "15m", 14.4), ("critical", "18h", "1h30m", 6.0),
                  ("warning", "3d", "6h", 3.0), ("warning", "9d", "18h", 1.0)]),
    ],
)
def test_windows_scale_with_the_period_and_burn_rates_keep_their_budget_share(period, expected):
    assert _table(slo.scale_windows(period)) == expected


def test_burn_rate_is_budget_share_times_period_over_long_window():
    table = (slo.BurnWindow("critical", 2 * H, 10 * M, 0.05, 5 * M),)
    (row,) = slo.scale_windows(30 * D, table)
    assert row.burn_rate == pytest.approx(0.05 * 720 / 2) == 18.0


@pytest.mark.parametrize(
    ("period", "table", "message"),
    [
        (timedelta(0), slo.WINDOWS, "SLO period must be positive"),
        (1 * D, slo.WINDOWS, "scales the 0:05:00 window to 0:00:10, below 0:01:00"),
        (30 * D, (slo.BurnWindow("critical", H, 2 * H, 0.02, M),), "must be shorter than long window"),
        (30 * D, (slo.BurnWindow("critical", H, 5 * M, 0, M),), "budget_spent must be in (0, 1]"),
        (30 * D, (slo.BurnWindow("critical", H, 5 * M, 1.5, M),), "budget_spent must be in (0, 1]"),
    ],
)
def test_bad_tables_and_periods_are_refused(period, table, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        slo.scale_windows(period, table)


@pytest.mark.parametrize(("text", "delta"), [("5m", 5 * M), ("1h30m", 90 * M), ("2d19h12m", 67 * H + 12 * M),
                                             ("4m40s", 280 * timedelta(seconds=1)), ("0s", timedelta(0))])
def test_durations_round_trip(text, delta):
    assert parse_duration(text) == delta
    assert format_duration(delta) == text


@pytest.mark.parametrize("bad", ["", "5", "1.5h", "5M", "1w"])
def test_durations_outside_the_subset_are_refused(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


# --- specs --------------------------------------------------------------------------------------------
def test_an_sli_needs_exactly_one_of_bad_and_good():
    with pytest.raises(ValueError, match="exactly one of"):
        slo.Sli(total="x_total")
    with pytest.raises(ValueError, match="exactly one of"):
        slo.Sli(total="x_total", bad="y_total", good="z_total")


@pytest.mark.parametrize("objective", [0.0, 1.0, 99.5])
def test_objective_must_be_a_ratio(objective):
    with pytest.raises(ValueError, match="objective must be in"):
        slo.SloSpec("a", "A", objective, slo.Sli(total="t", bad="b"), "bad", "r")


def test_a_bad_period_in_the_config_fails_the_build_with_a_message():
    cfg = dataclasses.replace(CFG, alerting=dataclasses.replace(CFG.alerting, slo_period_days=1))
    artifacts.rule_files.cache_clear()
    assert any("below 0:01:00" in p for p in artifacts.check_rules(cfg))


def test_good_and_bad_slis_read_zero_not_nothing_without_bad_events():
    bad = slo.error_ratio(slo.Sli(total="t_total", bad="b_total"), "5m")
    good = slo.error_ratio(slo.Sli(total="t_total", good="g_total"), "5m")
    assert bad == ("(sum by (job) (rate(b_total[5m])) or sum by (job) (rate(t_total[5m])) * 0) "
                   "/ sum by (job) (rate(t_total[5m]))")
    assert good == ("1 - ((sum by (job) (rate(g_total[5m])) or sum by (job) (rate(t_total[5m])) * 0) "
                    "/ sum by (job) (rate(t_total[5m])))")


def test_thresholds_are_written_without_float_noise():
    assert slo.number(14.4 * 0.005) == "0.072"
    assert slo.number(60.0) == "60"
    assert slo.percent(0.995) == "99.5%"


# --- generated rules -------------------------------------------------------------------------------------
def test_slo_rules_match_the_golden_file():
    _golden("slo-rules.yml", artifacts.rules_yml(CFG, "slo").decode())


def test_slo_rules_for_a_28_day_999_objective_match_the_golden_file():
    cfg = dataclasses.replace(
        CFG,
        slo=dataclasses.replace(CFG.slo, availability=0.999, latency_quantile=0.99, latency_p95_seconds=0.5),
        alerting=dataclasses.replace(CFG.alerting, slo_period_days=28, slo_min_requests=500,
                                     slo_excluded_endpoints=""),
    )
    artifacts.rule_files.cache_clear()
    assert artifacts.check_rules(cfg) == []
    _golden("slo-rules-28d-999.yml", artifacts.rules_yml(cfg, "slo").decode())


def test_page_and_ticket_rules_pair_long_and_short_windows_with_the_traffic_guard():
    alerts = [a for a in artifacts.rule_files(CFG)[1].alerts() if a.name == "AppAvailabilityBudgetBurn"]
    assert [(a.severity, a.labels["long_window"], a.labels["short_window"], a.for_) for a in alerts] == [
        ("critical", "1h", "5m", "2m"), ("critical", "6h", "30m", "15m"),
        ("warning", "1d", "2h", "1h"), ("warning", "3d", "6h", "3h")]
    assert alerts[0].expr == ('job:slo_errors:ratio_rate1h{slo="availability"} > 0.072\n'
                              'and job:slo_errors:ratio_rate5m{slo="availability"} > 0.072\n'
                              'and job:slo_requests:increase1h{slo="availability"} >= 100')


def test_latency_sli_reads_the_objective_bucket_and_skips_probes():
    latency = slo.slo_specs(CFG)[1]
    assert latency.sli.good == 'http_request_duration_seconds_bucket{job="fastapi-app",endpoint!~"/health",le="0.25"}'
    assert latency.sli.total == 'http_request_duration_seconds_count{job="fastapi-app",endpoint!~"/health"}'
    assert latency.objective == CFG.slo.latency_quantile


def test_without_the_traffic_guard_one_night_time_error_would_page(tmp_path: Path):
    """The guard is what keeps the trickle cases silent: with it set to 0 the same promtool cases fail."""
    cfg = dataclasses.replace(CFG, alerting=dataclasses.replace(CFG.alerting, slo_min_requests=0))
    artifacts.rule_files.cache_clear()
    root = render_prometheus(cfg, tmp_path)
    artifacts.rule_files.cache_clear()
    result = promtool("test", "rules", "tests/slo.yml", cwd=root)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "one error in a night-time trickle does not page (min-traffic guard)" in out
    assert "a slow trickle does not page (min-traffic guard)" in out
    assert "10% errors page on both page windows" not in out  # the other cases still hold
