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
