"""A minimal Alertmanager webhook receiver for the demo stack: every notification
becomes one JSON log line per alert (logger ``app.alerts``), so alerts reach Loki
through the same Alloy pipeline as everything else. In production, point the
generated Alertmanager receivers at a pager or ticket system instead.

    python -m app.alert_sink --port 8080
"""

from __future__ import annotations

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import structlog

from fastapi_lookout.logging import configure_logging

MAX_BODY = 1 << 20
_log = structlog.get_logger("app.alerts")


def log_notification(receiver: str, payload: dict[str, Any]) -> int:
    """One line per alert in the notification; returns how many were logged."""
    alerts = payload.get("alerts") or []
    for alert in alerts:
        labels = alert.get("labels") or {}
        _log.warning(
            "alert notification",
            status=str(alert.get("status", payload.get("status", "unknown"))),
            reason=str(labels.get("alertname", "unknown")),
            detail=f"{receiver}: {(alert.get('annotations') or {}).get('summary', '')}"[:500],
        )
    return len(alerts)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            self.send_error(413 if length else 400)
            return
        try:
            payload = orjson.loads(self.rfile.read(length))
        except orjson.JSONDecodeError:
            self.send_error(400, "body is not JSON")
            return
        log_notification(self.path.strip("/") or "default", payload if isinstance(payload, dict) else {})
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Alertmanager webhook receiver that logs alerts as JSON")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    configure_logging(service="alert-webhook")
    ThreadingHTTPServer((args.host, args.port), _Handler).serve_forever()


if __name__ == "__main__":
    main()
