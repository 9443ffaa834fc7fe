"""A metric history as a scraper would have stored it, written as OpenMetrics for ``promtool`` to backfill.

Every series is sampled on its job's scrape grid over a span that ends in the
past; counters are integrated from a rate, histograms from a rate and a
latency, gauges are a value. A job can be down over a window: its series have
no samples there and its ``up`` is 0, as after a failed scrape; single
scrapes can be missed too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.utils import floatToGoString

Labels = Mapping[str, str]
Rate = Callable[[float], float]
"""Events per second at a time given as seconds relative to the end (0 = the end, -60 = a minute before)."""
Value = Callable[[float], float]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    instance: str
    interval: int
    """Scrape interval in seconds."""
    down: tuple[tuple[float, float], ...] = ()
    """Windows (from, to) relative to the end, in seconds, where every scrape failed."""
    missed: tuple[float, ...] = ()
    """Single scrapes that failed (the scrape nearest each of these times)."""

    def scrapes(self, span: int) -> Iterator[tuple[float, bool]]:
        """(time relative to the end, scrape succeeded) on this job's grid, oldest first, ending at 0."""
        skipped = {round(t / self.interval) * self.interval for t in self.missed}
        for k in range(span // self.interval, -1, -1):
            t = float(-k * self.interval)
            failed = any(a <= t < b for a, b in self.down) or t in skipped
            yield t, not failed


@dataclass
class World:
    end: int
    """Unix seconds of the last scrape."""
    span: int
    series: dict[str, list[tuple[Labels, list[tuple[float, float]]]]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)

    def _add(self, family: str, kind: str, name: str, job: Job, labels: Labels,
             samples: list[tuple[float, float]]) -> None:
        self.kinds.setdefault(family, kind)
        full = {"job": job.name, "instance": job.instance, **labels}
        self.series.setdefault(name, []).append((full, samples))

    def up(self, job: Job) -> None:
        self._add("up", "gauge", "up", job, {}, [(t, 1.0 if ok else 0.0) for t, ok in job.scrapes(self.span)])

    def gauge(self, job: Job, name: str, labels: Labels, value: Value) -> None:
        samples = [(t, value(t)) for t, ok in job.scrapes(self.span) if ok]
        self._add(name, "gauge", name, job, labels, [(t, v) for t, v in samples if not math.isnan(v)])

    def counter(self, job: Job, name: str, labels: Labels, rate: Rate, *, start: float = 0.0) -> None:
        """``name`` without ``_total``; counted from ``start`` at the first scrape."""
        self._add(name, "counter", f"{name}_total", job, labels, _integrate(job, self.span, rate, start))

    def histogram(self, job: Job, name: str, labels: Labels, rate: Rate, latency: Value,
                  buckets: Sequence[float]) -> None:
        """Every event of a step takes ``latency(t)`` seconds: the buckets from it up count them."""
        counts = _integrate(job, self.span, rate, 0.0)
        sums = _integrate(job, self.span, lambda t: rate(t) * latency(t), 0.0)
        for le in (*buckets, math.inf):
            bucket = _integrate(job, self.span, lambda t, le=le: rate(t) if latency(t) <= le else 0.0, 0.0)
            bound = floatToGoString(le)  # as prometheus-client writes it: 1.0, not 1
            self._add(name, "histogram", f"{name}_bucket", job, {**labels, "le": bound}, bucket)
        self._add(name, "histogram", f"{name}_count", job, labels, counts)
        self._add(name, "histogram", f"{name}_sum", job, labels, sums)

    def summary(self, job: Job, name: str, labels: Labels, rate: Rate, latency: Value) -> None:
        self._add(name, "summary", f"{name}_count", job, labels, _integrate(job, self.span, rate, 0.0))
        self._add(name, "summary", f"{name}_sum", job, labels,
                  _integrate(job, self.span, lambda t: rate(t) * latency(t), 0.0))

    def openmetrics(self) -> str:
        """The whole history, one metric family after the other, each series' samples in time order."""
        out: list[str] = []
        by_family: dict[str, list[str]] = {}
        for name in self.series:
            family = next(f for f in self.kinds if name == f or name.startswith(f"{f}_") or name == f"{f}_total")
            by_family.setdefault(family, []).append(name)
        for family, names in by_family.items():
            out.append(f"# TYPE {family} {self.kinds[family]}")
            for name in names:
                for labels, samples in self.series[name]:
                    body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                    out += [f"{name}{{{body}}} {_go_float(v)} {self.end + t:.0f}" for t, v in samples]
        out.append("# EOF")
        return "\n".join(out) + "\n"


def _integrate(job: Job, span: int, rate: Rate, start: float) -> list[tuple[float, float]]:
    """A counter's samples: what it held at each successful scrape (events keep counting while it is down)."""
    total, out, previous = start, [], None
    for t, ok in job.scrapes(span):
        if previous is not None:
            total += rate(t) * (t - previous)
        previous = t
        if ok:
            out.append((t, round(total, 6)))
    return out


def _go_float(value: float) -> str:
    return floatToGoString(value)


def between(start_min: float, end_min: float) -> Callable[[float], bool]:
    """A window given in minutes before the end (``between(30, 20)``: from 30 to 20 minutes ago; ``between(15, 0)``:
    the last 15 minutes, the end included)."""
    if end_min == 0:
        return lambda t: -start_min * 60 <= t
    return lambda t: -start_min * 60 <= t < -end_min * 60
