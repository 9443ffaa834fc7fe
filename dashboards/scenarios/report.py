"""Every scenario replayed and checked against what it says each panel and alert must show; the truth table.

``check`` compares one replay with its scenario's expectations (plus what holds everywhere: in the healthy
history every Prometheus panel draws every line and nothing is orange or red). ``markdown`` renders what each
panel read in each scenario and which alerts fired when: ``docs/scenarios.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..grafana import uids
from .grafana import SEVERITY, Reading
from .incidents import SCENARIOS, Expect
from .run import Outcome

ALARM = ("orange", "red")
TOLERANCE = 0.02


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=1e-9)


def _expectation(reading: Reading, expect: Expect, end: float, step: float) -> list[str]:
    out = []
    if not reading.has_data:
        return ["no data"]
    if expect.colour is not None and reading.colour != expect.colour:
        out.append(f"colour {reading.colour or 'none'}, expected {expect.colour}")
    if expect.value is not None and not _close(reading.peak, expect.value):
        out.append(f"reads {reading.peak:g}, expected {expect.value:g}")
    if expect.at_least is not None and not reading.peak >= expect.at_least:
        out.append(f"reads {reading.peak:g}, expected at least {expect.at_least:g}")
    if expect.last is not None and not _close(reading.last, expect.last):
        out.append(f"last value {reading.last:g}, expected {expect.last:g}")
    if expect.lowest_last is not None and not _close(reading.lowest_last, expect.lowest_last):
        out.append(f"lowest last value {reading.lowest_last:g}, expected {expect.lowest_last:g}")
    if expect.text is not None and reading.text != expect.text:
        out.append(f"shows {reading.text!r}, expected {expect.text!r}")
    if expect.gapless_since is not None and not reading.gapless(expect.gapless_since * 60, end, step):
        out.append(f"has holes in the last {expect.gapless_since:g} minutes")
    if expect.floor_since is not None:
        minutes, floor = expect.floor_since
        lowest = reading.floor(minutes * 60, end, step)
        if not lowest >= floor:
            out.append(f"drops to {lowest:g} in the last {minutes:g} minutes, expected never below {floor:g}")
    return out


def check(outcome: Outcome) -> list[str]:
    """Everything the replay shows that its scenario says it must not."""
    scenario, problems = outcome.scenario, []
    if scenario.name == "healthy":
        for (uid, title), reading in outcome.panels.items():
            if uid not in uids.ALL:
                continue
            if reading.error or not reading.has_data or reading.empty_targets:
                problems.append(f"{uid} / {title}: {reading.error or 'no data'} "
                                f"{reading.empty_targets or ''}".rstrip())
            elif reading.colour in ALARM:
                problems.append(f"{uid} / {title}: {reading.describe()} while everything is fine")
    for (uid, title), expect in scenario.panels.items():
        reading = outcome.panels.get((uid, title))
        if reading is None:
            problems.append(f"{uid} / {title}: no such panel")
            continue
        problems += [f"{uid} / {title}: {p}" for p in _expectation(reading, expect, outcome.end, reading.step)]
    for minutes, expected in scenario.alerts.items():
        fired = outcome.alerts.get(minutes, frozenset())
        if fired != expected:
            when = "now" if not minutes else f"{minutes:g} minutes ago"
            problems.append(f"alerts {when}: {sorted(fired)}, expected {sorted(expected)}")
    return [f"{scenario.name}: {p}" for p in problems]


def unexercised(alert_names: Iterable[str]) -> list[str]:
    """Alerts no scenario expects to fire: each alert must fire somewhere."""
    fired = {a for s in SCENARIOS for names in s.alerts.values() for a in names}
    return sorted(set(alert_names) - fired)


def markdown(outcomes: Sequence[Outcome], header: str) -> str:
    names = [o.scenario.name for o in outcomes]
    panels = sorted({key for o in outcomes for key in o.panels if key[0] in uids.ALL})
    lines = [f"<!-- {header} -->", "", "# What every panel shows, scenario by scenario", "",
             "Each scenario is a history of hours (the reference service, Keycloak), backfilled into a real "
             "Prometheus and read the way Grafana reads each panel on its dashboard's default time range "
             "(`dashboards/scenarios/`). The expectations are in `dashboards/scenarios/incidents.py`; "
             "`make scenarios` (or `python scripts/check_panels.py --scenarios`) replays them and rewrites this page.",
             "", "## Scenarios", ""]
    lines += [f"- **{o.scenario.name}**: {o.scenario.story}" for o in outcomes]
    lines += ["", "## Panels", "", "| panel | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for uid, title in panels:
        cells = []
        for o in outcomes:
            reading = o.panels.get((uid, title))
            text = reading.describe() if reading else ""
            if reading is not None and SEVERITY.get(reading.colour, 0) >= SEVERITY["orange"]:
                text = f"**{text}**"
            cells.append(text.replace("|", "/"))
        lines.append(f"| {uid} / {title} | " + " | ".join(cells) + " |")
    alerts = sorted({a for o in outcomes for fired in o.alerts.values() for a in fired})
    lines += ["", "## Alerts firing", "", "| alert | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for alert in alerts:
        cells = []
        for o in outcomes:
            when = [("now" if not m else f"{m:g} min ago") for m, fired in sorted(o.alerts.items()) if alert in fired]
            cells.append(", ".join(when))
        lines.append(f"| {alert} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
