"""SLO burn-rate alerts (multiwindow, multi-burn-rate; Google SRE workbook ch. 5), sloth/pyrra style.

The window table is data (:data:`WINDOWS`, stated for a 30-day period); one pure
function (:func:`scale_windows`) scales it to the SLO's period and derives each
row's burn-rate factor from the share of the error budget it represents. An SLO
is a small spec (objective, SLI as counters of total and bad-or-good events,
period); the generator turns it into recording rules (error ratio per window,
requests per long window) and alerts that fire only when

- both the long and the short window burn faster than the factor allows, and
- the long window saw at least ``slo_min_requests`` requests, so one error in a
  trickle of night-time traffic never pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from prometheus_client.utils import floatToGoString

from fastapi_lookout import metrics

from ...catalogs.app import series_name
from ...config import Config
from .rules import (
    Alert,
    Case,
    Fired,
    Group,
    Recording,
    RuleFile,
    Series,
    format_duration,
    series,
)


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One row of the table: alert when ``long`` spends ``budget_spent`` of the period's error budget."""

    severity: str
    long: timedelta
    short: timedelta
    """A twelfth of ``long``: the alert stops soon after the burn stops."""
    budget_spent: float
    for_: timedelta


REFERENCE_PERIOD: Final = timedelta(days=30)
WINDOWS: Final[tuple[BurnWindow, ...]] = (
    # page: 2 % of a 30-day budget in 1 h (14.4x), 5 % in 6 h (6x)
    BurnWindow("critical", timedelta(hours=1), timedelta(minutes=5), 0.02, timedelta(minutes=2)),
    BurnWindow("critical", timedelta(hours=6), timedelta(minutes=30), 0.05, timedelta(minutes=15)),
    # ticket: 10 % in 1 d (3x), 10 % in 3 d (1x)
    BurnWindow("warning", timedelta(days=1), timedelta(hours=2), 0.10, timedelta(hours=1)),
    BurnWindow("warning", timedelta(days=3), timedelta(hours=6), 0.10, timedelta(hours=3)),
)
"""Stated for :data:`REFERENCE_PERIOD`; :func:`scale_windows` adapts it to any period."""


@dataclass(frozen=True, slots=True)
class ScaledWindow:
    severity: str
    long: timedelta
    short: timedelta
    burn_rate: float
    """How many times faster than "exactly the budget over the period" the errors arrive."""
    for_: timedelta


def scale_windows(
    period: timedelta,
    table: Sequence[BurnWindow] = WINDOWS,
    reference: timedelta = REFERENCE_PERIOD,
    min_window: timedelta = timedelta(minutes=1),
) -> tuple[ScaledWindow, ...]:
    """The table for ``period``: windows scale with the period (whole seconds); the burn rate is
    ``budget_spent * period / long``, so the alert still means "this share of the budget is gone"."""
    if period <= timedelta(0):
        raise ValueError(f"SLO period must be positive, got {period}")
    out = []
    for row in table:
        if not 0 < row.budget_spent <= 1:
            raise ValueError(f"budget_spent must be in (0, 1], got {row.budget_spent}")
        if row.short >= row.long:
            raise ValueError(f"short window {row.short} must be shorter than long window {row.long}")
        long = timedelta(seconds=round(row.long.total_seconds() * period / reference))
        short = timedelta(seconds=round(row.short.total_seconds() * period / reference))
        if short < min_window:
            raise ValueError(
                f"period {period} scales the {row.short} window to {short}, below {min_window} "
                "(a rate needs several scrapes)"
            )
        burn = round(row.budget_spent * (period / long), 6)
        out.append(ScaledWindow(row.severity, long, short, burn, row.for_))
    return tuple(out)


# --- SLO specs --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sli:
    """Counters (selectors, read through rate/increase): every event, and the bad or the good ones."""

    total: str
    bad: str = ""
    good: str = ""

    def __post_init__(self) -> None:
        if bool(self.bad) == bool(self.good):
            raise ValueError("an SLI needs exactly one of `bad` and `good` besides `total`")


@dataclass(frozen=True, slots=True)
class SloSpec:
    name: str
    """Value of the `slo` label of its recordings and alerts."""
    alert: str
    objective: float
    sli: Sli
    bad_events: str
    """What a bad event is, for humans: "requests answered with a 5xx"."""
    period: timedelta = REFERENCE_PERIOD

    def __post_init__(self) -> None:
        if not 0 < self.objective < 1:
            raise ValueError(f"SLO {self.name}: objective must be in (0, 1), got {self.objective}")

    @property
    def budget(self) -> float:
        return 1 - self.objective


def number(value: float) -> str:
    """A threshold as PromQL reads it, without float noise (14.4 * 0.005 -> 0.072, 60.0 -> 60)."""
    rounded = round(value, 10)
    return str(int(rounded)) if rounded == int(rounded) else repr(rounded)


def percent(value: float) -> str:
    return f"{round(value * 100, 6):g}%"


BY: Final = "job"
ERRORS: Final = f"{BY}:slo_errors:ratio_rate"
REQUESTS: Final = f"{BY}:slo_requests:increase"


def error_ratio(sli: Sli, window: str) -> str:
    """Share of bad events over ``window``; 0 (not nothing) when traffic has no bad event yet."""
    total = f"sum by ({BY}) (rate({sli.total}[{window}]))"
    if sli.bad:
        return f"(sum by ({BY}) (rate({sli.bad}[{window}])) or {total} * 0) / {total}"
    return f"1 - ((sum by ({BY}) (rate({sli.good}[{window}])) or {total} * 0) / {total})"


def recordings(spec: SloSpec, windows: Sequence[ScaledWindow]) -> list[Recording]:
    labels = {"slo": spec.name}
    every = sorted({w for row in windows for w in (row.short, row.long)})
    longs = sorted({row.long for row in windows})
    out = [Recording(f"{ERRORS}{format_duration(w)}", error_ratio(spec.sli, format_duration(w)), labels)
           for w in every]
    out += [Recording(f"{REQUESTS}{format_duration(w)}",
                      f"sum by ({BY}) (increase({spec.sli.total}[{format_duration(w)}]))", labels)
            for w in longs]
    return out


def alerts(spec: SloSpec, windows: Sequence[ScaledWindow], min_requests: int) -> list[Alert]:
    out = []
    sel = f'{{slo="{spec.name}"}}'
    days = spec.period / timedelta(days=1)
    for row in windows:
        long, short = format_duration(row.long), format_duration(row.short)
        threshold = number(row.burn_rate * spec.budget)
        spent = percent(row.burn_rate * (row.long / spec.period))
        out.append(Alert(
            name=spec.alert,
            expr=(f"{ERRORS}{long}{sel} > {threshold}\nand {ERRORS}{short}{sel} > {threshold}\n"
                  f"and {REQUESTS}{long}{sel} >= {min_requests}"),
            severity=row.severity,
            for_=format_duration(row.for_),
            labels={"long_window": long, "short_window": short},
            summary=f"{{{{ $labels.job }}}} burns its {spec.name} error budget {row.burn_rate:g}x too fast",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of {spec.bad_events} over the last {long} "
                f"(and more than {percent(float(threshold))} over the last {short}); the objective "
                f"{percent(spec.objective)} over {days:g}d allows {percent(spec.budget)}: at this rate "
                f"{spent} of the budget is gone in {long}."
            ),
        ))
    return out


def slo_alert_names(cfg: Config, name: str) -> tuple[str, ...]:
    """The alert(s) of the SLO called ``name``: what the panel showing that SLI references."""
    return tuple(spec.alert for spec in slo_specs(cfg) if spec.name == name)


def slo_specs(cfg: Config) -> tuple[SloSpec, ...]:
    excluded = cfg.alerting.slo_excluded_endpoints
    base = cfg.app_selector + (f',endpoint!~"{excluded}"' if excluded else "")
    requests = series_name(metrics.HTTP_REQUESTS)
    count = series_name(metrics.HTTP_REQUEST_DURATION, "_count")
    bucket = series_name(metrics.HTTP_REQUEST_DURATION, "_bucket")
    threshold = cfg.slo.latency_p95_seconds
    period = timedelta(days=cfg.alerting.slo_period_days)
    return (
        SloSpec(
            name="availability",
            alert="AppAvailabilityBudgetBurn",
            objective=cfg.slo.availability,
            sli=Sli(total=f"{requests}{{{base}}}", bad=f'{requests}{{{base},status_code=~"5.."}}'),
            bad_events="requests were answered with a 5xx",
            period=period,
        ),
        SloSpec(
            name="latency",
            alert="AppLatencyBudgetBurn",
            objective=cfg.slo.latency_quantile,
            sli=Sli(total=f"{count}{{{base}}}", good=f'{bucket}{{{base},le="{floatToGoString(threshold)}"}}'),
            bad_events=f"requests took longer than {threshold:g} s",
            period=period,
        ),
    )


# --- promtool cases ---------------------------------------------------------------------
def compress(values: Sequence[int]) -> str:
    """promtool's expanding notation for a list of samples: runs of equal steps become ``a+bxn``."""
    out, i = [], 0
    while i < len(values):
        j = i
        if i + 1 < len(values):
            step = values[i + 1] - values[i]
            while j + 1 < len(values) and values[j + 1] - values[j] == step:
                j += 1
        else:
            step = 0
        if j == i:
            out.append(str(values[i]))
        elif step == 0:
            out.append(f"{values[i]}x{j - i}")
        else:
            out.append(f"{values[i]}{step:+d}x{j - i}")
        i = j + 1
    return " ".join(out)


def trickle(minutes: int, every: int, bad_at: Sequence[int] = ()) -> tuple[str, str]:
    """Cumulative (good, bad) counters: one good request every ``every`` minutes, bad ones at ``bad_at``."""
    good = [m // every for m in range(minutes + 1)]
    bad = [sum(1 for e in bad_at if e <= m) for m in range(minutes + 1)]
    return compress(good), compress(bad)


def _fired(spec: SloSpec, job: str, windows: Sequence[ScaledWindow], severity: str, value: str,
           only_long: timedelta | None = None) -> tuple[Fired, ...]:
    return tuple(
        Fired({"job": job, "slo": spec.name, "severity": row.severity, "long_window": format_duration(row.long),
               "short_window": format_duration(row.short)}, value)
        for row in windows
        if row.severity == severity and (only_long is None or row.long == only_long)
    )


def cases(cfg: Config, specs: Sequence[SloSpec], windows: Sequence[ScaledWindow]) -> list[Case]:
    """Fast burn pages, slow burn opens a ticket, healthy traffic and a night-time trickle stay silent."""
    availability, latency = specs
    job = cfg.app_job
    app = {"job": job, "instance": cfg.prometheus.app_target, "method": "GET", "endpoint": "/api/authors"}
    requests = series_name(metrics.HTTP_REQUESTS)
    count = series_name(metrics.HTTP_REQUEST_DURATION, "_count")
    bucket = series_name(metrics.HTTP_REQUEST_DURATION, "_bucket")
    le = floatToGoString(cfg.slo.latency_p95_seconds)
    ok, err = {**app, "status_code": "200"}, {**app, "status_code": "500"}

    def http(good: str, bad: str) -> tuple[Series, ...]:
        return series(requests, ok, good), series(requests, err, bad)

    def timing(total: str, fast: str) -> tuple[Series, ...]:
        return series(count, app, total), series(bucket, {**app, "le": le}, fast)

    night_good, night_bad = trickle(181, 6, bad_at=(177,))
    page_windows = [w for w in windows if w.severity == "critical"]
    ticket = next(w for w in windows if w.severity == "warning")
    return [
        Case(availability.alert, "10% errors page on both page windows", http("0+900x100", "0+100x100"), "30m",
             _fired(availability, job, page_windows, "critical", "10%")),
        Case(availability.alert, "2% errors open a ticket and page nobody", http("0+980x200", "0+20x200"), "90m",
             _fired(availability, job, windows, "warning", "2%", only_long=ticket.long)),
        Case(availability.alert, "0.1% errors under heavy traffic stay within budget",
             http("0+999x300", "0+1x300"), "4h"),
        Case(availability.alert, "one error in a night-time trickle does not page (min-traffic guard)",
             http(night_good, night_bad), "3h1m"),
        Case(latency.alert, "90% slow requests page", timing("0+1000x100", "0+100x100"), "30m",
             _fired(latency, job, page_windows, "critical", "90%")),
        Case(latency.alert, "1% slow requests stay within budget", timing("0+1000x300", "0+990x300"), "4h"),
        Case(latency.alert, "a slow trickle does not page (min-traffic guard)",
             timing(trickle(181, 6)[0], "0x181"), "3h1m"),
    ]


def rule_file(cfg: Config) -> RuleFile:
    specs = slo_specs(cfg)
    windows = scale_windows(specs[0].period)
    groups = tuple(
        Group(f"slo-{spec.name}", (*recordings(spec, windows), *alerts(spec, windows, cfg.alerting.slo_min_requests)))
        for spec in specs
    )
    return RuleFile("slo", groups, tuple(cases(cfg, specs, windows)))
