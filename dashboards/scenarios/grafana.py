"""What a Grafana panel shows, computed the way Grafana computes it, against a Prometheus holding a history.

For a dashboard opened on its default time range ending at ``end``:

- ``$__interval``: the range divided by the panel's max data points (its width in pixels on a 1920-pixel-wide
  screen, Grafana's default when a panel sets none), rounded with Grafana's ``roundInterval`` ladder, never below
  the panel's min interval (``interval``) or else the datasource's scrape interval (``timeInterval``);
- ``$__rate_interval`` = max(``$__interval`` + scrape interval, 4 x scrape interval), the scrape interval being
  the panel's min interval if it has one, else the datasource's;
- ``$__range`` = the dashboard range; dashboard variables as Grafana interpolates them with All selected
  (``dashboards.validate.live``);
- instant targets run once at the end, range targets over the range at ``$__interval`` steps; then the panel's
  reducer (stat panels), thresholds and value mappings give what it reads and in which colour.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..validate.live import DirectRunner as _Direct
from ..validate.live import Variables, Window, resolve

SCREEN_PX: Final = 1920
GRID_COLUMNS: Final = 24
SEVERITY: Final = {"green": 0, "blue": 0, "yellow": 1, "orange": 2, "red": 3, "purple": 3}

_LADDER: Final = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000), (3500, 2000),
    (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000), (90000, 60000),
    (210000, 120000), (450000, 300000), (750000, 600000), (1050000, 900000), (1500000, 1200000),
    (2700000, 1800000), (5400000, 3600000), (9000000, 7200000), (16200000, 10800000), (32400000, 21600000),
    (86400000, 43200000), (604800000, 86400000), (1814400000, 604800000), (3628800000, 2592000000),
)
"""Grafana's ``roundInterval`` (@grafana/data rangeutil): below the bound (ms), the interval (ms)."""


def round_interval(ms: float) -> int:
    for bound, interval in _LADDER:
        if ms < bound:
            return interval
    return 31536000000


def seconds(text: str) -> int:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    found = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", text.strip())
    if not found:
        raise ValueError(f"not a Grafana duration: {text!r}")
    return int(int(found.group(1)) * units[found.group(2)])


@dataclass(frozen=True, slots=True)
class Intervals:
    range_s: int
    interval_s: int
    rate_interval_s: int
    scrape_s: int


def intervals(panel: Mapping[str, Any], range_s: int, datasource_interval: str) -> Intervals:
    scrape = seconds(panel.get("interval") or datasource_interval)
    points = panel.get("maxDataPoints") or panel["gridPos"]["w"] * SCREEN_PX // GRID_COLUMNS
    interval = max(round_interval(range_s * 1000 / points) / 1000, scrape)
    interval_s = max(1, int(interval))
    return Intervals(range_s, interval_s, max(interval_s + scrape, 4 * scrape), scrape)


@dataclass
class Reading:
    """What one panel shows: per series its values (stat: the reduced one), and the colour Grafana paints."""

    kind: str
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    colour: str = ""
    text: str = ""
    error: str = ""
    empty_targets: list[str] = field(default_factory=list)
    """refIds of targets that returned nothing (a line of the panel that never draws)."""
    step: int = 15
    """The panel's query step (``$__interval``), in seconds."""

    @property
    def has_data(self) -> bool:
        return bool(self.values)

    @property
    def peak(self) -> float:
        return max(self.values.values()) if self.values else math.nan

    @property
    def last(self) -> float:
        lasts = [pts[-1][1] for pts in self.series.values() if pts]
        return max(lasts) if lasts else (self.peak if self.values else math.nan)

    @property
    def lowest_last(self) -> float:
        lasts = [pts[-1][1] for pts in self.series.values() if pts]
        return min(lasts) if lasts else math.nan

    def floor(self, since_s: float, end: float, step: float) -> float:
        """The lowest value the panel draws at any step since ``since_s`` before the end (its highest line at
        each step; a step with no point at all counts as nothing drawn, NaN)."""
        lowest = math.inf
        for w in _frange(end - since_s, end, step):
            here = [v for pts in self.series.values() for t, v in pts if abs(t - w) < step / 2]
            if not here:
                return math.nan
            lowest = min(lowest, max(here))
        return lowest

    def gapless(self, since_s: float, end: float, step: float) -> bool:
        """Every step from ``since_s`` before the end to the end has a point in some series."""
        times = {round(t) for pts in self.series.values() for t, _ in pts}
        first = end - since_s
        wanted = [round(t) for t in _frange(first, end, step)]
        return bool(wanted) and all(any(abs(t - w) < step / 2 for t in times) for w in wanted)

    def describe(self, unit_digits: int = 3) -> str:
        if self.error:
            return f"error: {self.error[:60]}"
        if not self.values:
            return "no data"
        if self.text:
            return f"{self.text} ({self.colour})"
        value = self.peak if self.kind != "stat" else max(self.values.values())
        shown = f"{value:.{unit_digits}g}"
        if self.kind != "stat":
            shown = f"max {shown}, last {self.last:.{unit_digits}g}"
        return f"{shown} ({self.colour})" if self.colour else shown


def _frange(a: float, b: float, step: float) -> list[float]:
    out, t = [], a
    while t <= b + 1e-9:
        out.append(t)
        t += step
    return out


def colour_of(value: float, thresholds: Mapping[str, Any]) -> str:
    colour = ""
    for step in thresholds.get("steps", []):
        if step.get("value") is None or value >= step["value"]:
            colour = step["color"]
    return colour


def mapped_text(value: float, mappings: list[Mapping[str, Any]]) -> tuple[str, str] | None:
    for mapping in mappings:
        option = mapping.get("options", {}).get(str(int(value)) if value == int(value) else str(value))
        if mapping.get("type") == "value" and option:
            return option.get("text", ""), option.get("color", "")
    return None


REDUCERS: Final = {
    "lastNotNull": lambda v: v[-1], "last": lambda v: v[-1], "mean": lambda v: sum(v) / len(v),
    "max": max, "min": min, "sum": sum, "firstNotNull": lambda v: v[0],
}


class Prometheus:
    """The HTTP API, with explicit times (a history ends in the past)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=60) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise RuntimeError(body.get("error", "query failed"))
        return body["data"]

    def instant(self, expr: str, at: float) -> list[tuple[str, list[tuple[float, float]]]]:
        data = self._get("/api/v1/query", {"query": expr, "time": at})
        if data["resultType"] == "scalar":
            return [("", [(float(data["result"][0]), float(data["result"][1]))])]
        return [(_key(r["metric"]), [(float(r["value"][0]), float(r["value"][1]))]) for r in data["result"]]

    def series(self, expr: str, start: float, end: float, step: int) -> list[tuple[str, list[tuple[float, float]]]]:
        data = self._get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})
        return [(_key(r["metric"]), [(float(t), float(v)) for t, v in r["values"]]) for r in data["result"]]


def _key(metric: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(metric.items())) or "value"


def builtins(text: str, iv: Intervals) -> str:
    for name, value in (("__rate_interval", f"{iv.rate_interval_s}s"), ("__interval_ms", str(iv.interval_s * 1000)),
                        ("__interval", f"{iv.interval_s}s"), ("__range_s", str(iv.range_s)),
                        ("__range", f"{iv.range_s}s")):
        text = text.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return text


def read_panel(panel: Mapping[str, Any], prom: Prometheus, variables: Variables, end: float, range_s: int,
               datasource_interval: str) -> Reading:
    iv = intervals(panel, range_s, datasource_interval)
    kind = panel["type"]
    reading = Reading(kind, step=iv.interval_s)
    for target in panel.get("targets", []):
        expr = builtins(variables.format(target["expr"], "prometheus"), iv)
        try:
            if target.get("instant"):
                result = prom.instant(expr, end)
            else:
                result = prom.series(expr, end - range_s, end, iv.interval_s)
        except (RuntimeError, OSError) as exc:
            reading.error = str(exc)
            continue
        drawn = False
        for key, points in result:
            points = [(t, v) for t, v in points if not math.isnan(v)]
            if points:
                reading.series[f"{target['refId']}:{key}"] = points
                drawn = True
        if not drawn:
            reading.empty_targets.append(target["refId"])
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    calcs = (panel.get("options", {}).get("reduceOptions") or {}).get("calcs") or ["lastNotNull"]
    reduce = REDUCERS.get(calcs[0], REDUCERS["lastNotNull"]) if kind == "stat" else max
    worst = ""
    for key, points in reading.series.items():
        value = reduce([v for _, v in points])
        reading.values[key] = value
        colour = colour_of(value, defaults.get("thresholds", {}))
        mapped = mapped_text(value, defaults.get("mappings", []))
        if mapped:
            reading.text, colour = mapped[0], mapped[1] or colour
        if SEVERITY.get(colour, 0) >= SEVERITY.get(worst, -1):
            worst = colour
    reading.colour = worst
    return reading


def read_dashboard(dashboard: Mapping[str, Any], prometheus_url: str, end: float, datasource_interval: str,
                   only: frozenset[str] = frozenset({"prometheus"})) -> dict[str, Reading]:
    """Panel title -> what it reads; only panels whose datasource type is in ``only``."""
    range_s = seconds(dashboard["time"]["from"].removeprefix("now-"))
    window = Window.from_range(end - range_s, end)
    variables = resolve(dashboard, _Direct(prometheus=prometheus_url), window)
    prom = Prometheus(prometheus_url)
    out = {}
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row" or (panel.get("datasource") or {}).get("type") not in only:
            continue
        out[panel["title"]] = read_panel(panel, prom, variables, end, range_s, datasource_interval)
    return out
