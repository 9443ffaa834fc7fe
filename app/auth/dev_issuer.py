"""A stand-in for Keycloak, so the service runs and is testable with no outside service.

It signs exactly the kind of token Keycloak issues (RS256, ``kid`` header,
``realm_access.roles``, ``preferred_username``, ``typ: Bearer``), so the
verifier has one code path for both. The key pair lives in a 0600 file that
is created once and reused, which keeps minted tokens valid across restarts
and across the workers of one host.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

DEV_CLIENT_ID = "dev-token"
"""``azp`` of minted tokens when no audience is asked for (Keycloak's client id slot)."""


class DevIssuer:
    ISSUER: ClassVar[str] = "http://localhost:8000/dev-issuer"
    ALGORITHM: ClassVar[str] = "RS256"
    KEY_BITS: ClassVar[int] = 2048

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self._private_key = private_key
        public_jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        self.kid = _thumbprint(public_jwk)
        self._public_jwk = {**public_jwk, "kid": self.kid, "use": "sig", "alg": self.ALGORITHM}

    @classmethod
    def load_or_create(cls, path: str | Path) -> DevIssuer:
        """The issuer whose key is at ``path``, generating the key on first use.

        Creation is atomic (written aside, then hard-linked into place), so two
        workers starting together end up sharing one key instead of each
        overwriting the other's.
        """
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=cls.KEY_BITS)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(pem)
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won the race: use its key
            finally:
                os.unlink(tmp)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return cls(loaded)

    def jwks(self) -> dict:
        """The public key set, shaped like Keycloak's ``/protocol/openid-connect/certs``."""
        return {"keys": [dict(self._public_jwk)]}

    def mint(
        self,
        username: str,
        roles: Iterable[str],
        *,
        sub: str | None = None,
        ttl_seconds: int = 3600,
        audience: str | None = None,
        extra_claims: dict | None = None,
    ) -> str:
        """A signed access token; ``extra_claims`` are applied last, so tests can forge any claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "exp": now + ttl_seconds,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": self.ISSUER,
            "aud": audience or "account",
            # Stable per username, like a Keycloak user id, so audit rows of one user group together.
            "sub": sub or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.ISSUER}/users/{username}")),
            "typ": "Bearer",
            "azp": audience or DEV_CLIENT_ID,
            "scope": "openid profile email",
            "preferred_username": username,
            "realm_access": {"roles": sorted(set(roles))},
        }
        claims.update(extra_claims or {})
        return jwt.encode(claims, self._private_key, algorithm=self.ALGORITHM, headers={"kid": self.kid, "typ": "JWT"})


def _thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 key id: the same key always gets the same ``kid``."""
    required = {name: public_jwk[name] for name in ("e", "kty", "n")}
    digest = hashlib.sha256(json.dumps(required, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
