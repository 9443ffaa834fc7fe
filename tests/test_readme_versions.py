"""README "Versions" tells the truth about the pins: a row per upstream image, on the line that is pinned."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from dashboards.config import Images

ROOT = Path(__file__).resolve().parents[1]
ROWS = {  # Images field -> the README row's first cell
    "grafana": "Grafana", "loki": "Loki", "alloy": "Alloy", "prometheus": "Prometheus",
    "alertmanager": "Alertmanager", "keycloak": "Keycloak", "postgres": "PostgreSQL",
}


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Versions\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, 'README has no "## Versions" section'
    return match.group(1)


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in _section().splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]
            rows[cells[0]] = cells
    return rows


def _line(tag: str) -> str:
    return ".".join(tag.split("@")[0].rpartition(":")[2].removeprefix("v").split(".")[:2])


def test_every_upstream_image_has_a_row_on_the_pinned_line():
    assert set(ROWS) == {f.name for f in dataclasses.fields(Images)} - {"app"}
    rows = _rows()
    for field, name in ROWS.items():
        assert name in rows, f"no README Versions row for {name}"
        pinned = re.search(r"`([^`]+)`", rows[name][1])
        assert pinned, rows[name]
        image = getattr(Images(), field)
        assert pinned.group(1).split(":")[0] == image.split(":")[0], (name, pinned.group(1), image)
        assert _line(pinned.group(1)) == _line(image), f"README says {pinned.group(1)}, Images pins {image}"
        assert re.search(r"\d{4}-\d{2}-\d{2}", rows[name][2]), f"{name}: no release date"


def test_the_npm_grammar_row_names_the_pinned_version():
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["@grafana/lezer-logql"]
    row = next(cells for name, cells in _rows().items() if "lezer-logql" in name)
    assert f"`{pinned}`" in row[1]
