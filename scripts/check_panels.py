#!/usr/bin/env python3
"""Run every panel query against live datasources (``dashboards.validate.live``), or, with ``--scenarios``,
replay the named incident histories into a real Prometheus and print what every panel and alert shows
(``dashboards.scenarios``; ``--write docs/scenarios.md`` rewrites the committed table)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if __name__ == "__main__":
    if "--scenarios" in sys.argv[1:]:
        from dashboards.scenarios.cli import main as scenarios

        sys.exit(scenarios([a for a in sys.argv[1:] if a != "--scenarios"], root=Path(__file__).resolve().parents[1]))
    from dashboards.validate.live_cli import main

    sys.exit(main())
