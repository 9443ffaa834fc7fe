"""Which signing keys we trust, and when we ask Keycloak for them again.

Keycloak rotates realm keys by publishing the new key in its JWKS before
signing with it, so a token with an unknown ``kid`` is the signal to refetch.
That signal is attacker-controlled, hence the throttle (one fetch per
``min_refresh_seconds``) and the single shared in-flight fetch. When Keycloak
is down we keep verifying with the keys we already have: refusing every user
because the key endpoint blinked would turn a Keycloak hiccup into an outage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import httpx
import jwt
import structlog

SUPPORTED_ALGORITHMS: Final[Mapping[str, tuple[str, str | None]]] = {
    # alg -> (kty, crv) of the only key that may verify it. Asymmetric only:
    # "none" and HMAC (key confusion with the public key as the secret) never get here.
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
}
_DEFAULT_ALGORITHM: Final = {"RSA": "RS256", "EC": "ES256"}


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    kty: str
    crv: str | None
    alg: str | None
    """The JWKS ``alg``, when the issuer pins one; then only that algorithm is accepted."""
    key: Any
    """The ``cryptography`` public key object."""

    def accepts(self, alg: str) -> bool:
        """Whether a token header's ``alg`` may be verified with this key (type and curve must match)."""
        wanted = SUPPORTED_ALGORITHMS.get(alg)
        if wanted is None or (self.alg is not None and self.alg != alg):
            return False
        return (self.kty, self.crv) == wanted


def parse_jwks(document: Any) -> dict[str, SigningKey]:
    """Signing keys by ``kid``; encryption keys and keys we cannot use are skipped, not fatal.

    Keycloak publishes ``RSA-OAEP`` encryption keys next to the signing keys,
    and one odd entry must not cost us the whole key set.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("JWKS document has no 'keys' list")
    keys: dict[str, SigningKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, Mapping):
            continue
        kid, kty, alg = entry.get("kid"), entry.get("kty"), entry.get("alg")
        if not isinstance(kid, str) or not kid or kty not in _DEFAULT_ALGORITHM or entry.get("use") == "enc":
            continue
        if alg is not None and alg not in SUPPORTED_ALGORITHMS:
            continue
        try:
            parsed = jwt.PyJWK(dict(entry), algorithm=alg or _DEFAULT_ALGORITHM[kty])
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        crv = entry.get("crv") if kty == "EC" else None
        keys[kid] = SigningKey(kid=kid, kty=kty, crv=crv, alg=alg, key=parsed.key)
    return keys


class JwksUnavailable(Exception):
    """No key set could be fetched, so a token cannot be judged (our fault, not the client's)."""


class KeySource(Protocol):
    async def get(self, kid: str) -> SigningKey | None: ...


class StaticKeys:
    """A key set known up front (the development issuer): nothing to fetch, ever."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._keys = parse_jwks(document)

    async def get(self, kid: str) -> SigningKey | None:
        return self._keys.get(kid)


class RemoteJwks:
    """Keycloak's ``.../protocol/openid-connect/certs``, cached and refetched sparingly."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float,
        min_refresh_seconds: float,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._cache_seconds = cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._keys: dict[str, SigningKey] | None = None
        self._fetched_at = 0.0
        self._last_attempt: float | None = None
        self._failing = False
        self._attempts = 0
        # asyncio.Lock binds to the loop that first waits on it; the verifier may
        # outlive a loop (TestClient, tests), so keep one lock per running loop.
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    async def get(self, kid: str) -> SigningKey | None:
        """The key for ``kid``, or None when the issuer does not publish it.

        Raises ``JwksUnavailable`` when the key is not cached and the last
        fetch failed: we cannot tell an unknown key from one we could not load.
        """
        refreshed = False
        if self._keys is None or self._clock() - self._fetched_at >= self._cache_seconds:
            refreshed = await self._refresh()
        key = self._keys.get(kid) if self._keys is not None else None
        if key is None and not refreshed:
            await self._refresh()
            key = self._keys.get(kid) if self._keys is not None else None
        if key is None and self._failing:
            raise JwksUnavailable(f"signing keys could not be fetched from {self._url}")
        return key

    async def _refresh(self) -> bool:
        """Fetch unless throttled; True when a fetch finished during this call (ours or a concurrent one)."""
        attempts_before = self._attempts
        async with self._loop_lock():
            if self._attempts != attempts_before:
                return True  # someone fetched while we waited: share their result
            now = self._clock()
            if self._last_attempt is not None and now - self._last_attempt < self._min_refresh_seconds:
                return False
            self._last_attempt = now
            try:
                self._keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                self._failing = True
                structlog.get_logger("app.auth").warning(
                    "jwks fetch failed",
                    jwks_url=self._url,
                    error=f"{type(exc).__name__}: {exc}",
                    cached_keys=len(self._keys or {}),
                )
            else:
                self._fetched_at = now
                self._failing = False
            finally:
                self._attempts += 1
            return True

    async def _fetch(self) -> dict[str, SigningKey]:
        # A client per fetch: fetches are minutes apart, and nothing then ties us to one event loop.
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = await client.get(self._url, headers={"Accept": "application/json"})
        if response.status_code != httpx.codes.OK:
            raise ValueError(f"JWKS endpoint answered HTTP {response.status_code}")
        return parse_jwks(response.json())

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock
