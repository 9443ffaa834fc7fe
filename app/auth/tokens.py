"""Bearer-token verification the way Keycloak's own adapters do it.

Every failure becomes an ``AuthError`` whose ``reason`` is one of the
``auth_attempts_total`` status values, so a dashboard can tell "users with
expired sessions" from "someone forging tokens" from "we cannot reach
Keycloak". Messages are fixed texts: nothing from the token is echoed back
into responses or logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

import jwt
import structlog

from app.auth.dev_issuer import DevIssuer
from app.auth.jwks import SUPPORTED_ALGORITHMS, JwksUnavailable, KeySource, RemoteJwks, StaticKeys

if TYPE_CHECKING:
    from app.settings import Settings

AuthReason = Literal[
    "missing",
    "malformed",
    "expired",
    "invalid_signature",
    "invalid_claims",
    "unknown_key",
    "jwks_unavailable",
]
AUTH_REASONS: Final[frozenset[str]] = frozenset(get_args(AuthReason))
"""The ``auth_attempts_total`` statuses of a refused token (all but ``success`` and ``forbidden``)."""

MAX_TOKEN_BYTES: Final = 8 * 1024
"""Keycloak tokens with many roles are 1-3 KiB; anything far larger is not one of ours."""
LEEWAY_SECONDS: Final = 30
"""Default tolerated clock skew between Keycloak and us for ``exp``/``nbf``/``iat`` (``AUTH_LEEWAY_SECONDS``)."""
FETCH_TIMEOUT_SECONDS: Final = 3.0
ACCESS_TOKEN_TYPE: Final = "bearer"
"""Keycloak's ``typ`` of access tokens; its ID and refresh tokens must not open an API."""


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    username: str
    roles: frozenset[str]
    valid_until: float | None = field(default=None, compare=False)
    """Epoch seconds after which the token is refused (``exp`` + leeway): a WebSocket closes then."""


class AuthError(Exception):
    """A token was refused; ``reason`` is the metric label, ``message`` is safe to show and log."""

    def __init__(self, reason: AuthReason, message: str) -> None:
        if reason not in AUTH_REASONS:
            raise ValueError(f"unknown auth failure reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason: AuthReason = reason
        self.message = message
        self.status_code = 503 if reason == "jwks_unavailable" else 401


class TokenVerifier:
    """Checks signature, lifetime, issuer and audience of access tokens; one instance per app."""

    def __init__(
        self,
        *,
        jwks_url: str | None,
        issuer: str | None,
        audience: str | None,
        cache_seconds: float = 300,
        min_refresh_seconds: float = 10,
        local_jwks: dict | None = None,
        fetch_timeout_seconds: float = FETCH_TIMEOUT_SECONDS,
        leeway_seconds: float = LEEWAY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` times the JWKS cache and refresh throttle (not token lifetimes: PyJWT reads the wall clock)."""
        self._issuer = issuer
        self.leeway_seconds = leeway_seconds
        self._audience = audience
        self._keys: KeySource
        if local_jwks is not None:
            self._keys = StaticKeys(local_jwks)
        elif jwks_url:
            self._keys = RemoteJwks(
                jwks_url,
                cache_seconds=cache_seconds,
                min_refresh_seconds=min_refresh_seconds,
                timeout_seconds=fetch_timeout_seconds,
                clock=clock,
            )
        else:
            raise ValueError("TokenVerifier needs a jwks_url or a local_jwks")

    async def verify(self, token: str | None) -> Principal:
        """The principal a valid access token speaks for; raises ``AuthError`` otherwise."""
        if not token:
            raise AuthError("missing", "no access token")
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthError("malformed", f"token longer than {MAX_TOKEN_BYTES} bytes")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed", "token is not a JWS compact serialization") from None
        alg, kid = header.get("alg"), header.get("kid")
        # Before any key lookup: "none" or HMAC tokens must not even cost us a JWKS fetch.
        if not isinstance(alg, str) or alg not in SUPPORTED_ALGORITHMS:
            allowed = ", ".join(SUPPORTED_ALGORITHMS)
            raise AuthError("invalid_signature", f"signing algorithm not accepted (allowed: {allowed})")
        if not isinstance(kid, str) or not kid:
            raise AuthError("malformed", "token header has no key id (kid)")
        try:
            key = await self._keys.get(kid)
        except JwksUnavailable:
            raise AuthError("jwks_unavailable", "the token issuer's signing keys are unavailable") from None
        if key is None:
            raise AuthError("unknown_key", "token signed with a key the issuer does not publish")
        if not key.accepts(alg):
            raise AuthError("invalid_signature", "signing algorithm does not match the key type")
        claims = self._decode(token, key.key, alg)
        self._check_audience(claims)
        exp = claims.get("exp")  # required; PyJWT checked it is a time but lets a numeric string through
        if not isinstance(exp, int | float):
            raise AuthError("invalid_claims", "token 'exp' claim is not a number")
        return _principal(claims, valid_until=float(exp) + self.leeway_seconds)

    async def aclose(self) -> None:
        """Nothing to release (a JWKS fetch opens and closes its own client); kept for the app lifespan."""

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                issuer=self._issuer,
                leeway=self.leeway_seconds,
                # aud is checked by hand: Keycloak may name the client in `azp` instead.
                options={"require": ["exp", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("expired", "token has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("invalid_claims", "token is not valid yet (nbf/iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise AuthError("invalid_claims", "token issuer is not trusted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError("invalid_claims", f"token has no '{exc.claim}' claim") from None
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
            raise AuthError("invalid_signature", "token signature does not verify") from None
        except jwt.DecodeError:
            raise AuthError("malformed", "token payload is not a JSON object") from None
        except jwt.InvalidTokenError:
            raise AuthError("invalid_claims", "token claims are invalid") from None

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        typ = claims.get("typ")
        if isinstance(typ, str) and typ.lower() != ACCESS_TOKEN_TYPE:
            raise AuthError("invalid_claims", "not an access token")
        if self._audience is None:
            return
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self._audience not in audiences and claims.get("azp") != self._audience:
            raise AuthError("invalid_claims", "token is not meant for this audience")


def _principal(claims: Mapping[str, Any], valid_until: float | None = None) -> Principal:
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub:
        raise AuthError("invalid_claims", "token has an empty 'sub' claim")
    username = claims.get("preferred_username")
    realm_access = claims.get("realm_access")
    roles = realm_access.get("roles") if isinstance(realm_access, Mapping) else None
    return Principal(
        sub=sub,
        username=username if isinstance(username, str) and username else sub,
        roles=frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset(),
        valid_until=valid_until,
    )


def build_verifier(settings: Settings) -> TokenVerifier:
    """Keycloak when ``AUTH_JWKS_URL`` is set, else the local development issuer (no outside service)."""
    log = structlog.get_logger("app.auth")
    if settings.auth_jwks_url:
        if not settings.auth_issuer:
            log.warning("AUTH_ISSUER unset: tokens from any issuer signing with these keys are accepted")
        return TokenVerifier(
            jwks_url=settings.auth_jwks_url,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            cache_seconds=settings.auth_jwks_cache_seconds,
            min_refresh_seconds=settings.auth_jwks_min_refresh_seconds,
            leeway_seconds=settings.auth_leeway_seconds,
        )
    issuer = DevIssuer.load_or_create(settings.dev_issuer_key_path)
    if settings.environment != "development":
        log.warning("AUTH_JWKS_URL unset: trusting the local development issuer", environment=settings.environment)
    return TokenVerifier(jwks_url=None, issuer=issuer.ISSUER, audience=settings.auth_audience, local_jwks=issuer.jwks(),
                         leeway_seconds=settings.auth_leeway_seconds)
