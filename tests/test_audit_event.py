"""``AuditEvent``: keyword-only, and the tuple seam the writer process uses keeps every value in its field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fastapi_lookout.audit.event import FIELD_NAMES, AuditEvent, event_from_values, event_values

REPO = Path(__file__).resolve().parent.parent


def test_fields_cannot_be_passed_by_position() -> None:
    with pytest.raises(TypeError):
        AuditEvent(1.0, "list", "GET /x", "success", 200, 1.0)  # type: ignore[misc]


def test_every_value_survives_the_tuple_seam_in_its_own_field() -> None:
    """Distinct values per field: any two fields swapped by the seam would show here."""
    event = AuditEvent(**{name: f"value-of-{name}" for name in FIELD_NAMES})
    values = event_values(event)
    assert values == tuple(f"value-of-{name}" for name in FIELD_NAMES)
    assert event_from_values(values) == event


def test_a_tuple_of_another_length_is_refused_not_shifted() -> None:
    with pytest.raises(ValueError, match="14 fields, got 13"):
        event_from_values(tuple(range(13)))


def test_the_request_path_imports_no_database_package() -> None:
    """``instrument(app)`` and ``AuditEvent`` must work on the base install, without the audit extra."""
    code = (
        "import sys, fastapi; import fastapi_lookout; "
        "from fastapi_lookout.audit import AuditEvent, outcome_for_status; "
        "fastapi_lookout.instrument(fastapi.FastAPI(), configure_logs=False); "
        "heavy = sorted(m for m in ('sqlalchemy', 'alembic', 'asyncpg', 'aiosqlite', 'jwt', 'grafanalib', "
        "'logging_loki', 'yaml', 'httpx') if m in sys.modules); print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
