"""Redaction in process: which keys are secret, what free text is masked, and how deep ``redact`` goes.

Values in the key tests are plain words that no free-text rule masks (not bearer tokens, JWTs or
query strings), so each test fails when the key rule it names is gone.
"""

from __future__ import annotations

from collections import OrderedDict
from types import MappingProxyType

import pytest

from fastapi_lookout.redaction import REDACTED, is_secret_key, redact, redact_text

PLAIN = "hunter2"
"""A secret value that only a key rule can mask."""


def test_the_replacement_is_the_literal_redacted_marker():
    assert REDACTED == "[REDACTED]"
    assert redact({"password": PLAIN}) == {"password": "[REDACTED]"}


def test_a_plain_value_is_left_alone_by_the_free_text_rules():
    assert redact_text(PLAIN) == PLAIN
    assert redact_text("Basic dXNlcjpwYXNz") == "Basic dXNlcjpwYXNz"
    assert redact_text("sessionid=abc") == "sessionid=abc"  # no query separator before it


# --- secret keys -----------------------------------------------------------------------------------------------------

SECRET_KEYS = [
    # (key, the one rule that catches it)
    ("Authorization", "authorization"),
    ("proxy-authorization", "authorization"),
    ("access_token", "token"),
    ("refresh_token", "token"),
    ("password", "passw"),
    ("passwd", "passw"),
    ("client_secret", "secret"),
    ("Cookie", "cookie"),
    ("Set-Cookie", "cookie"),
    ("X-Api-Key", "api[-_]?key"),
    ("api_key", "api[-_]?key"),
    ("apikey", "api[-_]?key"),
    ("credentials", "credential"),
    ("aws_credential_file", "credential"),
    ("sessionid", "session"),
    ("SESSION", "session"),
    ("private_key", "private[-_]?key"),
    ("private-key", "private[-_]?key"),
    ("privatekey", "private[-_]?key"),
    ("ssh_privatekey_pem", "private[-_]?key"),
]


@pytest.mark.parametrize(("key", "rule"), SECRET_KEYS)
def test_a_secret_named_key_is_secret(key: str, rule: str):
    assert is_secret_key(key), rule


@pytest.mark.parametrize(("key", "rule"), SECRET_KEYS)
def test_a_secret_named_keys_value_is_redacted_at_top_level(key: str, rule: str):
    assert redact({key: PLAIN, "user": "alice"}) == {key: REDACTED, "user": "alice"}, rule


@pytest.mark.parametrize(("key", "rule"), SECRET_KEYS)
def test_a_secret_named_keys_value_is_redacted_when_nested(key: str, rule: str):
    data = {"request": {"headers": [{"name": "x", key: PLAIN}], "body": {"form": {key: PLAIN, "q": "books"}}}}
    assert redact(data) == {
        "request": {"headers": [{"name": "x", key: REDACTED}], "body": {"form": {key: REDACTED, "q": "books"}}}
    }, rule


def test_authorization_basic_is_redacted_by_its_key():
    assert redact({"Authorization": "Basic dXNlcjpwYXNz"}) == {"Authorization": REDACTED}
    assert redact({"headers": {"authorization": "Digest username=alice"}}) == {"headers": {"authorization": REDACTED}}


def test_a_secret_keys_whole_value_is_redacted_whatever_it_holds():
    assert redact({"credentials": {"user": "alice", "pin": 1234}}) == {"credentials": REDACTED}
    assert redact({"cookie": ["a=1", "b=2"]}) == {"cookie": REDACTED}
    assert redact({"session": 42}) == {"session": REDACTED}


@pytest.mark.parametrize("key", ["AUTHORIZATION", "Access_Token", "PassWord", "CLIENT_SECRET", "SET-COOKIE",
                                 "X-API-KEY", "Credentials", "SessionId", "PRIVATE_KEY"])
def test_secret_keys_are_matched_case_insensitively(key: str):
    assert is_secret_key(key)
    assert redact({key: PLAIN}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["author_id", "username", "user", "path", "keyboard", "api", "private", "cook",
                                 "pass", "sess", "credit", "auth", "tok"])
def test_ordinary_keys_are_not_secret(key: str):
    assert not is_secret_key(key)
    assert redact({key: PLAIN}) == {key: PLAIN}


def test_non_string_keys_are_kept_and_their_values_still_redacted():
    data = {1: PLAIN, None: "Bearer abc", ("token",): PLAIN, 2.5: {"password": PLAIN}}
    assert redact(data) == {1: PLAIN, None: REDACTED, ("token",): PLAIN, 2.5: {"password": REDACTED}}


# --- containers and scalars ------------------------------------------------------------------------------------------


def test_any_mapping_becomes_a_redacted_dict():
    proxy = MappingProxyType({"token": PLAIN, "n": 1})
    ordered = OrderedDict([("secret", PLAIN), ("n", 2)])
    assert redact(proxy) == {"token": REDACTED, "n": 1}
    assert type(redact(proxy)) is dict
    assert redact(ordered) == {"secret": REDACTED, "n": 2}


def test_lists_and_tuples_are_redacted_item_by_item_into_lists():
    assert redact([{"token": PLAIN}, "Bearer abc", PLAIN]) == [{"token": REDACTED}, REDACTED, PLAIN]
    assert redact(({"token": PLAIN}, "Bearer abc", 3)) == [{"token": REDACTED}, REDACTED, 3]
    assert redact(()) == []


@pytest.mark.parametrize("value", [None, 0, 7, 1.5, True, False, PLAIN])
def test_scalars_without_secrets_come_back_unchanged(value: object):
    assert redact(value) == value
    assert type(redact(value)) is type(value)


def test_strings_in_values_go_through_the_free_text_rules():
    assert redact({"url": "/cb?code=1&access_token=abc"}) == {"url": "/cb?code=1&access_token=[REDACTED]"}
    assert redact("auth Bearer abc done") == f"auth {REDACTED} done"


def test_the_input_is_not_modified():
    data = {"password": PLAIN, "items": [{"token": PLAIN}]}
    redact(data)
    assert data == {"password": PLAIN, "items": [{"token": PLAIN}]}


# --- depth cap -------------------------------------------------------------------------------------------------------


def _nested_dicts(levels: int, leaf: object) -> object:
    value = leaf
    for _ in range(levels):
        value = {"k": value}
    return value


def _nested_lists(levels: int, leaf: object) -> object:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("nest", [_nested_dicts, _nested_lists])
@pytest.mark.parametrize("leaf", [PLAIN, 5])
def test_exactly_eight_levels_of_nesting_are_kept(nest, leaf: object):
    assert redact(nest(8, leaf)) == nest(8, leaf)


@pytest.mark.parametrize("nest", [_nested_dicts, _nested_lists])
@pytest.mark.parametrize("leaf", [PLAIN, 5, {"a": 1}])
def test_anything_deeper_than_eight_levels_is_replaced(nest, leaf: object):
    assert redact(nest(9, leaf)) == nest(9, REDACTED)
    assert redact(nest(12, leaf)) == nest(9, REDACTED)


def test_the_depth_counts_mixed_dicts_and_tuples():
    deep = {"a": ({"b": [{"c": ({"d": [PLAIN]},)}]},)}  # PLAIN sits at depth 8
    assert redact(deep) == {"a": [{"b": [{"c": [{"d": [PLAIN]}]}]}]}
    assert redact({"x": deep}) == {"x": {"a": [{"b": [{"c": [{"d": [REDACTED]}]}]}]}}


# --- free text: bearer tokens ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_tokens_are_redacted_whatever_the_case(word: str):
    assert redact_text(f"got {word} abc.DEF-123 from client") == f"got {REDACTED} from client"


def test_a_bearer_token_is_redacted_with_every_token_character():
    assert redact_text("Authorization: Bearer aZ09._~+/=-x, next") == f"Authorization: {REDACTED}, next"


def test_a_bearer_token_after_any_whitespace_is_redacted():
    assert redact_text("Bearer\tabc") == REDACTED
    assert redact_text("Bearer \n abc") == REDACTED


def test_bearer_inside_a_word_is_not_a_token():
    assert redact_text("Xbearer abc") == "Xbearer abc"
    assert redact_text("bearer") == "bearer"


# --- free text: JWTs -------------------------------------------------------------------------------------------------


def test_a_jwt_is_redacted_anywhere_in_text():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig_-9"
    assert redact_text(f"token {jwt} rejected") == f"token {REDACTED} rejected"


@pytest.mark.parametrize("jwt", ["eyJabcde.fghij.", "eyJabcde.fghij.k", "eyJ_-aZ9.AZ_-9.xyz"])
def test_jwts_of_the_minimum_shape_are_redacted(jwt: str):
    assert redact_text(f"[{jwt}]") == f"[{REDACTED}]"


@pytest.mark.parametrize("text", ["eyJabcd.fghij.k", "eyJabcde.fghi.k", "eyJabcde.fghij", "xeyJabcde.fghij.k",
                                  "eyJab+de.fghij.k"])
def test_text_short_of_the_jwt_shape_is_kept(text: str):
    assert redact_text(text) == text


# --- free text: query strings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["token", "access_token", "passwd", "Password", "client_secret", "api_key",
                                  "api-key", "apikey", "API_KEY", "credentials", "sessionid", "X-Amz-Signature",
                                  "private_key", "private-key", "authorization", "Authorization"])
def test_each_secret_query_parameter_has_its_value_redacted(name: str):
    assert redact_text(f"GET /cb?a=1&{name}={PLAIN}&b=2") == f"GET /cb?a=1&{name}={REDACTED}&b=2"
    assert redact_text(f"/cb?{name}={PLAIN}") == f"/cb?{name}={REDACTED}"


@pytest.mark.parametrize("separator", ["?", "&", ";"])
def test_a_secret_parameter_after_any_separator_is_redacted(separator: str):
    assert redact_text(f"/p?x=1{separator}token=abc") == f"/p?x=1{separator}token={REDACTED}"


@pytest.mark.parametrize("end", ["&next=1", ";next=1", "#frag", " HTTP/1.1", '"', "'", "\tx"])
def test_a_query_value_ends_at_the_next_separator(end: str):
    assert redact_text(f"/p?token=abc{end}") == f"/p?token={REDACTED}{end}"


def test_a_query_value_of_any_shape_is_redacted():
    assert redact_text("/ws?token=a/b+c=d:e") == f"/ws?token={REDACTED}"
    assert redact_text("/ws?token=") == f"/ws?token={REDACTED}"


def test_ordinary_query_parameters_are_kept():
    text = "/api/authors?author_id=3&limit=5;page=2#top"
    assert redact_text(text) == text


def test_a_secret_parameter_without_a_value_is_kept_and_tokens_still_redacted():
    assert redact_text("/p?token") == "/p?token"
    assert redact_text("/p?token Bearer abc") == f"/p?token {REDACTED}"


def test_query_and_token_rules_apply_together():
    text = "GET /cb?session=s1&x=eyJabcde.fghij.k with Bearer t0k"
    assert redact_text(text) == f"GET /cb?session={REDACTED}&x={REDACTED} with {REDACTED}"
