#!/usr/bin/env python3
"""Push the generated dashboards into a running Grafana (``--dry-run`` first); logic in ``dashboards.publish``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.publish import main

if __name__ == "__main__":
    sys.exit(main())
