"""Alembic environment of the audit trail's history (see ``runner.run_env``)."""

from fastapi_lookout.audit.migrations import AUDIT
from fastapi_lookout.audit.migrations.runner import run_env

run_env(AUDIT)
