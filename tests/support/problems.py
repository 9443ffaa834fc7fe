"""Checks an error answer against the one problem-details schema (``fastapi_lookout.problems``)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs

from fastapi_lookout.problems import MEDIA_TYPE, PROBLEM_SCHEMA

_VALIDATOR = jsonschema_rs.validator_for(PROBLEM_SCHEMA)


def check_problem(body: Any, status: int, reason: str | None = None) -> dict[str, Any]:
    """``body`` (a WebSocket reply's ``error``, or a parsed response) is a problem of ``status``."""
    errors = [error.message for error in _VALIDATOR.iter_errors(body)]
    assert not errors, f"not a problem-details body: {errors}: {body!r}"
    assert body["status"] == status, body
    if reason is not None:
        assert body["reason"] == reason, body
    return body


def assert_problem(response: httpx.Response, status: int, reason: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with an ``application/problem+json`` body valid against the schema,
    whose ``request_id`` is the one the response's ``X-Correlation-ID`` carries (when it has one)."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == MEDIA_TYPE, response.headers
    body = check_problem(response.json(), status, reason)
    correlation = response.headers.get("x-correlation-id")
    if correlation is not None:
        assert body["request_id"] == correlation
    return body
