"""The audit CLI (``fastapi-lookout-audit``): migrate, verify the hash chain, export rows, summarise, prune,
replay a spool.

    fastapi-lookout-audit migrate
    fastapi-lookout-audit verify [--anchor SEQ:HASH]
    fastapi-lookout-audit export --since 7d --format csv --output audit.csv
    fastapi-lookout-audit summary --since 2025-01-01 --until 2025-02-01
    fastapi-lookout-audit prune --days 365
    fastapi-lookout-audit replay --spool var/audit-spool-...jsonl.foreign-KEY [--dry-run] [--into-other-database]

The database is ``--database-url``, else ``DATABASE_URL`` (the service's own
setting; sync URLs such as ``postgresql://`` are mapped to the async
drivers); the chain key is ``AUDIT_HMAC_KEY`` and the retention
``AUDIT_RETENTION_DAYS``, as for the service. Everything
streams: rows are read a page at a time (keyset pagination, short read
transactions), so a million rows take a page of memory, not a million.
Results go to stdout, progress (every 10,000 rows) and errors to stderr.

Exit status: 0 clean, 1 the chain is broken (``verify``), 2 could not run
(bad arguments, database unreachable, not migrated: one line on stderr, and
no database file created but by ``migrate``; ``replay``: rows bound to
another database without ``--into-other-database``, or rows left in the file),
141 the reader of stdout went away (``export | head``), quietly.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TextIO

import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from fastapi_lookout.audit import migrations
from fastapi_lookout.audit.chain import Hasher
from fastapi_lookout.audit.migrations.runner import async_url
from fastapi_lookout.audit.schema import user_actions
from fastapi_lookout.audit.spool_replay import plan_replay, replay_spool
from fastapi_lookout.audit.verifier import ChainBroken, prune, verify_chain

__all__ = ["ExportFilters", "Settings", "export_rows", "main", "parse_time", "summarise"]

PROGRESS_EVERY: Final = 10_000
EXPORT_PAGE: Final = 2000
ANONYMOUS: Final = "(anonymous)"
EXPORT_COLUMNS: Final = tuple(str(c.name) for c in user_actions.columns)  # plain str: orjson keys
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

EXIT_OK, EXIT_BROKEN, EXIT_ERROR = 0, 1, 2
EXIT_PIPE = 141
"""stdout was closed by its reader: 128 + SIGPIPE, what a shell reports for ``yes | head -1``."""


# --- arguments ------------------------------------------------------------------------------
def parse_time(text: str, now: datetime | None = None) -> datetime:
    """ISO 8601 date or date-time (naive = UTC), or a relative age: ``30m``, ``12h``, ``7d``, ``2w``."""
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(text.strip())
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text.strip()), datetime.min.time())
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a time: {text!r} (ISO 8601, or 30m / 12h / 7d / 2w)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _anchor(text: str) -> tuple[int, str]:
    seq, _, row_hash = text.partition(":")
    if not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", row_hash):
        raise argparse.ArgumentTypeError("anchor is SEQ:ROW_HASH (64 hex digits), as `verify` prints it")
    return int(seq), row_hash


def _engine(database_url: str) -> AsyncEngine:
    url = async_url(database_url)
    args = {"timeout": 30} if url.drivername.startswith("sqlite") else {"timeout": 10}
    return create_async_engine(url, poolclass=NullPool, connect_args=args)


class _Progress:
    def __init__(self, what: str, stream: TextIO | None) -> None:
        self.what, self.stream, self.next = what, stream, PROGRESS_EVERY

    def __call__(self, rows: int, seq: int | None = None) -> None:
        if self.stream is None or rows < self.next:
            return
        where = "" if seq is None else f" (seq {seq})"
        print(f"{self.what}: {rows:,} rows{where}", file=self.stream, flush=True)
        self.next = (rows // PROGRESS_EVERY + 1) * PROGRESS_EVERY


# --- export ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ExportFilters:
    since: datetime | None = None
    until: datetime | None = None
    users: tuple[str, ...] = ()
    """Matched against username and user_id."""
    action_types: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        ua = user_actions.c
        out: list[sa.ColumnElement[bool]] = []
        if self.since is not None:
            out.append(ua.timestamp >= self.since)
        if self.until is not None:
            out.append(ua.timestamp < self.until)
        if self.users:
            out.append(sa.or_(ua.username.in_(self.users), ua.user_id.in_(self.users)))
        if self.action_types:
            out.append(ua.action_type.in_(self.action_types))
        if self.outcomes:
            out.append(ua.outcome.in_(self.outcomes))
        return out


def _iso(ts: datetime) -> str:
    return (ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)).isoformat()


def _guard(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe (CSV only)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


async def export_rows(
    engine: AsyncEngine,
    out: TextIO,
    *,
    fmt: str = "csv",
    filters: ExportFilters = ExportFilters(),
    page_size: int = EXPORT_PAGE,
    csv_guard: bool = True,
    progress: Any = None,
) -> int:
    """Write the matching rows in id order, a page at a time; returns how many."""
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}")
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(EXPORT_COLUMNS)
    clauses = filters.clauses()
    count, after = 0, None
    async with engine.connect() as conn:
        while True:
            query = sa.select(user_actions).where(*clauses).order_by(user_actions.c.id).limit(page_size)
            if after is not None:
                query = query.where(user_actions.c.id > after)
            rows = (await conn.execute(query)).all()
            await conn.rollback()
            if not rows:
                return count
            for row in rows:
                record = row._mapping
                if writer is not None:
                    values = []
                    for name in EXPORT_COLUMNS:
                        value = record[name]
                        if name == "timestamp":
                            value = _iso(value)
                        elif name == "request_data" and value is not None:
                            value = orjson.dumps(value).decode()
                        values.append(_guard(value) if csv_guard else value)
                    writer.writerow(values)
                else:
                    item = {name: record[name] for name in EXPORT_COLUMNS}
                    item["timestamp"] = _iso(item["timestamp"])
                    out.write(orjson.dumps(item).decode())
                    out.write("\n")
            count += len(rows)
            after = rows[-1].id
            if progress is not None:
                progress(count)


# --- summary ---------------------------------------------------------------------------------
async def summarise(engine: AsyncEngine, filters: ExportFilters, top: int = 20) -> dict[str, Any]:
    ua = user_actions.c
    user = sa.func.coalesce(ua.username, ANONYMOUS)
    clauses = filters.clauses()
    async with engine.connect() as conn:
        outcomes = (await conn.execute(sa.select(ua.outcome, sa.func.count()).where(*clauses)
                                       .group_by(ua.outcome).order_by(ua.outcome))).all()
        query = (sa.select(user.label("username"), sa.func.count().label("n")).where(*clauses)
                 .group_by(user).order_by(sa.desc("n"), user))
        users = (await conn.execute(query.limit(top) if top > 0 else query)).all()
        user_count = (await conn.execute(sa.select(sa.func.count(sa.distinct(user))).where(*clauses))).scalar()
    by_outcome = {name: int(n) for name, n in outcomes}
    return {
        "since": None if filters.since is None else _iso(filters.since),
        "until": None if filters.until is None else _iso(filters.until),
        "total": sum(by_outcome.values()),
        "by_outcome": by_outcome,
        "users": int(user_count or 0),
        "by_user": {name: int(n) for name, n in users},
    }


def _summary_text(summary: dict[str, Any]) -> str:
    period = f"{summary['since'] or 'the beginning'} .. {summary['until'] or 'now'}"
    lines = [f"period: {period}", f"total: {summary['total']}", "by outcome:"]
    lines += [f"  {name:<20} {n:>10}" for name, n in summary["by_outcome"].items()]
    shown = len(summary["by_user"])
    lines.append(f"by user ({shown} of {summary['users']}):")
    lines += [f"  {name:<40} {n:>10}" for name, n in summary["by_user"].items()]
    return "\n".join(lines)


# --- commands -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Settings:
    """What the commands read from the environment: the same variables the service reads."""

    database_url: str | None
    hmac_key: str | None
    retention_days: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        days = env.get("AUDIT_RETENTION_DAYS", "0").strip() or "0"
        if not days.isdigit():
            raise ValueError(f"AUDIT_RETENTION_DAYS must be a whole number of days, got {days!r}")
        return cls(env.get("DATABASE_URL") or None, env.get("AUDIT_HMAC_KEY") or None, int(days))

    def audit_key(self) -> str | None:
        return self.hmac_key


async def _migrate(args: argparse.Namespace, settings: Settings, engine: AsyncEngine) -> int:
    before = await migrations.AUDIT.current_async(args.database_url)
    await migrations.upgrade_async(args.database_url)
    head = migrations.AUDIT.head()
    print(f"audit schema at {head}" + ("" if before == head else f" (was {before or 'empty'})"))
    return EXIT_OK


async def _verify(args: argparse.Namespace, settings: Settings, engine: AsyncEngine) -> int:
    progress = _Progress("verify", None if args.quiet else sys.stderr)
    result = await verify_chain(engine, Hasher(settings.audit_key()), page_size=args.page_size,
                                progress=progress, anchor=args.anchor)
    print(result.summary())
    return EXIT_OK if result.ok else EXIT_BROKEN


def _filters(args: argparse.Namespace) -> ExportFilters:
    return ExportFilters(args.since, args.until, tuple(args.user), tuple(args.action_type), tuple(args.outcome))


async def _export(args: argparse.Namespace, settings: Settings, engine: AsyncEngine) -> int:
    progress = _Progress("export", None if args.quiet else sys.stderr)
    if args.output is None:
        count = await export_rows(engine, sys.stdout, fmt=args.format, filters=_filters(args),
                                  page_size=args.page_size, csv_guard=not args.raw_csv, progress=progress)
    else:
        with Path(args.output).open("w", newline="", encoding="utf-8") as out:
            count = await export_rows(engine, out, fmt=args.format, filters=_filters(args),
                                      page_size=args.page_size, csv_guard=not args.raw_csv, progress=progress)
    if not args.quiet:
        print(f"export: {count:,} rows", file=sys.stderr)
    return EXIT_OK


async def _summary(args: argparse.Namespace, settings: Settings, engine: AsyncEngine) -> int:
    summary = await summarise(engine, _filters(args), top=args.top)
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() if args.format == "json"
          else _summary_text(summary))
    return EXIT_OK


async def _prune(args: argparse.Namespace, settings: Settings, engine: AsyncEngine) -> int:
    days = settings.retention_days if args.days is None else args.days
    if days <= 0:
        print("error: retention is off (AUDIT_RETENTION_DAYS=0); pass --days N", file=sys.stderr)
        return EXIT_ERROR
    try:
        result = await prune(engine, Hasher(settings.audit_key()), before=datetime.now(UTC) - timedelta(days=days),
                             chunk=args.chunk)
    except ChainBroken as exc:
        print(f"BROKEN: {exc.finding}: nothing pruned", file=sys.stderr)
        return EXIT_BROKEN
    print(f"pruned {result.pruned} rows older than {days} days; {result.checkpoints} checkpoints"
          + (f", the last at seq {result.last_seq}" if result.last_seq is not None else ""))
    return EXIT_OK


async def _replay(args: argparse.Namespace, settings: Settings, engine: AsyncEngine) -> int:
    path = Path(args.spool)
    try:
        plan = await plan_replay(engine, path)
    except FileNotFoundError:
        print(f"error: no spool file {path}", file=sys.stderr)
        return EXIT_ERROR
    print("\n".join(plan.describe()))
    if plan.foreign_rows and not args.into_other_database:
        print(f"error: {plan.foreign_rows} rows were spooled for another database (or none): replay them here "
              "only if that is where they belong, with --into-other-database", file=sys.stderr)
        return EXIT_ERROR
    if args.dry_run:
        return EXIT_OK
    left = await replay_spool(engine, path, hmac_key=settings.audit_key(), batch_size=args.batch_size,
                              timeout=args.timeout)
    if left:
        print(f"error: {left} rows could not be written by the timeout and are still in {path}", file=sys.stderr)
        return EXIT_ERROR
    print(f"replayed {plan.spool.total} rows and removed {path}; check the chain with `verify`")
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="fastapi-lookout-audit",
                                  description="Migrate, verify, export, summarise and prune the audit trail.")
    top.add_argument("--database-url", help="SQLAlchemy URL (default: DATABASE_URL, as the service)")
    sub = top.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="create or upgrade the audit tables (their own Alembic version table)")

    verify = sub.add_parser("verify", help="walk the hash chain; exit 1 naming the first broken row")
    verify.add_argument("--anchor", type=_anchor, help="SEQ:ROW_HASH printed by an earlier verify, kept elsewhere: "
                        "detects a truncated or rewritten tail")
    verify.add_argument("--page-size", type=int, default=5000)
    verify.add_argument("--quiet", action="store_true", help="no progress on stderr")

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--since", type=parse_time, help="from this time (ISO 8601, or 30m/12h/7d/2w ago)")
        p.add_argument("--until", type=parse_time, help="before this time")
        p.add_argument("--user", action="append", default=[], help="username or user_id (repeatable)")
        p.add_argument("--action-type", action="append", default=[], help="repeatable")
        p.add_argument("--outcome", action="append", default=[],
                       choices=("success", "error", "permission_denied"), help="repeatable")

    export = sub.add_parser("export", help="stream rows as CSV or JSON Lines")
    filters(export)
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--output", help="file (default: stdout)")
    export.add_argument("--page-size", type=int, default=EXPORT_PAGE)
    export.add_argument("--raw-csv", action="store_true",
                        help="do not prefix cells starting with = + - @ with an apostrophe (spreadsheet formulas)")
    export.add_argument("--quiet", action="store_true", help="no progress on stderr")

    summary = sub.add_parser("summary", help="counts by outcome and by user for a period")
    filters(summary)
    summary.add_argument("--top", type=int, default=20, help="users listed (0: all)")
    summary.add_argument("--format", choices=("text", "json"), default="text")

    prune_cmd = sub.add_parser("prune", help="delete rows past retention, leaving a signed checkpoint")
    prune_cmd.add_argument("--days", type=int, help="default: AUDIT_RETENTION_DAYS")
    prune_cmd.add_argument("--chunk", type=int, default=10_000, help="rows per transaction and checkpoint")

    replay = sub.add_parser("replay", help="commit a spool file's rows into this database (a reviewer's decision)")
    replay.add_argument("--spool", required=True, help="the spool file, e.g. a set-aside <spool>.foreign-<key>")
    replay.add_argument("--dry-run", action="store_true", help="only show what the file holds and for which database")
    replay.add_argument("--into-other-database", action="store_true",
                        help="also replay rows spooled for another database, or for none")
    replay.add_argument("--batch-size", type=int, default=500)
    replay.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to keep retrying the database; rows not written by then stay in the file")
    return top


_COMMANDS = {"migrate": _migrate, "verify": _verify, "export": _export, "summary": _summary, "prune": _prune,
             "replay": _replay}


async def run(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ if env is None else env)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    args.database_url = args.database_url or settings.database_url
    if not args.database_url:
        print("error: no database: pass --database-url or set DATABASE_URL", file=sys.stderr)
        return EXIT_ERROR
    creates = args.command == "migrate"
    missing = None if creates else _missing_sqlite_file(args.database_url)
    if missing is not None:  # connecting would create it: an empty file left behind
        print(f"error: no database at {missing}: create it with `fastapi-lookout-audit migrate`", file=sys.stderr)
        return EXIT_ERROR
    engine = _engine(args.database_url)
    try:
        if not creates and not await _has_audit_tables(engine):
            print("error: the audit tables are not in this database: run `fastapi-lookout-audit migrate` first",
                  file=sys.stderr)
            return EXIT_ERROR
        return await _COMMANDS[args.command](args, settings, engine)
    except BrokenPipeError:
        return EXIT_PIPE  # the reader went away (`| head`): nothing to report
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        await engine.dispose()


def _missing_sqlite_file(database_url: str) -> str | None:
    """The path of a SQLite database file that does not exist (None: it exists, or not SQLite)."""
    url = async_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return None if Path(url.database).exists() else url.database


async def _has_audit_tables(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: sa.inspect(sync).has_table(user_actions.name))


def main(argv: Sequence[str] | None = None) -> int:
    """The script's entry: log lines (e.g. pruning progress) go to stderr, results alone to stdout.

    A closed stdout (``export | head -1``) ends the command quietly with 141, the status a
    shell reports for a tool that SIGPIPE stopped: no traceback, no error line.
    """
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    code = asyncio.run(run(argv))
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = EXIT_PIPE
    if code == EXIT_PIPE:  # Python would report the pipe again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code
