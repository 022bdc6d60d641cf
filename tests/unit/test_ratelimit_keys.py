"""Whom a request counts against (``services/ratelimit.py: caller_key``), and limit parsing."""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidInputError
from modelyard.services.ratelimit import caller_key, parse_limit


def test_credentials_first_then_the_address_a_trusted_proxy_added() -> None:
    token = caller_key("Bearer hf_abc", "127.0.0.1", "10.0.0.1", trust_proxy=True)
    assert token.startswith("t:") and "hf_abc" not in token
    assert token == caller_key("Bearer hf_abc", "10.9.9.9", None, trust_proxy=False)
    assert token != caller_key("Bearer hf_abd", "127.0.0.1", None, trust_proxy=False)
    # Behind a trusted proxy: the last hop (the proxy's own); what the client wrote before it is ignored.
    assert caller_key(None, "127.0.0.1", "6.6.6.6, 203.0.113.7", trust_proxy=True) == "a:203.0.113.7"
    assert caller_key(None, "127.0.0.1", "6.6.6.6, 203.0.113.7 ", trust_proxy=True) == "a:203.0.113.7"
    # Not trusted: the header is the client's word, and the peer is who is counted.
    assert caller_key(None, "192.0.2.1", "203.0.113.7", trust_proxy=False) == "a:192.0.2.1"
    assert caller_key(None, "192.0.2.1", " , ", trust_proxy=True) == "a:192.0.2.1"


def test_limits_parse_or_are_refused() -> None:
    item = parse_limit("1000/minute", "X")
    assert item is not None and item.amount == 1000 and item.get_expiry() == 60
    assert parse_limit("none", "X") is None and parse_limit("", "X") is None
    with pytest.raises(InvalidInputError, match="MODELYARD_RATE_LIMIT_API: 'lots' is not a rate limit"):
        parse_limit("lots", "MODELYARD_RATE_LIMIT_API")


def test_shared_counts_are_batched_but_never_exceeded() -> None:
    """Two processes' limiters on one Redis (the real one the CI starts): busy callers are counted
    a batch per round trip, yet no more than the limit get through in a window, together."""
    import asyncio

    import redis

    from modelyard.config import Settings
    from modelyard.services.ratelimit import RateLimiter

    redis.Redis(host="127.0.0.1", port=6379, db=9).flushdb()
    settings = Settings(rate_limit_resolve="1000/minute", rate_limit_storage="redis://127.0.0.1:6379/9")

    async def run() -> tuple[int, int]:
        first, second = RateLimiter(settings), RateLimiter(settings)
        assert first._batch(first.limits["resolve"]) == 10
        allowed = 0
        for i in range(1300):
            limiter = first if i % 3 else second
            allowed += (await limiter.check("resolve", "t:busy")) is None
        small = RateLimiter(Settings(rate_limit_resolve="6/minute", rate_limit_storage="redis://127.0.0.1:6379/9"))
        exact = [(await small.check("resolve", "t:small")) is None for _ in range(8)]
        for limiter in (first, second, small):
            await limiter.close()
        return allowed, exact.count(True)

    allowed, exact = asyncio.run(run())
    assert 1000 - 2 * 9 <= allowed <= 1000
    assert exact == 6  # limits under 200 are counted one by one
    redis.Redis(host="127.0.0.1", port=6379, db=9).flushdb()
