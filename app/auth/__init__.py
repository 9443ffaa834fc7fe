"""Who is calling: Keycloak (or development) access tokens checked into a ``Principal``.

The FastAPI dependencies live in ``app.auth.dependencies`` and are not
re-exported here, so the token CLI and the verifier import without FastAPI
or the observability stack.
"""

from app.auth.dev_issuer import DevIssuer
from app.auth.tokens import AuthError, Principal, TokenVerifier, build_verifier

__all__ = ["AuthError", "DevIssuer", "Principal", "TokenVerifier", "build_verifier"]
