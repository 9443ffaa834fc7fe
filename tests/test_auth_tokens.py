"""Token verification against real signed tokens and a real JWKS endpoint."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from app.auth.dev_issuer import DevIssuer
from app.auth.tokens import AUTH_REASONS, MAX_TOKEN_BYTES, AuthError, Principal, TokenVerifier, build_verifier
from app.settings import Settings
from fastapi_lookout import metrics
from tests.support.jwks_server import JwksServer

ISSUER = "https://keycloak.test/realms/test"
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Signer:
    """A key pair playing Keycloak's realm key."""

    kid: str
    private_key: Any
    alg: str = "RS256"

    def jwk(self, **extra: Any) -> dict[str, Any]:
        algorithm = RSAAlgorithm if isinstance(self.private_key, rsa.RSAPrivateKey) else ECAlgorithm
        public = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", **extra}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any] | None = None, *, alg: str | None = None, kid: str | None = None) -> str:
        return jwt.encode(
            claims if claims is not None else valid_claims(),
            self.private_key,
            algorithm=alg or self.alg,
            headers={"kid": kid or self.kid},
        )


def valid_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "exp": now + 300,
        "iat": now,
        "iss": ISSUER,
        "aud": "account",
        "azp": "bundle-api",
        "sub": "f3b1c7a0-0000-4000-8000-000000000001",
        "typ": "Bearer",
        "preferred_username": "alice",
        "realm_access": {"roles": ["get-authors", "offline_access"]},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    """A JWS built by hand, for the algorithms PyJWT (rightly) refuses to produce."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64url(signature)}"


@pytest.fixture(scope="module")
def realm_key() -> Signer:
    return Signer("realm-key-1", rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def other_key() -> Signer:
    return Signer("realm-key-2", rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ec_key() -> Signer:
    return Signer("realm-ec-1", ec.generate_private_key(ec.SECP256R1()), alg="ES256")


@pytest.fixture
def jwks(realm_key: Signer) -> Any:
    with JwksServer({"keys": [realm_key.jwk()]}) as server:
        yield server


def remote_verifier(server: JwksServer, **overrides: Any) -> TokenVerifier:
    options: dict[str, Any] = {"jwks_url": server.url, "issuer": ISSUER, "audience": None}
    options.update(overrides)
    return TokenVerifier(**options)


async def refused(verifier: TokenVerifier, token: str | None, reason: str) -> AuthError:
    with pytest.raises(AuthError) as info:
        await verifier.verify(token)
    error = info.value
    assert error.reason == reason, error
    if token:
        assert token not in str(error)
        assert token not in error.message
    return error


# --- the happy path ---------------------------------------------------------


async def test_valid_token_yields_principal_with_realm_roles(jwks: JwksServer, realm_key: Signer) -> None:
    principal = await remote_verifier(jwks).verify(realm_key.sign())
    assert principal == Principal(
        sub="f3b1c7a0-0000-4000-8000-000000000001",
        username="alice",
        roles=frozenset({"get-authors", "offline_access"}),
    )
    assert jwks.requests == 1


async def test_username_falls_back_to_sub_and_roles_default_to_empty(jwks: JwksServer, realm_key: Signer) -> None:
    token = realm_key.sign(valid_claims(preferred_username=None, realm_access=None))
    principal = await remote_verifier(jwks).verify(token)
    assert principal.username == principal.sub
    assert principal.roles == frozenset()


async def test_keys_are_cached_between_verifications(jwks: JwksServer, realm_key: Signer) -> None:
    verifier = remote_verifier(jwks)
    for _ in range(5):
        await verifier.verify(realm_key.sign())
    assert jwks.requests == 1


@pytest.mark.parametrize("alg", ["PS256", "RS512"])
async def test_other_rsa_algorithms_verify_with_an_rsa_key(jwks: JwksServer, realm_key: Signer, alg: str) -> None:
    assert (await remote_verifier(jwks).verify(realm_key.sign(alg=alg))).username == "alice"


async def test_es256_verifies_with_an_ec_key(jwks: JwksServer, ec_key: Signer) -> None:
    jwks.document = {"keys": [ec_key.jwk()]}
    assert (await remote_verifier(jwks).verify(ec_key.sign())).username == "alice"


# --- tokens that are not even tokens ---------------------------------------


@pytest.mark.parametrize("token", [None, ""])
async def test_no_token_is_missing(jwks: JwksServer, token: str | None) -> None:
    error = await refused(remote_verifier(jwks), token, "missing")
    assert error.status_code == 401


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30", f"{b64url(b'not json')}.e30.c2ln"],
)
async def test_garbage_is_malformed_and_fetches_nothing(jwks: JwksServer, token: str) -> None:
    await refused(remote_verifier(jwks), token, "malformed")
    assert jwks.requests == 0


async def test_oversize_token_is_malformed_before_any_fetch(jwks: JwksServer, realm_key: Signer) -> None:
    token = realm_key.sign(valid_claims(padding="x" * MAX_TOKEN_BYTES))
    await refused(remote_verifier(jwks), token, "malformed")
    assert jwks.requests == 0


async def test_token_without_kid_is_malformed(jwks: JwksServer, realm_key: Signer) -> None:
    token = jwt.encode(valid_claims(), realm_key.private_key, algorithm="RS256")
    await refused(remote_verifier(jwks), token, "malformed")


# --- signature attacks ------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
async def test_unsigned_alg_none_token_is_refused(jwks: JwksServer, realm_key: Signer, alg: str) -> None:
    token = compact({"alg": alg, "typ": "JWT", "kid": realm_key.kid}, valid_claims())
    await refused(remote_verifier(jwks), token, "invalid_signature")
    assert jwks.requests == 0, "an unsigned token must not even trigger a key fetch"


@pytest.mark.parametrize("alg,digest", [("HS256", hashlib.sha256), ("HS512", hashlib.sha512)])
async def test_hmac_signed_with_the_public_key_pem_is_refused(
    jwks: JwksServer, realm_key: Signer, alg: str, digest: Any
) -> None:
    """The classic key-confusion attack: the public key, which everyone has, used as an HMAC secret."""
    pem = realm_key.public_pem()
    token = compact(
        {"alg": alg, "typ": "JWT", "kid": realm_key.kid},
        valid_claims(),
        lambda data: hmac.new(pem, data, digest).digest(),
    )
    verifier = remote_verifier(jwks)
    await verifier.verify(realm_key.sign())  # keys are cached: the refusal is not for want of a key
    await refused(verifier, token, "invalid_signature")


async def test_algorithm_must_match_the_key_type(jwks: JwksServer, realm_key: Signer, ec_key: Signer) -> None:
    """An EC signature presented under the RSA key's kid is refused, not tried with the wrong key."""
    token = ec_key.sign(kid=realm_key.kid)
    await refused(remote_verifier(jwks), token, "invalid_signature")


async def test_algorithm_pinned_by_the_jwks_is_enforced(jwks: JwksServer, realm_key: Signer) -> None:
    jwks.document = {"keys": [realm_key.jwk(alg="RS256")]}
    await refused(remote_verifier(jwks), realm_key.sign(alg="PS256"), "invalid_signature")


async def test_other_key_with_the_same_kid_is_invalid_signature(
    jwks: JwksServer, realm_key: Signer, other_key: Signer
) -> None:
    forged = other_key.sign(kid=realm_key.kid)
    await refused(remote_verifier(jwks), forged, "invalid_signature")


async def test_tampered_payload_is_invalid_signature(jwks: JwksServer, realm_key: Signer) -> None:
    header, _, signature = realm_key.sign().split(".")
    payload = b64url(json.dumps(valid_claims(realm_access={"roles": ["admin"]})).encode())
    await refused(remote_verifier(jwks), f"{header}.{payload}.{signature}", "invalid_signature")


# --- claims -----------------------------------------------------------------


async def test_expired_token_is_expired(jwks: JwksServer, realm_key: Signer) -> None:
    now = int(time.time())
    token = realm_key.sign(valid_claims(iat=now - 600, exp=now - 120))
    await refused(remote_verifier(jwks), token, "expired")


async def test_expiry_within_the_clock_skew_leeway_is_accepted(jwks: JwksServer, realm_key: Signer) -> None:
    token = realm_key.sign(valid_claims(exp=int(time.time()) - 5))
    assert (await remote_verifier(jwks).verify(token)).username == "alice"


def test_the_leeway_is_the_documented_setting(tmp_path: Path) -> None:
    key_path = tmp_path / "key.pem"
    assert build_verifier(dev_settings(key_path, auth_leeway_seconds=0)).leeway_seconds == 0
    assert build_verifier(dev_settings(key_path)).leeway_seconds == 30 == Settings.model_fields[
        "auth_leeway_seconds"].default


async def test_no_leeway_refuses_a_token_expired_a_moment_ago(jwks: JwksServer, realm_key: Signer) -> None:
    token = realm_key.sign(valid_claims(exp=int(time.time()) - 2))
    verifier = TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=None, leeway_seconds=0)
    await refused(verifier, token, "expired")


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_token_from_the_future_is_invalid_claims(jwks: JwksServer, realm_key: Signer, claim: str) -> None:
    now = int(time.time())
    token = realm_key.sign(valid_claims(**{claim: now + 600, "exp": now + 1200}))
    await refused(remote_verifier(jwks), token, "invalid_claims")


@pytest.mark.parametrize("missing", ["exp", "sub"])
async def test_token_without_exp_or_sub_is_invalid_claims(jwks: JwksServer, realm_key: Signer, missing: str) -> None:
    await refused(remote_verifier(jwks), realm_key.sign(valid_claims(**{missing: None})), "invalid_claims")


@pytest.mark.parametrize("iss", ["https://keycloak.test/realms/other", None])
async def test_wrong_or_missing_issuer_is_invalid_claims(jwks: JwksServer, realm_key: Signer, iss: str | None) -> None:
    await refused(remote_verifier(jwks), realm_key.sign(valid_claims(iss=iss)), "invalid_claims")


async def test_any_issuer_passes_when_none_is_configured(jwks: JwksServer, realm_key: Signer) -> None:
    token = realm_key.sign(valid_claims(iss="https://elsewhere.test"))
    assert (await remote_verifier(jwks, issuer=None).verify(token)).username == "alice"


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "bundle-api", "azp": "some-frontend"},
        {"aud": ["account", "bundle-api"], "azp": "some-frontend"},
        {"aud": "account", "azp": "bundle-api"},  # Keycloak's default: the client only in azp
    ],
)
async def test_audience_matches_aud_or_azp(jwks: JwksServer, realm_key: Signer, claims: dict[str, Any]) -> None:
    token = realm_key.sign(valid_claims(**claims))
    assert (await remote_verifier(jwks, audience="bundle-api").verify(token)).username == "alice"


@pytest.mark.parametrize(
    "claims",
    [{"aud": "account", "azp": "some-frontend"}, {"aud": ["a", "b"], "azp": None}, {"aud": None, "azp": None}],
)
async def test_wrong_audience_is_invalid_claims(jwks: JwksServer, realm_key: Signer, claims: dict[str, Any]) -> None:
    token = realm_key.sign(valid_claims(**claims))
    await refused(remote_verifier(jwks, audience="bundle-api"), token, "invalid_claims")


@pytest.mark.parametrize("typ", ["Refresh", "ID", "Offline"])
async def test_keycloak_refresh_and_id_tokens_do_not_open_the_api(
    jwks: JwksServer, realm_key: Signer, typ: str
) -> None:
    await refused(remote_verifier(jwks), realm_key.sign(valid_claims(typ=typ)), "invalid_claims")


# --- key set: refresh, throttling, outages ----------------------------------


class Clock:
    """The verifier's monotonic clock for the JWKS cache and throttle, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_unknown_kid_refreshes_once_then_is_throttled(jwks: JwksServer, realm_key: Signer) -> None:
    clock = Clock()
    verifier = remote_verifier(jwks, min_refresh_seconds=1.0, clock=clock)
    await verifier.verify(realm_key.sign())
    await refused(verifier, realm_key.sign(kid="random-kid-0"), "unknown_key")
    assert jwks.requests == 1, "like Keycloak's adapter: a key set fetched just now is not refetched"
    clock.now += 1.05
    await refused(verifier, realm_key.sign(kid="random-kid-1"), "unknown_key")
    assert jwks.requests == 2, "an unknown kid is worth one refresh"
    for i in range(5):
        await refused(verifier, realm_key.sign(kid=f"random-kid-{i + 2}"), "unknown_key")
    assert jwks.requests == 2, "random kids must not make us hammer Keycloak"


async def test_unknown_kid_on_a_cold_cache_costs_one_fetch(jwks: JwksServer, realm_key: Signer) -> None:
    await refused(remote_verifier(jwks, min_refresh_seconds=0), realm_key.sign(kid="nope"), "unknown_key")
    assert jwks.requests == 1


async def test_key_rotation_is_picked_up(jwks: JwksServer, realm_key: Signer, other_key: Signer) -> None:
    verifier = remote_verifier(jwks, min_refresh_seconds=0)
    await verifier.verify(realm_key.sign())
    jwks.document = {"keys": [other_key.jwk(), realm_key.jwk()]}  # Keycloak publishes the new key first
    assert (await verifier.verify(other_key.sign())).username == "alice"
    assert jwks.requests == 2
    await verifier.verify(realm_key.sign())
    assert jwks.requests == 2


async def test_concurrent_verifications_share_one_fetch(jwks: JwksServer, realm_key: Signer) -> None:
    jwks.delay = 0.3
    verifier = remote_verifier(jwks, min_refresh_seconds=0)
    principals = await asyncio.gather(*(verifier.verify(realm_key.sign()) for _ in range(20)))
    assert {p.username for p in principals} == {"alice"}
    assert jwks.requests == 1


async def test_cache_expiry_refetches(jwks: JwksServer, realm_key: Signer) -> None:
    clock = Clock()
    verifier = remote_verifier(jwks, cache_seconds=0.05, min_refresh_seconds=0, clock=clock)
    await verifier.verify(realm_key.sign())
    clock.now += 0.1
    await verifier.verify(realm_key.sign())
    assert jwks.requests == 2


async def test_jwks_error_with_empty_cache_is_503(jwks: JwksServer, realm_key: Signer) -> None:
    jwks.fail(500)
    error = await refused(remote_verifier(jwks), realm_key.sign(), "jwks_unavailable")
    assert error.status_code == 503


async def test_jwks_hanging_with_empty_cache_is_503_after_the_timeout(jwks: JwksServer, realm_key: Signer) -> None:
    jwks.hang(2.0)  # long enough to outlast the timeout, short enough that a verifier without one fails fast
    verifier = remote_verifier(jwks, fetch_timeout_seconds=0.3)
    started = time.monotonic()
    await refused(verifier, realm_key.sign(), "jwks_unavailable")
    assert time.monotonic() - started < 3


async def test_unreachable_jwks_is_503(realm_key: Signer) -> None:
    with JwksServer() as server:
        url = server.url
    verifier = TokenVerifier(jwks_url=url, issuer=ISSUER, audience=None)
    await refused(verifier, realm_key.sign(), "jwks_unavailable")


async def test_failed_fetch_is_not_retried_within_min_refresh(jwks: JwksServer, realm_key: Signer) -> None:
    jwks.fail(503)
    verifier = remote_verifier(jwks, min_refresh_seconds=60)
    for _ in range(3):
        await refused(verifier, realm_key.sign(), "jwks_unavailable")
    assert jwks.requests == 1


async def test_jwks_down_with_warm_cache_still_verifies(jwks: JwksServer, realm_key: Signer) -> None:
    clock = Clock()
    verifier = remote_verifier(jwks, cache_seconds=0.05, min_refresh_seconds=0, clock=clock)
    await verifier.verify(realm_key.sign())
    jwks.fail(500)
    clock.now += 0.1  # the cached set is now stale: a refresh is tried and fails
    assert (await verifier.verify(realm_key.sign())).username == "alice"
    assert jwks.requests >= 2
    # A kid we cannot check while Keycloak is down is our problem, not a forgery.
    await refused(verifier, realm_key.sign(kid="rotated-while-down"), "jwks_unavailable")
    jwks.recover()
    await refused(verifier, realm_key.sign(kid="rotated-while-down"), "unknown_key")


async def test_unusable_jwks_entries_are_skipped(jwks: JwksServer, realm_key: Signer, other_key: Signer) -> None:
    jwks.document = {
        "keys": [
            other_key.jwk(use="enc", alg="RSA-OAEP", kid="enc-key"),  # Keycloak publishes these too
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            "not a key",
            realm_key.jwk(),
        ]
    }
    verifier = remote_verifier(jwks)
    assert (await verifier.verify(realm_key.sign())).username == "alice"
    await refused(verifier, other_key.sign(kid="enc-key"), "unknown_key")


async def test_non_jwks_answer_counts_as_unavailable(jwks: JwksServer, realm_key: Signer) -> None:
    jwks.document = {"not": "a key set"}
    await refused(remote_verifier(jwks), realm_key.sign(), "jwks_unavailable")


# --- the error type itself ----------------------------------------------------


def test_every_failure_reason_is_an_auth_metric_status() -> None:
    assert set(metrics.AUTH_STATUSES) - AUTH_REASONS == {"success", "forbidden"}


def test_only_jwks_unavailable_is_our_fault() -> None:
    codes = {reason: AuthError(reason, "x").status_code for reason in AUTH_REASONS}  # type: ignore[arg-type]
    assert codes.pop("jwks_unavailable") == 503
    assert set(codes.values()) == {401}
    with pytest.raises(ValueError):
        AuthError("forbidden", "x")  # type: ignore[arg-type]


def test_verifier_needs_a_key_source() -> None:
    with pytest.raises(ValueError):
        TokenVerifier(jwks_url=None, issuer=None, audience=None)


# --- the development issuer ----------------------------------------------------


def dev_settings(key_path: Path, **overrides: Any) -> Settings:
    options: dict[str, Any] = {"dev_issuer_key_path": str(key_path), "auth_jwks_url": None, "auth_audience": None}
    options.update(overrides)
    return Settings(**options)


def test_dev_issuer_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key_path = tmp_path / "nested" / "dir" / "dev-key.pem"
    first = DevIssuer.load_or_create(key_path)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    content = key_path.read_bytes()
    second = DevIssuer.load_or_create(key_path)
    assert key_path.read_bytes() == content
    assert second.kid == first.kid
    assert second.jwks() == first.jwks()
    assert sorted(p.name for p in key_path.parent.iterdir()) == ["dev-key.pem"], "no temp file left behind"


async def test_dev_issuer_token_verifies_through_build_verifier(tmp_path: Path) -> None:
    key_path = tmp_path / "dev-key.pem"
    verifier = build_verifier(dev_settings(key_path))
    token = DevIssuer.load_or_create(key_path).mint("bob", ["create-author", "get-authors"], sub="user-42")
    assert await verifier.verify(token) == Principal("user-42", "bob", frozenset({"create-author", "get-authors"}))
    await verifier.aclose()


async def test_dev_issuer_tokens_are_shaped_like_keycloak_ones(tmp_path: Path) -> None:
    issuer = DevIssuer.load_or_create(tmp_path / "k.pem")
    token = issuer.mint("carol", ["get-authors"], audience="bundle-api")
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "RS256"
    assert header["kid"] == issuer.jwks()["keys"][0]["kid"]
    assert claims["iss"] == DevIssuer.ISSUER
    assert claims["typ"] == "Bearer"
    assert claims["realm_access"] == {"roles": ["get-authors"]}
    assert claims["preferred_username"] == "carol"
    assert claims["aud"] == "bundle-api"
    assert claims["sub"] == jwt.decode(issuer.mint("carol", []), options={"verify_signature": False})["sub"]


async def test_dev_verifier_enforces_issuer_expiry_and_audience(tmp_path: Path) -> None:
    key_path = tmp_path / "dev-key.pem"
    issuer = DevIssuer.load_or_create(key_path)
    verifier = build_verifier(dev_settings(key_path, auth_audience="bundle-api"))
    assert (await verifier.verify(issuer.mint("dan", [], audience="bundle-api"))).username == "dan"
    await refused(verifier, issuer.mint("dan", []), "invalid_claims")
    await refused(verifier, issuer.mint("dan", [], audience="bundle-api", ttl_seconds=-120), "expired")
    forged_iss = issuer.mint("dan", [], audience="bundle-api", extra_claims={"iss": ISSUER})
    await refused(verifier, forged_iss, "invalid_claims")


async def test_token_of_another_dev_key_is_unknown_key(tmp_path: Path) -> None:
    verifier = build_verifier(dev_settings(tmp_path / "mine.pem"))
    stranger = DevIssuer.load_or_create(tmp_path / "theirs.pem")
    await refused(verifier, stranger.mint("eve", ["admin"]), "unknown_key")


async def test_build_verifier_uses_keycloak_jwks_when_configured(tmp_path: Path) -> None:
    issuer = DevIssuer.load_or_create(tmp_path / "kc.pem")
    with JwksServer(issuer.jwks()) as server:
        settings = dev_settings(
            tmp_path / "unused.pem", auth_jwks_url=server.url, auth_issuer=DevIssuer.ISSUER, auth_audience="api"
        )
        verifier = build_verifier(settings)
        assert (await verifier.verify(issuer.mint("frank", ["x"], audience="api"))).roles == frozenset({"x"})
        await refused(verifier, issuer.mint("frank", ["x"]), "invalid_claims")
        assert server.requests == 1
    assert not (tmp_path / "unused.pem").exists(), "the dev key is only created when it is used"

