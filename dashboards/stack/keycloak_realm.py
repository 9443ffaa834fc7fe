"""``keycloak/realm-demo.json``: the demo realm Keycloak imports at start (``start-dev --import-realm``).

Roles are the ones the app checks, users and passwords are the traffic
generator's ``DEMO_USERS`` (demo-only, published on purpose), and the client
allows the password grant the generator logs in with. Tokens carry
``iss = <KC_HOSTNAME>/realms/demo``: docker-compose sets ``KC_HOSTNAME`` to the
in-network URL below, which is also the app's ``AUTH_ISSUER``.
"""

from __future__ import annotations

from typing import Any, Final

from ..config import Config
from ..registry import REGISTRY
from ..serialise import json_bytes

PATH: Final = "keycloak/realm-demo.json"
INTERNAL_URL: Final = "http://keycloak:8080"
"""Keycloak's URL inside the compose network: its ``KC_HOSTNAME``, so the issuer every client sees."""
ACCESS_TOKEN_SECONDS: Final = 300


def issuer(cfg: Config) -> str:
    return f"{INTERNAL_URL}/realms/{cfg.stack.keycloak_realm}"


def jwks_url(cfg: Config) -> str:
    return f"{issuer(cfg)}/protocol/openid-connect/certs"


def token_url(cfg: Config) -> str:
    return f"{issuer(cfg)}/protocol/openid-connect/token"


ROLE_DESCRIPTIONS: Final = {
    "get-authors": "Read authors (GET /api/authors, WS packages 1 and 2).",
    "create-author": "Create authors (POST /api/authors, WS package 3).",
    "delete-author": "Delete authors (DELETE /api/authors/{author_id}).",
}


def demo(cfg: Config) -> bool:
    """The demo realm is the reference service's: its roles, its traffic generator's users."""
    return cfg.features.keycloak and cfg.stack.reference_service


def realm(cfg: Config) -> dict[str, Any]:
    # The reference service's own facts, read from it (only in this repository, where app/ exists).
    from app.trafficgen import DEMO_USERS, REALM_ROLES

    client_id = cfg.stack.keycloak_client_id
    return {
        "realm": cfg.stack.keycloak_realm,
        "displayName": "Observability bundle demo (demo-only passwords)",
        "enabled": True,
        "sslRequired": "external",
        "registrationAllowed": False,
        "resetPasswordAllowed": False,
        "loginWithEmailAllowed": True,
        # The traffic generator fails logins on purpose; lockouts would stop its real logins.
        "bruteForceProtected": False,
        "accessTokenLifespan": ACCESS_TOKEN_SECONDS,
        # user events: stored for the admin console, counted by keycloak_user_events_total
        "eventsEnabled": True,
        "eventsExpiration": 86400,
        "eventsListeners": ["jboss-logging"],
        "adminEventsEnabled": False,
        "roles": {"realm": [
            {"name": role, "description": ROLE_DESCRIPTIONS.get(role, ""), "composite": False, "clientRole": False}
            for role in REALM_ROLES
        ]},
        "clients": [{
            "clientId": client_id,
            "name": "Authors service (demo)",
            "description": "Public client of the reference service and its traffic generator (password grant).",
            "enabled": True,
            "protocol": "openid-connect",
            "publicClient": True,
            "directAccessGrantsEnabled": True,
            "standardFlowEnabled": False,
            "implicitFlowEnabled": False,
            "serviceAccountsEnabled": False,
            "fullScopeAllowed": True,
            "redirectUris": [],
            "webOrigins": [],
            "protocolMappers": [{
                "name": f"audience {client_id}",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "consentRequired": False,
                "config": {
                    "included.client.audience": client_id,
                    "access.token.claim": "true",
                    "id.token.claim": "false",
                    "introspection.token.claim": "true",
                },
            }],
        }],
        "users": [
            {
                "username": user.username,
                "enabled": True,
                "email": user.email,
                "emailVerified": True,
                "firstName": user.first_name,
                "lastName": user.last_name,
                "requiredActions": [],
                "credentials": [{"type": "password", "value": user.password, "temporary": False}],
                "realmRoles": list(user.roles),
            }
            for user in DEMO_USERS
        ],
    }


def check(data: dict[str, Any]) -> list[str]:
    """What would keep the app's roles, the generator's logins or the login metrics from working."""
    from app.routes.ws import PACKAGES
    from app.trafficgen import REALM_ROLES

    problems: list[str] = []
    defined = {r["name"] for r in data.get("roles", {}).get("realm", [])}
    needed = set(REALM_ROLES) | {p.role for p in PACKAGES.values()}
    if missing := sorted(needed - defined):
        problems.append(f"realm roles the app checks are not defined: {', '.join(missing)}")
    for user in data.get("users", []):
        if unknown := sorted(set(user.get("realmRoles", [])) - defined):
            problems.append(f"user {user['username']}: undefined roles {', '.join(unknown)}")
        if any(c.get("temporary", True) for c in user.get("credentials", [])) or not user.get("credentials"):
            problems.append(f"user {user['username']}: needs a non-temporary password (password grant)")
        if not all(user.get(k) for k in ("email", "firstName", "lastName")):
            problems.append(f"user {user['username']}: incomplete profile (Keycloak asks to complete it at login)")
    if not any(c.get("directAccessGrantsEnabled") for c in data.get("clients", [])):
        problems.append("no client allows direct access grants: the traffic generator cannot log in")
    if data.get("eventsEnabled") is not True:
        problems.append("eventsEnabled is not true")
    if data.get("bruteForceProtected"):
        problems.append("brute-force protection would lock the demo users after the generator's failed logins")
    return problems


@REGISTRY.artifact("keycloak-realm", PATH, when=demo)
def realm_json(cfg: Config) -> bytes:
    return json_bytes(realm(cfg))


@REGISTRY.validator("keycloak-realm")
def check_realm(cfg: Config) -> list[str]:
    return [f"{PATH}: {p}" for p in check(realm(cfg))] if demo(cfg) else []
