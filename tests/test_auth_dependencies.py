"""The FastAPI side of auth: status codes, response bodies, request context, metrics and logs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
import structlog
from fastapi import Depends, FastAPI
from prometheus_client import REGISTRY
from starlette.types import ASGIApp, Receive, Scope, Send
from structlog.testing import capture_logs

from app.auth.dependencies import authenticate_websocket, require_role
from app.auth.dev_issuer import DevIssuer
from app.auth.tokens import AuthError, Principal, TokenVerifier
from fastapi_lookout import metrics, problems
from fastapi_lookout.context import CURRENT, SCOPE_KEY, RequestContext, current_log_fields
from tests.support.jwks_server import JwksServer
from tests.support.problems import assert_problem


class ContextLayer:
    """Stands in for the observability middleware: one ``RequestContext`` per request, kept for inspection."""

    def __init__(self, app: ASGIApp, seen: list[RequestContext]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SCOPE_KEY] = ctx = RequestContext(request_id=f"req-{len(self.seen)}")
            self.seen.append(ctx)
            token = CURRENT.set(ctx)
            try:
                await self.app(scope, receive, send)
            finally:
                CURRENT.reset(token)
            return
        await self.app(scope, receive, send)


def make_app(verifier: TokenVerifier | None, seen: list[RequestContext] | None = None) -> FastAPI:
    app = FastAPI()
    problems.install_handlers(app)
    if verifier is not None:
        app.state.token_verifier = verifier
    if seen is not None:
        app.add_middleware(ContextLayer, seen=seen)

    @app.get("/api/authors")
    async def list_authors(principal: Annotated[Principal, Depends(require_role("get-authors"))]) -> dict:
        return {"username": principal.username, "log_context": current_log_fields()}

    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def auth_counts() -> dict[str, float]:
    return {
        status: REGISTRY.get_sample_value("auth_attempts_total", {"status": status}) or 0.0
        for status in metrics.AUTH_STATUSES
    }


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {status: after[status] - before[status] for status in after if after[status] != before[status]}


@pytest.fixture(autouse=True)
def clean_log_context() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer.load_or_create(tmp_path_factory.mktemp("auth") / "dev-key.pem")


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer.load_or_create(tmp_path_factory.mktemp("auth") / "other-key.pem")


@pytest.fixture
def verifier(issuer: DevIssuer) -> TokenVerifier:
    return TokenVerifier(jwks_url=None, issuer=DevIssuer.ISSUER, audience=None, local_jwks=issuer.jwks())


@pytest.fixture
def seen() -> list[RequestContext]:
    return []


@pytest.fixture
def app(verifier: TokenVerifier, seen: list[RequestContext]) -> FastAPI:
    return make_app(verifier, seen)


# --- success ------------------------------------------------------------------


async def test_role_holder_gets_in_and_the_request_knows_who_it_is(
    app: FastAPI, issuer: DevIssuer, seen: list[RequestContext]
) -> None:
    token = issuer.mint("alice", ["get-authors", "create-author"], sub="user-1")
    before = auth_counts()
    async with client(app) as http:
        response = await http.get("/api/authors", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "alice"
    assert body["log_context"] == {"request_id": "req-0", "user_id": "user-1", "username": "alice"}
    assert delta(before, auth_counts()) == {"success": 1}
    [ctx] = seen
    assert (ctx.user_id, ctx.username, ctx.roles) == ("user-1", "alice", ("create-author", "get-authors"))
    assert ctx.error_message is None


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
async def test_bearer_scheme_is_case_insensitive(app: FastAPI, issuer: DevIssuer, scheme: str) -> None:
    token = issuer.mint("alice", ["get-authors"])
    async with client(app) as http:
        response = await http.get("/api/authors", headers={"Authorization": f"{scheme} {token}"})
    assert response.status_code == 200


async def test_works_without_a_request_context(verifier: TokenVerifier, issuer: DevIssuer) -> None:
    app = make_app(verifier)
    async with client(app) as http:
        ok = await http.get("/api/authors", headers={"Authorization": f"Bearer {issuer.mint('a', ['get-authors'])}"})
        refused = await http.get("/api/authors")
        denied = await http.get("/api/authors", headers={"Authorization": f"Bearer {issuer.mint('a', [])}"})
    assert (ok.status_code, refused.status_code, denied.status_code) == (200, 401, 403)


# --- 401 ----------------------------------------------------------------------


def expired(issuer: DevIssuer) -> str:
    return issuer.mint("alice", ["get-authors"], ttl_seconds=-120)


@pytest.mark.parametrize(
    "authorization,reason",
    [
        (None, "missing"),
        ("", "missing"),
        ("Basic YWxpY2U6c2VjcmV0", "malformed"),
        ("Bearer", "malformed"),
        ("Bearer not-a-jwt", "malformed"),
        (lambda issuer, stranger: f"Bearer {expired(issuer)}", "expired"),
        (lambda issuer, stranger: f"Bearer {stranger.mint('eve', ['get-authors'])}", "unknown_key"),
    ],
)
async def test_refused_token_is_401_with_reason(
    app: FastAPI,
    issuer: DevIssuer,
    stranger: DevIssuer,
    seen: list[RequestContext],
    authorization: Any,
    reason: str,
) -> None:
    if callable(authorization):
        authorization = authorization(issuer, stranger)
    headers = {} if authorization is None else {"Authorization": authorization}
    before = auth_counts()
    with capture_logs() as logs:
        async with client(app) as http:
            response = await http.get("/api/authors", headers=headers)
    body = assert_problem(response, 401, reason)
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert body["detail"] and body["request_id"] == "req-0"
    assert delta(before, auth_counts()) == {reason: 1}
    [ctx] = seen
    assert ctx.user_id is None
    assert ctx.error_message is not None and ctx.error_message.startswith(reason)
    [entry] = [e for e in logs if e["event"] == "authentication failed"]
    assert entry["log_level"] == "warning"
    assert entry["reason"] == reason
    assert entry["required_role"] == "get-authors"
    if authorization and len(authorization) > 20:
        secret = authorization.split(" ", 1)[1]
        assert secret not in repr(logs)
        assert secret not in response.text
        assert secret not in ctx.error_message


async def test_unreachable_keycloak_is_503_not_the_clients_fault(issuer: DevIssuer, seen: list[RequestContext]) -> None:
    with JwksServer() as jwks:
        jwks.fail(500)
        app = make_app(TokenVerifier(jwks_url=jwks.url, issuer=None, audience=None), seen)
        before = auth_counts()
        async with client(app) as http:
            response = await http.get(
                "/api/authors", headers={"Authorization": f"Bearer {issuer.mint('alice', ['get-authors'])}"}
            )
    assert_problem(response, 503, "jwks_unavailable")
    assert "WWW-Authenticate" not in response.headers
    assert delta(before, auth_counts()) == {"jwks_unavailable": 1}


# --- 403 ----------------------------------------------------------------------


async def test_valid_token_without_the_role_is_403_forbidden(
    app: FastAPI, issuer: DevIssuer, seen: list[RequestContext]
) -> None:
    token = issuer.mint("bob", ["create-author"], sub="user-2")
    before = auth_counts()
    with capture_logs() as logs:
        async with client(app) as http:
            response = await http.get("/api/authors", headers={"Authorization": f"Bearer {token}"})
    body = assert_problem(response, 403, "forbidden")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    assert "get-authors" in body["detail"]
    assert delta(before, auth_counts()) == {"forbidden": 1}
    [ctx] = seen
    assert (ctx.user_id, ctx.username, ctx.roles) == ("user-2", "bob", ("create-author",)), "audit knows who"
    assert ctx.error_message is not None and ctx.error_message.startswith("forbidden")
    [entry] = [e for e in logs if e["log_level"] == "warning"]
    assert entry["event"] == "permission denied"
    assert (entry["reason"], entry["required_role"]) == ("forbidden", "get-authors")
    assert token not in repr(logs)


# --- wiring -------------------------------------------------------------------


async def test_missing_verifier_is_a_loud_configuration_error() -> None:
    async with client(make_app(None)) as http:
        with pytest.raises(RuntimeError, match="token_verifier"):
            await http.get("/api/authors", headers={"Authorization": "Bearer x"})


def test_openapi_documents_the_bearer_scheme(app: FastAPI) -> None:
    schema = app.openapi()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/api/authors"]["get"]["security"] == [{"HTTPBearer": []}]


# --- WebSocket ----------------------------------------------------------------


async def test_websocket_token_is_verified_counted_and_bound(verifier: TokenVerifier, issuer: DevIssuer) -> None:
    before = auth_counts()
    principal = await authenticate_websocket(verifier, issuer.mint("carol", ["ws"], sub="user-3"))
    assert principal == Principal("user-3", "carol", frozenset({"ws"}))
    assert delta(before, auth_counts()) == {"success": 1}
    assert structlog.contextvars.get_contextvars() == {"user_id": "user-3", "username": "carol"}


@pytest.mark.parametrize("token,reason", [(None, "missing"), ("", "missing"), ("x.y.z", "malformed")])
async def test_websocket_refusal_raises_and_counts_once(
    verifier: TokenVerifier, token: str | None, reason: str
) -> None:
    before = auth_counts()
    with capture_logs() as logs, pytest.raises(AuthError) as info:
        await authenticate_websocket(verifier, token)
    assert info.value.reason == reason
    assert delta(before, auth_counts()) == {reason: 1}
    assert [(e["event"], e["reason"]) for e in logs] == [("authentication failed", reason)]


async def test_two_authorization_headers_are_refused_not_guessed(
    app: FastAPI, issuer: DevIssuer, seen: list[RequestContext]
) -> None:
    token = issuer.mint("alice", ["get-authors"])
    before = auth_counts()
    async with client(app) as http:
        response = await http.get("/api/authors", headers=[("Authorization", f"Bearer {token}"),
                                                           ("Authorization", "Bearer forged")])
    assert_problem(response, 400, "duplicate_authorization")
    assert delta(before, auth_counts()) == {"malformed": 1}
    [ctx] = seen
    assert ctx.user_id is None and ctx.error_message.startswith("duplicate_authorization")
