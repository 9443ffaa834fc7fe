#!/usr/bin/env python3
"""Generate, validate and write dashboards and provisioning (``--check`` for CI); logic in ``dashboards.build``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.build import main

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    sys.exit(main(default_out=ROOT))
