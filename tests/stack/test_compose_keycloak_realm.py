"""keycloak/realm-demo.json: the roles the app checks, the generator's users, and one issuer everywhere."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from app.trafficgen import DEFAULT_CLIENT_ID, DEFAULT_REALM, DEMO_USERS, REALM_ROLES
from dashboards.config import Config
from dashboards.stack import compose, keycloak_realm

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def realm() -> dict:
    return json.loads((ROOT / keycloak_realm.PATH).read_text())


def test_committed_realm_is_generated_and_passes_its_checks(realm):
    assert realm == keycloak_realm.realm(Config())
    assert keycloak_realm.check(realm) == []


def test_realm_roles_are_every_role_the_app_checks(realm):
    in_routes = set()
    for path in (ROOT / "app" / "routes").glob("*.py"):
        text = path.read_text()
        in_routes |= set(re.findall(r'authorized\("([^"]+)"\)', text))
        in_routes |= set(re.findall(r'Package\("[^"]+", "([^"]+)"', text))
    assert in_routes == set(REALM_ROLES)
    assert {r["name"] for r in realm["roles"]["realm"]} == set(REALM_ROLES)


def test_demo_users_alice_all_roles_bob_reader_mallory_none(realm):
    users = {u["username"]: u for u in realm["users"]}
    assert set(users["alice"]["realmRoles"]) == set(REALM_ROLES)
    assert users["bob"]["realmRoles"] == ["get-authors"]
    assert users["mallory"]["realmRoles"] == []
    for user in DEMO_USERS:
        (cred,) = users[user.username]["credentials"]
        assert cred == {"type": "password", "value": user.password, "temporary": False}
        assert "demo" in user.password and "not-secret" in user.password  # obviously demo-only


def test_client_allows_the_password_grant_and_names_itself_in_the_audience(realm):
    (client,) = realm["clients"]
    assert client["clientId"] == DEFAULT_CLIENT_ID == Config().stack.keycloak_client_id
    assert client["publicClient"] is True and client["directAccessGrantsEnabled"] is True
    assert client["standardFlowEnabled"] is False
    (mapper,) = client["protocolMappers"]
    assert mapper["protocolMapper"] == "oidc-audience-mapper"
    assert mapper["config"]["included.client.audience"] == DEFAULT_CLIENT_ID


def test_events_on_and_no_lockout_of_the_generators_users(realm):
    assert realm["realm"] == DEFAULT_REALM
    assert realm["eventsEnabled"] is True
    assert realm["bruteForceProtected"] is False


def test_token_issuer_is_the_apps_issuer_in_compose():
    cfg = Config()
    services = compose.services(cfg)
    kc = services["keycloak"]["environment"]
    app = services[cfg.app_service]["environment"]
    # Keycloak writes iss = <KC_HOSTNAME>/realms/<realm> whatever URL a client used
    assert app["AUTH_ISSUER"] == f"{kc['KC_HOSTNAME']}/realms/{cfg.stack.keycloak_realm}"
    assert app["AUTH_JWKS_URL"] == app["AUTH_ISSUER"] + "/protocol/openid-connect/certs"
    assert app["AUTH_AUDIENCE"] == cfg.stack.keycloak_client_id
    traffic = services["traffic"]["environment"]
    assert traffic["TRAFFIC_KEYCLOAK_URL"] == kc["KC_HOSTNAME"]
    assert keycloak_realm.token_url(cfg) == f"{kc['KC_HOSTNAME']}/realms/demo/protocol/openid-connect/token"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r["roles"]["realm"].pop(), "realm roles the app checks are not defined: delete-author"),
        (lambda r: r["users"][0]["credentials"][0].update(temporary=True), "user alice: needs a non-temporary"),
        (lambda r: r["users"][1].pop("lastName"), "user bob: incomplete profile"),
        (lambda r: r["users"][2]["realmRoles"].append("admin"), "user mallory: undefined roles admin"),
        (lambda r: r["clients"][0].update(directAccessGrantsEnabled=False), "no client allows direct access"),
        (lambda r: r.update(eventsEnabled=False), "eventsEnabled is not true"),
        (lambda r: r.update(bruteForceProtected=True), "brute-force protection would lock"),
    ],
)
def test_checker_names_what_would_break_logins_or_roles(change, expected):
    data = copy.deepcopy(keycloak_realm.realm(Config()))
    change(data)
    assert any(expected in p for p in keycloak_realm.check(data)), keycloak_realm.check(data)
