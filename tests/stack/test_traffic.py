"""The traffic generator against the real app process and a tiny stand-in for Keycloak's token endpoint."""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import orjson
import pytest

from app.trafficgen import DEFAULT_CLIENT_ID, DEMO_USERS, Options, TrafficGenerator, parse_args
from tests.support.app_process import AppProcess

TOKEN_PATH = "/realms/demo/protocol/openid-connect/token"


class FakeKeycloak:
    """POST <realm>/protocol/openid-connect/token, password grant: the app's dev issuer mints the tokens."""

    def __init__(self, app: AppProcess, status: int = 200) -> None:
        self.app, self.status = app, status
        self.grants: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                owner.grants.append(form)
                user = next((u for u in DEMO_USERS if u.username == form.get("username")), None)
                if self.path != TOKEN_PATH or form.get("client_id") != DEFAULT_CLIENT_ID:
                    self._reply(400, {"error": "invalid_client"})
                elif owner.status != 200:
                    self._reply(owner.status, {"error": "unavailable"})
                elif form.get("grant_type") != "password" or user is None or form.get("password") != user.password:
                    self._reply(401, {"error": "invalid_grant", "error_description": "Invalid user credentials"})
                else:
                    token = owner.app.token(user.username, user.roles)
                    self._reply(200, {"access_token": token, "expires_in": 300, "token_type": "Bearer"})

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.token_url = f"http://127.0.0.1:{self.server.server_address[1]}{TOKEN_PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeKeycloak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def app() -> Iterator[AppProcess]:
    with AppProcess() as process:
        yield process


def test_one_round_produces_every_status_class(app, tmp_path):
    heartbeat = tmp_path / "heartbeat"
    out = io.StringIO()
    with FakeKeycloak(app) as kc:
        options = Options(app_url=app.base_url, token_url=kc.token_url, rounds=1, interval=0, burst_every=1,
                          failed_login_every=1, heartbeat_file=str(heartbeat))
        tally = TrafficGenerator(options, out=out).run()
    assert tally.errors == []
    assert {200, 201, 204, 401, 403, 404, 409, 413, 422, 429} <= set(tally.http), tally.http
    expected = {"list": 200, "create": 201, "get": 200, "duplicate": 409, "delete": 204, "deleted": 404,
                "invalid_body": 422, "too_large": 413, "no_token": 401, "garbage_token": 401, "no_role": 403,
                "reader_creates": 403, "health": 200}
    assert {label: next(iter(tally.by_label[label])) for label in expected} == expected
    assert tally.by_label["burst"][429] == 1 and tally.by_label["burst"][200] >= 1
    assert tally.ws == Counter({200: 1, 201: 1, 422: 1, 404: 1, 403: 1, 4401: 1})
    assert tally.logins == Counter({"ok": 3, "failed": 2})
    logins = [(g["grant_type"], g["client_id"], g["username"]) for g in kc.grants]
    assert logins[:3] == [("password", DEFAULT_CLIENT_ID, u.username) for u in DEMO_USERS]
    assert kc.grants[3]["username"] == "mallory" and kc.grants[3]["password"] != DEMO_USERS[2].password
    assert heartbeat.exists()
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["traffic round", "traffic done"]
    assert lines[-1]["http"]["429"] == 1
    # and the app itself counted and logged it, which is what the panels read
    statuses = {line.get("status_code") for line in app.json_lines() if line.get("logger") == "app.access"}
    assert {401, 403, 404, 409, 413, 422, 429} <= statuses
    metrics = httpx.get(f"{app.base_url}/metrics").text
    assert 'rate_limit_hits_total{limit_type="user"}' in metrics
    assert 'ws_connections_total{status="rejected_auth"}' in metrics


def test_an_unreachable_keycloak_is_counted_and_the_loop_goes_on(app):
    with FakeKeycloak(app, status=503) as kc:
        options = Options(app_url=app.base_url, token_url=kc.token_url, rounds=2, interval=0)
        tally = TrafficGenerator(options, out=io.StringIO()).run()
    assert tally.rounds == 2
    assert len(tally.errors) == 2 and "HTTP 503" in tally.errors[0]
    assert tally.logins == Counter({"error": 2})


def _token_only_client(calls: list[str], expires_in: int = 300) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN_PATH:
            form = parse_qs(request.content.decode())
            calls.append(form["username"][0])
            return httpx.Response(200, json={"access_token": "t", "expires_in": expires_in})
        return httpx.Response(200, json={})

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_tokens_are_reused_until_shortly_before_they_expire():
    calls: list[str] = []
    now = [0.0]
    options = Options(app_url="http://app", token_url=f"http://kc{TOKEN_PATH}", rounds=3, interval=0,
                      relogin_every=0, websocket=False, burst_every=0, failed_login_every=0)
    gen = TrafficGenerator(options, client=_token_only_client(calls, expires_in=60), clock=lambda: now[0],
                           out=io.StringIO())
    gen.round(0)
    gen.round(1)
    assert calls == ["alice", "bob", "mallory"]
    now[0] = 31.0  # 60 s tokens are refreshed 30 s early
    gen.round(2)
    assert calls == ["alice", "bob", "mallory"] * 2


def test_duration_bounds_the_loop_and_an_unbounded_loop_is_refused():
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    options = Options(app_url="http://app", token_url=f"http://kc{TOKEN_PATH}", rounds=0, duration=12, interval=5,
                      websocket=False)
    tally = TrafficGenerator(options, client=_token_only_client([]), sleep=sleep, clock=lambda: now[0],
                             out=io.StringIO()).run()
    assert tally.rounds == 3
    with pytest.raises(ValueError, match="bounded"):
        TrafficGenerator(Options(rounds=0, duration=0), client=_token_only_client([])).run()


def test_command_line_builds_the_token_url_and_reads_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("TRAFFIC_APP_URL", "http://fastapi-app:8000")
    monkeypatch.setenv("TRAFFIC_KEYCLOAK_URL", "http://keycloak:8080")
    options = parse_args(["--duration", "60", "--rounds", "0"])
    assert options.app_url == "http://fastapi-app:8000"
    assert options.token_url == f"http://keycloak:8080{TOKEN_PATH}"
    assert options.client_id == DEFAULT_CLIENT_ID
    with pytest.raises(SystemExit):
        parse_args(["--rounds", "0"])
    assert "must be bounded" in capsys.readouterr().err


def test_thin_cli_script_runs_main(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "scripts" / "traffic.py"
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "--burst-every" in result.stdout
