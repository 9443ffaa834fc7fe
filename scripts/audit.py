#!/usr/bin/env python3
"""The reviewer's audit CLI (``verify``, ``export``, ``summary``, ``prune``); logic in ``fastapi_lookout.audit.cli``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi_lookout.audit.cli import main

if __name__ == "__main__":
    sys.exit(main())
