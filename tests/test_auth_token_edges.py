"""The token verifier at its exact edges: size cap, clock-skew leeway, header and claim shapes, every
refusal's reason and message, and what ``build_verifier`` takes from the settings.

In-process and fast: keys are generated once, token lifetimes are judged against a frozen wall clock, the
JWKS cache and throttle against an injected clock, and the JWKS endpoint is a server thread of this process.
This is the file mutation testing runs against ``app/auth/tokens.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from structlog.testing import capture_logs

from app.auth.dev_issuer import DevIssuer
from app.auth.tokens import MAX_TOKEN_BYTES, AuthError, Principal, TokenVerifier, _principal, build_verifier
from app.settings import Settings
from tests.support.jwks_server import JwksServer

ISSUER = "https://keycloak.test/realms/test"
KID = "realm-key-1"
NOW = 1_800_000_000
"""The frozen wall clock PyJWT judges ``exp``/``nbf``/``iat`` against."""
ALLOWED = "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def jwk(private_key: Any = RSA_KEY, kid: str = KID) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else ECAlgorithm
    return {**algorithm.to_jwk(private_key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


JWKS = {"keys": [jwk()]}


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "exp": NOW + 300,
        "iat": NOW,
        "iss": ISSUER,
        "aud": "account",
        "azp": "bundle-api",
        "sub": "user-1",
        "typ": "Bearer",
        "preferred_username": "alice",
        "realm_access": {"roles": ["get-authors"]},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any] | None = None, *, headers: dict[str, Any] | None = None, alg: str = "RS256") -> str:
    return jwt.encode(claims() if payload is None else payload, RSA_KEY, algorithm=alg,
                      headers={"kid": KID} if headers is None else headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rs256_compact(header: dict[str, Any], payload: bytes) -> str:
    """A correctly signed JWS whose payload is whatever bytes we like (PyJWT only encodes JSON objects)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(payload)}".encode()
    signature = RSA_KEY.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{b64url(signature)}"


def local(**options: Any) -> TokenVerifier:
    settings: dict[str, Any] = {"jwks_url": None, "issuer": ISSUER, "audience": None, "local_jwks": JWKS}
    settings.update(options)
    return TokenVerifier(**settings)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def frozen_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.fromtimestamp(NOW, tz)

    monkeypatch.setattr(jwt.api_jwt, "datetime", Frozen)


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    with JwksServer({"keys": [jwk()]}) as server:
        yield server


async def refusal(verifier: TokenVerifier, token: str | None) -> tuple[str, str, int]:
    with pytest.raises(AuthError) as info:
        await verifier.verify(token)
    error = info.value
    assert str(error) == f"{error.reason}: {error.message}"
    return error.reason, error.message, error.status_code


# --- the size cap -----------------------------------------------------------------


def token_of_length(length: int) -> str:
    """A valid token exactly ``length`` characters long (padding in a claim and a header field)."""
    for head in range(4):
        base = sign(claims(pad=""), headers={"kid": KID, "p": "x" * head})
        n = length - len(base)
        for pad in range(max(0, n * 3 // 4 - 4), n * 3 // 4 + 4):
            token = sign(claims(pad="x" * pad), headers={"kid": KID, "p": "x" * head})
            if len(token) == length:
                return token
    raise AssertionError(f"no token of length {length}")


async def test_a_token_of_exactly_the_size_cap_is_verified():
    token = token_of_length(MAX_TOKEN_BYTES)
    assert len(token) == 8192
    assert (await local().verify(token)).sub == "user-1"


async def test_a_token_one_byte_over_the_size_cap_is_malformed_before_any_fetch(jwks: JwksServer):
    token = token_of_length(MAX_TOKEN_BYTES + 1)
    verifier = TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=None)
    assert await refusal(verifier, token) == ("malformed", "token longer than 8192 bytes", 401)
    assert jwks.requests == 0


# --- the clock-skew leeway --------------------------------------------------------------


async def test_a_token_expired_29_seconds_ago_is_accepted_until_its_leeway_runs_out():
    principal = await local().verify(sign(claims(exp=NOW - 29)))
    assert principal.valid_until == NOW - 29 + 30


@pytest.mark.parametrize("ago", [30, 31])
async def test_a_token_expired_30_or_more_seconds_ago_is_expired(ago: int):
    assert await refusal(local(), sign(claims(exp=NOW - ago, iat=NOW - 600))) == (
        "expired", "token has expired", 401)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_nbf_or_iat_29_seconds_ahead_is_tolerated_clock_skew(claim: str):
    assert (await local().verify(sign(claims(**{claim: NOW + 29})))).sub == "user-1"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_nbf_or_iat_31_seconds_ahead_is_not_valid_yet(claim: str):
    assert await refusal(local(), sign(claims(**{claim: NOW + 31}))) == (
        "invalid_claims", "token is not valid yet (nbf/iat in the future)", 401)


async def test_the_leeway_is_configurable_per_verifier():
    token = sign(claims(exp=NOW - 5))
    assert (await local(leeway_seconds=10).verify(token)).valid_until == NOW - 5 + 10
    assert (await refusal(local(leeway_seconds=4), token))[0] == "expired"


async def test_an_exp_given_as_a_numeric_string_is_refused():
    """PyJWT accepts it; a principal without a numeric expiry would keep a WebSocket open for ever."""
    assert await refusal(local(), sign(claims(exp=str(NOW + 300)))) == (
        "invalid_claims", "token 'exp' claim is not a number", 401)


def test_an_unknown_refusal_reason_is_a_programming_error_named_in_the_exception():
    with pytest.raises(ValueError, match=r"^unknown auth failure reason 'forbidden'$"):
        AuthError("forbidden", "x")  # type: ignore[arg-type]


async def test_valid_until_is_exp_plus_the_leeway_even_for_a_fractional_exp():
    assert (await local().verify(sign(claims(exp=NOW + 60.5)))).valid_until == NOW + 90.5


# --- the header ------------------------------------------------------------------------


@pytest.mark.parametrize("header", [{"alg": "RS256"}, {"alg": "RS256", "kid": ""}])
async def test_a_token_without_a_kid_or_with_an_empty_one_is_malformed_before_any_fetch(jwks: JwksServer, header):
    verifier = TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=None)
    assert await refusal(verifier, rs256_compact(header, json.dumps(claims()).encode())) == (
        "malformed", "token header has no key id (kid)", 401)
    assert jwks.requests == 0


@pytest.mark.parametrize("kid", [7, ["realm-key-1"], None])
async def test_a_token_with_a_kid_that_is_not_a_string_is_malformed_before_any_fetch(jwks: JwksServer, kid: Any):
    """PyJWT >= 2.10 refuses such a header itself; older ones (allowed by pyproject) leave it to our check."""
    verifier = TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=None)
    token = rs256_compact({"alg": "RS256", "kid": kid}, json.dumps(claims()).encode())
    reason, message, _ = await refusal(verifier, token)
    assert reason == "malformed"
    assert message in ("token header has no key id (kid)", "token is not a JWS compact serialization")
    assert jwks.requests == 0


@pytest.mark.parametrize("alg", [None, 256, ["RS256"], "HS256", "none", "rs256"])
async def test_an_algorithm_outside_the_asymmetric_list_is_refused_naming_the_allowed_ones(jwks: JwksServer, alg):
    header = {"alg": alg, "kid": KID} if alg is not None else {"kid": KID}
    token = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims()).encode())}.{b64url(b'sig')}"
    verifier = TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=None)
    assert await refusal(verifier, token) == (
        "invalid_signature", f"signing algorithm not accepted (allowed: {ALLOWED})", 401)
    assert jwks.requests == 0


async def test_a_header_that_is_not_json_is_malformed():
    token = f"{b64url(b'{not json')}.{b64url(json.dumps(claims()).encode())}.{b64url(b'sig')}"
    assert await refusal(local(), token) == ("malformed", "token is not a JWS compact serialization", 401)


@pytest.mark.parametrize("token", [None, ""])
async def test_no_token_is_missing(token: str | None):
    assert await refusal(local(), token) == ("missing", "no access token", 401)


async def test_an_unpublished_kid_is_an_unknown_key():
    assert await refusal(local(), sign(headers={"kid": "someone-elses"})) == (
        "unknown_key", "token signed with a key the issuer does not publish", 401)


async def test_an_ec_algorithm_under_an_rsa_kid_is_refused_as_a_type_mismatch():
    token = jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": KID})
    assert await refusal(local(), token) == (
        "invalid_signature", "signing algorithm does not match the key type", 401)


async def test_a_signature_by_another_key_does_not_verify():
    forged = jwt.encode(claims(), OTHER_RSA_KEY, algorithm="RS256", headers={"kid": KID})
    assert await refusal(local(), forged) == ("invalid_signature", "token signature does not verify", 401)


# --- the payload ---------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b'"a string"'])
async def test_a_signed_payload_that_is_not_a_json_object_is_malformed(payload: bytes):
    token = rs256_compact({"alg": "RS256", "kid": KID}, payload)
    assert await refusal(local(), token) == ("malformed", "token payload is not a JSON object", 401)


@pytest.mark.parametrize("claim", ["exp", "sub"])
async def test_a_missing_required_claim_is_named(claim: str):
    assert await refusal(local(), sign(claims(**{claim: None}))) == (
        "invalid_claims", f"token has no '{claim}' claim", 401)


async def test_a_token_from_another_issuer_is_not_trusted():
    assert await refusal(local(), sign(claims(iss="https://keycloak.test/realms/other"))) == (
        "invalid_claims", "token issuer is not trusted", 401)


async def test_a_token_with_no_issuer_names_the_missing_claim():
    assert await refusal(local(), sign(claims(iss=None))) == ("invalid_claims", "token has no 'iss' claim", 401)


async def test_any_other_invalid_claim_is_refused_generically():
    assert await refusal(local(), sign(claims(iat="yesterday"))) == (
        "invalid_claims", "token claims are invalid", 401)


# --- sub, username and roles ---------------------------------------------------------------


async def test_an_empty_sub_is_refused():
    assert await refusal(local(), sign(claims(sub=""))) == ("invalid_claims", "token has an empty 'sub' claim", 401)


async def test_a_non_string_sub_is_refused():
    reason, _, status = await refusal(local(), sign(claims(sub=42)))
    assert (reason, status) == ("invalid_claims", 401)


@pytest.mark.parametrize("sub", [42, "", None, ["user-1"]])
def test_the_principal_is_never_built_from_a_sub_that_is_not_a_non_empty_string(sub: Any):
    """PyJWT >= 2.10 refuses a non-string ``sub`` itself; older ones (allowed by pyproject) let it through."""
    with pytest.raises(AuthError) as info:
        _principal({"sub": sub})
    assert (info.value.reason, info.value.message) == ("invalid_claims", "token has an empty 'sub' claim")


async def test_the_principal_carries_sub_username_string_roles_and_valid_until():
    token = sign(claims(realm_access={"roles": ["get-authors", 7, None, "create-author"]}))
    principal = await local().verify(token)
    assert (principal.sub, principal.username, principal.roles, principal.valid_until) == (
        "user-1", "alice", frozenset({"get-authors", "create-author"}), NOW + 330)


@pytest.mark.parametrize("username", ["", 42, None])
async def test_a_missing_or_unusable_username_falls_back_to_sub(username: Any):
    assert (await local().verify(sign(claims(preferred_username=username)))).username == "user-1"


@pytest.mark.parametrize(
    "realm_access", [{"roles": "admin"}, {"roles": {"admin": True}}, {}, ["admin"], "admin", {"role": ["admin"]}]
)
async def test_roles_come_only_from_a_realm_access_roles_list(realm_access: Any):
    assert (await local().verify(sign(claims(realm_access=realm_access)))).roles == frozenset()


def test_principal_defaults():
    assert _principal({"sub": "s"}) == Principal("s", "s", frozenset())
    assert _principal({"sub": "s"}).valid_until is None


# --- token type and audience -----------------------------------------------------------------


@pytest.mark.parametrize("typ", ["Bearer", "bearer", "BEARER", None, 1, ["Refresh"]])
async def test_an_access_token_or_one_without_a_string_typ_is_accepted(typ: Any):
    assert (await local().verify(sign(claims(typ=typ)))).sub == "user-1"


@pytest.mark.parametrize("typ", ["Refresh", "ID", "Offline", "", "Bearer "])
async def test_any_other_typ_is_not_an_access_token(typ: str):
    assert await refusal(local(), sign(claims(typ=typ))) == ("invalid_claims", "not an access token", 401)


async def test_the_token_type_is_checked_even_without_an_audience_setting():
    assert (await refusal(local(audience=None), sign(claims(typ="Refresh"))))[1] == "not an access token"


@pytest.mark.parametrize(
    "aud,azp",
    [("bundle-api", None), (["x", "bundle-api"], None), ("account", "bundle-api"), (5, "bundle-api"),
     ({"bundle-api": 1}, "bundle-api")],
)
async def test_the_audience_is_found_in_aud_or_azp(aud: Any, azp: Any):
    assert (await local(audience="bundle-api").verify(sign(claims(aud=aud, azp=azp)))).sub == "user-1"


@pytest.mark.parametrize(
    "aud,azp",
    [("account", "frontend"), ("bundle-api-2", None), (["bundle", "api"], None), ({"bundle-api": 1}, None),
     ("xbundle-apix", None), (None, None)],
)
async def test_a_token_for_another_audience_is_refused(aud: Any, azp: Any):
    assert await refusal(local(audience="bundle-api"), sign(claims(aud=aud, azp=azp))) == (
        "invalid_claims", "token is not meant for this audience", 401)


async def test_without_an_audience_setting_any_audience_is_accepted():
    assert (await local(audience=None).verify(sign(claims(aud="elsewhere", azp="other")))).sub == "user-1"


# --- the remote key set: cache, throttle, outage (injected clock) -----------------------------------


async def test_the_key_set_is_cached_for_300_seconds_by_default(jwks: JwksServer):
    clock = Clock()
    verifier = TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=None, clock=clock)
    await verifier.verify(sign())
    clock.now += 299.9
    await verifier.verify(sign())
    assert jwks.requests == 1
    clock.now += 0.1
    await verifier.verify(sign())
    assert jwks.requests == 2


async def test_an_unknown_kid_refetches_at_most_every_10_seconds_by_default(jwks: JwksServer):
    clock = Clock()
    verifier = TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=None, clock=clock)
    await verifier.verify(sign())
    clock.now += 9.9
    assert (await refusal(verifier, sign(headers={"kid": "new"})))[0] == "unknown_key"
    assert jwks.requests == 1
    clock.now += 0.1
    assert (await refusal(verifier, sign(headers={"kid": "new"})))[0] == "unknown_key"
    assert jwks.requests == 2


async def test_cache_and_throttle_follow_the_constructor_arguments(jwks: JwksServer):
    clock = Clock()
    verifier = TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=None, clock=clock,
                             cache_seconds=50, min_refresh_seconds=2)
    await verifier.verify(sign())
    clock.now += 2
    await refusal(verifier, sign(headers={"kid": "new"}))
    assert jwks.requests == 2
    clock.now += 49.9  # the set fetched at +2 is 49.9 s old
    await verifier.verify(sign())
    assert jwks.requests == 2
    clock.now += 0.1
    await verifier.verify(sign())
    assert jwks.requests == 3


async def test_unreachable_keys_are_a_503_naming_no_url(jwks: JwksServer):
    jwks.fail(500)
    verifier = TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=None)
    reason, message, status = await refusal(verifier, sign())
    assert (reason, message, status) == ("jwks_unavailable", "the token issuer's signing keys are unavailable", 503)


async def test_a_hanging_key_endpoint_is_given_up_after_the_fetch_timeout(jwks: JwksServer):
    jwks.hang(5.0)  # without a timeout the keys would arrive after 5 s and the token verify
    verifier = TokenVerifier(jwks_url=jwks.url, issuer=ISSUER, audience=None, fetch_timeout_seconds=0.2)
    assert (await refusal(verifier, sign()))[0] == "jwks_unavailable"


def test_a_verifier_needs_a_key_source():
    with pytest.raises(ValueError, match=r"^TokenVerifier needs a jwks_url or a local_jwks$"):
        TokenVerifier(jwks_url="", issuer=None, audience=None)


async def test_local_keys_win_over_a_jwks_url():
    verifier = TokenVerifier(jwks_url="http://127.0.0.1:9/never", issuer=ISSUER, audience=None, local_jwks=JWKS)
    assert (await verifier.verify(sign())).sub == "user-1"


def test_the_default_leeway_is_30_seconds():
    assert local().leeway_seconds == 30


# --- build_verifier: what the settings decide -----------------------------------------------


def keycloak_settings(url: str, tmp_path: Path, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "auth_jwks_url": url, "auth_issuer": ISSUER, "auth_audience": None,
        "dev_issuer_key_path": str(tmp_path / "unused.pem"),
    }
    options.update(overrides)
    return Settings(**options)


async def test_a_keycloak_verifier_refuses_a_token_from_another_issuer(jwks: JwksServer, tmp_path: Path):
    verifier = build_verifier(keycloak_settings(jwks.url, tmp_path))
    assert (await verifier.verify(sign())).sub == "user-1"
    assert await refusal(verifier, sign(claims(iss="https://evil.test/realms/test"))) == (
        "invalid_claims", "token issuer is not trusted", 401)
    assert not (tmp_path / "unused.pem").exists()


async def test_a_keycloak_verifier_enforces_the_configured_audience(jwks: JwksServer, tmp_path: Path):
    verifier = build_verifier(keycloak_settings(jwks.url, tmp_path, auth_audience="bundle-api"))
    assert (await verifier.verify(sign())).sub == "user-1"
    assert (await refusal(verifier, sign(claims(azp="frontend"))))[1] == "token is not meant for this audience"


async def test_a_keycloak_verifier_uses_the_configured_leeway(jwks: JwksServer, tmp_path: Path):
    verifier = build_verifier(keycloak_settings(jwks.url, tmp_path, auth_leeway_seconds=5))
    assert (await verifier.verify(sign(claims(exp=NOW - 4)))).valid_until == NOW + 1
    assert (await refusal(verifier, sign(claims(exp=NOW - 6))))[0] == "expired"


async def test_a_keycloak_verifier_uses_the_configured_cache_and_refresh_intervals(jwks: JwksServer, tmp_path: Path):
    verifier = build_verifier(keycloak_settings(
        jwks.url, tmp_path, auth_jwks_cache_seconds=1e-9, auth_jwks_min_refresh_seconds=0))
    await verifier.verify(sign())
    await verifier.verify(sign())  # the cached set is already stale
    assert jwks.requests == 2
    await refusal(verifier, sign(headers={"kid": "new"}))
    await refusal(verifier, sign(headers={"kid": "newer"}))
    assert jwks.requests == 4


async def test_a_keycloak_verifier_throttles_refreshes_as_configured(jwks: JwksServer, tmp_path: Path):
    verifier = build_verifier(keycloak_settings(
        jwks.url, tmp_path, auth_jwks_cache_seconds=3600, auth_jwks_min_refresh_seconds=3600))
    await verifier.verify(sign())
    for kid in ("a", "b", "c"):
        await refusal(verifier, sign(headers={"kid": kid}))
    await verifier.verify(sign())
    assert jwks.requests == 1


def test_a_keycloak_verifier_warns_only_when_no_issuer_is_set(jwks: JwksServer, tmp_path: Path):
    with capture_logs() as logs:
        build_verifier(keycloak_settings(jwks.url, tmp_path))
    assert logs == []
    with capture_logs() as logs:
        build_verifier(keycloak_settings(jwks.url, tmp_path, auth_issuer=None))
    assert logs == [{"event": "AUTH_ISSUER unset: tokens from any issuer signing with these keys are accepted",
                     "log_level": "warning"}]


async def test_the_dev_verifier_refuses_tokens_of_another_issuer_and_honours_settings(tmp_path: Path):
    key_path = tmp_path / "dev.pem"
    settings = Settings(dev_issuer_key_path=str(key_path), auth_jwks_url=None, auth_audience="api",
                        auth_leeway_seconds=5, environment="development")
    with capture_logs() as logs:
        verifier = build_verifier(settings)
    assert logs == []
    dev = DevIssuer.load_or_create(key_path)
    token = jwt.encode(claims(iss=DevIssuer.ISSUER, aud="api", exp=NOW - 4), dev._private_key, algorithm="RS256",
                       headers={"kid": dev.kid})
    assert (await verifier.verify(token)).valid_until == NOW + 1
    late = jwt.encode(claims(iss=DevIssuer.ISSUER, aud="api", exp=NOW - 6), dev._private_key, algorithm="RS256",
                      headers={"kid": dev.kid})
    assert (await refusal(verifier, late))[0] == "expired"
    other_aud = jwt.encode(claims(iss=DevIssuer.ISSUER, aud="x", azp="y"), dev._private_key, algorithm="RS256",
                           headers={"kid": dev.kid})
    assert (await refusal(verifier, other_aud))[1] == "token is not meant for this audience"
    keycloak = jwt.encode(claims(), dev._private_key, algorithm="RS256", headers={"kid": dev.kid})
    assert (await refusal(verifier, keycloak))[1] == "token issuer is not trusted"


def test_the_dev_verifier_outside_development_warns(tmp_path: Path):
    settings = Settings(dev_issuer_key_path=str(tmp_path / "dev.pem"), auth_jwks_url=None, environment="production")
    with capture_logs() as logs:
        build_verifier(settings)
    assert logs == [{"event": "AUTH_JWKS_URL unset: trusting the local development issuer",
                     "environment": "production", "log_level": "warning"}]
