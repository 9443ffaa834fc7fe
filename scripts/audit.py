#!/usr/bin/env python3
"""The audit CLI for the reference service: ``fastapi-lookout-audit`` with the service's database by default.

Logic in ``fastapi_lookout.audit.cli``; this script only supplies the
reference service's default ``DATABASE_URL`` (its SQLite file) when the
environment has none.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.settings import Settings
from fastapi_lookout.audit.cli import main

if __name__ == "__main__":
    os.environ.setdefault("DATABASE_URL", Settings().database_url)
    sys.exit(main())
