"""The audit tables moved to the library's own history: nothing to do here.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

Databases migrated before the move stand at this revision in
``alembic_version`` with the audit tables already built; the library's
history adopts those tables (see ``fastapi_lookout.audit.migrations``).
"""

from __future__ import annotations

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
