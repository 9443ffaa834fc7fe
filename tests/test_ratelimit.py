"""The sliding-window limiter, driven with explicit clocks, and its HTTP answer."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from app.ratelimit import SlidingWindowLimiter


def hits(limit_type: str) -> float:
    return REGISTRY.get_sample_value("rate_limit_hits_total", {"limit_type": limit_type}) or 0.0


def test_burst_is_per_sliding_second_and_counted():
    limiter = SlidingWindowLimiter("user", per_minute=100, burst=3)
    before = hits("user")
    assert [limiter.check("u", now=10.0 + i * 0.1).allowed for i in range(4)] == [True, True, True, False]
    assert hits("user") == before + 1
    refused = limiter.check("u", now=10.35)
    assert not refused.allowed and refused.retry_after == 1
    assert limiter.check("u", now=11.01).allowed  # the first hit left the one-second window


def test_minute_window_slides_instead_of_resetting():
    limiter = SlidingWindowLimiter("ip", per_minute=5, burst=5)
    for i in range(5):
        assert limiter.check("k", now=100.0 + i * 10).allowed  # at 100, 110, ..., 140
    decision = limiter.check("k", now=150.0)
    assert not decision.allowed and decision.retry_after == 10  # the hit at 100 expires at 160
    assert decision.headers()["Retry-After"] == "10" and decision.headers()["X-RateLimit-Remaining"] == "0"
    assert limiter.check("k", now=160.5).allowed


def test_keys_are_independent_and_idle_keys_are_swept():
    limiter = SlidingWindowLimiter("user", per_minute=1, burst=1)
    assert limiter.check("a", now=1.0).allowed and limiter.check("b", now=1.0).allowed
    assert not limiter.check("a", now=2.0).allowed
    assert asyncio.run(limiter.sweep(now=100.0)) == 2 and len(limiter) == 0


def test_unknown_limit_type_is_refused():
    with pytest.raises(ValueError):
        SlidingWindowLimiter("made-up", per_minute=1, burst=1)


def test_http_429_carries_retry_after_and_ratelimit_headers(service):
    app, _ = service
    token = app.token("burster", ("get-authors",))
    with app.client() as client:
        responses = [client.get("/api/authors?limit=1", headers={"Authorization": f"Bearer {token}"})
                     for _ in range(30)]
    refused = [r for r in responses if r.status_code == 429]
    assert refused, "a burst of 30 must hit the per-second limit"
    first = refused[0]
    assert int(first.headers["Retry-After"]) >= 1
    assert first.headers["X-RateLimit-Limit"] and first.headers["X-RateLimit-Remaining"] == "0"
    assert first.json()["limit_type"] == "user" and first.json()["reason"] == "rate_limited"
