"""A stand-in for Grafana's HTTP API (no Grafana binary runs here): the documented endpoints the publisher
uses, and their documented errors.

- ``GET /api/folders/:uid``: 200 with the folder, 404 ``{"message": "folder not found"}``;
- ``POST /api/folders``: 200 with the created folder; 409 when the uid exists;
- ``GET /api/dashboards/uid/:uid``: 200 ``{"dashboard": ..., "meta": {"folderUid", "version"}}``, 404
  ``{"message": "Dashboard not found"}``;
- ``POST /api/dashboards/db``: 200 ``{"status": "success", "uid", "version"}``; 400 ``{"message":
  "folder not found"}`` for an unknown ``folderUid``; 412 ``{"status": "version-mismatch"}`` when
  ``overwrite`` is false and the version sent is not the stored one;
- every call without ``Authorization: Bearer <token>``, or with another token: 401
  ``{"message": "invalid API key"}``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.binaries import free_port


class FakeGrafana:
    def __init__(self, token: str = "sa-token") -> None:
        self.token = token
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {"dashboard", "folderUid"}
        self.saves: list[dict[str, Any]] = []
        self.port = free_port()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._send(401, {"message": "invalid API key"})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                if self.path.startswith("/api/folders/"):
                    uid = self.path.rsplit("/", 1)[1]
                    if uid in fake.folders:
                        self._send(200, fake.folders[uid])
                    else:
                        self._send(404, {"message": "folder not found"})
                elif self.path.startswith("/api/dashboards/uid/"):
                    uid = self.path.rsplit("/", 1)[1]
                    stored = fake.dashboards.get(uid)
                    if stored is None:
                        self._send(404, {"message": "Dashboard not found"})
                    else:
                        self._send(200, {"dashboard": stored["dashboard"], "meta": {
                            "folderUid": stored["folderUid"], "version": stored["dashboard"]["version"]}})
                else:
                    self._send(404, {"message": "Not found"})

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path == "/api/folders":
                    uid = body.get("uid")
                    if uid in fake.folders:
                        self._send(409, {"message": "a folder with the same uid already exists"})
                        return
                    fake.folders[uid] = {"uid": uid, "title": body.get("title"), "id": len(fake.folders) + 1}
                    self._send(200, fake.folders[uid])
                elif self.path == "/api/dashboards/db":
                    self._save(body)
                else:
                    self._send(404, {"message": "Not found"})

            def _save(self, body: dict[str, Any]) -> None:
                dashboard, folder = dict(body["dashboard"]), body.get("folderUid", "")
                if folder and folder not in fake.folders:
                    self._send(400, {"message": "folder not found"})
                    return
                stored = fake.dashboards.get(dashboard["uid"])
                if (stored is not None and not body.get("overwrite")
                        and dashboard.get("version") != stored["dashboard"]["version"]):
                    self._send(412, {"status": "version-mismatch",
                                     "message": "The dashboard has been changed by someone else"})
                    return
                version = (stored["dashboard"]["version"] + 1) if stored else 1
                dashboard |= {"version": version, "id": stored["dashboard"]["id"] if stored else len(fake.saves) + 1}
                fake.dashboards[dashboard["uid"]] = {"dashboard": dashboard, "folderUid": folder}
                fake.saves.append(body)
                self._send(200, {"status": "success", "uid": dashboard["uid"], "version": version})

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def edit(self, uid: str) -> None:
        """Someone changes the dashboard in the UI: its version moves on."""
        stored = self.dashboards[uid]["dashboard"]
        stored["version"] += 1
        stored["title"] = stored["title"] + " (edited)"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
