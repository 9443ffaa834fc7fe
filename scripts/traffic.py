#!/usr/bin/env python3
"""Demo traffic against the app and Keycloak (``--rounds``/``--duration`` bound it); logic in ``app.trafficgen``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.trafficgen import main

if __name__ == "__main__":
    sys.exit(main())
