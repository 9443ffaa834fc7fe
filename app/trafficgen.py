"""Demo traffic that fills every panel: Keycloak password logins, then each outcome the API has.

One round, as the demo users of the ``demo`` realm (``keycloak/realm-demo.json`` is
generated from ``DEMO_USERS``):

- successes (200, 201, 204) by alice and bob; 404 (a deleted author), 409 (a
  duplicate name), 422 (an invalid body), 413 (a body over the limit);
- 401 (no token, a garbage token) and 403 (mallory has no role; bob may not create);
- WebSocket packages (200, 201, 403, 404, 422) and a connection refused for a bad token;
- every ``burst_every`` rounds a burst by bob until the per-user limit answers 429;
- every ``failed_login_every`` rounds a wrong password and an unknown user at the
  token endpoint, which Keycloak records as ``login`` events with an error.

The loop is bounded by ``rounds`` and/or ``duration``; the default pace stays below
the app's default rate limits, so apart from the burst the traffic is served.
``python -m app.trafficgen`` and ``scripts/traffic.py`` are the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import orjson

REALM_ROLES: Final = ("get-authors", "create-author", "delete-author")
DEFAULT_REALM: Final = "demo"
DEFAULT_CLIENT_ID: Final = "authors-app"


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    password: str
    roles: tuple[str, ...]
    first_name: str
    last_name: str

    @property
    def email(self) -> str:
        return f"{self.username}@demo.invalid"


DEMO_USERS: Final = (
    DemoUser("alice", "alice-demo-password-not-secret", REALM_ROLES, "Alice", "Admin"),
    DemoUser("bob", "bob-demo-password-not-secret", ("get-authors",), "Bob", "Reader"),
    DemoUser("mallory", "mallory-demo-password-not-secret", (), "Mallory", "Noroles"),
)
"""The demo realm's users: demo-only passwords, published in this repository on purpose."""


@dataclass
class Options:
    app_url: str = "http://127.0.0.1:8000"
    token_url: str = f"http://127.0.0.1:8080/realms/{DEFAULT_REALM}/protocol/openid-connect/token"
    client_id: str = DEFAULT_CLIENT_ID
    rounds: int = 1
    """0: no limit by count (then ``duration`` bounds the loop)."""
    duration: float = 0.0
    """Seconds; 0: no limit by time."""
    interval: float = 5.0
    burst_every: int = 10
    failed_login_every: int = 10
    relogin_every: int = 3
    """Fresh password logins every this many rounds, so Keycloak's login rate is not all failures."""
    large_body_bytes: int = 256 * 1024
    websocket: bool = True
    burst_max: int = 60
    heartbeat_file: str | None = None
    timeout: float = 10.0


@dataclass
class Tally:
    http: Counter[int] = field(default_factory=Counter)
    """HTTP status -> count (0: the request did not get an answer)."""
    by_label: dict[str, Counter[int]] = field(default_factory=dict)
    ws: Counter[int] = field(default_factory=Counter)
    """status_code of WebSocket replies; 4401 counts refused connections."""
    logins: Counter[str] = field(default_factory=Counter)
    """``ok``, ``failed`` (refused by the token endpoint, as intended) and ``error`` (unexpected)."""
    errors: list[str] = field(default_factory=list)
    rounds: int = 0

    def record(self, label: str, status: int) -> None:
        self.http[status] += 1
        self.by_label.setdefault(label, Counter())[status] += 1

    def summary(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "http": {str(k): v for k, v in sorted(self.http.items())},
            "ws": {str(k): v for k, v in sorted(self.ws.items())},
            "logins": dict(sorted(self.logins.items())),
            "errors": len(self.errors),
        }


class LoginFailed(Exception):
    pass


class Tokens:
    """Password-grant logins at the token endpoint, cached per user until shortly before expiry."""

    def __init__(self, client: httpx.Client, token_url: str, client_id: str, tally: Tally,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client, self._url, self._client_id, self._tally, self._clock = client, token_url, client_id, tally, clock
        self._cache: dict[str, tuple[str, float]] = {}

    def grant(self, username: str, password: str) -> httpx.Response:
        return self._client.post(self._url, data={
            "grant_type": "password", "client_id": self._client_id, "username": username, "password": password,
            "scope": "openid",
        })

    def login(self, user: DemoUser) -> str:
        response = self.grant(user.username, user.password)
        if response.status_code != 200:
            self._tally.logins["error"] += 1
            raise LoginFailed(f"login of {user.username} refused: HTTP {response.status_code}")
        body = response.json()
        self._tally.logins["ok"] += 1
        lifetime = float(body.get("expires_in", 60))
        self._cache[user.username] = (body["access_token"], self._clock() + max(lifetime - 30.0, 1.0))
        return str(body["access_token"])

    def token(self, user: DemoUser, fresh: bool = False) -> str:
        cached = self._cache.get(user.username)
        if not fresh and cached and cached[1] > self._clock():
            return cached[0]
        return self.login(user)

    def failed_logins(self, user: DemoUser) -> None:
        """A wrong password and an unknown user: ``login`` events with an error in Keycloak."""
        for username, password in ((user.username, "wrong-" + user.password), (f"nobody-{uuid.uuid4().hex[:6]}", "x")):
            status = self.grant(username, password).status_code
            self._tally.logins["failed" if status in (400, 401) else "error"] += 1


def _user(name: str) -> DemoUser:
    return next(u for u in DEMO_USERS if u.username == name)


class TrafficGenerator:
    def __init__(self, options: Options, client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 out: Any = None) -> None:
        self.options = options
        self.tally = Tally()
        self._client = client or httpx.Client(timeout=options.timeout)
        self._sleep, self._clock = sleep, clock
        self._out = out or sys.stdout
        self.tokens = Tokens(self._client, options.token_url, options.client_id, self.tally, clock)

    # -- one request ---------------------------------------------------------------------------
    def call(
        self, label: str, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response | None:
        headers = {"X-Correlation-ID": f"traffic-{uuid.uuid4().hex[:16]}", **kwargs.pop("headers", {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._client.request(method, self.options.app_url.rstrip("/") + path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            self.tally.record(label, 0)
            self.tally.errors.append(f"{label}: {type(exc).__name__}")
            return None
        self.tally.record(label, response.status_code)
        return response

    # -- a round -------------------------------------------------------------------------------
    def round(self, index: int) -> None:
        o = self.options
        fresh = o.relogin_every > 0 and index % o.relogin_every == 0
        alice, bob, mallory = (self.tokens.token(_user(n), fresh) for n in ("alice", "bob", "mallory"))
        name = f"Traffic author {uuid.uuid4().hex[:10]}"

        self.call("list", "GET", "/api/authors?limit=10", alice)
        created = self.call("create", "POST", "/api/authors", alice, json={"name": name, "bio": "demo traffic"})
        author_id = created.json().get("id") if created is not None and created.status_code == 201 else None
        if author_id is not None:
            self.call("get", "GET", f"/api/authors/{author_id}", bob)
            self.call("duplicate", "POST", "/api/authors", alice, json={"name": name})
            self.call("delete", "DELETE", f"/api/authors/{author_id}", alice)
            self.call("deleted", "GET", f"/api/authors/{author_id}", alice)
        self.call("invalid_body", "POST", "/api/authors", alice, json={"name": ""})
        self.call("too_large", "POST", "/api/authors", alice, content=b"x" * o.large_body_bytes,
                  headers={"content-type": "application/json"})
        self.call("no_token", "GET", "/api/authors")
        self.call("garbage_token", "GET", "/api/authors", "not-a-jwt")
        self.call("no_role", "GET", "/api/authors", mallory)
        self.call("reader_creates", "POST", "/api/authors", bob, json={"name": name + " by bob"})
        self.call("health", "GET", "/health")
        if o.websocket:
            self.websocket(alice, bob)
        if o.burst_every > 0 and index % o.burst_every == 0:
            self.burst(bob)
        if o.failed_login_every > 0 and index % o.failed_login_every == 0:
            self.tokens.failed_logins(_user("mallory"))

    def burst(self, token: str) -> None:
        """Requests as one user until the per-user burst limit answers 429 (at most ``burst_max``)."""
        for _ in range(self.options.burst_max):
            response = self.call("burst", "GET", "/api/authors?limit=1", token)
            if response is None or response.status_code == 429:
                return

    def websocket(self, writer: str, reader: str) -> None:
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        base = self.options.app_url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        frames = (
            (writer, {"pkg_id": 1, "req_id": "list", "data": {"limit": 5}}),
            (writer, {"pkg_id": 3, "req_id": "create", "data": {"name": f"WS author {uuid.uuid4().hex[:10]}"}}),
            (writer, {"pkg_id": 2, "req_id": "invalid", "data": {"author_id": "x"}}),
            (writer, {"pkg_id": 99, "req_id": "unknown", "data": {}}),
            (reader, {"pkg_id": 3, "req_id": "forbidden", "data": {"name": "never"}}),
        )
        try:
            for token, group in itertools.groupby(frames, key=lambda f: f[0]):
                with connect(f"{base}/ws?token={token}", open_timeout=self.options.timeout) as ws:
                    for _, frame in group:
                        ws.send(orjson.dumps(frame).decode())
                        self.tally.ws[int(orjson.loads(ws.recv(timeout=self.options.timeout))["status_code"])] += 1
            with connect(f"{base}/ws?token=not-a-jwt", open_timeout=self.options.timeout) as ws:
                ws.recv(timeout=self.options.timeout)  # the reason, then close code 4401
                with contextlib.suppress(WebSocketException):
                    ws.recv(timeout=self.options.timeout)
                self.tally.ws[ws.close_code or 0] += 1
        except (OSError, TimeoutError, WebSocketException, KeyError, ValueError) as exc:
            self.tally.errors.append(f"websocket: {type(exc).__name__}: {exc}")

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> Tally:
        o = self.options
        if o.rounds <= 0 and o.duration <= 0:
            raise ValueError("the loop must be bounded: give rounds > 0 or duration > 0")
        deadline = self._clock() + o.duration if o.duration > 0 else None
        for index in itertools.count():
            if o.rounds > 0 and index >= o.rounds:
                break
            if deadline is not None and self._clock() >= deadline:
                break
            try:
                self.round(index)
            except (LoginFailed, httpx.HTTPError) as exc:
                self.tally.errors.append(f"round {index}: {exc}")
            self.tally.rounds += 1
            self._report("traffic round", round=index)
            if o.heartbeat_file:
                Path(o.heartbeat_file).write_text(str(time.time()))
            if o.interval > 0:
                self._sleep(o.interval)
        self._report("traffic done")
        return self.tally

    def _report(self, message: str, **fields: Any) -> None:
        line = {"level": "info", "logger": "trafficgen", "message": message, **fields, **self.tally.summary()}
        self._out.write(orjson.dumps(line).decode() + "\n")
        self._out.flush()


# -- command line ------------------------------------------------------------------------------

def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def parse_args(argv: Sequence[str] | None = None) -> Options:
    d = Options()
    p = argparse.ArgumentParser(description="Drive the reference service (and Keycloak logins) so every panel fills.")
    p.add_argument("--app-url", default=_env("TRAFFIC_APP_URL", d.app_url))
    p.add_argument("--keycloak-url", default=_env("TRAFFIC_KEYCLOAK_URL", "http://127.0.0.1:8080"),
                   help="Keycloak base URL; the token endpoint is <url>/realms/<realm>/protocol/openid-connect/token")
    p.add_argument("--realm", default=_env("TRAFFIC_REALM", DEFAULT_REALM))
    p.add_argument("--token-url", default=os.environ.get("TRAFFIC_TOKEN_URL"), help="overrides --keycloak-url/--realm")
    p.add_argument("--client-id", default=_env("TRAFFIC_CLIENT_ID", d.client_id))
    p.add_argument("--rounds", type=int, default=d.rounds, help="0: no limit by count (needs --duration)")
    p.add_argument("--duration", type=float, default=d.duration, help="seconds; 0: no limit by time")
    p.add_argument("--interval", type=float, default=d.interval, help="seconds between rounds")
    p.add_argument("--burst-every", type=int, default=d.burst_every, help="rounds between 429 bursts (0: never)")
    p.add_argument("--failed-login-every", type=int, default=d.failed_login_every,
                   help="rounds between failed Keycloak logins (0: never)")
    p.add_argument("--relogin-every", type=int, default=d.relogin_every, help="rounds between fresh logins")
    p.add_argument("--large-body-bytes", type=int, default=d.large_body_bytes, help="size of the 413 request")
    p.add_argument("--no-websocket", dest="websocket", action="store_false")
    p.add_argument("--heartbeat-file", default=os.environ.get("TRAFFIC_HEARTBEAT_FILE"),
                   help="touched after every round (the container healthcheck reads it)")
    a = p.parse_args(argv)
    if a.rounds <= 0 and a.duration <= 0:
        p.error("the loop must be bounded: give --rounds > 0 or --duration > 0")
    token_url = a.token_url or f"{a.keycloak_url.rstrip('/')}/realms/{a.realm}/protocol/openid-connect/token"
    return Options(app_url=a.app_url, token_url=token_url, client_id=a.client_id, rounds=a.rounds,
                   duration=a.duration, interval=a.interval, burst_every=a.burst_every,
                   failed_login_every=a.failed_login_every, relogin_every=a.relogin_every,
                   large_body_bytes=a.large_body_bytes, websocket=a.websocket, heartbeat_file=a.heartbeat_file)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    with httpx.Client(timeout=options.timeout) as client:
        tally = TrafficGenerator(options, client).run()
    return 0 if tally.rounds and tally.http else 1


if __name__ == "__main__":
    sys.exit(main())
