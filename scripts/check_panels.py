#!/usr/bin/env python3
"""Run every panel query of the generated dashboards against live datasources; logic in ``dashboards.validate.live``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.validate.live import main

if __name__ == "__main__":
    sys.exit(main())
