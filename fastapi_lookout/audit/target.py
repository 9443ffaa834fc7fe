"""Which database a spooled row was meant for: the spool replays a row only into that database.

Rows spooled at shutdown carry no chain position; whichever database a later start
points at would chain and sign them as its own. So every spool segment names its
target, and a writer replays only the segments whose target is the database it
is connected to (``spool.py``). A target is:

- its *identity*, read from the database once the writer reaches it:
  PostgreSQL's ``system_identifier`` (one per cluster, kept by physical
  replicas) and the database's name; SQLite's file path, device and inode; and
  on both the ``chain_id`` that migration ``audit_0003`` draws at random for
  each audit chain, so a database dropped and created again under the same
  name (or a file deleted and re-created, which may get the same inode) is
  another target;
- else, when the writer never reached its database (down for the writer's whole
  life), its *location* only: dialect, host, port and database name, or the SQLite
  file's absolute path, never credentials. Such rows replay into whatever
  database answers at that location: they were never bound to a chain.

The target ``key`` (a short hash) names set-aside spool files and compares targets.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Final

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fastapi_lookout.audit.db_errors import ChainHeadMissing
from fastapi_lookout.audit.schema import audit_chain_head

__all__ = ["UNBOUND", "Target", "location_of", "read_target"]

UNBOUND: Final = "unbound"
"""Key of rows spooled before spools named their target: never replayed automatically."""

_DEFAULT_PORTS: Final = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


def location_of(url: str | URL) -> str:
    """Where ``url`` points, without credentials or driver: ``postgresql://host:5432/db``, ``sqlite:///abs/path``."""
    parsed = make_url(url) if isinstance(url, str) else url
    backend = parsed.get_backend_name()
    database = parsed.database or ""
    if backend == "sqlite":
        in_memory = database in ("", ":memory:") or database.startswith("file:")
        return f"sqlite:///{database if in_memory else os.path.realpath(database)}"
    port = parsed.port or _DEFAULT_PORTS.get(backend, "")
    return f"{backend}://{parsed.host or ''}:{port}/{database}"


@dataclass(frozen=True, slots=True)
class Target:
    location: str
    identity: dict[str, str] | None = None
    """None: the writer never reached the database, so the location alone binds the rows."""

    @property
    def key(self) -> str:
        """Equal for two targets exactly when rows spooled for one replay into the other."""
        basis = self.identity if self.identity is not None else {"location": self.location}
        return hashlib.sha256(orjson.dumps(basis, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]

    def located(self) -> Target:
        """The same location with no identity: what a writer that never reached it binds its rows to."""
        return Target(self.location)

    def describe(self) -> str:
        identity = self.identity
        if identity is None:
            return f"{self.location} (never reached: bound to that location only)"
        chain = identity.get("chain_id", "")[:12]
        if "inode" in identity:
            return f"SQLite file {identity['path']} (inode {identity['inode']}, chain {chain})"
        if "system_identifier" in identity:
            return (f"PostgreSQL database {identity['database']!r} (system {identity['system_identifier']}, "
                    f"chain {chain}) at {self.location}")
        return f"{self.location} (chain {chain})"

    def as_json(self) -> dict[str, Any]:
        return {"location": self.location, "identity": self.identity}

    @classmethod
    def from_json(cls, data: Any) -> Target:
        """Inverse of ``as_json``; ValueError for anything else."""
        if not isinstance(data, dict) or not isinstance(data.get("location"), str):
            raise ValueError("not a spool target")
        identity = data.get("identity")
        if identity is not None and not (
            isinstance(identity, dict) and all(isinstance(v, str) for v in identity.values())
        ):
            raise ValueError("not a spool target identity")
        return cls(data["location"], identity)


async def read_target(engine: AsyncEngine) -> Target:
    """The target ``engine`` writes into; raises what the database raises (the caller retries)."""
    location = location_of(engine.url)
    async with engine.connect() as conn:
        chain_id = (await conn.execute(
            sa.select(audit_chain_head.c.chain_id).where(audit_chain_head.c.id == 1))).scalar_one_or_none()
        if chain_id is None:
            raise ChainHeadMissing("audit_chain_head has no row (or no chain_id): run the migrations")
        identity = await _identity(conn, location)
    return Target(location, {**identity, "chain_id": str(chain_id)})


async def _identity(conn: AsyncConnection, location: str) -> dict[str, str]:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        database, readable = (await conn.execute(sa.text(
            "SELECT current_database(), has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')"
        ))).one()
        system = "not readable by this role"  # a role may be denied it; the name and chain still tell apart
        if readable:
            system = (await conn.execute(sa.text(
                "SELECT system_identifier::text FROM pg_catalog.pg_control_system()"))).scalar_one()
        return {"system_identifier": str(system), "database": str(database)}
    if dialect == "sqlite":
        files = {row[1]: row[2] for row in (await conn.execute(sa.text("PRAGMA database_list"))).all()}
        path = files.get("main") or ""
        if not path:  # in memory: nothing on disk to compare; the chain id alone (new for every database)
            return {"path": ":memory:", "device": "", "inode": ""}
        stat = os.stat(path)
        return {"path": os.path.realpath(path), "device": str(stat.st_dev), "inode": str(stat.st_ino)}
    return {"location": location}
