"""``scripts/check_panels.py``: run every panel query against live datasources and print the ones to look at."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from ..config import DsType
from . import sql
from .live import ERROR, NO_DATA, OK, DirectRunner, GrafanaRunner, Result, Runner, Window, check_files

__all__ = ["main", "table"]


def table(results: Sequence[Result]) -> str:
    """A plain-text table of the panels that need attention."""
    rows = [("DASHBOARD", "PANEL", "STATUS", "DETAIL")] + [
        (r.dashboard, r.panel, r.status, r.detail.replace("\n", " ")[:120]) for r in results if r.status != OK
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])), row[3]]).rstrip() for row in rows
    )


def _duration(text: str) -> timedelta:
    seconds = sql.parse_interval(text)
    return timedelta(seconds=seconds)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    root = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description="Run every panel query against live datasources.")
    parser.add_argument("--prometheus", help="Prometheus base URL (direct mode)")
    parser.add_argument("--loki", help="Loki base URL (direct mode)")
    parser.add_argument("--postgres", help="libpq DSN of the audit database (direct mode)")
    parser.add_argument("--grafana", help="Grafana base URL: queries go through /api/ds/query")
    parser.add_argument("--token", help="Grafana service-account token (with --grafana)")
    parser.add_argument("--since", default="1h", help="time range ending now (default 1h)")
    parser.add_argument("--rate-interval", default="1m", help="value of $__rate_interval in direct mode")
    parser.add_argument("--step", type=int, default=60, help="query resolution in seconds (default 60)")
    parser.add_argument("--dashboards", type=Path, nargs="*",
                        default=sorted((root / "grafana" / "dashboards").glob("*.json")),
                        help="dashboard JSON files (default: grafana/dashboards/*.json)")
    args = parser.parse_args(argv)
    runner: Runner
    if args.grafana:
        if not args.token:
            parser.error("--grafana needs --token")
        runner = GrafanaRunner(args.grafana, args.token)
    elif args.prometheus or args.loki or args.postgres:
        runner = DirectRunner(args.prometheus, args.loki, args.postgres)
    else:
        parser.error("give --grafana URL --token T, or any of --prometheus/--loki/--postgres")
    paths = list(args.dashboards)
    only = None
    if not args.grafana:
        # direct mode queries only the datasources it was given
        given = {DsType.PROMETHEUS: args.prometheus, DsType.LOKI: args.loki, DsType.POSTGRES: args.postgres}
        only = frozenset(str(k) for k, v in given.items() if v)
    window = Window.last(_duration(args.since), step_seconds=args.step, rate_interval=args.rate_interval)
    results = check_files(paths, runner, window, only)
    bad = [r for r in results if r.status != OK]
    print(f"{len(results)} queries in {len(paths)} dashboard(s): {len(results) - len(bad)} ok, "
          f"{sum(r.status == NO_DATA for r in bad)} no data, {sum(r.status == ERROR for r in bad)} errors")
    if bad:
        print(table(bad))
    return 1 if bad else 0

