"""Alembic environment of the service's own history (see ``fastapi_lookout.audit.migrations.runner``)."""

from app.migrations import SERVICE
from fastapi_lookout.audit.migrations.runner import run_env

run_env(SERVICE)
