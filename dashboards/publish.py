"""``fastapi-lookout-publish``: push the generated dashboards into a running Grafana through its HTTP API.

    GRAFANA_TOKEN=<service account token> fastapi-lookout-publish --grafana-url https://grafana.example \\
        [--dashboards grafana/dashboards] [--folder-uid observability] [--dry-run]

The folder is found by uid and created when missing. Each dashboard is
compared with what Grafana holds (ignoring Grafana's own ``id`` and
``version``): unchanged ones are left alone, new ones created, changed ones
saved with the version read a moment before and ``overwrite: false``, so an
edit someone made in between is refused (412) instead of lost. Dashboards of
the folder that this build does not generate are never touched.
``--dry-run`` prints what would change and changes nothing. The token comes
from the environment only (never a flag in a shell history); any failure
exits non-zero naming the dashboard and Grafana's own message.
Talks to Grafana through the maintained ``grafana-client`` library.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from .config import ConfigError, load_config

__all__ = ["Change", "main", "plan", "publish"]

TOKEN_ENV: Final = "GRAFANA_TOKEN"
URL_ENV: Final = "GRAFANA_URL"
MESSAGE: Final = "Published by fastapi-lookout-publish"
VOLATILE: Final = ("id", "version")
"""Keys Grafana sets itself: never a reason to save again."""


class GrafanaApi(Protocol):
    """The part of ``grafana_client.GrafanaApi`` used here (a test can hand in another)."""

    folder: Any
    dashboard: Any


class PublishError(Exception):
    """Grafana refused something; the message names the dashboard (or folder) and Grafana's answer."""

    def __init__(self, what: str, exc: Exception) -> None:
        self.status = _status(exc)
        super().__init__(f"{what}: Grafana answered {self.status or type(exc).__name__}: {_message(exc)}")


@dataclass(frozen=True, slots=True)
class Change:
    uid: str
    action: str
    """create | update | unchanged"""
    detail: str = ""
    version: int | None = None


def folder_uid(title: str) -> str:
    """A stable uid from the folder's title (``Observability bundle`` -> ``observability-bundle``)."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "dashboards"


def _status(exc: Exception) -> int | None:
    return getattr(exc, "status_code", None)


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping) and response.get("message"):
        return str(response["message"])
    return str(getattr(exc, "message", "") or exc)


def _comparable(dashboard: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dashboard.items() if k not in VOLATILE}


def _differences(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    a, b = _comparable(current), _comparable(wanted)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def plan(api: GrafanaApi, dashboards: Sequence[Mapping[str, Any]], folder: str) -> list[Change]:
    """What publishing would do, dashboard by dashboard (reads only)."""
    changes = []
    for dashboard in dashboards:
        uid = dashboard["uid"]
        try:
            found = api.dashboard.get_dashboard(uid)
        except Exception as exc:
            if _status(exc) != 404:
                raise PublishError(f"dashboard {uid}", exc) from exc
            changes.append(Change(uid, "create"))
            continue
        current, meta = found.get("dashboard", {}), found.get("meta", {})
        differs = _differences(current, dashboard)
        if meta.get("folderUid", "") != folder:
            differs.append("folder")
        version = current.get("version")
        changes.append(Change(uid, "update", ", ".join(differs), version) if differs else Change(uid, "unchanged"))
    return changes


def ensure_folder(api: GrafanaApi, uid: str, title: str, *, dry_run: bool) -> str:
    try:
        api.folder.get_folder(uid)
        return f"folder {uid}: exists"
    except Exception as exc:
        if _status(exc) != 404:
            raise PublishError(f"folder {uid}", exc) from exc
    if not dry_run:
        try:
            api.folder.create_folder(title, uid=uid)
        except Exception as exc:
            raise PublishError(f"folder {uid}", exc) from exc
    return f"folder {uid}: {'would create' if dry_run else 'created'} ({title})"


def publish(api: GrafanaApi, dashboards: Sequence[Mapping[str, Any]], folder: str, title: str, *,
            dry_run: bool = False, out: Any = None) -> list[Change]:
    out = out or sys.stdout
    print(ensure_folder(api, folder, title, dry_run=dry_run), file=out)
    by_uid = {d["uid"]: d for d in dashboards}
    changes = plan(api, dashboards, folder)
    for change in changes:
        verb = {"create": "would create", "update": "would update"}.get(change.action, change.action) \
            if dry_run else change.action
        print(f"{verb} {change.uid}" + (f" ({change.detail})" if change.detail else ""), file=out)
        if dry_run or change.action == "unchanged":
            continue
        body = {k: v for k, v in by_uid[change.uid].items() if k != "id"}
        if change.version is not None:
            body["version"] = change.version
        try:
            api.dashboard.update_dashboard({"dashboard": body, "folderUid": folder, "overwrite": False,
                                            "message": MESSAGE})
        except Exception as exc:
            raise PublishError(f"dashboard {change.uid}", exc) from exc
    return changes


def _client(url: str, token: str) -> GrafanaApi:
    from grafana_client import GrafanaApi as Client

    return Client.from_url(url, credential=token, timeout=10.0)  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None, *, client: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="fastapi-lookout-publish", description=__doc__.split("\n\n")[0])
    parser.add_argument("--grafana-url", default=os.environ.get(URL_ENV), help=f"default: ${URL_ENV}")
    parser.add_argument("--dashboards", type=Path, default=Path("grafana/dashboards"),
                        help="directory of generated dashboard JSON (default: %(default)s)")
    parser.add_argument("--config", type=Path, help="the generator's config (the folder's title)")
    parser.add_argument("--folder-uid", help="default: from the config's dashboard_folder")
    parser.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV, "")
    try:
        title = load_config(args.config).dashboard_folder
    except ConfigError as exc:
        print(f"error: {exc.problems[0]}", file=sys.stderr)
        return 2
    if not args.grafana_url or not token:
        print(f"error: set {TOKEN_ENV} (a service account token) and --grafana-url or {URL_ENV}", file=sys.stderr)
        return 2
    files = sorted(args.dashboards.glob("*.json")) if args.dashboards.is_dir() else []
    if not files:
        print(f"error: no dashboard JSON in {args.dashboards}: run the generator first", file=sys.stderr)
        return 2
    dashboards = [json.loads(f.read_text()) for f in files]
    api = client or _client(args.grafana_url, token)
    try:
        changes = publish(api, dashboards, args.folder_uid or folder_uid(title), title, dry_run=args.dry_run)
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the connection itself: refused, timed out, not Grafana
        print(f"error: cannot talk to Grafana at {args.grafana_url}: {type(exc).__name__}: {_message(exc)}",
              file=sys.stderr)
        return 1
    counts = {a: sum(c.action == a for c in changes) for a in ("create", "update", "unchanged")}
    print(("dry run: " if args.dry_run else "") + ", ".join(f"{n} {a}" for a, n in counts.items()))
    return 0
