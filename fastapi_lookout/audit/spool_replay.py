"""Moving a spool file into a database on purpose: the reviewer's side of a spool's binding.

A writer replays only rows bound to its own database (``spool.py``); rows
spooled for another one are set aside beside the spool and wait for someone
who knows where they belong. ``fastapi-lookout-audit replay`` shows what a file
holds and for which database (``plan_replay``), then ``replay_spool`` commits
its rows through the writer's own path (normalised, chained and signed by
this database, bad rows isolated) and deletes the file once every row is in.
Rows bound to another database than the one named, or to none (spooled
before spools named their database), are replayed only when the reviewer says
so (``into_other_database``). What the database would not take within
``timeout`` stays in the file, as it would at a writer's shutdown; the batch
in flight at that moment goes back bound to the database named, as the
reviewer decided. If the command itself dies, its claim
(``<file>.replay-<random>``) stays beside the file, is reported by the
service's next start, and is replayed by naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from fastapi_lookout.audit.spool import Segments, survey
from fastapi_lookout.audit.target import Target, read_target
from fastapi_lookout.audit.writer import AuditWriter

__all__ = ["ReplayPlan", "plan_replay", "replay_spool"]


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    spool: Segments
    into: Target

    @property
    def foreign_rows(self) -> int:
        """Rows bound to another database than ``into``, or to none."""
        own = {self.into.key, self.into.located().key}
        return sum(rows for target, rows in self.spool.rows if target is None or target.key not in own)

    def describe(self) -> list[str]:
        own = {self.into.key, self.into.located().key}
        lines = [f"spool {self.spool.path}: {self.spool.total} rows"]
        for target, rows in self.spool.rows:
            bound = "nothing (spooled before spools named their database)" if target is None else target.describe()
            same = target is not None and target.key in own
            lines.append(f"  {rows} rows spooled for {bound}: " + ("this database" if same else "ANOTHER database"))
        lines.append(f"into {self.into.describe()}")
        return lines


async def plan_replay(engine: AsyncEngine, path: Path) -> ReplayPlan:
    """What ``path`` holds and the database ``engine`` is; raises FileNotFoundError, or what the database raises."""
    spool = survey(path)
    return ReplayPlan(spool, await read_target(engine))


async def replay_spool(
    engine: AsyncEngine, path: Path, *, hmac_key: str | None, batch_size: int = 500, timeout: float = 300.0
) -> int:
    """Commit every row of ``path`` into ``engine``'s database; returns the rows left in the file (0: all in)."""
    writer = AuditWriter(
        engine, queue_max_size=1, batch_size=batch_size, batch_timeout_seconds=0.05, retry_max_seconds=5.0,
        shutdown_timeout_seconds=timeout, spool_path=path, hmac_key=hmac_key, replay_foreign=True,
    )
    await writer.start()
    await writer.stop()  # the replay runs to its end first; past ``timeout`` the rest goes back into the file
    return survey(path).total if path.exists() else 0
