"""A dashboard as rows of observables placed by name, rendered with ids that never depend on position.

A panel's id is derived from the dashboard and the observable's name, a
row's from its title: adding a panel changes the lines of that panel and the
coordinates below it, never the ids of the others. Cells whose observable
belongs to a switched-off feature are dropped, and a row left empty with them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import attr
from grafanalib import core

from ..config import Config, DsType
from ..observables import Observables
from ..observables.model import Link
from . import house
from .variables import Variable

ID_SPACE = 1_000_000


def stable_id(uid: str, key: str) -> int:
    """A panel id from the dashboard uid and the observable's name (or ``row:<title>``)."""
    return int(hashlib.sha256(f"{uid}/{key}".encode()).hexdigest(), 16) % (ID_SPACE - 1) + 1


@dataclass(frozen=True, slots=True)
class Cell:
    """One observable on the grid; the size defaults to its style's."""

    name: str
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class Row:
    title: str
    cells: tuple[Cell, ...]


def cells(*placements: str | tuple[str, int] | tuple[str, int, int]) -> tuple[Cell, ...]:
    """``"http.request_rate"``, ``("http.request_rate", 6)`` or ``("logs.http", 24, 12)``."""
    return tuple(Cell(p) if isinstance(p, str) else Cell(*p) for p in placements)


@dataclass(frozen=True)
class Layout:
    uid: str
    title: str
    description: str | Callable[[Config], str]
    """Text, or text that depends on the config (on what the service has)."""
    rows: tuple[Row, ...]
    variables: Callable[[Config, set[DsType]], list[Variable]]
    """Given the datasource types the rendered panels use (for their datasource variables)."""
    tags: tuple[str, ...] = ()
    time_from: str = "now-1h"
    refresh: str = "30s"
    links: tuple[Link, ...] = ()
    feature: str | None = None
    """A dashboard that exists only with this feature (keycloak-metrics, audit-logs)."""
    scrape_interval: Callable[[Config], str] | None = None
    """The scrape interval of the job its Prometheus panels read; set as their min interval when it is not the
    datasource's, so Grafana's ``$__rate_interval`` spans enough samples of that job."""
    placed: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "placed", tuple(c.name for r in self.rows for c in r.cells))

    def describe(self, cfg: Config) -> str:
        return self.description(cfg) if callable(self.description) else self.description


class LayoutError(ValueError):
    """A placement the build cannot render; the message names dashboard and observable."""


def _grid(uid: str, rows: Sequence[tuple[str, list[house.HousePanel]]]) -> list[core.Panel]:
    out: list[core.Panel] = []
    y = 0
    for title, panels in rows:
        out.append(house.HouseRow(title=title, id=stable_id(uid, f"row:{title}"),
                                  gridPos=core.GridPos(h=1, w=house.GRID_COLUMNS, x=0, y=y)))
        y += 1
        x = line_height = 0
        for panel in panels:
            if not 0 < panel.width <= house.GRID_COLUMNS:
                raise LayoutError(f"{uid}: panel {panel.title!r}: width {panel.width} outside 1..{house.GRID_COLUMNS}")
            if x + panel.width > house.GRID_COLUMNS:
                y += line_height
                x = line_height = 0
            out.append(attr.evolve(panel, gridPos=core.GridPos(h=panel.height, w=panel.width, x=x, y=y)))
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    ids = [p.id for p in out]
    if len(set(ids)) != len(ids):
        raise LayoutError(f"{uid}: two panels share an id; rename one of them")
    return out


def render(layout: Layout, observables: Observables, cfg: Config, present: set[str]) -> core.Dashboard:
    """``present``: uids of the dashboards this build renders; links to the others are left out."""
    rows: list[tuple[str, list[house.HousePanel]]] = []
    kinds: set[DsType] = set()
    for row in layout.rows:
        panels = []
        for cell in row.cells:
            if cell.name not in observables.defined:
                raise LayoutError(f"{layout.uid}: row {row.title!r} places {cell.name!r}, which no observable defines")
            obs = observables.enabled.get(cell.name)
            if obs is None:
                continue
            kinds.add(obs.datasource)
            panel = house.panel(obs, cell.width, cell.height)
            interval = layout.scrape_interval(cfg) if layout.scrape_interval else ""
            if obs.datasource is DsType.PROMETHEUS and interval and interval != cfg.prometheus.scrape_interval:
                panel = attr.evolve(panel, min_interval=interval)
            panels.append(attr.evolve(panel, id=stable_id(layout.uid, cell.name)))
        if panels:
            rows.append((row.title, panels))
    return core.Dashboard(
        uid=layout.uid,
        title=layout.title,
        description=layout.describe(cfg),
        panels=_grid(layout.uid, rows),
        templating=core.Templating(list=list(layout.variables(cfg, kinds))),
        time=core.Time(layout.time_from, "now"),
        schemaVersion=house.SCHEMA_VERSION,
        refresh=layout.refresh,
        tags=sorted(layout.tags),
        timezone="utc",
        graphTooltip=1,
        editable=False,
        links=[{"asDropdown": False, "includeVars": False, "keepTime": True, "tags": [], "targetBlank": False,
                "title": lk.title, "type": "link", "url": lk.url} for lk in layout.links
               if lk.url.removeprefix("/d/").split("?")[0] in present],
    )
