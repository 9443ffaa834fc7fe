"""Capacity figures measured by the tests, collected into one report: ``build/reports/capacity.{json,md}``.

Each measuring test records a section (``record("scale_out", {...})``); the JSON keeps every section of
the last run of each, the markdown renders them as tables. ``CAPACITY_REPORT_DIR`` moves the report (CI
keeps it as an artifact); the README's sizing section quotes a run of it.
"""

from __future__ import annotations

import json
import os
import platform
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_LOCK = threading.Lock()


def report_dir() -> Path:
    return Path(os.environ.get("CAPACITY_REPORT_DIR") or ROOT / "build" / "reports")


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1), "machine": platform.machine(),
            "python": platform.python_version()}


def record(section: str, figures: dict[str, Any]) -> Path:
    """Merge ``figures`` into the report under ``section`` (stamped with the time and machine); returns the JSON."""
    directory = report_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "capacity.json"
    with _LOCK:
        data = json.loads(path.read_text()) if path.exists() else {}
        data[section] = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                         **figures}
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        (directory / "capacity.md").write_text(markdown(data))
    return path


def markdown(data: dict[str, Any]) -> str:
    lines = ["# Capacity figures (measured by the test suite)", ""]
    for section, figures in sorted(data.items()):
        lines += [f"## {section}", "", "| figure | value |", "| --- | --- |"]
        for key, value in sorted(figures.items()):
            shown = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
            lines.append(f"| {key} | {shown} |")
        lines.append("")
    return "\n".join(lines)
